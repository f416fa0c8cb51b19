"""Warnings about role names that look like typos (``auditr`` next to a declared ``auditor``).

Roles need not be declared: most come from the authenticator (an API key's
roles, a JWT claim), so an undeclared role is legitimate and never an error.
But a misspelt role silently grants nothing (in ``roles``), inherits nothing
(in ``inherits``) or lets nobody approve (in ``approvers``). A name used in
one of those places that no ``[roles]`` table declares, and that is close to
one that is (or to another name used more often), gets a warning with its
file, line, field and the name probably meant.
"""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from .globs import is_glob, nfc

if TYPE_CHECKING:
    from .loader import _Source
    from .schema import PolicyDocument

__all__ = ["role_warnings"]

#: How alike two names must be (difflib's ratio) to suggest one for the other.
CUTOFF = 0.75


def _uses(docs: Sequence[tuple[PolicyDocument, _Source]]) -> Iterator[tuple[_Source, tuple[Any, ...], str]]:
    """Every role name a policy uses: (file, field path, name), in file order."""
    for doc, src in docs:
        for name, role in doc.roles.items():
            for j, parent in enumerate(role.inherits):
                yield src, ("roles", name, "inherits", j), parent
        for section in ("rules", "limits", "budgets"):
            for i, entry in enumerate(getattr(doc, section)):
                for j, role_name in enumerate(entry.roles or ()):
                    yield src, (section, i, "roles", j), role_name
                approval = getattr(entry, "approval", None)
                for j, approver in enumerate(approval.approvers if approval is not None else ()):
                    yield src, (section, i, "approval", "approvers", j), approver
        for i, flow in enumerate(doc.flows):
            for j, approver in enumerate(flow.approval.approvers if flow.approval is not None else ()):
                yield src, ("flows", i, "approval", "approvers", j), approver


def role_warnings(docs: Sequence[tuple[PolicyDocument, _Source]]) -> tuple[str, ...]:
    """``FILE:LINE: FIELD: role 'x' is not declared ... (did you mean 'y'?)`` for each likely typo."""
    declared = sorted({nfc(name) for doc, _ in docs for name in doc.roles})
    uses = [(src, loc, nfc(name)) for src, loc, name in _uses(docs) if not is_glob(name)]
    counts = Counter(name for _, _, name in uses)
    first = {name: i for i, (_, _, name) in reversed(list(enumerate(uses)))}
    out: list[str] = []
    for src, loc, name in uses:
        if name in declared:
            continue
        close = difflib.get_close_matches(name, declared, n=1, cutoff=CUTOFF)
        if not close:
            # Another used name, more common (or as common and used first), is the likelier spelling.
            rank = (counts[name], -first[name])
            likelier = [o for o in counts if o not in declared and (counts[o], -first[o]) > rank]
            close = difflib.get_close_matches(name, likelier, n=1, cutoff=CUTOFF)
        if close:
            elsewhere = "" if close[0] in declared else ", used elsewhere"
            hint = f"role {name!r} is not declared in [roles] (did you mean {close[0]!r}{elsewhere}?)"
            out.append(str(src.error(hint, loc)))
    return tuple(out)
