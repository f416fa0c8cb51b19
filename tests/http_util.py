"""A real uvicorn server on a free 127.0.0.1 port, run in a background thread for one test,
and the raw streamable-HTTP pieces tests post by hand."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

#: A 2025-11-25 ``initialize`` request, for tests that speak raw HTTP to an MCP endpoint.
INITIALIZE: dict[str, Any] = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "mcp-guard-tests", "version": "0"},
    },
}
#: The headers a streamable-HTTP POST needs.
MCP_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(app: Any, port: int | None = None, **config: Any) -> Iterator[str]:
    """Serve ``app`` and yield its base URL; stops the server on exit.

    ``config`` adds ``uvicorn.Config`` settings (e.g. ``http=`` for the protocol ``serve`` uses).
    """
    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", **config)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    # A portal starts its upstreams (processes) in its lifespan: on a loaded machine that takes
    # more than a few seconds.
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def raw_post_head(url: str, headers: dict[str, str], length: int) -> tuple[tuple[str, int], bytes]:
    """The address to connect to and the head of a POST to ``url``, for tests that write raw bytes."""
    host, _, rest = url.partition("//")[2].partition("/")
    name, _, port = host.partition(":")
    head = f"POST /{rest} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {length}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    return (name, int(port)), head.encode()
