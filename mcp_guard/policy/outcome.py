"""What an allowed decision's obligations do to a call: run it, refuse it, or hold it for a person.

The guard (:meth:`Guard.authorize <mcp_guard.guard.Guard.authorize>`) and the
offline tools (``policy check``, ``test``, ``explain``) read a decision's
obligations through this module, so a call the guard refuses for a missing MFA
is never reported as "allow" offline. It is pure: the caller passes "now" (the
guard the wall clock, the offline tools the request's time). What needs state
(rate limits, budgets, an approval already given, a step-up page the caller
could still visit) is the guard's business and is not decided here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from ..model import Decision, Obligation, Principal

__all__ = ["EXPECTATIONS", "Outcome", "OutcomeEffect", "effective_outcome", "step_up_shortfalls"]

OutcomeEffect = Literal["allow", "deny", "confirm", "approval"]
#: What a policy test case may expect, in the order a call meets them.
EXPECTATIONS: tuple[OutcomeEffect, ...] = ("allow", "deny", "confirm", "approval")


def step_up_shortfalls(
    principal: Principal, decision: Decision, now: datetime
) -> Iterator[tuple[Obligation, float, str]]:
    """Each ``step_up`` obligation the principal's credential does not meet: (obligation, max_age, why).

    A credential meets one when it carries an MFA (``mfa``) with an
    ``auth_time`` at most ``max_age`` seconds before ``now``. ``why`` is the
    refusal reason the caller sees.
    """
    for obligation in decision.obligations:
        if obligation.kind != "step_up":
            continue
        max_age = float(obligation.params.get("max_age", 0))
        why = f"step-up required: rule {decision.rule} needs MFA"
        if principal.mfa and principal.auth_time is not None:
            age = (now - principal.auth_time).total_seconds()
            if age <= max_age:
                continue
            why = f"step-up required: MFA {age:.0f}s ago, rule {decision.rule} allows {max_age:.0f}s"
        elif principal.mfa:
            why += " (the credential says MFA but not when: no auth_time)"
        yield obligation, max_age, why


@dataclass(frozen=True, slots=True)
class Outcome:
    """The effect a call meets after its decision's obligations.

    ``obligation`` names the obligation that decided (``step_up``,
    ``confirm``, ``approval``; ``None`` when the policy's own decision
    stands); ``reasons`` start with why that obligation decided, then the
    policy's reasons; ``then`` lists what the call meets next once the first
    hold is passed (an approval after a confirmation).
    """

    effect: OutcomeEffect
    decision: Decision
    obligation: str | None = None
    reasons: tuple[str, ...] = ()
    then: tuple[str, ...] = ()
    #: For a refused step-up, what the credential lacks (set by :func:`effective_outcome`).
    lacking: str = ""

    @property
    def runs(self) -> bool:
        """Whether the call would run as it is."""
        return self.effect == "allow"

    @property
    def summary(self) -> str:
        """One phrase for people: ``refused without MFA``, ``held for approval`` ..."""
        if self.obligation == "step_up":
            return "refused " + (self.lacking or "without a recent enough MFA")
        if self.effect == "confirm":
            return "held until the caller confirms" + (", then for approval" if self.then else "")
        if self.effect == "approval":
            return "held until an approver approves this exact call"
        return "runs" if self.effect == "allow" else "refused"


def _approval_reason(obligation: Obligation, rule: str | None) -> str:
    rules = ", ".join(obligation.params.get("rules", ())) or rule or "?"
    groups = obligation.params.get("all_of") or (tuple(obligation.params.get("approvers", ())),)
    who = " and ".join("/".join(group) for group in groups) or "?"
    return f"approval required: rule {rules} needs an approver holding {who}, not the caller"


def effective_outcome(principal: Principal, decision: Decision, now: datetime) -> Outcome:
    """The outcome the guard gives ``decision`` for ``principal`` at ``now``, in the guard's order.

    A denial stands. An allow is refused by a ``step_up`` the credential does
    not meet, then held by a ``confirm`` question, then by an ``approval``;
    otherwise the call runs (``redact`` only masks the audit trail).
    """
    if not decision.allowed:
        return Outcome("deny", decision, None, decision.reasons)
    for _, _, why in step_up_shortfalls(principal, decision, now):
        if not principal.mfa:
            lacking = "without MFA"
        elif principal.auth_time is None:
            lacking = "without a time for the MFA (auth_time)"
        else:
            lacking = "because the MFA is older than the rule allows"
        return Outcome("deny", decision, "step_up", (why, *decision.reasons), lacking=lacking)
    holds: list[tuple[OutcomeEffect, str]] = []
    for obligation in decision.obligations:
        if obligation.kind == "confirm":
            message = str(obligation.params.get("message", ""))
            holds.insert(0, ("confirm", f"confirmation required: the caller is asked {message!r}"))
        elif obligation.kind == "approval":
            holds.append(("approval", _approval_reason(obligation, decision.rule)))
    if not holds:
        return Outcome("allow", decision, None, decision.reasons)
    (effect, why), later = holds[0], holds[1:]
    reasons = (why, *(w for _, w in later), *decision.reasons)
    return Outcome(effect, decision, effect, reasons, tuple(e for e, _ in later))
