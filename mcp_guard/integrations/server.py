"""The guard as native ``mcp`` 2.x server middleware.

This is the one module that knows the shape of the SDK's provisional
middleware API (``(ctx, call_next) -> result``), so a change in a 2.x minor
release touches only this file. The middleware runs before the SDK validates
params or looks up a handler, so a refusal here means no handler code runs.
"""

from __future__ import annotations

import logging
import os
import uuid
import warnings
import weakref
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.request_state import RequestStateSecurity
from mcp.shared.exceptions import MCPError
from mcp.shared.inbound import MCP_METHOD_HEADER, MCP_NAME_HEADER, decode_header_value
from mcp_types import CLIENT_INFO_META_KEY

from .._wire import to_wire
from ..classify import REQUESTS
from ..confirm import Caller
from ..errors import AUTHENTICATION_REQUIRED
from ..guard import Guard, register_integration
from ..model import Principal, RequestContext
from ..pipeline import Admitted, Describe, Exchange
from ..protocols import Credential
from ..screening import PIN_NOTICES
from .asking import SessionCaller, confirmed_rounds
from .boundary import PreGuardRefusals, install, reached
from .describe import describer
from .handshake import answer_fallback_handshakes
from .http import AuditHttpRefusals, GuardTokenVerifier
from .serving import fastmcp_http_app, http_server
from .sessions import DEFAULT_MAX_SESSIONS, DEFAULT_MAX_SESSIONS_PER_PRINCIPAL, bearer, guard_sessions

logger = logging.getLogger("mcp_guard.server")

#: Environment variable a stdio server process reads its caller's credential from.
TOKEN_ENV = "MCP_GUARD_TOKEN"

#: The authenticated caller of the request being handled, set by a delegating
#: :class:`GuardMiddleware` for its handler (see ``delegate``).
CURRENT_CALLER: ContextVar[tuple[Principal, RequestContext] | None] = ContextVar(
    "mcp_guard_current_caller", default=None
)
#: The user behind the downstream request, for the nested runs' ``confirm`` questions (portal).
CURRENT_ASKER: ContextVar[Caller | None] = ContextVar("mcp_guard_current_asker", default=None)

_RESULT_KIND = {
    "tools/call": "tool_result",
    "prompts/get": "prompt_result",
    "resources/read": "resource_result",
}


