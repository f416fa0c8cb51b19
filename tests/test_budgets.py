"""Policy ``[[budgets]]``: loading, cost globs, charging on allow only, rollover, atomicity, fail closed."""

from __future__ import annotations

import asyncio
import fnmatch
import unicodedata
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mcp import Client
from mcp.shared.exceptions import MCPError

from mcp_guard import errors
from mcp_guard.budgets import BudgetExhausted, Budgets
from mcp_guard.errors import GuardUnavailable, PolicyError
from mcp_guard.guard import Guard
from mcp_guard.model import AccessRequest, BudgetCharge, BudgetSpec, Decision, Principal
from mcp_guard.policy import load_policy_text
from mcp_guard.policy.budgets import CompiledBudget
from mcp_guard.protocols import StateStore
from mcp_guard.store import MemoryStore
from mcp_guard.store._common import period_window

from .helpers import ListAuditor, notes_server

ALICE = Principal("alice", roles=frozenset({"analyst"}), tenant="acme")
BOB = Principal("bob", roles=frozenset({"analyst"}), tenant="acme")
DAY = 86400
#: 2026-12-03 10:00 UTC, a Thursday.
NOON_ISH = 1796292000.0

POLICY = """
version = 1
[[rules]]
id = "notes"
effect = "allow"
roles = ["analyst"]
servers = ["notes"]
tools = ["add", "search_notes"]

[[budgets]]
id = "daily-cost"
per = "subject"
period = "1d"
limit = 10
servers = ["notes"]
tools = ["*"]
roles = ["analyst"]
cost = { "search_*" = 4, "add" = 1 }
"""


def call(tool: str, server: str = "notes") -> AccessRequest:
    return AccessRequest(method="tools/call", action="call", server=server, kind="tool", target=tool)


class Clock:
    def __init__(self, now: float = NOON_ISH) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# ---------------------------------------------------------------------- loading
def test_loads_and_selects_like_rules() -> None:
    policy = load_policy_text(POLICY)
    charges = policy.budgets_for(ALICE, call("search_notes"))
    assert [(c.budget.id, c.cost, c.budget.limit, c.budget.period) for c in charges] == [
        ("daily-cost", 4, 10, DAY)
    ]
    assert policy.budgets_for(ALICE, call("add"))[0].cost == 1
    assert policy.budgets_for(ALICE, call("delete_notes"))[0].cost == 1  # no glob: 1
    assert policy.budgets_for(ALICE, call("add", server="files")) == ()
    assert policy.budgets_for(Principal("eve", roles=frozenset({"viewer"})), call("add")) == ()


@pytest.mark.parametrize(
    ("snippet", "where", "message"),
    [
        ('period = "1d"\nlimit = 0\n', ":4: budgets[0].limit", "greater than 0"),
        ('period = "1 fortnight"\nlimit = 5\n', ":3: budgets[0].period", "invalid period '1 fortnight'"),
        ('period = "1d"\nlimit = 5\nper = "server"\n', ":5: budgets[0].per", "'subject' or 'tenant'"),
        ('period = "1d"\nlimit = 5\ncost = { "gen_*" = 9 }\n', ":5: budgets[0].cost", "calls never run"),
        ('period = "1d"\nlimit = 5\ncost = { "gen_*" = -1 }\n', ":5: budgets[0].cost", "or equal to 0"),
        ('period = "1d"\nlimit = 5\nlimt = 3\n', ":5: budgets[0].limt", "did you mean `limit`"),
        ('period = "1d"\nlimit = 5\nwhen = "true"\n', ":5: budgets[0].when", "unknown field 'when'"),
        ("limit = 5\n", ":1: budgets[0].period", "required field is missing"),
    ],
)
def test_loader_errors_name_file_line_and_field(snippet: str, where: str, message: str) -> None:
    text = '[[budgets]]\nid = "b"\n' + snippet
    with pytest.raises(PolicyError) as info:
        load_policy_text(text, source="budgets.toml")
    shown = str(info.value)
    assert shown.startswith("budgets.toml" + where) and message in shown, shown


def test_duplicate_budget_id_is_refused() -> None:
    text = '[[budgets]]\nid = "b"\nperiod = 60\nlimit = 1\n[[budgets]]\nid = "b"\nperiod = 60\nlimit = 2\n'
    with pytest.raises(PolicyError, match="duplicate budget id 'b'"):
        load_policy_text(text, source="p.toml")


# ---------------------------------------------------------------------- cost globs vs an oracle
GLOB_PARTS = st.sampled_from(["a", "b", "_", "*", "?", "[ab]", "é", "é"])
NAMES = st.text(alphabet=st.sampled_from("ab_xé"), max_size=5)


