"""``policy coverage`` counts every request the default denied, whatever the reason's first words.

The engine says ``no rule matched; default deny`` when nothing matched and
``rules a, b matched but their `when` was false; default deny`` when allow
rules were written for the request but their conditions failed: both are
denials by the default.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_guard.model import AccessRequest, Principal, RequestContext
from mcp_guard.policy import load_policy_text
from mcp_guard.policy.coverage import coverage
from mcp_guard.policy.reasons import is_default_denial
from tests.test_policy_cli import cli
from tests.test_policy_impact import _audit

POLICY = """\
version = 1
default = "deny"
[[rules]]
id = "small"
effect = "allow"
tools = ["pay"]
when = 'request.arguments.amount <= 100'
[[rules]]
id = "tiny"
effect = "allow"
tools = ["pay"]
when = 'request.arguments.amount <= 10'
[[rules]]
id = "no-wipe"
effect = "deny"
tools = ["wipe"]
"""


def record(tool: str, amount: int) -> dict[str, Any]:
    policy = load_policy_text(POLICY)
    context = RequestContext(datetime.now(timezone.utc))
    request = AccessRequest("tools/call", "call", "ledger", "tool", tool, {"amount": amount}, context)
    decision = policy.decide(Principal(subject="pat"), request)
    return {"decision": decision.effect, "rule": decision.rule, "reasons": list(decision.reasons)}


def test_a_false_when_then_the_default_counts_as_a_default_denial() -> None:
    records = [record("pay", 5000), record("other", 1), record("pay", 5), record("wipe", 1)]
    assert "matched but their `when` was false; default deny" in records[0]["reasons"][0]
    report = coverage(load_policy_text(POLICY), records)
    assert report["default_denials"] == 2


def test_refusals_without_a_rule_are_not_default_denials() -> None:
    records = [
        {"decision": "deny", "rule": None, "reasons": ["authentication failed: unknown API key"]},
        {"decision": "deny", "rule": None, "reasons": ["rate limit exceeded", "mentions default deny here"]},
    ]
    assert coverage(load_policy_text(POLICY), records)["default_denials"] == 0


@settings(max_examples=100, deadline=None)
@given(tool=st.sampled_from(["pay", "wipe", "other"]), amount=st.integers(min_value=-5, max_value=500))
def test_every_engine_denial_without_a_rule_is_a_default_denial(tool: str, amount: int) -> None:
    got = record(tool, amount)
    counted = coverage(load_policy_text(POLICY), [got])["default_denials"] == 1
    assert counted == (got["decision"] == "deny" and got["rule"] is None)
    assert is_default_denial(got["reasons"]) == counted


def test_the_text_report_says_where_later_refusals_are_counted(tmp_path: Path) -> None:
    (tmp_path / "policy.toml").write_text(POLICY)
    (tmp_path / "guard.toml").write_text('[guard]\naudit = ["sqlite:///audit.db"]\npolicy = "policy.toml"\n')
    refused = "step-up required: rule small needs MFA"
    unmet = tuple(record("pay", 999)["reasons"])
    _audit(
        tmp_path,
        [
            {"decision": "allow", "rule": "small", "target": "pay"},
            {"decision": "deny", "rule": "small", "target": "pay", "reasons": (refused,)},
            {"decision": "deny", "rule": None, "target": "pay", "reasons": unmet},
        ],
    )
    out = cli("coverage", "--config", str(tmp_path / "guard.toml"))
    assert out.returncode == 0, out.stderr
    assert "denied by the default: 1" in out.stdout
    assert "small: 1 call(s) it allowed were then refused" in out.stdout
