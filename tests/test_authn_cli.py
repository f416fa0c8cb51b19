"""The users and login command groups, end to end in subprocesses with a real SQLite state store."""

from __future__ import annotations

import json
import re
import stat
import subprocess
import sys
from pathlib import Path

from mcp_guard.authn import totp

CONFIG = """[guard]
state = "sqlite:///state.db"

[authn.passwords]
users_file = "users.json"
hash = "scrypt"

[authn.passwords.lockout]
max_failures = 2

[authn.issuer]
keys_dir = "keys"
ttl = "5m"
"""


def run(*args: str, cwd: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mcp_guard.cli.main", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_users_add_login_check_lockout_unlock(tmp_path: Path) -> None:
    (tmp_path / "guard.toml").write_text(CONFIG)
    cfg = ("--config", "guard.toml")
    weak = run("users", "add", "alice", "--password-stdin", *cfg, cwd=tmp_path, stdin="password1234\n")
    assert weak.returncode == 2 and "very common" in weak.stderr

    added = run(
        "users",
        "add",
        "alice",
        "--role",
        "analyst",
        "--password-stdin",
        *cfg,
        cwd=tmp_path,
        stdin="river stone lantern 7\n",
    )
    assert added.returncode == 0, added.stderr
    secret = re.search(r"TOTP secret for alice: ([A-Z2-7]+)", added.stdout)
    assert secret is not None and "otpauth://totp/" in added.stdout
    users_file = tmp_path / "users.json"
    assert stat.S_IMODE(users_file.stat().st_mode) == 0o600
    assert "river stone" not in users_file.read_text()
    assert run("users", "add", "alice", "--password-stdin", *cfg, cwd=tmp_path, stdin="x\n").returncode == 2

    code = totp.code_at(secret.group(1), totp.current_step())
    login = run(
        "login",
        "-u",
        "alice",
        "--password-stdin",
        "--totp",
        code,
        *cfg,
        cwd=tmp_path,
        stdin="river stone lantern 7\n",
    )
    assert login.returncode == 0, login.stderr
    token = login.stdout.strip()
    checked = run("auth", "check", "--token", token, *cfg, cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    principal = json.loads(checked.stdout)
    assert principal["subject"] == "alice" and principal["mfa"] is True and principal["roles"] == ["analyst"]

    replay = run(
        "login",
        "-u",
        "alice",
        "--password-stdin",
        "--totp",
        code,
        *cfg,
        cwd=tmp_path,
        stdin="river stone lantern 7\n",
    )
    assert replay.returncode == 1 and "invalid username, password or one-time code" in replay.stderr

    wrong = run(
        "login", "-u", "alice", "--password-stdin", "--totp", code, *cfg, cwd=tmp_path, stdin="wrong\n"
    )
    assert wrong.returncode == 1 and "invalid" in wrong.stderr  # second failure: now locked
    locked = run(
        "login",
        "-u",
        "alice",
        "--password-stdin",
        "--totp",
        code,
        *cfg,
        cwd=tmp_path,
        stdin="river stone lantern 7\n",
    )
    assert locked.returncode == 1 and "locked" in locked.stderr
    unlocked = run("users", "unlock", "alice", *cfg, cwd=tmp_path)
    assert unlocked.returncode == 0 and "pair:alice|local" in unlocked.stdout

    jti = json.loads(checked.stdout)["credential_id"]
    assert run("keys", "revoke", "--jti", jti, *cfg, cwd=tmp_path).returncode == 0
    revoked = run("auth", "check", "--token", token, *cfg, cwd=tmp_path)
    assert revoked.returncode == 1 and "revoked" in revoked.stderr

    listing = json.loads(run("users", "list", *cfg, cwd=tmp_path).stdout)
    assert listing == [
        {"name": "alice", "roles": ["analyst"], "groups": [], "tenant": None, "totp": True, "disabled": False}
    ]


def test_rotate_signing_keys(tmp_path: Path) -> None:
    (tmp_path / "guard.toml").write_text(CONFIG)
    first = run("keys", "rotate-signing", "--config", "guard.toml", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    kids = sorted(p.stem for p in (tmp_path / "keys").glob("*.pem"))
    assert len(kids) == 2  # the initial key plus the rotated one
    assert all(stat.S_IMODE((tmp_path / "keys" / f"{k}.pem").stat().st_mode) == 0o600 for k in kids)
    assert (
        run("keys", "rotate-signing", "--config", "guard.toml", "--retire", kids[0], cwd=tmp_path).returncode
        == 0
    )
    assert sorted(p.stem for p in (tmp_path / "keys").glob("*.pem")) == kids[1:]
