"""Several replicas sharing a real redis-server: one global limit, shared revocations, restarts."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from mcp_guard.errors import ConfigError, GuardUnavailable, RateLimited
from mcp_guard.model import AccessRequest, LimitSpec, Principal
from mcp_guard.ratelimit import RateLimiter
from mcp_guard.store import RedisStore, open_store, shared_secret

from .redis_server import RedisServer, require_redis_server, run_replicas

pytestmark = pytest.mark.redis


@pytest.fixture(scope="module")
def server(redis_server: RedisServer) -> RedisServer:
    return redis_server


@pytest.fixture
def own_server() -> Iterator[RedisServer]:
    """A server this test may stop and start again."""
    binary = require_redis_server()
    with RedisServer(binary) as srv:
        yield srv


def test_two_processes_enforce_one_limit_exactly(server: RedisServer) -> None:
    url = server.url + "?prefix=exact:"
    results = run_replicas(url, replicas=2, calls=300, concurrency=25, limit=100)
    assert sum(r["allowed"] for r in results) == 100, results
    assert sum(r["denied"] for r in results) == 500, results
    assert sum(r["error"] for r in results) == 0, results


_REPLICA_B = """
import asyncio, sys, time
from mcp_guard.store import open_store
async def main():
    store = open_store(sys.argv[1])
    async def listen():
        async for message in store.subscribe("revocations"):
            return message
    task = asyncio.create_task(listen())
    await asyncio.sleep(0.3)
    print("ready", flush=True)
    message = await asyncio.wait_for(task, 10)
    print("message", message, flush=True)
    while not await store.sismember("revoked", "jti-7"):
        await asyncio.sleep(0.01)
    while await store.get("lockout:alice") is None:
        await asyncio.sleep(0.01)
    print("state", (await store.get("lockout:alice")).decode(), flush=True)
    await store.aclose()
