"""Forwarding targeted requests to a streamable HTTP upstream without an SDK client session.

Most of what a portal call costs on its upstream side is the SDK's client
stack: a session object with its receive loop, memory streams between it and
the transport, a task per POST, and a pydantic round trip of every message.
A targeted request the portal only forwards (``tools/call``, ``prompts/get``,
``resources/read``, ``completion/complete``) needs none of that: it is one
POST on a kept-alive connection with the upstream's session id and protocol
version, and one JSON-RPC response (as JSON, or at the end of an event stream
that may carry progress and log messages first).

The guard's chain is not touched: the portal's guarded session still decides,
inspects and records the request (see :mod:`.routing`); only the transport
under it changes. What needs a session of its own keeps the SDK client path:
upstreams with callbacks or per-user credentials, 2026-07-28 multi-round
calls, and callers that declared capabilities an upstream may ask them for
(sampling, elicitation, roots). An upstream request that still arrives on a
forwarded call's stream is refused and recorded, as on the shared session for
a caller that cannot be asked.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast

import anyio
import httpx2
from httpx2 import EventSource
from mcp import types
from mcp.shared.exceptions import MCPError
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, LATEST_HANDSHAKE_VERSION

from ..errors import GuardUnavailable
from .attribution import Call
from .events_reader import read_events
from .upstream_http import LeanClient

logger = logging.getLogger("mcp_guard.portal")

#: The requests that are forwarded on this path (everything else keeps the SDK client session).
FORWARDED = frozenset({"tools/call", "prompts/get", "resources/read", "completion/complete"})

#: Seconds a ``notifications/cancelled`` for an abandoned request may take (best effort).
CANCEL_SECONDS = 2.0

Progress = Callable[[float, float | None, str | None], Awaitable[None]]
Note = Callable[[Mapping[str, Any]], Awaitable[None]]

_ASKS = {"sampling/createMessage": "sampling", "elicitation/create": "elicitation", "roots/list": "roots"}


#: Requests an upstream may send on one forwarded call's stream (each refused and recorded) before
#: the call fails as upstream unavailable: one that keeps asking would flood the audit trail.
MAX_ASKS = 8


class UpstreamGone(MCPError):
    """The upstream's HTTP endpoint could not be reached or ended a response early."""

    def __init__(self) -> None:
        super().__init__(GuardUnavailable.code, "Upstream server unavailable")


class _SessionExpired(Exception):
    """The upstream answered 404 for the session id: a new session is needed (nothing was run)."""


