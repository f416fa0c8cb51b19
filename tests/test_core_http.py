"""The guard over streamable HTTP with a real uvicorn server and a real mcp client."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.auth.settings import AuthSettings
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError

from mcp_guard import errors
from mcp_guard.guard import Guard
from mcp_guard.model import Principal
from mcp_guard.protocols import Credential

from .helpers import ListAuditor, RolePolicy, notes_server
from .http_util import free_port, serve
from .test_core_memory import first_mcp_error

MODES = ["legacy", "auto"]


class TokenTable:
    """An Authenticator plugin: fixed tokens to principals."""

    def __init__(self, table: dict[str, Principal]) -> None:
        self.table = table

    async def authenticate(self, credential: Credential) -> Principal | None:
        return self.table.get(credential.token or "")


ALICE = Principal("alice", roles=frozenset({"analyst"}), scopes=frozenset({"mcp"}))
BOB = Principal("bob", roles=frozenset({"viewer"}), scopes=frozenset({"mcp"}))
CAROL = Principal("carol", roles=frozenset({"analyst"}))  # no "mcp" scope
POLICY = {"analyst": {"add", "search_notes"}, "viewer": {"search_notes"}}


def client(url: str, token: str | None, mode: str) -> Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    transport = streamable_http_client(url + "/mcp", http_client=create_mcp_http_client(headers=headers))
    return Client(transport, mode=mode)  # type: ignore[arg-type]


def verified_app(port: int, auditor: ListAuditor) -> Any:
    guard = Guard(
        policy=RolePolicy(POLICY),
        authenticators=[TokenTable({"tok-alice": ALICE, "tok-bob": BOB, "tok-carol": CAROL})],
        auditor=auditor,
        server="notes",
    )
    from mcp.server.mcpserver import MCPServer

    base = f"http://127.0.0.1:{port}"
    server: MCPServer = notes_server()
    server = type(server)(
        "notes",
        token_verifier=guard.token_verifier(),
        auth=AuthSettings(issuer_url=base, resource_server_url=base + "/mcp", required_scopes=["mcp"]),
    )
    src = notes_server()
    for tool in src._tool_manager.list_tools():
        server._tool_manager._tools[tool.name] = tool
    guard.protect(server, read_env=False)
    from mcp_guard.integrations.http import loopback_security

    return guard.http_app(server, transport_security=loopback_security(port))


@pytest.mark.parametrize("mode", MODES)
async def test_bearer_flow_per_principal(mode: str) -> None:
    port = free_port()
    auditor = ListAuditor()
    with serve(verified_app(port, auditor), port) as url:
        async with client(url, "tok-alice", mode) as c:
            names = sorted(t.name for t in (await c.list_tools()).tools)
            assert names == ["add", "search_notes"]
            assert (await c.call_tool("add", {"a": 1, "b": 2})).structured_content == {"result": 3}
        async with client(url, "tok-bob", mode) as c:
            assert [t.name for t in (await c.list_tools()).tools] == ["search_notes"]
            with pytest.raises(MCPError) as exc:
                await c.call_tool("add", {"a": 1, "b": 2})
            assert exc.value.code == errors.ACCESS_DENIED
    subjects = {e.principal["subject"] for e in auditor.events if e.principal}
    assert subjects == {"alice", "bob"}
    assert all(e.transport == "http" for e in auditor.events if e.event == "request")


async def test_missing_and_bad_tokens_get_401_with_metadata() -> None:
    port = free_port()
    auditor = ListAuditor()
    with serve(verified_app(port, auditor), port) as url:
        async with httpx.AsyncClient() as http:
            body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
            hdrs = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
            r = await http.post(url + "/mcp", json=body, headers=hdrs)
            assert r.status_code == 401
            assert "resource_metadata=" in r.headers["www-authenticate"]
            r = await http.post(url + "/mcp", json=body, headers={**hdrs, "Authorization": "Bearer forged"})
            assert r.status_code == 401
            r = await http.post(
                url + "/mcp", json=body, headers={**hdrs, "Authorization": "Bearer tok-carol"}
            )
            assert r.status_code == 403 and "insufficient_scope" in r.headers["www-authenticate"]
            meta = await http.get(url + "/.well-known/oauth-protected-resource/mcp")
            assert meta.status_code == 200 and meta.json()["resource"].startswith(url)
    refused = [e for e in auditor.events if e.event == "authn"]
    # Each refusal leaves exactly one event, though two of them never reach the guard's verifier.
    assert [e.decision for e in refused] == ["deny", "deny", "deny"]
    assert refused[0].reasons[0] == "no credential presented (HTTP 401)"
    assert refused[0].error_code == errors.AUTHENTICATION_REQUIRED
    assert refused[2].reasons[0] == "credential lacks a required scope (insufficient_scope, HTTP 403)"
    assert all(e.source_ip == "127.0.0.1" for e in (refused[0], refused[2]))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("token", "code", "message"),
    [
        (None, errors.AUTHENTICATION_REQUIRED, "Authentication required"),
        ("forged", errors.AUTHENTICATION_REQUIRED, "Authentication required"),
        ("tok-carol", errors.ACCESS_DENIED, "Access denied"),
    ],
)
async def test_sdk_client_sees_the_refusal_not_a_generic_error(
    mode: str, token: str | None, code: int, message: str
) -> None:
    """The 401/403 of the SDK's auth layer carries a JSON-RPC error the SDK client surfaces."""
    port = free_port()
    with serve(verified_app(port, ListAuditor()), port) as url, pytest.raises(BaseException) as caught:
        async with client(url, token, mode) as c:
            await c.list_tools()
    error = first_mcp_error(caught.value)
    assert (error.code, error.message) == (code, message)


