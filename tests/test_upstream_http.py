"""The lean upstream HTTP client of the forwarding path, against servers that misbehave on purpose."""

from __future__ import annotations

import asyncio
import json
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import h11
import httpx2
import pytest
from mcp.shared.exceptions import MCPError

import mcp_guard.portal.upstream as upstream_module
from mcp_guard.errors import GuardUnavailable
from mcp_guard.portal.bounded import MessageTooLarge
from mcp_guard.portal.forwarding import _events
from mcp_guard.portal.upstream_http import LeanClient, lean_client_for

from .helpers import ListAuditor
from .http_util import free_port
from .test_portal_direct import Lab, direct_portal
from .test_portal_support import client, portal_http

pytestmark = pytest.mark.anyio

ANSWER = b'{"jsonrpc":"2.0","id":1,"result":{}}'
#: (connection number, request number on it, request body, the connection's h11 state, writer)
Answer = Callable[[int, int, bytes, h11.Connection, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Server:
    """A raw HTTP/1.1 server (h11 on the server side too) whose answers a test writes itself."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.connections = 0
        self.requests: list[bytes] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        number = self.connections
        self.connections += 1
        conn = h11.Connection(h11.SERVER)
        served = 0
        try:
            while True:
                body = b""
                while True:
                    event = conn.next_event()
                    if event is h11.NEED_DATA:
                        conn.receive_data(await reader.read(65536))
                        continue
                    if isinstance(event, h11.Data):
                        body += event.data
                    if isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                        break
                if isinstance(event, h11.ConnectionClosed):
                    return
                self.requests.append(body)
                await self.answer(number, served, body, conn, writer)
                served += 1
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
        except (ConnectionError, h11.ProtocolError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def running(answer: Answer) -> AsyncIterator[tuple[Server, str]]:
    server = Server(answer)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        yield server, f"http://127.0.0.1:{port}/mcp"
    finally:
        listener.close()


def write(conn: h11.Connection, writer: asyncio.StreamWriter, *events: Any) -> None:
    writer.write(b"".join(conn.send(e) or b"" for e in events))


async def json_answer(number: int, served: int, body: bytes, conn: h11.Connection, w: Any) -> None:
    head = [("content-type", "application/json"), ("content-length", str(len(ANSWER)))]
    write(conn, w, h11.Response(status_code=200, headers=head), h11.Data(data=ANSWER), h11.EndOfMessage())


async def post(client: LeanClient, url: str, body: bytes = b"{}") -> bytes:
    async with client.stream("POST", url, content=body, headers={"content-type": "application/json"}) as r:
        assert r.status_code == 200
        return await r.aread()


async def test_connections_are_kept_alive_and_each_request_is_one_write() -> None:
    async with running(json_answer) as (server, url), LeanClient(url) as client:
        writes: list[bytes] = []
        assert await post(client, url, b'{"n":1}') == ANSWER
        [connection] = client._idle
        transport = connection.protocol.transport
        assert transport is not None
        original = transport.write

        def counted(data: Any) -> None:
            writes.append(bytes(data))
            original(data)

        transport.write = counted  # type: ignore[method-assign]
        for n in (2, 3):
            assert await post(client, url, b'{"n":%d}' % n) == ANSWER
    assert server.connections == 1 and client.opened == 1
    assert server.requests == [b'{"n":1}', b'{"n":2}', b'{"n":3}']
    assert len(writes) == 2 and all(w.endswith(b'{"n":%d}' % n) for w, n in zip(writes, (2, 3), strict=True))


async def test_a_server_that_closes_between_requests_gets_new_connections() -> None:
    async def then_close(number: int, served: int, body: bytes, conn: h11.Connection, w: Any) -> None:
        await json_answer(number, served, body, conn, w)
        await w.drain()
        w.close()  # no "connection: close": the client learns it from the socket

    async with running(then_close) as (server, url), LeanClient(url) as client:
        for _ in range(3):
            assert await post(client, url) == ANSWER
            await anyio.sleep(0.05)  # the close reaches the client's event loop
    assert server.connections == 3 and client.opened == 3
    assert len(server.requests) == 3  # each request sent once


async def test_cookies_the_upstream_sets_are_sent_back() -> None:
    seen: list[str | None] = []

    async def affinity(number: int, served: int, body: bytes, conn: h11.Connection, w: Any) -> None:
        head = [("content-type", "application/json"), ("content-length", str(len(ANSWER)))]
        if served == 0:
            head += [("set-cookie", "replica=b7; Path=/; HttpOnly"), ("set-cookie", "other=1")]
        elif served == 1:
            head.append(("set-cookie", "other=; Max-Age=0"))
        write(conn, w, h11.Response(status_code=200, headers=head), h11.Data(data=ANSWER), h11.EndOfMessage())

    original = Server.handle

    async def handle(self: Server, reader: Any, writer: Any) -> None:
        await original(self, _Peek(reader, seen), writer)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Server, "handle", handle)
        async with running(affinity) as (_server, url), LeanClient(url) as client:
            for _ in range(3):
                await post(client, url)
    assert seen == [None, "replica=b7; other=1", "replica=b7"]


class _Peek:
    """A stream reader that notes each request's Cookie header on its way to the server."""

    def __init__(self, reader: asyncio.StreamReader, seen: list[str | None]) -> None:
        self.reader = reader
        self.seen = seen

    async def read(self, n: int) -> bytes:
        data = await self.reader.read(n)
        if data.startswith(b"POST"):
            head = data.split(b"\r\n\r\n", 1)[0].decode().split("\r\n")
            cookies = [line.split(":", 1)[1].strip() for line in head if line.lower().startswith("cookie:")]
            self.seen.append(cookies[0] if cookies else None)
        return data


async def test_a_server_that_closes_every_new_connection_fails_the_request_without_looping() -> None:
    accepted = [0]

    async def slam(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted[0] += 1
        writer.close()

    listener = await asyncio.start_server(slam, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}/mcp"
    try:
        async with LeanClient(url) as client:
            with anyio.fail_after(5), pytest.raises(httpx2.TransportError):
                for _ in range(3):
                    await post(client, url)
                    await anyio.sleep(0.05)
    finally:
        listener.close()
    assert accepted[0] <= 3


async def test_an_answer_compressed_without_being_asked_fails_as_a_broken_answer() -> None:
    async def gzipped(number: int, served: int, body: bytes, conn: h11.Connection, w: Any) -> None:
        head = [("content-encoding", "gzip"), ("content-length", "0")]
        write(conn, w, h11.Response(status_code=200, headers=head), h11.EndOfMessage())

    async with running(gzipped) as (_server, url), LeanClient(url) as client:
        with pytest.raises(httpx2.TransportError):  # the forwarder's "upstream unavailable"
            await post(client, url)


async def test_a_chunked_answer_is_read_and_its_connection_reused() -> None:
    async def chunked(number: int, served: int, body: bytes, conn: h11.Connection, w: Any) -> None:
        head = [("content-type", "application/json"), ("transfer-encoding", "chunked")]
        write(conn, w, h11.Response(status_code=200, headers=head), h11.Data(data=ANSWER[:10]))
        await w.drain()
        await asyncio.sleep(0.01)
        write(conn, w, h11.Data(data=ANSWER[10:]), h11.EndOfMessage())

    async with running(chunked) as (server, url), LeanClient(url) as client:
        assert [await post(client, url) for _ in range(2)] == [ANSWER, ANSWER]
    assert server.connections == 1


async def test_an_event_stream_is_read_event_by_event_and_its_connection_reused() -> None:
    note = b'{"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}}'

    async def stream(number: int, served: int, body: bytes, conn: h11.Connection, w: Any) -> None:
        head = [("content-type", "text/event-stream")]
        write(conn, w, h11.Response(status_code=200, headers=head))
        for data in (note, ANSWER):
            write(conn, w, h11.Data(data=b"event: message\r\ndata: " + data + b"\r\n\r\n"))
            await w.drain()
        write(conn, w, h11.EndOfMessage())

    async with running(stream) as (server, url), LeanClient(url) as client:
        for _ in range(2):
            async with client.stream("POST", url, content=b"{}") as response:
                seen = []
                async for event in _events(response):
                    seen.append(json.loads(event.data))
                    if "result" in seen[-1]:
                        break  # as the forwarder does: the end of the stream is not awaited
            assert [m.get("method", "answer") for m in seen] == ["notifications/progress", "answer"]
            await anyio.sleep(0.05)
    assert server.connections == 1 and client.opened == 1


async def test_an_answer_past_the_cap_stops_the_read_and_memory_stays_bounded() -> None:
    sent = [0]
    total = 64 << 20

    async def huge(number: int, served: int, body: bytes, conn: h11.Connection, w: Any) -> None:
        head = [("content-type", "application/json"), ("content-length", str(total))]
        write(conn, w, h11.Response(status_code=200, headers=head))
        chunk = b" " * 65536
        while sent[0] < total:
            write(conn, w, h11.Data(data=chunk))
            await w.drain()
            sent[0] += len(chunk)

    tracemalloc.start()
    try:
        async with running(huge) as (_server, url), LeanClient(url, cap=1 << 20) as client:
            with pytest.raises(MessageTooLarge):
                await post(client, url)
            await anyio.sleep(0.2)
            assert client._idle == []  # the connection was dropped, not reused
            _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sent[0] < total // 4  # the server could not push much beyond the cap and socket buffers
    assert peak < 8 << 20


async def test_a_silent_server_times_out() -> None:
    async def silent(number: int, served: int, body: bytes, conn: h11.Connection, w: Any) -> None:
        await asyncio.sleep(30)

    async with running(silent) as (_server, url), LeanClient(url, read_timeout=0.3) as client:
        with pytest.raises(httpx2.ReadTimeout):
            await post(client, url)
        assert client._idle == [] and client._count == 0


async def test_a_refused_connection_is_a_connect_error() -> None:
    url = f"http://127.0.0.1:{free_port()}/mcp"
    async with LeanClient(url) as client:
        with pytest.raises(httpx2.ConnectError):
            await post(client, url)
        assert client._count == 0


async def test_a_cancelled_request_is_abandoned_and_its_connection_not_reused() -> None:
    async def stall_first(number: int, served: int, body: bytes, conn: h11.Connection, w: Any) -> None:
        if number == 0:
            head = [("content-type", "application/json"), ("content-length", str(len(ANSWER)))]
            write(conn, w, h11.Response(status_code=200, headers=head), h11.Data(data=ANSWER[:5]))
            await w.drain()
            await asyncio.sleep(30)
        await json_answer(number, served, body, conn, w)

    async with running(stall_first) as (server, url), LeanClient(url) as client:
        with anyio.move_on_after(0.3) as scope:
            await post(client, url)
        assert scope.cancelled_caught
        assert client._idle == [] and client._count == 0
        assert await post(client, url) == ANSWER  # a new connection: none of the first answer's bytes
    assert server.connections == 2


def test_what_the_lean_client_cannot_serve_keeps_httpx2(monkeypatch: pytest.MonkeyPatch) -> None:
    url = "https://upstream.example/mcp"
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)

    async def check(auth: object | None = None) -> str | None:
        return lean_client_for(url, auth=auth)

    assert anyio.run(check) is None
    assert "auth" in str(anyio.run(check, object()))
    assert "asyncio" in str(anyio.run(check, backend="trio")) if _has_trio() else True
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert "proxy" in str(anyio.run(check))
    monkeypatch.setenv("NO_PROXY", "upstream.example")
    assert anyio.run(check) is None


def _has_trio() -> bool:
    try:
        import trio  # noqa: F401
    except ImportError:
        return False
    return True


# ---------------------------------------------------------------------- through the portal
@pytest.fixture(params=["lean", "httpx2"])
def upstream_client(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each portal test runs with the lean client and with the httpx2 client it falls back to."""
    if request.param == "httpx2":
        monkeypatch.setattr(upstream_module, "lean_client_for", lambda url, auth: "forced for the test")
    return str(request.param)


async def test_a_refused_forwarded_request_fails_closed_with_the_same_error_and_record(
    upstream_client: str,
) -> None:
    lab, auditor = Lab(), ListAuditor()
    with lab.running() as up:
        portal = direct_portal(up, auditor)
        with portal_http(portal) as url:
            async with client(url, "tok-alice") as c:
                assert (await c.call_tool("lab__echo", {"text": "hi"})).structured_content == {"result": "hi"}
                forwarder = portal.upstreams["lab"].forwarder
                assert forwarder is not None
                kind = "lean" if isinstance(forwarder.client, LeanClient) else "httpx2"
                assert kind == upstream_client
                # The upstream's address now refuses connections (the SDK sessions stay up).
                forwarder.url = f"http://127.0.0.1:{free_port()}/mcp"
                if isinstance(forwarder.client, LeanClient):
                    forwarder.client = LeanClient(forwarder.url)
                with pytest.raises(MCPError) as caught:
                    await c.call_tool("lab__echo", {"text": "again"})
    assert caught.value.error.code == GuardUnavailable.code
    assert caught.value.error.message == "Upstream server unavailable"
    calls = [e for e in auditor.events if e.method == "tools/call"]
    assert len(calls) == 2 and calls[-1].outcome == "upstream_error"
