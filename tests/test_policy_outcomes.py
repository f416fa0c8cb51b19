"""The offline policy tools report what the guard does with a decision's obligations.

A rule with ``step_up`` refuses a caller without a recent MFA; ``confirm`` and
``approval`` hold the call for a person. ``policy check``, ``test`` and
``explain`` say so, reading the obligations the way the guard does
(:mod:`mcp_guard.policy.outcome`), instead of reporting the bare "allow".
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcp_guard.model import Decision, Obligation, Principal
from mcp_guard.policy.outcome import effective_outcome, step_up_shortfalls
from tests.test_policy_cli import cli

LEDGER = """\
version = 1
default = "deny"

[[rules]]
id = "payers-pay-small"
effect = "allow"
roles = ["payer"]
tools = ["pay"]
when = 'request.arguments.amount <= 500'

[[rules]]
id = "payers-pay-mfa"
effect = "allow"
roles = ["payer"]
tools = ["pay"]
when = 'request.arguments.amount > 500 && request.arguments.amount <= 5000'
step_up = "10m"

[[rules]]
id = "big-payments"
effect = "allow"
roles = ["payer"]
tools = ["pay_big"]
approval = { approvers = ["controller"], timeout = "1h" }

[[rules]]
id = "refunds"
effect = "allow"
roles = ["payer"]
tools = ["refund"]
confirm = "Refund {amount}?"

[[rules]]
id = "write-off"
effect = "allow"
roles = ["payer"]
tools = ["write_off"]
confirm = "Write off {amount}?"
approval = { approvers = ["controller"] }
"""

NOW = "2026-03-04T10:00:00Z"


def request(target: str, amount: int, **principal: object) -> dict[str, object]:
    who = {"subject": "pat", "roles": ["payer"], **principal}
    return {
        "principal": who,
        "action": "tools/call",
        "server": "ledger",
        "target": target,
        "arguments": {"amount": amount},
        "time": NOW,
    }


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    (tmp_path / "ledger.toml").write_text(LEDGER)
    return tmp_path


def check(files: Path, req: dict[str, object]) -> dict[str, object]:
    (files / "req.json").write_text(json.dumps(req))
    out = cli("check", "--policy", str(files / "ledger.toml"), "--request", str(files / "req.json"))
    assert out.returncode == 0, out.stderr
    result: dict[str, object] = json.loads(out.stdout)
    return result


def test_check_refuses_a_step_up_rule_without_mfa(ledger: Path) -> None:
    result = check(ledger, request("pay", 700))
    assert result["decision"] == "deny"
    assert result["rule"] == "payers-pay-mfa"
    assert result["obligation"] == "step_up"
    reasons = result["reasons"]
    assert isinstance(reasons, list) and reasons[0] == "step-up required: rule payers-pay-mfa needs MFA"


def test_check_refuses_a_stale_mfa_and_allows_a_fresh_one(ledger: Path) -> None:
    stale = check(ledger, request("pay", 700, mfa=True, auth_time="2026-03-04T09:00:00Z"))
    assert stale["decision"] == "deny"
    assert "MFA 3600s ago, rule payers-pay-mfa allows 600s" in str(stale["reasons"])
    fresh = check(ledger, request("pay", 700, mfa=True, auth_time="2026-03-04T09:55:00Z"))
    allowed = {"decision": "allow", "rule": "payers-pay-mfa", "reasons": ["allowed by rule payers-pay-mfa"]}
    assert fresh == allowed


def test_check_says_mfa_without_auth_time_is_refused(ledger: Path) -> None:
    result = check(ledger, request("pay", 700, mfa=True))
    assert result["decision"] == "deny"
    assert "no auth_time" in str(result["reasons"])


def test_check_reports_approval_and_confirmation_holds(ledger: Path) -> None:
    held = check(ledger, request("pay_big", 9000))
    assert held["decision"] == "deny" and held["outcome"] == "approval"
    assert held["obligation"] == "approval"
    assert "approval required: rule big-payments needs an approver holding controller" in str(held["reasons"])
    asked = check(ledger, request("refund", 10))
    assert asked["decision"] == "deny" and asked["outcome"] == "confirm"
    assert "confirmation required" in str(asked["reasons"])
    both = check(ledger, request("write_off", 10))
    assert both["outcome"] == "confirm" and both["then"] == ["approval"]


def test_check_keeps_the_contract_for_plain_decisions(ledger: Path) -> None:
    assert check(ledger, request("pay", 100)) == {
        "decision": "allow",
        "rule": "payers-pay-small",
        "reasons": ["allowed by rule payers-pay-small"],
    }


CASES = """\
[[cases]]
name = "payer pays 700 without MFA"
expect = "deny"
rule = "payers-pay-mfa"
[cases.request]
principal = { subject = "pat", roles = ["payer"] }
action = "tools/call"
server = "ledger"
target = "pay"
arguments = { amount = 700 }
time = "2026-03-04T10:00:00Z"

