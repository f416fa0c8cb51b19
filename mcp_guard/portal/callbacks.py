"""Server-to-client requests through the portal: the link to a caller, and private upstream sessions.

An upstream that asks its client for sampling, elicitation or roots, or sends
log messages during a call, must reach the caller who made that call - never
another user. A :class:`CallerLink` delivers them to one caller's request in
flight. On shared upstream sessions the portal picks the link of the call a
request belongs to, when it can tell (:mod:`.attribution`); for upstreams
listed in ``Portal(callbacks=...)`` each downstream connection (2025-11-25
era) instead gets its own upstream session, whose callbacks are bound in a
closure to that connection and to the downstream request in flight, so such
an upstream may call back whenever it likes.
What the upstream asks is scanned by the guard's sanitizers and audited
before it reaches the caller, like :func:`mcp_guard.integrations.client.guarded_client` does.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any

import anyio
from mcp import types
from mcp.client.session import ClientSession
from mcp.shared.message import ServerMessageMetadata

from .._wire import to_wire
from ..errors import GUARD_UNAVAILABLE, GuardUnavailable
from ..guard import Guard
from ..integrations.client import ServerRequestGate
from ..model import Principal

logger = logging.getLogger("mcp_guard.portal")


#: RFC 5424 severities in the order MCP's ``logging/setLevel`` uses.
LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")


class CallerLink(ServerRequestGate):
    """Where an upstream's requests go: the downstream requests in flight on one connection.

    ``level_of`` returns the log level the downstream session set with
    ``logging/setLevel`` (None: everything); messages below it are dropped.
    """

    def __init__(
        self,
        guard: Guard,
        upstream: str,
        principal: Principal,
        level_of: Callable[[Any], str | None] | None = None,
    ) -> None:
        super().__init__(guard, upstream, principal)
        self.level_of = level_of
        self.in_flight: list[tuple[Any, Any]] = []  # (ServerSession of the request, request id)
        self.last_used = time.monotonic()

    def _target(self) -> tuple[Any, Any]:
        if not self.in_flight:
            raise GuardUnavailable("upstream request outside any downstream request")
        return self.in_flight[-1]

    async def _forward(self, request: Any, result_type: Any) -> Any:
        try:
            session, request_id = self._target()
            return await session.send_request(
                request, result_type, metadata=ServerMessageMetadata(related_request_id=request_id)
            )
        except Exception as exc:
            code = getattr(getattr(exc, "error", None), "code", None) or getattr(exc, "code", None)
            message = str(getattr(exc, "message", "") or "Request to the client failed")
            return types.ErrorData(code=code if isinstance(code, int) else GUARD_UNAVAILABLE, message=message)

    async def sampling(self, context: Any, params: types.CreateMessageRequestParams) -> Any:
        refused = self._screen("sampling/createMessage", "sampling", to_wire(params))
        if refused is not None:
            return refused
        return await self._forward(types.CreateMessageRequest(params=params), types.CreateMessageResult)

    async def elicitation(self, context: Any, params: Any) -> Any:
        refused = self._screen("elicitation/create", "elicitation", to_wire(params))
        if refused is not None:
            return refused
        return await self._forward(types.ElicitRequest(params=params), types.ElicitResult)

    async def roots(self, context: Any) -> Any:
        self._audit("roots/list", "allow")
        return await self._forward(types.ListRootsRequest(), types.ListRootsResult)

    def _log_target(self, params: types.LoggingMessageNotificationParams) -> tuple[Any, Any] | None:
        """The downstream request a log message goes to (None: drop it): the one in flight, at its level."""
        if not self.in_flight:
            return None
        session, request_id = self.in_flight[-1]
        threshold = self.level_of(session) if self.level_of is not None else None
        if threshold in LEVELS and LEVELS.index(str(params.level)) < LEVELS.index(threshold):
            return None
        return session, request_id

    async def logging(self, params: types.LoggingMessageNotificationParams) -> None:
        target = self._log_target(params)
        if target is None:
            return
        session, request_id = target
        try:
            await session.send_log_message(
                params.level, params.data, logger=params.logger, related_request_id=request_id
            )
        except Exception:
            logger.debug("log message not forwarded", exc_info=True)


class PrivateSession:
    """A private upstream session held open by its own task until closed or idle."""

    def __init__(self, link: CallerLink) -> None:
        self.link = link
        self.session: ClientSession | None = None
        self.scope = anyio.CancelScope()
        self.ready = anyio.Event()
        self.error: BaseException | None = None
        self.fingerprint: Any = None  # the credentials it was opened with (None: the server's own)
        #: Called once the session (for stdio: the process) is gone: gives back its slot.
        self.on_close: Callable[[], None] | None = None
        #: Set once the session is gone, after ``on_close``.
        self.done = anyio.Event()

    async def hold(self, stack_factory: Any) -> None:
        try:
            with self.scope:
                try:
                    async with AsyncExitStack() as stack:
                        self.session = await stack_factory(stack, self.link)
                        self.ready.set()
                        await anyio.sleep_forever()
                except Exception as exc:
                    self.error = exc
                    logger.warning("private upstream session to %r failed: %r", self.link.server, exc)
        finally:
            self.session = None
            if self.on_close is not None:
                self.on_close()
            self.done.set()
            self.ready.set()

    def close(self) -> None:
        self.scope.cancel()


def client_callbacks(link: CallerLink, capabilities: types.ClientCapabilities | None) -> dict[str, Any]:
    """The ClientSession callbacks for a private session: only what the downstream client supports."""
    kw: dict[str, Any] = {"logging_callback": link.logging}
    if capabilities is not None:
        if capabilities.sampling is not None:
            kw["sampling_callback"] = link.sampling
        if capabilities.elicitation is not None:
            kw["elicitation_callback"] = link.elicitation
        if capabilities.roots is not None:
            kw["list_roots_callback"] = link.roots
    return kw


__all__ = ["LEVELS", "CallerLink", "PrivateSession", "client_callbacks"]
