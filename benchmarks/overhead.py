"""Cost of the guard on the request path: bare MCPServer vs the same server guarded.

Guarded = API-key authentication + allow-list policy + SQLite audit (batched,
hash-chained). Both servers keep the SDK's default middleware (OpenTelemetry,
request-state), so the ratio isolates the guard. Measured in one process run:

- in memory: median round trip of ``tools/call`` (trivial tool) and
  ``tools/list`` (500 tools), legacy (2025-11-25) session;
- streamable HTTP on 127.0.0.1 (real uvicorn in its own process, real client), same pair.

Run: ``python benchmarks/overhead.py``.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.mcpserver import MCPServer
from mcp.shared._httpx_utils import create_mcp_http_client

from mcp_guard.audit import open_auditor
from mcp_guard.authn.api_keys import ApiKeyAuthenticator, ConfiguredKey
from mcp_guard.guard import Guard
from mcp_guard.integrations.http import loopback_security
from mcp_guard.policy import AllowListPolicy
from tests.http_util import free_port

KEY = "bench-key-0123456789abcdef"
N_TOOLS = 500


def build_server() -> MCPServer:
    server = MCPServer("bench", log_level="WARNING")  # console logging would dominate both sides

    @server.tool()
    def echo(text: str) -> str:
        """Return the text."""
        return text

    for i in range(N_TOOLS - 1):

        def make(i: int) -> Callable[[int], int]:
            def tool(x: int) -> int:
                return x + i

            tool.__name__ = f"tool_{i:03d}"
            tool.__doc__ = f"Tool number {i}: adds {i} to x."
            return tool

        server.add_tool(make(i))
    return server


def build_guard(audit_dir: Path) -> tuple[Guard, Any]:
    auditor = open_auditor([f"sqlite:///{audit_dir}/audit.db"], None, audit_dir)
    guard = Guard(
        policy=AllowListPolicy(tools=["echo", "tool_*"]),
        authenticators=[
            ApiKeyAuthenticator([ConfiguredKey(hashlib.sha256(KEY.encode()).hexdigest(), "bench", ("user",))])
        ],
        auditor=auditor,
        server="bench",
    )
    return guard, auditor


ROUNDS = 6


async def sample(fn: Callable[[], Awaitable[Any]], n: int) -> list[float]:
    samples = []
    gc.disable()
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            await fn()
            samples.append(time.perf_counter() - t0)
    finally:
        gc.enable()
    return samples


async def compare(clients: dict[str, Client], n_call: int, n_list: int) -> dict[str, tuple[float, float]]:
    """Medians per path, bare and guarded measured in alternating rounds.

    Timings on a shared 2-core machine drift by tens of percent over a minute;
    alternating short rounds exposes both paths to the same drift, so the ratio
    reflects the guard rather than the moment each side happened to run.
    """
    calls: dict[str, list[float]] = {k: [] for k in clients}
    lists: dict[str, list[float]] = {k: [] for k in clients}
    for c in clients.values():  # warm-up
        for _ in range(50):
            await c.call_tool("echo", {"text": "hi"})
        for _ in range(3):
            await c.list_tools(cache_mode="bypass")
    for _ in range(ROUNDS):
        for name, c in clients.items():
            calls[name] += await sample(lambda c=c: c.call_tool("echo", {"text": "hi"}), n_call // ROUNDS)
            lists[name] += await sample(
                lambda c=c: c.list_tools(cache_mode="bypass"), max(1, n_list // ROUNDS)
            )
    return {k: (statistics.median(calls[k]) * 1e6, statistics.median(lists[k]) * 1e6) for k in clients}


async def in_memory(audit_dir: Path) -> dict[str, tuple[float, float]]:
    bare = build_server()
    guarded = build_server()
    guard, _auditor = build_guard(audit_dir)
    guard.protect(guarded, credential=KEY, read_env=False)
    async with Client(bare, mode="legacy") as b, Client(guarded, mode="legacy") as g:
        out = await compare({"bare": b, "guarded": g}, 3000, 60)
    await guard.aclose()
    return out


def http_client(url: str, token: str | None) -> Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return Client(
        streamable_http_client(url, http_client=create_mcp_http_client(headers=headers)), mode="legacy"
    )  # type: ignore[arg-type]


def serve_forever(kind: str, port: int, audit_dir: Path) -> None:
    """The server side of the HTTP runs, in its own process (a real deployment has no shared GIL)."""
    import uvicorn

    server = build_server()
    if kind == "guarded":
        guard, _ = build_guard(audit_dir)
        guard.protect(server, read_env=False)
    app = server.streamable_http_app(transport_security=loopback_security(port))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def start_server(kind: str, audit_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    args = [sys.executable, __file__, "--serve", kind, "--port", str(port), "--audit-dir", str(audit_dir)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{kind} server did not start")


async def over_http(audit_dir: Path) -> dict[str, tuple[float, float]]:
    (bare, bare_url), (guarded, guarded_url) = (start_server(k, audit_dir) for k in ("bare", "guarded"))
    try:
        async with http_client(bare_url + "/mcp", None) as b, http_client(guarded_url + "/mcp", KEY) as g:
            return await compare({"bare": b, "guarded": g}, 900, 36)
    finally:
        for proc in (bare, guarded):
            proc.terminate()
            proc.wait(timeout=10)


def report(title: str, res: dict[str, tuple[float, float]], goal: float) -> None:
    (bc, bl), (gc_, gl) = res["bare"], res["guarded"]
    print(f"\n{title}")
    print(f"  {'':22}{'bare us':>12}{'guarded us':>12}{'ratio':>8}  goal")
    print(f"  {'tools/call (trivial)':22}{bc:12.1f}{gc_:12.1f}{gc_ / bc:8.3f}  <= {goal:.2f}")
    print(f"  {'tools/list (500)':22}{bl:12.1f}{gl:12.1f}{gl / bl:8.3f}  <= {goal:.2f}")


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        mem = await in_memory(Path(tmp) / "mem")
        http = await over_http(Path(tmp) / "http")
    print("mcp-guard overhead (median round trip; API key + allow-list policy + SQLite audit)")
    report("in memory (2025-11-25 session)", mem, 1.10)
    report("streamable HTTP on 127.0.0.1", http, 1.05)


if __name__ == "__main__":
    if "--serve" in sys.argv:
        import argparse

        parser = argparse.ArgumentParser()
        parser.add_argument("--serve", choices=("bare", "guarded"))
        parser.add_argument("--port", type=int)
        parser.add_argument("--audit-dir", type=Path)
        opts = parser.parse_args()
        serve_forever(opts.serve, opts.port, opts.audit_dir)
    else:
        asyncio.run(main())
