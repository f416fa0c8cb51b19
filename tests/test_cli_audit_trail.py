"""State-changing admin commands leave one ``admin`` event in the trail their config names.

Each command opens the trail before it acts (no trail, no change), records its change before it
prints anything, and takes the change back when the event cannot be written.
"""

from __future__ import annotations

import getpass
import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest

from mcp_guard.audit import AuditLog
from mcp_guard.cli.main import main
from mcp_guard.errors import AuditUnavailable
from mcp_guard.model import AuditEvent

CONFIG = """[guard]
state = "sqlite:///state.db"
audit = ["sqlite:///trail/audit.db"]

[authn.passwords]
users_file = "users.json"
hash = "scrypt"

[authn.issuer]
keys_dir = "keys"
"""


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "guard.toml"
    path.write_text(CONFIG)
    return path


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def events(config: Path) -> list[dict[str, Any]]:
    db = config.parent / "trail" / "audit.db"
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        return [json.loads(r) for (r,) in conn.execute("SELECT record FROM audit_events ORDER BY seq")]


def only(config: Path, method: str) -> dict[str, Any]:
    found = [e for e in events(config) if e["method"] == method]
    assert len(found) == 1, events(config)
    return found[0]


def assert_operator(event: dict[str, Any]) -> None:
    assert event["event"] == "admin"
    assert event["transport"] == "cli"
    assert event["principal"] == {"subject": getpass.getuser(), "auth_method": "local"}
    assert event["client_name"]


def test_keys_create_and_revoke_are_audited_without_the_key(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "keys", "create", "--subject", "alice", "--json", "--config", str(config))
    assert code == 0, err
    created = json.loads(out)
    event = only(config, "cli/keys.create")
    assert_operator(event)
    assert (event["decision"], event["kind"], event["target"]) == ("allow", "api_key", created["id"])
    assert created["key"] not in json.dumps(events(config))

    code, _, err = cli(capsys, "keys", "revoke", created["id"], "--config", str(config))
    assert code == 0, err
    revoked = only(config, "cli/keys.revoke")
    assert (revoked["decision"], revoked["target"]) == ("allow", created["id"])

    code, _, _ = cli(capsys, "keys", "revoke", "nope", "--config", str(config))
    assert code == 1
    refused = [e for e in events(config) if e["method"] == "cli/keys.revoke" and e["decision"] == "deny"]
    assert len(refused) == 1 and refused[0]["target"] == "nope" and refused[0]["reasons"]


def test_read_only_commands_write_nothing(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(capsys, "keys", "list", "--config", str(config))[0] == 0
    assert cli(capsys, "users", "list", "--config", str(config))[0] == 0
    assert events(config) == []


def test_unwritable_trail_refuses_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "trail" / "audit.db").mkdir(parents=True)  # a directory where the store should be
    config = tmp_path / "guard.toml"
    config.write_text(CONFIG)
    code, out, err = cli(capsys, "keys", "create", "--subject", "alice", "--config", str(config))
    assert code == 1 and out == ""
    assert "audit trail" in err and "nothing was changed" in err
    code, out, _ = cli(capsys, "keys", "list", "--json", "--config", str(config))
    assert code == 0 and json.loads(out) == []
    code, _, err = cli(
        capsys, "servers", "add", "files", "--url", "https://files.example", "--config", str(config)
    )
    assert code == 1 and "nothing was changed" in err
    code, out, _ = cli(capsys, "servers", "list", "--json", "--config", str(config))
    assert code == 0 and "files" not in out


def _failing_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    async def fail(self: AuditLog, event: AuditEvent) -> None:
        raise AuditUnavailable("audit sinks are failing: disk full")

    monkeypatch.setattr(AuditLog, "record_sync", fail)


