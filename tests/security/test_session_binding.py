"""2025-11-25 streamable HTTP sessions are bound to the principal that opened them.

Without ``[authn.oauth]`` the SDK does not know who the caller is, so it used to
serve any request carrying a valid ``Mcp-Session-Id``: Bob with his own key, or
anyone without one, could read Alice's notification stream (GET), send
requests on her session (POST) or end it (DELETE). The guard's session gate
now refuses those with the SDK's own "Session not found" (the same answer an
unknown id gets) and audits them. Each case here is served over real loopback
HTTP: the portal, a single server behind ``guard.http_app`` with anonymous
access, and the SDK OAuth path (where the SDK binds sessions as well).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer

from mcp_guard.guard import Guard
from mcp_guard.integrations.http import loopback_security
from mcp_guard.model import AuditEvent, Principal
from mcp_guard.portal import Portal
from mcp_guard.protocols import Credential

from ..helpers import ListAuditor, RolePolicy, notes_server
from ..http_util import INITIALIZE, MCP_HEADERS, free_port, serve
from ..test_portal_support import make_guard, portal_http, stdio

VERSION = "2025-11-25"
ALICE = Principal("alice", roles=frozenset({"analyst"}), scopes=frozenset({"mcp"}))
BOB = Principal("bob", roles=frozenset({"analyst"}), scopes=frozenset({"mcp"}))
GUEST = Principal("anonymous", roles=frozenset({"guest"}), auth_method="anonymous")
POLICY = {"analyst": {"add", "search_notes"}, "guest": {"search_notes"}}


class Tokens:
    async def authenticate(self, credential: Credential) -> Principal | None:
        return {"tok-alice": ALICE, "tok-bob": BOB}.get(credential.token or "")


# ---------------------------------------------------------------------- raw 2025-11-25 HTTP
def headers(token: str | None, session: str | None = None, **extra: str) -> dict[str, str]:
    out = dict(MCP_HEADERS)
    if token:
        out["Authorization"] = f"Bearer {token}"
    if session:
        out["Mcp-Session-Id"] = session
        out["MCP-Protocol-Version"] = VERSION
    out.update(extra)
    return out


async def open_session(http: httpx.AsyncClient, url: str, token: str | None) -> str:
    """initialize + notifications/initialized; the new session's id."""
    r = await http.post(url + "/mcp", json=INITIALIZE, headers=headers(token))
    assert r.status_code == 200, r.text
    assert '"error"' not in r.text, r.text
    session = r.headers["mcp-session-id"]
    note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    r = await http.post(url + "/mcp", json=note, headers=headers(token, session))
    assert r.status_code == 202, r.text
    return session


async def post(http: httpx.AsyncClient, url: str, token: str | None, session: str, method: str) -> int:
    params: dict[str, Any] = {"level": "debug"} if method == "logging/setLevel" else {}
    if method == "resources/unsubscribe":
        params = {"uri": "notes://all"}
    body = {"jsonrpc": "2.0", "id": 9, "method": method, "params": params}
    r = await http.post(url + "/mcp", json=body, headers=headers(token, session))
    return r.status_code


async def get_stream(http: httpx.AsyncClient, url: str, token: str | None, session: str) -> int:
    """Open the session's notification stream (SSE) and close it again; the HTTP status."""
    hdrs = headers(token, session, Accept="text/event-stream")
    async with http.stream("GET", url + "/mcp", headers=hdrs) as r:
        return r.status_code


async def delete(http: httpx.AsyncClient, url: str, token: str | None, session: str) -> int:
    r = await http.delete(url + "/mcp", headers=headers(token, session))
    return r.status_code


async def intruders_are_refused(
    http: httpx.AsyncClient, url: str, owner: str | None, session: str, intruders: list[str | None]
) -> None:
    """Every intruder gets 404 on GET, POST and DELETE; the owner keeps the session."""
    for token in intruders:
        assert await get_stream(http, url, token, session) == 404
        assert await post(http, url, token, session, "logging/setLevel") == 404
        assert await post(http, url, token, session, "resources/unsubscribe") == 404
        assert await delete(http, url, token, session) == 404
    # The owner's session survived all of it.
    assert await post(http, url, owner, session, "ping") == 200
    assert await get_stream(http, url, owner, session) == 200
    assert await delete(http, url, owner, session) == 200
    assert await post(http, url, owner, session, "ping") == 404  # ended by its owner


def refusals(auditor: ListAuditor, session: str) -> list[AuditEvent]:
    events = [e for e in auditor.events if e.method == "http/session" and e.session_id == session]
    return [e for e in events if e.decision != "allow"]  # the owner's own DELETE is on record too


def check_audit(auditor: ListAuditor, session: str, intruders: int, subjects: set[str | None]) -> None:
    events = refusals(auditor, session)
    assert len(events) == 4 * intruders  # GET, two POSTs, DELETE each
    assert all(e.decision == "deny" and e.event == "session" for e in events)
    assert all(e.source_ip == "127.0.0.1" for e in events)
    assert all(any("another principal" in r or "credential" in r for r in e.reasons) for e in events)
    assert {e.principal["subject"] if e.principal else None for e in events} == subjects


# ---------------------------------------------------------------------- the portal
@contextmanager
def portal(auditor: ListAuditor) -> Iterator[str]:
    guard = make_guard(auditor=auditor)
    with portal_http(Portal(guard, [stdio("notes", "notes_server.py")])) as url:
        yield url


