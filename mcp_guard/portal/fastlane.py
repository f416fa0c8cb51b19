"""The fast lane: one targeted request on a known 2025-11-25 session, answered in the HTTP request's task.

Through the SDK's streamable HTTP stack a ``tools/call`` costs more than the
call itself: the session manager hands the POST to the session's transport,
which validates it, opens memory streams to the session's dispatcher, runs the
handler in another task and streams the answer back as an SSE response. Most
requests a portal serves need none of that: one request in, one answer out.

:class:`FastLane` sits right behind the portal's :class:`~mcp_guard.integrations.sessions.SessionGate`
(so authentication and the session-owner check have already run, exactly as for
every other request) and in front of the SDK's endpoint. It takes a POST only
when it can show the SDK would treat it the same way:

* one JSON-RPC request (not a batch, notification or response) whose method
  only needs forwarding - ``tools/call``, ``prompts/get``, ``resources/read``,
  ``completion/complete`` - or is a list served from the portal's screened
  catalog, without a ``progressToken``;
* on a session the SDK still serves (not terminated, not timing out, no event
  store to resume from) whose client finished the 2025-11-25 handshake and
  declared nothing an upstream could ask it (sampling, elicitation, roots);
* with the ``Accept``, ``Content-Type``, ``Mcp-Protocol-Version``, ``Host``
  and ``Origin`` headers the SDK's transport accepts.

It then runs the request through the SDK's own request kernel
(:class:`mcp.server.runner.ServerRunner`, by way of :mod:`.lanekernel`, which
leaves out only an OpenTelemetry span that would record nothing) on the
session's connection: the same
middleware chain - the guard's, so the same pipeline, decisions, sanitizers,
limits, budgets, flows, approvals and audit events - the same handlers and the
same result shaping, and writes the answer as one ``application/json`` body
(an SSE body when the call produced notifications for the caller, such as an
upstream's log messages, so nothing the SDK path delivers is lost).

Everything else - and anything the lane is unsure of - falls through to the
SDK's endpoint unchanged, with the body the lane already read replayed.
"""

from __future__ import annotations

import json
import logging
import math
import weakref
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import anyio
import pydantic_core
from mcp.server.connection import Connection
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.streamable_http import REQUEST_CANCELLED, check_accept_headers
from mcp.shared.dispatcher import coerce_request_id
from mcp.shared.exceptions import NoBackChannelError
from mcp.shared.jsonrpc_dispatcher import (
    _InFlight,
    handler_exception_to_error_data,
    progress_token_from_params,
)
from mcp.shared.message import ServerMessageMetadata
from mcp.shared.transport_context import TransportContext
from mcp_types import ErrorData, JSONRPCError, JSONRPCRequest, JSONRPCResponse, jsonrpc_message_adapter
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from pydantic import ValidationError
from starlette.requests import Request

from ..integrations.http import CLIENT_GONE, ON_DISCONNECT
from .attribution import declared
from .lanekernel import LaneKernel

logger = logging.getLogger("mcp_guard.portal")

#: The requests the lane answers: targeted ones the portal forwards, and lists from its catalog.
LANE_METHODS = frozenset(
    {
        "tools/call",
        "prompts/get",
        "resources/read",
        "completion/complete",
        "tools/list",
        "prompts/list",
        "resources/list",
        "resources/templates/list",
    }
)

#: Bodies larger than this go to the SDK's endpoint (which applies its own limit): the lane keeps none.
MAX_LANE_BODY = 1 << 20

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class SessionConnections:
    """The SDK connection behind each 2025-11-25 session id, learnt from the session's own messages.

    The SDK keeps a session's connection (its negotiated version, the client's
    capabilities, whether the handshake finished) inside the session's task;
    this server middleware notes it when ``notifications/initialized``
    arrives, so the lane can serve later requests on it. Held weakly: a session
    the SDK ended takes its entry with it.
    """

    def __init__(self) -> None:
        self._known: weakref.WeakValueDictionary[str, Connection] = weakref.WeakValueDictionary()
        self._running: weakref.WeakKeyDictionary[Connection, set[anyio.CancelScope]] = (
            weakref.WeakKeyDictionary()
        )

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.request_id is None and ctx.method == "notifications/initialized":
            connection = getattr(ctx.session, "_connection", None)
            session_id = getattr(connection, "session_id", None)
            if isinstance(connection, Connection) and isinstance(session_id, str):
                self._known[session_id] = connection
        return await call_next(ctx)

    def get(self, session_id: str) -> Connection | None:
        return self._known.get(session_id)

    def running(self, connection: Connection) -> set[anyio.CancelScope]:
        """The lane requests running on a session: cancelled when the session ends, as the SDK
        cancels the handlers its session task runs (a client that ends its session mid-call)."""
        held = self._running.get(connection)
        if held is None:
            held = self._running[connection] = set()
            connection.exit_stack.callback(_cancel_all, held)
        return held


