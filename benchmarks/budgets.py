"""Cost of a budget check per state store, next to a rate-limit check on the same store.

    .venv/bin/python benchmarks/budgets.py [--quick]

A budget check is ``Budgets.charge`` (one atomic ``spend_many``: a Lua script
on Redis, a transaction on SQLite); the selection (``budgets_for``: which
budgets charge the call, and its cost) is timed apart. Rounds of budget and
rate-limit checks alternate, so the ratio is taken under the same load; it is
reported with its range over the rounds. Starts its own redis-server on a
free loopback port (skipped when the binary is missing; set REDIS_URL to use
a running server instead). Figures are reported, never asserted.
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

from mcp_guard.budgets import Budgets  # noqa: E402
from mcp_guard.model import AccessRequest, BudgetCharge, BudgetSpec, Decision, LimitSpec, Principal  # noqa: E402
from mcp_guard.policy import load_policy_text  # noqa: E402
from mcp_guard.ratelimit import RateLimiter  # noqa: E402
from mcp_guard.store import open_store  # noqa: E402
from tests.redis_server import RedisServer, redis_binary  # noqa: E402

PRINCIPAL = Principal(subject="alice", tenant="acme", roles=frozenset({"analyst"}))
REQUEST = AccessRequest(method="tools/call", action="call", server="db", kind="tool", target="search_orders")
BIG = 10**15
ONE = [BudgetCharge(BudgetSpec("daily-cost", BIG, 86400), 1)]
THREE = [
    *ONE,
    BudgetCharge(BudgetSpec("hourly", BIG, 3600), 1),
    BudgetCharge(BudgetSpec("tenant-weekly", BIG, 604800, per="tenant"), 1),
]
LIMIT = [LimitSpec(id="per-user", requests=10**9, window=60.0, per=("subject",))]

POLICY = """
[[rules]]
id = "r"
effect = "allow"
tools = ["*"]
[[budgets]]
id = "daily-cost"
period = "1d"
limit = 1000000
roles = ["analyst"]
servers = ["db"]
cost = { "search_*" = 1, "generate_*" = 10, "export_*" = 25 }
"""


POLICY_COMPILED = load_policy_text(POLICY)
ALLOWED = Decision.allow("r")


async def round_us(fn: Callable[[], Awaitable[object]], n: int) -> float:
    """Mean microseconds per await over ``n`` sequential awaits."""
    t0 = time.perf_counter_ns()
    for _ in range(n):
        await fn()
    return (time.perf_counter_ns() - t0) / 1000 / n


async def measure(url: str, n: int, rounds: int) -> dict[str, list[float]]:
    store = open_store(url)
    budgets, limiter = Budgets(store), RateLimiter(store)
    cases: dict[str, Callable[[], Awaitable[object]]] = {
        "rate limit, 1 limit": lambda: limiter.check(PRINCIPAL, REQUEST, LIMIT),
        "budget, 1 budget": lambda: budgets.charge(PRINCIPAL, ONE),
        "budget, 3 budgets": lambda: budgets.charge(PRINCIPAL, THREE),
        "admit (select+charge)": lambda: budgets.admit(POLICY_COMPILED, PRINCIPAL, REQUEST, ALLOWED),
    }
    for fn in cases.values():  # warm-up: connections, scripts loaded, tables created
        await round_us(fn, min(200, n))
    out: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, fn in cases.items():
            out[name].append(await round_us(fn, n))
    await store.aclose()
    return out


def selection_us(n: int) -> float:
    policy = load_policy_text(POLICY)
    t0 = time.perf_counter_ns()
    for _ in range(n):
        policy.budgets_for(PRINCIPAL, REQUEST)
    return (time.perf_counter_ns() - t0) / 1000 / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer iterations (smoke run)")
    args = parser.parse_args()
    scale = 0.1 if args.quick else 1.0
    rounds = 3 if args.quick else 7
    tmp = tempfile.TemporaryDirectory(prefix="mcpg-bench-")
    server: RedisServer | None = None
    redis_url = os.environ.get("REDIS_URL")
    if redis_url is None and redis_binary() is not None:
        server = RedisServer().start()
        redis_url = server.url
    try:
        targets = [
            ("memory", "memory://", int(20_000 * scale)),
            ("sqlite", f"sqlite:///{tmp.name}/a.db", int(2_000 * scale)),
        ]
        if redis_url:
            targets.append(("redis", f"{redis_url}?prefix=bench:", int(2_000 * scale)))
        where = f"{sys.version.split()[0]}, {os.cpu_count()} CPUs; {rounds} alternating rounds"
        print(f"\nBudget checks ({where})")
        print(f"{'store':<8} {'operation':<22} {'median us':>10} {'min..max us':>16} {'vs rate limit':>22}")
        for name, url, n in targets:
            figures = asyncio.run(measure(url, n, rounds))
            base = figures["rate limit, 1 limit"]
            for op, samples in figures.items():
                ratios = [s / b for s, b in zip(samples, base)]  # noqa: B905 - one per round
                span = f"{min(samples):.1f}..{max(samples):.1f}"
                ratio = f"{statistics.median(ratios):.2f} ({min(ratios):.2f}..{max(ratios):.2f})"
                print(f"{name:<8} {op:<22} {statistics.median(samples):>10.1f} {span:>16} {ratio:>22}")
        sel = selection_us(int(100_000 * scale))
        print(f"\nSelection (policy.budgets_for, one budget with 3 cost globs): {sel:.2f} us per call")
        if not redis_url:
            print("\n(redis-server not installed: Redis rows skipped; apt-get install -y redis-server)")
    finally:
        if server is not None:
            server.close()
        tmp.cleanup()


if __name__ == "__main__":
    main()
