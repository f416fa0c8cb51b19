"""Refusals the SDK makes in its own server middleware before the guard's middleware runs.

The SDK's ``RequestStateBoundary`` (2026-07-28) sits in front of every
middleware a server appends: a ``requestState`` that is forged, tampered with,
expired or bound to another principal or request is refused there, and the
guard never sees the request. So that such probing still leaves a trace,
:func:`install` puts :class:`PreGuardRefusals` first in the server's middleware
list: it lets everything through unchanged and, when a request is refused with
an MCP error before the guard's middleware was reached, records a ``deny``
event with the SDK's message. It never decides anything itself.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.shared.exceptions import MCPError

from ..guard import Guard
from ..model import Principal, RequestContext

#: Set by the guard's middleware when a request reaches it (a one-element flag list per request).
REACHED: ContextVar[list[bool] | None] = ContextVar("mcp_guard_reached", default=None)


def reached() -> None:
    """Note that the guard's middleware saw the current request (its refusals audit themselves)."""
    flag = REACHED.get()
    if flag is not None:
        flag[0] = True


class PreGuardRefusals:
    """Audits MCP errors raised for a request before it reached the guard's middleware."""

    def __init__(
        self,
        guard: Guard,
        server: str,
        describe: Callable[[ServerRequestContext[Any, Any]], tuple[Principal | None, RequestContext]],
    ) -> None:
        self.guard = guard
        self.server = server
        self._describe = describe

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        flag = [False]
        token = REACHED.set(flag)
        try:
            return await call_next(ctx)
        except MCPError as exc:
            if not flag[0]:
                await self._record(ctx, exc)
            raise
        finally:
            REACHED.reset(token)

    async def _record(self, ctx: ServerRequestContext[Any, Any], exc: MCPError) -> None:
        try:
            principal, context = self._describe(ctx)
        except Exception:  # the refusal stands; describe what is certain
            principal, context = None, None
        reason = f"refused by the MCP SDK before the guard ran: {exc.error.message}"
        event = self.guard.event(
            ctx.method,
            "deny",
            principal=principal,
            context=context,
            reasons=(reason,),
            error_code=exc.error.code,
            server=self.server,
        )
        await self.guard.record(event)


def install(lowlevel: Any, middleware: PreGuardRefusals) -> None:
    """Put ``middleware`` in front of the SDK's own (request-state) middleware of ``lowlevel``."""
    lowlevel.middleware.insert(0, middleware)


__all__ = ["REACHED", "PreGuardRefusals", "install", "reached"]
