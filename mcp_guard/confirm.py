"""The caller confirms a call before it runs (policy ``confirm`` obligation).

The question goes to the user at the other end of the calling session, in the
way their protocol era allows:

- 2025-11-25: an ``elicitation/create`` request on the call's own stream; the
  call waits for the answer.
- 2026-07-28: the call is answered with an ``input_required`` result holding
  the question and a ``requestState`` the guard signed (HMAC-SHA256, key shared
  through the state store) over the subject, the server, the target, a hash of
  the exact arguments and an expiry. The client repeats the call with the
  answer and that state; only then does it run. A handler's own later rounds
  keep the guard's signed envelope around their state, so the user is asked once.
  Every sealed state (question or envelope) is accepted once: its nonce is
  recorded in the state store, and a replay is asked anew.

Accept runs the call; decline, cancel, a client without elicitation, or a
path with no caller to ask refuses it with the reason in the audit event.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal, Protocol

from .approvals import arguments_hash
from .errors import AccessDenied, GuardError
from .model import AccessRequest, Decision, Obligation, Principal
from .store.secret import shared_secret

if TYPE_CHECKING:
    from .protocols import StateStore

Era = Literal["legacy", "rounds"]

#: The key of the guard's question in ``inputRequests`` / ``inputResponses``.
INPUT_KEY = "mcp-guard/confirm"
#: How long a signed confirmation state stays valid for the retry.
STATE_TTL = 600.0
_PREFIX = "mcpg1."
#: What the caller reads when a confirmation refuses the call, by answer.
_PUBLIC = {
    "unsupported": "Access denied: this call needs your confirmation and your client cannot ask you"
    " (it declared no elicitation support)",
    "decline": "Access denied: you declined to confirm this call",
    "cancel": "Access denied: the confirmation was cancelled",
}
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")
_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}

__all__ = ["INPUT_KEY", "AskCaller", "Caller", "Confirmations", "carried_state", "render"]


def carried_state(state: Any) -> tuple[bool, Any]:
    """``(True, inner)`` for a state the guard sealed: the handler's own state it carries, if any.

    A delegating handler (the portal) reads its round handle through this. It
    does not check the seal: the confirm stage did that for the request before
    the handler ran, and the inner value gets the handler's own checks (owner,
    binding) as a state sent directly would. Any other state comes back as is.
    """
    if not isinstance(state, str) or not state.startswith(_PREFIX):
        return False, state
    try:
        claims = json.loads(_unb64(state[len(_PREFIX) :].split(".", 1)[0]))
    except ValueError:
        return True, None
    return True, claims.get("s") if isinstance(claims, dict) else None


class Caller(Protocol):
    """What an adapter offers to put a question to the user behind the calling session."""

    era: Era

    def can_elicit(self) -> bool:
        """Whether the client declared the elicitation capability."""
        ...

    async def elicit(self, message: str, schema: Mapping[str, Any]) -> str:
        """Ask (2025-11-25 only); the user's action: ``accept``, ``decline`` or ``cancel``."""
        ...


class AskCaller(GuardError):
    """Not a refusal: the call's answer is a question back to the caller (2026-07-28 rounds)."""

    def __init__(self, reason: str, result: dict[str, Any], decision: Decision) -> None:
        super().__init__(reason, decision=decision)
        self.result = result


