"""Combining the obligations of several allowing rules (or engines) into one decision's set.

Both the compiled policy (every matching allow contributes its obligations)
and :class:`~mcp_guard.policy.chain.ChainedPolicy` (every allowing engine
does) need the same merge, so it lives below both of them.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..model import Obligation

__all__ = ["merge_obligations"]


def merge_obligations(obligations: Iterable[Obligation]) -> tuple[Obligation, ...]:
    """Union of redacted fields, the strictest step-up, other kinds kept as given."""
    fields: list[str] = []
    max_age: float | None = None
    others: list[Obligation] = []
    for o in obligations:
        if o.kind == "redact":
            for f in o.params.get("fields", ()):
                if f not in fields:
                    fields.append(f)
        elif o.kind == "step_up":
            age = float(o.params["max_age"])
            max_age = age if max_age is None else min(max_age, age)
        elif o not in others:
            others.append(o)
    out: list[Obligation] = []
    if fields:
        out.append(Obligation("redact", {"fields": tuple(fields)}))
    if max_age is not None:
        out.append(Obligation("step_up", {"max_age": max_age}))
    return (*out, *others)
