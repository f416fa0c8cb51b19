"""An empty tenant claim names no tenant, for budgets and rate limits as for flows.

Found: a ``per = "tenant"`` budget (and a ``per = ["tenant"]`` limit) counted principals whose token
says ``tenant = ""`` apart from those with no tenant at all, so a caller able to get either kind of
token had two shared budgets where the docs promise one ("a principal without a tenant shares one
tenant budget with every other principal without one, rather than escaping it").
"""

from __future__ import annotations

import pytest

from mcp_guard.budgets import BudgetExhausted, Budgets
from mcp_guard.model import AccessRequest, BudgetCharge, BudgetSpec, Principal
from mcp_guard.ratelimit import DIMENSIONS
from mcp_guard.store import MemoryStore


async def test_an_empty_tenant_shares_the_no_tenant_budget() -> None:
    budgets = Budgets(MemoryStore())
    spec = BudgetSpec("t", 2, 86400, per="tenant")
    await budgets.charge(Principal("alice", tenant=None), [BudgetCharge(spec, 2)])
    with pytest.raises(BudgetExhausted):
        await budgets.charge(Principal("alice", tenant=""), [BudgetCharge(spec, 1)])


def test_an_empty_tenant_is_no_tenant_for_a_rate_limit() -> None:
    request = AccessRequest("tools/call", "call", "s", "tool", "t", {})
    read = DIMENSIONS["tenant"]
    assert read(Principal("a", tenant=""), request) == read(Principal("b", tenant=None), request)
