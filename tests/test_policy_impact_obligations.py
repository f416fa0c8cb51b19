"""Obligations are part of access: ``policy diff`` sees one added or removed, ``who-can`` shows them.

Deleting ``approval = {...}`` from a rule lets calls run that needed a person's
yes; a CI gate on ``diff`` must catch it like any widened access.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_guard.policy import load_policy_text
from mcp_guard.policy.impact import Item, access, diff, role_principal, who_can
from tests.test_policy_cli import cli

BASE = """\
version = 1
default = "deny"
[roles.controller]

[[rules]]
id = "clerks-pay"
effect = "allow"
roles = ["clerk"]
tools = ["pay"]
{pay}

[[rules]]
id = "clerks-read"
effect = "allow"
roles = ["clerk"]
tools = ["balance"]
"""
APPROVAL = 'approval = { approvers = ["controller"], timeout = "10m" }'
INVENTORY = {"servers": {"ledger": {"tools": ["pay", "balance"]}}}


def policy_file(tmp_path: Path, name: str, pay: str) -> str:
    path = tmp_path / name
    path.write_text(BASE.replace("{pay}", pay))
    return str(path)


@pytest.fixture
def inventory(tmp_path: Path) -> str:
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps(INVENTORY))
    return str(path)


@pytest.mark.parametrize(
    ("before", "after", "lost", "gained"),
    [
        (APPROVAL, "", ["approval by controller"], []),
        ('confirm = "Pay {amount}?"', "", ["confirm"], []),
        ('redact = ["iban", "card"]', 'redact = ["card"]', ["redact iban"], []),
        ("", APPROVAL, [], ["approval by controller"]),
    ],
)
def test_diff_reports_an_obligation_added_or_removed(
    tmp_path: Path, inventory: str, before: str, after: str, lost: list[str], gained: list[str]
) -> None:
    old, new = policy_file(tmp_path, "old.toml", before), policy_file(tmp_path, "new.toml", after)
    out = cli("diff", "--old", old, "--new", new, "--inventory", inventory, "--json")
    assert out.returncode == 1, out.stdout + out.stderr
    (change,) = json.loads(out.stdout)["changes"]
    kind = "obligation-removed" if lost else "obligation-added"
    assert change["change"] == kind and change["role"] == "clerk" and change["name"] == "pay"
    assert change.get("obligations_removed", []) == lost
    assert change.get("obligations_added", []) == gained
    text = cli("diff", "--old", old, "--new", new, "--inventory", inventory)
    assert text.returncode == 1
    if lost:
        assert f"loses {lost[0]}" in text.stdout
    markdown = cli("diff", "--old", old, "--new", new, "--inventory", inventory, "--markdown")
    assert kind in markdown.stdout


def test_diff_of_identical_obligations_is_no_change(tmp_path: Path, inventory: str) -> None:
    old, new = policy_file(tmp_path, "old.toml", APPROVAL), policy_file(tmp_path, "new.toml", APPROVAL)
    out = cli("diff", "--old", old, "--new", new, "--inventory", inventory)
    assert out.returncode == 0 and "no change" in out.stdout


def test_removing_step_up_says_so_with_the_now_unconditional_change(tmp_path: Path, inventory: str) -> None:
    old, new = policy_file(tmp_path, "old.toml", 'step_up = "10m"'), policy_file(tmp_path, "new.toml", "")
    out = cli("diff", "--old", old, "--new", new, "--inventory", inventory, "--json")
    (change,) = json.loads(out.stdout)["changes"]
    assert change["change"] == "now-unconditional"
    assert change["obligations_removed"] == ["step_up 600s"]


def test_who_can_shows_obligations_and_flows(tmp_path: Path) -> None:
    text = BASE.replace("{pay}", APPROVAL + '\nstep_up = "10m"') + (
        '[[labels]]\nlabels = ["money-out"]\ntools = ["pay"]\n'
        '[[labels]]\nlabels = ["untrusted"]\ntools = ["fetch"]\n'
        '[[flows]]\nid = "no-pay-after-fetch"\nafter = ["untrusted"]\ndeny = ["money-out"]\nwindow = "1h"\n'
    )
    path = tmp_path / "p.toml"
    path.write_text(text)
    result = who_can(load_policy_text(text), Item("ledger", "tool", "pay"))
    (clerk,) = result["allowed"]
    assert clerk["obligations"] == ["approval by controller", "step_up 600s"]
    assert result["flows"] == [{"flow": "no-pay-after-fetch", "effect": "deny", "role": "refuses"}]
    out = cli("who-can", "--policy", str(path), "--server", "ledger", "--kind", "tool", "--name", "pay")
    assert "with approval by controller, step_up 600s" in out.stdout
    assert "flow no-pay-after-fetch (deny) refuses this target" in out.stdout


@settings(max_examples=60, deadline=None)
@given(
    old=st.sets(st.sampled_from(["a", "b", "c"]), max_size=3),
    new=st.sets(st.sampled_from(["a", "b", "c"]), max_size=3),
)
def test_redacted_fields_differ_exactly_when_diff_says_so(old: set[str], new: set[str]) -> None:
    def policy(fields: set[str]) -> str:
        redact = f"redact = {json.dumps(sorted(fields))}" if fields else ""
        return BASE.replace("{pay}", redact)

    before, after = load_policy_text(policy(old)), load_policy_text(policy(new))
    item = Item("ledger", "tool", "pay")
    changes = diff(before, after, [item])
    assert bool(changes) == (old != new)
    if changes:
        (c,) = changes
        assert set(c.removed) == {f"redact {f}" for f in old - new}
        assert set(c.added) == {f"redact {f}" for f in new - old}
    got = access(after, role_principal("clerk"), item)
    assert set(got.obligations) == {f"redact {f}" for f in new}