async def test_refusal_body_is_json_rpc_and_keeps_the_oauth_challenge() -> None:
    port = free_port()
    with serve(verified_app(port, ListAuditor()), port) as url:
        async with httpx.AsyncClient() as http:
            body = {"jsonrpc": "2.0", "id": 7, "method": "tools/list"}
            hdrs = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
            r = await http.post(url + "/mcp", json=body, headers={**hdrs, "Authorization": "Bearer forged"})
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]
    assert "resource_metadata=" in r.headers["www-authenticate"]
    data = r.json()
    assert data["jsonrpc"] == "2.0" and data["error"]["code"] == errors.AUTHENTICATION_REQUIRED
    assert data["error"]["data"]["error"] == "invalid_token"  # the OAuth error, for OAuth-minded readers


def anonymous_app(port: int, auditor: ListAuditor, *, middleware_only: bool = False) -> Any:
    guard = Guard(
        policy=RolePolicy({**POLICY, "guest": {"search_notes"}}),
        authenticators=[TokenTable({"tok-alice": ALICE})],
        anonymous=Principal("anonymous", roles=frozenset({"guest"})),
        auditor=auditor,
    )
    server = notes_server()
    if middleware_only:
        from mcp_guard.integrations.server import GuardMiddleware

        server.middleware.append(GuardMiddleware(guard, read_env=False))
    else:
        guard.protect(server, read_env=False)
    from mcp_guard.integrations.http import loopback_security

    return server.streamable_http_app(transport_security=loopback_security(port))


@pytest.mark.parametrize("mode", MODES)
async def test_anonymous_mode_reads_bearer_and_never_downgrades(mode: str) -> None:
    port = free_port()
    auditor = ListAuditor()
    with serve(anonymous_app(port, auditor), port) as url:
        async with client(url, None, mode) as c:
            assert [t.name for t in (await c.list_tools()).tools] == ["search_notes"]
        async with client(url, "tok-alice", mode) as c:
            assert sorted(t.name for t in (await c.list_tools()).tools) == ["add", "search_notes"]
        with pytest.raises(BaseException) as caught:
            async with client(url, "not-a-real-token", mode) as c:
                await c.list_tools()
        assert "Authentication required" in repr(caught.value) or "401" in repr(caught.value)


async def _param_header_probe(middleware_only: bool) -> tuple[list[tuple[int, str]], ListAuditor]:
    port = free_port()
    auditor = ListAuditor()
    with serve(anonymous_app(port, auditor, middleware_only=middleware_only), port) as url:
        async with httpx.AsyncClient() as http:
            outs = []
            for name in ("delete_notes", "no_such_tool"):
                body = {
                    "jsonrpc": "2.0",
                    "id": 7,
                    "method": "tools/call",
                    "params": {
                        "name": name,
                        "arguments": {"query": "x"},
                        "_meta": {
                            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                            "io.modelcontextprotocol/clientCapabilities": {},
                        },
                    },
                }
                hdrs = {
                    "Accept": "application/json, text/event-stream",
                    "Content-Type": "application/json",
                    "MCP-Protocol-Version": "2026-07-28",
                    "Mcp-Method": "tools/call",
                    "Mcp-Name": name,
                    "Mcp-Param-Query": "different",
                }
                r = await http.post(url + "/mcp", json=body, headers=hdrs)
                text = r.text.replace(name, "NAME")
                outs.append((r.status_code, text))
    return outs, auditor


async def test_hidden_tool_schema_lookup_looks_unknown_on_2026_http() -> None:
    """A tools/call with Mcp-Param headers for a hidden tool answers like one for an unknown tool."""
    outs, auditor = await _param_header_probe(middleware_only=False)
    assert outs[0] == outs[1]
    assert outs[0][0] == 200
    # The SDK's internal listing is not audited as a user action.
    assert not [e for e in auditor.events if e.method == "tools/list"]


async def test_schema_lookup_would_leak_without_protect() -> None:
    """Control: the bare middleware cannot hide the tool from the SDK's pre-middleware schema lookup."""
    outs, _ = await _param_header_probe(middleware_only=True)
    assert outs[0][0] == 400 and outs[1][0] != 400