class GuardMiddleware:
    """Runs every inbound request and notification through a :class:`Guard`.

    Credentials come, in order, from the SDK's HTTP auth (when the server was
    built with the guard's token verifier), the request's own
    ``Authorization`` header (HTTP without SDK auth, e.g. with anonymous
    access), the explicit ``credential`` or ``principal`` given here, and for
    stdio the ``MCP_GUARD_TOKEN`` environment variable read once at start-up.

    With ``delegate=True`` (the portal) the middleware authenticates,
    classifies, size-checks and audits refusals of every message, but leaves
    the policy decision, list filtering and result inspection of list and
    targeted requests to the handler, which must run them through the guard
    itself (the portal does so with one guarded client session per upstream,
    so policy sees the upstream's name and its unprefixed target). The caller
    reaches the handler through :data:`CURRENT_CALLER`.
    """

    def __init__(
        self,
        guard: Guard,
        *,
        server: str | None = None,
        credential: str | None = None,
        principal: Principal | None = None,
        transport: str | None = None,
        read_env: bool = True,
        delegate: bool = False,
        describe: Describe | None = None,
    ) -> None:
        self.guard = guard
        self.delegate = delegate
        self._describe = describe
        self.server = server or guard.server or "mcp-server"
        self._principal = principal
        if credential is None and read_env:
            credential = os.environ.get(TOKEN_ENV) or None
        self._credential = credential
        self._transport = transport
        #: What stays the same for every request of a connection without HTTP headers (stdio,
        #: memory): its id for audit grouping, and the client's name and version once known.
        self._sessions: weakref.WeakKeyDictionary[Any, _Connection] = weakref.WeakKeyDictionary()
        #: The credential of such a connection: one object, built once (see ``_credential_for``).
        self._fixed = Credential(credential, "stdio" if credential else "none", None)
        #: The last refusal of the fixed (stdio) credential for authentication: the same
        #: answer is given to the client's fallback ``initialize`` (see ``handshake``).
        self.authentication_refusal: MCPError | None = None

    # ------------------------------------------------------------------ context
    def _context(self, ctx: ServerRequestContext[Any, Any]) -> RequestContext:
        request = ctx.request
        headers = getattr(request, "headers", None)
        raw = ctx.params
        # A plain dict is recognised before the ``Mapping`` ABC check: this runs for every request.
        params = raw if type(raw) is dict or isinstance(raw, Mapping) else None
        meta = params.get("_meta") if params else None
        info: Any = (
            meta.get(CLIENT_INFO_META_KEY) if type(meta) is dict or isinstance(meta, Mapping) else None
        )
        if info is None and ctx.method == "initialize" and params:
            info = params.get("clientInfo")
        if headers is None:
            # stdio or memory: the connection's facts are looked up once, not rebuilt per request.
            conn = self._connection(ctx)
            if info is not None and isinstance(info, Mapping):
                client_name, client_version = info.get("name"), info.get("version")
            elif conn is not None:
                client_name, client_version = conn.client(ctx)
            else:
                client_name, client_version = _client_params(ctx)
            # Positional, in RequestContext's field order: built for every request.
            return RequestContext(
                datetime.now(timezone.utc),
                self._transport or ("stdio" if self._credential else "memory"),
                conn.id if conn is not None else None,
                ctx.request_id,
                ctx.protocol_version,
                client_name,
                client_version,
                getattr(getattr(request, "client", None), "host", None),
            )
        if info is not None and isinstance(info, Mapping):
            client_name, client_version = info.get("name"), info.get("version")
        else:
            client_name, client_version = _client_params(ctx)
        return RequestContext(
            datetime.now(timezone.utc),
            self._transport or "http",
            headers.get("mcp-session-id"),
            ctx.request_id,
            ctx.protocol_version,
            client_name,
            client_version,
            getattr(getattr(request, "client", None), "host", None),
        )

    def _connection(self, ctx: ServerRequestContext[Any, Any]) -> _Connection | None:
        """The connection behind a request without HTTP headers (stdio, memory), for audit grouping."""
        # The SDK's session object is per request; the connection behind it lives as long as the
        # client stays (2025-11-25). It is only reachable as a private attribute: one line to adapt.
        session = getattr(getattr(ctx, "session", None), "_connection", None)
        if session is None:
            return None
        try:
            known = self._sessions.get(session)
            if known is None:
                known = self._sessions[session] = _Connection(uuid.uuid4().hex)
        except TypeError:  # not weak-referenceable: no grouping rather than a wrong one
            return None
        return known

    def _credential_for(
        self, ctx: ServerRequestContext[Any, Any], rc: RequestContext, token: Any = None
    ) -> Credential:
        """The request's credential; ``token`` is the SDK's verified access token, if any."""
        if token is not None:
            return Credential(token.token, "http", rc.source_ip)
        headers = getattr(ctx.request, "headers", None)
        if headers is not None:
            return Credential(bearer(headers), "http", rc.source_ip)
        if rc.source_ip is None:
            return self._fixed  # the same for every request of the connection: built once
        return Credential(self._credential, "stdio" if self._credential else "none", rc.source_ip)

    def known(self, ctx: ServerRequestContext[Any, Any]) -> tuple[Principal | None, RequestContext]:
        """The request's context and its principal if already known (cached), verifying nothing."""
        rc = self._context(ctx)
        token = get_access_token()
        if self._principal is not None and ctx.request is None and token is None:
            return self._principal, rc
        return self.guard.resolver.peek(self._credential_for(ctx, rc, token).token), rc

    async def _identify(self, ctx: ServerRequestContext[Any, Any], rc: RequestContext) -> Principal:
        token = get_access_token()
        if self._principal is not None and ctx.request is None and token is None:
            return self._principal
        return await self.guard.identify(self._credential_for(ctx, rc, token))

    def _mismatch(self, ctx: ServerRequestContext[Any, Any]) -> str | None:
        """Routing headers that disagree with the body (SEP-2243): the body decides, a mismatch is refused.

        No path is chosen by ``Mcp-Method`` / ``Mcp-Name`` alone: a ``tools/list``
        carrying ``Mcp-Method: tools/call`` is a forged request, not a schema lookup.
        """
        headers = getattr(ctx.request, "headers", None)
        if headers is None:
            return None
        methods = _all(headers, MCP_METHOD_HEADER)
        if any(m != ctx.method for m in methods):
            return f"{MCP_METHOD_HEADER} header {methods!r} does not match the body's method {ctx.method!r}"
        names = _all(headers, MCP_NAME_HEADER)
        if len(names) > 1:
            return f"{MCP_NAME_HEADER} header given {len(names)} times: it does not match the body"
        if not names:
            return None
        raw = names[0]
        params = ctx.params if isinstance(ctx.params, Mapping) else {}
        field = _NAME_FIELD.get(ctx.method)
        body = params.get(field) if field is not None else None
        try:
            name = decode_header_value(raw)
        except Exception:
            return f"{MCP_NAME_HEADER} header is not decodable"
        if body is None or name != body:
            return f"{MCP_NAME_HEADER} header does not match the body's {field or 'target'}"
        return None

    def _exchange(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> Exchange:
        rc = self._context(ctx)
        token = get_access_token()  # once per request: a context variable read
        known = self._principal is not None and ctx.request is None and token is None
        raw = ctx.params
        params = raw if type(raw) is dict or isinstance(raw, Mapping) else None
        notification = ctx.request_id is None

        async def lookup(method: str) -> dict[str, Any]:
            # The server's own list handler, reached through the rest of the chain under the
            # request's envelope, so an item is screened before its first use by name.
            meta = params.get("_meta") if params else None
            items: list[Any] = []
            cursor: str | None = None
            key = REQUESTS[method].list_key or ""
            for _ in range(_LOOKUP_PAGES):
                list_params: dict[str, Any] = {"_meta": meta} if meta is not None else {}
                if cursor:
                    list_params["cursor"] = cursor
                page = await call_next(replace(ctx, method=method, params=list_params))
                data = to_wire(page) if page is not None else {}
                items.extend(data.get(key) or ())
                cursor = data.get("nextCursor")
                if not cursor:
                    break
            return {key: items}

        return Exchange(
            ctx.method,
            params,
            self.server,
            rc,
            credential=None if known else self._credential_for(ctx, rc, token),
            principal=self._principal if known else None,
            notification=notification,
            lookup=None if notification else lookup,
            mismatch=self._mismatch(ctx),
            describe=self._describe,
            caller=None if notification else SessionCaller(ctx),
        )

    # ------------------------------------------------------------------ the adapter
    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        """Translate the SDK's request into one :meth:`Guard.run`; the pipeline does the rest."""
        self.guard.ensure_background()
        reached()
        exchange = self._exchange(ctx, call_next)

        async def call(admitted: Admitted) -> HandlerResult:
            own = ctx if exchange.forward is None else replace(ctx, params=exchange.forward)
            if not self.delegate:
                result = await call_next(own)
                if admitted.decision.confirmation is None:
                    return result  # nothing confirmed, nothing to carry into a next round
                return await confirmed_rounds(self.guard, admitted, result)
            token = CURRENT_CALLER.set((admitted.principal, exchange.context))
            asking = CURRENT_ASKER.set(exchange.caller)
            try:
                return await confirmed_rounds(self.guard, admitted, await call_next(own))
            finally:
                CURRENT_ASKER.reset(asking)
                CURRENT_CALLER.reset(token)

        if exchange.notification:
            try:
                await self.guard.run(exchange, call)
            except MCPError as exc:
                # A notification has no response to carry an error: it is dropped (and audited).
                logger.debug("notification %s dropped: %s", ctx.method, exc)
            return None
        # Pin notices come only from pins: without a pin store there is nothing to collect.
        notices: list[str] | None = [] if self.guard.pins is not None else None
        collecting = PIN_NOTICES.set(notices) if notices is not None else None
        try:
            result: HandlerResult = await self.guard.run(exchange, call, delegate=self.delegate)
        except MCPError as exc:
            if ctx.request is None and exc.code == AUTHENTICATION_REQUIRED:
                self.authentication_refusal = exc
            raise
        finally:
            if collecting is not None:
                PIN_NOTICES.reset(collecting)
        for notice in notices or ():
            await _tell_caller(ctx, notice)
        if ctx.request is None:
            self.authentication_refusal = None
        return result


async def _tell_caller(ctx: ServerRequestContext[Any, Any], notice: str) -> None:
    """A warning in the caller's log (``notifications/message``): items silently missing from a
    list are the surprise pins cause, and the caller is who notices. Best effort: a client that
    did not ask for log messages (2026-07-28 opt-in) gets none, and the guard's log has it anyway."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the SDK marks logging deprecated as of 2026-07-28
            await ctx.session.send_log_message(
                "warning", notice, logger="mcp-guard", related_request_id=ctx.request_id
            )
    except Exception:
        logger.debug("could not pass a pin notice to the caller", exc_info=True)


class _Connection:
    """The facts of one stdio or in-memory connection that every request of it shares."""

    __slots__ = ("_client", "id")

    def __init__(self, id: str) -> None:
        self.id = id
        self._client: tuple[Any, Any] | None = None

    def client(self, ctx: ServerRequestContext[Any, Any]) -> tuple[Any, Any]:
        """The client's name and version from its ``initialize``, kept once the handshake gave them."""
        if self._client is not None:
            return self._client
        found = _client_params(ctx)
        if found != (None, None):
            self._client = found
        return found


def _client_params(ctx: ServerRequestContext[Any, Any]) -> tuple[Any, Any]:
    """The client's name and version from the session's ``initialize`` params, if it sent them."""
    try:
        cp = ctx.session.client_params
    except Exception:
        cp = None
    if cp is None:
        return None, None
    return cp.client_info.name, cp.client_info.version


def _all(headers: Any, name: str) -> list[str]:
    """Every value of a header (a repeated routing header must agree with the body every time)."""
    getlist = getattr(headers, "getlist", None)
    if getlist is not None:
        return list(getlist(name))
    value = headers.get(name)
    return [value] if value is not None else []


_NAME_FIELD = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}
_LOOKUP_PAGES = 50