asyncio.run(main())
"""


async def test_revocation_and_lockout_made_on_one_replica_hold_on_the_other(server: RedisServer) -> None:
    url = server.url + "?prefix=rev:"
    proc = subprocess.Popen([sys.executable, "-c", _REPLICA_B, url], stdout=subprocess.PIPE, text=True)
    store = open_store(url)
    try:
        assert proc.stdout is not None
        assert await asyncio.to_thread(proc.stdout.readline) == "ready\n"
        sent = time.monotonic()
        await store.sadd("revoked", "jti-7")
        await store.incr("lockout:alice", 5, ttl=900)
        await store.publish("revocations", "jti-7")
        first = await asyncio.to_thread(proc.stdout.readline)
        second = await asyncio.to_thread(proc.stdout.readline)
        elapsed = time.monotonic() - sent
        assert first == "message jti-7\n"
        assert second == "state 5\n"
        assert elapsed < 1.0
    finally:
        proc.wait(10)
        await store.aclose()


async def test_shared_secret_is_the_same_for_every_replica(server: RedisServer) -> None:
    url = server.url + "?prefix=secret:"
    script = (
        "import asyncio, sys\n"
        "from mcp_guard.store import open_store, shared_secret\n"
        "print(asyncio.run(shared_secret(open_store(sys.argv[1]), 'request-state')).hex())\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, url], stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    keys = {p.communicate(timeout=30)[0].strip() for p in procs}
    store = open_store(url)
    mine = await shared_secret(store, "request-state")
    await store.aclose()
    assert keys == {mine.hex()}
    assert len(mine) == 32


async def test_restart_fails_closed_then_recovers(own_server: RedisServer) -> None:
    store = open_store(own_server.url)
    limiter = RateLimiter(store)
    spec = LimitSpec(id="l", requests=1000, window=60.0)
    principal = Principal(subject="alice")
    request = AccessRequest(method="tools/call", action="call", server="db", kind="tool", target="q")
    log: list[tuple[float, str]] = []
    stop = asyncio.Event()

    async def load() -> None:
        while not stop.is_set():
            try:
                await limiter.check(principal, request, [spec])
                log.append((time.monotonic(), "allowed"))
            except GuardUnavailable:
                log.append((time.monotonic(), "unavailable"))
            except RateLimited:
                log.append((time.monotonic(), "limited"))
            await asyncio.sleep(0.005)

    tasks = [asyncio.create_task(load()) for _ in range(4)]
    await asyncio.sleep(0.3)
    await asyncio.to_thread(own_server.stop)
    down_at = time.monotonic()
    await asyncio.sleep(0.5)
    with pytest.raises(GuardUnavailable, match="state store unavailable"):
        await store.sismember("revoked", "x")
    up_at = time.monotonic()
    await asyncio.to_thread(own_server.start)
    await asyncio.sleep(0.5)
    stop.set()
    await asyncio.gather(*tasks)
    await store.aclose()

    outage = [o for t, o in log if down_at + 0.05 < t < up_at]
    assert outage and set(outage) == {"unavailable"}  # nothing passes while Redis is away
    after = [o for t, o in log if t > up_at + 0.3]
    assert after and set(after) == {"allowed"}  # and it heals by itself
    assert "limited" not in {o for _, o in log}


async def test_subscription_reports_a_broken_connection(own_server: RedisServer) -> None:
    store = open_store(own_server.url)

    async def listen() -> list[str]:
        got: list[str] = []
        async for message in store.subscribe("c"):
            got.append(message)
        return got

    task = asyncio.create_task(listen())
    await asyncio.sleep(0.3)
    await store.publish("c", "one")
    await asyncio.sleep(0.1)
    await asyncio.to_thread(own_server.stop)
    with pytest.raises(GuardUnavailable):
        await asyncio.wait_for(task, 10)
    await store.aclose()


async def test_unreachable_server_fails_fast_and_closed() -> None:
    from .redis_server import free_port

    store = open_store(f"redis://127.0.0.1:{free_port()}/0?connect_timeout=0.5")
    began = time.monotonic()
    with pytest.raises(GuardUnavailable, match="state store unavailable"):
        await store.hit("k", 10, 60)
    with pytest.raises(GuardUnavailable):
        await RateLimiter(store).check(
            Principal(subject="a"),
            AccessRequest(method="m", action="call", server="s"),
            [LimitSpec("x", 5, 60)],
        )
    assert time.monotonic() - began < 3
    await store.aclose()


def test_store_works_from_two_event_loops(server: RedisServer) -> None:
    store = open_store(server.url + "?prefix=loops:")

    async def use(n: int) -> int:
        await store.set("k", str(n).encode())
        value = await store.get("k")
        return int(value or b"0")

    assert asyncio.run(use(1)) == 1
    assert asyncio.run(use(2)) == 2
    asyncio.run(store.aclose())


async def test_redis_server_time_drives_windows(server: RedisServer) -> None:
    """A store whose client clock is wrong still agrees with others: windows use Redis TIME."""
    store = open_store(server.url + "?prefix=time:")
    assert isinstance(store, RedisStore)
    decisions = [await store.hit("k", 3, 0.2) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    await asyncio.sleep(0.25)
    assert (await store.hit("k", 3, 0.2)).allowed
    await store.aclose()


def test_missing_redis_package_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "mcp_guard.store.redis", raising=False)
    monkeypatch.setitem(sys.modules, "redis.asyncio", None)
    with pytest.raises(ConfigError, match=r"mcp-guard\[redis\]") as info:
        open_store("redis://127.0.0.1:6379/0")
    assert info.value.field == "state"


async def test_bounded_pool_queues_instead_of_failing(server: RedisServer) -> None:
    store = open_store(server.url + "?prefix=pool:&max_connections=4")
    results = await asyncio.gather(*(store.hit("k", 150, 60) for _ in range(200)))
    assert sum(d.allowed for d in results) == 150
    await store.aclose()
