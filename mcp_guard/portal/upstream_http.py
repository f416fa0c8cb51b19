"""A lean HTTP/1.1 client for the forwarding path: h11 over asyncio protocols, connections kept alive.

A forwarded call is one POST and one answer on a kept-alive connection. Through
httpx2 that costs more CPU than the upstream spends answering it (request and
response models, auth and redirect machinery, the pool's per-request
bookkeeping, several socket writes). :class:`LeanClient` does only what the
forwarder needs:

* HTTP is h11's (a well-kept HTTP/1.1 state machine): nothing parsed by hand;
* one socket write per request, no task per request: the response is read in
  the caller's task as it arrives, the socket paused while the reader is behind;
* keep-alive connections, reused only once their previous response was read to
  the end; an idle connection the server closed is noticed before use, and a
  request is retried on a new connection only when it was certainly not sent;
* httpx2's timeouts, its cap on JSON bodies (:mod:`.bounded`), its event parser
  (one bounded event at a time), and its default TLS context.

Errors are httpx2's transport errors, so the forwarder handles both clients
alike. What this client cannot do - proxies, HTTP/2, an auth flow such as the
lockdown signer, an event loop other than asyncio - keeps the httpx2 client
(:func:`lean_client_for`).
"""

from __future__ import annotations

import asyncio
import codecs
import ssl
import time
import urllib.request
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import h11
import httpx2
import sniffio

from .bounded import MessageTooLarge
from .upstream_cookies import CookieJar

#: Seconds an idle connection is kept (httpx2's default; uvicorn closes idle connections after 5 s).
KEEPALIVE_SECONDS = 4.0
#: Connections to one upstream at most (httpx2's default); more requests wait up to the pool timeout.
MAX_CONNECTIONS = 100
#: Idle connections kept at most (httpx2's default).
MAX_IDLE = 20
#: Unread bytes buffered per connection before the socket is paused (the reader is behind).
HIGH_WATER = 256 * 1024
#: Largest response head (status line and headers) accepted.
MAX_HEAD = 64 * 1024
#: An event stream left at the answer is finished later if it ends within this many bytes and seconds
#: (the server ends it right after the answer); otherwise its connection is closed.
DRAIN_BYTES = 64 * 1024
DRAIN_SECONDS = 0.25
#: Informational (1xx) answers accepted before the final one (endless ones would outlast any read timeout).
MAX_INFORMATIONAL = 8
_USER_AGENT = b"mcp-guard-portal"