def oracle_cost(table: list[tuple[str, int]], name: str) -> int:
    norm = unicodedata.normalize("NFC", name)
    for pattern, units in table:
        if fnmatch.fnmatchcase(norm, unicodedata.normalize("NFC", pattern)):
            return units
    return 1


@settings(max_examples=300, deadline=None)
@given(
    table=st.lists(
        st.tuples(st.lists(GLOB_PARTS, min_size=1, max_size=4).map("".join), st.integers(0, 9)), max_size=5
    ),
    name=NAMES,
)
def test_cost_is_the_first_matching_glob(table: list[tuple[str, int]], name: str) -> None:
    spec = BudgetSpec("b", 100, 60, cost=tuple(table))
    assert CompiledBudget(spec, 0, {}).cost_of(name) == oracle_cost(table, name)


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(["alice", "bob"]), st.integers(0, 4), st.integers(0, 2 * DAY)), max_size=40
    ),
    limit=st.integers(1, 12),
)
def test_accounting_matches_an_oracle(steps: list[tuple[str, int, int]], limit: int) -> None:
    """Random callers, costs and clock jumps: admitted exactly when the oracle's window has room."""
    spec = BudgetSpec("b", limit, 3600)
    clock = Clock()
    budgets = Budgets(MemoryStore(), clock=clock)
    used: dict[tuple[str, int], int] = {}

    async def run() -> None:
        for who, cost, advance in steps:
            clock.now += advance
            window = period_window(clock.now, 3600)[0]
            spent = used.get((who, window), 0)
            ok = spent + cost <= limit
            try:
                await budgets.charge(Principal(who), [BudgetCharge(spec, cost)])
                assert ok
                used[(who, window)] = spent + cost
            except BudgetExhausted:
                assert not ok

    asyncio.run(run())


# ---------------------------------------------------------------------- windows
def test_periods_align_to_utc() -> None:
    assert period_window(NOON_ISH, DAY) == (1796256000, 1796342400)  # midnight to midnight UTC
    start, _ = period_window(NOON_ISH, 7 * DAY)
    assert start == 1795996800  # Monday 2026-11-30 00:00 UTC
    assert period_window(NOON_ISH, 3600)[0] == NOON_ISH


async def test_rollover_resets_the_budget_with_a_fake_clock() -> None:
    clock = Clock()
    budgets = Budgets(MemoryStore(), clock=clock)
    spec = BudgetSpec("daily", 3, DAY)
    for _ in range(3):
        await budgets.charge(ALICE, [BudgetCharge(spec, 1)])
    with pytest.raises(BudgetExhausted) as info:
        await budgets.charge(ALICE, [BudgetCharge(spec, 1)])
    assert info.value.data is not None
    assert info.value.data["resetsAt"] == "2026-12-04T00:00:00Z"
    assert info.value.retry_after == pytest.approx(14 * 3600)
    clock.now = 1796342400 - 1  # one second before midnight: still spent
    with pytest.raises(BudgetExhausted):
        await budgets.charge(ALICE, [BudgetCharge(spec, 1)])
    clock.now = 1796342400  # midnight UTC: a new day
    usage = await budgets.charge(ALICE, [BudgetCharge(spec, 1)])
    assert usage[0].used == 1 and usage[0].resets_at == 1796342400 + DAY


# ---------------------------------------------------------------------- every store
async def test_several_budgets_are_charged_all_or_nothing(store: StateStore) -> None:
    budgets = Budgets(store)
    wide, narrow = BudgetSpec("wide", 100, DAY), BudgetSpec("narrow", 5, DAY)
    await budgets.charge(ALICE, [BudgetCharge(wide, 3), BudgetCharge(narrow, 3)])
    with pytest.raises(BudgetExhausted) as info:
        await budgets.charge(ALICE, [BudgetCharge(wide, 3), BudgetCharge(narrow, 3)])
    assert "'narrow' exhausted: 3/5" in info.value.reason and "wide" not in info.value.reason
    usage = await budgets.usage(ALICE, [BudgetCharge(wide, 0), BudgetCharge(narrow, 0)])
    assert [u.used for u in usage] == [3, 3]  # the refused call spent nothing of "wide"


async def test_per_tenant_is_shared_and_per_subject_is_not(store: StateStore) -> None:
    budgets = Budgets(store)
    tenant, subject = BudgetSpec("t", 4, DAY, per="tenant"), BudgetSpec("s", 4, DAY)
    await budgets.charge(ALICE, [BudgetCharge(tenant, 3), BudgetCharge(subject, 3)])
    with pytest.raises(BudgetExhausted, match="tenant=acme"):
        await budgets.charge(BOB, [BudgetCharge(tenant, 2)])
    await budgets.charge(BOB, [BudgetCharge(subject, 3)])


