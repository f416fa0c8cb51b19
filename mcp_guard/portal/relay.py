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
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import anyio

from ..protocols import StateStore

logger = logging.getLogger("mcp_guard.portal")

CHANNEL = "mcp-guard:portal-rounds:"

Payload = dict[str, Any]


def new_replica_id() -> str:
    return secrets.token_hex(6)


def owner_of(state: str) -> str | None:
    """The replica that issued a ``requestState`` handle (``replica.token``), if it names one."""
    replica, dot, token = state.partition(".")
    return replica if dot and replica and token else None


class RoundRelay:
    """One replica's end of the relay: it serves rounds for its own parked calls and forwards others'.

    ``serve`` is called with a relayed round (``state``, ``subject``,
    ``binding``, ``responses``) and returns the outcome as JSON-ready data:
    ``{"result": {...}}`` or ``{"error": {"code": int, "message": str}}``.
    """

    def __init__(
        self, store: StateStore, replica: str, serve: Callable[[Payload], Awaitable[Payload]]
    ) -> None:
        self.store = store
        self.replica = replica
        self._serve = serve
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
            outcome = await self._serve(message)
        except Exception:  # serve converts what it can; anything else fails the round closed
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
    ) -> Payload | None:
        """Relay one round to ``owner``; its outcome, or None when it did not answer within ``timeout``."""
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
            "responses": dict(responses),
        }
        try:
            await self.store.publish(CHANNEL + owner, json.dumps(message))
            with anyio.move_on_after(timeout):
                await done.wait()
        finally:
            self._waiting.pop(nonce, None)
        return slot[0] if slot else None


__all__ = ["CHANNEL", "RoundRelay", "new_replica_id", "owner_of"]