class _Protocol(asyncio.Protocol):
    """One socket: bytes received are queued for the reader, who feeds them to h11 when it needs them."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.chunks: list[bytes] = []
        self.size = 0
        self.eof = False
        self.lost = False
        self.paused = False
        self.waiter: asyncio.Future[None] | None = None
        self.drained: asyncio.Future[None] | None = None
        self.writing_paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.size += len(data)
        if self.size > HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = self.eof = True
        self._wake()
        if self.drained is not None and not self.drained.done():
            self.drained.set_result(None)

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        if self.drained is not None and not self.drained.done():
            self.drained.set_result(None)

    def take(self) -> bytes:
        data = b"".join(self.chunks) if len(self.chunks) != 1 else self.chunks[0]
        self.chunks.clear()
        self.size = 0
        if self.paused and self.transport is not None and not self.lost:
            self.paused = False
            self.transport.resume_reading()
        return data

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)


class _Connection:
    """One kept-alive HTTP/1.1 connection: an h11 state machine over a :class:`_Protocol`."""

    def __init__(self, protocol: _Protocol, read_timeout: float, write_timeout: float) -> None:
        self.protocol = protocol
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD)
        self.read_timeout = read_timeout
        self.write_timeout = write_timeout
        self.since = time.monotonic()
        self.dropped = False
        self.used = False
        self.left = 0
        self._fed_eof = False

    def reusable(self, now: float) -> bool:
        """Idle, not closed by the server meanwhile, nothing unexpected received (nor left in h11's
        buffer past the last answer: read next, it would be a later caller's answer), not too old."""
        p = self.protocol
        return (
            not p.eof
            and not p.chunks
            and not self.h11.trailing_data[0]
            and self.h11.our_state is h11.IDLE
            and now - self.since < KEEPALIVE_SECONDS
        )

    async def send(self, data: bytes) -> None:
        p = self.protocol
        if p.transport is None or p.eof or p.transport.is_closing():
            raise _NotSent()
        p.transport.write(data)
        if p.writing_paused:
            p.drained = asyncio.get_running_loop().create_future()
            await _wait(p.drained, self.write_timeout, httpx2.WriteTimeout)
            if p.lost:
                raise httpx2.WriteError("connection closed while writing")

    def poll(self) -> Any:
        """The next h11 event from what has arrived so far (NEED_DATA: nothing more yet)."""
        conn, p = self.h11, self.protocol
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                raise httpx2.RemoteProtocolError(str(exc)) from None
            if event is not h11.NEED_DATA:
                return event
            if p.chunks:
                conn.receive_data(p.take())
            elif p.eof and not self._fed_eof:
                self._fed_eof = True
                conn.receive_data(b"")
            else:
                return event

    async def next_event(self) -> Any:
        """The next h11 event of the response, waiting for the socket as needed."""
        p = self.protocol
        while True:
            event = self.poll()
            if event is not h11.NEED_DATA:
                return event
            if self._fed_eof:  # pragma: no cover - h11 reports an EOF as an event or an error
                raise httpx2.RemoteProtocolError("the server closed the connection")
            p.waiter = asyncio.get_running_loop().create_future()
            try:
                await _wait(p.waiter, self.read_timeout, httpx2.ReadTimeout)
            finally:
                p.waiter = None

    def finished(self) -> bool | None:
        """For a response left unread at its end: True once it ended (the connection can be reused),
        None while more may come, False when it cannot be reused. Never waits."""
        try:
            while True:
                event = self.poll()
                if event is h11.NEED_DATA:
                    return None
                if isinstance(event, h11.Data):
                    self.left -= len(event.data)
                    if self.left < 0:
                        return False
                elif isinstance(event, h11.EndOfMessage):
                    return self._next_cycle()
                else:
                    return False
        except httpx2.RemoteProtocolError:
            return False

    def _next_cycle(self) -> bool:
        if self.h11.our_state is not h11.DONE or self.h11.their_state is not h11.DONE:
            return False
        try:
            self.h11.start_next_cycle()
        except h11.LocalProtocolError:
            return False
        self.since = time.monotonic()
        return True

    def close(self) -> None:
        if self.protocol.transport is not None:
            self.protocol.transport.close()


class _NotSent(Exception):
    """The connection was closed before the request was written: nothing reached the server."""


async def _wait(future: asyncio.Future[None], timeout: float, error: type[Exception]) -> None:
    """Await ``future`` at most ``timeout`` seconds (one timer, no task), else raise ``error``."""
    handle = asyncio.get_running_loop().call_later(timeout, _expire, future)
    try:
        await future
    except _Expired:
        raise error("timed out") from None
    finally:
        handle.cancel()


def _expire(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_exception(_Expired())


class _Expired(Exception):
    pass


class LeanResponse:
    """The part of an httpx2 response the forwarder reads: status, headers, the body as bytes or text."""

    #: httpx2's event parser attaches the request to its errors when there is one.
    request = None

    def __init__(
        self, connection: _Connection, status: int, headers: dict[str, str], cap: int | None
    ) -> None:
        self._connection = connection
        self.status_code = status
        self.headers = headers
        self._cap = cap
        self.complete = False

    async def read_chunk(self) -> bytes | None:
        """The body's next part, None at its end (plain awaits: nothing for asyncio to finalize)."""
        event = await self._connection.next_event()
        if isinstance(event, h11.Data):
            return bytes(event.data)
        if isinstance(event, h11.EndOfMessage):
            self.complete = True
            return None
        raise httpx2.RemoteProtocolError(f"unexpected {type(event).__name__} in a response body")

    async def aiter_text(self) -> AsyncIterator[str]:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        while (chunk := await self.read_chunk()) is not None:
            text = decoder.decode(chunk)
            if text:
                yield text
        tail = decoder.decode(b"", final=True)
        if tail:
            yield tail

    async def aread(self) -> bytes:
        """The whole body; a body past the cap fails (see :mod:`.bounded`) and is not read further."""
        parts: list[bytes] = []
        size, cap = 0, self._cap
        while (chunk := await self.read_chunk()) is not None:
            size += len(chunk)
            if cap is not None and size > cap:
                raise MessageTooLarge(f"upstream message larger than {cap} bytes: not read further")
            parts.append(chunk)
        return b"".join(parts)

    async def aclose(self) -> None:
        return None


class LeanClient:
    """Keep-alive HTTP/1.1 connections to one upstream origin; see the module docstring.

    ``headers`` are sent with every request (the upstream's configured headers);
    ``cap`` bounds JSON answers (:func:`.bounded.message_cap`).
    """

    def __init__(
        self,
        url: str,
        headers: Mapping[str, str] | None = None,
        *,
        cap: int | None = None,
        timeout: float = 30.0,
        read_timeout: float = 300.0,
        ssl_context: ssl.SSLContext | None = None,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._ssl = (ssl_context or httpx2.create_ssl_context()) if parts.scheme == "https" else None
        default_port = 443 if parts.scheme == "https" else 80
        host = f"[{self._host}]" if ":" in self._host else self._host
        self._host_header = (host if self._port == default_port else f"{host}:{self._port}").encode("idna")
        self._headers = [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()
        ]
        self._cap = cap
        self._timeout = timeout
        self._read_timeout = read_timeout
        self._max = max_connections
        self._idle: list[_Connection] = []
        self._draining: list[_Connection] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._count = 0
        self._closed = False
        self._cookies = CookieJar()
        #: Connections opened so far (for tests and the benchmark).
        self.opened = 0

    async def __aenter__(self) -> LeanClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        self._closed = True
        for connection in [*self._idle, *self._draining]:
            self._drop(connection)
        self._idle.clear()
        self._draining.clear()

    # ------------------------------------------------------------------ requests
    @asynccontextmanager
    async def stream(
        self,
        method: str,
        url: str,
        *,
        content: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> AsyncIterator[LeanResponse]:
        """Send one request and yield its response once its head arrived; the body is read from it.

        A response read to its end gives its connection back to the pool; one left at the end
        of an event stream (the forwarder stops at the answer it waits for) is finished later,
        without waiting (see :meth:`_settle`); one left early (an error, a cancellation, the
        cap) closes it.
        """
        body = content.encode() if isinstance(content, str) else (content or b"")
        connection, response = await self._send(method, _target(url), body, headers or {})
        try:
            yield response
        except BaseException:
            self._drop(connection)
            raise
        if not response.complete:
            connection.left = DRAIN_BYTES
            connection.since = time.monotonic()
            self._draining.append(connection)
            # Settled then even if no request comes (an endless stream would hold its socket).
            asyncio.get_running_loop().call_later(DRAIN_SECONDS * 1.2, self._settle)
        elif connection._next_cycle():
            self._park(connection)
        else:
            self._drop(connection)

    async def post(
        self, url: str, *, content: bytes | str | None = None, headers: Mapping[str, str] | None = None
    ) -> LeanResponse:
        """A request whose answer is not needed beyond its status (notifications, responses): read
        to the end so the connection is reused."""
        async with self.stream("POST", url, content=content, headers=headers) as response:
            await _discard(response)
        return response

    async def delete(self, url: str, *, headers: Mapping[str, str] | None = None) -> LeanResponse:
        async with self.stream("DELETE", url, headers=headers) as response:
            await _discard(response)
        return response

    async def _send(
        self, method: str, target: bytes, body: bytes, headers: Mapping[str, str]
    ) -> tuple[_Connection, LeanResponse]:
        head = [(b"host", self._host_header), (b"user-agent", _USER_AGENT), *self._headers]
        head += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        cookies = self._cookies.header()
        if cookies is not None:
            head.append((b"cookie", cookies))
        if body or method in ("POST", "PUT", "PATCH"):
            head.append((b"content-length", str(len(body)).encode()))
        while True:
            connection = await self._acquire()
            try:
                data = connection.h11.send(h11.Request(method=method, target=target, headers=head)) or b""
                if body:
                    data += connection.h11.send(h11.Data(data=body)) or b""
                data += connection.h11.send(h11.EndOfMessage()) or b""
                await connection.send(data)
            except _NotSent:
                self._drop(connection)
                if not connection.used:  # a new connection the server closed at once: no retry loop
                    raise httpx2.ConnectError("the upstream closed the connection at once") from None
                continue  # closed before anything was written: the request cannot have been sent
            except h11.LocalProtocolError as exc:
                self._drop(connection)
                raise httpx2.LocalProtocolError(str(exc)) from None
            except BaseException:
                self._drop(connection)
                raise
            connection.used = True
            try:
                event = await connection.next_event()
                for _ in range(MAX_INFORMATIONAL):
                    if not isinstance(event, h11.InformationalResponse):
                        break
                    event = await connection.next_event()
                if isinstance(event, h11.InformationalResponse):
                    raise httpx2.RemoteProtocolError("too many informational answers")
                if not isinstance(event, h11.Response):
                    raise httpx2.RemoteProtocolError("the server closed the connection without an answer")
                found: dict[str, str] = {}
                for name, value in event.headers:
                    if name == b"set-cookie":
                        self._cookies.keep(value.decode("latin-1"))
                    found.setdefault(name.decode("latin-1"), value.decode("latin-1"))
                if found.get("content-encoding", "identity").lower() != "identity":
                    raise httpx2.RemoteProtocolError("a content-encoding that was not asked for")
                if "transfer-encoding" in found and "content-length" in found:
                    # Framed two ways: how long the answer is depends on who reads it (smuggling).
                    raise httpx2.RemoteProtocolError("an answer with both a length and chunks")
            except BaseException:
                self._drop(connection)
                raise
            return connection, LeanResponse(connection, event.status_code, found, self._cap)

    # ------------------------------------------------------------------ pool
    async def _acquire(self) -> _Connection:
        """An idle connection, or a new one once the pool has room (waiting up to the pool timeout;
        every :data:`DRAIN_SECONDS` while connections drain, as nothing else frees their slots)."""
        deadline = time.monotonic() + self._timeout
        while True:
            if self._closed:
                raise httpx2.PoolTimeout("the client is closed")
            if self._draining:
                self._settle()
            now = time.monotonic()
            while self._idle:
                connection = self._idle.pop()
                if connection.reusable(now):
                    return connection
                self._drop(connection)
            if self._count < self._max:
                break
            if now >= deadline:
                raise httpx2.PoolTimeout("timed out")
            await self._wait_slot(min(deadline - now, DRAIN_SECONDS) if self._draining else deadline - now)
        self._count += 1
        try:
            return await self._connect()
        except BaseException:
            self._count -= 1
            self._wake_one()
            raise

    def _settle(self) -> None:
        """Connections whose last event stream was left at its end: reused once it ended, closed
        when it went on past :data:`DRAIN_BYTES` or :data:`DRAIN_SECONDS`; never waits."""
        now = time.monotonic()
        waiting: list[_Connection] = []
        for connection in self._draining:
            done = connection.finished()
            if done:
                self._park(connection)
            elif done is None and now - connection.since < DRAIN_SECONDS:
                waiting.append(connection)
            else:
                self._drop(connection)
        self._draining = waiting

    async def _wait_slot(self, seconds: float) -> None:
        """Until a slot may be free, or ``seconds`` passed (the caller looks again either way)."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await _wait(waiter, seconds, httpx2.PoolTimeout)
        except httpx2.PoolTimeout:
            pass
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.pop(0)
            if not waiter.done():
                waiter.set_result(None)
                return

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        protocol = _Protocol()
        try:
            await asyncio.wait_for(
                loop.create_connection(
                    lambda: protocol,
                    self._host,
                    self._port,
                    ssl=self._ssl,
                    server_hostname=self._host if self._ssl is not None else None,
                ),
                self._timeout,
            )
        except TimeoutError:
            raise httpx2.ConnectTimeout(f"connecting to {self._host}:{self._port} timed out") from None
        except (OSError, ssl.SSLError) as exc:
            raise httpx2.ConnectError(str(exc) or type(exc).__name__) from None
        self.opened += 1
        return _Connection(protocol, self._read_timeout, self._timeout)

    def _park(self, connection: _Connection) -> None:
        if self._closed or len(self._idle) >= MAX_IDLE or not connection.reusable(time.monotonic()):
            self._drop(connection)
            return
        self._idle.append(connection)
        self._wake_one()

    def _drop(self, connection: _Connection) -> None:
        if connection.dropped:
            return
        connection.dropped = True
        connection.close()
        self._count -= 1
        self._wake_one()


async def _discard(response: LeanResponse) -> None:
    """Read an unneeded answer (a notification's 202) to its end, failing past :data:`DRAIN_BYTES`."""
    size = 0
    while (chunk := await response.read_chunk()) is not None:
        size += len(chunk)
        if size > DRAIN_BYTES:
            raise httpx2.RemoteProtocolError(f"an unneeded answer larger than {DRAIN_BYTES} bytes")


def _target(url: str) -> bytes:
    parts = urlsplit(url)
    path = parts.path or "/"
    return (f"{path}?{parts.query}" if parts.query else path).encode("ascii")


def lean_client_for(url: str, *, auth: object | None) -> str | None:
    """Why the lean client cannot serve ``url`` (so the httpx2 client does), or None when it can.

    Proxies (the environment's ``HTTP(S)_PROXY`` / ``ALL_PROXY`` unless ``NO_PROXY`` covers
    the host), an auth flow, or an event loop other than asyncio keep the httpx2 client.
    """
    if auth is not None:
        return "the upstream's requests are signed by an auth flow"
    try:
        if sniffio.current_async_library() != "asyncio":
            return "not running on asyncio"
    except sniffio.AsyncLibraryNotFoundError:
        return "not running on asyncio"
    parts = urlsplit(url)
    proxies = urllib.request.getproxies_environment()
    proxied = proxies.get(parts.scheme) or proxies.get("all")
    if proxied and not urllib.request.proxy_bypass(parts.hostname or ""):
        return "a proxy is configured in the environment"
    return None


__all__ = ["LeanClient", "LeanResponse", "lean_client_for"]