def test_created_key_whose_event_fails_is_revoked_and_never_printed(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _failing_writes(monkeypatch)
    code, out, err = cli(capsys, "keys", "create", "--subject", "alice", "--config", str(config))
    assert code == 1 and out == "" and "mcp_" not in err
    assert "nothing was changed" in err
    monkeypatch.undo()
    code, out, _ = cli(capsys, "keys", "list", "--json", "--config", str(config))
    rows = json.loads(out)
    assert len(rows) == 1 and rows[0]["revoked"] is not None


def test_servers_group_is_audited_and_an_unrecorded_approval_is_put_back(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(
        capsys, "servers", "add", "files", "--url", "https://files.example", "--config", str(config)
    )
    assert code == 0, err
    added = only(config, "cli/servers.add")
    assert_operator(added)
    assert (added["decision"], added["server"], added["target"]) == ("allow", "files", "files")

    code, _, err = cli(capsys, "servers", "approve", "nosuch", "--config", str(config))
    assert code == 1
    assert only(config, "cli/servers.approve")["decision"] == "deny"

    _failing_writes(monkeypatch)
    code, _, err = cli(capsys, "servers", "approve", "files", "--config", str(config))
    assert code == 1 and "nothing was changed" in err
    monkeypatch.undo()
    code, out, _ = cli(capsys, "servers", "list", "--json", "--config", str(config))
    assert [r["status"] for r in json.loads(out) if r["name"] == "files"] == ["pending"]

    # A server added while the trail fails is taken out again.
    _failing_writes(monkeypatch)
    code, _, err = cli(
        capsys, "servers", "add", "wiki", "--url", "https://wiki.example", "--config", str(config)
    )
    assert code == 1 and "nothing was changed" in err
    monkeypatch.undo()
    code, out, _ = cli(capsys, "servers", "list", "--json", "--config", str(config))
    assert "wiki" not in [r["name"] for r in json.loads(out)]

    secret = "s3cr3t-token-value"
    code, _, err = cli(
        capsys,
        "servers", "credentials", "set", "files", "--subject", "bob", "--env", f"TOKEN={secret}",
        "--config", str(config),
    )  # fmt: skip
    assert code == 0, err
    cred = only(config, "cli/servers.credentials.set")
    assert (cred["server"], cred["target"]) == ("files", "subject:bob")
    assert secret not in json.dumps(events(config))


def test_users_group_is_audited_without_password_or_totp_secret(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    password = "river stone lantern 7"
    monkeypatch.setattr(sys, "stdin", _Lines(f"{password}\n"))
    code, out, err = cli(capsys, "users", "add", "alice", "--password-stdin", "--config", str(config))
    assert code == 0, err
    event = only(config, "cli/users.add")
    assert_operator(event)
    assert (event["decision"], event["kind"], event["target"]) == ("allow", "user", "alice")
    trail = json.dumps(events(config))
    assert password not in trail
    totp = out.split("TOTP secret for alice: ")[1].split()[0]
    assert totp not in trail

    code, _, _ = cli(capsys, "users", "remove", "nobody", "--config", str(config))
    assert code == 1
    assert only(config, "cli/users.remove")["decision"] == "deny"


class _Lines:
    def __init__(self, text: str) -> None:
        self._lines = text.splitlines(keepends=True)

    def readline(self) -> str:
        return self._lines.pop(0) if self._lines else ""

    def isatty(self) -> bool:
        return False


def test_approvals_and_pins_refusals_are_audited(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = cli(capsys, "approvals", "approve", "ap-unknown", "--config", str(config))
    assert code == 1
    event = only(config, "cli/approvals.approve")
    assert_operator(event)
    assert (event["decision"], event["kind"], event["target"]) == ("deny", "approval", "ap-unknown")

    code, _, _ = cli(capsys, "pins", "approve", "files", "--all", "--config", str(config))
    assert code == 1
    pin = only(config, "cli/pins.approve")
    assert (pin["decision"], pin["server"]) == ("deny", "files")


def test_policy_reload_is_audited(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "policy", "reload", "--config", str(config))
    assert code == 0, err
    event = only(config, "cli/policy.reload")
    assert_operator(event)
    assert (event["decision"], event["kind"]) == ("allow", "policy")


def test_cli_events_and_a_guards_share_a_chain_that_verifies(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mcp_guard.audit import load_audit_config, open_auditor

    cfg = load_audit_config(config)
    guard = open_auditor(cfg.urls, cfg.settings, cfg.base_dir)  # a running portal's writer
    try:
        for i in range(3):
            guard.record(AuditEvent(method="tools/call", decision="allow", arguments={"i": i}))
            assert guard.flush()
            code, _, err = cli(capsys, "keys", "create", "--subject", f"s{i}", "--config", str(config))
            assert code == 0, err
        guard.record(AuditEvent(method="tools/call", decision="allow", arguments={"i": 3}))
    finally:
        guard.close()
    assert [e["method"] for e in events(config)].count("cli/keys.create") == 3
    code, out, err = cli(capsys, "audit", "verify", "--config", str(config))
    assert (code, out.strip()) == (0, "ok: 7 events"), err
