"""Policy syntax of the human-in-the-loop obligations: ``confirm``, ``approval`` and ``step_up``."""

from __future__ import annotations

import pytest

from mcp_guard.errors import PolicyError
from mcp_guard.model import AccessRequest, Obligation, Principal
from mcp_guard.policy import load_policy_text, policy_from_dict

TRANSFERS = """\
[[rules]]
id = "transfers"
effect = "allow"
roles = ["ops"]
tools = ["transfer"]
confirm = "Transfer {amount} to {to}?"
approval = { approvers = ["admin"], timeout = "10m", wait = "30s" }
step_up = "15m"
"""

OPS = Principal("olga", roles=frozenset({"ops"}))


def call(tool: str = "transfer") -> AccessRequest:
    return AccessRequest("tools/call", "call", "bank", "tool", tool, {"amount": 5, "to": "x"})


def test_the_documented_rule_compiles_to_three_obligations() -> None:
    decision = load_policy_text(TRANSFERS, source="p.toml").decide(OPS, call())
    assert decision.allowed and decision.rule == "transfers"
    assert decision.obligations == (
        Obligation("step_up", {"max_age": 900.0}),
        Obligation("confirm", {"message": "Transfer {amount} to {to}?"}),
        Obligation(
            "approval", {"approvers": ("admin",), "timeout": 600.0, "wait": 30.0, "rules": ("transfers",)}
        ),
    )


def test_approval_defaults_to_ten_minutes_and_no_wait() -> None:
    rule = {"id": "t", "effect": "allow", "tools": ["transfer"], "approval": {"approvers": ["admin"]}}
    policy = policy_from_dict({"rules": [rule]})
    (approval,) = policy.decide(OPS, call()).obligations
    expected = {"approvers": ("admin",), "timeout": 600.0, "wait": 0.0, "rules": ("t",)}
    assert approval == Obligation("approval", expected)


def _error(text: str) -> PolicyError:
    with pytest.raises(PolicyError) as info:
        load_policy_text(text, source="p.toml")
    return info.value


@pytest.mark.parametrize(
    ("line", "field", "message"),
    [
        ('confirm = "Send {amount:.2f}?"', "confirm", "must name an argument"),
        ('confirm = "Send {amount"', "confirm", "literal braces"),
        ('confirm = "  "', "confirm", "empty confirmation"),
        ("approval = { approvers = [] }", "approval.approvers", "empty list"),
        ('approval = { timeout = "1m" }', "approval.approvers", "required field is missing"),
        ('approval = { approvers = ["admin"], timeout = "1m", wait = "2m" }', "approval", "longer than"),
        ('approval = { approvers = ["admin"], timeout = "soon" }', "approval.timeout", "invalid duration"),
        ('approval = { approvers = ["admin"], wait = -1 }', "approval.wait", "positive"),
        ('approval = { approvers = ["admin"], approver = ["x"] }', "approval.approver", "approvers"),
    ],
)
def test_bad_obligations_are_refused_with_file_line_and_field(line: str, field: str, message: str) -> None:
    text = f'[[rules]]\nid = "t"\neffect = "allow"\ntools = ["transfer"]\n{line}\n'
    error = _error(text)
    assert error.file == "p.toml"
    assert error.line == 5
    assert error.field is not None and error.field.endswith(field)
    assert message in str(error)


@pytest.mark.parametrize("name", ["confirm", "approval"])
def test_deny_rules_cannot_carry_human_obligations(name: str) -> None:
    value = '"Sure?"' if name == "confirm" else '{ approvers = ["admin"] }'
    error = _error(f'[[rules]]\nid = "t"\neffect = "deny"\ntools = ["x"]\n{name} = {value}\n')
    assert "obligation of allow rules" in str(error)


def test_several_rules_give_one_question_and_one_approval() -> None:
    policy = policy_from_dict(
        {
            "rules": [
                {
                    "id": "a",
                    "effect": "allow",
                    "tools": ["transfer"],
                    "confirm": "First?",
                    "approval": {"approvers": ["admin"], "timeout": "10m", "wait": "30s"},
                },
                {
                    "id": "b",
                    "effect": "allow",
                    "roles": ["ops"],
                    "confirm": "Second?",
                    "approval": {"approvers": ["finance", "admin"], "timeout": "5m", "wait": "1m"},
                },
            ]
        }
    )
    obligations = policy.decide(OPS, call()).obligations
    assert obligations == (
        Obligation("confirm", {"message": "First?"}),
        Obligation(
            "approval",
            {
                "approvers": ("admin", "finance"),
                "timeout": 300.0,
                "wait": 30.0,
                "rules": ("a", "b"),
                "all_of": (("admin",), ("finance", "admin")),
            },
        ),
    )


async def test_a_guard_that_cannot_ask_refuses_a_confirm_rule() -> None:
    from mcp_guard.classify import classify
    from mcp_guard.errors import AccessDenied
    from mcp_guard.guard import Guard

    rule = {"id": "t", "effect": "allow", "tools": ["transfer"], "confirm": "Sure?"}
    guard = Guard(policy=policy_from_dict({"rules": [rule]}))
    request, info = classify("tools/call", {"name": "transfer", "arguments": {}}, "bank")
    with pytest.raises(AccessDenied, match="none can be asked here"):
        await guard.authorize(OPS, request, info)
