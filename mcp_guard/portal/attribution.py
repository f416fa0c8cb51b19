"""Server-to-client requests and log messages on shared upstream sessions, delivered to their caller.

Upstreams not in ``callbacks`` share a few upstream sessions among all callers.
What such an upstream asks its client during a call (sampling, elicitation,
roots) and the log messages it sends meanwhile still reach the caller of that
call - but only when the portal knows for certain whose call it is:

- over streamable HTTP the upstream sends them on the response stream of the
  call that caused them, and the SDK's transport handles each message received
  there in the context of the task that sent the call. :data:`CURRENT_CALL`,
  set by the portal around every upstream request it makes for a caller, so
  names the call a request belongs to; on the standalone stream (no call) it
  is unset;
- over stdio nothing on the wire links a request to a call. A message may
  come from work an earlier call started (background work after it returned,
  or a call the portal gave up on after its timeout), so it goes to the call
  in flight only while that call is the only request in flight on the
  session *and* every call the session has carried since it started came
  from the same user (tenant and subject). Then even a message from earlier
  work reaches the user whose work it is; once a second user has called
  through the session, nothing from it is attributed again. Multi-user stdio
  upstreams that ask questions or log need ``callbacks = true``.

A request that cannot be attributed is refused with a JSON-RPC error and an
audit event, and a log message is dropped: nothing is delivered to a guess,
since the wrong recipient would be another user. Attributed requests go
through the caller's :class:`~.callbacks.CallerLink`, scanned by the guard's
sanitizers and audited exactly as on a private session, and only for the
capabilities the caller declared.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from mcp import types

from ..guard import Guard
from .callbacks import CallerLink

logger = logging.getLogger("mcp_guard.portal")

#: The capabilities a caller may be asked through: the client capability names of MCP.
ASKABLE = ("sampling", "elicitation", "roots")

#: What an upstream's request asks for: (method, capability).
_SAMPLING = ("sampling/createMessage", "sampling")
_ELICITATION = ("elicitation/create", "elicitation")
_ROOTS = ("roots/list", "roots")


@dataclass(eq=False)
class Call:
    """One caller's request in flight on a shared upstream session.

    ``link`` delivers what the upstream asks (and logs) to the caller;
    ``allowed`` names the capabilities the caller may be asked for.
    """

    link: CallerLink
    allowed: frozenset[str]


#: The call the current task sends upstream requests for (None: the portal's own requests).
CURRENT_CALL: ContextVar[Call | None] = ContextVar("mcp_guard_portal_call", default=None)


def declared(capabilities: types.ClientCapabilities | None) -> frozenset[str]:
    """The capabilities a downstream client declared at initialization."""
    if capabilities is None:
        return frozenset()
    return frozenset(name for name in ASKABLE if getattr(capabilities, name, None) is not None)


class SharedCalls:
    """The calls in flight on one shared upstream session, and that session's client callbacks.

    ``by_stream``: the transport links a request to its call (streamable HTTP).
    Otherwise (stdio) only a sole request in flight is attributed, and only
    while the session has carried calls of one user alone.
    """

    def __init__(self, guard: Guard | None, upstream: str, *, by_stream: bool) -> None:
        self.guard = guard
        self.upstream = upstream
        self.by_stream = by_stream
        self.calls: list[Call] = []
        #: Every request in flight on the session, the portal's own included.
        self.requests = 0
        #: The (tenant, subject) of every call the session has carried since it started.
        self.users: set[tuple[str | None, str]] = set()

    def enter(self, call: Call | None) -> None:
        """Count one request in flight on the session (``call``: the caller's, None: the portal's)."""
        self.requests += 1
        if call is not None:
            self.calls.append(call)
            principal = getattr(call.link, "principal", None)
            user = (principal.tenant, principal.subject) if principal is not None else (None, "")
            self.users.add(user)

    def leave(self, call: Call | None) -> None:
        self.requests -= 1
        if call is not None:
            self.calls.remove(call)

    def owner(self) -> Call | None:
        """The call an upstream request or log message arriving now belongs to, if that is certain."""
        if self.by_stream:
            call = CURRENT_CALL.get()
            return call if call is not None and call in self.calls else None
        if self.requests == 1 and len(self.calls) == 1 and len(self.users) == 1:
            return self.calls[0]
        return None

    def _unattributed(self) -> str:
        if self.by_stream:
            return "not sent on the response stream of a call"
        if len(self.users) > 1 and self.calls:
            return "from a stdio session that has carried calls of more than one user"
        return "not attributable to a single call in flight"

    def callbacks(self) -> dict[str, Any]:
        """The ClientSession callbacks: all three capabilities are advertised, each call decides."""
        return {
            "sampling_callback": self.sampling,
            "elicitation_callback": self.elicitation,
            "list_roots_callback": self.roots,
            "logging_callback": self.logging,
        }

    async def sampling(self, context: Any, params: types.CreateMessageRequestParams) -> Any:
        return await self._route(_SAMPLING, lambda link: link.sampling(context, params))

    async def elicitation(self, context: Any, params: Any) -> Any:
        return await self._route(_ELICITATION, lambda link: link.elicitation(context, params))

    async def roots(self, context: Any) -> Any:
        return await self._route(_ROOTS, lambda link: link.roots(context))

    async def logging(self, params: types.LoggingMessageNotificationParams) -> None:
        call = self.owner()
        if call is not None:
            await call.link.logging(params)
        elif not self.by_stream and self.calls and len(self.users) > 1:
            # Dropped while a user's call is in flight: on the record, since that user may miss it.
            self._record_unattributed("notifications/message", self._unattributed(), kind="notification")
        # Outside any call, or not attributable: dropped.

    async def _route(self, what: tuple[str, str], ask: Callable[[CallerLink], Awaitable[Any]]) -> Any:
        method, capability = what
        call = self.owner()
        if call is None:
            reason = self._unattributed()
            self._record_unattributed(method, reason)
            return types.ErrorData(
                code=types.INVALID_REQUEST,
                message=f"{method} refused by the portal: the request is {reason}",
            )
        if capability not in call.allowed:
            reasons = (f"the caller did not declare {capability}",)
            call.link._audit(method, "deny", reasons, types.INVALID_REQUEST)
            message = f"{method} refused: the client does not support {capability}"
            return types.ErrorData(code=types.INVALID_REQUEST, message=message)
        return await ask(call.link)

    def _record_unattributed(self, method: str, reason: str, *, kind: str = "server-request") -> None:
        logger.info("upstream %r: %s refused (%s)", self.upstream, method, reason)
        if self.guard is None:
            return
        self.guard.record_nowait(
            self.guard.event(
                method,
                "deny",
                principal=None,
                reasons=(reason,),
                error_code=types.INVALID_REQUEST if kind == "server-request" else None,
                kind=kind,
                direction="inbound",
                server=self.upstream,
            )
        )


__all__ = ["ASKABLE", "CURRENT_CALL", "Call", "SharedCalls", "declared"]
