"""Guard work per ``tools/call`` on the request path, without any transport.

``Guard.run`` around a trivial call step (API key + allow-list policy + SQLite audit, as in
``overhead.py``), 1,000 calls per round, 5 rounds. Reported in CPU time of the calling thread
(``time.thread_time_ns``), which a loaded machine disturbs far less than wall time; the audit
flusher runs in its own thread and is not counted here (``audit.py`` measures it).

Run: ``python benchmarks/request_path.py``.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from overhead import KEY, build_guard

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
        await guard.aclose()
    print("guard work per tools/call (CPU us of the calling thread; goal <= 20)")
    print("  rounds: " + "  ".join(f"{x:.1f}" for x in rounds) + f"   best {min(rounds):.1f}")


if __name__ == "__main__":
    asyncio.run(main())
