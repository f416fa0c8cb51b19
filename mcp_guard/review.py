"""The human decisions of the decide stage: an admin's approval of one exact call.

Called by :meth:`Guard.authorize <mcp_guard.guard.Guard.authorize>` after the
policy allowed a call whose rule carries an ``approval`` obligation, so every
path (server middleware, client wrapper, portal) passes here. The outcome is
either the decision with the approval's audit fields (the call runs once), or a
refusal: :class:`~mcp_guard.errors.ApprovalPending` (-32004) while nobody has
decided, :class:`~mcp_guard.errors.AccessDenied` when an approver said no.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .approvals import ApprovalRequest
from .approvals.model import nesting
from .audit.redact import MAX_DEPTH, jsonable, mask_fields
from .errors import AccessDenied, ApprovalPending, GuardError, GuardUnavailable
from .model import AccessRequest, Decision, Obligation, Principal
from .ratelimit import subject_key

if TYPE_CHECKING:
    from .approvals import ApprovalBook

#: Called while a call waits: the pending request and the seconds waited so far (progress).
WaitTick = Callable[[ApprovalRequest, float], Awaitable[None]]

__all__ = ["WaitTick", "approve_call"]


def _shown(request: AccessRequest, decision: Decision) -> dict[str, Any]:
    """The arguments as an approver sees them: sensitive keys and the rule's ``redact`` fields masked."""
    shown = jsonable(dict(request.arguments), [], mask_keys=True)
    fields = tuple(
        str(f) for o in decision.obligations if o.kind == "redact" for f in o.params.get("fields", ())
    )
    return mask_fields(shown, fields) if fields else shown


async def approve_call(
    book: ApprovalBook,
    principal: Principal,
    request: AccessRequest,
    decision: Decision,
    obligation: Obligation,
    tick: WaitTick | None = None,
) -> Decision:
    """Let the call run on a usable approval of exactly this call; else refuse it (see module doc)."""
    try:
        pending = await book.open_for(
            subject=principal.subject,
            tenant=principal.tenant,
            server=request.server,
            kind=request.kind,
            target=request.target,
            arguments=request.arguments,
            shown_arguments=_shown(request, decision),
            # The rule(s) that ask for the approval, not necessarily the one that allowed the call.
            rule=", ".join(obligation.params.get("rules", ())) or decision.rule,
            approvers=tuple(obligation.params.get("approvers", ())),
            timeout=float(obligation.params["timeout"]),
            truncated=nesting(dict(request.arguments)) > MAX_DEPTH,
            all_of=tuple(obligation.params.get("all_of", ())),
            person=subject_key(principal),  # two issuers' "gary" are two people
        )
        current: ApprovalRequest | None = pending
        wait = float(obligation.params.get("wait", 0.0))
        if pending.status == "pending" and wait > 0:
            current = await book.wait(pending.id, wait, tick)
        current = current or pending
        used = await book.redeem(current) if current.status == "approved" else None
    except GuardError:
        raise
    except Exception as exc:
        raise GuardUnavailable(f"approval store failed: {exc!r}") from exc
    if used is not None:
        why = f"approved by {used.decided_by} (approval {used.id})"
        return replace(decision, reasons=(*decision.reasons, why), approval=used.audit())
    audited = replace(decision, approval=current.audit())
    if current.status == "denied":
        note = f": {current.note}" if current.note else ""
        denied = AccessDenied(
            f"approval {current.id} denied by {current.decided_by}{note}",
            data={"approvalId": current.id, "status": "denied"},
            decision=audited,
        )
        # The caller asked for this decision and waits for it: the answer and the approver's
        # note (written for the caller, see ``approvals deny --note``) are theirs to read.
        denied.public_message = f"Access denied: approval {current.id} was denied{note}"
        raise denied
    if current.status == "pending":
        raise ApprovalPending(
            f"approval {current.id} pending (approvers: {', '.join(current.approvers)})",
            request_id=current.id,
            expires_at=current.expires_at,
            decision=audited,
        )
    # Expired, or used by a concurrent retry between our read and the redemption: ask again.
    state = "already used" if current.status == "approved" else current.status
    gone = AccessDenied(
        f"approval {current.id} is {state}; retry to request a new one",
        data={"approvalId": current.id, "status": current.status},
        decision=audited,
    )
    gone.public_message = f"Access denied: approval {current.id} is {state}; retry to request a new one"
    raise gone
