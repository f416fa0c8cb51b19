"""Per-user upstream credentials: sealed at rest, injected per caller, one pooled stdio process per user."""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.exceptions import MCPError

from mcp_guard.cli.main import main
from mcp_guard.config import UpstreamSection
from mcp_guard.errors import ConfigError, GuardUnavailable
from mcp_guard.guard import Guard
from mcp_guard.model import Principal
from mcp_guard.portal import Portal
from mcp_guard.portal.credentials import CredentialBroker, SecretBox, load_key
from mcp_guard.protocols import Credential
from mcp_guard.store import MemoryStore, open_store

from .helpers import ListAuditor
from .http_util import free_port, serve
from .test_portal_support import EXAMPLES, ServerPolicy, client, portal_http

KEY = bytes(range(32))
PEOPLE = {
    "tok-alice": Principal("alice", roles=frozenset({"staff"}), tenant="acme"),
    "tok-bob": Principal("bob", roles=frozenset({"staff"}), tenant="acme"),
    "tok-carol": Principal("carol", roles=frozenset({"staff"}), tenant="globex"),
}


class People:
    async def authenticate(self, credential: Credential) -> Principal | None:
        return PEOPLE.get(credential.token or "")


def guard(auditor: ListAuditor | None = None) -> Guard:
    policy = ServerPolicy({"staff": {("whoami", "*"), ("notes", "*")}})
    return Guard(policy=policy, authenticators=[People()], auditor=auditor or ListAuditor(), server="portal")


def whoami_stdio(**kw: Any) -> UpstreamSection:
    return UpstreamSection(
        name="whoami", command=sys.executable, args=[str(EXAMPLES / "whoami_server.py")], **kw
    )


async def whoami(url: str, token: str) -> dict[str, Any]:
    async with client(url, token) as c:
        result = await c.call_tool("whoami__whoami", {})
        assert not result.is_error, result
        data: dict[str, Any] = result.structured_content or json.loads(result.content[0].text)  # type: ignore[union-attr]
        return data


# ---------------------------------------------------------------------------- sealing


def test_secret_box_binds_ciphertext_to_its_owner() -> None:
    box = SecretBox(KEY)
    sealed = box.seal(b"ghp_secret", b"alice")
    assert b"ghp_secret" not in sealed and box.open(sealed, b"alice") == b"ghp_secret"
    assert box.seal(b"ghp_secret", b"alice") != sealed  # fresh nonce each time
    with pytest.raises(GuardUnavailable):
        box.open(sealed, b"bob")
    with pytest.raises(GuardUnavailable):
        box.open(sealed[:-1] + bytes([sealed[-1] ^ 1]), b"alice")
    with pytest.raises(GuardUnavailable):
        SecretBox(bytes(32)).open(sealed, b"alice")


