"""Run-time servers wait for approval; approvals live in the state store; the CLI drives them."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from mcp_guard.cli.main import main
from mcp_guard.errors import ConfigError
from mcp_guard.portal import Portal, Registry
from mcp_guard.store import MemoryStore

from .helpers import ListAuditor
from .test_portal_support import EXAMPLES, client, make_guard, portal_http, stdio


async def test_registry_round_trip_and_validation() -> None:
    registry = Registry(MemoryStore())
    entry = await registry.add({"name": "db", "url": "http://127.0.0.1:9/mcp"}, by="ops")
    assert entry.status == "pending" and entry.spec().url == "http://127.0.0.1:9/mcp"
    with pytest.raises(ConfigError, match="already registered"):
        await registry.add({"name": "db", "url": "http://127.0.0.1:9/mcp"})
    with pytest.raises(ConfigError) as exc:
        await registry.add({"name": "bad", "command": "x", "url": "http://h/mcp"})
    assert "exactly one" in str(exc.value)
    await registry.set_status("db", "approved", by="admin")
    got = await registry.get("db")
    assert got is not None and got.status == "approved" and got.changed_by == "admin"
    await registry.remove("db")
    assert await registry.entries() == []


async def _names(url: str) -> list[str]:
    async with client(url, "tok-alice") as c:
        return sorted(t.name for t in (await c.list_tools()).tools)


async def _eventually(url: str, check: Any, timeout: float = 15.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        names = await _names(url)
        if check(names):
            return names
        assert time.monotonic() < deadline, names
        await anyio.sleep(0.1)


async def test_runtime_servers_are_served_only_after_approval() -> None:
    store = MemoryStore()
    registry = Registry(store)
    auditor = ListAuditor()
    portal = Portal(
        make_guard(auditor=auditor),
        [stdio("notes", "notes_server.py")],
        registry=registry,
        registry_poll=0.2,
    )
    with portal_http(portal) as url:
        assert "notes__echo" in await _names(url)
        spec = stdio("weather", "weather_server.py").model_dump(exclude_defaults=True)
        await registry.add(spec)
        await anyio.sleep(0.6)
        assert not [n for n in await _names(url) if n.startswith("weather__")]
        await registry.set_status("weather", "approved")
        await _eventually(url, lambda n: "weather__forecast" in n)
        await registry.set_status("weather", "revoked")
        await _eventually(url, lambda n: "weather__forecast" not in n)
        # A configured server can be revoked too (the admin's kill switch), and re-approved.
        await registry.set_status("notes", "revoked")
        await _eventually(url, lambda n: "notes__echo" not in n)
        await registry.set_status("notes", "approved")
        await _eventually(url, lambda n: "notes__echo" in n)


async def test_runtime_url_servers_must_use_allowed_hosts() -> None:
    store = MemoryStore()
    registry = Registry(store)
    await registry.add({"name": "far", "url": "http://169.254.169.254/mcp"})
    await registry.set_status("far", "approved")
    async with Portal(make_guard(), registry=registry, start_timeout=0.5) as portal:
        assert "far" not in portal.upstreams


def _write_config(tmp_path: Path) -> Path:
    cfg = tmp_path / "guard.toml"
    cfg.write_text(
        f"""
[guard]
state = "sqlite:///state.db"
audit = ["sqlite:///audit.db"]

[[servers]]
name = "notes"
command = "{sys.executable}"
args = ["{EXAMPLES / "notes_server.py"}"]
"""
    )
    return cfg


def test_cli_add_list_approve_revoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = str(_write_config(tmp_path))
    assert main(["servers", "add", "db", "--url", "http://127.0.0.1:9000/mcp", "--config", cfg]) == 0
    assert main(["servers", "list", "--json", "--config", cfg]) == 0
    rows = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert {(r["name"], r["status"], r["source"]) for r in rows} == {
        ("notes", "approved", "config"),
        ("db", "pending", "registry"),
    }
    assert main(["servers", "approve", "db", "--config", cfg]) == 0
    assert main(["servers", "revoke", "notes", "--config", cfg]) == 0
    capsys.readouterr()
    assert main(["servers", "list", "--json", "--config", cfg]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["name"]: r["status"] for r in rows} == {"notes": "revoked", "db": "approved"}
    assert main(["servers", "approve", "nope", "--config", cfg]) == 1
    assert main(["servers", "add", "notes", "--url", "http://127.0.0.1:1/mcp", "--config", cfg]) == 2
    assert main(["servers", "add", "x", "--url", "ftp://h/mcp", "--config", cfg]) == 2
    assert main(["servers", "add", "bad name!", "--url", "http://127.0.0.1:1/mcp", "--config", cfg]) == 2


def test_serve_refuses_public_bind_and_bad_config(tmp_path: Path) -> None:
    cfg = _write_config(tmp_path)
    cfg.write_text(cfg.read_text() + '\n[listen]\nhost = "0.0.0.0"\n')
    run = [sys.executable, "-m", "mcp_guard", "serve", "--config", str(cfg)]
    out = subprocess.run(run, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "allow_public_bind" in out.stderr and "listen.host" in out.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text('[[servers]]\nname = "x"\ncommand = "a"\nurl = "http://127.0.0.1/mcp"\n')
    out = subprocess.run([*run[:-1], str(bad)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "bad.toml" in out.stderr and "servers" in out.stderr