async def test_concurrent_calls_never_exceed_the_budget(store: StateStore) -> None:
    budgets = Budgets(store)
    spec = BudgetSpec("c", 25, DAY)
    outcomes: list[bool] = []

    async def one() -> None:
        try:
            await budgets.charge(ALICE, [BudgetCharge(spec, 2)])
            outcomes.append(True)
        except BudgetExhausted:
            outcomes.append(False)

    await asyncio.gather(*(one() for _ in range(40)))
    assert outcomes.count(True) == 12  # 12 * 2 = 24 <= 25 < 26
    assert (await budgets.usage(ALICE, [BudgetCharge(spec, 0)]))[0].used == 24


class BrokenStore(MemoryStore):
    async def spend_many(self, items: Any, now: float) -> Any:
        raise ConnectionError("store down")


class PlainStore:
    """Only the protocol's ``get`` / ``incr``: the fallback that increments and refunds."""

    def __init__(self) -> None:
        self.inner = MemoryStore()

    async def get(self, key: str) -> bytes | None:
        return await self.inner.get(key)

    async def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        return await self.inner.incr(key, amount, ttl)


async def test_a_store_without_spend_many_never_overspends() -> None:
    budgets = Budgets(PlainStore())  # type: ignore[arg-type]
    a, b = BudgetSpec("a", 10, DAY), BudgetSpec("b", 3, DAY)
    await budgets.charge(ALICE, [BudgetCharge(a, 2), BudgetCharge(b, 2)])
    with pytest.raises(BudgetExhausted):
        await budgets.charge(ALICE, [BudgetCharge(a, 2), BudgetCharge(b, 2)])
    usage = await budgets.usage(ALICE, [BudgetCharge(a, 0), BudgetCharge(b, 0)])
    assert [u.used for u in usage] == [2, 2]  # refunded


# ---------------------------------------------------------------------- through the guard
def guarded(store: Any = None, clock: Clock | None = None) -> tuple[Any, Guard, ListAuditor]:
    server = notes_server()
    auditor = ListAuditor()
    guard = Guard(policy=load_policy_text(POLICY), auditor=auditor, anonymous=ALICE, store=store)
    if clock is not None:
        guard.budgets = Budgets(guard.budgets.store, clock=clock)
    guard.protect(server, read_env=False)
    return server, guard, auditor


async def test_guard_charges_allowed_calls_and_refuses_clearly() -> None:
    server, _, auditor = guarded(clock=Clock())
    async with Client(server, mode="legacy") as client:
        for _ in range(2):
            await client.call_tool("search_notes", {"query": "x"})  # 4 + 4
        with pytest.raises(MCPError) as denied:
            await client.call_tool("delete_notes", {"query": "x"})  # denied by policy: free
        assert denied.value.code == errors.ACCESS_DENIED
        await client.call_tool("add", {"a": 1, "b": 2})  # 9
        with pytest.raises(MCPError) as refused:
            await client.call_tool("search_notes", {"query": "x"})  # 9 + 4 > 10
        await client.call_tool("add", {"a": 1, "b": 2})  # 10: a cheaper call still fits
    error = refused.value
    assert error.code == errors.RATE_LIMITED
    assert "'daily-cost' exhausted: 9/10 units used, this call costs 4" in error.error.message
    assert "resets at 2026-12-04T00:00:00Z" in error.error.message
    data = error.error.data
    assert data["budget"] == "daily-cost" and data["used"] == 9 and data["limit"] == 10
    assert data["retryAfter"] == pytest.approx(14 * 3600, abs=1)
    calls = [e for e in auditor.events if e.method == "tools/call"]
    assert [e.decision for e in calls] == ["allow", "allow", "deny", "allow", "deny", "allow"]
    refusal = calls[4]
    assert refusal.rule == "notes" and any("budget 'daily-cost' exhausted" in r for r in refusal.reasons)
    assert any("subject=alice" in r for r in refusal.reasons)
    assert any("budget 'daily-cost': 10/10 used after this call (cost 1)" in r for r in calls[5].reasons)


async def test_guard_fails_closed_when_the_store_errors() -> None:
    server, guard, auditor = guarded()
    guard.budgets = Budgets(BrokenStore())
    async with Client(server, mode="legacy") as client:
        with pytest.raises(MCPError) as info:
            await client.call_tool("add", {"a": 1, "b": 2})
    assert info.value.code == errors.GUARD_UNAVAILABLE
    event = next(e for e in auditor.events if e.method == "tools/call")
    assert event.decision == "error" and "budget accounting failed" in event.reasons[0]


async def test_budget_errors_are_guard_errors() -> None:
    with pytest.raises(GuardUnavailable):
        await Budgets(BrokenStore()).usage(ALICE, [BudgetCharge(BudgetSpec("x", 1, 60), 0)])


