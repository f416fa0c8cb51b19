"""An approval given for one person's call is not used by a namesake another issuer vouches for.

Two identity providers (or a tenant's key book and an identity provider) may each name someone
``gary``; budgets, flow marks, in-flight caps and parked calls already treat them as two people
(``subject_key``). An approval binds the caller, server, target and exact arguments: here the
caller must be that same person too, else whoever holds a namesake's credential runs the call
an approver allowed for gary, and fills gary's quota of pending requests.
"""

from __future__ import annotations

from typing import Any

import pytest

from mcp_guard.approvals import ApprovalBook
from mcp_guard.errors import ApprovalPending
from mcp_guard.model import AccessRequest, Decision, Obligation, Principal
from mcp_guard.review import approve_call
from mcp_guard.store import MemoryStore

ARGS = {"amount": 5, "to": "bob"}
GARY = Principal("gary", roles=frozenset({"ops"}), issuer="https://idp-a.example", auth_method="jwt")
NAMESAKE = Principal("gary", roles=frozenset({"ops"}), issuer="https://idp-b.example", auth_method="jwt")
ACME_KEY_GARY = Principal("gary", roles=frozenset({"ops"}), tenant="acme", auth_method="api_key")
ACME_IDP_GARY = Principal("gary", roles=frozenset({"ops"}), tenant="acme", issuer="https://idp-a.example")

OBLIGATION = Obligation("approval", {"approvers": ("admin",), "timeout": 600.0, "rules": ("transfers",)})


async def _ask(book: ApprovalBook, who: Principal, args: dict[str, Any] = ARGS) -> Any:
    request = AccessRequest("tools/call", "call", "bank", "tool", "transfer", args)
    decision = Decision(True, "transfers", obligations=(OBLIGATION,))
    return await approve_call(book, who, request, decision, OBLIGATION)


@pytest.mark.parametrize("owner,other", [(GARY, NAMESAKE), (ACME_IDP_GARY, ACME_KEY_GARY)])
async def test_a_namesake_of_another_issuer_does_not_use_the_persons_approval(
    owner: Principal, other: Principal
) -> None:
    book = ApprovalBook(MemoryStore(), notifiers=())
    with pytest.raises(ApprovalPending) as pending:
        await _ask(book, owner)
    request_id = pending.value.request_id
    await book.decide(request_id, True, by="ada", roles=frozenset({"admin"}), tenant=owner.tenant)

    with pytest.raises(ApprovalPending) as theirs:
        await _ask(book, other)  # a request of their own, not gary's approval
    assert theirs.value.request_id != request_id

    used = await _ask(book, owner)  # gary's approval is still there for gary, once
    assert used.approval["id"] == request_id and used.approval["status"] == "used"


async def test_a_namesake_does_not_fill_the_persons_pending_quota() -> None:
    book = ApprovalBook(MemoryStore(), notifiers=(), max_pending=1)
    with pytest.raises(ApprovalPending):
        await _ask(book, NAMESAKE)
    with pytest.raises(ApprovalPending):  # gary may still ask: the namesake's request is not his
        await _ask(book, GARY, {"amount": 7, "to": "carol"})