async def test_portal_session_is_bound_to_its_principal() -> None:
    auditor = ListAuditor()
    with portal(auditor) as url:
        async with httpx.AsyncClient(timeout=30) as http:
            session = await open_session(http, url, "tok-alice")
            await intruders_are_refused(http, url, "tok-alice", session, ["tok-bob", None, "forged"])
    events = refusals(auditor, session)
    assert len(events) == 12
    assert {e.principal["subject"] if e.principal else None for e in events} == {"bob", None}
    unauthenticated = [e for e in events if e.principal is None]
    assert any("no credential presented" in r for e in unauthenticated for r in e.reasons)
    assert any("not recognised" in r for e in unauthenticated for r in e.reasons)


# ---------------------------------------------------------------------- one server, anonymous access
def anonymous_app(port: int, auditor: ListAuditor) -> Any:
    guard = Guard(
        policy=RolePolicy(POLICY), authenticators=[Tokens()], anonymous=GUEST, auditor=auditor, server="notes"
    )
    server = guard.protect(notes_server(), read_env=False)
    return guard.http_app(server, transport_security=loopback_security(port))


@contextmanager
def anonymous_server(auditor: ListAuditor) -> Iterator[str]:
    port = free_port()
    with serve(anonymous_app(port, auditor), port) as url:
        yield url


async def test_server_session_is_bound_to_its_principal_with_anonymous_access() -> None:
    auditor = ListAuditor()
    with anonymous_server(auditor) as url:
        async with httpx.AsyncClient(timeout=30) as http:
            session = await open_session(http, url, "tok-alice")
            await intruders_are_refused(http, url, "tok-alice", session, ["tok-bob", None])
    check_audit(auditor, session, 2, {"bob", "anonymous"})


async def test_anonymous_session_refuses_named_principals_and_its_id_is_the_secret() -> None:
    """An anonymous session is not Bob's; any anonymous caller holding its id is its owner (documented)."""
    auditor = ListAuditor()
    with anonymous_server(auditor) as url:
        async with httpx.AsyncClient(timeout=30) as http:
            session = await open_session(http, url, None)
            await intruders_are_refused(http, url, None, session, ["tok-bob", "tok-alice"])
    events = refusals(auditor, session)
    assert len(events) == 8 and {e.principal["subject"] for e in events if e.principal} == {"bob", "alice"}


async def test_a_bad_credential_on_a_bound_session_looks_like_an_unknown_session() -> None:
    """An invalid key on a live session answers exactly like any key on a session that does not exist."""
    auditor = ListAuditor()
    with anonymous_server(auditor) as url:
        async with httpx.AsyncClient(timeout=30) as http:
            session = await open_session(http, url, "tok-alice")
            live = await http.post(
                url + "/mcp",
                json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                headers=headers("nope", session),
            )
            unknown = await http.post(
                url + "/mcp",
                json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                headers=headers("tok-alice", "0" * 32),
            )
            assert (live.status_code, live.text) == (unknown.status_code, unknown.text) == (404, unknown.text)
            assert await post(http, url, "tok-alice", session, "ping") == 200
    (event,) = refusals(auditor, session)
    assert event.principal is None and "not recognised" in event.reasons[0]


# ---------------------------------------------------------------------- the SDK's OAuth path
def oauth_app(port: int, auditor: ListAuditor) -> Any:
    guard = Guard(policy=RolePolicy(POLICY), authenticators=[Tokens()], auditor=auditor, server="notes")
    base = f"http://127.0.0.1:{port}"
    server = MCPServer(
        "notes",
        token_verifier=guard.token_verifier(),
        auth=AuthSettings(
            issuer_url=base,
            resource_server_url=base + "/mcp",
            required_scopes=["mcp"],
            validate_token_resource=False,
        ),
    )

    @server.tool()
    def add(a: int, b: int) -> int:
        return a + b

    guard.protect(server, read_env=False)
    return guard.http_app(server, transport_security=loopback_security(port))


async def test_oauth_sessions_stay_bound_and_refusals_are_audited() -> None:
    """With the SDK's bearer auth the SDK binds sessions too; the gate adds the audit trail."""
    auditor = ListAuditor()
    port = free_port()
    with serve(oauth_app(port, auditor), port) as url:
        async with httpx.AsyncClient(timeout=30) as http:
            session = await open_session(http, url, "tok-alice")
            for method in ("GET", "DELETE"):
                r = await http.request(method, url + "/mcp", headers=headers(None, session))
                assert r.status_code == 401 and "resource_metadata=" in r.headers["www-authenticate"]
            await intruders_are_refused(http, url, "tok-alice", session, ["tok-bob"])
    events = refusals(auditor, session)
    assert len(events) == 4 and all(e.principal and e.principal["subject"] == "bob" for e in events)
    sdk_401s = [
        e for e in auditor.events if e.reasons and e.reasons[0] == "no credential presented (HTTP 401)"
    ]
    assert len(sdk_401s) == 2  # the SDK's own refusals, audited once each


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_sdk_clients_still_work_through_the_gate(mode: str) -> None:
    from ..test_core_http import client

    auditor = ListAuditor()
    with anonymous_server(auditor) as url:
        async with client(url, "tok-alice", mode) as c:
            assert sorted(t.name for t in (await c.list_tools()).tools) == ["add", "search_notes"]
        async with client(url, None, mode) as c:
            assert [t.name for t in (await c.list_tools()).tools] == ["search_notes"]
    assert not [e for e in auditor.events if e.method == "http/session" and e.decision != "allow"]
