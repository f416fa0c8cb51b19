"""The guard as native ``mcp`` 2.x server middleware.

This is the one module that knows the shape of the SDK's provisional
middleware API (``(ctx, call_next) -> result``), so a change in a 2.x minor
release touches only this file. The middleware runs before the SDK validates
params or looks up a handler, so a refusal here means no handler code runs.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
import weakref
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types import CLIENT_INFO_META_KEY

from ..classify import REQUESTS, classify
from ..errors import GUARD_UNAVAILABLE, GuardError, GuardUnavailable
from ..guard import Guard
from ..model import AccessRequest, Outcome, Principal, RequestContext, ResultSummary
from ..protocols import Credential

logger = logging.getLogger("mcp_guard.server")

#: Environment variable a stdio server process reads its caller's credential from.
TOKEN_ENV = "MCP_GUARD_TOKEN"

#: The authenticated caller of the request being handled, set by a delegating
#: :class:`GuardMiddleware` for its handler (see ``delegate``).
CURRENT_CALLER: ContextVar[tuple[Principal, RequestContext] | None] = ContextVar(
    "mcp_guard_current_caller", default=None
)

_RESULT_KIND = {
    "tools/call": "tool_result",
    "prompts/get": "prompt_result",
    "resources/read": "resource_result",
}


def _bearer(headers: Mapping[str, str] | None) -> str | None:
    if headers is None:
        return None
    value = headers.get("authorization")
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        # A malformed Authorization header is a presented-but-invalid credential.
        return "\x00malformed"
    return token.strip()


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
    ) -> None:
        self.guard = guard
        self.delegate = delegate
        self.server = server or guard.server or "mcp-server"
        self._principal = principal
        if credential is None and read_env:
            credential = os.environ.get(TOKEN_ENV) or None
        self._credential = credential
        self._transport = transport
        self._sessions: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()

    # ------------------------------------------------------------------ context
    def _context(self, ctx: ServerRequestContext[Any, Any]) -> RequestContext:
        request = ctx.request
        headers = getattr(request, "headers", None)
        client = getattr(request, "client", None)
        client_name = client_version = None
        params = ctx.params if isinstance(ctx.params, Mapping) else None
        meta = params.get("_meta") if params else None
        info: Any = meta.get(CLIENT_INFO_META_KEY) if isinstance(meta, Mapping) else None
        if info is None and ctx.method == "initialize" and params:
            info = params.get("clientInfo")
        if isinstance(info, Mapping):
            client_name, client_version = info.get("name"), info.get("version")
        else:
            try:
                cp = ctx.session.client_params
            except Exception:
                cp = None
            if cp is not None:
                client_name, client_version = cp.client_info.name, cp.client_info.version
        return RequestContext(
            time=datetime.now(timezone.utc),
            transport=self._transport
            or ("http" if headers is not None else "stdio" if self._credential else "memory"),
            session_id=headers.get("mcp-session-id") if headers is not None else self._session_id(ctx),
            request_id=ctx.request_id,
            protocol_version=ctx.protocol_version,
            client_name=client_name,
            client_version=client_version,
            source_ip=getattr(client, "host", None),
        )

    def _session_id(self, ctx: ServerRequestContext[Any, Any]) -> str | None:
        """A stable id per connection where the transport has none (stdio, memory), for audit grouping."""
        # The SDK's session object is per request; the connection behind it lives as long as the
        # client stays (2025-11-25). It is only reachable as a private attribute: one line to adapt.
        session = getattr(getattr(ctx, "session", None), "_connection", None)
        if session is None:
            return None
        try:
            known = self._sessions.get(session)
            if known is None:
                known = self._sessions[session] = uuid.uuid4().hex
        except TypeError:  # not weak-referenceable: no grouping rather than a wrong one
            return None
        return known

    def _credential_for(self, ctx: ServerRequestContext[Any, Any], rc: RequestContext) -> Credential:
        token = get_access_token()
        if token is not None:
            return Credential(token.token, "http", rc.source_ip)
        headers = getattr(ctx.request, "headers", None)
        if headers is not None:
            return Credential(_bearer(headers), "http", rc.source_ip)
        return Credential(self._credential, "stdio" if self._credential else "none", rc.source_ip)

    async def _identify(self, ctx: ServerRequestContext[Any, Any], rc: RequestContext) -> Principal:
        if self._principal is not None and ctx.request is None and get_access_token() is None:
            return self._principal
        return await self.guard.identify(self._credential_for(ctx, rc))

    # ------------------------------------------------------------------ chain
    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        self.guard.ensure_background()
        if ctx.request_id is None:
            return await self._notification(ctx, call_next)
        return await self._request(ctx, call_next)

    async def _notification(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        started = time.perf_counter()
        guard = self.guard
        rc = self._context(ctx)
        principal: Principal | None = None
        try:
            principal = await self._identify(ctx, rc)
            request, _ = classify(ctx.method, ctx.params, self.server, rc, notification=True)
        except Exception as exc:
            err = exc if isinstance(exc, GuardError) else GuardUnavailable(repr(exc))
            # A notification has no response to carry an error: it is dropped and audited.
            guard.record_nowait(
                guard.event(
                    ctx.method,
                    "deny" if isinstance(exc, GuardError) else "error",
                    principal=principal,
                    context=rc,
                    reasons=(err.reason,),
                    error_code=err.code,
                    started=started,
                    kind="notification",
                    server=self.server,
                )
            )
            return None
        try:
            await guard.record(
                guard.event(
                    ctx.method,
                    "allow",
                    principal=principal,
                    request=request,
                    started=started,
                    kind="notification",
                )
            )
        except GuardError as exc:
            logger.warning("notification %s dropped: %s", ctx.method, exc.reason)
            return None
        return await call_next(ctx)

    async def _request(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        started = time.perf_counter()
        guard = self.guard
        method = ctx.method
        rc = self._context(ctx)
        principal: Principal | None = None
        request: AccessRequest | None = None
        try:
            principal = await self._identify(ctx, rc)
            if self._is_schema_lookup(ctx):
                return await self._schema_lookup(ctx, call_next, principal)
            request, info = classify(method, ctx.params, self.server, rc)
            guard.check_params(ctx.params, request)
            if self.delegate and not info.housekeeping:
                guard.check_audit()
                return await self._delegated(ctx, call_next, principal, rc)
            decision = await guard.authorize(principal, request, info)
            guard.check_audit()
        except Exception as exc:
            raise self._refuse(exc, method, principal, request, rc, started) from None

        try:
            result = await call_next(ctx)
        except MCPError as exc:
            await guard.record(
                guard.event(
                    method,
                    "allow",
                    principal=principal,
                    request=request,
                    verdict=decision,
                    error_code=exc.code,
                    started=started,
                    result=ResultSummary(is_error=True),
                )
            )
            raise
        except Exception as exc:
            await guard.record(
                guard.event(
                    method,
                    "allow",
                    principal=principal,
                    request=request,
                    verdict=decision,
                    error_code=GUARD_UNAVAILABLE,
                    started=started,
                    reasons=(f"handler raised {type(exc).__name__}",),
                    result=ResultSummary(is_error=True),
                )
            )
            raise

        summary: ResultSummary | None = None
        try:
            if isinstance(result, Mapping):
                if info.list_key is not None:
                    pin_findings: tuple[Any, ...] = ()
                    if guard.inspect_lists and info.list_kind is not None:
                        result, pin_findings = await guard.screen_pins(
                            self.server, info.list_kind, result, info.list_key
                        )
                    result, summary = guard.filter_list(principal, self.server, info, result)
                    if pin_findings:
                        summary = replace(summary, findings=(*pin_findings, *summary.findings))
                elif method in _RESULT_KIND and result.get("resultType", "complete") == "complete":
                    result, summary = guard.inspect_result(_RESULT_KIND[method], result, server=self.server)
        except Exception as exc:
            raise self._refuse(exc, method, principal, request, rc, started) from None
        await guard.record(
            guard.event(
                method,
                "allow",
                principal=principal,
                request=request,
                verdict=decision,
                result=summary,
                started=started,
            )
        )
        return result

    @staticmethod
    async def _delegated(
        ctx: ServerRequestContext[Any, Any], call_next: CallNext, principal: Principal, rc: RequestContext
    ) -> HandlerResult:
        """Hand the request to a handler that decides it through the guard (one decision, its audit)."""
        token = CURRENT_CALLER.set((principal, rc))
        try:
            return await call_next(ctx)
        finally:
            CURRENT_CALLER.reset(token)

    def _refuse(
        self,
        exc: BaseException,
        method: str,
        principal: Principal | None,
        request: AccessRequest | None,
        rc: RequestContext,
        started: float,
    ) -> MCPError:
        """Turn any stage failure into an audited, leak-free MCP error."""
        if isinstance(exc, MCPError):
            return exc
        if isinstance(exc, GuardError):
            err = exc
        else:
            logger.exception("guard stage failed on %s", method)
            err = GuardUnavailable(f"{type(exc).__name__}: {exc}")
        outcome: Outcome = "error" if isinstance(err, GuardUnavailable) else "deny"
        self.guard.record_nowait(
            self.guard.event(
                method,
                outcome,
                principal=principal,
                request=request,
                context=rc,
                verdict=err.decision,
                reasons=(err.reason,),
                error_code=err.code,
                started=started,
                server=self.server,
            )
        )
        return MCPError(err.code, err.public_message, err.data)

    # ------------------------------------------------------------------ 2026-07-28 schema lookup
    @staticmethod
    def _is_schema_lookup(ctx: ServerRequestContext[Any, Any]) -> bool:
        """The SDK's own ``tools/list`` walk to validate ``Mcp-Param-*`` headers of a ``tools/call``.

        On 2026-07-28 HTTP the ``Mcp-Method`` header must equal the body's
        method, so a ``tools/list`` context under a ``tools/call`` request is
        the SDK's internal listing, not a user action.
        """
        if ctx.method != "tools/list":
            return False
        headers = getattr(ctx.request, "headers", None)
        return headers is not None and headers.get("mcp-method") == "tools/call"

    async def _schema_lookup(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext, principal: Principal
    ) -> HandlerResult:
        """Answer the internal listing with at most the called tool, if this principal may see it.

        A hidden tool then yields no schema, exactly like an unknown one, and
        the walk costs one visibility check instead of a filtered full list.
        """
        from mcp.shared.inbound import MCP_NAME_HEADER, decode_header_value

        headers = getattr(ctx.request, "headers", None)
        name = decode_header_value(headers.get(MCP_NAME_HEADER)) if headers is not None else None
        if not name or not self.guard.visible(principal, self.server, "tool", name):
            return {"tools": []}
        result = await call_next(ctx)
        tools = result.get("tools", []) if isinstance(result, Mapping) else []
        return {"tools": [t for t in tools if isinstance(t, Mapping) and t.get("name") == name]}


def _schema_lookup_wrapper(
    guard: Guard,
    server_name: str,
    lookup: Callable[[str], Mapping[str, Any] | None],
    anonymous: Principal | None,
) -> Callable[[str], Mapping[str, Any] | None]:
    """Wrap an SDK ``get_tool_input_schema`` so hidden tools have no schema, like unknown ones.

    The SDK consults it before middleware runs; the principal comes from the
    guard's credential cache (never an I/O call here), and when it cannot be
    known the lookup answers "unknown", which only skips a header consistency
    check - the call itself still passes through the guard.
    """

    def guarded(name: str) -> Mapping[str, Any] | None:
        token = get_access_token()
        principal = guard.resolver.peek(token.token if token is not None else None)
        if principal is None:
            principal = anonymous
        if principal is None or not guard.visible(principal, server_name, "tool", name):
            return None
        return lookup(name)

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
    """Install ``guard`` on an ``MCPServer`` or low-level ``Server``.

    Appends the middleware (it runs inside the SDK's own OpenTelemetry and
    request-state middleware) and makes the SDK's pre-middleware tool-schema
    lookup principal-aware, so no path reveals a hidden tool.
    """
    lowlevel = getattr(server, "_lowlevel_server", server)
    name = server_name or guard.server or getattr(server, "name", None) or "mcp-server"
    middleware = GuardMiddleware(
        guard, server=name, credential=credential, principal=principal, read_env=read_env
    )
    lowlevel.middleware.append(middleware)
    lookup = getattr(lowlevel, "get_tool_input_schema", None)
    if lookup is not None:
        anonymous = guard.resolver.peek(None)
        lowlevel.get_tool_input_schema = _schema_lookup_wrapper(guard, name, lookup, anonymous)
    return server


__all__ = ["CURRENT_CALLER", "TOKEN_ENV", "GuardMiddleware", "protect"]

# Requests the middleware knows; exported for documentation and tests.
KNOWN_METHODS = tuple(REQUESTS)