class HttpForwarder:
    """One upstream MCP session over streamable HTTP, driven directly with JSON-RPC over HTTP.

    ``client`` carries the upstream's own headers (and the lockdown signer): the
    lean client of :mod:`.upstream_http`, or httpx2's where that one cannot serve;
    ``on_note`` receives notifications that concern the upstream, not a call
    (``list_changed``, resource updates); ``unattributed`` records a request
    of the upstream that names no call (refused).
    """

    def __init__(
        self,
        name: str,
        url: str,
        client: httpx2.AsyncClient | LeanClient,
        on_note: Note | None = None,
        unattributed: Callable[[str, str], None] | None = None,
    ) -> None:
        self.name = name
        self._unattributed = unattributed
        self.url = url
        self.client = client
        self.session_id: str | None = None
        self.version = LATEST_HANDSHAKE_VERSION
        self._on_note = on_note
        self._ids = itertools.count(1)
        self._renewing = anyio.Lock()

    # ------------------------------------------------------------------ session
    async def initialize(self) -> None:
        """The initialize handshake; raises when the upstream does not speak a session protocol."""
        self.session_id = None
        params = {
            "protocolVersion": LATEST_HANDSHAKE_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "mcp-guard-portal", "version": "1"},
        }
        result = await self._exchange(0, _body(0, "initialize", params), None, None, handshake=True)
        version = result.get("protocolVersion")
        if version not in HANDSHAKE_PROTOCOL_VERSIONS:
            raise MCPError(types.INVALID_REQUEST, f"upstream negotiated unsupported version {version!r}")
        self.version = str(version)
        await self._notify("notifications/initialized", None)

    async def listen(self) -> None:
        """Read the session's standalone stream until cancelled, as an SDK client session does.

        The upstream sends there what belongs to no call (``list_changed``,
        resource updates, requests naming no call): notifications go to
        ``on_note``, requests are refused. An upstream without the stream
        (405) is left alone; a dropped stream is opened again (a second later: also once the
        upstream sent more than :data:`MAX_ASKS` requests on it).
        """
        while True:
            try:
                headers = {**self._headers(), "accept": "text/event-stream"}
                async with self.client.stream("GET", self.url, headers=headers) as response:
                    if response.status_code == 405:
                        return
                    asked = 0
                    if response.status_code < 400:
                        async for event in _events(response):
                            message = _loads(event.data) if event.data else None
                            if isinstance(message, dict):
                                asked += "id" in message and "method" in message
                                if asked > MAX_ASKS:  # refused and recorded at most so often
                                    break
                                await self._aside(message, -1, None, None)
            except (httpx2.TransportError, ValueError) as exc:
                logger.debug("upstream %r: standalone stream ended (%r)", self.name, exc)
            await anyio.sleep(1.0)

    async def close(self) -> None:
        """End the upstream session (best effort; the upstream expires it otherwise)."""
        if self.session_id is None:
            return
        with anyio.move_on_after(CANCEL_SECONDS, shield=True):
            with contextlib.suppress(httpx2.HTTPError):
                await self.client.delete(self.url, headers=self._headers())

    # ------------------------------------------------------------------ requests
    async def request(
        self,
        method: str,
        params: Mapping[str, Any],
        *,
        progress: Progress | None = None,
        call: Call | None = None,
    ) -> dict[str, Any]:
        """Send one request and return its JSON-RPC ``result`` (an error response raises MCPError).

        A session the upstream forgot (404) is renewed once and the request
        sent again: the upstream ran nothing for it. Cancelling the caller
        cancels the upstream request.
        """
        for attempt in (0, 1):
            rid = next(self._ids)
            sent = dict(params)
            if progress is not None:
                sent["_meta"] = {**dict(sent.get("_meta") or {}), "progressToken": rid}
            expired = self.session_id
            try:
                return await self._exchange(rid, _body(rid, method, sent), progress, call)
            except _SessionExpired:
                if attempt:
                    raise UpstreamGone() from None
                async with self._renewing:
                    if self.session_id == expired:  # not renewed meanwhile by another request
                        await self.initialize()
            except anyio.get_cancelled_exc_class():
                with anyio.move_on_after(CANCEL_SECONDS, shield=True):
                    await self._notify("notifications/cancelled", {"requestId": rid, "reason": "cancelled"})
                raise
        raise UpstreamGone()  # pragma: no cover - the loop returns or raises

    async def _exchange(
        self,
        rid: int,
        body: bytes,
        progress: Progress | None,
        call: Call | None,
        *,
        handshake: bool = False,
    ) -> dict[str, Any]:
        try:
            async with self.client.stream(
                "POST", self.url, content=body, headers=self._headers()
            ) as response:
                if response.status_code == 404 and self.session_id is not None and not handshake:
                    raise _SessionExpired()
                if response.status_code >= 400:
                    return _final(_error_body(await response.aread()), rid)
                if handshake:
                    self.session_id = response.headers.get("mcp-session-id")
                kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
                if kind == "application/json":
                    return _final(_loads(await response.aread()), rid)
                if kind != "text/event-stream":
                    raise UpstreamGone()
                asked = 0
                events = read_events(response)  # no async generators left for the loop to finalize
                while (event := await events.next()) is not None:
                    if not event.data:
                        continue
                    message = _loads(event.data)
                    if not isinstance(message, dict):
                        continue
                    if message.get("id") == rid and ("result" in message or "error" in message):
                        return _final(message, rid)
                    if "id" in message and "method" in message:
                        asked += 1
                        if asked > MAX_ASKS:  # each is refused, and recorded: not without end
                            raise UpstreamGone()
                    await self._aside(message, rid, progress, call)
        except (httpx2.TransportError, ValueError):
            raise UpstreamGone() from None
        raise UpstreamGone()  # the stream ended without the response

    async def _aside(
        self, message: dict[str, Any], rid: int, progress: Progress | None, call: Call | None
    ) -> None:
        """A message on a request's stream before its response: progress, logs, or a request to us."""
        method = message.get("method")
        params = message.get("params")
        params = params if isinstance(params, dict) else {}
        if "id" in message and isinstance(method, str):
            await self._refuse(message["id"], method, call)
        elif method == "notifications/progress":
            if progress is not None and params.get("progressToken") == rid:
                try:
                    await progress(float(params["progress"]), params.get("total"), params.get("message"))
                except (KeyError, TypeError, ValueError):
                    logger.debug("malformed progress from upstream %r dropped", self.name)
        elif method == "notifications/message":
            if call is not None:
                try:
                    note = types.LoggingMessageNotificationParams.model_validate(params)
                except ValueError:
                    return
                await call.link.logging(note)
        elif isinstance(method, str) and self._on_note is not None:
            await self._on_note(message)

    async def _refuse(self, request_id: Any, method: str, call: Call | None) -> None:
        """Answer an upstream's request on a forwarded call: only ping is served; the rest is refused."""
        if method == "ping":
            await self._post({"jsonrpc": "2.0", "id": request_id, "result": {}})
            return
        capability = _ASKS.get(method, method)
        reason = f"the caller did not declare {capability}"
        if call is not None:
            call.link._audit(method, "deny", (reason,), types.INVALID_REQUEST)
        elif self._unattributed is not None:  # on the standalone stream: nobody's call
            self._unattributed(method, "not sent on the response stream of a call")
        error = {
            "code": types.INVALID_REQUEST,
            "message": f"{method} refused: the client does not support {capability}",
        }
        await self._post({"jsonrpc": "2.0", "id": request_id, "error": error})

    async def _notify(self, method: str, params: Mapping[str, Any] | None) -> None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = dict(params)
        await self._post(message)

    async def _post(self, message: Mapping[str, Any]) -> None:
        """A notification or response to the upstream: accepted with 202, nothing to read."""
        try:
            response = await self.client.post(self.url, content=json.dumps(message), headers=self._headers())
            await response.aclose()
        except httpx2.TransportError:
            logger.debug("upstream %r: %s not delivered", self.name, message.get("method", "response"))

    def _headers(self) -> dict[str, str]:
        headers = {
            "accept": "application/json, text/event-stream",
            "content-type": "application/json",
            "mcp-protocol-version": self.version,
        }
        if self.session_id is not None:
            headers["mcp-session-id"] = self.session_id
        return headers


