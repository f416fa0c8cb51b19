"""A real MCP client over streamable HTTP against a real server using our authenticators.

The TokenVerifier here is a minimal stand-in for the guard's own adapter: it
proves that the authentication chain plus login routes give MCP clients the
standard 401 / RFC 9728 / 403 insufficient_scope flow.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx
import uvicorn
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from mcp.shared._httpx_utils import create_mcp_http_client

from mcp_guard.authn import (
    AuthenticatorChain,
    build_authentication,
    build_login_service,
    create_api_key,
    totp,
)
from mcp_guard.authn.config import AuthnSettings
from mcp_guard.authn.passwords import hash_password
from mcp_guard.authn.users import User, UsersFile
from mcp_guard.errors import GuardError
from mcp_guard.protocols import Credential
from mcp_guard.store import MemoryStore

from .http_util import INITIALIZE, MCP_HEADERS
from .test_authn_jwt import Recorder

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
PASSWORD = "a sufficiently long passphrase"


class Verifier:
    def __init__(self, chain: AuthenticatorChain) -> None:
        self.chain = chain

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            p = await self.chain.resolve(Credential(token, source="http"))
        except GuardError:
            return None
        scopes = sorted(p.scopes)
        return AccessToken(
            token=token,
            client_id=p.subject,
            subject=p.subject,
            scopes=scopes,
            expires_at=int(p.expires_at) if p.expires_at else None,
        )


@asynccontextmanager
async def guarded(tmp_path: Path) -> AsyncIterator[tuple[str, MemoryStore, Recorder]]:
    UsersFile(tmp_path / "users.json").put(User("alice", hash_password(PASSWORD, "scrypt"), SECRET))
    settings = AuthnSettings.model_validate(
        {
            "passwords": {"users_file": "users.json"},
            "issuer": {"keys_dir": "keys", "scopes": ["mcp"]},
            "oauth": {"issuer_url": "https://idp.example", "resource_server_url": "http://127.0.0.1/mcp"},
        }
    )
    store = MemoryStore()
    auditor = Recorder()
    chain = build_authentication(settings, store, tmp_path, auditor=auditor)
    service = build_login_service(settings, store, tmp_path, auditor=auditor)

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    server = MCPServer(
        "notes",
        token_verifier=Verifier(chain),
        auth=AuthSettings(
            issuer_url=base,
            resource_server_url=f"{base}/mcp",
            required_scopes=["mcp"],
            validate_token_resource=False,
        ),
    )

    @server.tool()
    def whoami() -> str:
        token = get_access_token()
        return token.subject if token and token.subject else "?"

    from mcp_guard.authn import login_routes

    for route in login_routes(service):
        server.custom_route(route.path, methods=sorted(route.methods or []))(route.endpoint)
    app = server.streamable_http_app()
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    web = uvicorn.Server(config)
    async with anyio.create_task_group() as tg:
        tg.start_soon(web.serve, [sock])
        with anyio.fail_after(10):
            while not web.started:
                await anyio.sleep(0.02)
        yield base, store, auditor
        web.should_exit = True


async def test_standard_401_flow_then_login_then_call(tmp_path: Path) -> None:
    async with guarded(tmp_path) as (base, store, auditor):
        await _scenario(base, store, auditor)


async def _scenario(base: str, store: MemoryStore, auditor: Recorder) -> None:
    async with httpx.AsyncClient(base_url=base) as http:
        init, headers = INITIALIZE, MCP_HEADERS
        anonymous = await http.post("/mcp", json=init, headers=headers)
        assert anonymous.status_code == 401
        challenge = anonymous.headers["www-authenticate"]
        assert challenge.startswith("Bearer") and "resource_metadata=" in challenge
        forged = await http.post(
            "/mcp", json=init, headers={**headers, "Authorization": "Bearer eyJhbGciOiJub25lIn0.e30."}
        )
        assert forged.status_code == 401
        assert any("not recognised" in e.reasons[0] for e in auditor.events)  # the SDK's 401 was audited
        metadata = await http.get("/.well-known/oauth-protected-resource/mcp")
        assert metadata.status_code == 200 and metadata.json()["resource"].endswith("/mcp")

        code = totp.code_at(SECRET, totp.current_step())
        login = await http.post("/login", json={"username": "alice", "password": PASSWORD, "totp": code})
        assert login.status_code == 200, login.text
        token = login.json()["access_token"]

        # An API key without the required scope: authenticated but not authorised -> 403.
        key, _ = await create_api_key(store, "bot", scopes=["other"])
        weak = await http.post("/mcp", json=init, headers={**headers, "Authorization": f"Bearer {key}"})
        assert weak.status_code == 403 and "insufficient_scope" in weak.headers["www-authenticate"]

    # `mcp-guard login --url` against the running login endpoint (the stdio user's path).
    code = totp.code_at(SECRET, totp.current_step() + 1)  # the previous code was used already
    cli = await anyio.to_thread.run_sync(
        lambda: subprocess.run(
            [
                sys.executable,
                "-m",
                "mcp_guard.cli.main",
                "login",
                "--url",
                f"{base}/login",
                "-u",
                "alice",
                "--password-stdin",
                "--totp",
                code,
                "--export",
            ],
            input=PASSWORD + "\n",
            capture_output=True,
            text=True,
            timeout=60,
        )
    )
    assert cli.returncode == 0, cli.stderr
    assert cli.stdout.startswith("export MCP_GUARD_TOKEN=ey")

    http_client = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    async with Client(streamable_http_client(f"{base}/mcp", http_client=http_client)) as client:
        result = await client.call_tool("whoami", {})
        assert result.content[0].text == "alice"  # type: ignore[union-attr]


async def test_guard_verifier_with_oauth_settings_audits_every_sdk_refusal() -> None:
    """The guard's own adapter, ``[authn.oauth]`` through ``auth_settings`` and the refusal audit."""
    from mcp_guard import Guard
    from mcp_guard.authn.config import OAuthConfig
    from mcp_guard.integrations.http import auth_settings

    store = MemoryStore()
    auditor = Recorder()
    chain = build_authentication(AuthnSettings(), store, Path("."))
    guard = Guard(resolver=chain, auditor=auditor, server="notes")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    oauth = OAuthConfig(
        issuer_url="https://idp.example", resource_server_url=f"{base}/mcp", required_scopes=["mcp"]
    )
    server = MCPServer("notes", token_verifier=guard.token_verifier(), auth=auth_settings(oauth))

    @server.tool()
    def whoami() -> str:
        token = get_access_token()
        return token.subject if token and token.subject else "?"

    app = guard.http_app(server)
    web = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    good, _ = await create_api_key(store, "alice", scopes=["mcp"])
    weak, _ = await create_api_key(store, "bot", scopes=["other"])
    init, headers = INITIALIZE, MCP_HEADERS
    async with anyio.create_task_group() as tg:
        tg.start_soon(web.serve, [sock])
        with anyio.fail_after(10):
            while not web.started:
                await anyio.sleep(0.02)
        async with httpx.AsyncClient(base_url=base) as http:
            none = await http.post("/mcp", json=init, headers=headers)
            assert none.status_code == 401 and "resource_metadata=" in none.headers["www-authenticate"]
            assert auditor.events[-1].event == "authn"
            assert auditor.events[-1].reasons[0] == "no credential presented (HTTP 401)"
            assert auditor.events[-1].source_ip == "127.0.0.1"

            count = len(auditor.events)
            forged = await http.post(
                "/mcp", json=init, headers={**headers, "Authorization": "Bearer mcpg_x_y"}
            )
            assert forged.status_code == 401
            assert len(auditor.events) == count + 1  # recorded once, by the verifier
            assert "malformed API key" in auditor.events[-1].reasons[0]

            scoped = await http.post(
                "/mcp", json=init, headers={**headers, "Authorization": f"Bearer {weak}"}
            )
            assert scoped.status_code == 403 and "insufficient_scope" in scoped.headers["www-authenticate"]
            assert "insufficient_scope" in auditor.events[-1].reasons[0]

            metadata = await http.get("/.well-known/oauth-protected-resource/mcp")
            assert [u.rstrip("/") for u in metadata.json()["authorization_servers"]] == [
                "https://idp.example"
            ]
            assert metadata.json()["scopes_supported"] == ["mcp"]

        http_client = create_mcp_http_client(headers={"Authorization": f"Bearer {good}"})
        async with Client(streamable_http_client(f"{base}/mcp", http_client=http_client)) as client:
            result = await client.call_tool("whoami", {})
            assert result.content[0].text == "alice"  # type: ignore[union-attr]
        web.should_exit = True
