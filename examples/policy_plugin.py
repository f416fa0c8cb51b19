"""Extending the policy engine: a custom condition function and a custom engine in a chain.

Run it: ``python examples/policy_plugin.py``. It is the worked example of
``docs/policy.md`` and the test suite runs it.

* ``ticket_approved`` is a condition function: plain Python values in, a
  plain value out. Policies call it from ``when``. Raising means "cannot
  tell", which never satisfies an allow and always satisfies a deny; for an
  allow rule with obligations (here ``redact``) it refuses the request.
* ``ChangeFreeze`` is a whole policy engine (the two methods of
  ``mcp_guard.PolicyEngine``). ``ChainedPolicy`` asks every engine; the first
  deny wins and an item is listed only if every engine lists it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone

from mcp_guard.model import AccessRequest, Decision, Principal, RequestContext
from mcp_guard.policy import ChainedPolicy, CompiledPolicy, load_policy_text

#: In real life: a lookup in your change-management system, cached and refreshed off the request path.
APPROVED_TICKETS = frozenset({"CHG-7", "CHG-9"})


def ticket_approved(ticket: str) -> bool:
    """Whether a change ticket is approved; a non-string ticket is an error (fail closed)."""
    if not isinstance(ticket, str):
        raise TypeError("ticket must be a string")
    return ticket in APPROVED_TICKETS


POLICY = """
version = 1
default = "deny"

[[rules]]
id = "deploy-with-ticket"
effect = "allow"
roles = ["deployer"]
tools = ["deploy"]
when = 'ticket_approved(request.arguments.ticket)'
redact = ["token"]
"""


class ChangeFreeze:
    """Denies the named tools during a change freeze; has no opinion on anything else."""

    def __init__(self, tools: Iterable[str], start: datetime, end: datetime) -> None:
        self.tools = frozenset(tools)
        self.start, self.end = start, end

    def decide(self, principal: Principal, request: AccessRequest) -> Decision:
        now = request.context.time if request.context is not None else datetime.now(timezone.utc)
        if request.kind == "tool" and request.target in self.tools and self.start <= now < self.end:
            return Decision.deny("change-freeze", f"change freeze until {self.end:%Y-%m-%d}")
        return Decision.allow(None, "no freeze")

    def visible(self, principal: Principal, server: str, kind: str, name: str) -> bool:
        return True  # a freeze hides nothing: the tool stays listed, calls are refused


def build_policy() -> CompiledPolicy:
    return load_policy_text(POLICY, functions={"ticket_approved": ticket_approved})


def main() -> int:
    utc = timezone.utc
    freeze = ChangeFreeze({"deploy"}, datetime(2026, 12, 20, tzinfo=utc), datetime(2027, 1, 4, tzinfo=utc))
    engine = ChainedPolicy([build_policy(), freeze])
    ci = Principal("ci-bot", roles=frozenset({"deployer"}))
    normal, holidays = datetime(2026, 11, 23, 15, 0, tzinfo=utc), datetime(2026, 12, 24, 9, 0, tzinfo=utc)
    cases = [
        ("deploy with approved ticket", {"ticket": "CHG-7", "token": "s3cr3t"}, normal),
        ("deploy without ticket", {}, normal),
        ("deploy with unknown ticket", {"ticket": "CHG-1"}, normal),
        ("deploy with approved ticket during freeze", {"ticket": "CHG-7"}, holidays),
    ]
    for label, arguments, when in cases:
        request = AccessRequest(
            "tools/call", "call", "ops", "tool", "deploy", arguments, RequestContext(when)
        )
        decision = engine.decide(ci, request)
        assert isinstance(decision, Decision)  # every member is synchronous here
        extra = f", obligations {[o.kind for o in decision.obligations]}" if decision.obligations else ""
        print(f"{label}: {decision.effect} (rule {decision.rule or 'default'}){extra}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
