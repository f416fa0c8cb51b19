"""The guard around MCP client sessions: a host guarding the servers it connects to.

Here the untrusted party is the *server*. Outbound calls are checked against
the policy like inbound ones on the server side; what the server sends back
(lists, results, and its own requests such as sampling or elicitation) is
inspected before the model can see it.

Two ways in:

- :func:`guarded_client` builds the ``mcp.Client`` itself, so it also wraps the
  sampling, elicitation, roots, logging and notification callbacks and turns
  the client's list cache off (a cached list must not skip pin checks).
- :func:`wrap_session` wraps a session or client that is already open. It
  sees requests and their results only: server-initiated requests and
  notifications go to callbacks it did not install.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any, TypeVar

from mcp import types
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel

from .._wire import to_wire
from ..classify import REQUESTS, MethodInfo, classify
from ..errors import GUARD_UNAVAILABLE, AccessDenied, GuardError, GuardUnavailable
from ..guard import Guard
from ..model import AccessRequest, Outcome, Principal, RequestContext, ResultSummary

logger = logging.getLogger("mcp_guard.client")

M = TypeVar("M", bound=BaseModel)

_RESULT_KIND = {
    "tools/call": "tool_result",
    "prompts/get": "prompt_result",
    "resources/read": "resource_result",
}


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
    ) -> None:
        self.guard = guard
        self.session = session
        self.server = server
        self.principal = principal
        self._transport = transport
        self._cache_kw: dict[str, Any] = {"cache_mode": "bypass"} if _is_client(session) else {}
        # Items withheld from this session's lists (blocked or changed): refused at call time too,
        # without asking the server.
        self._withheld: set[tuple[str, str]] = set()

    # ------------------------------------------------------------------ chain
    def _context(self) -> RequestContext:
        return RequestContext(time=datetime.now(timezone.utc), transport=self._transport)

    async def _run(
        self,
        method: str,
        params: Mapping[str, Any] | None,
        send: Callable[[], Awaitable[Any]],
    ) -> Any:
        guard = self.guard
        started = time.perf_counter()
        request: AccessRequest | None = None
        try:
            request, info = classify(method, params, self.server, self._context())
            if request.kind is not None and (request.kind, request.target or "") in self._withheld:
                raise AccessDenied(
                    f"{request.kind} {request.target!r} is withheld (sanitizer verdict or pin)"
                )
            guard.check_params(params, request)
            decision = await guard.authorize(self.principal, request, info)
            guard.check_audit()
        except Exception as exc:
            raise self._refuse(exc, method, request, started) from None
        try:
            result = await send()
        except MCPError as exc:
            await guard.record(
                guard.event(
                    method,
                    "allow",
                    principal=self.principal,
                    request=request,
                    verdict=decision,
                    error_code=exc.code,
                    started=started,
                    result=ResultSummary(is_error=True),
                    direction="outbound",
                )
            )
            raise
        try:
            result, summary = await self._inspect(method, info, result)
        except Exception as exc:
            raise self._refuse(exc, method, request, started) from None
        await guard.record(
            guard.event(
                method,
                "allow",
                principal=self.principal,
                request=request,
                verdict=decision,
                result=summary,
                started=started,
                direction="outbound",
            )
        )
        return result

    async def _inspect(self, method: str, info: MethodInfo, result: Any) -> tuple[Any, ResultSummary | None]:
        if not isinstance(result, BaseModel):
            return result, None
        if info.list_key is not None:
            data = to_wire(result)
            listed = self._names(info, data)
            data, pin_findings = await self._unpinned(info, data)
            filtered, summary = self.guard.filter_list(
                self.principal, self.server, info, data, inspect_items=True
            )
            if pin_findings:
                summary = replace(summary, findings=(*pin_findings, *summary.findings))
            kept = self._names(info, filtered)
            target_kind = "resource" if info.list_kind == "resource_template" else info.list_kind or ""
            for name in listed - kept:
                self._withheld.add((target_kind, name))
            for name in kept:
                self._withheld.discard((target_kind, name))
            return type(result).model_validate(filtered), summary
        kind = _RESULT_KIND.get(method)
        if kind is not None and getattr(result, "result_type", "complete") in (None, "complete"):
            data = to_wire(result)
            out, summary = self.guard.inspect_result(kind, data, enabled=True, server=self.server)
            # inspect_result always hands back a copy: re-validate only what scanning rewrote.
            return (result if out == data else type(result).model_validate(out)), summary
        return result, None

    @staticmethod
    def _names(info: MethodInfo, data: Mapping[str, Any]) -> set[str]:
        from ..classify import item_name

        kind = info.list_kind or ""
        return {
            n
            for i in data.get(info.list_key or "", [])
            if isinstance(i, Mapping) and (n := item_name(kind, i))
        }

    async def _unpinned(
        self, info: MethodInfo, data: dict[str, Any]
    ) -> tuple[dict[str, Any], tuple[Any, ...]]:
        """Withhold items whose definition changed since approval (rug-pull defence), if pins are on."""
        if info.list_key is None or info.list_kind is None:
            return data, ()
        return await self.guard.screen_pins(self.server, info.list_kind, data, info.list_key)

    def _refuse(
        self, exc: BaseException, method: str, request: AccessRequest | None, started: float
    ) -> MCPError:
        if isinstance(exc, MCPError):
            return exc
        err = exc if isinstance(exc, GuardError) else GuardUnavailable(f"{type(exc).__name__}: {exc}")
        if not isinstance(exc, GuardError):
            logger.exception("guard stage failed on outbound %s", method)
        outcome: Outcome = "error" if isinstance(err, GuardUnavailable) else "deny"
        self.guard.record_nowait(
            self.guard.event(
                method,
                outcome,
                principal=self.principal,
                request=request,
                context=self._context(),
                verdict=err.decision,
                reasons=(err.reason,),
                error_code=err.code,
                started=started,
                direction="outbound",
                server=self.server,
            )
        )
        return MCPError(err.code, err.public_message, err.data)

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
        fn = getattr(self.session, name)
        if _is_client(self.session):
            return await fn(cursor=cursor, **{**self._cache_kw, **kw})
        if cursor:
            return await fn(params=types.PaginatedRequestParams(cursor=cursor), **kw)
        return await fn(**kw)

    async def call_tool(self, name: str, arguments: dict[str, Any] | None = None, *a: Any, **kw: Any) -> Any:
        return await self._run(
            "tools/call",
            {"name": name, "arguments": arguments or {}},
            lambda: self.session.call_tool(name, arguments, *a, **kw),
        )

    async def get_prompt(self, name: str, arguments: dict[str, str] | None = None, **kw: Any) -> Any:
        return await self._run(
            "prompts/get",
            {"name": name, "arguments": arguments or {}},
            lambda: self.session.get_prompt(name, arguments, **kw),
        )

    async def read_resource(self, uri: Any, **kw: Any) -> Any:
        return await self._run(
            "resources/read", {"uri": str(uri)}, lambda: self.session.read_resource(uri, **kw)
        )

    async def subscribe_resource(self, uri: Any, **kw: Any) -> Any:
        return await self._run(
            "resources/subscribe", {"uri": str(uri)}, lambda: self.session.subscribe_resource(uri, **kw)
        )

    async def unsubscribe_resource(self, uri: Any, **kw: Any) -> Any:
        return await self._run(
            "resources/unsubscribe", {"uri": str(uri)}, lambda: self.session.unsubscribe_resource(uri, **kw)
        )

    async def complete(self, ref: Any, argument: dict[str, str], **kw: Any) -> Any:
        ref_data = to_wire(ref) if isinstance(ref, BaseModel) else dict(ref)
        return await self._run(
            "completion/complete",
            {"ref": ref_data, "argument": argument},
            lambda: self.session.complete(ref, argument, **kw),
        )

    async def send_ping(self, **kw: Any) -> Any:
        return await self._run("ping", {}, lambda: self.session.send_ping(**kw))

    async def set_logging_level(self, level: Any, **kw: Any) -> Any:
        return await self._run(
            "logging/setLevel", {"level": level}, lambda: self.session.set_logging_level(level, **kw)
        )

    def __getattr__(self, name: str) -> Any:
        # Anything not guarded above is not an MCP request (properties such as
        # server capabilities); requests we do not know are refused.
        if name in ("send_request",):
            raise AttributeError(f"{name} bypasses the guard and is not exposed")
        return getattr(self.session, name)


def _is_client(obj: Any) -> bool:
    from mcp.client.client import Client

    return isinstance(obj, Client)


def wrap_session(guard: Guard, session: Any, *, server: str, principal: Principal) -> GuardedSession:
    """Guard an already open ``ClientSession`` or ``mcp.Client`` (requests and results only)."""
    return GuardedSession(guard, session, server=server, principal=principal)


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
    """Open an ``mcp.Client`` to ``target`` with every path through the guard.

    ``target`` is anything ``mcp.Client`` accepts (a URL, ``StdioServerParameters``,
    an in-process server). Callbacks you pass are wrapped: the server's
    sampling and elicitation requests are scanned and audited before they
    reach them; callbacks you do not pass stay unset, so the server cannot use
    those capabilities at all.
    """
    from mcp import Client

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
        yield GuardedSession(guard, client, server=server, principal=principal)


__all__ = ["GuardedSession", "guarded_client", "wrap_session"]

KNOWN_METHODS = tuple(REQUESTS)