def _schema_lookup_wrapper(
    guard: Guard,
    server_name: str,
    lookup: Callable[[str], Mapping[str, Any] | None] | None,
    anonymous: Principal | None,
) -> Callable[[str], Mapping[str, Any] | None]:
    """The SDK's pre-middleware tool-schema lookup, answered only for tools this caller may use.

    The SDK consults it before middleware runs, to check ``Mcp-Param-*``
    headers; the principal comes from the guard's credential cache (never an
    I/O call here). A hidden, withheld or unknown tool has no schema, which
    only skips a header consistency check - the call itself still passes
    through the guard. Installed on every protected server, so the SDK never
    falls back to listing tools through the middleware.
    """

    def guarded(name: str) -> Mapping[str, Any] | None:
        token = get_access_token()
        principal = guard.resolver.peek(token.token if token is not None else None)
        if principal is None:
            principal = anonymous
        if principal is None or not guard.visible(principal, server_name, "tool", name):
            return None
        if guard.withheld.state(server_name, "tool", name):
            return None
        return lookup(name) if lookup is not None else None

    return guarded


def protect(
    guard: Guard,
    server: Any,
    *,
    server_name: str | None = None,
    credential: str | None = None,
    principal: Principal | None = None,
    read_env: bool = True,
) -> Any:
    """Install ``guard`` on an ``MCPServer``, a low-level ``Server`` or a ``fastmcp.FastMCP``.

    Appends the middleware to the SDK server's list (it runs inside the SDK's
    own OpenTelemetry and request-state middleware, and for FastMCP inside
    FastMCP's root dispatch, so FastMCP's own middleware, auth checks and
    handlers run only after the guard admitted the request) and makes the SDK's
    pre-middleware tool-schema lookup principal-aware, so no path reveals a
    hidden tool. The server's declared tags and tool annotations reach the
    policy as ``request.tags`` and ``request.annotations``.
    """
    # MCPServer keeps its SDK server in ``_lowlevel_server``, FastMCP in ``_mcp_server``.
    lowlevel = getattr(server, "_lowlevel_server", None) or getattr(server, "_mcp_server", None) or server
    if not isinstance(getattr(lowlevel, "middleware", None), list):
        raise TypeError(f"cannot guard {type(server).__name__}: not an MCP SDK or FastMCP server")
    if any(isinstance(m, GuardMiddleware) for m in lowlevel.middleware):
        # A second guard would run after the first, whose options (principal, credential) win:
        # the new options would look applied and never be.
        raise RuntimeError(
            f"{type(server).__name__} {getattr(server, 'name', '')!r} is already guarded:"
            " call protect() once, with all its options"
        )
    name = server_name or guard.server or getattr(server, "name", None) or "mcp-server"
    middleware = GuardMiddleware(
        guard,
        server=name,
        credential=credential,
        principal=principal,
        read_env=read_env,
        describe=describer(server),
    )
    lowlevel.middleware.append(middleware)
    install(lowlevel, PreGuardRefusals(guard, name, middleware.known))
    answer_fallback_handshakes(lowlevel, middleware)
    lookup = getattr(lowlevel, "get_tool_input_schema", None)
    anonymous = guard.resolver.peek(None)
    lowlevel.get_tool_input_schema = _schema_lookup_wrapper(guard, name, lookup, anonymous)
    return server


