"""The portal's request handlers: lists, tool calls, prompts, resources, completions.

Each handler maps the public name a caller used to the upstream that serves
it (see :mod:`.catalog`) and sends the request there under the upstream's own
name, on the session :mod:`.sessions` picks, so the guard decides it against
the names the policy is written for. Unknown, withheld and colliding names
are refused exactly like hidden ones.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from mcp import types
from mcp.server.session import ServerSession
from mcp.shared.exceptions import MCPError

from .._wire import to_wire
from .catalog import LIST_KEYS, item_key, public_item
from .sessions import SessionsMixin
from .state import connection_of

logger = logging.getLogger("mcp_guard.portal")

_LIST_RESULT: dict[str, Any] = {
    "tool": types.ListToolsResult,
    "prompt": types.ListPromptsResult,
    "resource": types.ListResourcesResult,
    "resource_template": types.ListResourceTemplatesResult,
}

_LIST_CALL = {
    "tool": "list_tools",
    "prompt": "list_prompts",
    "resource": "list_resources",
    "resource_template": "list_resource_templates",
}


def _encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode()


def _decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
        if text.startswith("o:") and int(text[2:]) >= 0:
            return int(text[2:])
    except (ValueError, UnicodeDecodeError):
        pass
    raise MCPError(types.INVALID_PARAMS, "Invalid cursor")


class HandlersMixin(SessionsMixin):
    """Answer downstream requests from the routed upstreams."""

    def _lister(self, kind: str) -> Any:
        model = _LIST_RESULT[kind]

        async def handler(ctx: Any, params: types.PaginatedRequestParams | None) -> Any:
            # Lists differ per caller: never cacheable across principals.
            return model.model_validate(
                {**await self._list(ctx, params, kind), "ttlMs": 0, "cacheScope": "private"}
            )

        return handler

    async def _list(self, ctx: Any, params: types.PaginatedRequestParams | None, kind: str) -> dict[str, Any]:
        principal, rc = self._caller(ctx)
        key = LIST_KEYS[kind]
        reverse = self._reverse[kind]
        items: list[dict[str, Any]] = []
        for name in list(self._served):
            session = self._session(name, principal, rc)
            listed = to_wire(await getattr(session, _LIST_CALL[kind])())
            for item in listed.get(key, []):
                own = item_key(kind, item)
                public = reverse.get((name, own)) if own is not None else None
                if public is not None and public in self._catalog.routes[kind]:
                    items.append(public_item(kind, public, item))
        start = _decode_cursor(params.cursor if params is not None else None)
        page = items[start : start + self.page_size] if self.page_size > 0 else items[start:]
        result: dict[str, Any] = {key: page}
        end = start + len(page)
        if self.page_size > 0 and end < len(items):
            result["nextCursor"] = _encode_cursor(end)
        return result

    async def _call_tool(self, ctx: Any, params: types.CallToolRequestParams) -> Any:
        kw: dict[str, Any] = {}
        token = (ctx.meta or {}).get("progress_token") if ctx.meta else None
        if token is not None and ctx.session is not None:
            kw["progress_callback"] = _progress_forwarder(ctx.session, token, ctx.request_id)
        arguments = dict(params.arguments or {})
        return await self._forward(
            ctx,
            params,
            ("tools/call", "tool", params.name),
            self._catalog.route("tool", params.name),
            lambda s, name: s.call_tool(name, arguments),
            lambda s, name: s.call_tool(name, arguments, **kw),  # progress only on a live stream
        )

    async def _get_prompt(self, ctx: Any, params: types.GetPromptRequestParams) -> Any:
        arguments = dict(params.arguments or {})
        return await self._forward(
            ctx,
            params,
            ("prompts/get", "prompt", params.name),
            self._catalog.route("prompt", params.name),
            lambda s, name: s.get_prompt(name, arguments),
        )

    async def _read_resource(self, ctx: Any, params: types.ReadResourceRequestParams) -> Any:
        uri = str(params.uri)
        return await self._forward(
            ctx,
            params,
            ("resources/read", "resource", uri),
            self._catalog.route_uri(uri),
            lambda s, _name: s.read_resource(uri),
        )

    async def _forward(
        self,
        ctx: Any,
        params: Any,
        what: tuple[str, str, str],
        route: Any,
        send: Callable[[Any, str], Awaitable[Any]],
        send_routed: Callable[[Any, str], Awaitable[Any]] | None = None,
    ) -> Any:
        """Send one targeted request to its upstream under the upstream's own name.

        Over the multi-round-trip path where the upstream may call back on
        2026-07-28, else on the caller's routed session (``send_routed`` when
        that path passes more, such as a progress callback). ``what`` is
        ``(method, kind, public name or URI)``; a target with no route is
        refused exactly like an unknown one.
        """
        method, kind, name = what
        principal, rc = self._caller(ctx)
        if route is None:
            raise self._unknown(method, kind, name, principal, rc)
        if await self._multi_round(ctx, route.upstream):
            return await self._round_trip(
                ctx,
                route.upstream,
                principal,
                rc,
                (method, name),
                params,
                lambda s: (send_routed or send)(s, route.name),
            )
        async with self._routed(ctx, route.upstream, principal, rc) as session:
            return await (send_routed or send)(session, route.name)

    async def _set_level(self, ctx: Any, params: types.SetLevelRequestParams) -> Any:
        # The guard middleware has already admitted (and audited) this request.
        connection = connection_of(ctx)
        if connection is not None:
            self._levels[connection] = str(params.level)
        return types.EmptyResult()

    async def _complete(self, ctx: Any, params: types.CompleteRequestParams) -> Any:
        principal, rc = self._caller(ctx)
        ref = params.ref
        argument = params.argument.model_dump(by_alias=True, exclude_none=True)
        if isinstance(ref, types.PromptReference):
            route = self._catalog.route("prompt", ref.name)
            if route is None:
                raise self._unknown("completion/complete", "prompt", ref.name, principal, rc)
            own_ref: Any = types.PromptReference(type="ref/prompt", name=route.name)
        else:
            uri = str(ref.uri)
            route = self._catalog.route_uri(uri)
            if route is None:
                raise self._unknown("completion/complete", "resource", uri, principal, rc)
            own_ref = ref
        async with self._routed(ctx, route.upstream, principal, rc) as session:
            return await session.complete(own_ref, argument)

    def _tool_schema(self, name: str) -> Mapping[str, Any] | None:
        """Input schema for the SDK's pre-middleware header check: hidden tools look unknown."""
        from mcp.server.auth.middleware.auth_context import get_access_token

        route = self._catalog.route("tool", name)
        if route is None:
            return None
        token = get_access_token()
        principal = self.guard.resolver.peek(token.token if token is not None else None)
        if principal is None or not self.guard.visible(principal, route.upstream, "tool", route.name):
            return None
        schema = route.item.get("inputSchema")
        return schema if isinstance(schema, Mapping) else None


def _progress_forwarder(session: ServerSession, token: Any, request_id: Any) -> Any:
    async def forward(progress: float, total: float | None, message: str | None) -> None:
        try:
            await session.send_progress_notification(
                token, progress, total=total, message=message, related_request_id=request_id
            )
        except Exception:
            logger.debug("progress notification could not be forwarded", exc_info=True)

    return forward
