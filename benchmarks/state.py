"""Cost of a rate-limit check per state store, and fleet throughput of two replicas against one.

    .venv/bin/python benchmarks/state.py [--quick]

Starts its own redis-server on a free loopback port (skipped when the binary
is missing; set REDIS_URL to use a running server instead). Figures are
reported, never asserted. Goals: <= 5 us per check in memory, <= 300 us on
Redis over loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mcp_guard.model import AccessRequest, LimitSpec, Principal  # noqa: E402
from mcp_guard.protocols import StateStore  # noqa: E402
from mcp_guard.ratelimit import RateLimiter  # noqa: E402
from mcp_guard.store import open_store  # noqa: E402
from tests.redis_server import RedisServer, redis_binary, run_replicas  # noqa: E402

PRINCIPAL = Principal(subject="alice", tenant="acme")
REQUEST = AccessRequest(method="tools/call", action="call", server="db", kind="tool", target="query")
ONE = [LimitSpec(id="per-user-per-server", requests=10**9, window=60.0, per=("subject", "server"))]
THREE = [
    *ONE,
    LimitSpec(id="per-tool", requests=10**9, window=60.0, per=("subject", "target")),
    LimitSpec(id="per-tenant", requests=10**9, window=60.0, per=("tenant",)),
]


async def timed(fn: Callable[[], Awaitable[object]], n: int) -> tuple[float, float, float]:
    """Mean, median and p99 in microseconds over ``n`` sequential awaits (after a warm-up)."""
    for _ in range(min(200, n)):
        await fn()
    samples = []
    clock = time.perf_counter_ns
    for _ in range(n):
        t0 = clock()
        await fn()
        samples.append((clock() - t0) / 1000)
    samples.sort()
    return statistics.fmean(samples), samples[len(samples) // 2], samples[int(len(samples) * 0.99)]


async def per_call(name: str, url: str, n: int) -> list[tuple[str, str, float, float, float]]:
    store: StateStore = open_store(url)
    limiter = RateLimiter(store)
    rows = []
    counter = iter(range(10**9))
    rows.append(
        (name, "store.hit", *await timed(lambda: store.hit(f"raw{next(counter) % 64}", 10**9, 60.0), n))
    )
    rows.append((name, "check, 1 limit", *await timed(lambda: limiter.check(PRINCIPAL, REQUEST, ONE), n)))
    rows.append((name, "check, 3 limits", *await timed(lambda: limiter.check(PRINCIPAL, REQUEST, THREE), n)))
    await store.aclose()
    return rows


def fleet(
    name: str, url_for: Callable[[int], str], calls: int, concurrency: int
) -> list[tuple[str, int, float]]:
    rows = []
    for replicas in (1, 2):
        results = run_replicas(url_for(replicas), replicas, calls, concurrency, limit=10**9, timeout=120)
        assert all(r["error"] == 0 and r["denied"] == 0 for r in results), results
        seconds = max(r["seconds"] for r in results)
        rows.append((name, replicas, replicas * calls / seconds))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer iterations (smoke run)")
    args = parser.parse_args()
    scale = 0.1 if args.quick else 1.0
    tmp = tempfile.TemporaryDirectory(prefix="mcpg-bench-")
    server: RedisServer | None = None
    redis_url = os.environ.get("REDIS_URL")
    if redis_url is None and redis_binary() is not None:
        server = RedisServer().start()
        redis_url = server.url
    try:
        targets = [
            ("memory", "memory://", int(50_000 * scale)),
            ("sqlite", f"sqlite:///{tmp.name}/a.db", int(5_000 * scale)),
        ]
        if redis_url:
            targets.append(("redis", f"{redis_url}?prefix=bench:", int(5_000 * scale)))
        rows = []
        for name, url, n in targets:
            rows += asyncio.run(per_call(name, url, n))
        print(f"\nPer-call latency (sequential, one task; {sys.version.split()[0]}, {os.cpu_count()} CPUs)")
        print(f"{'store':<8} {'operation':<18} {'mean us':>9} {'p50 us':>9} {'p99 us':>9}")
        for name, op, mean, p50, p99 in rows:
            print(f"{name:<8} {op:<18} {mean:>9.1f} {p50:>9.1f} {p99:>9.1f}")

        calls, conc = int(20_000 * scale), 16
        fleet_rows = fleet("sqlite", lambda r: f"sqlite:///{tmp.name}/fleet{r}.db", calls // 4, conc)
        if redis_url:
            fleet_rows += fleet("redis", lambda r: f"{redis_url}?prefix=fleet{r}:", calls, conc)
        print(f"\nFleet throughput: replica processes x {conc} tasks, one shared limit key, all admitted")
        print(f"(replicas and redis-server share this machine's {os.cpu_count()} CPUs)")
        print(f"{'store':<8} {'replicas':>8} {'checks/s':>10} {'vs 1':>6}")
        base: dict[str, float] = {}
        for name, replicas, rate in fleet_rows:
            base.setdefault(name, rate)
            print(f"{name:<8} {replicas:>8} {rate:>10.0f} {rate / base[name]:>6.2f}")
        if not redis_url:
            print("\n(redis-server not installed: Redis rows skipped; apt-get install -y redis-server)")
    finally:
        if server is not None:
            server.close()
        tmp.cleanup()


if __name__ == "__main__":
    main()
