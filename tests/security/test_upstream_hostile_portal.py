"""Hostile answers to forwarded calls, through the portal: each fails closed, with one audit record."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import pytest
from mcp.shared.exceptions import MCPError

from mcp_guard.errors import GuardUnavailable
from mcp_guard.portal.forwarding import MAX_ASKS, HttpForwarder
from mcp_guard.portal.upstream import upstream_http_client
from mcp_guard.portal.upstream_http import LeanClient

from ..helpers import ListAuditor
from ..test_portal_direct import Lab, direct_portal
from ..test_portal_support import client, portal_http

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _http(
    body: bytes, kind: bytes = b"application/json", status: bytes = b"200 OK", extra: bytes = b""
) -> bytes:
    head = b"HTTP/1.1 %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n" % (status, kind, len(body))
    return head + extra + b"\r\n" + body


@asynccontextmanager
async def answering(answer: bytes) -> AsyncIterator[tuple[str, list[bytes]]]:
    """A server answering every request with ``answer`` (whatever it asked); notes what it got."""
    got: list[bytes] = []

    async def reply(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                got.append(data)
                writer.write(answer)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    listener = await asyncio.start_server(reply, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}/mcp", got
    finally:
        listener.close()


async def _forwarded_call_against(
    answer: bytes, kind: str = "lean"
) -> tuple[MCPError | None, ListAuditor, list[bytes]]:
    """One tools/call forwarded to a server answering ``answer``; the error it failed with, if any."""
    lab, auditor = Lab(), ListAuditor()
    failed: MCPError | None = None
    async with answering(answer) as (hostile, got):
        with lab.running() as up:
            portal = direct_portal(up, auditor)
            with portal_http(portal) as url:
                async with client(url, "tok-alice") as c:
                    forwarder = portal.upstreams["lab"].forwarder
                    assert forwarder is not None and isinstance(forwarder.client, LeanClient)
                    forwarder.url = hostile
                    if kind == "lean":
                        forwarder.client = LeanClient(hostile, read_timeout=2.0)
                    else:  # the client kept where the lean one cannot serve
                        forwarder.client = upstream_http_client({})
                    try:
                        await c.call_tool("lab__echo", {"text": "hi"})
                    except MCPError as exc:
                        failed = exc
    return failed, auditor, got


def _closed(failed: MCPError | None, auditor: ListAuditor) -> None:
    assert failed is not None and failed.error.code == GuardUnavailable.code
    calls = [e for e in auditor.events if e.method == "tools/call"]
    assert len(calls) == 1 and calls[0].outcome == "upstream_error"


@pytest.mark.parametrize("kind", ["lean", "httpx2"])
async def test_an_answer_to_another_request_id_is_not_taken_as_the_calls_answer(kind: str) -> None:
    forged = b'{"jsonrpc":"2.0","id":987654,"result":{"content":[{"type":"text","text":"forged"}]}}'
    failed, auditor, _ = await _forwarded_call_against(_http(forged), kind)
    _closed(failed, auditor)


async def test_an_answer_nested_past_the_parsers_depth_fails_closed() -> None:
    failed, auditor, _ = await _forwarded_call_against(_http(b"[" * 200_000))
    _closed(failed, auditor)


async def test_an_event_too_deeply_nested_fails_closed() -> None:
    event = b"event: message\r\ndata: " + b"[" * 200_000 + b"\r\n\r\n"
    failed, auditor, _ = await _forwarded_call_against(_http(event, b"text/event-stream"))
    _closed(failed, auditor)


@pytest.mark.parametrize("kind", ["lean", "httpx2"])
async def test_a_redirect_is_not_followed(kind: str) -> None:
    async with answering(_http(b'{"jsonrpc":"2.0","id":1,"result":{}}')) as (elsewhere, seen):
        moved = _http(b"", status=b"307 Temporary Redirect", extra=b"location: %s\r\n" % elsewhere.encode())
        failed, auditor, _ = await _forwarded_call_against(moved, kind)
    _closed(failed, auditor)
    assert seen == []


async def test_an_event_past_the_event_cap_fails_closed() -> None:
    event = b"event: message\r\ndata: " + b"x" * (3 << 20)  # never ends its line
    failed, auditor, _ = await _forwarded_call_against(_http(event, b"text/event-stream"))
    _closed(failed, auditor)


async def test_an_event_stream_that_never_answers_ends_at_the_upstream_timeout() -> None:
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    ping = b": ping\r\n\r\n"
    lab, auditor = Lab(), ListAuditor()

    async def drip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            await reader.read(65536)
            writer.write(head)
            while True:  # well within each read's timeout, never an answer
                writer.write(b"%x\r\n%s\r\n" % (len(ping), ping))
                await writer.drain()
                await asyncio.sleep(0.1)

    listener = await asyncio.start_server(drip, "127.0.0.1", 0)
    hostile = f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}/mcp"
    try:
        with lab.running() as up:
            portal = direct_portal(up, auditor, timeout=3.0)
            with portal_http(portal) as url:
                async with client(url, "tok-alice") as c:
                    forwarder = portal.upstreams["lab"].forwarder
                    assert forwarder is not None
                    forwarder.url = hostile
                    forwarder.client = LeanClient(hostile, read_timeout=1.0)
                    with anyio.fail_after(15), pytest.raises(MCPError):
                        await c.call_tool("lab__echo", {"text": "hi"})
                    assert forwarder.client._count == 0  # the dripping connection was closed
    finally:
        listener.close()
    calls = [e for e in auditor.events if e.method == "tools/call"]
    assert len(calls) == 1 and calls[0].outcome in ("timeout", "upstream_error"), calls


async def test_an_upstream_asking_without_end_on_a_call_fails_it_after_a_few_refusals() -> None:
    ask = b"event: message\r\ndata: "
    ask += b'{"jsonrpc":"2.0","id":%d,"method":"sampling/createMessage","params":{}}\r\n\r\n'
    stream = b"".join(ask % n for n in range(500))  # then no answer: the stream just ends
    failed, auditor, _ = await _forwarded_call_against(_http(stream, b"text/event-stream"))
    _closed(failed, auditor)
    refused = [e for e in auditor.events if e.method == "sampling/createMessage"]
    assert len(refused) == MAX_ASKS  # not one audit record and one refusal per request asked


async def test_requests_flooding_the_standalone_stream_are_refused_at_a_bounded_rate() -> None:
    ask = b"event: message\r\ndata: "
    ask += b'{"jsonrpc":"2.0","id":%d,"method":"roots/list"}\r\n\r\n'
    flood = _http(b"".join(ask % n for n in range(500)), b"text/event-stream")
    recorded: list[str] = []
    async with answering(flood) as (hostile, _got), LeanClient(hostile, read_timeout=2.0) as http:
        forwarder = HttpForwarder("lab", hostile, http, None, lambda method, reason: recorded.append(method))
        with anyio.move_on_after(1.5):  # the stream is opened again a second after it is dropped
            await forwarder.listen()
    assert 1 <= len(recorded) <= 2 * MAX_ASKS


async def test_a_standalone_stream_nested_past_the_parsers_depth_is_dropped_not_crashed_on() -> None:
    deep = _http(b"event: message\r\ndata: " + b"[" * 200_000 + b"\r\n\r\n", b"text/event-stream")
    async with answering(deep) as (hostile, got), LeanClient(hostile, read_timeout=2.0) as http:
        forwarder = HttpForwarder("lab", hostile, http)
        with anyio.move_on_after(1.5):
            await forwarder.listen()  # before: a RecursionError ended the task (and the upstream's)
    assert len(got) == 2  # opened again a second after the bad event
