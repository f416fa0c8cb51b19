"""One approval request as stored, listed and audited, and the hash that binds it to a call.

A request is bound to who asked (subject and tenant), where (server), what
(kind and target) and the exact arguments, through a SHA-256 over the audit
trail's canonical JSON encoding (:mod:`mcp_guard.audit.canonical`) of the
arguments with their object keys sorted: the same call in another key order
is the same call, and there is never a second canonical form to keep in step.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from ..audit.canonical import encode
from ..audit.redact import jsonable

Status = Literal["pending", "approved", "denied", "expired", "used"]

__all__ = ["ApprovalError", "ApprovalRequest", "Status", "arguments_hash", "binding_hash"]


class ApprovalError(Exception):
    """An approve or deny that cannot be done: unknown id, not pending, not an approver, own request."""

    def __init__(self, message: str, *, unknown: bool = False) -> None:
        super().__init__(message)
        self.unknown = unknown


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def arguments_hash(arguments: Mapping[str, Any] | None) -> str:
    """SHA-256 (hex) of the arguments' canonical JSON, keys sorted; no masking, the exact values."""
    plain = jsonable(dict(arguments or {}), [], mask_keys=False)
    return hashlib.sha256(encode(_sorted(plain)).encode("ascii")).hexdigest()


def binding_hash(
    subject: str, tenant: str | None, server: str, kind: str | None, target: str | None, args_hash: str
) -> str:
    """What a retry must match to use an approval: same caller, server, target and arguments."""
    text = encode([subject, tenant, server, kind, target, args_hash])
    return hashlib.sha256(text.encode("ascii")).hexdigest()


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

    def at(self, now: float) -> ApprovalRequest:
        """This request as of ``now``: an open one past ``expires_at`` reads as expired."""
        if self.status in ("pending", "approved") and now >= self.expires_at:
            return replace(self, status="expired")
        return self

    def record(self) -> dict[str, Any]:
        """The ``approvals list --json`` record (the documented fields, in their order)."""
        return {
            "id": self.id,
            "status": self.status,
            "subject": self.subject,
            "server": self.server,
            "target": self.target,
            "arguments": dict(self.arguments),
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
        return cls(**data)