class _Outbound:
    """The request-scoped channel of a lane request: notifications are kept for the answer's body.

    Nothing can be asked of the caller on it (the lane only serves callers
    that declared nothing to be asked), exactly like the SDK's channel in
    JSON-response mode.
    """

    def __init__(self, request_id: Any, metadata: ServerMessageMetadata, keep: bool) -> None:
        self.transport = TransportContext(kind="streamable-http", can_send_request=False)
        self.request_id = request_id
        self.message_metadata = metadata
        self.cancel_requested = anyio.Event()
        self.notes: list[dict[str, Any]] = []
        self._keep = keep

    @property
    def can_send_request(self) -> bool:
        return False

    def close(self) -> None:
        self._keep = False

    async def notify(self, method: str, params: Mapping[str, Any] | None, opts: Any = None) -> None:
        if self._keep:
            note: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
            if params is not None:
                note["params"] = dict(params)
            self.notes.append(note)

    async def send_raw_request(self, method: str, params: Mapping[str, Any] | None, opts: Any = None) -> Any:
        raise NoBackChannelError(method)

    async def progress(self, progress: float, total: float | None = None, message: str | None = None) -> None:
        return None  # a request with a progress token never takes the lane


class FastLane:
    """ASGI layer in front of the SDK's streamable HTTP endpoint; see the module docstring.

    ``gate`` is the portal's session gate (its ``manager`` is the SDK's session
    manager), ``connections`` the middleware that learns each session's
    connection, ``server`` the portal's SDK server.
    """

    def __init__(self, app: Any, gate: Any, server: Any, connections: SessionConnections) -> None:
        self.app = app
        self.gate = gate
        self.server = server
        self.connections = connections
        #: Requests answered here and requests handed to the SDK (for tests and the benchmark).
        self.served = 0
        self.passed = 0
        self._kernels: tuple[Any, LaneKernel] | None = None

    def _kernel(self) -> LaneKernel:
        """The lane's kernel, for the session manager's lifespan state (it is set when serving starts)."""
        state = getattr(self.gate.manager, "_lifespan_state", None)
        if self._kernels is None or self._kernels[0] is not state:
            self._kernels = (state, LaneKernel(self.server, state))
        return self._kernels[1]

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope.get("type") != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        reader = _Reader(receive)
        try:
            plan = await self._plan(scope, reader)
        except anyio.get_cancelled_exc_class():
            raise
        except Exception:
            # Nothing has run yet: the SDK's endpoint answers instead (never both).
            logger.exception("fast lane: request handed to the SDK path after an error")
            plan = None
        if plan is None:
            self.passed += 1
            await self.app(scope, reader.replay(), send)
            return
        # From here on the request is the lane's: it runs once, and is answered here.
        self.served += 1
        await self._serve(send, *plan)

    async def _plan(self, scope: dict[str, Any], reader: _Reader) -> tuple[Any, ...] | None:
        """What ``_serve`` needs for this request, or None when the SDK's endpoint must answer it."""
        receive = reader.receive
        headers = _headers(scope)
        session_id = headers.get("mcp-session-id")
        version = headers.get("mcp-protocol-version")
        if session_id is None or version not in HANDSHAKE_PROTOCOL_VERSIONS:
            return None
        manager = self.gate.manager
        transport = getattr(manager, "_server_instances", {}).get(session_id)
        connection = self.connections.get(session_id)
        if transport is None or connection is None or not _open(transport):
            return None
        if not connection.initialized.is_set() or connection.protocol_version != version:
            return None
        if not isinstance(getattr(connection.outbound, "_in_flight", None), dict):
            return None  # not the SDK's session dispatcher: cancellation could not reach the request
        if declared(connection.client_capabilities):
            return None  # an upstream may ask this caller something: that needs the response stream
        request = Request(scope, receive)
        has_json, has_sse = check_accept_headers(request)
        json_mode = bool(getattr(transport, "is_json_response_enabled", False))
        if not has_json or not (has_sse or json_mode) or not _json_content(headers.get("content-type")):
            return None
        security = getattr(transport, "_security", None)
        if security is None or await security.validate_request(request, is_post=True) is not None:
            return None
        length = headers.get("content-length")
        if length is None or not length.isdigit() or int(length) > MAX_LANE_BODY:
            return None
        body = await reader.read(int(length))
        message = _lane_request(body) if body is not None else None
        if message is None:
            return None
        if getattr(manager, "_server_instances", {}).get(session_id) is not transport or not _open(transport):
            # The session ended (DELETE, eviction, idle timeout) while the body was on its way: the
            # SDK's endpoint answers what it answers for an ended session, and nothing runs.
            return None
        return request, transport, connection, message, json_mode

    async def _serve(
        self,
        send: Send,
        request: Request,
        transport: Any,
        connection: Connection,
        message: JSONRPCRequest,
        json_mode: bool,
    ) -> None:
        metadata = ServerMessageMetadata(request_context=request, can_send_request=False)
        outbound = _Outbound(message.id, metadata, keep=not json_mode)
        runner = self._kernel().runner(connection, message.params)
        reply: JSONRPCResponse | JSONRPCError | None = None
        # In the session dispatcher's table of requests in flight, as the SDK path puts it: the
        # client's notifications/cancelled for this id reaches it the same way.
        table: dict[Any, Any] = connection.outbound._in_flight  # type: ignore[attr-defined]
        key = coerce_request_id(message.id)
        entry = table[key] = _InFlight(scope=anyio.CancelScope(), dctx=outbound)  # type: ignore[arg-type]
        running = self.connections.running(connection)
        running.add(entry.scope)
        # A client that hangs up cancels the call, as a notifications/cancelled does.
        state = request.scope.get("state")
        if isinstance(state, dict):
            if state.get(ON_DISCONNECT) == CLIENT_GONE:
                entry.scope.cancel()
            state[ON_DISCONNECT] = entry.scope.cancel
        with _in_flight(transport), entry.scope:
            try:
                result = await runner._on_request(outbound, message.method, message.params)
                reply = JSONRPCResponse(jsonrpc="2.0", id=message.id, result=result)
            except anyio.get_cancelled_exc_class():
                raise
            except Exception as exc:
                reply = JSONRPCError(jsonrpc="2.0", id=message.id, error=_error_of(exc, message.method))
            finally:
                outbound.close()
                running.discard(entry.scope)
                if isinstance(state, dict):
                    state.pop(ON_DISCONNECT, None)
                if table.get(key) is entry:
                    del table[key]
        if reply is None or outbound.cancel_requested.is_set():
            # What the SDK's 2025-11-25 transport answers for a request the client cancelled.
            cancelled = ErrorData(code=REQUEST_CANCELLED, message="Request cancelled")
            reply = JSONRPCError(jsonrpc="2.0", id=message.id, error=cancelled)
        await _answer(send, transport, reply, outbound.notes)


