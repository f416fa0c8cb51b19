"""The served side writes a response's head and body in one system call."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any

import pytest
import uvicorn

from mcp_guard.integrations.coalesce import CoalescingTransport
from mcp_guard.integrations.http import header_timeout_protocol

from .http_util import free_port


class Recording:
    """A transport that records each write (one write: one system call)."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("peer", 1) if name == "peername" else default


async def test_writes_of_one_step_become_one_write_in_order() -> None:
    inner = Recording()
    transport = CoalescingTransport(inner, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    transport.write(b"")
    transport.write(b"body")
    assert inner.writes == []
    await asyncio.sleep(0)
    assert inner.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
    transport.write(b"next")
    await asyncio.sleep(0)
    assert inner.writes[1:] == [b"next"]
    assert transport.get_extra_info("peername") == ("peer", 1)  # everything else is the socket's


async def test_closing_writes_what_is_held_first() -> None:
    inner = Recording()
    transport = CoalescingTransport(inner, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.write(b"last words")
    transport.close()
    assert inner.writes == [b"last words"] and inner.closed
    await asyncio.sleep(0)
    assert inner.writes == [b"last words"]


async def test_the_end_of_writing_follows_what_is_held_and_an_abort_drops_it() -> None:
    class Ending(Recording):
        def write_eof(self) -> None:
            self.writes.append(b"<eof>")

        def abort(self) -> None:
            self.writes.append(b"<abort>")

        def get_write_buffer_size(self) -> int:
            return 7

    inner = Ending()
    transport = CoalescingTransport(inner, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.write(b"tail")
    assert transport.get_write_buffer_size() == 4 + 7  # held bytes count as buffered (flow control)
    transport.write_eof()
    assert inner.writes == [b"tail", b"<eof>"]
    transport.write(b"never sent")
    transport.abort()
    await asyncio.sleep(0)
    assert inner.writes == [b"tail", b"<eof>", b"<abort>"]


@pytest.mark.parametrize("parser", ["h11", "httptools"])
@pytest.mark.parametrize("bodies", [1, 3])
def test_a_served_answer_arrives_whole_from_one_send(
    bodies: int, parser: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through uvicorn with the served protocol: the head and every body part leave in one write."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        head = [(b"content-length", str(2 * bodies).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": head})
        for i in range(bodies):
            await send({"type": "http.response.body", "body": b"ok", "more_body": i < bodies - 1})

    writes: list[bytes] = []
    original = CoalescingTransport.flush

    def counted(self: CoalescingTransport) -> None:
        if self._held:
            writes.append(b"".join(self._held))
        original(self)

    monkeypatch.setattr(CoalescingTransport, "flush", counted)
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", http=header_timeout_protocol(5, parser)
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(200):
            try:
                conn = socket.create_connection(("127.0.0.1", port), timeout=5)
                break
            except OSError:
                time.sleep(0.05)
        with conn:
            conn.sendall(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            data = b""
            while not data.endswith(b"ok" * bodies):
                data += conn.recv(65536)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    [write] = writes
    assert write.startswith(b"HTTP/1.1 200 OK") and write.endswith(b"ok" * bodies)
