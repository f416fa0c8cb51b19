"""Budgets under attack: callers trying to share, read or dodge another caller's counter."""

from __future__ import annotations

import pytest

from mcp_guard.budgets import BudgetExhausted, Budgets
from mcp_guard.model import BudgetCharge, BudgetSpec, Principal
from mcp_guard.protocols import StateStore

DAY = 86400


async def test_one_subject_name_from_two_issuers_is_two_callers(store: StateStore) -> None:
    """``alice`` of one identity provider must not spend (or read) ``alice`` of another."""
    budgets = Budgets(store)
    spec = BudgetSpec("s", 4, DAY)
    ours = Principal("alice", tenant="acme", issuer="https://idp.acme.example")
    theirs = Principal("alice", tenant="globex", issuer="https://idp.globex.example")
    await budgets.charge(theirs, [BudgetCharge(spec, 4)])
    usage = await budgets.charge(ours, [BudgetCharge(spec, 1)])
    assert usage[0].used == 1
    with pytest.raises(BudgetExhausted) as info:
        await budgets.charge(theirs, [BudgetCharge(spec, 1)])
    assert info.value.data["used"] == 4  # their own use, never ours added in


async def test_one_issuer_subject_is_one_caller_whatever_its_tenant(store: StateStore) -> None:
    """A person who can pick a tenant per token must not get a fresh subject budget with each."""
    budgets = Budgets(store)
    spec = BudgetSpec("s", 4, DAY)
    first = Principal("alice", tenant="acme", issuer="https://idp.example")
    second = Principal("alice", tenant="globex", issuer="https://idp.example")
    await budgets.charge(first, [BudgetCharge(spec, 4)])
    with pytest.raises(BudgetExhausted):
        await budgets.charge(second, [BudgetCharge(spec, 1)])
