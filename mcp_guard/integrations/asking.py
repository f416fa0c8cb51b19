"""The user behind an SDK request, for the guard's ``confirm`` question (see :mod:`mcp_guard.confirm`).

2025-11-25 sessions are asked with ``elicitation/create`` on the request's own
stream; 2026-07-28 requests get the question back in an ``input_required``
result, which the confirm stage builds itself. Either way the client must
have declared the elicitation capability.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mcp.server.context import HandlerResult, ServerRequestContext
from mcp.shared.exceptions import MCPError

from ..confirm import Era
from ..guard import Guard
from ..pipeline import Admitted

__all__ = ["SessionCaller", "confirmed_rounds", "era_of"]


def era_of(protocol_version: str | None) -> Era:
    """2026-07-28 and later answer questions in rounds; earlier versions over the session."""
    return "rounds" if protocol_version and str(protocol_version) >= "2026" else "legacy"


class SessionCaller:
    """The caller of one SDK request."""

    def __init__(self, ctx: ServerRequestContext[Any, Any]) -> None:
        self._ctx = ctx
        self.era: Era = era_of(ctx.protocol_version)

    @property
    def params(self) -> Mapping[str, Any] | None:
        """The request's own params: where a 2026-07-28 answer (``inputResponses``) arrives."""
        return self._ctx.params

    async def progress(self, progress: float, message: str) -> None:
        """A progress notification on the request, when the client asked for them (progressToken)."""
        await self._ctx.session.report_progress(progress, None, message)

    async def elicit_url(self, message: str, url: str, elicitation_id: str) -> str:
        """A URL-mode ``elicitation/create`` (2025-11-25); the user's action."""
        try:
            result = await self._ctx.session.elicit_url(
                message, url, elicitation_id, related_request_id=self._ctx.request_id
            )
        except MCPError as exc:
            return f"error: {exc.error.message}"
        return str(result.action)

    def can_elicit(self) -> bool:
        capabilities = self._ctx.session.client_capabilities
        return capabilities is not None and capabilities.elicitation is not None

    async def elicit(self, message: str, schema: Mapping[str, Any]) -> str:
        try:
            result = await self._ctx.session.elicit_form(
                message, dict(schema), related_request_id=self._ctx.request_id
            )
        except MCPError as exc:
            # No back channel, or the client refused the request: nobody confirmed.
            return f"error: {exc.error.message}"
        return str(result.action)


async def confirmed_rounds(guard: Guard, admitted: Admitted, result: HandlerResult) -> HandlerResult:
    """A confirmed call whose handler asks the client something keeps its confirmation.

    The handler's ``requestState`` goes back inside the guard's signed envelope
    (marked confirmed), so the next round reaches the handler without asking
    the user again, and the handler gets its own state back unchanged.
    """
    confirmation = admitted.decision.confirmation
    if confirmation is None or confirmation.get("answer") != "accept":
        return result
    if isinstance(result, Mapping):
        if result.get("resultType") != "input_required":
            return result
        inner = result.get("requestState")
        state = await guard.confirmations.seal(admitted.principal, admitted.request, inner, True)
        return {**result, "requestState": state}
    if result is not None and getattr(result, "result_type", None) == "input_required":
        inner = getattr(result, "request_state", None)
        state = await guard.confirmations.seal(admitted.principal, admitted.request, inner, True)
        return result.model_copy(update={"request_state": state})
    return result