def test_key_from_env_or_a_0600_file(tmp_path: Path) -> None:
    file = tmp_path / "keys" / "secrets.key"
    key = load_key(file, env={})
    assert len(key) == 32 and stat.S_IMODE(file.stat().st_mode) == 0o600
    assert load_key(file, env={}) == key
    assert load_key(file, env={"MCP_GUARD_SECRETS_KEY": KEY.hex()}) == KEY
    with pytest.raises(ConfigError, match="32-byte"):
        load_key(file, env={"MCP_GUARD_SECRETS_KEY": "short"})
    os.chmod(file, 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_key(file, env={})


async def test_broker_stores_sealed_values_per_scope() -> None:
    store = MemoryStore()
    broker = CredentialBroker(store, SecretBox(KEY), cache_ttl=0)
    await broker.set("gh", "subject", "alice", env={"GITHUB_TOKEN": "ghp_alice"})
    for key in await store.keys(""):
        assert b"ghp_alice" not in (await store.get(key) or b"")
    assert await broker.scope("gh") == "subject" and await broker.owners("gh") == ["alice"]
    assert await broker.names("gh", "alice") == {"env": ["GITHUB_TOKEN"], "headers": []}
    got = await broker.for_principal("gh", PEOPLE["tok-alice"])
    assert got is not None and got.env == {"GITHUB_TOKEN": "ghp_alice"}
    assert await broker.for_principal("gh", PEOPLE["tok-bob"]) is None
    with pytest.raises(ConfigError, match="kept per subject"):
        await broker.set("gh", "tenant", "acme", env={"GITHUB_TOKEN": "x"})
    with pytest.raises(ConfigError, match="at least one"):
        await broker.set("gh", "subject", "bob")
    # A sealed value copied under another owner's key does not open.
    await store.set("portal:cred:gh:subject:bob", await store.get("portal:cred:gh:subject:alice") or b"")
    with pytest.raises(GuardUnavailable):
        await broker.for_principal("gh", PEOPLE["tok-bob"])
    assert await broker.delete("gh") == 2 and await broker.scope("gh") is None


# ---------------------------------------------------------------------------- through the portal


async def test_stdio_upstream_runs_one_process_per_user_with_their_own_secret() -> None:
    broker = CredentialBroker(MemoryStore(), SecretBox(KEY))
    await broker.set("whoami", "subject", "alice", env={"SERVICE_TOKEN": "svc-alice"})
    await broker.set("whoami", "subject", "bob", env={"SERVICE_TOKEN": "svc-bob"})
    auditor = ListAuditor()
    portal = Portal(
        guard(auditor),
        [whoami_stdio(env={"SHARED_SETTING": "1"})],
        credentials=broker,
        private_idle=3.0,  # longer than a process start on a loaded machine
    )
    with portal_http(portal) as url:
        alice, bob = await whoami(url, "tok-alice"), await whoami(url, "tok-bob")
        assert alice["service_token"] == "svc-alice" and bob["service_token"] == "svc-bob"
        assert alice["pid"] != bob["pid"]
        shared_pid = portal.upstreams["whoami"].describe()
        assert shared_pid["state"] == "up"
        # The caller's own token never reaches the upstream; neither does the portal's environment.
        for seen in (alice, bob):
            assert "SHARED_SETTING" in seen["env_names"] and "MCP_GUARD_TOKEN" not in seen["env_names"]
            assert "tok-alice" not in json.dumps(seen) and "tok-bob" not in json.dumps(seen)
        assert (await whoami(url, "tok-alice"))["pid"] == alice["pid"]  # pooled
        # Carol has no credentials: refused, never served through the shared process.
        async with client(url, "tok-carol") as c:
            with pytest.raises(MCPError) as exc:
                await c.call_tool("whoami__whoami", {})
        assert "no upstream credentials" in exc.value.error.message
        # The refusal is the call's one event, with the reason.
        assert any(
            e.method == "tools/call" and e.decision == "deny" and "no upstream credentials" in e.reasons[0]
            for e in auditor.events
        )
        # Rotation: the next call runs with the new secret (a fresh process).
        await broker.set("whoami", "subject", "alice", env={"SERVICE_TOKEN": "svc-alice-2"})
        broker._forget("whoami")
        rotated = await whoami(url, "tok-alice")
        assert rotated["service_token"] == "svc-alice-2" and rotated["pid"] != alice["pid"]
        # Idle timeout: the pooled process is closed and a later call starts a new one.
        await anyio.sleep(5.0)
        assert (await whoami(url, "tok-bob"))["pid"] != bob["pid"]


async def test_tenant_scope_shares_one_process_per_tenant() -> None:
    broker = CredentialBroker(MemoryStore(), SecretBox(KEY))
    await broker.set("whoami", "tenant", "acme", env={"SERVICE_TOKEN": "svc-acme"})
    portal = Portal(guard(), [whoami_stdio()], credentials=broker)
    with portal_http(portal) as url:
        alice, bob = await whoami(url, "tok-alice"), await whoami(url, "tok-bob")
        assert alice["service_token"] == bob["service_token"] == "svc-acme"
        assert alice["pid"] == bob["pid"]
        async with client(url, "tok-carol") as c:
            with pytest.raises(MCPError):
                await c.call_tool("whoami__whoami", {})


@contextmanager
def http_whoami() -> Iterator[str]:
    server = MCPServer("whoami")

    @server.tool()
    def whoami(ctx: Context) -> dict[str, Any]:
        headers = {k.lower(): v for k, v in (ctx.headers or {}).items()}
        return {
            "authorization": headers.get("authorization"),
            "service_token": headers.get("x-service-token"),
        }

    port = free_port()
    with serve(server.streamable_http_app(), port) as url:
        yield url + "/mcp"


async def test_url_upstream_gets_the_callers_headers_never_their_token() -> None:
    broker = CredentialBroker(MemoryStore(), SecretBox(KEY))
    await broker.set("whoami", "subject", "alice", headers={"Authorization": "Bearer up-alice"})
    await broker.set("whoami", "subject", "bob", headers={"X-Service-Token": "up-bob"})
    with http_whoami() as upstream_url:
        spec = UpstreamSection(name="whoami", url=upstream_url)
        with portal_http(Portal(guard(), [spec], credentials=broker)) as url:
            alice, bob = await whoami(url, "tok-alice"), await whoami(url, "tok-bob")
    assert alice == {"authorization": "Bearer up-alice", "service_token": None}
    assert bob == {"authorization": None, "service_token": "up-bob"}


def test_cli_sets_lists_and_deletes_credentials(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = f"sqlite:///{tmp_path / 'state.db'}"
    os.environ["MCP_GUARD_SECRETS_KEY"] = KEY.hex()
    try:
        base = ["servers", "credentials"]
        assert (
            main([*base, "set", "gh", "--subject", "alice", "--env", "GITHUB_TOKEN=ghp_a", "--state", state])
            == 0
        )
        assert main([*base, "set", "gh", "--tenant", "acme", "--env", "X=1", "--state", state]) == 2
        assert main([*base, "set", "gh", "--subject", "bob", "--state", state]) == 2
        capsys.readouterr()
        assert main([*base, "list", "gh", "--json", "--state", state]) == 0
        out = capsys.readouterr().out
        assert "ghp_a" not in out
        assert json.loads(out) == {
            "server": "gh",
            "scope": "subject",
            "owners": {"alice": {"env": ["GITHUB_TOKEN"], "headers": []}},
        }

        async def sealed() -> bytes:
            store = open_store(state)
            try:
                return await store.get("portal:cred:gh:subject:alice") or b""
            finally:
                await store.aclose()

        raw = anyio.run(sealed)
        assert raw and b"ghp_a" not in raw
        assert main([*base, "delete", "gh", "--subject", "alice", "--state", state]) == 0
        assert main([*base, "delete", "gh", "--subject", "alice", "--state", state]) == 1
    finally:
        del os.environ["MCP_GUARD_SECRETS_KEY"]


async def test_declared_scope_refuses_callers_before_any_secret_is_stored() -> None:
    """`credentials = "subject"` in the config: no shared fallback even while the store is empty."""
    broker = CredentialBroker(MemoryStore(), SecretBox(KEY), declared={"whoami": "subject"})
    assert await broker.scope("whoami") == "subject"
    with pytest.raises(ConfigError):
        await broker.set("whoami", "tenant", "acme", env={"SERVICE_TOKEN": "x"})
    portal = Portal(guard(), [whoami_stdio(credentials="subject")], credentials=broker)
    with portal_http(portal) as url:
        async with client(url, "tok-alice") as c:
            with pytest.raises(MCPError) as exc:
                await c.call_tool("whoami__whoami", {})
        assert "no upstream credentials" in exc.value.error.message
        await broker.set("whoami", "subject", "alice", env={"SERVICE_TOKEN": "svc-alice"})
        broker._forget("whoami")
        assert (await whoami(url, "tok-alice"))["service_token"] == "svc-alice"


def test_portal_settings_come_from_the_config(tmp_path: Path) -> None:
    from mcp_guard.config import load_config

    (tmp_path / "guard.toml").write_text(
        "[guard]\nstate = 'memory://'\naudit = ['logging://']\n\n"
        "[portal]\nlockdown_key_file = 'keys/lockdown.pem'\npage_size = 7\n\n"
        "[listen]\ntls_certfile = 'tls/cert.pem'\ntls_keyfile = 'tls/key.pem'\n\n"
        "[[servers]]\nname = 'whoami'\ncommand = 'python'\ncredentials = 'tenant'\ncallbacks = true\n"
    )
    config = load_config(tmp_path / "guard.toml")
    portal = Portal.from_guard_config(config)
    assert portal.page_size == 7 and portal.callbacks == frozenset({"whoami"})
    assert portal.lockdown is not None and (tmp_path / "keys" / "lockdown.pem").is_file()
    assert portal.listen.tls_certfile == str(tmp_path / "tls" / "cert.pem")
    assert portal.credentials is not None and portal.credentials.declared == {"whoami": "tenant"}
