"""One supervised connection to an upstream MCP server (stdio subprocess or streamable HTTP).

The portal keeps one long-lived session per upstream and caches its lists, so
a downstream ``tools/list`` costs no upstream round trip; the cache is
refreshed when the upstream announces a change. A crashed or hung upstream is
marked down (its items leave the lists), restarted with exponential backoff,
and only its own calls fail meanwhile.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from typing import Any, Literal, TextIO
from urllib.parse import urlsplit

import anyio
import httpx2
from mcp import types
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import MCP_DEFAULT_SSE_READ_TIMEOUT, MCP_DEFAULT_TIMEOUT
from mcp.shared.exceptions import MCPError
from pydantic import TypeAdapter

from ..config import UpstreamSection
from ..errors import ConfigError, GuardUnavailable
from ..guard import Guard
from .attribution import CURRENT_CALL, SharedCalls
from .bounded import bounded, message_cap
from .catalog import LIST_KEYS
from .credentials import UpstreamCredentials
from .forwarding import HttpForwarder, Progress
from .lockdown import PortalSigner
from .upstream_http import LeanClient, lean_client_for

logger = logging.getLogger("mcp_guard.portal")

State = Literal["starting", "up", "down", "stopped"]

_LIST_METHODS: Mapping[str, str] = {
    "tool": "list_tools",
    "prompt": "list_prompts",
    "resource": "list_resources",
    "resource_template": "list_resource_templates",
}

_CHANGED: Mapping[str, str] = {
    "notifications/tools/list_changed": "tool",
    "notifications/prompts/list_changed": "prompt",
    "notifications/resources/list_changed": "resource",
}

_NOTE: Any = TypeAdapter(types.ServerNotification)

#: Pages fetched from one upstream list at most (a server that never ends its cursor chain).
MAX_PAGES = 100

#: At least this long for a process upstream to start: its handshake and first lists. A short
#: ``timeout`` is a hang detector for requests; a process that imports its SDK on a busy machine
#: (or an ``npx`` package still downloading) would otherwise never come up.
START_SECONDS = 30.0

#: How long, and how many bytes, the end of a POST's event stream is awaited once its response arrived.
DRAIN_SECONDS = 0.25
DRAIN_BYTES = 64 * 1024


class _DrainedStream(httpx2.AsyncByteStream):
    """A response body that, when closed early, first reads the little that is left of it.

    The SDK's streamable HTTP client closes a POST's event stream as soon as the
    JSON-RPC response arrived, a moment before the server ends the stream; the
    connection pool then drops the connection and the next call opens a new one.
    Reading the (normally empty) remainder, briefly and boundedly, lets the
    connection go back to the pool. Anything longer or slower is closed as before.
    """

    def __init__(self, inner: httpx2.AsyncByteStream) -> None:
        self._inner = inner
        self._chunks: Any = None
        self._ended = False

    async def __aiter__(self) -> Any:
        self._chunks = self._inner.__aiter__()
        async for chunk in self._chunks:
            yield chunk
        self._ended = True

    async def aclose(self) -> None:
        try:
            if self._chunks is not None and not self._ended:
                with anyio.move_on_after(DRAIN_SECONDS):
                    left = DRAIN_BYTES
                    async for chunk in self._chunks:
                        left -= len(chunk)
                        if left < 0:
                            break
        except Exception:
            pass  # the connection is simply not reused
        finally:
            await self._inner.aclose()


class _KeepAliveTransport(httpx2.AsyncBaseTransport):
    """The default transport, with POST event streams drained on close (see :class:`_DrainedStream`)
    and each message read only up to ``max_message`` bytes (see :mod:`.bounded`)."""

    def __init__(self, max_message: int | None = None) -> None:
        self._inner = httpx2.AsyncHTTPTransport()
        self._max_message = max_message

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await self._inner.handle_async_request(request)
        response.stream = bounded(response, self._max_message)
        if request.method == "POST" and isinstance(response.stream, httpx2.AsyncByteStream):
            response.stream = _DrainedStream(response.stream)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


class ForwardingSession(ClientSession):
    """The portal's client session to an upstream: results are forwarded, not re-validated.

    The upstream validates its own structured output against the output schema it
    declares, the portal serves that same schema, and the downstream client checks
    results against it; a second check on the way through only costs time. Size
    checks, result scanning and audit run in the guard's chain as for any result.

    ``calls`` is set on shared sessions: the callers' calls in flight on it, to
    which the upstream's requests and log messages are delivered.
    """

    calls: SharedCalls | None = None

    async def validate_tool_result(self, name: str, result: types.CallToolResult) -> None:
        return None


def upstream_http_client(
    headers: dict[str, str], auth: httpx2.Auth | None = None, max_message: int | None = None
) -> httpx2.AsyncClient:
    """The HTTP client of one upstream session: the SDK's defaults, connections kept alive,
    messages past ``max_message`` bytes not read (:func:`.bounded.message_cap`)."""
    return httpx2.AsyncClient(
        headers=headers,
        auth=auth,
        timeout=httpx2.Timeout(MCP_DEFAULT_TIMEOUT, read=MCP_DEFAULT_SSE_READ_TIMEOUT),
        transport=_KeepAliveTransport(max_message),
    )


class UpstreamTimeout(MCPError, TimeoutError):
    """An upstream did not answer in time: an MCP error for the caller, a timeout for the audit trail."""


class UpstreamUnavailable(GuardUnavailable):
    """The upstream is down, restarting or did not answer in time; only its own items are affected."""

    public_message = "Upstream server unavailable"


def describe_failure(exc: BaseException) -> str:
    """``Type: message`` of what went wrong, looking inside exception groups.

    A task group wraps the real cause (a refused connection, a missing module) in an
    ``ExceptionGroup`` whose own text says only how many it holds; an operator needs the causes.
    """
    leaves: list[BaseException] = []
    pending = [exc]
    while pending and len(leaves) < 3:
        current = pending.pop(0)
        inner = getattr(current, "exceptions", None)
        if isinstance(inner, tuple) and inner:
            pending[:0] = list(inner)
        else:
            leaves.append(current)
    return "; ".join(f"{type(e).__name__}: {e}" for e in leaves) or f"{type(exc).__name__}: {exc}"


def own_interpreter(spec: UpstreamSection) -> UpstreamSection:
    """``command = "python"`` means the portal's own interpreter, in a config file or registered later.

    It lets an upstream written in Python run with the packages the portal was installed with,
    wherever its virtualenv lives; a server registered with ``servers add --command python``
    must mean the same as one listed in the config file.
    """
    if spec.command in ("python", "python3"):
        return spec.model_copy(update={"command": sys.executable})
    return spec


def check_upstream_url(url: str, allowed_hosts: frozenset[str] | None = None, *, field: str = "url") -> None:
    """Refuse URL upstreams that are not plain http(s), or whose host is not explicitly allowed.

    ``allowed_hosts`` None means "any host" (servers written into the config
    file by the admin); servers registered at run time always pass a set.
    Redirects are not followed across origins by the SDK's HTTP transport.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"upstream url {url!r} must be an absolute http(s) URL", field=field)
    if parts.username or parts.password:
        raise ConfigError("credentials in an upstream url are refused; use headers", field=field)
    if allowed_hosts is not None and parts.hostname.lower() not in allowed_hosts:
        raise ConfigError(f"upstream host {parts.hostname!r} is not in the allowed hosts", field=field)


