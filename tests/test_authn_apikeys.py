"""API keys: configured by digest, created in the state store, revoked, expired; the keys CLI."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mcp_guard.authn import (
    ApiKeyAuthenticator,
    AuthenticatorChain,
    create_api_key,
    list_api_keys,
    revoke_api_key,
)
from mcp_guard.authn.api_keys import ConfiguredKey
from mcp_guard.errors import AuthenticationError
from mcp_guard.protocols import Credential
from mcp_guard.store import MemoryStore

ROOT = Path(__file__).resolve().parents[1]


async def test_configured_key_by_digest() -> None:
    key = "a-long-random-configured-key-000000000000"
    auth = ApiKeyAuthenticator(
        [ConfiguredKey(hashlib.sha256(key.encode()).hexdigest(), "alice", roles=("analyst",), tenant="acme")]
    )
    principal = await auth.authenticate(Credential(key))
    assert principal is not None
    assert (principal.subject, principal.roles, principal.tenant) == ("alice", {"analyst"}, "acme")
    assert principal.auth_method == "api_key"
    assert await auth.authenticate(Credential(key + "x")) is None


async def test_stored_key_lifecycle() -> None:
    store = MemoryStore()
    key, record = await create_api_key(store, "svc", roles=["reader"], tenant="t1", expires_in=3600)
    assert key.startswith(f"mcpg_{record.id}_")
    raw = await store.get(f"authn:apikey:{record.id}")
    assert raw is not None and key.encode() not in raw  # only the hash is stored
    auth = ApiKeyAuthenticator([], store)
    principal = await auth.authenticate(Credential(key))
    assert principal is not None and principal.subject == "svc" and principal.credential_id == record.id
    ((listed, used),) = await list_api_keys(store)
    assert listed.id == record.id and used is not None
    # Same id, wrong secret.
    with pytest.raises(AuthenticationError, match="does not match"):
        await auth.authenticate(Credential(key[:-2] + "zz"))
    with pytest.raises(AuthenticationError, match="unknown API key"):
        await auth.authenticate(Credential("mcpg_000000000000_secret"))
    with pytest.raises(AuthenticationError, match="malformed"):
        await auth.authenticate(Credential("mcpg_../../x_secret"))
    assert await revoke_api_key(store, record.id)
    with pytest.raises(AuthenticationError, match="revoked"):
        await auth.authenticate(Credential(key))
    assert not await revoke_api_key(store, "ffffffffffff")


async def test_expired_key_refused() -> None:
    store = MemoryStore()
    now = [1000.0]
    key, _ = await create_api_key(store, "svc", expires_in=10, clock=lambda: now[0])
    auth = ApiKeyAuthenticator([], store, clock=lambda: now[0])
    assert await auth.authenticate(Credential(key)) is not None
    now[0] += 11
    with pytest.raises(AuthenticationError, match="expired"):
        await auth.authenticate(Credential(key))


async def test_revocation_reaches_cached_session() -> None:
    store = MemoryStore()
    key, record = await create_api_key(store, "svc")
    chain = AuthenticatorChain([ApiKeyAuthenticator([], store)])
    await chain.resolve(Credential(key))
    await revoke_api_key(store, record.id, chain.revocations)
    with pytest.raises(AuthenticationError, match="revoked"):
        await chain.resolve(Credential(key))


def run_cli(*args: str, cwd: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mcp_guard.cli.main", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_keys_cli_create_check_revoke(tmp_path: Path) -> None:
    config = tmp_path / "guard.toml"
    config.write_text('[guard]\nstate = "sqlite:///state.db"\n')
    created = run_cli(
        "keys",
        "create",
        "--subject",
        "bot",
        "--role",
        "reader",
        "--tenant",
        "acme",
        "--expires",
        "30d",
        "--config",
        str(config),
        cwd=tmp_path,
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("mcpg_") and "only its hash was kept" in created.stderr
    assert key not in (tmp_path / "state.db").read_bytes().decode("latin-1")

    checked = run_cli("auth", "check", "--config", str(config), "--token", key, cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    principal = json.loads(checked.stdout)
    assert (
        principal["subject"] == "bot" and principal["roles"] == ["reader"] and principal["tenant"] == "acme"
    )

    listing = json.loads(run_cli("keys", "list", "--json", "--config", str(config), cwd=tmp_path).stdout)
    assert listing[0]["subject"] == "bot" and listing[0]["revoked"] is None and listing[0]["expires"]
    key_id = listing[0]["id"]

    revoked = run_cli("keys", "revoke", key_id, "--config", str(config), cwd=tmp_path)
    assert revoked.returncode == 0, revoked.stderr
    refused = run_cli("auth", "check", "--config", str(config), "--token", key, cwd=tmp_path)
    assert refused.returncode == 1
    assert "revoked" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert run_cli("keys", "revoke", "ffffffffffff", "--config", str(config), cwd=tmp_path).returncode == 1


def test_keys_cli_bad_expiry_is_config_error(tmp_path: Path) -> None:
    result = run_cli(
        "keys", "create", "--subject", "x", "--expires", "soon", "--state", "memory://", cwd=tmp_path
    )
    assert result.returncode == 2
    assert "--expires" in result.stderr and "Traceback" not in result.stderr


def test_keys_hash_matches_config_digest(tmp_path: Path) -> None:
    result = run_cli("keys", "hash", cwd=tmp_path, stdin="secret-key\n")
    assert result.stdout.strip() == hashlib.sha256(b"secret-key").hexdigest()
