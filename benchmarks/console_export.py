"""Memory and time of the console's audit export: streamed in pages against built in memory.

The export used to read every matching event and join them into one body before sending; it
now reads and sends 500 at a time. This fills a SQLite trail with N events, then in alternating
rounds (the machine is shared and noisy) exports everything both ways in process and reports
the peak memory Python allocated (tracemalloc) and the time, as medians and the ratio's range.
"In memory" is the former code path (one query, one joined body); "streamed" is
``GET /admin/audit/export`` through the console app, its chunks consumed and dropped as a
server would send them.

Run: .venv/bin/python benchmarks/console_export.py [N] [ROUNDS]
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio

from mcp_guard.audit.query import Filters, query
from mcp_guard.config import load_config
from mcp_guard.model import AuditEvent
from mcp_guard.portal import Portal

sys.path.insert(0, str(Path(__file__).parent))
from console import KEY, config  # the console benchmark's guard.toml

N = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 5


async def streamed(app: Any) -> int:
    """``GET /admin/audit/export`` as a server runs it; the bytes sent (chunks are not kept)."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": "/admin/audit/export", "raw_path": b"/admin/audit/export",
        "root_path": "", "query_string": b"", "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 80),
        "headers": [(b"host", b"127.0.0.1"), (b"authorization", f"Bearer {KEY}".encode())],
    }  # fmt: skip
    sent = [0]
    asked: list[bool] = []

    async def receive() -> dict[str, Any]:
        if asked:
            await anyio.sleep_forever()
        asked.append(True)
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            sent[0] += len(message.get("body", b""))

    await app(scope, receive, send)
    return sent[0]


async def in_memory(path: Path) -> int:
    """The former export: every record read, then one body."""
    records = await anyio.to_thread.run_sync(lambda: query(path, Filters()))
    text = "".join(json.dumps(r, ensure_ascii=True, separators=(",", ":")) + "\n" for r in records)
    return len(text.encode())


async def measure(work: Callable[[], Awaitable[int]]) -> tuple[float, float, int]:
    """(peak MiB, seconds, bytes) of one run."""
    tracemalloc.start()
    started = time.perf_counter()
    size = await work()
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20, elapsed, size


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        portal = Portal.from_guard_config(load_config(config(Path(tmp))))
        guard = portal.guard
        for i in range(N):
            guard.record_nowait(
                AuditEvent(method="tools/call", decision="allow", server="notes", target=f"tool{i % 40}")
            )
        guard.auditor.flush()  # type: ignore[union-attr]
        app = portal.streamable_http_app()
        path = portal.console.state.console.audit.path  # type: ignore[union-attr]
        results: dict[str, list[tuple[float, float, int]]] = {"streamed": [], "in memory": []}
        for _ in range(ROUNDS):  # alternating, so drift in the machine's load hits both alike
            results["in memory"].append(await measure(lambda: in_memory(path)))
            results["streamed"].append(await measure(lambda: streamed(app)))
        print(f"export of {N} events, {ROUNDS} alternating rounds (median; ratio range over rounds)")
        for name, runs in results.items():
            peak = statistics.median(r[0] for r in runs)
            secs = statistics.median(r[1] for r in runs)
            print(f"{name:10} peak {peak:8.1f} MiB  time {secs * 1000:8.0f} ms  body {runs[0][2]} bytes")
        mem = [m[0] / s[0] for m, s in zip(results["in memory"], results["streamed"], strict=True)]
        tim = [s[1] / m[1] for m, s in zip(results["in memory"], results["streamed"], strict=True)]
        print(f"memory in memory/streamed: {min(mem):.1f}x .. {max(mem):.1f}x")
        print(f"time streamed/in memory:   {min(tim):.2f}x .. {max(tim):.2f}x")
        await guard.aclose()


if __name__ == "__main__":
    anyio.run(main)
