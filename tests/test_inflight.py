"""The cap on calls in flight per caller and server: admission, release on every ending, config."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mcp import Client
from mcp.shared.exceptions import MCPError

from mcp_guard.config import load_config
from mcp_guard.errors import RATE_LIMITED, ConfigError
from mcp_guard.guard import Guard
from mcp_guard.inflight import InFlight, TooManyInFlight
from mcp_guard.integrations.client import guarded_client
from mcp_guard.model import Principal, RequestContext
from mcp_guard.pipeline import Admitted, Exchange
from mcp_guard.store.memory import MemoryStore

from .helpers import ListAuditor, RolePolicy
from .test_pipeline_outcomes import Probe

ALICE = Principal("alice", roles=frozenset({"analyst"}), auth_method="api_key")
BOB = Principal("bob", roles=frozenset({"analyst"}), auth_method="api_key")


def make_guard(cap: int, auditor: ListAuditor | None = None) -> Guard:
    policy = RolePolicy({"analyst": {"slow", "ok", "boom"}})
    auditor = auditor or ListAuditor()
    return Guard(policy=policy, auditor=auditor, server="probe", max_in_flight_per_caller=cap)


def exchange(tool: str, principal: Principal = ALICE, server: str = "probe", **kw: Any) -> Exchange:
    params = {"name": tool, "arguments": {}}
    context = RequestContext(time=datetime.now(timezone.utc))
    return Exchange("tools/call", params, server, context, principal=principal, **kw)


def answer(_: Admitted) -> Awaitable[Any]:
    async def done() -> dict[str, Any]:
        return {"content": [{"type": "text", "text": "done"}]}

    return done()


def blocked(gate: anyio.Event, started: list[int]) -> Callable[[Admitted], Awaitable[Any]]:
    async def call(_: Admitted) -> dict[str, Any]:
        started.append(1)
        await gate.wait()
        return {"content": [{"type": "text", "text": "done"}]}

    return call


async def wait_for(condition: Callable[[], bool]) -> None:
    with anyio.fail_after(5):
        while not condition():
            await anyio.sleep(0.005)


# ---------------------------------------------------------------------- admission
async def test_a_call_past_the_cap_is_refused_as_rate_limited_and_audited() -> None:
    auditor = ListAuditor()
    guard = make_guard(2, auditor)
    gate, started = anyio.Event(), []
    async with anyio.create_task_group() as tg:
        for _ in range(2):
            tg.start_soon(guard.run, exchange("slow"), blocked(gate, started))
        await wait_for(lambda: len(started) == 2)
        with pytest.raises(MCPError) as refused:
            await guard.run(exchange("ok"), answer)
        # Someone else, and the same caller on another server, still get through.
        assert await guard.run(exchange("ok", BOB), answer)
        assert await guard.run(exchange("ok", server="other"), answer)
        gate.set()
    assert refused.value.error.code == RATE_LIMITED
    assert "2 calls already in flight for you on server 'probe'" in refused.value.error.message
    assert refused.value.error.data == {"inFlight": 2, "limit": 2}
    [event] = [e for e in auditor.events if e.target == "ok" and e.decision == "deny"]
    assert event.outcome == "refused" and event.error_code == RATE_LIMITED
    assert event.principal is not None and event.principal["subject"] == "alice" and event.server == "probe"
    assert "concurrency cap" in event.reasons[0]
    assert guard.in_flight.total() == 0
    assert await guard.run(exchange("ok"), answer)  # the slots came back


async def test_a_cap_of_zero_counts_nothing() -> None:
    guard = make_guard(0)
    gate, started = anyio.Event(), []
    async with anyio.create_task_group() as tg:
        for _ in range(40):
            tg.start_soon(guard.run, exchange("slow"), blocked(gate, started))
        await wait_for(lambda: len(started) == 40)
        assert guard.in_flight.total() == 0
        gate.set()


async def test_the_default_cap_is_on() -> None:
    guard = Guard(policy=RolePolicy({}), server="probe")
    assert guard.in_flight.cap == 32


async def test_a_delegating_run_takes_no_slot_and_its_nested_run_takes_one_on_its_upstream() -> None:
    guard = make_guard(1)
    seen: list[tuple[int, int]] = []

    async def nested(_: Admitted) -> Any:
        seen.append((guard.in_flight.running(ALICE, "portal"), guard.in_flight.running(ALICE, "up")))
        return await answer(_)

    async def outer(_: Admitted) -> Any:
        return await guard.run(exchange("ok", server="up"), nested)

    await guard.run(exchange("ok", server="portal"), outer, delegate=True)
    assert seen == [(0, 1)]
    assert guard.in_flight.total() == 0


async def test_notifications_take_no_slot() -> None:
    guard = make_guard(1)
    gate, started = anyio.Event(), []
    async with anyio.create_task_group() as tg:
        tg.start_soon(guard.run, exchange("slow"), blocked(gate, started))
        await wait_for(lambda: len(started) == 1)
        context = RequestContext(time=datetime.now(timezone.utc))
        note = Exchange("notifications/progress", {"progressToken": 1, "progress": 1}, "probe", context)
        note.principal, note.notification = ALICE, True
        await guard.run(note, answer)
        gate.set()


@pytest.mark.parametrize("mode", ["legacy", "auto"])
@pytest.mark.parametrize("adapter", ["server middleware", "client wrapper"])
async def test_the_sdk_adapters_hold_the_cap_and_give_a_cancelled_calls_slot_back(
    adapter: str, mode: str
) -> None:
    probe, auditor = Probe(), ListAuditor()
    guard = make_guard(1, auditor)
    server = probe.server()
    if adapter == "server middleware":
        guard = Guard(
            policy=guard.policy, auditor=auditor, anonymous=ALICE, server="probe", max_in_flight_per_caller=1
        )
        guard.protect(server, read_env=False)
        opened: Any = Client(server, mode=mode)
    else:
        opened = guarded_client(guard, server, server="probe", principal=ALICE, mode=mode)
    async with opened as session:
        async with anyio.create_task_group() as tg:
            tg.start_soon(session.call_tool, "slow", {})
            await wait_for(probe.started.is_set)
            with pytest.raises(MCPError) as refused:
                await session.call_tool("ok", {})
            tg.cancel_scope.cancel()
        assert refused.value.error.code == RATE_LIMITED
        assert "1 call already in flight for you on server 'probe'" in refused.value.error.message
        await wait_for(lambda: guard.in_flight.total() == 0)
        assert not (await session.call_tool("ok", {})).is_error
    assert not probe.finished
    assert [e.error_code for e in auditor.events if e.decision == "deny"] == [RATE_LIMITED]


# ---------------------------------------------------------------------- release, however the call ends
async def _ends_ok(guard: Guard) -> None:
    await guard.run(exchange("ok"), answer)


async def _ends_with_handler_exception(guard: Guard) -> None:
    async def boom(_: Admitted) -> Any:
        raise RuntimeError("the handler failed")

    with pytest.raises(RuntimeError):
        await guard.run(exchange("boom"), boom)


async def _ends_with_mcp_error(guard: Guard) -> None:
    async def boom(_: Admitted) -> Any:
        raise MCPError(-32010, "the upstream failed")

    with pytest.raises(MCPError):
        await guard.run(exchange("boom"), boom)


async def _ends_cancelled(guard: Guard) -> None:
    gate, started = anyio.Event(), []
    async with anyio.create_task_group() as tg:
        tg.start_soon(guard.run, exchange("slow"), blocked(gate, started))
        await wait_for(lambda: len(started) == 1)
        assert guard.in_flight.running(ALICE, "probe") == 1
        tg.cancel_scope.cancel()  # the caller went away (a client disconnect cancels the same way)


async def _ends_by_timeout(guard: Guard) -> None:
    gate, started = anyio.Event(), []
    with pytest.raises(TimeoutError), anyio.fail_after(0.05):
        await guard.run(exchange("slow"), blocked(gate, started))


async def _ends_with_timeout_error(guard: Guard) -> None:
    async def late(_: Admitted) -> Any:
        raise TimeoutError("upstream did not answer")

    with pytest.raises(TimeoutError):
        await guard.run(exchange("slow"), late)


async def _ends_refused_by_policy(guard: Guard) -> None:
    with pytest.raises(MCPError):
        await guard.run(exchange("forbidden"), answer)


async def _ends_with_policy_failure(guard: Guard) -> None:
    guard.policy.fail = True  # type: ignore[attr-defined]
    with pytest.raises(MCPError):
        await guard.run(exchange("ok"), answer)
    guard.policy.fail = False  # type: ignore[attr-defined]


async def _ends_with_audit_down(guard: Guard) -> None:
    assert isinstance(guard.auditor, ListAuditor)
    guard.auditor.fail = True
    with pytest.raises(MCPError):
        await guard.run(exchange("ok"), answer)
    guard.auditor.fail = False


async def _ends_over_the_cap(guard: Guard) -> None:
    gate, started = anyio.Event(), []
    async with anyio.create_task_group() as tg:
        tg.start_soon(guard.run, exchange("slow"), blocked(gate, started))
        await wait_for(lambda: len(started) == 1)
        with pytest.raises(MCPError):
            await guard.run(exchange("ok"), answer)
        gate.set()


ENDINGS = {
    "success": _ends_ok,
    "handler exception": _ends_with_handler_exception,
    "MCP error": _ends_with_mcp_error,
    "cancelled": _ends_cancelled,
    "timeout": _ends_by_timeout,
    "TimeoutError": _ends_with_timeout_error,
    "refused by policy": _ends_refused_by_policy,
    "policy failure": _ends_with_policy_failure,
    "audit down": _ends_with_audit_down,
    "over the cap": _ends_over_the_cap,
}


@pytest.mark.parametrize("ending", list(ENDINGS))
async def test_the_slot_comes_back_exactly_once_however_the_call_ends(ending: str) -> None:
    guard = make_guard(1)
    await ENDINGS[ending](guard)
    assert guard.in_flight.total() == 0
    assert await guard.run(exchange("ok"), answer)  # a cap of 1: the one slot is free again
    assert guard.in_flight.total() == 0


# ---------------------------------------------------------------------- properties
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("start"), st.sampled_from(["alice", "bob"]), st.sampled_from(["a", "b"])),
        st.tuples(st.sampled_from(["finish", "cancel", "again"]), st.integers(0, 40), st.just("")),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(cap=st.integers(0, 4), ops=OPS)
def test_counters_follow_a_model_and_never_go_negative_or_leak(cap: int, ops: list[tuple[Any, ...]]) -> None:
    counter = InFlight(cap)
    held: list[tuple[Any, tuple[str, str], bool]] = []  # slot, key, released
    model: dict[tuple[str, str], int] = {}
    for op, a, b in ops:
        if op == "start":
            principal = Principal(a)
            try:
                slot = counter.acquire(principal, b)
            except TooManyInFlight:
                assert cap and model.get((a, b), 0) == cap
                continue
            assert cap == 0 or model.get((a, b), 0) < cap
            if slot is not None:
                model[(a, b)] = model.get((a, b), 0) + 1
                held.append((slot, (a, b), False))
        elif held:
            i = a % len(held)
            slot, key, released = held[i]
            slot.release()  # "again": a second release of one already given back
            if not released:
                model[key] -= 1
                held[i] = (slot, key, True)
        for (who, server), count in model.items():
            assert 0 <= counter.running(Principal(who), server) == count <= max(cap, 0)
    for slot, _, _ in held:
        slot.release()
    assert counter.total() == 0 and not counter._counts


@settings(max_examples=40, deadline=None)
@given(cap=st.integers(1, 3), endings=st.lists(st.sampled_from(["ok", "raise", "cancel"]), max_size=8))
def test_slots_never_exceed_the_cap_nor_leak_over_concurrent_calls(cap: int, endings: list[str]) -> None:
    async def scenario() -> None:
        guard = make_guard(cap)
        gate, peak, outcomes = anyio.Event(), [0], {"ran": 0, "refused": 0}

        def call_for(ending: str) -> Callable[[Admitted], Awaitable[Any]]:
            async def call(_: Admitted) -> Any:
                running = guard.in_flight.running(ALICE, "probe")
                peak[0] = max(peak[0], running)
                outcomes["ran"] += 1
                if ending == "cancel":
                    await anyio.sleep_forever()
                await gate.wait()
                if ending == "raise":
                    raise RuntimeError("failed")
                return {"content": []}

            return call

        async def one(ending: str, scope: anyio.CancelScope) -> None:
            with scope:
                try:
                    await guard.run(exchange("slow"), call_for(ending))
                except MCPError as exc:
                    assert exc.error.code == RATE_LIMITED
                    outcomes["refused"] += 1
                except RuntimeError:
                    pass

        scopes = [anyio.CancelScope() for _ in endings]
        async with anyio.create_task_group() as tg:
            for ending, scope in zip(endings, scopes, strict=True):
                tg.start_soon(one, ending, scope)
            await wait_for(lambda: outcomes["ran"] + outcomes["refused"] == len(endings))
            assert 0 <= guard.in_flight.total() <= cap
            for ending, scope in zip(endings, scopes, strict=True):
                if ending == "cancel":
                    scope.cancel()
            gate.set()
        assert peak[0] <= cap
        assert outcomes["ran"] == min(cap, len(endings))
        assert guard.in_flight.total() == 0

    anyio.run(scenario)


# ---------------------------------------------------------------------- keys and config
def test_anonymous_callers_count_per_address_and_people_per_issuer() -> None:
    counter = InFlight(1)
    anon = Principal("anonymous", auth_method="anonymous")
    counter.acquire(anon.with_network("10.0.0.1"), "s")
    counter.acquire(anon.with_network("10.0.0.2"), "s")
    with pytest.raises(TooManyInFlight):
        counter.acquire(anon.with_network("10.0.0.1"), "s")
    counter.acquire(Principal("alice", issuer="https://one"), "s")
    counter.acquire(Principal("alice", issuer="https://two"), "s")
    with pytest.raises(TooManyInFlight):
        counter.acquire(Principal("alice", issuer="https://one").with_network("10.0.0.9"), "s")


def test_a_bad_cap_is_refused() -> None:
    for bad in (-1, True, 2.5):
        with pytest.raises(ValueError):
            InFlight(bad)  # type: ignore[arg-type]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "guard.toml"
    path.write_text(text)
    return path


def test_config_sets_the_cap_and_assembly_passes_it_to_the_guard(tmp_path: Path) -> None:
    assert load_config(_write(tmp_path, "")).portal.max_in_flight_per_caller == 32
    config = load_config(_write(tmp_path, "[portal]\nmax_in_flight_per_caller = 0\n"))
    assert config.portal.max_in_flight_per_caller == 0
    config = load_config(_write(tmp_path, "[portal]\nmax_in_flight_per_caller = 5\n"))
    guard = Guard.from_config(config, store=MemoryStore(), auditor=ListAuditor())
    assert guard.in_flight.cap == 5


@pytest.mark.parametrize(
    ("text", "line", "hint"),
    [
        ("[portal]\nfast_lane = true\nmax_in_flight_per_caller = -1\n", 3, "greater than or equal to 0"),
        ('[portal]\nmax_in_flight_per_caller = "8"\n', 2, "integer"),
        ("[portal]\n\nmax_inflight_per_caller = 8\n", 3, "did you mean `max_in_flight_per_caller`"),
    ],
)
def test_config_errors_name_file_line_field_and_a_hint(
    tmp_path: Path, text: str, line: int, hint: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.line == line
    assert str(info.value.field).startswith("portal.max_in")
    assert str(path) in str(info.value) and hint in str(info.value)