class _McpIntegration:
    """The ``mcp`` SDK behind ``Guard.protect``, ``Guard.http_app`` and ``Guard.token_verifier``."""

    def protect(self, guard: Guard, server: Any, **options: Any) -> Any:
        return protect(guard, server, **options)

    def http_app(self, guard: Guard, server: Any, **kwargs: Any) -> Any:
        # Sessions are opened only by authenticated callers, used only by their owner, and capped
        # (``max_sessions`` also bounds the SDK's own session manager).
        per_principal = kwargs.pop("max_sessions_per_principal", DEFAULT_MAX_SESSIONS_PER_PRINCIPAL)
        kwargs.setdefault("max_sessions", DEFAULT_MAX_SESSIONS)
        if not hasattr(server, "streamable_http_app") and hasattr(server, "http_app"):
            app = fastmcp_http_app(server, kwargs)
        else:
            app = server.streamable_http_app(**kwargs)
        guard_sessions(
            app, guard, max_sessions=kwargs["max_sessions"], max_sessions_per_principal=per_principal
        )
        app.add_middleware(AuditHttpRefusals, guard=guard)
        return app

    def http_server(self, guard: Guard, server: Any, **options: Any) -> Any:
        lowlevel = getattr(server, "_lowlevel_server", None) or getattr(server, "_mcp_server", None) or server
        if not any(isinstance(m, GuardMiddleware) and m.guard is guard for m in lowlevel.middleware):
            protect(guard, server)
        return http_server(guard, server, **options)

    def token_verifier(self, guard: Guard) -> Any:
        return GuardTokenVerifier(guard)

    def request_state_security(self, key: bytes | None, audience: str | None, ttl: float) -> Any:
        if key is None:
            return RequestStateSecurity.ephemeral()
        return RequestStateSecurity(keys=[key], ttl=ttl, audience=audience)


register_integration(_McpIntegration())

__all__ = ["CURRENT_ASKER", "CURRENT_CALLER", "TOKEN_ENV", "GuardMiddleware", "protect"]

# Requests the middleware knows; exported for documentation and tests.
KNOWN_METHODS = tuple(REQUESTS)