[[cases]]
name = "payer pays 700 with a fresh MFA"
expect = "allow"
[cases.request]
principal = { subject = "pat", roles = ["payer"], mfa = true, auth_time = "2026-03-04T09:58:00Z" }
action = "tools/call"
server = "ledger"
target = "pay"
arguments = { amount = 700 }
time = "2026-03-04T10:00:00Z"

[[cases]]
name = "big payments wait for a controller"
expect = "approval"
rule = "big-payments"
[cases.request]
principal = { subject = "pat", roles = ["payer"] }
action = "tools/call"
server = "ledger"
target = "pay_big"
arguments = { amount = 9000 }

[[cases]]
name = "refunds are confirmed"
expect = "confirm"
[cases.request]
principal = { subject = "pat", roles = ["payer"] }
action = "tools/call"
server = "ledger"
target = "refund"
arguments = { amount = 9 }
"""


def test_policy_test_expects_effective_outcomes(ledger: Path) -> None:
    (ledger / "cases.toml").write_text(CASES)
    out = cli("test", "--policy", str(ledger / "ledger.toml"), "--cases", str(ledger / "cases.toml"))
    assert out.returncode == 0, out.stdout
    assert "PASS payer pays 700 without MFA: deny (rule payers-pay-mfa; step_up)" in out.stdout
    assert "4 passed, 0 failed" in out.stdout


def test_policy_test_fails_an_allow_the_guard_would_refuse(ledger: Path) -> None:
    wrong = CASES.replace('"payer pays 700 without MFA"\nexpect = "deny"', '"x"\nexpect = "allow"')
    held = '"big payments wait for a controller"\nexpect = "approval"'
    wrong = wrong.replace(held, '"y"\nexpect = "allow"')
    (ledger / "cases.toml").write_text(wrong)
    out = cli("test", "--policy", str(ledger / "ledger.toml"), "--cases", str(ledger / "cases.toml"))
    assert out.returncode == 1
    assert "FAIL x" in out.stdout and "expected allow, got deny (step-up required" in out.stdout
    assert "FAIL y" in out.stdout and "expected allow, got approval (approval required" in out.stdout


def test_explain_says_what_the_caller_meets(ledger: Path) -> None:
    (ledger / "req.json").write_text(json.dumps(request("pay", 700)))
    args = ("explain", "--policy", str(ledger / "ledger.toml"), "--request", str(ledger / "req.json"))
    out = cli(*args)
    assert out.returncode == 0, out.stderr
    assert "outcome: deny: refused without MFA (step-up required" in out.stdout
    data = json.loads(cli(*args, "--json").stdout)
    assert data["outcome"]["effect"] == "deny" and data["outcome"]["obligation"] == "step_up"


T0 = datetime(2026, 3, 4, 10, tzinfo=timezone.utc)


@given(
    mfa=st.booleans(),
    age=st.none() | st.integers(min_value=-60, max_value=7200),
    limits=st.lists(st.integers(min_value=0, max_value=3600), min_size=0, max_size=3),
)
def test_step_up_is_met_exactly_by_a_recent_enough_mfa(mfa: bool, age: int | None, limits: list[int]) -> None:
    auth_time = None if age is None else T0 - timedelta(seconds=age)
    principal = Principal(subject="s", mfa=mfa, auth_time=auth_time)
    obligations = tuple(Obligation("step_up", {"max_age": float(n)}) for n in limits)
    decision = Decision(True, "r", ("allowed by rule r",), obligations)
    short = [max_age for _, max_age, _ in step_up_shortfalls(principal, decision, T0)]
    met = mfa and age is not None
    assert short == [float(n) for n in limits if not (met and age is not None and age <= n)]
    outcome = effective_outcome(principal, decision, T0)
    assert outcome.runs == (not short)
    assert outcome.effect == ("allow" if not short else "deny")


def test_a_misspelt_expectation_says_what_was_meant(ledger: Path) -> None:
    (ledger / "cases.toml").write_text(CASES.replace('expect = "approval"', 'expect = "aproval"'))
    out = cli("test", "--policy", str(ledger / "ledger.toml"), "--cases", str(ledger / "cases.toml"))
    assert out.returncode == 2
    assert "cases[2].expect" in out.stderr and "(did you mean 'approval'?)" in out.stderr


def test_explain_says_which_part_of_the_mfa_is_missing(ledger: Path) -> None:
    stale = request("pay", 700, mfa=True, auth_time="2026-03-04T08:00:00Z")
    (ledger / "req.json").write_text(json.dumps(stale))
    out = cli("explain", "--policy", str(ledger / "ledger.toml"), "--request", str(ledger / "req.json"))
    assert "outcome: deny: refused because the MFA is older than the rule allows" in out.stdout
