"""Per-caller access to one upstream, through the guard's client-side chain.

Each downstream request becomes a :class:`CallerSession` - the library's own
:class:`~mcp_guard.integrations.client.GuardedSession` with server = the
upstream's name and principal = the downstream caller - over a thin adapter
that reads lists from the portal's cache and forwards everything else to the
live upstream session. Policy, pins, sanitizers and audit therefore see the
upstream's own (unprefixed) names, exactly once per request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from mcp import types
from mcp.client.session import ClientSession

from .._wire import to_wire
from ..guard import Guard
from ..integrations.client import GuardedSession
from ..integrations.server import CURRENT_ASKER
from ..model import Principal, RequestContext
from .attribution import CURRENT_CALL
from .upstream import Upstream


class ServedLists:
    """The validated list results an upstream currently serves through the portal (built once per change)."""

    def __init__(self, lists: Mapping[str, list[dict[str, Any]]], *, vetted: bool = True) -> None:
        self.tools = types.ListToolsResult.model_validate({"tools": lists.get("tool", [])})
        self.prompts = types.ListPromptsResult.model_validate({"prompts": lists.get("prompt", [])})
        self.resources = types.ListResourcesResult.model_validate({"resources": lists.get("resource", [])})
        self.templates = types.ListResourceTemplatesResult.model_validate(
            {"resourceTemplates": lists.get("resource_template", [])}
        )
        #: Tool annotations as served: approved, pinned and screened definitions only, so a policy's
        #: ``annotations = {...}`` never trusts what a changed or unapproved upstream now claims.
        #: Without pins (``vetted`` false) nobody vouched for them: no annotations at all.
        self._annotations: dict[str, dict[str, Any]] = {}
        for tool in lists.get("tool", []) if vetted else ():
            found = tool.get("annotations")
            if isinstance(tool.get("name"), str) and isinstance(found, Mapping):
                self._annotations[tool["name"]] = dict(found)

    async def describe(self, kind: str, name: str) -> Mapping[str, Any] | None:
        """``request.annotations`` of a served tool (None for anything else)."""
        if kind != "tool":
            return None
        found = self._annotations.get(name)
        return {"annotations": found} if found else None


class UpstreamAdapter:
    """The ``ClientSession`` surface a :class:`GuardedSession` drives, backed by an :class:`Upstream`."""

    def __init__(
        self,
        upstream: Upstream,
        served: ServedLists,
        acquire: Callable[[], Awaitable[ClientSession | None]] | None = None,
    ) -> None:
        self.upstream = upstream
        self.served = served
        self.acquire = acquire

    async def _request(self, send: Any) -> Any:
        # The caller's own session (callbacks, per-user credentials) is opened only once the
        # guard has allowed the request: a refused caller never starts an upstream process.
        private = await self.acquire() if self.acquire is not None else None
        return await self.upstream.request(send, session=private)

    def _direct(self, kw: Mapping[str, Any]) -> bool:
        """Whether this request can skip the SDK client session (see :mod:`.forwarding`).

        Only on the shared session, with nothing but a progress callback, and
        for a caller the upstream could not ask anything anyway.
        """
        if self.upstream.forwarder is None or self.acquire is not None or set(kw) - {"progress_callback"}:
            return False
        call = CURRENT_CALL.get()
        return call is None or not call.allowed

    async def _forward(self, method: str, params: dict[str, Any], kw: Mapping[str, Any]) -> dict[str, Any]:
        return await self.upstream.forward(
            method, params, progress=kw.get("progress_callback"), call=CURRENT_CALL.get()
        )

    async def list_tools(self, **_: Any) -> types.ListToolsResult:
        return self.served.tools

    async def list_prompts(self, **_: Any) -> types.ListPromptsResult:
        return self.served.prompts

    async def list_resources(self, **_: Any) -> types.ListResourcesResult:
        return self.served.resources

    async def list_resource_templates(self, **_: Any) -> types.ListResourceTemplatesResult:
        return self.served.templates

    async def call_tool(self, name: str, arguments: dict[str, Any] | None = None, **kw: Any) -> Any:
        if self._direct(kw):
            params: dict[str, Any] = (
                {"name": name} if arguments is None else {"name": name, "arguments": arguments}
            )
            return types.CallToolResult.model_validate(await self._forward("tools/call", params, kw))
        return await self._request(lambda s: s.call_tool(name, arguments, **kw))

    async def get_prompt(self, name: str, arguments: dict[str, str] | None = None, **kw: Any) -> Any:
        if self._direct(kw):
            prompt: dict[str, Any] = {"name": name}
            if arguments is not None:
                prompt["arguments"] = arguments
            return types.GetPromptResult.model_validate(await self._forward("prompts/get", prompt, kw))
        return await self._request(lambda s: s.get_prompt(name, arguments, **kw))

    async def read_resource(self, uri: Any, **kw: Any) -> Any:
        if self._direct(kw):
            result = await self._forward("resources/read", {"uri": str(uri)}, kw)
            return types.ReadResourceResult.model_validate(result)
        return await self._request(lambda s: s.read_resource(uri, **kw))

    async def subscribe_resource(self, uri: Any, **kw: Any) -> Any:
        return await self._request(lambda s: s.subscribe_resource(uri, **kw))

    async def unsubscribe_resource(self, uri: Any, **kw: Any) -> Any:
        return await self._request(lambda s: s.unsubscribe_resource(uri, **kw))

    async def complete(self, ref: Any, argument: dict[str, str], **kw: Any) -> Any:
        if self._direct(kw):
            params = {"ref": to_wire(ref), "argument": dict(argument)}
            return types.CompleteResult.model_validate(await self._forward("completion/complete", params, kw))
        return await self._request(lambda s: s.complete(ref, argument, **kw))

    async def send_ping(self, **kw: Any) -> Any:
        return await self._request(lambda s: s.send_ping(**kw))


class CallerSession(GuardedSession):
    """A guarded session whose audit records carry the downstream request's context."""

    def __init__(
        self, guard: Guard, adapter: UpstreamAdapter, *, principal: Principal, context: RequestContext
    ) -> None:
        super().__init__(
            guard,
            adapter,
            server=adapter.upstream.name,
            principal=principal,
            transport="portal",
            caller=CURRENT_ASKER.get(),  # the downstream user answers the rules' confirm questions
        )
        self._downstream = context
        self._describe = adapter.served.describe

    def _context(self) -> RequestContext:
        return self._downstream


__all__ = ["CallerSession", "ServedLists", "UpstreamAdapter"]
