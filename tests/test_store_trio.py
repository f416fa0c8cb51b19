"""The state stores under trio: memory and SQLite work there; Redis refuses clearly.

redis-py's async client is built on asyncio, so the Redis store cannot run
under trio; it must say so at once instead of hanging, failing closed with a
misleading "store unavailable", or crashing inside redis-py. Every scenario
also runs under asyncio, which proves the scenario itself is right.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import pytest

from mcp_guard.errors import GuardUnavailable
from mcp_guard.protocols import StateStore
from mcp_guard.store import MemoryStore, SQLiteStore, open_store

from .redis_server import RedisServer

pytest.importorskip("trio")

BACKENDS = ["asyncio", "trio"]
NEEDS_ASYNCIO = "the redis store needs the asyncio backend: redis-py's asyncio client does not run under trio"


def run(fn: Callable[[], Awaitable[None]], backend: str, timeout: float = 20.0) -> None:
    """Run ``fn`` on ``backend``; a hang fails the test instead of stalling the run."""

    async def bounded() -> None:
        with anyio.fail_after(timeout):
            await fn()

    anyio.run(bounded, backend=backend)


async def exercise(store: StateStore) -> None:
    """Every operation of the built-in stores, with the results the contract tests expect."""
    assert await store.get("a") is None
    await store.set("a", b"\x00bytes\xff")
    assert await store.get("a") == b"\x00bytes\xff"
    await store.delete("a")
    assert await store.get("a") is None

    await store.set("short", b"x", ttl=0.15)
    await store.set("long", b"y", ttl=30)
    await anyio.sleep(0.3)
    assert await store.get("short") is None
    assert await store.get("long") == b"y"

    assert await store.set_if_absent("once", b"1") is True  # type: ignore[attr-defined]
    assert await store.set_if_absent("once", b"2") is False  # type: ignore[attr-defined]
    assert await store.take("once") == b"1"  # type: ignore[attr-defined]
    assert await store.take("once") is None  # type: ignore[attr-defined]

    assert await store.incr("n") == 1
    assert await store.incr("n", 5, ttl=30) == 6

    decisions = [await store.hit("rate", 2, 60) for _ in range(3)]
    assert [d.allowed for d in decisions] == [True, True, False]
    assert decisions[2].retry_after > 0
    both = await store.hit_many([("wide", 5, 60), ("narrow", 1, 60)])  # type: ignore[attr-defined]
    assert [d.allowed for d in both] == [True, True]
    again = await store.hit_many([("wide", 5, 60), ("narrow", 1, 60)])  # type: ignore[attr-defined]
    assert [d.allowed for d in again] == [True, False]

    await store.sadd("revoked", "j1")
    await store.sadd("revoked", "j2")
    await store.srem("revoked", "j1")
    assert await store.sismember("revoked", "j2")
    assert not await store.sismember("revoked", "j1")
    assert await store.smembers("revoked") == {"j2"}
    assert await store.keys("") == ["long", "n", "revoked"]  # type: ignore[attr-defined]

    received: list[str] = []

    async def listen() -> None:
        async for message in store.subscribe("policy"):
            received.append(message)
            if len(received) == 3:
                return

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(listen)
            await anyio.sleep(0.3)  # the subscription starts on the first __anext__
            await store.publish("other", "ignored")
            for message in ("reload", "approve:x", "reload"):
                await store.publish("policy", message)
    assert received == ["reload", "approve:x", "reload"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_memory_store(backend: str) -> None:
    async def main() -> None:
        store = MemoryStore()
        try:
            await exercise(store)
        finally:
            await store.aclose()

    run(main, backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_sqlite_store(backend: str, tmp_path: Path) -> None:
    async def main() -> None:
        store = open_store("sqlite:///state.db?poll=0.02", base_dir=tmp_path)
        assert isinstance(store, SQLiteStore)
        try:
            await exercise(store)
        finally:
            await store.aclose()

    run(main, backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_sqlite_waits_for_a_lock_in_a_worker_thread(backend: str, tmp_path: Path) -> None:
    """A write lock held elsewhere sends the operation to anyio's worker thread; the loop keeps running."""
    path = tmp_path / "state.db"

    async def main() -> None:
        store = SQLiteStore(path)
        await store.set("warm", b"1")
        other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")
        release = threading.Timer(0.3, lambda: other.execute("COMMIT"))
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await anyio.sleep(0.01)
                ticks += 1

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(ticker)
                release.start()
                began = time.monotonic()
                decision = await store.hit("k", 1, 10)
                waited = time.monotonic() - began
                tg.cancel_scope.cancel()
        finally:
            release.join()
            other.close()
            await store.aclose()
        assert decision.allowed
        assert waited >= 0.25
        assert ticks >= 10

    run(main, backend)