class Upstream:
    """A supervised upstream: connect, cache lists, watch, restart.

    ``on_change`` is awaited whenever the served lists may have changed (the
    upstream came up, went down, or announced a list change).
    """

    def __init__(
        self,
        spec: UpstreamSection,
        *,
        on_change: Callable[[Upstream], Awaitable[None]],
        ping_interval: float = 5.0,
        backoff: tuple[float, float] = (0.25, 30.0),
        errlog: TextIO | None = None,
        on_notification: Callable[[Upstream, Any], Awaitable[None]] | None = None,
        pool: int = 4,
        lockdown: PortalSigner | None = None,
        guard: Guard | None = None,
        forward: bool = False,
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self.prefix = spec.effective_prefix
        self.state: State = "starting"
        self.session: ClientSession | None = None
        self.lists: dict[str, list[dict[str, Any]]] = {k: [] for k in LIST_KEYS}
        self.capabilities: types.ServerCapabilities | None = None
        self.restarts = 0
        self.last_error: str | None = None
        self._on_change = on_change
        self._on_notification = on_notification
        self._ping_interval = ping_interval
        self._backoff = backoff
        self._errlog = errlog
        self._failed = anyio.Event()
        self._up = anyio.Event()
        self._stale: set[str] = set()
        self._refresh_wakeup = anyio.Event()
        self._pool = max(1, pool)
        self._sessions: list[ClientSession] = []
        self._inflight: list[int] = []
        self._lockdown = lockdown
        self._guard = guard
        self._forward = forward and spec.url is not None
        #: Sends forwarded requests without an SDK client session (``[portal] forward``), when up.
        self.forwarder: HttpForwarder | None = None

    def _max_message(self) -> int | None:
        limits = getattr(self._guard, "size_limits", None)
        return message_cap(limits.max_result_bytes if limits is not None else None)

    # ------------------------------------------------------------------ supervision
    async def run(self) -> None:
        """Keep the upstream connected until cancelled."""
        # Its sessions (and their standalone streams) belong to no caller, whoever started it.
        CURRENT_CALL.set(None)
        delay = self._backoff[0]
        while True:
            try:
                await self._connect_and_serve()
                delay = self._backoff[0]
            except anyio.get_cancelled_exc_class():
                raise
            except BaseException as exc:
                self.last_error = describe_failure(exc)
                logger.warning("upstream %r failed: %s", self.name, self.last_error)
            await self._mark_down()
            self.restarts += 1
            await anyio.sleep(delay)
            delay = min(delay * 2, self._backoff[1])

    async def _connect_and_serve(self) -> None:
        async with AsyncExitStack() as stack:
            sessions = [await self._open(stack)]
            start = self.spec.timeout if self.spec.url is not None else max(self.spec.timeout, START_SECONDS)
            with anyio.fail_after(start):
                init = await sessions[0].initialize()
                self.capabilities = init.capabilities
                self.session = sessions[0]
                lists = {kind: await self._fetch(kind) for kind in LIST_KEYS}
            pool = await stack.enter_async_context(anyio.create_task_group())
            # Extra sessions to an HTTP upstream (one session's requests queue behind each other),
            # each held open by its own task so shutdown closes them independently.
            for _ in range(self._pool - 1 if self.spec.url is not None else 0):
                with anyio.fail_after(self.spec.timeout):
                    sessions.append(await pool.start(self._hold_session))
            stack.callback(pool.cancel_scope.cancel)
            if self._forward:
                self.forwarder = await self._open_forwarder(stack)
                if self.forwarder is not None:
                    pool.start_soon(self.forwarder.listen)
            self._sessions = sessions
            self._inflight = [0] * len(sessions)
            self._failed = anyio.Event()
            self.lists = lists
            self.state = "up"
            self.last_error = None
            self._up.set()
            logger.info("upstream %r up (%d tools)", self.name, len(lists["tool"]))
            await self._on_change(self)
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._refresher)
                await self._watch()
                tg.cancel_scope.cancel()

    async def _open_forwarder(self, stack: AsyncExitStack) -> HttpForwarder | None:
        """The direct forwarding session, or None (then every request keeps the SDK session)."""
        assert self.spec.url is not None
        auth = self._lockdown.auth(self.name) if self._lockdown is not None else None
        http: httpx2.AsyncClient | LeanClient
        fallback = lean_client_for(self.spec.url, auth=auth)
        if fallback is None:
            # The timeouts of the httpx2 client it stands in for (connect, write, pool; each read).
            http = LeanClient(
                self.spec.url,
                dict(self.spec.headers),
                cap=self._max_message(),
                timeout=MCP_DEFAULT_TIMEOUT,
                read_timeout=MCP_DEFAULT_SSE_READ_TIMEOUT,
            )
        else:
            logger.info("upstream %r: forwarding through httpx2 (%s)", self.name, fallback)
            http = upstream_http_client(dict(self.spec.headers), auth, self._max_message())
        await stack.enter_async_context(http)
        unattributed = SharedCalls(self._guard, self.name, by_stream=True)._record_unattributed
        forwarder = HttpForwarder(self.name, self.spec.url, http, self._forwarded_note, unattributed)
        try:
            with anyio.fail_after(self.spec.timeout):
                await forwarder.initialize()
        except Exception as exc:
            logger.warning("upstream %r: direct forwarding off (%s: %s)", self.name, type(exc).__name__, exc)
            return None
        stack.push_async_callback(forwarder.close)
        return forwarder

    async def _forwarded_note(self, message: Mapping[str, Any]) -> None:
        """A notification on a forwarded call's stream, handled as on the SDK session."""
        try:
            note = _NOTE.validate_python(message)
        except ValueError:
            return
        await self._on_message(note)

    async def _hold_session(self, *, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        async with AsyncExitStack() as stack:
            session = await self._open(stack)
            await session.initialize()
            task_status.started(session)
            await anyio.sleep_forever()

    async def open_private(
        self,
        stack: AsyncExitStack,
        callbacks: Mapping[str, Any],
        credentials: UpstreamCredentials | None = None,
    ) -> ClientSession:
        """A new, initialized session of this upstream with the given callbacks (one caller's own).

        ``credentials`` (from the credential broker) are laid over the server's
        own ``env`` (stdio: a process of its own) or ``headers`` (HTTP).
        """
        session = await self._open(stack, callbacks, credentials)
        with anyio.fail_after(self.spec.timeout):
            await session.initialize()
        return session

    async def _open(
        self,
        stack: AsyncExitStack,
        callbacks: Mapping[str, Any] | None = None,
        credentials: UpstreamCredentials | None = None,
    ) -> ClientSession:
        # Only the server's own env/headers and the broker's per-user values reach the upstream:
        # never the downstream caller's bearer token, never the portal's environment.
        if self.spec.command is not None:
            env = dict(self.spec.env)
            if credentials is not None:
                env.update(credentials.env)
            params = StdioServerParameters(
                command=self.spec.command, args=self.spec.args, env=env, cwd=self.spec.cwd
            )
            streams = await stack.enter_async_context(stdio_client(params, errlog=self._errlog or sys.stderr))
        else:
            assert self.spec.url is not None
            headers = dict(self.spec.headers)
            if credentials is not None:
                headers.update(credentials.headers)
            auth = self._lockdown.auth(self.name) if self._lockdown is not None else None
            http = upstream_http_client(headers, auth, self._max_message())
            await stack.enter_async_context(http)
            streams = await stack.enter_async_context(streamable_http_client(self.spec.url, http_client=http))
        shared = None
        if callbacks is None:
            # A shared session: what the upstream asks during a call goes to that call's caller.
            shared = SharedCalls(self._guard, self.name, by_stream=self.spec.url is not None)
            callbacks = {**shared.callbacks(), "message_handler": self._on_message}
        session = await stack.enter_async_context(
            ForwardingSession(streams[0], streams[1], read_timeout_seconds=self.spec.timeout, **callbacks)
        )
        session.calls = shared
        return session

    async def _watch(self) -> None:
        """Return when the upstream stops answering pings or a call saw the connection die."""
        while True:
            with anyio.move_on_after(self._ping_interval):
                await self._failed.wait()
                return
            try:
                with anyio.fail_after(min(self.spec.timeout, max(self._ping_interval, 1.0))):
                    assert self.session is not None
                    await self.session.send_ping()
            except Exception as exc:
                self.last_error = f"ping failed: {type(exc).__name__}: {exc}"
                return

    async def _mark_down(self) -> None:
        was_up = self.state == "up"
        self.state = "down"
        self.session = None
        self.forwarder = None
        self._sessions, self._inflight = [], []
        self._up = anyio.Event()
        self.lists = {k: [] for k in LIST_KEYS}
        if was_up:
            logger.warning("upstream %r down: %s", self.name, self.last_error)
            await self._on_change(self)

    async def wait_up(self, timeout: float) -> bool:
        with anyio.move_on_after(timeout):
            await self._up.wait()
            return True
        return False

    # ------------------------------------------------------------------ lists
    async def _fetch(self, kind: str) -> list[dict[str, Any]]:
        session = self.session
        assert session is not None
        caps = self.capabilities
        if kind == "tool" and (caps is None or caps.tools is None):
            return []
        if kind == "prompt" and (caps is None or caps.prompts is None):
            return []
        if kind in ("resource", "resource_template") and (caps is None or caps.resources is None):
            return []
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        fn = getattr(session, _LIST_METHODS[kind])
        for _ in range(MAX_PAGES):
            params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
            result = await fn(params=params)
            data = result.model_dump(by_alias=True, mode="json", exclude_none=True)
            items.extend(i for i in data.get(LIST_KEYS[kind], []) if isinstance(i, dict))
            cursor = data.get("nextCursor")
            if not cursor:
                break
        return items

    async def _on_message(self, message: Any) -> None:
        if isinstance(message, Exception):
            self.last_error = f"transport: {message!r}"
            return
        root = getattr(message, "root", message)
        method = getattr(root, "method", None)
        kind = _CHANGED.get(str(method))
        if kind is not None:
            self._stale.add(kind)
            if kind == "resource":
                self._stale.add("resource_template")
            self._refresh_wakeup.set()
        elif self._on_notification is not None:
            await self._on_notification(self, root)

    async def _refresher(self) -> None:
        # Runs outside the session's receive loop: awaiting a list request inside the
        # notification callback could wait on the very loop that delivers its answer.
        while True:
            await self._refresh_wakeup.wait()
            self._refresh_wakeup = anyio.Event()
            kinds, self._stale = self._stale, set()
            try:
                with anyio.fail_after(self.spec.timeout):
                    for kind in kinds:
                        self.lists[kind] = await self._fetch(kind)
            except Exception as exc:
                self.last_error = f"list refresh failed: {exc!r}"
                self._failed.set()
                return
            await self._on_change(self)

    # ------------------------------------------------------------------ requests
    async def request(
        self,
        send: Callable[[ClientSession], Awaitable[Any]],
        timeout: float | None = None,
        session: ClientSession | None = None,
    ) -> Any:
        """Run one request on the live session with the upstream's timeout; fail only this upstream.

        On a shared session the request counts as in flight there (for stdio
        attribution), with the caller's call (:data:`.attribution.CURRENT_CALL`)
        if it is made for one.
        """
        sessions, inflight = self._sessions, self._inflight
        if session is not None:
            sessions, inflight = [session], [0]
        if not sessions or self.state != "up":
            raise MCPError(UpstreamUnavailable.code, UpstreamUnavailable.public_message)
        index = min(range(len(sessions)), key=inflight.__getitem__) if len(sessions) > 1 else 0
        limit = self.spec.timeout if timeout is None else timeout
        chosen = sessions[index]
        shared = chosen.calls if isinstance(chosen, ForwardingSession) else None
        call = CURRENT_CALL.get() if shared is not None else None
        inflight[index] += 1
        if shared is not None:
            shared.enter(call)
        try:
            with anyio.fail_after(limit if math.isfinite(limit) else None):
                return await send(chosen)
        except TimeoutError:
            logger.warning("upstream %r timed out after %.1fs", self.name, limit)
            raise UpstreamTimeout(UpstreamUnavailable.code, "Upstream server timed out") from None
        except MCPError as exc:
            if exc.code == types.CONNECTION_CLOSED:
                if session is None:
                    self._failed.set()
                raise MCPError(UpstreamUnavailable.code, UpstreamUnavailable.public_message) from None
            raise
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream):
            if session is None:
                self._failed.set()
            raise MCPError(UpstreamUnavailable.code, UpstreamUnavailable.public_message) from None
        finally:
            inflight[index] -= 1
            if shared is not None:
                shared.leave(call)

    async def forward(
        self,
        method: str,
        params: Mapping[str, Any],
        *,
        progress: Progress | None = None,
        call: Any = None,
    ) -> dict[str, Any]:
        """Forward one request without an SDK session (see :mod:`.forwarding`), failing as :meth:`request`."""
        forwarder = self.forwarder
        if forwarder is None or self.state != "up":
            raise MCPError(UpstreamUnavailable.code, UpstreamUnavailable.public_message)
        limit = self.spec.timeout
        try:
            with anyio.fail_after(limit if math.isfinite(limit) else None):
                return await forwarder.request(method, params, progress=progress, call=call)
        except TimeoutError:
            logger.warning("upstream %r timed out after %.1fs", self.name, limit)
            raise UpstreamTimeout(UpstreamUnavailable.code, "Upstream server timed out") from None

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state,
            "transport": "stdio" if self.spec.command is not None else "http",
            "prefix": self.prefix,
            "restarts": self.restarts,
            "last_error": self.last_error,
            "items": {k: len(v) for k, v in self.lists.items()},
        }


__all__ = ["Upstream", "UpstreamTimeout", "UpstreamUnavailable", "check_upstream_url"]
