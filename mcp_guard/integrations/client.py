"""The guard around MCP client sessions: a host guarding the servers it connects to.

Here the untrusted party is the *server*. Outbound calls are checked against
the policy like inbound ones on the server side; what the server sends back
(lists, results, and its own requests such as sampling or elicitation) is
inspected before the model can see it.

Two ways in:

- :func:`guarded_client` builds the ``mcp.Client`` itself, so it also wraps the
  sampling, elicitation, roots, logging and notification callbacks and turns
  the client's list cache off (a cached list must not skip pin checks).
- given a session or client that is already open, :func:`guarded_client`
  wraps it as it is. It sees requests and their results only:
  server-initiated requests and notifications go to callbacks it did not install.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Any

from mcp import Client, types
from mcp.client.session import ClientSession
from pydantic import BaseModel

from .._wire import to_wire
from ..classify import REQUESTS
from ..confirm import Caller, Era
from ..errors import GUARD_UNAVAILABLE, AccessDenied, GuardUnavailable
from ..guard import Guard
from ..model import Outcome, Principal, RequestContext
from ..pipeline import Describe, Exchange

logger = logging.getLogger("mcp_guard.client")


class GuardedSession:
    """A client session with the guard chain applied to every call.

    Exposes the ``ClientSession`` / ``mcp.Client`` request methods with the
    same signatures. Lists come back filtered (policy visibility, sanitizer
    verdicts, pins); call results come back scanned (a blocked result raises
    an ``MCPError`` instead of reaching the model).
    """

    def __init__(
        self,
        guard: Guard,
        session: Any,
        *,
        server: str,
        principal: Principal,
        transport: str = "client",
        ask: Any = None,
        caller: Caller | None = None,
    ) -> None:
        self.guard = guard
        #: Who a rule's ``confirm`` question goes to: the host's user through its elicitation
        #: callback (``ask``), or a downstream caller (the portal passes ``caller``).
        self._caller = caller if caller is not None else HostCaller(ask) if ask is not None else None
        self._inner = session
        self.server = server
        self.principal = principal
        self._transport = transport
        self._cache_kw: dict[str, Any] = {"cache_mode": "bypass"} if _is_client(session) else {}
        #: What the server declares about a target (``request.annotations``), from definitions the
        #: host trusts; None here: a live server's own word is not evidence (the portal sets one).
        self._describe: Describe | None = None

    # ------------------------------------------------------------------ the adapter
    def _context(self) -> RequestContext:
        return RequestContext(time=datetime.now(timezone.utc), transport=self._transport)

    async def _run(
        self,
        method: str,
        params: Mapping[str, Any] | None,
        send: Callable[[], Awaitable[Any]],
    ) -> Any:
        """Translate one session call into one :meth:`Guard.run` (outbound: the server is untrusted)."""
        exchange = Exchange(
            method,
            params,
            self.server,
            self._context(),
            direction="outbound",
            principal=self.principal,
            lookup=self._lookup,
            caller=self._caller,
            describe=self._describe,
        )
        return await self.guard.run(exchange, lambda _admitted: send())

    async def _lookup(self, method: str) -> dict[str, Any]:
        """Every page of a list straight from the server, to screen an item before its first use."""
        name, key = _LISTS[method]
        items: list[Any] = []
        cursor: str | None = None
        for _ in range(_LOOKUP_PAGES):
            page = to_wire(await self._list(name, cursor, {}))
            items.extend(page.get(key) or ())
            cursor = page.get("nextCursor")
            if not cursor:
                break
        return {key: items}

    # ------------------------------------------------------------------ ClientSession surface
    async def list_tools(self, *, cursor: str | None = None, **kw: Any) -> types.ListToolsResult:
        params = {"cursor": cursor} if cursor else {}
        return await self._run("tools/list", params, lambda: self._list("list_tools", cursor, kw))  # type: ignore[no-any-return]

    async def list_prompts(self, *, cursor: str | None = None, **kw: Any) -> types.ListPromptsResult:
        params = {"cursor": cursor} if cursor else {}
        return await self._run("prompts/list", params, lambda: self._list("list_prompts", cursor, kw))  # type: ignore[no-any-return]

    async def list_resources(self, *, cursor: str | None = None, **kw: Any) -> types.ListResourcesResult:
        params = {"cursor": cursor} if cursor else {}
        return await self._run("resources/list", params, lambda: self._list("list_resources", cursor, kw))  # type: ignore[no-any-return]

    async def list_resource_templates(
        self, *, cursor: str | None = None, **kw: Any
    ) -> types.ListResourceTemplatesResult:
        params = {"cursor": cursor} if cursor else {}
        return await self._run(  # type: ignore[no-any-return]
            "resources/templates/list", params, lambda: self._list("list_resource_templates", cursor, kw)
        )

    async def _list(self, name: str, cursor: str | None, kw: dict[str, Any]) -> Any:
        fn = getattr(self._inner, name)
        if _is_client(self._inner):
            return await fn(cursor=cursor, **{**self._cache_kw, **kw})
        if cursor:
            return await fn(params=types.PaginatedRequestParams(cursor=cursor), **kw)
        return await fn(**kw)

    async def call_tool(self, name: str, arguments: dict[str, Any] | None = None, *a: Any, **kw: Any) -> Any:
        return await self._run(
            "tools/call",
            {"name": name, "arguments": arguments or {}},
            lambda: self._inner.call_tool(name, arguments, *a, **kw),
        )

    async def get_prompt(self, name: str, arguments: dict[str, str] | None = None, **kw: Any) -> Any:
        return await self._run(
            "prompts/get",
            {"name": name, "arguments": arguments or {}},
            lambda: self._inner.get_prompt(name, arguments, **kw),
        )

    async def read_resource(self, uri: Any, **kw: Any) -> Any:
        return await self._run(
            "resources/read", {"uri": str(uri)}, lambda: self._inner.read_resource(uri, **kw)
        )

    async def subscribe_resource(self, uri: Any, **kw: Any) -> Any:
        return await self._run(
            "resources/subscribe", {"uri": str(uri)}, lambda: self._inner.subscribe_resource(uri, **kw)
        )

    async def unsubscribe_resource(self, uri: Any, **kw: Any) -> Any:
        return await self._run(
            "resources/unsubscribe", {"uri": str(uri)}, lambda: self._inner.unsubscribe_resource(uri, **kw)
        )

    async def complete(self, ref: Any, argument: dict[str, str], **kw: Any) -> Any:
        ref_data = to_wire(ref) if isinstance(ref, BaseModel) else dict(ref)
        return await self._run(
            "completion/complete",
            {"ref": ref_data, "argument": argument},
            lambda: self._inner.complete(ref, argument, **kw),
        )

    async def send_ping(self, **kw: Any) -> Any:
        return await self._run("ping", {}, lambda: self._inner.send_ping(**kw))

    async def set_logging_level(self, level: Any, **kw: Any) -> Any:
        return await self._run(
            "logging/setLevel", {"level": level}, lambda: self._inner.set_logging_level(level, **kw)
        )

    def __getattr__(self, name: str) -> Any:
        # Only plain facts about the connection pass through; every request method is guarded
        # above, and anything else that talks to the server (listen, raw sends, the inner
        # session itself) is not exposed: an unguarded path would be an unaudited one.
        if name in _FACTS:
            return getattr(self._inner, name)
        raise AttributeError(f"{name!r} is not exposed by a guarded session (it would bypass the guard)")


#: Read-only facts about the connection that a guarded session passes through.
_FACTS = frozenset(
    {
        "client_info",
        "discover_result",
        "extensions",
        "initialize_result",
        "instructions",
        "log_level",
        "mode",
        "protocol_version",
        "read_timeout_seconds",
        "server_capabilities",
        "server_info",
    }
)

_LISTS = {
    "tools/list": ("list_tools", "tools"),
    "prompts/list": ("list_prompts", "prompts"),
    "resources/list": ("list_resources", "resources"),
    "resources/templates/list": ("list_resource_templates", "resourceTemplates"),
}
_LOOKUP_PAGES = 50


def _is_client(obj: Any) -> bool:
    return isinstance(obj, Client)


class ServerRequestGate:
    """Screens and audits what a server asks of its client (sampling, elicitation, roots).

    Shared by the host-side callbacks here and the portal's links to its
    callers, so both refuse and record a server's requests the same way.
    """

    def __init__(self, guard: Guard, server: str, principal: Principal) -> None:
        self.guard = guard
        self.server = server
        self.principal = principal

    def _audit(
        self, method: str, decision: Outcome, reasons: tuple[str, ...] = (), code: int | None = None
    ) -> None:
        self.guard.record_nowait(
            self.guard.event(
                method,
                decision,
                principal=self.principal,
                reasons=reasons,
                error_code=code,
                kind="server-request",
                direction="inbound",
                server=self.server,
            )
        )

    def _screen(self, method: str, kind: str, payload: Mapping[str, Any]) -> types.ErrorData | None:
        """Scan what the server asks the host to show the model or the user; refuse if blocked."""
        try:
            scanned = self.guard._scan(kind, payload) if self.guard.sanitizers else None
        except Exception as exc:
            self._audit(method, "error", (repr(exc),), GUARD_UNAVAILABLE)
            return types.ErrorData(code=GUARD_UNAVAILABLE, message=GuardUnavailable.public_message)
        findings = tuple(f"{f.rule} at {f.field}" for f in scanned.findings) if scanned else ()
        if scanned is not None and scanned.verdict == "block" and self.guard.mode != "shadow":
            self._audit(method, "deny", findings, AccessDenied.code)
            return types.ErrorData(code=AccessDenied.code, message=AccessDenied.public_message)
        self._audit(method, "allow", findings)
        return None


class _Callbacks(ServerRequestGate):
    """Guarded versions of the callbacks through which a server reaches the host."""

    def __init__(self, guard: Guard, server: str, principal: Principal, user: dict[str, Any]) -> None:
        super().__init__(guard, server, principal)
        self.user = user

    async def sampling(self, context: Any, params: types.CreateMessageRequestParams) -> Any:
        refused = self._screen("sampling/createMessage", "sampling", to_wire(params))
        if refused is not None:
            return refused
        return await self.user["sampling_callback"](context, params)

    async def elicitation(self, context: Any, params: Any) -> Any:
        refused = self._screen("elicitation/create", "elicitation", to_wire(params))
        if refused is not None:
            return refused
        return await self.user["elicitation_callback"](context, params)

    async def roots(self, context: Any) -> Any:
        self._audit("roots/list", "allow")
        return await self.user["list_roots_callback"](context)

    async def logging(self, params: types.LoggingMessageNotificationParams) -> None:
        self._audit("notifications/message", "allow")
        await self.user["logging_callback"](params)

    async def message(self, message: Any) -> None:
        method = getattr(getattr(message, "root", message), "method", type(message).__name__)
        self._audit(str(method), "allow")
        handler = self.user.get("message_handler")
        if handler is not None:
            await handler(message)


class HostCaller:
    """The host's own user, asked with the host's elicitation callback (a rule's ``confirm``).

    The callback gets ``context=None``: the question comes from the guard, not from a server.
    """

    era: Era = "legacy"

    def __init__(self, callback: Any) -> None:
        self._callback = callback

    def can_elicit(self) -> bool:
        return True

    async def elicit(self, message: str, schema: Mapping[str, Any]) -> str:
        params = types.ElicitRequestFormParams(message=message, requested_schema=dict(schema))
        result = await self._callback(None, params)
        action = getattr(result, "action", None)
        return str(action) if action is not None else "error: " + str(getattr(result, "message", result))


@asynccontextmanager
async def guarded_client(
    guard: Guard,
    target: Any,
    *,
    server: str,
    principal: Principal,
    sampling_callback: Any = None,
    elicitation_callback: Any = None,
    list_roots_callback: Any = None,
    logging_callback: Any = None,
    message_handler: Any = None,
    **client_kwargs: Any,
) -> Any:
    """A guarded session to ``target``: the one way to put the guard around a client.

    ``target`` is anything ``mcp.Client`` accepts (a URL, ``StdioServerParameters``,
    an in-process server): the client is opened here with every path through
    the guard. Callbacks you pass are wrapped: the server's sampling and
    elicitation requests are scanned and audited before they reach them;
    callbacks you do not pass stay unset, so the server cannot use those
    capabilities at all.

    A policy ``confirm`` question is put to the host's user through
    ``elicitation_callback`` (with ``context=None``); without one such calls are refused.

    ``target`` may also be a ``ClientSession`` or ``mcp.Client`` that is already
    open: it is wrapped as it is (and stays yours to close). Its requests and
    results pass the guard, but server-initiated requests go to the callbacks
    it was opened with, which the guard cannot see.
    """
    if isinstance(target, (Client, ClientSession)):
        if any(cb is not None for cb in (sampling_callback, elicitation_callback, list_roots_callback)):
            raise TypeError("callbacks belong to the open session; pass them when opening it")
        yield GuardedSession(guard, target, server=server, principal=principal)
        return

    user = {
        "sampling_callback": sampling_callback,
        "elicitation_callback": elicitation_callback,
        "list_roots_callback": list_roots_callback,
        "logging_callback": logging_callback,
        "message_handler": message_handler,
    }
    cb = _Callbacks(guard, server, principal, user)
    client = Client(
        target,
        sampling_callback=cb.sampling if sampling_callback else None,
        elicitation_callback=cb.elicitation if elicitation_callback else None,
        list_roots_callback=cb.roots if list_roots_callback else None,
        logging_callback=cb.logging if logging_callback else None,
        message_handler=cb.message,
        cache=None,
        **client_kwargs,
    )
    async with client:
        yield GuardedSession(guard, client, server=server, principal=principal, ask=elicitation_callback)


__all__ = ["GuardedSession", "guarded_client"]

KNOWN_METHODS = tuple(REQUESTS)
