"""Budgets under attack: callers trying to share, read or dodge another caller's counter."""

from __future__ import annotations

import threading
import time
from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mcp import Client
from mcp.shared.exceptions import MCPError

from mcp_guard.budgets import BudgetExhausted, Budgets
from mcp_guard.guard import Guard
from mcp_guard.model import BudgetCharge, BudgetSpec, Principal
from mcp_guard.policy import load_policy_text
from mcp_guard.protocols import StateStore
from mcp_guard.store import MemoryStore, open_store

from .helpers import ListAuditor
from .test_pipeline_outcomes import Probe, cancel_while_running, events_for

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


# ---------------------------------------------------------------------- cancelling around the charge
POLICY = """
version = 1
[[rules]]
id = "probe"
effect = "allow"
roles = ["analyst"]
tools = ["ok", "slow", "boom"]

[[budgets]]
id = "calls"
per = "subject"
period = "1d"
limit = 5
"""

ALICE = Principal("alice", roles=frozenset({"analyst"}))


class SlowReplyStore(MemoryStore):
    """A store whose charge lands at once but whose reply is slow (a distant Redis)."""

    def __init__(self) -> None:
        super().__init__()
        self.charged = threading.Event()

    async def spend_many(self, items: Any, now: float) -> Any:
        out = await super().spend_many(items, now)
        self.charged.set()
        await anyio.sleep(0.3)
        return out


def probe_guard(store: Any) -> tuple[Probe, Any, ListAuditor]:
    probe, auditor = Probe(), ListAuditor()
    server = probe.server()
    guard = Guard(
        policy=load_policy_text(POLICY), auditor=auditor, anonymous=ALICE, server="probe", store=store
    )
    guard.protect(server, read_env=False)
    return probe, server, auditor


async def used(store: Any) -> int:
    spec = load_policy_text(POLICY).budgets[0].spec
    return (await Budgets(store).usage(ALICE, [BudgetCharge(spec, 0)]))[0].used


async def test_a_call_cancelled_while_it_runs_still_names_its_charge() -> None:
    store = MemoryStore()
    probe, server, auditor = probe_guard(store)
    async with Client(server, mode="legacy") as client:
        await cancel_while_running(probe, lambda: client.call_tool("slow", {}))
        [event] = await events_for(auditor, "slow")
    assert (event.decision, event.outcome) == ("allow", "cancelled")
    assert await used(store) == 1
    assert any("budget 'calls': 1/5 used after this call" in r for r in event.reasons)
    assert any("cancelled by the caller" in r for r in event.reasons)


async def test_a_call_cancelled_while_it_is_charged_is_recorded_as_charged() -> None:
    """Cancelled between the store taking the charge and its reply: the trail must show the charge."""
    store = SlowReplyStore()
    probe, server, auditor = probe_guard(store)
    probe.started = store.charged  # cancel once the charge has landed, before the reply
    async with Client(server, mode="legacy") as client:
        await cancel_while_running(probe, lambda: client.call_tool("ok", {}))
        [event] = await events_for(auditor, "ok")
    assert await used(store) == 1
    # Charged, so admitted: whether the cancellation still stopped the call or came too late.
    assert event.decision == "allow" and event.outcome in ("cancelled", "ok")
    assert any("budget 'calls': 1/5 used after this call" in r for r in event.reasons)


async def test_an_admitted_call_that_fails_still_names_its_charge() -> None:
    store = MemoryStore()
    _, server, auditor = probe_guard(store)
    async with Client(server, mode="legacy") as client:
        with pytest.raises(MCPError):
            await client.call_tool("boom", {})
    [event] = await events_for(auditor, "boom")
    assert (event.decision, event.outcome) == ("allow", "handler_error")
    assert event.reasons[0].startswith("handler raised")
    assert any("budget 'calls': 1/5 used after this call" in r for r in event.reasons)


# ---------------------------------------------------------------------- a store with only incr
class FlakyPlainStore:
    """Only ``get`` / ``incr`` (a plugin store), failing on one counter."""

    def __init__(self, failing: str) -> None:
        self.inner = MemoryStore()
        self.failing = failing

    async def get(self, key: str) -> bytes | None:
        return await self.inner.get(key)

    async def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        if self.failing in key and amount > 0:
            raise ConnectionError("store down")
        return await self.inner.incr(key, amount, ttl)


async def test_a_store_failing_midway_through_a_charge_keeps_nothing_of_it() -> None:
    """The call is refused (the store failed), so the counters charged before the failure give back."""
    store = FlakyPlainStore("second")
    budgets = Budgets(store)  # type: ignore[arg-type]
    first, second = BudgetSpec("first", 10, DAY), BudgetSpec("second", 10, DAY)
    with pytest.raises(ConnectionError):
        await budgets.charge(ALICE, [BudgetCharge(first, 3), BudgetCharge(second, 3)])
    assert (await Budgets(store.inner).usage(ALICE, [BudgetCharge(first, 0)]))[0].used == 0


class HangingStore(MemoryStore):
    async def spend_many(self, items: Any, now: float) -> Any:
        await anyio.sleep(3600)


async def test_a_store_that_hangs_cannot_hold_a_cancelled_charge_forever() -> None:
    budgets = Budgets(HangingStore())
    budgets.store_deadline = 0.2
    with pytest.raises(TimeoutError), anyio.move_on_after(0.05):
        await budgets.charge(ALICE, [BudgetCharge(BudgetSpec("s", 4, DAY), 1)])


# ---------------------------------------------------------------------- counter keys
_names = st.one_of(
    st.none(), st.text(max_size=12), st.sampled_from(["a", "a:b", "b", "~", "#", "a@1", ":", "a=b"])
)


@settings(max_examples=300, deadline=None)
@given(
    one=st.tuples(st.text(max_size=12), _names, _names),
    two=st.tuples(st.text(max_size=12), _names, _names),
)
def test_distinct_callers_never_share_a_counter_key(
    one: tuple[str, str | None, str | None], two: tuple[str, str | None, str | None]
) -> None:
    """Separators in names (``:``, ``=``, ``@``) cannot make two callers share or read one counter."""
    budgets = Budgets(MemoryStore())
    a = Principal(one[0], tenant=one[1], issuer=one[2])
    b = Principal(two[0], tenant=two[1], issuer=two[2])
    for per in ("subject", "tenant"):
        spec = BudgetSpec("s", 4, DAY, per=per)
        same_tenant = (a.tenant or None) == (b.tenant or None)  # an empty claim names no tenant
        same = (a.subject, a.issuer) == (b.subject, b.issuer) if per == "subject" else same_tenant
        assert (budgets.key(spec, a) == budgets.key(spec, b)) == same


# ---------------------------------------------------------------------- replicas with skewed clocks
async def test_replicas_with_skewed_clocks_share_one_redis_window(redis_url: str | None) -> None:
    """A replica whose clock runs a day ahead must not open tomorrow's budget today (Redis keeps time)."""
    if redis_url is None:
        pytest.skip("redis-server not installed")
    store = open_store(f"{redis_url}?prefix=skew:")
    try:
        spec = BudgetSpec("s", 3, DAY)
        now = time.time()
        honest, ahead = Budgets(store, clock=lambda: now), Budgets(store, clock=lambda: now + DAY)
        await honest.charge(ALICE, [BudgetCharge(spec, 2)])
        with pytest.raises(BudgetExhausted):
            await ahead.charge(ALICE, [BudgetCharge(spec, 2)])
        assert (await ahead.usage(ALICE, [BudgetCharge(spec, 0)]))[0].used == 2
    finally:
        await store.aclose()
