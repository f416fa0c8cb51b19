"""What a guarded server declares about its tools, prompts and resources, for policy conditions.

Policy conditions read a target's ``request.tags`` and ``request.annotations``.
They come from the server object itself, in process: FastMCP components carry
``tags`` (``@mcp.tool(tags={"admin"})``) and tools carry MCP annotations
(``readOnlyHint``, ``destructiveHint`` ...); the SDK's ``MCPServer`` tools carry
annotations only. Reading them is a dictionary lookup in the server's registry,
never a request to the server, and never the wire form of a list (which a
client could not influence, but which would cost a full listing per call).

The FastMCP and ``MCPServer`` registries are private or version-dependent; this
module is the one place that knows their shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..pipeline import Describe


def describer(server: Any) -> Describe | None:
    """A :data:`~mcp_guard.pipeline.Describe` for ``server``, or None when it declares nothing."""
    if _is_fastmcp(server):
        return _fastmcp_describer(server)
    manager = getattr(server, "_tool_manager", None)
    if manager is not None and callable(getattr(manager, "get_tool", None)):
        return _mcpserver_describer(manager)
    return None


def _is_fastmcp(server: Any) -> bool:
    return any(cls.__module__.startswith("fastmcp.") for cls in type(server).__mro__)


def _fastmcp_describer(server: Any) -> Describe:
    getters = {"tool": "get_tool", "prompt": "get_prompt", "resource": "get_resource"}

    async def describe(kind: str, name: str) -> Mapping[str, Any] | None:
        getter = getattr(server, getters.get(kind, ""), None)
        if getter is None:
            return None
        try:
            component = await getter(name)
        except Exception as exc:
            if type(exc).__name__ == "NotFoundError":
                return None  # unknown to the server: the handler answers that, after the policy
            raise
        if component is None and kind == "resource":
            component = await _fastmcp_template(server, name)
        return _attributes(component) if component is not None else None

    return describe


async def _fastmcp_template(server: Any, uri: str) -> Any:
    """The resource template a URI was made from (a template's tags describe its resources)."""
    getter = getattr(server, "get_resource_template", None)
    if getter is None:
        return None
    try:
        return await getter(uri)
    except Exception as exc:
        if type(exc).__name__ == "NotFoundError":
            return None
        raise


def _mcpserver_describer(manager: Any) -> Describe:
    async def describe(kind: str, name: str) -> Mapping[str, Any] | None:
        if kind != "tool":
            return None
        tool = manager.get_tool(name)
        return _attributes(tool) if tool is not None else None

    return describe


def _attributes(component: Any) -> Mapping[str, Any]:
    """``tags`` (a list of strings) and ``annotations`` (wire names, set fields only)."""
    tags = sorted(str(t) for t in (getattr(component, "tags", None) or ()))
    raw = getattr(component, "annotations", None)
    annotations: dict[str, Any] = {}
    if raw is not None:
        dump = getattr(raw, "model_dump", None)
        annotations = dump(by_alias=True, exclude_none=True) if dump is not None else dict(raw)
    return {"tags": tags, "annotations": annotations}


__all__ = ["describer"]
