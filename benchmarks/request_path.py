"""Guard work per ``tools/call`` on the request path, without any transport.

``Guard.run`` around a trivial call step (API key + allow-list policy + SQLite audit, as in
``overhead.py``), 1,000 calls per round, 5 rounds. Reported in CPU time of the calling thread
(``time.thread_time_ns``), which a loaded machine disturbs far less than wall time; the audit
flusher runs in its own thread and is not counted here (``audit.py`` measures it).

Then the parts of that work timed alone (best of 5 x 20,000 calls), to show where it goes.

Run: ``python benchmarks/request_path.py``.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from overhead import KEY, build_guard

from mcp_guard.classify import classify
from mcp_guard.guard import Guard
from mcp_guard.model import RequestContext
from mcp_guard.pipeline import Admitted, Exchange
from mcp_guard.protocols import Credential

ROUNDS = 5
PER_ROUND = 1000


async def call(admitted: Admitted) -> Any:
    return {"content": [{"type": "text", "text": "hi"}], "isError": False}


def exchange(i: int) -> Exchange:
    context = RequestContext(
        time=datetime.now(timezone.utc),
        transport="memory",
        session_id="s1",
        request_id=i,
        protocol_version="2025-11-25",
        client_name="bench",
        client_version="1",
    )
    params = {"name": "echo", "arguments": {"text": "hi"}}
    return Exchange("tools/call", params, "bench", context, credential=Credential(KEY, "memory"))


def _best(fn: Callable[[], object], n: int = 20_000) -> float:
    best = float("inf")
    for _ in range(5):
        start = time.thread_time_ns()
        for _ in range(n):
            fn()
        best = min(best, (time.thread_time_ns() - start) / n / 1000)
    return best


async def _best_async(fn: Callable[[], Awaitable[object]], n: int = 20_000) -> float:
    best = float("inf")
    for _ in range(5):
        start = time.thread_time_ns()
        for _ in range(n):
            await fn()
        best = min(best, (time.thread_time_ns() - start) / n / 1000)
    return best


async def parts(guard: Guard) -> list[tuple[str, float]]:
    """The stages of one call, each timed alone (the sum leaves out the pipeline's own frames)."""
    ex = exchange(0)
    credential = Credential(KEY, "memory")
    principal = await guard.identify(credential)
    authorize = guard.authorize
    request, info = classify(ex.method, ex.params, ex.server, ex.context)
    decision = await guard.authorize(principal, request, info, exchange=ex)
    result = await call(Admitted(principal, request, info, decision))
    return [
        ("identify (cached principal)", await _best_async(lambda: guard.identify(credential))),
        ("classify", _best(lambda: classify(ex.method, ex.params, ex.server, ex.context))),
        ("authorize (memoised decision)", await _best_async(lambda: authorize(principal, request, info))),
        ("size bound of the params", _best(lambda: guard.check_params(ex.params, request))),
        ("audit check", _best(guard.check_audit)),
        ("result inspection", _best(lambda: guard.inspect_result("tool_result", dict(result)))),
        (
            "audit event",
            _best(
                lambda: guard.event(
                    ex.method, "allow", principal=principal, request=request, verdict=decision, started=0.0
                )
            ),
        ),
    ]


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        guard, _ = build_guard(Path(tmp))
        exchanges = [exchange(i) for i in range(500 + ROUNDS * PER_ROUND)]
        for ex in exchanges[:500]:  # warm-up: principal cache, compiled policy
            await guard.run(ex, call)
        rounds = []
        for r in range(ROUNDS):
            gc.collect()
            start = time.thread_time_ns()
            for ex in exchanges[500 + r * PER_ROUND : 500 + (r + 1) * PER_ROUND]:
                await guard.run(ex, call)
            rounds.append((time.thread_time_ns() - start) / PER_ROUND / 1000)
        timed = await parts(guard)
        await guard.aclose()
    print("guard work per tools/call (CPU us of the calling thread; goal <= 20)")
    print("  rounds: " + "  ".join(f"{x:.1f}" for x in rounds) + f"   best {min(rounds):.1f}")
    print("parts, each timed alone (CPU us)")
    for name, us in timed:
        print(f"  {name:32}{us:6.2f}")
    print(f"  {'sum of the parts':32}{sum(us for _, us in timed):6.2f}")


if __name__ == "__main__":
    asyncio.run(main())
