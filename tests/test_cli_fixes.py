"""Command-line behaviour that scripts and operators rely on, run as real processes on real files.

Removing a server never lifts a revocation; the SQLite stores are owner-only; tokens from
``mcp-guard login`` are accepted by the same config; ``login --url`` refuses bad endpoints on one
line; ``pins --state`` resolves like the other groups; ``audit query --since`` takes the forms its
help names; "not found" goes to stderr; a closed pipe ends a command quietly.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import anyio
import pytest
from starlette.applications import Starlette

from mcp_guard.audit.query import parse_time
from mcp_guard.audit.sinks.sqlite import SQLiteSink
from mcp_guard.audit.spill import Spill
from mcp_guard.authn import login_routes, totp
from mcp_guard.authn.config import build_login_service, load_config_file
from mcp_guard.portal import Registry
from mcp_guard.sanitize.pins import PinStore
from mcp_guard.store import open_store

from .http_util import serve
from .test_audit_cli import populate
from .test_authn_cli import run as mcp_guard

PASSWORD = "river stone lantern 7"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The usual umask, under which files are world-readable unless created restrictively."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


# -- 1. servers remove never un-revokes ---------------------------------------------------------


def _portal_config(tmp_path: Path) -> Path:
    cfg = tmp_path / "guard.toml"
    cfg.write_text(
        '[guard]\nstate = "sqlite:///state.db"\naudit = ["sqlite:///audit.db"]\n\n'
        f'[[servers]]\nname = "notes"\ncommand = "{sys.executable}"\nargs = ["notes_server.py"]\n'
    )
    return cfg


def _statuses(tmp_path: Path) -> dict[str, str]:
    listed = mcp_guard("servers", "list", "--json", "--config", "guard.toml", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    return {row["name"]: row["status"] for row in json.loads(listed.stdout)}


def test_remove_refuses_a_configured_server_and_keeps_its_revocation(tmp_path: Path) -> None:
    _portal_config(tmp_path)
    cfg = ("--config", "guard.toml")
    assert mcp_guard("servers", "revoke", "notes", *cfg, cwd=tmp_path).returncode == 0
    assert _statuses(tmp_path) == {"notes": "revoked"}

    removed = mcp_guard("servers", "remove", "notes", *cfg, cwd=tmp_path)
    assert removed.returncode == 2 and removed.stdout == ""
    assert "config file" in removed.stderr and "only revoked" in removed.stderr
    assert "servers revoke notes" in removed.stderr and "Traceback" not in removed.stderr
    assert _statuses(tmp_path) == {"notes": "revoked"}

    # Without --config the entry still only holds a configured server's status: refused too.
    bare = mcp_guard("servers", "remove", "notes", "--state", "sqlite:///state.db", cwd=tmp_path)
    assert bare.returncode == 2 and "only revoked" in bare.stderr
    assert _statuses(tmp_path) == {"notes": "revoked"}

    # A configured server that was never revoked is refused as well (remove cannot apply to it).
    assert mcp_guard("servers", "approve", "notes", *cfg, cwd=tmp_path).returncode == 0
    assert mcp_guard("servers", "remove", "notes", *cfg, cwd=tmp_path).returncode == 2


def test_remove_deletes_a_registered_server(tmp_path: Path) -> None:
    _portal_config(tmp_path)
    cfg = ("--config", "guard.toml")
    added = mcp_guard("servers", "add", "db", "--url", "http://127.0.0.1:9000/mcp", *cfg, cwd=tmp_path)
    assert added.returncode == 0, added.stderr
    assert mcp_guard("servers", "revoke", "db", *cfg, cwd=tmp_path).returncode == 0
    removed = mcp_guard("servers", "remove", "db", *cfg, cwd=tmp_path)
    assert (removed.returncode, removed.stdout.strip()) == (0, "db: removed")
    assert _statuses(tmp_path) == {"notes": "approved"}
    again = mcp_guard("servers", "remove", "db", *cfg, cwd=tmp_path)
    assert again.returncode == 1 and again.stdout == ""
    assert "no registered server named 'db'" in again.stderr


async def test_registry_remove_never_lifts_a_revocation(tmp_path: Path) -> None:
    store = open_store("sqlite:///state.db", base_dir=tmp_path)
    try:
        registry = Registry(store)
        await registry.set_status("notes", "revoked")
        with pytest.raises(ValueError, match="only revoked"):
            await registry.remove("notes")
        await registry.add({"name": "db", "url": "http://127.0.0.1:9000/mcp"})
        with pytest.raises(ValueError, match="config file"):
            await registry.remove("db", configured=True)
        got = await registry.get("notes")
        assert got is not None and got.status == "revoked"
        assert await registry.remove("db") is True
        assert await registry.remove("db") is False
    finally:
        await store.aclose()


# -- 2. owner-only SQLite stores -------------------------------------------------------------------


def test_audit_database_and_its_directory_are_owner_only(tmp_path: Path, umask_022: None) -> None:
    sink = SQLiteSink(tmp_path / "fresh" / ".mcp-guard" / "audit.db")
    try:
        data = tmp_path / "fresh" / ".mcp-guard"
        assert mode(data) == 0o700
        for name in ("audit.db", "audit.db-wal", "audit.db-shm"):
            assert mode(data / name) == 0o600, name
    finally:
        sink.close()
    assert mode(tmp_path / "fresh") == 0o755  # parents keep the usual mode: only what holds the data

    populate(tmp_path / "guard")  # the whole pipeline on embedded defaults
    assert mode(tmp_path / "guard" / ".mcp-guard" / "audit.db") == 0o600


def test_state_database_created_by_the_cli_is_owner_only(tmp_path: Path, umask_022: None) -> None:
    created = mcp_guard("keys", "create", "--subject", "alice", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    assert mode(tmp_path / ".mcp-guard") == 0o700
    assert mode(tmp_path / ".mcp-guard" / "state.db") == 0o600


def test_spill_file_and_directory_are_owner_only(tmp_path: Path, umask_022: None) -> None:
    Spill(tmp_path / "spool" / "audit.spill.jsonl").append([])
    assert mode(tmp_path / "spool") == 0o700
    assert mode(tmp_path / "spool" / "audit.spill.jsonl") == 0o600


# -- 3 and 4. login: issued tokens are accepted; --url refusals -----------------------------------

PASSWORDS_ONLY = """[guard]
state = "sqlite:///state.db"

