"""The portal's lean upstream client against an upstream that lies on purpose."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from pathlib import Path
from typing import Any

import anyio
import h11
import httpx2
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mcp_guard.portal.forwarding import _events
from mcp_guard.portal.upstream_http import HIGH_WATER, LeanClient

from ..test_upstream_http import ANSWER, json_answer, post, running, write
from .test_ssrf import _certificate

pytestmark = pytest.mark.anyio

FORGED = b'{"jsonrpc":"2.0","id":2,"result":{"forged":true}}'


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _raw(status: int, body: bytes) -> bytes:
    return b"HTTP/1.1 %d OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
        status,
        len(body),
        body,
    )


async def test_bytes_after_an_answer_are_never_read_as_a_later_callers_answer() -> None:
    async def smuggle(number: int, served: int, body: bytes, conn: h11.Connection, w: Any) -> None:
        head = [("content-type", "application/json"), ("content-length", str(len(ANSWER)))]
        data = conn.send(h11.Response(status_code=200, headers=head)) or b""
        data += (conn.send(h11.Data(data=ANSWER)) or b"") + (conn.send(h11.EndOfMessage()) or b"")
        w.write(data + _raw(200, FORGED))  # one write: the forged answer arrives with the real one

    async with running(smuggle) as (_server, url), LeanClient(url) as client:
        assert await post(client, url) == ANSWER
        assert await post(client, url) == ANSWER  # never the forged answer


async def test_bytes_sent_on_an_idle_connection_drop_it() -> None:
    async def later(number: int, served: int, body: bytes, conn: h11.Connection, w: Any) -> None:
        await json_answer(number, served, body, conn, w)
        await w.drain()
        await asyncio.sleep(0.05)
        w.write(_raw(200, FORGED))  # an answer to no request, on the idle connection

    async with running(later) as (server, url), LeanClient(url) as client:
        assert await post(client, url) == ANSWER
        await anyio.sleep(0.2)
        assert await post(client, url) == ANSWER
    assert server.connections == 2


async def test_the_cookie_jar_stays_bounded_however_many_cookies_the_upstream_sets() -> None:
    async def flood(number: int, served: int, body: bytes, conn: h11.Connection, w: Any) -> None:
        head = [("content-type", "application/json"), ("content-length", str(len(ANSWER)))]
        head += [("set-cookie", f"c{served}x{i}={'v' * 200}") for i in range(100)]
        write(conn, w, h11.Response(status_code=200, headers=head), h11.Data(data=ANSWER), h11.EndOfMessage())

    async with running(flood) as (_server, url), LeanClient(url) as client:
        for _ in range(20):
            assert await post(client, url) == ANSWER
        assert len(client._cookies.cookies) <= 50
        assert sum(len(k) + len(v) for k, v in client._cookies.cookies.items()) <= 8192


async def test_endless_informational_answers_fail_instead_of_holding_the_caller() -> None:
    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        try:
            while True:  # each 1xx comes well within the read timeout
                writer.write(b"HTTP/1.1 102 Processing\r\n\r\n")
                await writer.drain()
                await asyncio.sleep(0.02)
        except ConnectionError:
            pass

    listener = await asyncio.start_server(stall, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}/mcp"
    try:
        async with LeanClient(url, read_timeout=0.5) as client:
            with anyio.fail_after(5), pytest.raises(httpx2.RemoteProtocolError):
                await post(client, url)
            assert client._count == 0
    finally:
        listener.close()


async def _raw_server(answer: bytes) -> tuple[asyncio.Server, str]:
    async def reply(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.read(65536):
                writer.write(answer)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    listener = await asyncio.start_server(reply, "127.0.0.1", 0)
    return listener, f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}/mcp"


async def test_an_answer_framed_both_by_length_and_by_chunks_is_refused() -> None:
    forged = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n" % len(ANSWER)
    forged += b"transfer-encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(ANSWER), ANSWER)
    listener, url = await _raw_server(forged)
    try:
        async with LeanClient(url) as client:
            with pytest.raises(httpx2.RemoteProtocolError):
                await post(client, url)
            assert client._idle == [] and client._count == 0
    finally:
        listener.close()


async def test_an_endless_head_fails_at_its_cap() -> None:
    head = b"HTTP/1.1 200 OK\r\n" + b"x-pad: " + b"a" * (200 * 1024) + b"\r\n\r\n"
    listener, url = await _raw_server(head)
    try:
        async with LeanClient(url) as client:
            with pytest.raises(httpx2.RemoteProtocolError):
                await post(client, url)
            assert client._count == 0
    finally:
        listener.close()


async def test_an_http_1_0_answer_is_read_and_its_connection_not_reused() -> None:
    answer = b"HTTP/1.0 200 OK\r\ncontent-type: application/json\r\n\r\n" + ANSWER
    accepted = [0]

    async def once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted[0] += 1
        await reader.read(65536)
        writer.write(answer)
        await writer.drain()
        writer.close()

    listener = await asyncio.start_server(once, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}/mcp"
    try:
        async with LeanClient(url) as client:
            for _ in range(2):
                assert await post(client, url) == ANSWER
            assert client._idle == [] and client._count == 0
    finally:
        listener.close()
    assert accepted[0] == 2


async def test_connections_left_at_an_endless_event_stream_free_their_slot_for_waiting_callers() -> None:
    async def endless(number: int, served: int, body: bytes, conn: h11.Connection, w: Any) -> None:
        write(conn, w, h11.Response(status_code=200, headers=[("content-type", "text/event-stream")]))
        write(conn, w, h11.Data(data=b"event: message\r\ndata: " + ANSWER + b"\r\n\r\n"))
        try:
            while True:  # the stream never ends: a comment now and then
                await asyncio.sleep(0.05)
                write(conn, w, h11.Data(data=b": ping\r\n\r\n"))
                await w.drain()
        except ConnectionError:
            pass

    async def answer_and_leave(client: LeanClient, url: str) -> None:
        async with client.stream("POST", url, content=b"{}") as response:
            async for event in _events(response):
                assert event.data.encode() == ANSWER
                break  # as the forwarder does at its answer

    async with running(endless) as (_server, url), LeanClient(url, timeout=5.0, max_connections=1) as client:
        await answer_and_leave(client, url)
        with anyio.fail_after(2):  # well under the 5 s pool timeout
            await answer_and_leave(client, url)


async def _tls_server(tmp: Path) -> tuple[asyncio.Server, Path]:
    ca, chain, key = _certificate(tmp)  # a leaf for idp.example from a CA no one trusts
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(chain, key)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await reader.read(65536)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(ANSWER), ANSWER))
            await writer.drain()
        writer.close()

    return await asyncio.start_server(answer, "127.0.0.1", 0, ssl=context), ca


async def test_an_upstream_certificate_from_an_unknown_authority_is_refused(tmp_path: Path) -> None:
    listener, _ca = await _tls_server(tmp_path)
    url = f"https://127.0.0.1:{listener.sockets[0].getsockname()[1]}/mcp"
    try:
        async with LeanClient(url) as client:
            with pytest.raises(httpx2.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await post(client, url)
            assert client._count == 0
    finally:
        listener.close()


async def test_an_upstream_certificate_for_another_name_is_refused_even_from_a_trusted_authority(
    tmp_path: Path,
) -> None:
    listener, ca = await _tls_server(tmp_path)
    url = f"https://127.0.0.1:{listener.sockets[0].getsockname()[1]}/mcp"
    trusting = ssl.create_default_context(cafile=str(ca))
    try:
        async with LeanClient(url, ssl_context=trusting) as client:
            with pytest.raises(httpx2.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await post(client, url)
    finally:
        listener.close()


async def test_callers_past_the_pool_wait_the_pool_timeout_then_fail_and_leave_no_slot_taken() -> None:
    release = asyncio.Event()

    async def held(number: int, served: int, body: bytes, conn: h11.Connection, w: Any) -> None:
        await release.wait()
        await json_answer(number, served, body, conn, w)

    async with running(held) as (server, url), LeanClient(url, timeout=0.5, max_connections=2) as client:
        async with anyio.create_task_group() as tg:
            for _ in range(2):
                tg.start_soon(post, client, url)
            await anyio.sleep(0.1)
            with anyio.fail_after(3), pytest.raises(httpx2.PoolTimeout):
                await post(client, url)
            release.set()
        assert client._count == 2 and len(client._idle) == 2
        assert await post(client, url) == ANSWER  # a kept connection, no third one
    assert server.connections == 2


async def test_an_answer_with_connection_close_is_read_and_its_connection_not_reused() -> None:
    async def closing(number: int, served: int, body: bytes, conn: h11.Connection, w: Any) -> None:
        head = [("content-length", str(len(ANSWER))), ("connection", "close")]
        write(conn, w, h11.Response(status_code=200, headers=head), h11.Data(data=ANSWER), h11.EndOfMessage())

    async with running(closing) as (server, url), LeanClient(url) as client:
        for _ in range(2):
            assert await post(client, url) == ANSWER
        assert client._idle == [] and client._count == 0
    assert server.connections == 2


def _has_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _has_ipv6(), reason="no IPv6 loopback")
async def test_an_ipv6_upstream_is_reached_with_a_bracketed_host() -> None:
    heads: list[bytes] = []

    async def reply(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(await reader.read(65536))
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(ANSWER), ANSWER))
        await writer.drain()
        writer.close()

    listener = await asyncio.start_server(reply, "::1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        async with LeanClient(f"http://[::1]:{port}/mcp") as client:
            assert await post(client, f"http://[::1]:{port}/mcp") == ANSWER
    finally:
        listener.close()
    assert b"\r\nhost: [::1]:%d\r\n" % port in heads[0].lower()


async def test_a_cookie_one_upstream_sets_is_never_sent_to_another() -> None:
    heads: dict[str, list[bytes]] = {"a": [], "b": []}

    def server(name: str, extra: bytes) -> Any:
        async def reply(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await reader.read(65536):
                    heads[name].append(data.lower())
                    writer.write(
                        b"HTTP/1.1 200 OK\r\n%scontent-length: %d\r\n\r\n%s" % (extra, len(ANSWER), ANSWER)
                    )
                    await writer.drain()
            writer.close()

        return reply

    a = await asyncio.start_server(server("a", b"set-cookie: session=secret-of-a\r\n"), "127.0.0.1", 0)
    b = await asyncio.start_server(server("b", b""), "127.0.0.1", 0)
    url_a = f"http://127.0.0.1:{a.sockets[0].getsockname()[1]}/mcp"
    url_b = f"http://127.0.0.1:{b.sockets[0].getsockname()[1]}/mcp"
    try:
        async with LeanClient(url_a) as client_a, LeanClient(url_b) as client_b:
            for _ in range(2):
                await post(client_a, url_a)
                await post(client_b, url_b)
    finally:
        a.close()
        b.close()
    assert b"secret-of-a" in heads["a"][1]  # sent back to the upstream that set it
    assert not any(b"cookie" in head for head in heads["b"])


async def test_an_endless_answer_to_a_notification_is_not_read_without_end() -> None:
    sent = [0]

    async def endless(number: int, served: int, body: bytes, conn: h11.Connection, w: Any) -> None:
        write(conn, w, h11.Response(status_code=202, headers=[("transfer-encoding", "chunked")]))
        with contextlib.suppress(ConnectionError):
            while sent[0] < 64 << 20:
                write(conn, w, h11.Data(data=b" " * 65536))
                await w.drain()
                sent[0] += 65536

    async with running(endless) as (_server, url), LeanClient(url) as client:
        with anyio.fail_after(10), pytest.raises(httpx2.RemoteProtocolError):
            await client.post(url, content=b'{"jsonrpc":"2.0","method":"notifications/initialized"}')
        assert client._count == 0
    assert sent[0] < 16 << 20


MALFORMED = [
    b"HTTP/1.1 101 Switching Protocols\r\nupgrade: h2c\r\nconnection: upgrade\r\n\r\n",
    b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n{}",
    b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nbad header\r\n\r\n",
    b"HTTP/1.1 2000 OK\r\n\r\n",
    b"garbage\r\n\r\n",
    b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n{}",  # closed short of its length
]


@pytest.mark.parametrize("answer", MALFORMED)
async def test_a_malformed_answer_fails_as_a_transport_error_and_frees_its_connection(answer: bytes) -> None:
    async def reply(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            await reader.read(65536)
            writer.write(answer)
            await writer.drain()
        writer.close()

    listener = await asyncio.start_server(reply, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}/mcp"
    try:
        async with LeanClient(url, read_timeout=2.0) as client:
            with anyio.fail_after(5), pytest.raises(httpx2.TransportError):
                await post(client, url)
            assert client._count == 0
    finally:
        listener.close()


_PIECES = st.sampled_from(
    [
        b"HTTP/1.1 200 OK\r\n",
        b"HTTP/1.0 200 OK\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\n",
        b"content-length: 2\r\n",
        b"content-length: 0\r\n",
        b"transfer-encoding: chunked\r\n",
        b"connection: close\r\n",
        b"content-type: text/event-stream\r\n",
        b"set-cookie: a=b\r\n",
        b"\r\n",
        b"{}",
        b"2\r\n{}\r\n0\r\n\r\n",
        b'data: {"id":1}\r\n\r\n',
        ANSWER,
    ]
)
_FUZZ = st.lists(st.one_of(_PIECES, st.binary(max_size=12)), max_size=12).map(b"".join)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=_FUZZ)
@example(first=_raw(200, ANSWER) + _raw(200, FORGED))
def test_whatever_an_upstream_answers_first_a_later_call_gets_its_own_answer_or_an_error(
    first: bytes,
) -> None:
    """The first answer is fuzzed; each later one is right. The client may fail (a transport error),
    but a later call never receives bytes of the first answer."""

    async def scenario() -> None:
        connections = [0]

        async def reply(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            served = 0 if connections[0] == 0 else 1
            connections[0] += 1
            with contextlib.suppress(ConnectionError):
                while await reader.read(65536):
                    right = b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(ANSWER), ANSWER)
                    writer.write(first if served == 0 else right)
                    served += 1
                    await writer.drain()
            writer.close()

        listener = await asyncio.start_server(reply, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}/mcp"
        try:
            async with LeanClient(url, read_timeout=0.3, timeout=1.0) as client:
                with contextlib.suppress(httpx2.TransportError):
                    async with client.stream("POST", url, content=b"{}") as response:
                        await response.aread()
                for _ in range(3):  # later calls, on whatever connection the pool holds
                    with contextlib.suppress(httpx2.TransportError):
                        async with client.stream("POST", url, content=b"{}") as response:
                            body = await response.aread()
                            assert body == ANSWER, (first, body)
                assert client._count == len(client._idle) + len(client._draining)
        finally:
            listener.close()

    asyncio.run(scenario())


async def test_an_event_stream_flooding_past_its_answer_is_buffered_to_the_high_water_mark_then_closed() -> (
    None
):
    sent = [0]

    async def flood(number: int, served: int, body: bytes, conn: h11.Connection, w: Any) -> None:
        if number > 0:
            return await json_answer(number, served, body, conn, w)
        write(conn, w, h11.Response(status_code=200, headers=[("content-type", "text/event-stream")]))
        write(conn, w, h11.Data(data=b"event: message\r\ndata: " + ANSWER + b"\r\n\r\n"))
        with contextlib.suppress(ConnectionError):
            while sent[0] < 256 << 20:
                write(conn, w, h11.Data(data=b": " + b"x" * 65536 + b"\r\n\r\n"))
                await w.drain()
                sent[0] += 65536

    async with running(flood) as (_server, url), LeanClient(url) as client:
        async with client.stream("POST", url, content=b"{}") as response:
            async for event in _events(response):
                assert event.data.encode() == ANSWER
                break
        [left] = client._draining
        await anyio.sleep(0.1)
        assert left.protocol.size <= HIGH_WATER + (1 << 20)
        await anyio.sleep(0.5)  # no other request comes, yet the endless stream is closed
        assert left.dropped and client._draining == [] and client._count == 0
        assert await post(client, url) == ANSWER
    assert sent[0] < 32 << 20
