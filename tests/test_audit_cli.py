"""``mcp-guard audit verify | query | tail | rotate-key`` as users run them."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mcp_guard.audit import AuditSettings, open_auditor
from mcp_guard.audit.query import parse_time
from mcp_guard.cli.main import main
from mcp_guard.errors import ConfigError
from mcp_guard.model import AuditEvent

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime.now().astimezone()
YESTERDAY_NOON = (NOW.replace(hour=12, minute=0, second=0, microsecond=0) - timedelta(days=1)).timestamp()


def populate(base: Path, urls: list[str] | None = None, settings: AuditSettings | None = None) -> None:
    audit = open_auditor(urls or ["sqlite:///.mcp-guard/audit.db"], settings, base)
    rows: list[dict[str, Any]] = [
        {"subject": "alice", "target": "query", "decision": "allow", "time": YESTERDAY_NOON},
        {"subject": "alice", "target": "drop_table", "decision": "deny", "time": YESTERDAY_NOON + 60},
        {"subject": "bob", "target": "query", "decision": "allow", "time": YESTERDAY_NOON + 120},
        {"subject": "alice", "target": "query", "decision": "allow", "time": NOW.timestamp()},
    ]
    for r in rows:
        audit.record(
            AuditEvent(
                method="tools/call",
                decision=r["decision"],
                time=r["time"],
                principal={"subject": r["subject"], "roles": ["analyst"]},
                server="db",
                kind="tool",
                target=r["target"],
                rule="analysts" if r["decision"] == "allow" else None,
                arguments={"sql": "select 1\n-- injected line"},
            )
        )
    audit.close()


def run(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mcp_guard", "audit", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_verify_contract_on_embedded_defaults(tmp_path: Path) -> None:
    populate(tmp_path)
    key = tmp_path / ".mcp-guard" / "audit.key"
    assert key.stat().st_mode & 0o777 == 0o600
    ok = run(tmp_path, "verify")
    assert (ok.returncode, ok.stdout.strip()) == (0, "ok: 4 events")
    with sqlite3.connect(tmp_path / ".mcp-guard" / "audit.db") as conn:
        conn.execute(
            "UPDATE audit_events SET record = replace(record, 'drop_table', 'list_tables') WHERE seq = 2"
        )
    bad = run(tmp_path, "verify", ".mcp-guard/audit.db")
    assert bad.returncode == 1
    assert bad.stdout.startswith("FAIL: event #2 (id ") and "altered" in bad.stdout


def test_verify_detects_removed_newest_events_and_missing_store(tmp_path: Path) -> None:
    populate(tmp_path)
    with sqlite3.connect(tmp_path / ".mcp-guard" / "audit.db") as conn:
        conn.execute("DELETE FROM audit_events WHERE seq = 4")
    assert (
        main(["audit", "verify", str(tmp_path / ".mcp-guard" / "audit.db"), "--no-anchor"]) != 0
    )  # needs key
    os.chdir(tmp_path)
    assert main(["audit", "verify", "--no-anchor"]) == 0
    assert main(["audit", "verify"]) == 1
    assert main(["audit", "verify", "nowhere.db"]) == 1


def test_verify_with_config_and_env_key(tmp_path: Path) -> None:
    env_key = "cfg:" + "ab" * 32
    (tmp_path / "guard.toml").write_text(
        '[guard]\naudit = ["sqlite:///data/audit.db", "jsonl:///data/audit.jsonl"]\n'
        '[audit]\nanchor_file = "data/audit.anchor"\n'
    )
    os.environ["MCP_GUARD_AUDIT_KEY"] = env_key
    try:
        populate(
            tmp_path,
            ["sqlite:///data/audit.db", "jsonl:///data/audit.jsonl"],
            AuditSettings(anchor_file=Path("data/audit.anchor")),
        )
    finally:
        del os.environ["MCP_GUARD_AUDIT_KEY"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    res = run(
        elsewhere, "verify", "--config", str(tmp_path / "guard.toml"), env={"MCP_GUARD_AUDIT_KEY": env_key}
    )
    assert (res.returncode, res.stdout.strip()) == (0, "ok: 4 events"), res.stderr
    jsonl = str(tmp_path / "data" / "audit.jsonl")
    res = run(
        elsewhere,
        "verify",
        jsonl,
        "--config",
        str(tmp_path / "guard.toml"),
        env={"MCP_GUARD_AUDIT_KEY": env_key},
    )
    assert (res.returncode, res.stdout.strip()) == (0, "ok: 4 events"), res.stderr
    wrong = run(
        elsewhere, "verify", "--config", str(tmp_path / "guard.toml"), env={"MCP_GUARD_AUDIT_KEY": "ff" * 32}
    )
    assert wrong.returncode == 1 and "anchor" in wrong.stdout


def test_bad_config_exits_2_naming_file_line_and_field(tmp_path: Path) -> None:
    cfg = tmp_path / "guard.toml"
    cfg.write_text('[guard]\nmode = "enforce"\n\n[audit]\nbuffer_size = 0\n')
    res = run(tmp_path, "verify", "--config", str(cfg))
    assert res.returncode == 2
    assert f"{cfg}:5: audit.buffer_size:" in res.stderr
    cfg.write_text("[audit\n")
    res = run(tmp_path, "verify", "--config", str(cfg))
    assert res.returncode == 2 and f"{cfg}:1" in res.stderr
    cfg.write_text('[audit]\nmode = "x"\n')
    res = run(tmp_path, "query", "--config", str(cfg))
    assert res.returncode == 2 and "audit.mode" in res.stderr


def test_what_did_alice_do_yesterday(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    populate(tmp_path)
    os.chdir(tmp_path)
    assert (
        main(["audit", "query", "--subject", "alice", "--since", "yesterday", "--until", "today", "--json"])
        == 0
    )
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["target"], r["decision"]) for r in records] == [("query", "allow"), ("drop_table", "deny")]
    assert main(["audit", "query", "--subject", "alice", "--decision", "deny"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and "db/drop_table" in out[0] and "deny" in out[0]
    assert "1\\n-- injected line" in out[0]  # the newline inside the argument stays escaped
    assert main(["audit", "query", "--tool", "query", "--server", "db", "--limit", "2", "--json"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_tail_shows_newest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    populate(tmp_path, ["jsonl:///.mcp-guard/audit.jsonl"])
    os.chdir(tmp_path)
    assert main(["audit", "tail", ".mcp-guard/audit.jsonl", "-n", "2", "--json"]) == 0
    assert [json.loads(x)["seq"] for x in capsys.readouterr().out.splitlines()] == [3, 4]
    assert main(["audit", "query", ".mcp-guard/audit.jsonl", "--subject", "bob", "--json"]) == 0
    assert [json.loads(x)["seq"] for x in capsys.readouterr().out.splitlines()] == [3]


def test_rotate_key_keeps_verification(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    populate(tmp_path)
    os.chdir(tmp_path)
    assert main(["audit", "rotate-key"]) == 0
    assert "new signing key" in capsys.readouterr().out
    populate(tmp_path)
    assert main(["audit", "verify"]) == 0
    assert capsys.readouterr().out.strip() == "ok: 8 events"


def test_parse_time_forms() -> None:
    now = datetime(2026, 11, 23, 15, 30).astimezone()
    assert parse_time("yesterday", now) == (now.replace(hour=0, minute=0) - timedelta(days=1)).timestamp()
    assert parse_time("90m", now) == now.timestamp() - 5400
    assert (
        parse_time("2026-11-22T10:00:00Z", now)
        == datetime.fromisoformat("2026-11-22T10:00:00+00:00").timestamp()
    )
    with pytest.raises(ConfigError):
        parse_time("last tuesday", now)


@pytest.fixture(autouse=True)
def _keep_cwd() -> Any:
    cwd = os.getcwd()
    yield
    os.chdir(cwd)


def test_signed_checkpoints_pin_history_against_the_hmac_key_holder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    populate(tmp_path)
    os.chdir(tmp_path)
    signing = tmp_path / "offsite" / "cp.key"
    assert main(["audit", "checkpoint", "--signing-key", str(signing), "--new-key"]) == 0
    checkpoints = tmp_path / ".mcp-guard" / "audit.checkpoints"
    pub = ["--checkpoints", str(checkpoints), "--public-key", str(signing) + ".pub"]
    capsys.readouterr()
    assert main(["audit", "verify", *pub]) == 0
    assert capsys.readouterr().out.strip() == "ok: 4 events"
    # Someone with the HMAC key truncates the store and re-anchors it: only the checkpoint notices.
    from mcp_guard.audit import load_key_file, write_anchor

    db = tmp_path / ".mcp-guard" / "audit.db"
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM audit_events WHERE seq = 4")
        seq, mac = conn.execute("SELECT seq, mac FROM audit_events ORDER BY seq DESC LIMIT 1").fetchone()
        (first,) = conn.execute("SELECT mac FROM audit_events WHERE seq = 1").fetchone()
    keys = load_key_file(tmp_path / ".mcp-guard" / "audit.key")
    write_anchor(tmp_path / ".mcp-guard" / "audit.anchor", keys, seq, mac, first)
    assert main(["audit", "verify"]) == 0
    capsys.readouterr()
    assert main(["audit", "verify", *pub]) == 1
    assert "signed checkpoint records #4" in capsys.readouterr().out
    checkpoints.write_text(checkpoints.read_text().replace('"seq":4', '"seq":3'))
    assert main(["audit", "verify", *pub]) == 1
    assert "signature does not verify" in capsys.readouterr().out


def test_unreadable_store_is_a_failure_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    populate(tmp_path)
    os.chdir(tmp_path)
    (tmp_path / "bad.db").write_text("not sqlite at all\n")
    assert main(["audit", "verify", "bad.db"]) == 1
    assert "not a readable audit store" in capsys.readouterr().out
    assert main(["audit", "query", "bad.db"]) == 1
    assert "audit store" in capsys.readouterr().err
