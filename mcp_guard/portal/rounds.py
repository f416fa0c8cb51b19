"""Server-to-client requests for 2026-07-28 callers: the multi-round-trip path.

A 2026-07-28 client has no long-lived connection the portal could send a
sampling, elicitation or roots request on. Instead, when an upstream asks
its client something during a call, the portal answers the downstream
request with an ``InputRequiredResult`` that carries the upstream's question
and an opaque ``requestState``; the client answers by repeating its request
with ``inputResponses``, and the portal hands the answer to the upstream,
whose call meanwhile waits (on the shared session, or on a private upstream
session for upstreams in ``callbacks``). The call is decided by the policy
once, on the first round.

``requestState`` is a random 128-bit handle the portal issued, bound to the
caller's subject and the request's method and target: a client cannot
pre-fill answers for a question it was never asked, and nobody else can
answer for it. Parked calls live in the process that started them and are
cancelled when the client does not come back within the upstream's timeout;
the handle names that replica, so another replica can relay a round to it
(:mod:`.relay`).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp import types
from mcp.shared.exceptions import MCPError

from .. import pipeline
from ..errors import AccessDenied
from ..guard import Guard
from ..model import Principal
from ..ratelimit import subject_key
from .callbacks import CallerLink

logger = logging.getLogger("mcp_guard.portal")

Event = tuple[str, Any]  # ("input", {key: request}) | ("result", value) | ("error", exception)


class RoundLink(CallerLink):
    """A :class:`CallerLink` whose questions go back in ``InputRequiredResult`` instead of a session."""

    def __init__(self, guard: Guard, upstream: str, principal: Principal, parked: Parked) -> None:
        super().__init__(guard, upstream, principal)
        self.parked = parked

    async def _forward(self, request: Any, result_type: Any) -> Any:
        return await self.parked.ask(request, result_type)

    def _log_target(self, params: types.LoggingMessageNotificationParams) -> tuple[Any, Any] | None:
        """The round that is open now (None between rounds).

        The SDK delivers the message only at or above the level the client asked
        for in that request's ``_meta`` (2026-07-28 log delivery is a per-request opt-in).
        """
        return self.parked.log_to


class Parked:
    """One upstream call waiting across downstream rounds."""

    def __init__(self, owner: str, binding: tuple[str, str], timeout: float, prefix: str = "") -> None:
        self.id = prefix + secrets.token_urlsafe(16)
        self.owner = owner
        self.binding = binding
        self.timeout = timeout
        self.expires = time.monotonic() + timeout
        send, receive = anyio.create_memory_object_stream[Event](16)
        self._send: MemoryObjectSendStream[Event] = send
        self._receive: MemoryObjectReceiveStream[Event] = receive
        self._waiting: dict[str, tuple[anyio.Event, list[Any], Any]] = {}
        self._count = 0
        self.scope = anyio.CancelScope()
        #: The downstream request (session, request id) whose round is open: log messages go there.
        self.log_to: tuple[Any, Any] | None = None

    async def ask(self, request: Any, result_type: Any) -> Any:
        """Called from the upstream's callback: publish the question, wait for the client's answer."""
        self._count += 1
        key = f"q{self._count}"
        done = anyio.Event()
        slot: list[Any] = []
        self._waiting[key] = (done, slot, result_type)
        await self._send.send(("input", {key: request}))
        await done.wait()
        return slot[0]

    def answer(self, responses: Mapping[str, Any]) -> None:
        """Deliver the client's ``inputResponses`` (only to questions this call asked)."""
        for key, value in responses.items():
            waiting = self._waiting.pop(key, None)
            if waiting is None:
                continue
            done, slot, result_type = waiting
            data = (
                value.model_dump(by_alias=True, mode="json", exclude_none=True)
                if hasattr(value, "model_dump")
                else value
            )
            try:
                slot.append(result_type.model_validate(data))
            except Exception:
                slot.append(types.ErrorData(code=types.INVALID_PARAMS, message="Invalid input response"))
            done.set()

    @property
    def unanswered(self) -> bool:
        return bool(self._waiting)

    async def run(
        self, open_and_call: Callable[[AsyncExitStack, RoundLink], Awaitable[Any]], link: RoundLink
    ) -> None:
        with self.scope:
            try:
                async with AsyncExitStack() as stack:
                    result = await open_and_call(stack, link)
                await self._send.send(("result", result))
            except anyio.get_cancelled_exc_class():
                raise
            except Exception as exc:
                await self._send.send(("error", exc))

    async def next_event(self) -> Event:
        self.expires = time.monotonic() + self.timeout
        with anyio.fail_after(self.timeout):
            return await self._receive.receive()


class Rounds:
    """The parked calls of one portal."""

    def __init__(self, replica: str = "") -> None:
        self._parked: dict[str, Parked] = {}
        self._prefix = f"{replica}." if replica else ""  # handles name the replica that holds the call

    def start(
        self,
        tg: Any,
        principal: Principal,
        binding: tuple[str, str],
        timeout: float,
        guard: Guard,
        upstream: str,
    ) -> tuple[Parked, RoundLink]:
        self.reap()
        # The person, as budgets and flows count one: another issuer's same name is someone else.
        parked = Parked(subject_key(principal), binding, timeout, self._prefix)
        self._parked[parked.id] = parked
        return parked, RoundLink(guard, upstream, principal, parked)

    def resume(
        self, state: str, subject: str, binding: tuple[str, str], responses: Mapping[str, Any]
    ) -> Parked:
        """The parked call ``state`` names, given the caller's answers; ``subject`` is the caller's
        :func:`~mcp_guard.ratelimit.subject_key` (the subject qualified by its issuer)."""
        parked = self._parked.get(state)
        if parked is None or parked.owner != subject or parked.binding != binding:
            # Unknown, expired, someone else's or for another request: same answer for all.
            raise AccessDenied(
                "requestState refused: unknown, expired, another caller's or another request's"
            )
        parked.answer(responses)
        return parked

    async def step(self, parked: Parked, stream: tuple[Any, Any] | None = None) -> Any:
        """The downstream answer for this round: another question, or the call's outcome.

        ``stream`` is the downstream request serving this round (its session and
        id), which carries the upstream's log messages while the round is open.
        """
        parked.log_to = stream
        try:
            kind, value = await parked.next_event()
        except TimeoutError:
            self.finish(parked)
            raise MCPError(types.INTERNAL_ERROR, "Upstream server timed out") from None
        except anyio.get_cancelled_exc_class():
            # The client cancelled the request serving this round: the call is abandoned upstream too.
            self.finish(parked)
            raise
        finally:
            parked.log_to = None
        if kind == "input":
            return types.InputRequiredResult(input_requests=value, request_state=parked.id)
        self.finish(parked)
        if kind == "error":
            pipeline.recorded_elsewhere()  # the parked call's own guarded session recorded it
            raise value
        return value

    def finish(self, parked: Parked) -> None:
        parked.scope.cancel()
        self._parked.pop(parked.id, None)

    def reap(self) -> None:
        now = time.monotonic()
        for parked in [p for p in self._parked.values() if p.expires < now]:
            logger.info("parked upstream call %s abandoned by its client", parked.binding)
            self.finish(parked)


__all__ = ["Parked", "RoundLink", "Rounds"]