# -- Redis ----------------------------------------------------------------------------------------


def _operations(store: StateStore) -> dict[str, Callable[[], Awaitable[object]]]:
    s: object = store
    return {
        "get": lambda: store.get("k"),
        "set": lambda: store.set("k", b"v"),
        "set ttl": lambda: store.set("k", b"v", ttl=5),
        "set_if_absent": lambda: s.set_if_absent("k", b"v"),  # type: ignore[attr-defined]
        "take": lambda: s.take("k"),  # type: ignore[attr-defined]
        "delete": lambda: store.delete("k"),
        "incr": lambda: store.incr("n"),
        "hit": lambda: store.hit("r", 5, 60),
        "hit_many": lambda: s.hit_many([("r", 5, 60), ("q", 5, 60)]),  # type: ignore[attr-defined]
        "keys": lambda: s.keys(""),  # type: ignore[attr-defined]
        "sadd": lambda: store.sadd("s", "m"),
        "srem": lambda: store.srem("s", "m"),
        "sismember": lambda: store.sismember("s", "m"),
        "smembers": lambda: store.smembers("s"),
        "publish": lambda: store.publish("c", "m"),
        "ping": lambda: s.ping(),  # type: ignore[attr-defined]
        "subscribe": lambda: store.subscribe("c").__anext__(),
    }


async def _every_operation_refuses(store: StateStore) -> None:
    for name, call in _operations(store).items():
        began = time.monotonic()
        with pytest.raises(RuntimeError) as info:
            await call()
        assert time.monotonic() - began < 0.5, name  # refused before any network I/O
        assert not isinstance(info.value, GuardUnavailable), name  # not a silent fail-closed refusal
        assert type(info.value).__name__ == "RedisBackendError", name
        assert str(info.value).startswith(NEEDS_ASYNCIO), (name, str(info.value))
        assert "running under trio" in str(info.value), name
    await store.aclose()  # nothing was opened, so closing is a no-op and does not raise


def test_redis_store_refuses_trio_with_a_clear_error() -> None:
    """No server needed: the refusal comes before any connection (port 1 would only time out)."""
    pytest.importorskip("redis")
    store = open_store("redis://127.0.0.1:1/0?connect_timeout=5&socket_timeout=5")
    run(lambda: _every_operation_refuses(store), "trio")


def test_redis_store_backend_error_type() -> None:
    pytest.importorskip("redis")
    from mcp_guard.store.redis import NEEDS_ASYNCIO as message
    from mcp_guard.store.redis import RedisBackendError

    assert message == NEEDS_ASYNCIO
    assert issubclass(RedisBackendError, RuntimeError)
    assert not issubclass(RedisBackendError, GuardUnavailable)


@pytest.mark.redis
def test_redis_store_with_a_real_server_works_under_asyncio_and_refuses_trio(
    redis_server: RedisServer,
) -> None:
    store = open_store(redis_server.url + "?prefix=trio:")

    async def before() -> None:
        await store.set("k", b"from asyncio")
        assert (await store.hit("r", 1, 60)).allowed
        await store.aclose()

    async def on_trio() -> None:
        await _every_operation_refuses(store)

    async def after() -> None:
        # The same store still works on asyncio, and the refused trio calls wrote nothing.
        assert await store.get("k") == b"from asyncio"
        decision = await store.hit("r", 1, 60)
        assert (decision.allowed, decision.count) == (False, 1)  # only the asyncio hit counted
        assert await store.incr("n") == 1
        assert await store.smembers("s") == set()
        assert await store.keys("") == ["k", "n"]  # type: ignore[attr-defined]
        await store.aclose()

    run(before, "asyncio")
    run(on_trio, "trio")
    run(after, "asyncio")
