"""``mcp-guard policy`` commands, run as real subprocesses (the contract is what a user's shell sees)."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mcp_guard.cli.main import main

POLICY = """\
version = 1
default = "deny"
[roles.analyst]
inherits = ["viewer"]
[[rules]]
id = "analysts-query-orders"
effect = "allow"
roles = ["analyst"]
servers = ["db"]
tools = ["query", "list_*"]
actions = ["call"]
when = 'principal.mfa && request.arguments.table != "users"'
[[rules]]
id = "no-drop"
effect = "deny"
tools = ["drop_*"]
"""

REQUEST = {
    "principal": {"subject": "alice", "roles": ["analyst"], "groups": [], "tenant": "acme", "mfa": True,
                  "ip": "10.0.0.5", "country": "DE", "attributes": {}},
    "action": "tools/call",
    "server": "db",
    "target": "query",
    "arguments": {"table": "orders"},
    "time": "2026-01-05T10:00:00Z",
}  # fmt: skip


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """The command as a user's shell runs it (used for the ``check`` contract)."""
    return subprocess.run(
        [sys.executable, "-m", "mcp_guard", "policy", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """The same entry point in-process, without paying interpreter start-up for every call."""
    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["policy", *args])
    finally:
        sys.stdin = saved
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "policy.toml").write_text(POLICY)
    (tmp_path / "request.json").write_text(json.dumps(REQUEST))
    return tmp_path


def test_check_prints_exactly_the_contract_object(files: Path) -> None:
    out = run("check", "--policy", str(files / "policy.toml"), "--request", str(files / "request.json"))
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert list(result) == ["decision", "rule", "reasons"]
    assert result["decision"] == "allow" and result["rule"] == "analysts-query-orders"
    assert isinstance(result["reasons"], list)


def test_check_deny_and_default_exit_zero_and_reads_stdin(files: Path) -> None:
    users = {**REQUEST, "arguments": {"table": "users"}}
    out = run("check", "--policy", str(files / "policy.toml"), "--request", "-", stdin=json.dumps(users))
    assert out.returncode == 0
    assert json.loads(out.stdout) == {
        "decision": "deny",
        "rule": None,
        "reasons": ["rule analysts-query-orders matched but its `when` was false; default deny"],
    }
    drop = {**REQUEST, "target": "drop_table"}
    out = cli("check", "--policy", str(files / "policy.toml"), "--request", "-", stdin=json.dumps(drop))
    assert json.loads(out.stdout)["rule"] == "no-drop"
    other = {**REQUEST, "action": "prompts/get", "target": "query"}
    out = cli("check", "--policy", str(files / "policy.toml"), "--request", "-", stdin=json.dumps(other))
    assert json.loads(out.stdout)["decision"] == "deny"


def test_check_exit_2_on_invalid_policy_or_request(files: Path) -> None:
    (files / "bad.toml").write_text(POLICY.replace("principal.mfa", "principal.mfaa"))
    out = run("check", "--policy", str(files / "bad.toml"), "--request", str(files / "request.json"))
    assert out.returncode == 2 and out.stdout == ""
    assert f"{files / 'bad.toml'}:12: rules[0].when" in out.stderr and "mfaa" in out.stderr
    bad_request = json.dumps({**REQUEST, "principal": {**REQUEST["principal"], "mfa": "yes"}}, indent=2)
    (files / "bad.json").write_text(bad_request)
    out = run("check", "--policy", str(files / "policy.toml"), "--request", str(files / "bad.json"))
    assert out.returncode == 2
    assert f"{files / 'bad.json'}:" in out.stderr and "principal.mfa" in out.stderr
    line = int(out.stderr.split(f"{files / 'bad.json'}:")[1].split(":")[0])
    assert '"mfa"' in bad_request.splitlines()[line - 1]
    out = cli(
        "check", "--policy", str(files / "policy.toml"), "--request", "-", stdin='{"action": "tools/call"'
    )
    assert out.returncode == 2 and "<stdin>:1" in out.stderr
    out = cli("check", "--policy", str(files / "policy.toml"), "--request", "-",
              stdin=json.dumps({**REQUEST, "action": "tools/destroy"}))  # fmt: skip
    assert out.returncode == 2 and "action" in out.stderr
    out = cli("check", "--policy", str(files / "missing.toml"), "--request", str(files / "request.json"))
    assert out.returncode == 2 and "missing.toml" in out.stderr