def _events(response: Any) -> EventSource:
    """httpx2's event-stream parser (each event bounded) over either client's response: it reads
    only ``headers``, ``request`` and ``aiter_text()``."""
    return EventSource(cast(httpx2.Response, response))


def _body(rid: int, method: str, params: Mapping[str, Any]) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": rid, "method": method, "params": params}).encode()


def _error_body(raw: bytes) -> dict[str, Any]:
    """An HTTP error's body as a JSON-RPC error response when it is one; else "unavailable"."""
    try:
        message = _loads(raw)
    except ValueError:
        message = None
    if isinstance(message, dict) and isinstance(message.get("error"), dict):
        return message
    raise UpstreamGone()


def _loads(raw: str | bytes) -> Any:
    """JSON from the upstream; nesting past the parser's depth is malformed JSON too (a ValueError)."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def _final(message: Any, rid: int) -> dict[str, Any]:
    """The ``result`` of a JSON-RPC response to request ``rid``, or its error as MCPError.

    An answer naming another request is no answer to this one (an error may name none: the
    upstream could not read the request's id)."""
    if not isinstance(message, dict):
        raise UpstreamGone()
    error = message.get("error")
    answered = message.get("id")
    if not (type(answered) is int and answered == rid) and not (isinstance(error, dict) and answered is None):
        raise UpstreamGone()
    if isinstance(error, dict):
        try:
            code = int(error.get("code", types.INTERNAL_ERROR))
        except (TypeError, ValueError):
            code = types.INTERNAL_ERROR
        raise MCPError(code, str(error.get("message", "")), error.get("data"))
    result = message.get("result")
    if not isinstance(result, dict):
        raise UpstreamGone()
    return result


__all__ = ["FORWARDED", "HttpForwarder", "UpstreamGone"]
