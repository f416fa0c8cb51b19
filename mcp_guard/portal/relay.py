"""Follow-up rounds of a parked call, carried to the portal replica that parked it.

A 2026-07-28 client has no session: each round of a multi-round-trip call is
an independent HTTP request, and a load balancer may send the answer to a
different replica than the one whose upstream session waits for it. The
``requestState`` handle names the replica that issued it; a replica that
receives someone else's handle relays the round over the shared state
store's pub/sub (the channel every replica already trusts for policy and
approval changes) and waits for the outcome, instead of failing the call or
starting it again (which would repeat the upstream's side effects).

The receiving replica checks the round exactly as if it had arrived there:
the handle must be one it issued, for the same subject, method and target.
The relaying replica authenticated the caller; the owner trusts that only as
far as it trusts the store. Without a store, or when the owner does not
answer in time, the round fails closed with a clear error.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Mapping
from typing import Any

import anyio
from mcp import types
from mcp.shared.exceptions import MCPError

from .._wire import to_wire
from ..errors import ACCESS_DENIED, GUARD_UNAVAILABLE, AccessDenied, GuardError, GuardUnavailable
from ..protocols import StateStore
from .rounds import Rounds

logger = logging.getLogger("mcp_guard.portal")

CHANNEL = "mcp-guard:portal-rounds:"

Payload = dict[str, Any]

#: Result types of the requests that may run over several rounds, for outcomes relayed as JSON.
_ROUND_RESULT: dict[str, Any] = {
    "tools/call": types.CallToolResult,
    "prompts/get": types.GetPromptResult,
    "resources/read": types.ReadResourceResult,
}


def new_replica_id() -> str:
    return secrets.token_hex(6)


def owner_of(state: str) -> str | None:
    """The replica that issued a ``requestState`` handle (``replica.token``), if it names one."""
    replica, dot, token = state.partition(".")
    return replica if dot and replica and token else None


async def serve_round(rounds: Rounds, message: Mapping[str, Any]) -> Payload:
    """A round relayed by another replica, checked exactly like one that arrived here.

    The outcome as JSON-ready data: ``{"result": {...}}`` or ``{"error": {"code", "message"}}``.
    """
    try:
        binding = message.get("binding")
        responses = message.get("responses")
        if not (isinstance(binding, list) and len(binding) == 2 and isinstance(responses, Mapping)):
            raise AccessDenied("malformed relayed round")
        parked = rounds.resume(
            str(message.get("state")),
            str(message.get("subject")),
            (str(binding[0]), str(binding[1])),
            responses,
        )
        value = await rounds.step(parked)
    except MCPError as exc:
        return {"error": {"code": exc.error.code, "message": exc.error.message}}
    except GuardError as exc:  # the public message only: the reason stays in this replica's audit
        return {"error": {"code": exc.code, "message": exc.public_message}}
    return {"result": to_wire(value)}


def decode_outcome(outcome: Payload | None, method: str) -> Any:
    """The typed result a relayed round came back with; its error, or a silent owner, as MCPError."""
    if outcome is None:
        raise MCPError(GUARD_UNAVAILABLE, "The portal replica holding this call did not answer")
    error = outcome.get("error")
    if isinstance(error, Mapping) and error.get("code") == ACCESS_DENIED:
        raise AccessDenied("the replica holding the call refused this round")
    if isinstance(error, Mapping):
        raise MCPError(int(error.get("code", types.INTERNAL_ERROR)), str(error.get("message", "")))
    result = outcome.get("result")
    if not isinstance(result, Mapping):
        raise MCPError(GUARD_UNAVAILABLE, GuardUnavailable.public_message)
    if "inputRequests" in result:
        return types.InputRequiredResult.model_validate(result)
    return _ROUND_RESULT[method].model_validate(result)


class RoundRelay:
    """One replica's end of the relay: it serves rounds for its own parked calls and forwards others'."""

    def __init__(self, store: StateStore, replica: str, rounds: Rounds) -> None:
        self.store = store
        self.replica = replica
        self._rounds = rounds
        self._waiting: dict[str, tuple[anyio.Event, list[Payload]]] = {}

    async def run(self) -> None:
        """Listen on this replica's channel until cancelled; a broken subscription is renewed."""
        async with anyio.create_task_group() as tg:
            while True:
                try:
                    async for raw in self.store.subscribe(CHANNEL + self.replica):
                        self._dispatch(tg, raw)
                except anyio.get_cancelled_exc_class():
                    raise
                except Exception as exc:
                    logger.warning("round relay subscription lost (%r); renewing", exc)
                    await anyio.sleep(0.5)

    def _dispatch(self, tg: Any, raw: str) -> None:
        try:
            message = json.loads(raw)
            kind = message["t"]
        except (ValueError, KeyError, TypeError):
            logger.warning("ignoring a malformed round relay message")
            return
        if kind == "outcome":
            waiting = self._waiting.pop(str(message.get("nonce")), None)
            if waiting is not None:
                waiting[1].append(message)
                waiting[0].set()
        elif kind == "round":
            tg.start_soon(self._answer, message)

    async def _answer(self, message: Payload) -> None:
        try:
            outcome = await serve_round(self._rounds, message)
        except Exception:  # serve_round converts what it can; anything else fails the round closed
            logger.exception("relayed round failed")
            outcome = {"error": {"code": -32603, "message": "Internal error"}}
        reply = {"t": "outcome", "nonce": message.get("nonce"), **outcome}
        try:
            await self.store.publish(CHANNEL + str(message.get("from")), json.dumps(reply))
        except Exception as exc:
            logger.warning("round outcome not delivered to replica %r: %r", message.get("from"), exc)

    async def forward(
        self,
        owner: str,
        state: str,
        subject: str,
        binding: tuple[str, str],
        responses: Mapping[str, Any],
        timeout: float,
    ) -> Any:
        """Relay one round to ``owner``; its typed outcome, or MCPError when it failed or stayed silent."""
        nonce = secrets.token_urlsafe(12)
        done = anyio.Event()
        slot: list[Payload] = []
        self._waiting[nonce] = (done, slot)
        message = {
            "t": "round",
            "from": self.replica,
            "nonce": nonce,
            "state": state,
            "subject": subject,
            "binding": list(binding),
            "responses": {
                k: v if isinstance(v, (str, int, float, bool)) else to_wire(v) for k, v in responses.items()
            },
        }
        try:
            await self.store.publish(CHANNEL + owner, json.dumps(message))
            with anyio.move_on_after(timeout):
                await done.wait()
        finally:
            self._waiting.pop(nonce, None)
        return decode_outcome(slot[0] if slot else None, binding[0])


__all__ = ["CHANNEL", "RoundRelay", "decode_outcome", "new_replica_id", "owner_of", "serve_round"]