def render(message: str, arguments: Mapping[str, Any]) -> str:
    """The rule's message with ``{path}`` replaced by the argument's value (JSON for non-strings)."""

    def value(match: re.Match[str]) -> str:
        if match.group(0) in ("{{", "}}"):
            return match.group(0)[0]
        current: Any = arguments
        for part in (match.group(1) or "").split("."):
            if not isinstance(current, Mapping) or part not in current:
                return "(missing)"
            current = current[part]
        return current if isinstance(current, str) else json.dumps(current, ensure_ascii=False, default=str)

    return _PLACEHOLDER.sub(value, message)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Confirmations:
    """Asks, and signs and checks the 2026-07-28 confirmation state; one per guard."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self._key: bytes | None = None

    async def _secret(self) -> bytes:
        if self._key is None:
            self._key = await shared_secret(self.store, "confirm-state")
        return self._key

    # ------------------------------------------------------------------ signed state
    @staticmethod
    def _binding(principal: Principal, request: AccessRequest) -> list[Any]:
        return [
            principal.subject,
            principal.tenant,
            request.server,
            request.kind,
            request.target,
            arguments_hash(request.arguments),
        ]

    async def seal(
        self, principal: Principal, request: AccessRequest, inner: str | None, confirmed: bool
    ) -> str:
        """A state for this caller and exact call: the question (``confirmed`` False, answered once),
        or a confirmed call's envelope around the handler's own ``inner`` state for its next round."""
        claims = {
            "b": self._binding(principal, request),
            "exp": time.time() + STATE_TTL,
            "s": inner,
            "c": confirmed,
            "n": secrets.token_hex(16),
        }
        body = json.dumps(claims, separators=(",", ":"), sort_keys=True).encode()
        mac = hmac.new(await self._secret(), body, hashlib.sha256).digest()
        return _PREFIX + _b64(body) + "." + _b64(mac)

    async def unseal(self, principal: Principal, request: AccessRequest, state: Any) -> dict[str, Any] | None:
        """The claims of a state the guard sealed for this caller and this exact call, else None."""
        if not isinstance(state, str) or not state.startswith(_PREFIX):
            return None
        try:
            body_text, mac_text = state[len(_PREFIX) :].split(".", 1)
            body, mac = _unb64(body_text), _unb64(mac_text)
        except ValueError:
            return None
        expected = hmac.new(await self._secret(), body, hashlib.sha256).digest()
        if not hmac.compare_digest(mac, expected):
            return None
        claims: dict[str, Any] = json.loads(body)
        if claims.get("b") != self._binding(principal, request) or not time.time() < float(claims["exp"]):
            return None
        return claims

    async def _first_answer(self, claims: Mapping[str, Any]) -> bool:
        """A sealed state is used once: replaying an accepted round does not run the call again."""
        return await self.store.set_if_absent("confirm:answered:" + str(claims["n"]), b"1", ttl=STATE_TTL)

    # ------------------------------------------------------------------ the stage
    async def confirm(
        self,
        principal: Principal,
        request: AccessRequest,
        decision: Decision,
        obligation: Obligation,
        caller: Caller | None,
        params: Mapping[str, Any] | None,
    ) -> tuple[Decision, dict[str, Any] | None]:
        """The decision with its confirmation, and the params the handler gets (rounds era).

        Raises :class:`AccessDenied` when the caller said no or cannot be
        asked, :class:`AskCaller` when the question goes back in a result.
        """
        template = str(obligation.params.get("message", ""))
        message = render(template, request.arguments)
        # The audit names the question as the rule wrote it: the rendered text holds argument
        # values, which the rule's ``redact`` masks in the event's arguments and must not leak here.
        audit = {"by": principal.subject, "arguments_sha256": arguments_hash(request.arguments)}

        def refused(answer: str, why: str) -> AccessDenied:
            exc = AccessDenied(why, decision=replace(decision, confirmation={**audit, "answer": answer}))
            # The caller is the one who was (or could not be) asked: say which, never the rule.
            exc.public_message = _PUBLIC.get(answer, "Access denied: the call was not confirmed")
            return exc

        if caller is None:
            raise refused(
                "unsupported", f"rule {decision.rule} needs the caller's confirmation; none can be asked here"
            )
        if caller.era == "legacy":
            if not caller.can_elicit():
                raise refused(
                    "unsupported", f"rule {decision.rule} needs a confirmation; the client cannot elicit"
                )
            answer = await caller.elicit(message, _SCHEMA)
            if answer != "accept":
                raise refused(answer, f"the caller answered {answer!r} to the confirmation {template!r}")
            return replace(decision, confirmation={**audit, "answer": "accept"}), None
        own = dict(params or {})
        # A delegated (portal) run sees its upstream's params; the round's answer is in the
        # downstream request the caller made.
        downstream = getattr(caller, "params", None)
        rounds = own if ("requestState" in own or not isinstance(downstream, Mapping)) else downstream
        claims = await self.unseal(principal, request, rounds.get("requestState"))
        responses = rounds.get("inputResponses")
        response = responses.get(INPUT_KEY) if isinstance(responses, Mapping) else None
        inner = claims.get("s") if claims is not None else None
        if claims is not None and claims.get("c") is True:
            # Confirmed in an earlier round; this round answers the handler. Each envelope
            # is used once (every round gets a fresh one): a replay asks the user again.
            confirmed = await self._first_answer(claims)
        elif claims is not None and response is not None and _action(response) == "accept":
            confirmed = await self._first_answer(claims)
        else:
            confirmed = False
        if confirmed:
            rest = (
                {k: v for k, v in responses.items() if k != INPUT_KEY}
                if isinstance(responses, Mapping)
                else {}
            )
            if rounds is not own:
                return replace(decision, confirmation={**audit, "answer": "accept"}), None
            own.pop("inputResponses", None)
            own.pop("requestState", None)
            if rest:
                own["inputResponses"] = rest
            if isinstance(inner, str):
                own["requestState"] = inner
            return replace(decision, confirmation={**audit, "answer": "accept"}), own
        if claims is not None and response is not None and _action(response) != "accept":
            answer = _action(response)
            raise refused(answer, f"the caller answered {answer!r} to the confirmation {template!r}")
        if not caller.can_elicit():
            raise refused(
                "unsupported", f"rule {decision.rule} needs a confirmation; the client cannot elicit"
            )
        question = {
            "resultType": "input_required",
            "inputRequests": {
                INPUT_KEY: {
                    "method": "elicitation/create",
                    "params": {"mode": "form", "message": message, "requestedSchema": _SCHEMA},
                }
            },
            "requestState": await self.seal(principal, request, None, False),
        }
        asked = replace(decision, confirmation={**audit, "answer": "asked"})
        raise AskCaller(f"asked the caller to confirm: {template!r}", question, asked)


def _action(response: Any) -> str:
    action = response.get("action") if isinstance(response, Mapping) else None
    return action if action in ("accept", "decline", "cancel") else "invalid"
