"""What the cap on calls in flight costs per ``tools/call`` on the request path.

``Guard.run`` as in ``request_path.py`` (API key + allow-list policy + SQLite audit, a trivial
call step), with ``[portal] max_in_flight_per_caller`` at its default (32) and off (0), in
alternating rounds of 1,000 calls so the machine's load falls on both alike. Reported in CPU
time of the calling thread; then the slot alone (take and give back), best of 5 x 100,000.

Run: ``python benchmarks/inflight.py``.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from overhead import build_guard
from request_path import call, exchange

from mcp_guard.inflight import InFlight
from mcp_guard.model import Principal

ROUNDS = 8
PER_ROUND = 1000


def slot_alone(n: int = 100_000) -> float:
    counter, principal = InFlight(32), Principal("bench")
    best = float("inf")
    for _ in range(5):
        start = time.thread_time_ns()
        for _ in range(n):
            slot = counter.acquire(principal, "bench")
            assert slot is not None
            slot.release()
        best = min(best, (time.thread_time_ns() - start) / n / 1000)
    return best


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        guard, _ = build_guard(Path(tmp))
        caps = {"on (32)": InFlight(32), "off (0)": InFlight(0)}
        for ex in (exchange(i) for i in range(500)):  # warm-up: principal cache, compiled policy
            await guard.run(ex, call)
        timings: dict[str, list[float]] = {name: [] for name in caps}
        for r in range(ROUNDS):
            order = list(caps) if r % 2 == 0 else list(reversed(caps))
            for name in order:
                guard.in_flight = caps[name]
                exchanges = [exchange(i) for i in range(PER_ROUND)]
                gc.collect()
                start = time.thread_time_ns()
                for ex in exchanges:
                    await guard.run(ex, call)
                timings[name].append((time.thread_time_ns() - start) / PER_ROUND / 1000)
        await guard.aclose()
    print("guard work per tools/call (CPU us of the calling thread), alternating rounds")
    for name, rounds in timings.items():
        print(f"  cap {name:8} " + "  ".join(f"{x:.1f}" for x in rounds) + f"   best {min(rounds):.1f}")
    ratios = sorted(on / off for on, off in zip(timings["on (32)"], timings["off (0)"], strict=True))
    median = ratios[len(ratios) // 2]
    print(f"  on/off per round: median {median:.3f}, range {ratios[0]:.3f}-{ratios[-1]:.3f}")
    print(f"slot alone (take + give back): {slot_alone():.2f} us")


if __name__ == "__main__":
    asyncio.run(main())
