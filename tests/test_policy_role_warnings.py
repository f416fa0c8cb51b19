"""A role name that looks like a typo of another is warned about; enum fields suggest the value meant.

Roles need not be declared (they usually come from the authenticator), so an
unknown role is never an error; but ``auditr`` next to a declared ``auditor``
is almost certainly a mistake that would silently grant or refuse nothing.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_guard.errors import PolicyError
from mcp_guard.policy import load_policy_text
from tests.test_policy_cli import cli

POLICY = """\
version = 1
[roles.auditor]
[roles.clerk]
[roles.admin]
[roles.controller]
inherits = ["clerc"]

[[rules]]
id = "audit-read"
effect = "allow"
roles = ["auditr", "eng-*"]
tools = ["read"]

[[rules]]
id = "pay"
effect = "allow"
roles = ["clerk", "partner"]
tools = ["pay"]
approval = { approvers = ["admni"] }
"""


def test_validate_warns_about_near_miss_roles_with_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(POLICY)
    out = cli("validate", str(path))
    assert out.returncode == 0 and out.stdout.startswith("ok:")
    lines = out.stderr.splitlines()
    assert f"mcp-guard: warning: {path}:11: rules[0].roles[0]: role 'auditr' is not declared" in lines[1]
    assert "(did you mean 'auditor'?)" in lines[1]
    assert f"{path}:6: roles.controller.inherits[0]: role 'clerc'" in lines[0]
    assert "(did you mean 'clerk'?)" in lines[0]
    assert f"{path}:19: rules[1].approval.approvers[0]: role 'admni'" in lines[2]
    assert len(lines) == 3  # 'partner' is like nothing else; 'eng-*' is a pattern


def test_a_used_name_close_to_a_more_used_one_is_warned() -> None:
    text = (
        '[[rules]]\nid = "a"\neffect = "allow"\nroles = ["support"]\ntools = ["x"]\n'
        '[[rules]]\nid = "b"\neffect = "allow"\nroles = ["support"]\ntools = ["y"]\n'
        '[[rules]]\nid = "c"\neffect = "allow"\nroles = ["suport"]\ntools = ["z"]\n'
    )
    (warning,) = load_policy_text(text).warnings
    assert "rules[2].roles[0]: role 'suport' is not declared" in warning
    assert "(did you mean 'support', used elsewhere?)" in warning


def test_serving_logs_the_warnings(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from mcp_guard.assembly import log_policy_warnings

    with caplog.at_level(logging.WARNING, logger="mcp_guard.policy"):
        log_policy_warnings(load_policy_text(POLICY, source="p.toml"))
    assert sum("did you mean" in r.getMessage() for r in caplog.records) == 3


def test_an_enum_field_suggests_the_value_meant(tmp_path: Path) -> None:
    text = (
        '[[labels]]\nlabels = ["a"]\ntools = ["x"]\n[[labels]]\nlabels = ["b"]\ntools = ["y"]\n'
        '[[flows]]\nid = "f"\nafter = ["a"]\ndeny = ["b"]\nwindow = "1h"\nscope = "sesion"\n'
    )
    with pytest.raises(PolicyError) as caught:
        load_policy_text(text, source="p.toml")
    message = str(caught.value)
    assert "flows[0].scope: Input should be 'session', 'subject' or 'tenant'" in message
    assert "(did you mean 'session'?)" in message
    with pytest.raises(PolicyError, match=r"rules\[0\]\.effect: .*did you mean 'allow'"):
        load_policy_text('[[rules]]\nid = "a"\neffect = "alow"\n')


NAMES = st.text(alphabet="abcdefgh", min_size=3, max_size=7)


@settings(max_examples=100, deadline=None)
@given(declared=st.lists(NAMES, min_size=1, max_size=4, unique=True), used=st.lists(NAMES, max_size=4))
def test_a_declared_role_is_never_warned_about(declared: list[str], used: list[str]) -> None:
    text = "".join(f"[roles.{d}]\n" for d in declared)
    text += "".join(
        f'[[rules]]\nid = "r{i}"\neffect = "allow"\nroles = ["{u}"]\n' for i, u in enumerate(used)
    )
    warnings = load_policy_text(text).warnings
    for name in declared:
        assert not any(f"role {name!r} is not declared" in w for w in warnings)
    assert all("did you mean" in w for w in warnings)
    # Each warning names a used, undeclared role: one per use at most.
    assert len(warnings) <= sum(1 for u in used if u not in declared)
