"""tools/call over streamable HTTP: through the portal vs directly to the same upstream.

Five processes: the upstream (this file with ``--upstream``: the server of
examples/portal/notes_server.py over streamable HTTP), three portals (this file
with ``--portal``: real API-key authentication, the compiled policy of
examples/portal/policy.toml, the audit pipeline writing to SQLite, or JSON
Lines with ``BENCH_AUDIT=jsonl``) - ``session``: SDK client sessions to the
upstream and the fast lane off; ``forward``: ``forward`` on, the lane off;
``lane``: both on (the default config); ``lane-httpx2``: the default config with
the forwarder's upstream client forced back to httpx2 - and this client
(``BENCH_PORTALS=lane,lane-httpx2`` runs only those). All servers run with
the SDK's defaults and logging at WARNING, so the paths differ only by the
portal. Each client holds one 2025-11-25 session, warms up, and calls ``echo``
in a loop; ``BENCH_ROUNDS`` alternating rounds (3) run every path once per
client count, each round starting with another path. ``BENCH_PROFILE=FILE``
writes each portal's cProfile stats to ``FILE.<path>`` (``FILE.lane``, ...).
Run: ``.venv/bin/python benchmarks/portal.py``.
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


def wait_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=0.5)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


#: The goals: the portal adds at most this much at p50 (1 client) and keeps this share of direct throughput.
GOAL_ADDED_P50_MS = 1.5
GOAL_RATIO = 0.8
_SUFFIX = {"sqlite": "db"}
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
#: The portals' audit sink: ``sqlite`` (what the default config writes) or ``jsonl``.
AUDIT = os.environ.get("BENCH_AUDIT", "sqlite")
#: The portals run (``BENCH_PORTALS``, comma-separated): ``lane-httpx2`` is the default config with
#: the forwarder's upstream client forced back to httpx2; a ``-split`` suffix (``lane-split``,
#: ``lane-httpx2-split``) turns the served side's write coalescing off; ``-h11`` serves with the h11
#: parser instead of httptools; ``lane-before`` is the lane as it was before its kernel was thinned
#: (h11, httpx2's event-stream parser, the SDK's request kernel); ``-flushN`` (``lane-flush200``) has
#: the audit flusher wake every N ms instead of every 50.
MODES = os.environ.get("BENCH_PORTALS", "session,forward,lane,lane-httpx2").split(",")
#: The client counts measured (``BENCH_CLIENTS``, comma-separated).
CLIENT_COUNTS = [int(c) for c in os.environ.get("BENCH_CLIENTS", "1,16").split(",")]


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
def run_portal(port: int, upstream: str, audit_dir: str, mode: str) -> None:
    quiet_logging()
    from mcp_guard.audit import open_auditor
    from mcp_guard.audit.config import AuditSettings
    from mcp_guard.authn.api_keys import ApiKeyAuthenticator, ConfiguredKey, sha256_hex
    from mcp_guard.config import ListenSection, UpstreamSection
    from mcp_guard.guard import Guard
    from mcp_guard.policy import load_policy
    from mcp_guard.portal import Portal

    # ``-flushN``: the audit flusher wakes every N ms instead of the default 50.
    flush = next((int(part[5:]) for part in mode.split("-") if part.startswith("flush")), None)
    settings = AuditSettings(flush_interval=flush / 1000) if flush else None
    auditor = (
        None
        if os.environ.get("BENCH_NO_AUDIT")
        else open_auditor(
            [f"{AUDIT}:///{audit_dir}/audit.{_SUFFIX.get(AUDIT, AUDIT)}"], settings, Path(audit_dir)
        )
    )
    guard = Guard(
        policy=load_policy(EXAMPLES / "policy.toml"),
        authenticators=[ApiKeyAuthenticator([ConfiguredKey(sha256_hex(KEY), "alice", roles=("analyst",))])],
        auditor=auditor,
        server="portal",
    )
    if mode.endswith("-split"):
        # The served side without write coalescing: uvicorn's two writes per answer, as before.
        from mcp_guard.integrations.coalesce import CoalescingTransport

        CoalescingTransport.write = lambda self, data: self._inner.write(data)  # type: ignore[method-assign]
    if mode.startswith("lane-httpx2"):
        # The default config with the forwarder's previous upstream client, httpx2 (what the
        # lean client falls back to), for a before/after comparison in one run.
        import mcp_guard.portal.upstream as upstream_module

        upstream_module.lean_client_for = lambda url, auth: "benchmark: httpx2 forced"  # type: ignore[assignment]
    listen = ListenSection(http_parser="h11" if "-h11" in mode or mode.endswith("-before") else "auto")
    if mode.endswith("-before"):
        # The lane as it was: h11 front, httpx2's event parser over the lean client's answers.
        import mcp_guard.portal.events_reader as events_reader
        import mcp_guard.portal.lanekernel as lanekernel

        events_reader.LeanResponse = type("NoLeanResponse", (), {})  # type: ignore[misc,assignment]
        lanekernel.untraced = lambda params: False
    portal = Portal(
        guard,
        [UpstreamSection(name="notes", url=upstream)],
        listen=listen,
        ping_interval=30,
        pool=int(os.environ.get("BENCH_POOL", "4")),
        forward=mode != "session",
        fast_lane=mode.startswith("lane"),
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
        profiler.dump_stats(f"{profile_to}.{mode}")


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


def cpu_seconds(pid: int, task: int | None = None) -> float:
    """CPU time (user + system) a process - or one of its threads - has used so far (Linux ``/proc``)."""
    path = f"/proc/{pid}/stat" if task is None else f"/proc/{pid}/task/{task}/stat"
    fields = Path(path).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def spread(values: list[float], fmt: str) -> str:
    """Median and range of one figure over the rounds."""
    low, mid, high = (format(v, fmt) for v in (min(values), statistics.median(values), max(values)))
    return f"{mid} ({low} to {high})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--portal", nargs=4, metavar=("PORT", "UPSTREAM", "AUDIT_DIR", "MODE"), help=argparse.SUPPRESS
    )
    parser.add_argument("--upstream", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.portal:
        run_portal(int(args.portal[0]), args.portal[1], args.portal[2], args.portal[3])
        return
    if args.upstream:
        run_upstream(args.upstream)
        return
    up_port = free_port()
    upstream = f"http://127.0.0.1:{up_port}/mcp"
    # The portal with SDK client sessions behind it, forwarding directly, and with the fast lane too.
    portals = {mode: free_port() for mode in MODES}
    procs: list[subprocess.Popen[Any]] = []
    runs: dict[tuple[int, str], list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as audit_dir:
        try:
            procs.append(subprocess.Popen([sys.executable, __file__, "--upstream", str(up_port)]))
            wait_http(upstream)
            for mode, port in portals.items():
                audit = Path(audit_dir) / mode
                audit.mkdir()
                command = [sys.executable, __file__, "--portal", str(port), upstream, str(audit), mode]
                procs.append(subprocess.Popen(command))
            for port in portals.values():
                wait_http(f"http://127.0.0.1:{port}/mcp")
            pids = {"direct": procs[0].pid}
            pids.update({mode: p.pid for mode, p in zip(portals, procs[1:], strict=True)})
            paths = {"direct": (upstream, "echo")}
            paths.update({m: (f"http://127.0.0.1:{p}/mcp", "notes__echo") for m, p in portals.items()})
            order = list(paths)
            for round_ in range(ROUNDS):
                # Alternating rounds, each starting with another path: drift hits every path alike.
                rotated = order[round_ % len(order) :] + order[: round_ % len(order)]
                for clients in CLIENT_COUNTS:
                    for name in rotated:
                        url, tool = paths[name]
                        cpu = cpu_seconds(pids[name])
                        loop_cpu = cpu_seconds(pids[name], pids[name])
                        run = anyio.run(load, url, tool, clients)
                        # The server's CPU per call (warm-up calls included), for the portals the
                        # upstream's part excluded: what the portal itself costs, whatever the load.
                        # The main thread runs the event loop; the rest is other threads (the audit
                        # writer's).
                        done = run["calls"] + 20 * clients
                        run["cpu_ms"] = (cpu_seconds(pids[name]) - cpu) * 1000 / done
                        run["loop_ms"] = (cpu_seconds(pids[name], pids[name]) - loop_cpu) * 1000 / done
                        runs.setdefault((clients, name), []).append(run)
        finally:
            for p in reversed(procs):
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    print(f"process {p.pid} did not stop on SIGTERM within 10 s; killed", file=sys.stderr)
                    p.kill()
                    p.wait()
    print(
        f"\ntools/call over streamable HTTP, {ROUNDS} alternating rounds of {DURATION:.0f} s per path "
        f"(2025-11-25 sessions, {AUDIT} audit); median (range) over the rounds\n"
    )
    print(
        f"{'clients':>7} | {'path':<11} | {'p50 ms':<24} | {'calls/s':<16} | {'server CPU ms/call':<22} "
        "| of which other threads"
    )
    print("-" * 116)
    for clients in CLIENT_COUNTS:
        for name in ("direct", *portals):
            r = runs[(clients, name)]
            p50 = spread([x["p50_ms"] for x in r], ".2f")
            rate = spread([x["calls_s"] for x in r], ".0f")
            cpu = spread([x["cpu_ms"] for x in r], ".2f")
            threads = spread([x["cpu_ms"] - x["loop_ms"] for x in r], ".2f")
            print(f"{clients:>7} | {name:<11} | {p50:<24} | {rate:<16} | {cpu:<22} | {threads}")
    print()
    for clients in CLIENT_COUNTS:
        direct = runs[(clients, "direct")]
        for mode in portals:
            via = runs[(clients, mode)]
            added = [v["p50_ms"] - d["p50_ms"] for d, v in zip(direct, via, strict=True)]
            ratio = [v["calls_s"] / d["calls_s"] for d, v in zip(direct, via, strict=True)]
            print(
                f"{clients:>2} client(s), {mode:<11}: added p50 {spread(added, '+.2f')} ms "
                f"(goal <= {GOAL_ADDED_P50_MS} ms), throughput {spread(ratio, '.2f')}x "
                f"(goal >= {GOAL_RATIO}x)"
            )
    print()
    for clients in CLIENT_COUNTS:
        direct = runs[(clients, "direct")]
        for mode in portals:
            via = runs[(clients, mode)]
            ratio = spread([v["cpu_ms"] / d["cpu_ms"] for d, v in zip(direct, via, strict=True)], ".2f")
            print(f"{clients:>2} client(s), {mode:<11}: server CPU per call {ratio}x the direct upstream's")
    before = next((m for m in portals if m.endswith("-before")), None)
    for clients in CLIENT_COUNTS:
        for mode in portals:
            if before is None or mode == before:
                continue
            old, new = runs[(clients, before)], runs[(clients, mode)]
            ratio = spread([n["cpu_ms"] / o["cpu_ms"] for o, n in zip(old, new, strict=True)], ".2f")
            print(f"{clients:>2} client(s), {mode:<11}: portal CPU per call {ratio}x {before}'s")
    print(f"\nload average during the run: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
