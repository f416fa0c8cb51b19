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
    """Union of redacted fields, the strictest step-up, one confirmation, one approval.

    Several confirm messages: the first rule's is asked (one question per call,
    never a chain of dialogs). Several approvals: one request, which any of the
    rules' approver roles may be asked, but whose approver must satisfy every
    rule (``all_of``: one approver role of each rule's list, so a stricter rule
    is never outvoted by a laxer one), open for the shortest ``timeout`` and
    waited on for the shortest ``wait``. Other kinds are kept as given.
    """
    fields: list[str] = []
    max_age: float | None = None
    confirm: Obligation | None = None
    approvers: list[str] = []
    all_of: list[tuple[str, ...]] = []
    rules: list[str] = []
    timeout: float | None = None
    wait: float | None = None
    others: list[Obligation] = []
    for o in obligations:
        if o.kind == "confirm":
            confirm = confirm or o
            continue
        if o.kind == "approval":
            approvers.extend(r for r in o.params.get("approvers", ()) if r not in approvers)
            for group in o.params.get("all_of") or (tuple(o.params.get("approvers", ())),):
                if tuple(group) not in all_of:
                    all_of.append(tuple(group))
            rules.extend(r for r in o.params.get("rules", ()) if r not in rules)
            t, w = float(o.params["timeout"]), float(o.params.get("wait", 0.0))
            timeout = t if timeout is None else min(timeout, t)
            wait = w if wait is None else min(wait, w)
            continue
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
    if confirm is not None:
        out.append(confirm)
    if timeout is not None:
        params: dict[str, object] = {
            "approvers": tuple(approvers),
            "timeout": timeout,
            "wait": wait,
            "rules": tuple(rules),
        }
        if len(all_of) > 1:
            params["all_of"] = tuple(all_of)
        out.append(Obligation("approval", params))
    return (*out, *others)