def test_completion_maps_to_the_referenced_prompt_or_resource(files: Path) -> None:
    (files / "c.toml").write_text(
        '[[rules]]\nid = "p"\neffect = "allow"\nprompts = ["greet"]\nactions = ["complete"]\n'
    )
    req = {**REQUEST, "action": "completion/complete", "target": "greet"}
    out = cli("check", "--policy", str(files / "c.toml"), "--request", "-", stdin=json.dumps(req))
    assert json.loads(out.stdout)["decision"] == "allow"
    req = {**REQUEST, "action": "completion/complete", "target": "file:///greet"}
    out = cli("check", "--policy", str(files / "c.toml"), "--request", "-", stdin=json.dumps(req))
    assert json.loads(out.stdout)["decision"] == "deny"


def test_explain_shows_every_rule(files: Path) -> None:
    out = cli("explain", "--policy", str(files / "policy.toml"), "--request", str(files / "request.json"))
    assert out.returncode == 0
    assert "decision: allow (rule analysts-query-orders)" in out.stdout
    assert "MATCH allow analysts-query-orders" in out.stdout and "no-drop" in out.stdout
    out = cli(
        "explain", "--json", "--policy", str(files / "policy.toml"), "--request", str(files / "request.json")
    )
    data = json.loads(out.stdout)
    assert [r["rule"] for r in data["rules"]] == ["analysts-query-orders", "no-drop"]
    assert data["rules"][1]["matched"] is False


CASES = """\
[[cases]]
name = "analyst queries orders"
expect = "allow"
rule = "analysts-query-orders"
visible = true
[cases.request]
principal = { subject = "alice", roles = ["analyst"], mfa = true }
action = "tools/call"
server = "db"
target = "query"
arguments = { table = "orders" }

[[cases]]
name = "nobody drops"
expect = "deny"
rule = "no-drop"
[cases.request]
principal = { subject = "alice", roles = ["analyst"] }
action = "call"
server = "db"
target = "drop_all"

[[cases]]
name = "default"
expect = "deny"
rule = ""
[cases.request]
principal = { subject = "bob" }
action = "tools/call"
server = "db"
target = "query"
"""


def test_policy_test_passes_and_fails(files: Path) -> None:
    (files / "cases.toml").write_text(CASES)
    out = cli("test", "--policy", str(files / "policy.toml"), "--cases", str(files / "cases.toml"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "3 passed, 0 failed" in out.stdout
    (files / "wrong.toml").write_text(CASES.replace('expect = "deny"\nrule = "no-drop"', 'expect = "allow"'))
    out = cli("test", "--policy", str(files / "policy.toml"), "--cases", str(files / "wrong.toml"))
    assert out.returncode == 1
    assert "FAIL nobody drops" in out.stdout and "expected allow, got deny" in out.stdout
    assert "2 passed, 1 failed" in out.stdout
    (files / "invalid.toml").write_text(CASES.replace('expect = "deny"\nrule = ""', 'expect = "maybe"'))
    out = cli("test", "--policy", str(files / "policy.toml"), "--cases", str(files / "invalid.toml"))
    assert out.returncode == 2 and "cases[2].expect" in out.stderr


def test_validate(files: Path) -> None:
    out = cli("validate", str(files / "policy.toml"))
    assert out.returncode == 0 and out.stdout.startswith("ok: rules 2")
    out = cli("validate", "--policy", str(files / "policy.toml"))
    assert out.returncode == 0
    (files / "bad.toml").write_text(POLICY.replace('effect = "deny"', 'effect = "nope"'))
    out = cli("validate", str(files / "bad.toml"))
    assert out.returncode == 2 and "rules[1].effect" in out.stderr and ":15:" in out.stderr