[authn.passwords]
users_file = "users.json"
hash = "scrypt"
"""


def _add_user(tmp_path: Path) -> str:
    (tmp_path / "guard.toml").write_text(PASSWORDS_ONLY)
    added = mcp_guard(
        "users",
        "add",
        "alice",
        "--role",
        "analyst",
        "--password-stdin",
        "--config",
        "guard.toml",
        cwd=tmp_path,
        stdin=PASSWORD + "\n",
    )
    assert added.returncode == 0, added.stderr
    secret = re.search(r"TOTP secret for alice: ([A-Z2-7]+)", added.stdout)
    assert secret is not None
    return secret.group(1)


def _login(
    tmp_path: Path, code: str, *where: str, user: str = "alice", password: str = PASSWORD
) -> subprocess.CompletedProcess[str]:
    """``mcp-guard login`` with the password on stdin; ``where`` is ``--config F`` or ``--url U``."""
    return mcp_guard(
        "login", "-u", user, "--password-stdin", "--totp", code, *where, cwd=tmp_path, stdin=password + "\n"
    )


def _check(tmp_path: Path, token: str) -> dict[str, object]:
    checked = mcp_guard("auth", "check", "--config", "guard.toml", "--token", "-", cwd=tmp_path, stdin=token)
    assert checked.returncode == 0, checked.stderr
    principal: dict[str, object] = json.loads(checked.stdout)
    return principal


def test_tokens_from_login_are_accepted_without_an_issuer_table(tmp_path: Path) -> None:
    secret = _add_user(tmp_path)
    login = _login(tmp_path, totp.code_at(secret, totp.current_step()), "--config", "guard.toml")
    assert login.returncode == 0, login.stderr
    principal = _check(tmp_path, login.stdout.strip())
    assert principal["subject"] == "alice" and principal["roles"] == ["analyst"]
    assert principal["issuer"] == "mcp-guard"
    assert (tmp_path / ".mcp-guard" / "issuer-keys").is_dir()


def test_login_url_over_loopback_http_works(tmp_path: Path) -> None:
    secret = _add_user(tmp_path)
    settings, state, base = load_config_file(tmp_path / "guard.toml")
    store = open_store(state, base_dir=base)
    try:
        service = build_login_service(settings, store, base)
        assert service is not None
        with serve(Starlette(routes=login_routes(service))) as url:
            login = _login(tmp_path, totp.code_at(secret, totp.current_step()), "--url", f"{url}/login")
    finally:
        anyio.run(store.aclose)
    assert login.returncode == 0, login.stderr
    assert _check(tmp_path, login.stdout.strip())["subject"] == "alice"


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://10.0.0.7/login", "plain http"),
        ("http://example.com/login", "plain http"),
        ("https://10.0.0.7/login", "non-public address"),
        ("https://192.168.1.20:8443/login", "non-public address"),
        ("https://169.254.169.254/login", "non-public address"),
        ("ftp://127.0.0.1/login", "scheme"),
    ],
)
def test_login_url_refusals_are_one_line_and_exit_2(tmp_path: Path, url: str, says: str) -> None:
    out = _login(tmp_path, "123456", "--url", url, password="pw")
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mcp-guard: --url: ") and says in lines[0]


def test_login_url_unreachable_is_one_line_and_exit_1(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/login"
    out = _login(tmp_path, "1", "--url", url, user="a", password="p")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "cannot reach" in out.stderr


# -- 5. pins --state resolves against the config's directory ---------------------------------------


def test_pins_state_path_resolves_against_the_config_directory(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "guard.toml").write_text('[guard]\nstate = "memory://"\naudit = []\n')

    async def seed() -> None:
        store = open_store("sqlite:///pins.db", base_dir=conf)
        try:
            await PinStore(store).pin("notes", "tool", [{"name": "echo", "inputSchema": {}}])
        finally:
            await store.aclose()

    anyio.run(seed)
    args = ("pins", "list", "--json", "--state", "sqlite:///pins.db", "--config", "conf/guard.toml")
    listed = mcp_guard(*args, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["server"], r["name"], r["status"]) for r in rows] == [("notes", "echo", "pinned")]
    assert not (tmp_path / "pins.db").exists()
    # Same resolution as the servers group with the same flags.
    servers = mcp_guard(
        "servers",
        "list",
        "--json",
        "--state",
        "sqlite:///pins.db",
        "--config",
        "conf/guard.toml",
        cwd=tmp_path,
    )
    assert servers.returncode == 0 and not (tmp_path / "pins.db").exists()


# -- 6. audit query --since ------------------------------------------------------------------------


def test_since_accepts_the_forms_its_help_names(tmp_path: Path) -> None:
    now = datetime.now().astimezone()
    for bare, ago in (("15m", "15m ago"), ("24h", "24h ago"), ("7d", "7d  AGO"), ("30s", "30 s ago")):
        assert parse_time(ago, now) == parse_time(bare, now) < now.timestamp()
    populate(tmp_path)
    counts = {}
    for since in ("15m", "15m ago", "7d ago", "today", "yesterday", now.date().isoformat()):
        out = mcp_guard("audit", "query", "--json", "--since", since, cwd=tmp_path)
        assert out.returncode == 0, (since, out.stderr)
        counts[since] = len(out.stdout.splitlines())
    assert counts["15m"] == counts["15m ago"] == 1 and counts["7d ago"] == 4
    bad = mcp_guard("audit", "query", "--since", "15m from now", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.startswith("mcp-guard: --since: unrecognised time")
    helped = mcp_guard("audit", "query", "--help", cwd=tmp_path)
    assert "15m ago" in " ".join(helped.stdout.split())


# -- 7. messages on stderr, no --name flag, a closed pipe ------------------------------------------


def test_not_found_messages_go_to_stderr(tmp_path: Path) -> None:
    _portal_config(tmp_path)
    cfg = ("--config", "guard.toml")
    for action in ("approve", "revoke"):
        out = mcp_guard("servers", action, "nope", *cfg, cwd=tmp_path)
        assert (out.returncode, out.stdout) == (1, ""), action
        assert "no server named 'nope'" in out.stderr
    key = ("--secrets-key", "secrets.key")
    out = mcp_guard("servers", "credentials", "delete", "notes", "--subject", "bob", *key, *cfg, cwd=tmp_path)
    assert (out.returncode, out.stdout) == (1, "") and "no credentials of 'bob'" in out.stderr
    dup = mcp_guard("servers", "add", "notes", "--url", "http://127.0.0.1:1/mcp", *cfg, cwd=tmp_path)
    assert dup.returncode == 2 and "already in the config file" in dup.stderr
    assert "--name" not in dup.stderr
    assert "--name" not in mcp_guard("servers", "add", "--help", cwd=tmp_path).stdout


def test_a_closed_pipe_ends_json_output_quietly(tmp_path: Path) -> None:
    populate(tmp_path)
    for args in (("audit", "query", "--json"), ("servers", "list", "--json"), ("keys", "list", "--json")):
        proc = subprocess.Popen(
            [sys.executable, "-m", "mcp_guard", *args],
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()  # the reader is gone before the command writes anything, like `| head -0`
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=60) == 141, (args, err)
        assert err == "", (args, err)

    shell = subprocess.run(
        f"{sys.executable} -m mcp_guard audit query --json | head -n 1",
        shell=True,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shell.returncode == 0 and "Traceback" not in shell.stderr
    assert json.loads(shell.stdout)["seq"] == 1
