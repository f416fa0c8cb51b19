"""The forwarder's upstream HTTP client alone: one POST and its answer, httpx2 vs the lean client.

A server process (this file with ``--server``: uvicorn and a bare ASGI app that
answers every POST with a small JSON-RPC result, as JSON or, with
``BENCH_SSE=1``, as a one-event stream like the SDK's) and this client, which
sends ``BENCH_CALLS`` (2000) sequential POSTs per round through each client (httpx2 as the
forwarder configures it, httpcore2's connection pool used directly, the lean client) in
``BENCH_ROUNDS`` (5) alternating rounds and reports the client's own CPU time
per request (``time.process_time``: the server's time is not in it, and a busy
machine distorts it far less than wall-clock time).
Run: ``.venv/bin/python benchmarks/upstream_http.py``.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpcore2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CALLS = int(os.environ.get("BENCH_CALLS", "2000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
SSE = bool(os.environ.get("BENCH_SSE"))
ANSWER = b'{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"hello"}],"isError":false}}'
BODY = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"}}}'
HEADERS = {
    "accept": "application/json, text/event-stream",
    "content-type": "application/json",
    "mcp-protocol-version": "2025-11-25",
    "mcp-session-id": "0123456789abcdef",
}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers every request at once, as JSON or as a one-event stream (what the forwarder reads)."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    if SSE:
        body = b"event: message\r\ndata: " + ANSWER + b"\r\n\r\n"
        start = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": start})
        await send({"type": "http.response.body", "body": body, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    else:
        head = [(b"content-type", b"application/json"), (b"content-length", str(len(ANSWER)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": head})
        await send({"type": "http.response.body", "body": ANSWER})


async def one(client: Any, url: str) -> None:
    if isinstance(client, httpcore2.AsyncConnectionPool):
        async with client.stream("POST", url, content=BODY, headers=list(HEADERS.items())) as raw:
            if SSE:
                async for _chunk in raw.aiter_stream():
                    break
            else:
                await raw.aread()
            assert raw.status == 200
        return
    async with client.stream("POST", url, content=BODY, headers=HEADERS) as response:
        if SSE:
            async for _text in response.aiter_text():
                break  # the forwarder stops at the answer, before the stream's end
        else:
            await response.aread()
        assert response.status_code == 200


async def measure(url: str) -> dict[str, list[float]]:
    from mcp_guard.portal.upstream import upstream_http_client
    from mcp_guard.portal.upstream_http import LeanClient

    cap = 64 << 20
    clients: dict[str, Any] = {
        "httpx2": upstream_http_client({}, None, cap),
        "httpcore2": httpcore2.AsyncConnectionPool(),  # the layer under httpx2, used directly
        "lean": LeanClient(url, cap=cap),
    }
    out: dict[str, list[float]] = {name: [] for name in clients}
    for client in clients.values():
        for _ in range(50):  # warm-up: connections open, code paths hot
            await one(client, url)
    for round_ in range(ROUNDS):
        names = list(clients)[round_ % 3 :] + list(clients)[: round_ % 3]
        for name in names:
            client = clients[name]
            t0 = time.process_time()
            for _ in range(CALLS):
                await one(client, url)
            out[name].append((time.process_time() - t0) / CALLS * 1e6)
    print(f"lean client: {clients['lean'].opened} connection(s) opened")
    for client in clients.values():
        await client.aclose()
    return out


def main() -> None:
    if sys.argv[1:2] == ["--server"]:
        import uvicorn

        uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
        return
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, __file__, "--server", str(port)])
    try:
        url = f"http://127.0.0.1:{port}/mcp"
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        out = asyncio.run(measure(url))
    finally:
        server.terminate()
        server.wait(timeout=10)
    kind = "event stream" if SSE else "JSON"
    print(f"\nclient CPU per request ({kind} answers), {ROUNDS} alternating rounds of {CALLS} requests")
    for name, values in out.items():
        low, mid, high = min(values), statistics.median(values), max(values)
        print(f"{name:<8} {mid:7.1f} us ({low:.1f} to {high:.1f})")
    for other in ("httpx2", "httpcore2"):
        ratios = [lean / slow for lean, slow in zip(out["lean"], out[other], strict=True)]
        print(f"lean / {other}: {statistics.median(ratios):.2f}x ({min(ratios):.2f} to {max(ratios):.2f})")


if __name__ == "__main__":
    main()
