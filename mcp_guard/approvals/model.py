"""One approval request as stored, listed and audited, and the hash that binds it to a call.

A request is bound to who asked (subject and tenant), where (server), what
(kind and target) and the exact arguments, through a SHA-256 over one
canonical form: the arguments as compact JSON with object keys sorted and
every non-ASCII character escaped (``json.dumps(..., sort_keys=True,
separators=(",", ":"), ensure_ascii=True, allow_nan=False)``). The same call in
another key order is the same call; nothing is truncated or masked. Arguments
that have no exact JSON form (non-string keys, NaN, bytes, sets, other
objects, nesting too deep to encode) are refused: a binding that could not tell
two calls apart would let an approval of one run the other.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from ..audit.canonical import encode
from ..errors import AccessDenied

Status = Literal["pending", "approved", "denied", "expired", "used"]

__all__ = [
    "ApprovalError",
    "ApprovalRequest",
    "Approver",
    "Status",
    "arguments_hash",
    "binding_hash",
    "nesting",
]

_SCALARS = (str, int, float, bool, type(None))


class ApprovalError(Exception):
    """An approve or deny that cannot be done: unknown id, not pending, not an approver, own request."""

    def __init__(self, message: str, *, unknown: bool = False) -> None:
        super().__init__(message)
        self.unknown = unknown


def nesting(value: Any) -> int:
    """How many containers deep ``value`` goes (0 for a scalar); iterative, so any depth is measured."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, Mapping):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend((v, depth + 1) for v in item)
        else:
            deepest = max(deepest, depth)
            continue
        deepest = max(deepest, depth + 1)
    return deepest


def _exact_json(value: Any) -> str | None:
    """Why ``value`` has no exact JSON form, or None; iterative (the encoder itself would recurse)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, Mapping):
            for key, sub in item.items():
                if type(key) is not str:
                    return f"a {type(key).__name__} object key"
                stack.append(sub)
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, float) and not math.isfinite(item):
            return f"the number {item!r}"
        elif not isinstance(item, _SCALARS):
            return f"a {type(item).__name__} value"
    return None


def arguments_hash(arguments: Mapping[str, Any] | None) -> str:
    """SHA-256 (hex) of the arguments' canonical JSON (see the module doc): the exact values.

    Raises :class:`~mcp_guard.errors.AccessDenied` for arguments without an
    exact canonical form, so the call is refused (and audited) rather than
    bound to a hash another call could share.
    """
    plain = dict(arguments or {})
    problem = _exact_json(plain)
    if problem is None:
        try:
            text = json.dumps(
                plain, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
            )
        except RecursionError:
            problem = f"nesting {nesting(plain)} levels deep"
        except (TypeError, ValueError) as exc:  # pragma: no cover - _exact_json found these first
            problem = str(exc)
        else:
            return hashlib.sha256(text.encode("ascii")).hexdigest()
    refused = AccessDenied(
        f"the arguments cannot be bound exactly to an approval or confirmation ({problem})"
    )
    refused.public_message = (
        "Access denied: this call needs a confirmation or approval of its exact arguments, and these"
        " cannot be bound exactly (not plain JSON, or nested too deep)"
    )
    raise refused


def binding_hash(
    subject: str, tenant: str | None, server: str, kind: str | None, target: str | None, args_hash: str
) -> str:
    """What a retry must match to use an approval: same caller, server, target and arguments."""
    text = encode([subject, tenant, server, kind, target, args_hash])
    return hashlib.sha256(text.encode("ascii")).hexdigest()


@dataclass(frozen=True, slots=True)
class Approver:
    """Someone looking at approval requests: their subject, tenant and (effective) roles."""

    subject: str
    tenant: str | None
    roles: frozenset[str]


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    """A request for a human decision on one call.

    ``expires_at`` is when a pending request lapses or, once approved, when
    the approval can no longer be used. ``status`` is as stored; :meth:`at`
    gives it as of a moment (a pending or approved request past its time is
    ``expired``).
    """

    id: str
    status: Status
    subject: str
    server: str
    target: str | None
    arguments: Mapping[str, Any]
    arguments_sha256: str
    rule: str | None
    approvers: tuple[str, ...]
    requested_at: float
    expires_at: float
    timeout: float
    tenant: str | None = None
    kind: str | None = None
    decided_by: str | None = None
    decided_at: float | None = None
    note: str | None = None
    #: The shown ``arguments`` are cut short (nested deeper than the audit trail keeps); the
    #: approval still binds the exact, complete arguments through ``arguments_sha256``.
    truncated: bool = False
    #: Several rules asked for this approval: the approver holds a role of each of these lists.
    all_of: tuple[tuple[str, ...], ...] = ()

    def at(self, now: float) -> ApprovalRequest:
        """This request as of ``now``: an open one past ``expires_at`` reads as expired."""
        if self.status in ("pending", "approved") and now >= self.expires_at:
            return replace(self, status="expired")
        return self

    def may_decide(self, roles: frozenset[str] | set[str]) -> bool:
        """Whether ``roles`` are enough: one approver role, of every rule's list when several asked."""
        groups = self.all_of or (self.approvers,)
        return all(set(roles) & set(group) for group in groups)

    def visible_to(self, viewer: Approver) -> bool:
        """Whether ``viewer`` may see this request: same tenant, and they asked or may decide it."""
        if viewer.tenant != self.tenant:
            return False
        return viewer.subject == self.subject or self.may_decide(viewer.roles)

    def record(self) -> dict[str, Any]:
        """The ``approvals list --json`` record (the documented fields, in their order)."""
        return {
            "id": self.id,
            "status": self.status,
            "subject": self.subject,
            "tenant": self.tenant,
            "server": self.server,
            "target": self.target,
            "arguments": dict(self.arguments),
            "arguments_truncated": self.truncated,
            "rule": self.rule,
            "requested_at": self.requested_at,
            "expires_at": self.expires_at,
            "decided_by": self.decided_by,
            "note": self.note,
        }

    def audit(self) -> dict[str, Any]:
        """What an audit event keeps about the request (the arguments themselves are in the event)."""
        return {
            "id": self.id,
            "status": self.status,
            "requested_by": self.subject,
            "decided_by": self.decided_by,
            "arguments_sha256": self.arguments_sha256,
        }

    def dumps(self) -> bytes:
        data = asdict(self)
        data["arguments"] = dict(self.arguments)
        return json.dumps(data, separators=(",", ":")).encode()

    @classmethod
    def loads(cls, raw: bytes) -> ApprovalRequest:
        data = json.loads(raw)
        data["approvers"] = tuple(data.get("approvers", ()))
        data["all_of"] = tuple(tuple(group) for group in data.get("all_of", ()))
        return cls(**data)