def install_fast_lane(gate: Any, server: Any) -> FastLane:
    """Put a :class:`FastLane` between ``gate`` and the SDK endpoint behind it, and teach ``server``
    (the portal's SDK server) to note each session's connection."""
    found = [m for m in server.middleware if isinstance(m, SessionConnections)]
    connections = found[0] if found else SessionConnections()
    if not found:
        server.middleware.insert(0, connections)
    lane = FastLane(gate.app, gate, server, connections)
    gate.app = lane
    return lane


# ---------------------------------------------------------------------- helpers
def _cancel_all(scopes: set[anyio.CancelScope]) -> None:
    for scope in list(scopes):
        scope.cancel()


def _headers(scope: Mapping[str, Any]) -> dict[str, str]:
    """Request headers by lower-case name, the first value winning (as the SDK reads them)."""
    out: dict[str, str] = {}
    for name, value in scope.get("headers", ()):
        out.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
    return out


def _json_content(value: str | None) -> bool:
    """The SDK's own Content-Type test (its security check and its transport's, both)."""
    if not value:
        return False
    return any(part.strip() == "application/json" for part in value.split(";")[0].split(","))


def _open(transport: Any) -> bool:
    """The session's transport still serves: not ended, not timing out, nothing to resume from."""
    if getattr(transport, "is_terminated", True) or getattr(transport, "_event_store", None) is not None:
        return False
    idle = getattr(transport, "idle_scope", None)
    return idle is None or not (idle.cancel_called or not hasattr(transport, "_requests_in_flight"))


