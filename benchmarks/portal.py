"""tools/call over streamable HTTP: through the portal vs directly to the same upstream.

Three processes: the upstream (this file with ``--upstream``: the server of
examples/portal/notes_server.py over streamable HTTP), the portal (this file
with ``--portal``: real API-key authentication, the compiled policy of
examples/portal/policy.toml, the audit pipeline writing JSON Lines) and this
client. Both servers run with the SDK's defaults and logging at WARNING, so
the direct and the portal path differ only by the portal. Each client holds
one 2025-11-25 session, warms up, and calls ``echo`` in a loop; for each client
count the direct run comes first, then the portal run. Run: ``.venv/bin/python benchmarks/portal.py``.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
EXAMPLES = ROOT / "examples" / "portal"
KEY = "bench-key"
DURATION = float(os.environ.get("BENCH_SECONDS", "4"))


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=0.5)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


#: The issue's goals: the portal adds at most this much at p50 and keeps this share of direct throughput.
GOAL_ADDED_P50_MS = 1.0
GOAL_RATIO = 0.6


def quiet_logging() -> None:
    """Warnings and errors only: console logging per request would dominate what is measured."""
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger().setLevel(logging.WARNING)
    logging.getLogger("mcp").setLevel(logging.WARNING)


# ---------------------------------------------------------------------- upstream process
def run_upstream(port: int) -> None:
    import uvicorn

    sys.path.insert(0, str(EXAMPLES))
    import notes_server  # type: ignore[import-not-found]

    quiet_logging()  # MCPServer configures the root logger at INFO on construction
    uvicorn.run(notes_server.server.streamable_http_app(), host="127.0.0.1", port=port, log_level="warning")


# ---------------------------------------------------------------------- portal process
def run_portal(port: int, upstream: str, audit_dir: str) -> None:
    quiet_logging()
    from mcp_guard.audit import open_auditor
    from mcp_guard.authn.api_keys import ApiKeyAuthenticator, ConfiguredKey, sha256_hex
    from mcp_guard.config import UpstreamSection
    from mcp_guard.guard import Guard
    from mcp_guard.policy import load_policy
    from mcp_guard.portal import Portal

    auditor = (
        None
        if os.environ.get("BENCH_NO_AUDIT")
        else open_auditor([f"jsonl:///{audit_dir}/audit.jsonl"], None, Path(audit_dir))
    )
    guard = Guard(
        policy=load_policy(EXAMPLES / "policy.toml"),
        authenticators=[ApiKeyAuthenticator([ConfiguredKey(sha256_hex(KEY), "alice", roles=("analyst",))])],
        auditor=auditor,
        server="portal",
    )
    portal = Portal(
        guard,
        [UpstreamSection(name="notes", url=upstream)],
        ping_interval=30,
        pool=int(os.environ.get("BENCH_POOL", "4")),
        forward=bool(os.environ.get("BENCH_FORWARD")),
    )

    async def main() -> None:
        try:
            await portal.serve("127.0.0.1", port, json_response=bool(os.environ.get("BENCH_JSON")))
        finally:
            await guard.aclose()

    profile_to = os.environ.get("BENCH_PROFILE")
    if not profile_to:
        anyio.run(main)
        return
    # The portal process under cProfile. uvicorn re-raises the SIGTERM it stopped on once it has
    # shut down; this handler turns that into an exit that writes the stats.
    import cProfile
    import signal

    def stop(*_: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        anyio.run(main)
    finally:
        profiler.disable()
        profiler.dump_stats(profile_to)


# ---------------------------------------------------------------------- load
class Window:
    """The measured window opens once every client has connected and warmed up."""

    def __init__(self, clients: int) -> None:
        self.waiting = clients
        self.open = anyio.Event()
        self.stop_at = 0.0

    def ready(self) -> None:
        self.waiting -= 1
        if self.waiting == 0:
            self.stop_at = time.perf_counter() + DURATION
            self.open.set()


async def one_client(url: str, tool: str, window: Window, latencies: list[float]) -> None:
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    http = create_mcp_http_client(headers={"Authorization": f"Bearer {KEY}"})
    async with http, streamable_http_client(url, http_client=http) as (r, w), ClientSession(r, w) as session:
        await session.initialize()
        await session.list_tools()
        for _ in range(20):  # warm-up
            await session.call_tool(tool, {"text": "x"})
        window.ready()
        await window.open.wait()
        while time.perf_counter() < window.stop_at:
            t0 = time.perf_counter()
            result = await session.call_tool(tool, {"text": "hello"})
            latencies.append(time.perf_counter() - t0)
            assert not result.is_error, result


async def load(url: str, tool: str, clients: int) -> dict[str, float]:
    latencies: list[float] = []
    window = Window(clients)
    async with anyio.create_task_group() as tg:
        for _ in range(clients):
            tg.start_soon(one_client, url, tool, window, latencies)
    elapsed = DURATION
    lat = sorted(latencies)
    return {
        "calls": len(lat),
        "p50_ms": statistics.median(lat) * 1000,
        "p99_ms": lat[int(len(lat) * 0.99) - 1] * 1000,
        "calls_s": len(lat) / elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--portal", nargs=3, metavar=("PORT", "UPSTREAM", "AUDIT_DIR"), help=argparse.SUPPRESS
    )
    parser.add_argument("--upstream", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.portal:
        run_portal(int(args.portal[0]), args.portal[1], args.portal[2])
        return
    if args.upstream:
        run_upstream(args.upstream)
        return
    up_port, portal_port = free_port(), free_port()
    upstream = f"http://127.0.0.1:{up_port}/mcp"
    procs: list[subprocess.Popen[Any]] = []
    with tempfile.TemporaryDirectory() as audit_dir:
        try:
            procs.append(subprocess.Popen([sys.executable, __file__, "--upstream", str(up_port)]))
            wait_http(upstream)
            procs.append(
                subprocess.Popen(
                    [sys.executable, __file__, "--portal", str(portal_port), upstream, audit_dir]
                )
            )
            wait_http(f"http://127.0.0.1:{portal_port}/mcp")
            rows = []
            for clients in (1, 16):
                direct = anyio.run(load, upstream, "echo", clients)
                via = anyio.run(load, f"http://127.0.0.1:{portal_port}/mcp", "notes__echo", clients)
                rows.append((clients, direct, via))
            log = Path(audit_dir) / "audit.jsonl"
            audited = len(log.read_text().splitlines()) if log.exists() else 0
        finally:
            for p in reversed(procs):
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    print(f"process {p.pid} did not stop on SIGTERM within 10 s; killed", file=sys.stderr)
                    p.kill()
                    p.wait()
    print(f"\ntools/call over streamable HTTP, {DURATION:.0f} s per run (2025-11-25 sessions)\n")
    print(f"{'clients':>7} | {'path':<7} | {'calls':>6} | {'p50 ms':>7} | {'p99 ms':>7} | {'calls/s':>8}")
    print("-" * 60)
    for clients, direct, via in rows:
        for name, r in (("direct", direct), ("portal", via)):
            print(
                f"{clients:>7} | {name:<7} | {r['calls']:>6.0f} | {r['p50_ms']:>7.2f} | "
                f"{r['p99_ms']:>7.2f} | {r['calls_s']:>8.0f}"
            )
        print(
            f"{'':>7} | added p50 {via['p50_ms'] - direct['p50_ms']:+.2f} ms, "
            f"throughput ratio {via['calls_s'] / direct['calls_s']:.2f}x"
        )
    print()
    for clients, direct, via in rows:
        added = via["p50_ms"] - direct["p50_ms"]
        ratio = via["calls_s"] / direct["calls_s"]
        print(
            f"goal, {clients:>2} client(s): added p50 {added:+.2f} ms (<= {GOAL_ADDED_P50_MS:.0f} ms: "
            f"{'met' if added <= GOAL_ADDED_P50_MS else 'NOT met'}), throughput {ratio:.2f}x "
            f"(>= {GOAL_RATIO}x: {'met' if ratio >= GOAL_RATIO else 'NOT met'})"
        )
    print(f"\naudit records written by the portal: {audited}")
    print(f"load average during the run: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