def test_the_documented_budgets_load_and_price_as_documented() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "policy.md").read_text()
    (block,) = [b for b in doc.split("```toml\n")[1:] if b.startswith("[[budgets]]")]
    policy = load_policy_text(block.split("```", 1)[0], source="docs/policy.md")
    analyst = Principal("alice", roles=frozenset({"analyst"}), tenant="acme")
    charges = {c.budget.id: c.cost for c in policy.budgets_for(analyst, call("generate_report", "any"))}
    assert charges == {"daily-cost": 10, "tenant-calls": 1}
    assert policy.budgets_for(analyst, call("other", "any"))[0].cost == 1


async def test_an_approved_call_is_charged_once_and_no_approval_is_asked_past_the_budget() -> None:
    from mcp_guard.policy import policy_from_dict

    rule = {
        "id": "transfers",
        "effect": "allow",
        "tools": ["add"],
        "approval": {"approvers": ["admin"], "timeout": "10m"},
    }
    budget = {"id": "one-a-day", "period": "1d", "limit": 1}
    server, auditor = notes_server(), ListAuditor()
    policy = policy_from_dict({"rules": [rule], "budgets": [budget]})
    guard = Guard(policy=policy, auditor=auditor, anonymous=ALICE)
    guard.protect(server, read_env=False)
    charge = [BudgetCharge(BudgetSpec("one-a-day", 1, DAY), 0)]
    async with Client(server, mode="legacy") as client:
        with pytest.raises(MCPError) as pending:
            await client.call_tool("add", {"a": 1, "b": 2})
        assert pending.value.error.code == errors.APPROVAL_PENDING
        assert (await guard.budgets.usage(ALICE, charge))[0].used == 0  # waiting costs nothing
        request_id = pending.value.error.data["approvalId"]
        await guard.approvals.decide(request_id, True, by="ada", roles=frozenset({"admin"}), tenant="acme")
        await client.call_tool("add", {"a": 1, "b": 2})
        assert (await guard.budgets.usage(ALICE, charge))[0].used == 1
        with pytest.raises(MCPError) as refused:
            await client.call_tool("add", {"a": 1, "b": 2})
    assert refused.value.error.code == errors.RATE_LIMITED  # refused before asking anyone
    assert await guard.approvals.list() == []


async def test_every_store_starts_a_new_period_at_the_window_end(store: StateStore) -> None:
    """Real clocks (Redis reads its own): spent in one 2 s window, room again in the next."""
    import time

    budgets = Budgets(store)
    spec = BudgetSpec("short", 1, 2)
    (first,) = await budgets.charge(ALICE, [BudgetCharge(spec, 0)])
    if first.resets_at - time.time() < 0.8:  # too close to a boundary to spend and be refused in it
        await asyncio.sleep(max(first.resets_at - time.time(), 0) + 0.05)
    (spent,) = await budgets.charge(ALICE, [BudgetCharge(spec, 1)])
    with pytest.raises(BudgetExhausted):
        await budgets.charge(ALICE, [BudgetCharge(spec, 1)])
    await asyncio.sleep(max(spent.resets_at - time.time(), 0) + 0.05)
    (again,) = await budgets.charge(ALICE, [BudgetCharge(spec, 1)])
    assert again.used == 1 and again.resets_at == spent.resets_at + 2


def test_a_chain_of_engines_charges_each_budget_once() -> None:
    from mcp_guard.policy import ChainedPolicy

    base = load_policy_text(POLICY)
    team = load_policy_text('[[budgets]]\nid = "team"\nperiod = "1h"\nlimit = 5\n')
    chain = ChainedPolicy([base, team, base])
    assert [(c.budget.id, c.cost) for c in chain.budgets_for(ALICE, call("search_notes"))] == [
        ("daily-cost", 4),
        ("team", 1),
    ]


async def test_a_free_call_never_touches_the_store() -> None:
    policy = load_policy_text('[[budgets]]\nid = "b"\nperiod = 60\nlimit = 1\ncost = { "add" = 0 }\n')
    budgets = Budgets(BrokenStore())  # any store access would fail the call
    decision = await budgets.admit(policy, ALICE, call("add"), Decision.allow("r"))
    assert decision.reasons == ()
    with pytest.raises(GuardUnavailable):
        await budgets.admit(policy, ALICE, call("search_notes"), Decision.allow("r"))


async def test_a_call_refused_for_want_of_audit_is_not_charged() -> None:
    server, guard, auditor = guarded()
    async with Client(server, mode="legacy") as client:
        auditor.fail = True
        with pytest.raises(MCPError) as info:
            await client.call_tool("add", {"a": 1, "b": 2})
    assert info.value.code == errors.GUARD_UNAVAILABLE
    spec = load_policy_text(POLICY).budgets_for(ALICE, call("add"))[0].budget
    assert (await guard.budgets.usage(ALICE, [BudgetCharge(spec, 0)]))[0].used == 0