class _in_flight:
    """Hold the session while the request runs, as the SDK's transport does (its idle countdown waits)."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self.timed = getattr(transport, "idle_scope", None) is not None and getattr(
            transport, "_idle_timeout", None
        )

    def __enter__(self) -> None:
        if self.timed:
            self.transport._requests_in_flight += 1
            self.transport.idle_scope.deadline = math.inf

    def __exit__(self, *exc: object) -> None:
        if self.timed:
            self.transport._requests_in_flight -= 1
            if not self.transport._requests_in_flight:
                self.transport.idle_scope.deadline = anyio.current_time() + self.transport._idle_timeout


class _Reader:
    """The request's ``receive``, keeping what the lane read so the SDK's endpoint can be given it again."""

    def __init__(self, receive: Receive) -> None:
        self.receive = receive
        self._read: list[dict[str, Any]] = []

    async def read(self, length: int) -> bytes | None:
        """The whole body, or None when the client went away or sent more than it announced."""
        size = 0
        while True:
            message = await self.receive()
            self._read.append(message)
            if message.get("type") != "http.request":
                return None
            size += len(message.get("body", b""))
            if size > length:
                return None
            if not message.get("more_body", False):
                return b"".join(m.get("body", b"") for m in self._read)

    def replay(self) -> Receive:
        """A ``receive`` giving the messages already read, in order, then deferring to the client's."""
        if not self._read:
            return self.receive
        pending = list(self._read)

        async def replay() -> dict[str, Any]:
            return pending.pop(0) if pending else await self.receive()

        return replay


def _lane_request(body: bytes) -> JSONRPCRequest | None:
    """The body as one request the lane serves, or None (the SDK's endpoint answers it)."""
    try:
        raw = pydantic_core.from_json(body)
    except ValueError:
        return None
    if not isinstance(raw, dict) or raw.get("method") not in LANE_METHODS or "id" not in raw:
        return None
    try:
        message = jsonrpc_message_adapter.validate_python(raw, by_name=False)
    except ValidationError:
        return None
    if not isinstance(message, JSONRPCRequest) or progress_token_from_params(message.params) is not None:
        return None
    return message


def _error_of(exc: Exception, method: str) -> ErrorData:
    """A handler's failure as the SDK's dispatcher puts it on the wire."""
    error = handler_exception_to_error_data(exc)
    if error is None:
        logger.exception("handler for %r raised", method)
        error = ErrorData(code=0, message=str(exc))
    return error


async def _answer(
    send: Send, transport: Any, reply: JSONRPCResponse | JSONRPCError, notes: list[dict[str, Any]]
) -> None:
    """The reply as JSON; after the call's notifications as an event stream when there are some.

    A request the client cancelled is answered as an event stream too, as the SDK path answers it:
    the client has stopped waiting, and SDK clients drop a late event-stream answer quietly where a
    late JSON body to a session already closing fails their exit.
    """
    text = reply.model_dump_json(by_alias=True, exclude_unset=True)
    headers = [(b"mcp-session-id", str(transport.mcp_session_id).encode("latin-1"))]
    cancelled = isinstance(reply, JSONRPCError) and reply.error.code == REQUEST_CANCELLED
    if notes or cancelled:
        events = [f"event: message\r\ndata: {json.dumps(n, separators=(',', ':'))}\r\n\r\n" for n in notes]
        events.append(f"event: message\r\ndata: {text}\r\n\r\n")
        body = "".join(events).encode()
        headers += [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache, no-transform")]
    else:
        body = text.encode()
        headers.append((b"content-type", b"application/json"))
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


__all__ = ["LANE_METHODS", "FastLane", "SessionConnections", "install_fast_lane"]
