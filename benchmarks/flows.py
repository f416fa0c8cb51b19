"""Cost of the flow stage ([[flows]]) per state store: what a labelled call adds to a decision.

    .venv/bin/python benchmarks/flows.py [--quick]

For each store (memory, SQLite, Redis when ``redis-server`` is installed or
REDIS_URL is set) it measures, on one task:

- ``check``: the flow plan of a ``deny``-labelled target and the read of its
  mark (the common case: no earlier call, the call goes on);
- ``arm``: the plan of an ``after``-labelled target and the write of its mark;
- ``authorize +``: ``Guard.authorize`` of the ``deny``-labelled call with the
  flow in the policy minus the same without it, in alternating rounds (this
  machine is shared and noisy), reported as the median difference and its range.

Figures are reported, never asserted. Goals: <= 20 us per check in memory,
<= 300 us on Redis over loopback.
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

from mcp_guard.classify import classify  # noqa: E402
from mcp_guard.flowstate import FlowTracker, plan_for  # noqa: E402
from mcp_guard.guard import Guard  # noqa: E402
from mcp_guard.model import AccessRequest, Decision, Principal  # noqa: E402
from mcp_guard.policy import load_policy_text  # noqa: E402
from mcp_guard.store import open_store  # noqa: E402
from tests.redis_server import RedisServer, redis_binary  # noqa: E402

RULES = """
[[labels]]
servers = ["web"]
tools = ["fetch*"]
labels = ["untrusted-input"]

[[labels]]
servers = ["mail"]
tools = ["send_*"]
labels = ["external-output"]

[[rules]]
id = "analysts"
effect = "allow"
roles = ["analyst"]
servers = ["web", "mail"]
"""
FLOW = """
[[flows]]
id = "no-send-after-untrusted"
after = ["untrusted-input"]
deny = ["external-output"]
window = "30m"
"""
ALICE = Principal("alice", roles=frozenset({"analyst"}), tenant="acme")
SEND = AccessRequest("tools/call", "call", "mail", "tool", "send_mail")
FETCH = AccessRequest("tools/call", "call", "web", "tool", "fetch_page")
ALLOWED = Decision(True, "analysts")


async def timed(fn: Callable[[], Awaitable[object]], n: int) -> list[float]:
    """Per-call microseconds over ``n`` sequential awaits (after a warm-up)."""
    for _ in range(min(200, n)):
        await fn()
    samples = []
    clock = time.perf_counter_ns
    for _ in range(n):
        t0 = clock()
        await fn()
        samples.append((clock() - t0) / 1000)
    return samples


def summary(samples: list[float]) -> tuple[float, float, float]:
    samples = sorted(samples)
    return statistics.fmean(samples), samples[len(samples) // 2], samples[int(len(samples) * 0.99)]


async def per_store(name: str, url: str, n: int, rounds: int) -> list[str]:
    store = open_store(url)
    with_flow, without = load_policy_text(RULES + FLOW), load_policy_text(RULES)
    tracker = FlowTracker(store)
    other = Principal("bob", roles=frozenset({"analyst"}), tenant="acme")  # never fetches: no mark

    async def check() -> None:
        plan = plan_for(with_flow, SEND)
        assert plan is not None
        await tracker.check(other, SEND, plan, ALLOWED)

    async def arm() -> None:
        plan = plan_for(with_flow, FETCH)
        assert plan is not None
        await tracker.arm(ALICE, FETCH, plan, "evt-bench")

    lines = []
    for label, fn in (("check", check), ("arm", arm)):
        mean, p50, p99 = summary(await timed(fn, n))
        lines.append(f"{name:<8} {label:<14} {mean:>9.1f} {p50:>9.1f} {p99:>9.1f}")

    guards = {
        "flow": Guard(policy=with_flow, store=store),
        "none": Guard(policy=without, store=store),
    }
    info = classify("tools/call", {"name": "send_mail", "arguments": {}}, "mail")[1]
    deltas = []
    for _ in range(rounds):
        medians = {}
        for key in ("none", "flow") if len(deltas) % 2 == 0 else ("flow", "none"):
            guard = guards[key]
            medians[key] = summary(await timed(lambda g=guard: g.authorize(other, SEND, info), n // rounds))[
                1
            ]
        deltas.append(medians["flow"] - medians["none"])
    deltas.sort()
    lines.append(
        f"{name:<8} {'authorize +':<14} {statistics.median(deltas):>9.1f}"
        f"   range {deltas[0]:.1f} .. {deltas[-1]:.1f} over {rounds} alternating rounds"
    )
    await store.aclose()
    return lines


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
            ("memory", "memory://", int(20_000 * scale)),
            ("sqlite", f"sqlite:///{tmp.name}/s.db", int(2_000 * scale)),
        ]
        if redis_url:
            targets.append(("redis", f"{redis_url}?prefix=bench-flows:", int(4_000 * scale)))
        print(
            f"\nFlow stage per call (sequential, one task; {sys.version.split()[0]}, {os.cpu_count()} CPUs)"
        )
        print(f"{'store':<8} {'step':<14} {'mean us':>9} {'p50 us':>9} {'p99 us':>9}")
        for name, url, n in targets:
            for line in asyncio.run(per_store(name, url, n, rounds=6)):
                print(line)
        if not redis_url:
            print("\n(redis-server not installed: Redis rows skipped; apt-get install -y redis-server)")
    finally:
        if server is not None:
            server.close()
        tmp.cleanup()


if __name__ == "__main__":
    main()
