"""``mcp-guard policy who-can | diff | coverage``: the documented contracts, on small known policies."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml

from mcp_guard.audit import open_auditor
from mcp_guard.cli.main import main
from mcp_guard.errors import PolicyError
from mcp_guard.model import AuditEvent
from mcp_guard.policy import load_policy_text
from mcp_guard.policy.impact import Access, Item, access, diff, role_principal, who_can

OLD = """\
version = 1
default = "deny"
[roles.analyst]
inherits = ["viewer"]
[[rules]]
id = "viewers-search"
effect = "allow"
roles = ["viewer"]
tools = ["search_notes", "list_*"]
[[rules]]
id = "analysts-write"
effect = "allow"
roles = ["analyst"]
tools = ["add_note"]
when = 'size(request.arguments.text) <= 200'
[[rules]]
id = "nobody-deletes"
effect = "deny"
tools = ["delete_*"]
"""

NEW = """\
version = 1
default = "deny"
[roles.analyst]
inherits = ["viewer"]
[roles.admin]
[[rules]]
id = "viewers-search"
effect = "allow"
roles = ["viewer"]
tools = ["search_notes"]
[[rules]]
id = "analysts-write"
effect = "allow"
roles = ["analyst"]
tools = ["add_note", "delete_note"]
[[rules]]
id = "deletes-need-mfa"
effect = "deny"
tools = ["delete_*"]
when = '!principal.mfa'
"""

INVENTORY = {
    "servers": {
        "notes": {
            "tools": ["search_notes", {"name": "add_note", "description": "x"}, "delete_note", "list_notes"],
            "resources": [{"uri": "notes://all"}],
        }
    }
}


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["policy", *args])
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "old.toml").write_text(OLD)
    (tmp_path / "new.toml").write_text(NEW)
    (tmp_path / "inventory.json").write_text(json.dumps(INVENTORY))
    return tmp_path


def test_who_can_prints_the_contract_object(files: Path) -> None:
    args = ["--server", "notes", "--kind", "tool", "--name", "add_note", "--json"]
    out = cli("who-can", "--policy", str(files / "old.toml"), *args)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {
        "allowed": [{"role": "analyst", "rule": "analysts-write", "conditional": True}],
        "denied_by": [{"role": "viewer", "rule": None}],
    }
    out = cli("who-can", "--policy", str(files / "new.toml"), *args[:-3], "--name", "delete_note", "--json")
    assert json.loads(out.stdout) == {
        "allowed": [{"role": "analyst", "rule": "analysts-write", "conditional": True}],
        "denied_by": [
            {"role": "admin", "rule": "deletes-need-mfa"},
            {"role": "viewer", "rule": "deletes-need-mfa"},
        ],
    }
    text = cli("who-can", "--policy", str(files / "old.toml"), *args[:-1])
    assert "analyst" in text.stdout and "if its condition holds" in text.stdout


def test_diff_lists_every_grant_and_revocation_sorted(files: Path) -> None:
    old, new, inv = (str(files / n) for n in ("old.toml", "new.toml", "inventory.json"))
    out = cli("diff", "--old", old, "--new", new, "--inventory", inv, "--json")
    assert out.returncode == 1, out.stderr
    assert json.loads(out.stdout) == {
        "changes": [
            {"role": "analyst", "server": "notes", "kind": "tool", "name": "add_note",
             "change": "now-unconditional", "old_rule": "analysts-write", "new_rule": "analysts-write"},
            {"role": "analyst", "server": "notes", "kind": "tool", "name": "delete_note",
             "change": "granted", "old_rule": "nobody-deletes", "new_rule": "analysts-write"},
            {"role": "analyst", "server": "notes", "kind": "tool", "name": "list_notes",
             "change": "revoked", "old_rule": "viewers-search", "new_rule": None},
            {"role": "viewer", "server": "notes", "kind": "tool", "name": "list_notes",
             "change": "revoked", "old_rule": "viewers-search", "new_rule": None},
        ]
    }  # fmt: skip
    back = cli("diff", "--old", new, "--new", old, "--inventory", inv, "--json")
    kinds = [c["change"] for c in json.loads(back.stdout)["changes"]]
    assert kinds == ["now-conditional", "revoked", "granted", "granted"]


def test_diff_exits_zero_when_nothing_changes(files: Path) -> None:
    old, inv = str(files / "old.toml"), str(files / "inventory.json")
    out = cli("diff", "--old", old, "--new", old, "--inventory", inv, "--json")
    assert (out.returncode, json.loads(out.stdout)) == (0, {"changes": []})
    # a rewrite that keeps every role's access (rules renamed, merged) is no change either
    rewritten = OLD.replace("viewers-search", "search-for-viewers")
    (files / "same.toml").write_text(rewritten)
    out = cli("diff", "--old", old, "--new", str(files / "same.toml"), "--inventory", inv)
    assert out.returncode == 0 and "no change" in out.stdout


def test_diff_markdown_summary(files: Path) -> None:
    old, new, inv = (str(files / n) for n in ("old.toml", "new.toml", "inventory.json"))
    out = cli("diff", "--old", old, "--new", new, "--inventory", inv, "--markdown")
    assert out.returncode == 1
    assert "| `analyst` | `notes` | tool | `delete_note` | granted (conditional) |" in out.stdout
    assert "**2** revoked" in out.stdout


@pytest.mark.parametrize(
    ("inventory", "message"),
    [
        ("{", "inventory.json:1: not valid JSON"),
        ('{"servers": {"notes": {"tool": ["a"]}}}', "servers.notes.tool: unknown key 'tool' (did you mean"),
        ('{"servers": {"notes": {"tools": [1]}}}', "servers.notes.tools[0]: expected a non-empty name"),
        ('{"servers": {"notes": {"resources": [{"name": "x"}]}}}', "needs 'uri' or 'uriTemplate'"),
        ('{"server": {}}', "unknown key 'server'"),
    ],
)
def test_bad_inventory_exits_2_naming_the_field(files: Path, inventory: str, message: str) -> None:
    (files / "inventory.json").write_text(inventory)
    old, inv = str(files / "old.toml"), str(files / "inventory.json")
    out = cli("diff", "--old", old, "--new", old, "--inventory", inv)
    assert out.returncode == 2
    assert message in out.stderr


def test_bad_policy_exits_2(files: Path) -> None:
    (files / "bad.toml").write_text('[[rules]]\nid = "x"\neffect = "alow"\n')
    out = cli("diff", "--old", str(files / "old.toml"), "--new", str(files / "bad.toml"), "--inventory",
              str(files / "inventory.json"))  # fmt: skip
    assert out.returncode == 2 and "bad.toml:3: rules[0].effect" in out.stderr
    with pytest.raises(SystemExit) as exc:  # neither --inventory nor --config: a usage error
        cli("diff", "--old", str(files / "old.toml"), "--new", str(files / "old.toml"))
    assert exc.value.code == 2


def test_diff_reads_the_approved_pins_of_the_config_state(files: Path) -> None:
    from mcp_guard.sanitize.pins import PinStore
    from mcp_guard.store import open_store

    async def pin() -> None:
        store = open_store("sqlite:///state.db", base_dir=files)
        try:
            pins = PinStore(store)
            await pins.pin("notes", "tool", [{"name": "list_notes"}, {"name": "add_note"}])
            await pins.pin("other", "resource", [{"uri": "notes://all"}])
        finally:
            await store.aclose()

    anyio.run(pin)
    (files / "guard.toml").write_text('[guard]\nstate = "sqlite:///state.db"\n')
    old, new = str(files / "old.toml"), str(files / "new.toml")
    out = cli("diff", "--old", old, "--new", new, "--config", str(files / "guard.toml"), "--json")
    assert out.returncode == 1, out.stderr
    changed = {(c["role"], c["name"], c["change"]) for c in json.loads(out.stdout)["changes"]}
    assert changed == {
        ("analyst", "add_note", "now-unconditional"),
        ("analyst", "list_notes", "revoked"),
        ("viewer", "list_notes", "revoked"),
    }


def test_conditions_shared_and_nested_are_explored_exactly() -> None:
    policy = load_policy_text(
        """
        [[rules]]
        id = "deny-no-mfa"
        effect = "deny"
        roles = ["ops"]
        when = '!principal.mfa'
        [[rules]]
        id = "allow-mfa"
        effect = "allow"
        roles = ["ops"]
        when = '!principal.mfa'
        [[rules]]
        id = "allow-dev"
        effect = "allow"
        roles = ["dev"]
        when = 'principal.country == "FR"'
        [[rules]]
        id = "allow-dev-too"
        effect = "allow"
        roles = ["dev"]
        [[rules]]
        id = "deny-guest"
        effect = "deny"
        roles = ["guest"]
        when = 'principal.mfa'
        """
    )
    item = Item("s", "tool", "t")
    # the same condition text is one question: a deny and an allow on it never both apply
    assert access(policy, role_principal("ops"), item).allowed is False
    # an allow whose condition does not matter (another allow is unconditional) is not conditional
    assert access(policy, role_principal("dev"), item) == access(policy, role_principal("dev"), item)
    dev = access(policy, role_principal("dev"), item)
    # ...and is reported under the rule that allows whatever the conditions say
    assert dev.allowed and not dev.conditional and dev.rule == "allow-dev-too"
    # a conditional deny over the default deny leaves the role denied, unconditionally
    guest = access(policy, role_principal("guest"), item)
    assert (guest.allowed, guest.conditional) == (False, False)
    assert who_can(policy, item)["denied_by"] == [
        {"role": "guest", "rule": "deny-guest"},
        {"role": "ops", "rule": "deny-no-mfa"},
    ]


def test_diff_covers_roles_of_either_policy_and_every_kind() -> None:
    old = load_policy_text('[[rules]]\nid = "a"\neffect = "allow"\nroles = ["r1"]\n')
    new = load_policy_text('[[rules]]\nid = "b"\neffect = "allow"\nroles = ["r2"]\nprompts = ["p"]\n')
    items = [Item("s", "resource", "u://x"), Item("s", "prompt", "p"), Item("s", "tool", "t")]
    got = [(c.role, c.item.kind, c.change) for c in diff(old, new, items)]
    assert got == [
        ("r1", "tool", "revoked"),
        ("r1", "prompt", "revoked"),
        ("r1", "resource", "revoked"),
        ("r2", "prompt", "granted"),
    ]


def _audit(base: Path, events: list[dict[str, Any]]) -> None:
    audit = open_auditor(["sqlite:///audit.db"], None, base)
    for e in events:
        audit.record(AuditEvent(method="tools/call", server="notes", kind="tool", **e))
    audit.close()


def test_coverage_counts_decisions_per_rule_and_rules_never_hit(files: Path) -> None:
    (files / "guard.toml").write_text('[guard]\naudit = ["sqlite:///audit.db"]\npolicy = "old.toml"\n')
    _audit(
        files,
        [
            {"decision": "allow", "rule": "viewers-search", "target": "list_notes", "time": 1_000_000.0},
            {"decision": "allow", "rule": "viewers-search", "target": "search_notes", "time": 2e9},
            {"decision": "deny", "rule": "nobody-deletes", "target": "delete_note", "time": 2_000_000_100.0},
            {"decision": "deny", "rule": None, "target": "x", "time": 2_000_000_200.0,
             "reasons": ("no rule matched; default deny",)},
            {"decision": "allow", "rule": "retired-rule", "target": "x", "time": 2_000_000_300.0},
        ],
    )  # fmt: skip
    out = cli("coverage", "--config", str(files / "guard.toml"), "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    rules = {r["id"]: r for r in report["rules"]}
    assert (rules["viewers-search"]["decisions"], rules["viewers-search"]["allow"]) == (2, 2)
    assert rules["viewers-search"]["last_hit"] == "2033-05-18T03:33:20Z"
    assert (rules["nobody-deletes"]["deny"], rules["analysts-write"]["last_hit"]) == (1, None)
    assert report["never_hit"] == ["analysts-write"]
    assert report["default_denials"] == 1
    assert report["unknown_rules"] == {"retired-rule": 1}
    since = cli("coverage", "--policy", str(files / "old.toml"), "--config", str(files / "guard.toml"),
                "--since", "2001-01-01T00:00:00Z", "--json")  # fmt: skip
    assert json.loads(since.stdout)["events"] == 4
    text = cli("coverage", "--config", str(files / "guard.toml"))
    assert "never hit: analysts-write" in text.stdout
    bad = cli("coverage", "--config", str(files / "guard.toml"), "--since", "last tuesday")
    assert bad.returncode == 2 and "--since: unrecognised time" in bad.stderr


def test_ci_example_prints_the_markdown_summary(tmp_path: Path) -> None:
    """examples/ci: the workflow runs policy-diff.sh, which writes the job summary and exits as documented."""
    ci = Path(__file__).resolve().parents[1] / "examples" / "ci"
    workflow = yaml.safe_load((ci / "policy-diff.yml").read_text())
    steps = [s.get("run", "") for s in workflow["jobs"]["policy-diff"]["steps"]]
    assert any("policy-diff.sh" in s and "$POLICY" in s and "$INVENTORY" in s for s in steps)
    summary = tmp_path / "summary.md"
    env = {**os.environ, "MCP_GUARD": f"{sys.executable} -m mcp_guard", "GITHUB_STEP_SUMMARY": str(summary)}
    env["PYTHONPATH"] = str(ci.parents[1])
    pair = [str(ci / "before.toml"), str(ci / "after.toml"), str(ci / "inventory.json")]

    def script(*args: str) -> subprocess.CompletedProcess[str]:
        command = ["bash", str(ci / "policy-diff.sh"), *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)

    out = script(*pair)
    assert out.returncode == 1, out.stderr
    assert "**3** granted, **2** revoked" in out.stdout
    assert "| `treasurer` | `billing` | tool | `transfer` | granted (conditional) |" in out.stdout
    assert summary.read_text() == out.stdout
    env["ALLOW_CHANGES"] = "1"
    same = script(pair[0], pair[0], pair[2])
    assert same.returncode == 0 and "No role gains or loses access" in same.stdout
    assert script(*pair).returncode == 0
    bad = script(pair[0], "missing.toml", pair[2])
    assert bad.returncode == 2 and "missing.toml" in bad.stderr


def test_cli_md_examples_are_what_the_commands_print() -> None:
    """The who-can and diff examples in docs/cli.md run from the repository root as written."""
    root = Path(__file__).resolve().parents[1]
    doc = (root / "docs" / "cli.md").read_text()
    for section in ("### `policy who-can`", "### `policy diff`"):
        body = doc.split(section, 1)[1].split("\n### ", 1)[0]
        console = body.rsplit("```\n$ ", 1)[1].split("\n```", 1)[0]
        for shown in ("$ " + console).split("\n$ "):
            command, _, expected = shown.removeprefix("$ ").partition("\n")
            argv = command.split()
            assert argv[:2] == ["mcp-guard", "policy"]
            out = io.StringIO()
            cwd = os.getcwd()
            os.chdir(root)
            try:
                with contextlib.redirect_stdout(out):
                    main(argv[1:])
            finally:
                os.chdir(cwd)
            assert out.getvalue() == expected + "\n", command


def test_an_empty_inventory_is_refused(files: Path) -> None:
    (files / "inventory.json").write_text('{"servers": {"notes": {"tools": []}}}')
    old, inv = str(files / "old.toml"), str(files / "inventory.json")
    out = cli("diff", "--old", old, "--new", old, "--inventory", inv)
    assert out.returncode == 2 and "the inventory holds no items" in out.stderr
    (files / "guard.toml").write_text('[guard]\nstate = "sqlite:///empty.db"\n')
    out = cli("diff", "--old", old, "--new", old, "--config", str(files / "guard.toml"))
    assert out.returncode == 2 and "guard.state: no approved pins" in out.stderr
    (files / "not-a-db").write_text("plain text, not SQLite")
    (files / "guard.toml").write_text('[guard]\nstate = "sqlite:///not-a-db"\n')
    out = cli("diff", "--old", old, "--new", old, "--config", str(files / "guard.toml"))
    assert out.returncode == 2 and "cannot open sqlite state store" in out.stderr and "not-a-db" in out.stderr
    (files / "guard.toml").write_text('[guard]\nstate = "redis://127.0.0.1:1/0"\n')  # nothing listens there
    out = cli("diff", "--old", old, "--new", old, "--config", str(files / "guard.toml"))
    assert out.returncode == 2 and "guard.state: cannot read the pins of state store" in out.stderr


def test_too_many_conditions_stop_the_search(monkeypatch: pytest.MonkeyPatch) -> None:
    import mcp_guard.policy.impact as impact

    denies = "".join(
        f'[[rules]]\nid = "d{i}"\neffect = "deny"\nwhen = \'request.arguments.n == {i}\'\n' for i in range(4)
    )
    allow = '[[rules]]\nid = "all"\neffect = "allow"\nroles = ["r"]\n'
    policy = load_policy_text(denies + allow)
    item = Item("s", "tool", "t")
    assert access(policy, role_principal("r"), item) == Access(True, "all", conditional=True)
    only_denies = load_policy_text(denies + "[roles.r]\n")
    assert access(only_denies, role_principal("r"), item) == Access(False, "d0")
    monkeypatch.setattr(impact, "MAX_COMBINATIONS", 5)  # exactly the five paths: still answered
    assert access(only_denies, role_principal("r"), item) == Access(False, "d0")
    monkeypatch.setattr(impact, "MAX_COMBINATIONS", 2)
    expected = r"tool 't' on server 's' for roles \['r'\]: more than 2 combinations"
    with pytest.raises(PolicyError, match=expected):
        access(only_denies, role_principal("r"), item)


def test_markdown_cells_cannot_break_the_table() -> None:
    from mcp_guard.policy.impact import Change, render_diff_markdown

    text = render_diff_markdown([Change("a|b", Item("s", "tool", "x\n| y`"), "granted", None, "r")])
    row = text.splitlines()[-1]
    assert row == "| `a\\|b` | `s` | tool | `x \\| y'` | granted | (default) | `r` |"


async def test_coverage_reads_the_events_the_pipeline_writes() -> None:
    """Default denials and shadow hits are recognised in events as the guard records them."""
    from datetime import datetime, timezone

    from mcp_guard.guard import Guard
    from mcp_guard.model import Principal, RequestContext
    from mcp_guard.pipeline import Exchange
    from mcp_guard.policy.coverage import coverage

    from .helpers import ListAuditor

    text = """
    [servers.notes]
    tenant = "acme"
    [[rules]]
    id = "viewers"
    effect = "allow"
    roles = ["viewer"]
    tools = ["read_*"]
    cross_tenant = true
    [[rules]]
    id = "no-delete"
    effect = "deny"
    tools = ["delete_*"]
    [[rules]]
    id = "try-write"
    effect = "allow"
    shadow = true
    cross_tenant = true
    tools = ["write_*"]
    """
    auditor = ListAuditor()
    guard = Guard(policy=load_policy_text(text), auditor=auditor)
    alice = Principal("alice", roles=frozenset({"viewer"}))

    async def call(admitted: Any) -> dict[str, Any]:
        return {"content": []}

    for name in ["read_a", "delete_b", "write_c", "other"]:
        context = RequestContext(datetime.now(timezone.utc))
        exchange = Exchange("tools/call", {"name": name, "arguments": {}}, "notes", context, principal=alice)
        with contextlib.suppress(Exception):
            await guard.run(exchange, call)
    report = coverage(load_policy_text(text), [e.as_dict() for e in auditor.events])
    rules = {r["id"]: (r["allow"], r["deny"], r["shadow_hits"]) for r in report["rules"]}
    assert rules == {"viewers": (1, 0, 0), "no-delete": (0, 1, 0), "try-write": (0, 0, 1)}
    assert (report["default_denials"], report["never_hit"]) == (2, [])


def test_an_allow_with_step_up_is_conditional_on_mfa() -> None:
    policy = load_policy_text(
        '[[rules]]\nid = "mfa"\neffect = "allow"\nroles = ["ops"]\ntools = ["deploy"]\nstep_up = "10m"\n'
        '[[rules]]\nid = "plain"\neffect = "allow"\nroles = ["ops"]\ntools = ["status"]\n'
    )
    deploy = Access(True, "mfa", True, ("step_up 600s",))
    assert access(policy, role_principal("ops"), Item("s", "tool", "deploy")) == deploy
    assert access(policy, role_principal("ops"), Item("s", "tool", "status")) == Access(True, "plain", False)
