"""Behaviour every built-in state store shares: memory, SQLite and (when installed) Redis."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_guard.protocols import StateStore
from mcp_guard.store import MemoryStore, SQLiteStore

_prefixes = itertools.count()


def test_every_store_satisfies_the_protocol(tmp_path: Path) -> None:
    assert isinstance(MemoryStore(), StateStore)
    assert isinstance(SQLiteStore(tmp_path / "s.db"), StateStore)


async def test_get_set_delete(store: StateStore) -> None:
    assert await store.get("a") is None
    await store.set("a", b"\x00bytes\xff")
    assert await store.get("a") == b"\x00bytes\xff"
    await store.set("a", b"new")
    assert await store.get("a") == b"new"
    await store.delete("a")
    assert await store.get("a") is None
    await store.delete("never-there")


async def test_ttl_expires(store: StateStore) -> None:
    await store.set("short", b"x", ttl=0.15)
    await store.set("long", b"y", ttl=30)
    assert await store.get("short") == b"x"
    await asyncio.sleep(0.3)
    assert await store.get("short") is None
    assert await store.get("long") == b"y"


async def test_non_positive_ttl_means_already_expired(store: StateStore) -> None:
    await store.set("gone", b"x", ttl=0)
    assert await store.get("gone") is None


async def test_incr_counts_and_sets_ttl_only_on_creation(store: StateStore) -> None:
    assert await store.incr("n") == 1
    assert await store.incr("n", 5) == 6
    assert await store.incr("n", -2) == 4
    assert await store.get("n") == b"4"
    assert await store.incr("t", ttl=0.2) == 1
    assert await store.incr("t", ttl=100) == 2  # the first ttl stays
    await asyncio.sleep(0.35)
    assert await store.get("t") is None
    assert await store.incr("t") == 1


async def test_set_if_absent_and_take(store: StateStore) -> None:
    set_if_absent = store.set_if_absent  # type: ignore[attr-defined]
    take = store.take  # type: ignore[attr-defined]
    assert await set_if_absent("once", b"first") is True
    assert await set_if_absent("once", b"second") is False
    assert await store.get("once") == b"first"
    assert await take("once") == b"first"
    assert await take("once") is None
    assert await set_if_absent("brief", b"1", ttl=0.1) is True
    await asyncio.sleep(0.25)
    assert await set_if_absent("brief", b"2") is True
    assert await store.get("brief") == b"2"


async def test_take_redeems_once_under_concurrency(store: StateStore) -> None:
    await store.set("nonce", b"n")
    results = await asyncio.gather(*(store.take("nonce") for _ in range(20)))  # type: ignore[attr-defined]
    assert results.count(b"n") == 1


async def test_keys_lists_values_and_sets_by_prefix(store: StateStore) -> None:
    await store.set("pin:srv:a", b"1")
    await store.set("pin:srv:b", b"2")
    await store.set("pin:other", b"3", ttl=0)
    await store.sadd("pin:set", "m")
    await store.set("pin*[x]?", b"glob")
    await store.set("api:k", b"4")
    keys = store.keys  # type: ignore[attr-defined]
    assert await keys("pin:srv:") == ["pin:srv:a", "pin:srv:b"]
    assert await keys("pin:") == ["pin:set", "pin:srv:a", "pin:srv:b"]
    assert await keys("pin*[") == ["pin*[x]?"]
    assert "api:k" in await keys("")


async def test_sets(store: StateStore) -> None:
    assert await store.smembers("rev") == set()
    await store.sadd("rev", "jti-1")
    await store.sadd("rev", "jti-2")
    await store.sadd("rev", "jti-1")
    assert await store.sismember("rev", "jti-1")
    assert not await store.sismember("rev", "jti-3")
    assert await store.smembers("rev") == {"jti-1", "jti-2"}
    await store.srem("rev", "jti-1")
    assert await store.smembers("rev") == {"jti-2"}
    await store.delete("rev")
    assert await store.smembers("rev") == set()


async def test_hit_allows_exactly_limit_then_denies_with_retry_after(store: StateStore) -> None:
    outcomes = [await store.hit("k", 5, 30) for _ in range(8)]
    assert [d.allowed for d in outcomes] == [True] * 5 + [False] * 3
    assert [d.count for d in outcomes[:5]] == [1, 2, 3, 4, 5]
    assert all(d.limit == 5 for d in outcomes)
    assert all(0 < d.retry_after <= 30 for d in outcomes[5:])
    assert all(d.retry_after == 0 for d in outcomes[:5])


async def test_hit_window_slides(store: StateStore) -> None:
    assert (await store.hit("w", 2, 0.3)).allowed
    assert (await store.hit("w", 2, 0.3)).allowed
    denied = await store.hit("w", 2, 0.3)
    assert not denied.allowed and denied.retry_after <= 0.3
    await asyncio.sleep(0.4)
    assert (await store.hit("w", 2, 0.3)).allowed


async def test_hit_zero_limit_denies_everything(store: StateStore) -> None:
    decision = await store.hit("z", 0, 10)
    assert not decision.allowed and decision.retry_after > 0


async def test_hit_is_exact_under_concurrency(store: StateStore) -> None:
    results = await asyncio.gather(*(store.hit("c", 10, 60) for _ in range(60)))
    assert sum(d.allowed for d in results) == 10


async def test_hit_many_is_all_or_nothing(store: StateStore) -> None:
    hit_many = store.hit_many  # type: ignore[attr-defined]
    first = await hit_many([("wide", 5, 60), ("narrow", 1, 60)])
    assert [d.allowed for d in first] == [True, True]
    assert [d.count for d in first] == [1, 1]
    second = await hit_many([("wide", 5, 60), ("narrow", 1, 60)])
    assert [d.allowed for d in second] == [True, False]
    assert second[1].retry_after > 0
    # the refused call spent nothing of "wide": four more fit
    assert [(await store.hit("wide", 5, 60)).allowed for _ in range(5)] == [True] * 4 + [False]


async def test_publish_reaches_subscribers_in_order(store: StateStore) -> None:
    received: list[str] = []

    async def listen() -> None:
        async for message in store.subscribe("policy"):
            received.append(message)
            if len(received) == 3:
                return

    task = asyncio.create_task(listen())
    await asyncio.sleep(0.3)
    await store.publish("other", "ignored")
    for message in ("reload", "approve:x", "reload"):
        await store.publish("policy", message)
    await asyncio.wait_for(task, 5)
    assert received == ["reload", "approve:x", "reload"]


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@settings(max_examples=60, deadline=None)
@given(
    limit=st.integers(min_value=0, max_value=6),
    window=st.sampled_from([1.0, 2.5, 10.0]),
    steps=st.lists(st.sampled_from([0.0, 0.1, 0.5, 1.0, 2.5, 3.0]), min_size=1, max_size=40),
)
def test_sliding_window_matches_reference_model(limit: int, window: float, steps: list[float]) -> None:
    """At any moment, admitted calls within the last ``window`` seconds never exceed ``limit``,
    and a call is admitted whenever fewer than ``limit`` were admitted in that window."""

    async def run() -> None:
        clock = _Clock()
        store = MemoryStore(clock=clock)
        admitted: list[float] = []
        for step in steps:
            clock.now += step
            recent = [t for t in admitted if t > clock.now - window]
            decision = await store.hit("k", limit, window)
            assert decision.allowed == (len(recent) < limit)
            if decision.allowed:
                admitted.append(clock.now)
                assert decision.count == len(recent) + 1
            else:
                expected = min(recent) + window - clock.now if recent else window
                assert decision.retry_after == pytest.approx(expected)

    asyncio.run(run())


@settings(max_examples=25, deadline=None)
@given(
    limit=st.integers(min_value=1, max_value=4),
    steps=st.lists(st.sampled_from([0.0, 0.4, 1.0, 2.0]), min_size=1, max_size=25),
)
def test_sqlite_window_matches_memory_window(
    tmp_path_factory: pytest.TempPathFactory, limit: int, steps: list[float]
) -> None:
    async def run() -> None:
        clock = _Clock()
        memory = MemoryStore(clock=clock)
        sqlite = SQLiteStore(tmp_path_factory.mktemp("prop") / "s.db", clock=clock)
        try:
            for step in steps:
                clock.now += step
                a = await memory.hit_many([("x", limit, 2.0), ("y", limit + 1, 1.0)])
                b = await sqlite.hit_many([("x", limit, 2.0), ("y", limit + 1, 1.0)])
                assert a == b
        finally:
            await sqlite.aclose()

    asyncio.run(run())


async def test_hit_many_refuses_a_key_listed_twice(store: StateStore) -> None:
    with pytest.raises(ValueError, match="twice"):
        await store.hit_many([("d", 5, 60), ("d", 1, 60)])  # type: ignore[attr-defined]
    assert (await store.hit("d", 1, 60)).allowed  # nothing was counted


_key = st.text(alphabet="ab:*[\U0010ffff", max_size=4)
_op = st.one_of(
    st.tuples(st.just("set"), _key, st.binary(max_size=3), st.sampled_from([None, 0.5, 5.0])),
    st.tuples(st.just("delete"), _key),
    st.tuples(st.just("sadd"), _key, st.sampled_from(["m", "n"])),
    st.tuples(st.just("srem"), _key, st.sampled_from(["m", "n"])),
    st.tuples(st.just("incr"), _key, st.integers(-3, 3)),
    st.tuples(st.just("take"), _key),
    st.tuples(st.just("set_if_absent"), _key, st.binary(max_size=3)),
    st.tuples(st.just("tick"), st.sampled_from([0.1, 1.0])),
)


@settings(max_examples=40, deadline=None)
@given(ops=st.lists(_op, max_size=30), prefix=_key)
def test_sqlite_agrees_with_memory_on_values_sets_and_listing(
    tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[object, ...]], prefix: str
) -> None:
    async def run() -> None:
        clock = _Clock()
        memory = MemoryStore(clock=clock)
        sqlite = SQLiteStore(tmp_path_factory.mktemp("agree") / "s.db", clock=clock)
        stores: tuple[Any, Any] = (memory, sqlite)
        try:
            for op in ops:
                name, *args = op
                if name == "tick":
                    clock.now += args[0]  # type: ignore[operator]
                    continue
                outcomes = []
                for s in stores:
                    try:
                        outcomes.append(("ok", await getattr(s, str(name))(*args)))
                    except ValueError:  # incr on a non-integer value
                        outcomes.append(("error", None))
                assert outcomes[0] == outcomes[1], op
            for s in stores:
                assert isinstance(s, (MemoryStore, SQLiteStore))
            assert await memory.keys(prefix) == await sqlite.keys(prefix)
            for key in await memory.keys(""):
                assert await memory.get(key) == await sqlite.get(key)
                assert await memory.smembers(key) == await sqlite.smembers(key)
        finally:
            await sqlite.aclose()

    asyncio.run(run())
