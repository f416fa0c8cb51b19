"""Only authenticated callers open 2025-11-25 sessions, and open sessions are capped.

A refused ``initialize`` used to leave a live session behind in the SDK's
session manager (for its 30-minute idle timeout): about 10,000 unauthenticated
requests filled the manager and every 2025-11-25 client got 503. The guard's
session gate now authenticates the opening request before the session manager
sees it (HTTP 401, -32001, audited), and caps sessions per principal and
overall (refused and audited past the cap).
"""

from __future__ import annotations

from typing import Any

import anyio
import httpx

from mcp_guard import errors
from mcp_guard.guard import Guard
from mcp_guard.integrations.http import loopback_security
from mcp_guard.portal import Portal

from ..helpers import ListAuditor, RolePolicy, notes_server
from ..http_util import INITIALIZE, free_port, serve
from ..test_core_http import client
from ..test_portal_support import make_guard, stdio
from .test_session_binding import POLICY, Tokens, delete, headers, open_session

N = 300


def guarded(auditor: ListAuditor, **app_kw: Any) -> tuple[Any, Any, int]:
    """A server behind ``guard.http_app`` without anonymous access: (app, server, port)."""
    port = free_port()
    guard = Guard(policy=RolePolicy(POLICY), authenticators=[Tokens()], auditor=auditor, server="notes")
    server = guard.protect(notes_server(), read_env=False)
    return guard.http_app(server, transport_security=loopback_security(port), **app_kw), server, port


def open_count(server: Any) -> int:
    return len(server.session_manager._server_instances)


async def flood(http: httpx.AsyncClient, url: str, n: int) -> list[httpx.Response]:
    """``n`` initializes without a valid credential, 20 at a time."""
    out: list[httpx.Response] = []

    async def one(i: int) -> None:
        token = None if i % 3 == 0 else "\x00bad" if i % 3 == 1 else f"forged-{i}"
        hdrs = headers(token if token != "\x00bad" else None)
        if token == "\x00bad":
            hdrs["Authorization"] = "Basic abc"  # malformed: presented but invalid
        out.append(await http.post(url + "/mcp", json=INITIALIZE, headers=hdrs))

    for start in range(0, n, 20):
        async with anyio.create_task_group() as tg:
            for i in range(start, min(start + 20, n)):
                tg.start_soon(one, i)
    return out


async def test_refused_initializes_create_no_sessions() -> None:
    auditor = ListAuditor()
    app, server, port = guarded(auditor)
    with serve(app, port) as url:
        async with httpx.AsyncClient(timeout=30) as http:
            answers = await flood(http, url, N)
            assert open_count(server) == 0
            assert {r.status_code for r in answers} == {401}
            assert not [r for r in answers if "mcp-session-id" in r.headers]
            body = answers[0].json()
            assert body["error"]["code"] == errors.AUTHENTICATION_REQUIRED
            assert body["error"]["message"] == "Authentication required"
            assert answers[0].headers["www-authenticate"].startswith("Bearer")
        async with client(url, "tok-alice", "legacy") as c:
            assert sorted(t.name for t in (await c.list_tools()).tools) == ["add", "search_notes"]
            assert open_count(server) == 1
    refused = [e for e in auditor.events if e.method == "http/authenticate" and e.event == "authn"]
    assert len(refused) == N  # one event each, not two
    assert all(e.decision == "deny" and e.error_code == errors.AUTHENTICATION_REQUIRED for e in refused)
    assert {e.reasons[0] for e in refused} >= {
        "no credential presented",
        "credential not recognised by any authenticator",
    }


async def test_portal_refused_initializes_create_no_sessions() -> None:
    auditor = ListAuditor()
    portal = Portal(make_guard(auditor=auditor), [stdio("notes", "notes_server.py")])
    port = free_port()
    with serve(portal.streamable_http_app(port=port), port) as url:
        async with httpx.AsyncClient(timeout=30) as http:
            answers = await flood(http, url, N)
            assert open_count(portal.server) == 0
            assert {r.status_code for r in answers} == {401}
            await open_session(http, url, "tok-alice")
            assert open_count(portal.server) == 1


async def test_sessions_per_principal_are_capped_by_closing_the_oldest() -> None:
    """At its cap a principal's oldest session makes room: a leaky client keeps working, a flood
    only evicts its own sessions."""
    auditor = ListAuditor()
    app, server, port = guarded(auditor, max_sessions_per_principal=3)
    with serve(app, port) as url:
        async with httpx.AsyncClient(timeout=30) as http:
            bobs = await open_session(http, url, "tok-bob")
            mine = [await open_session(http, url, "tok-alice") for _ in range(3)]
            newest = await open_session(http, url, "tok-alice")  # over the cap: the oldest goes
            assert open_count(server) == 4
            assert await delete(http, url, "tok-alice", mine[0]) == 404
            assert await delete(http, url, "tok-alice", newest) == 200
            for _ in range(5):
                await open_session(http, url, "tok-alice")
            assert await delete(http, url, "tok-bob", bobs) == 200  # Bob's own session survived
    evicted = [
        e for e in auditor.events if e.method == "http/session" and "oldest session closed" in e.reasons[0]
    ]
    assert evicted and evicted[0].principal and evicted[0].principal["subject"] == "alice"
    assert evicted[0].session_id == mine[0]


async def test_sessions_overall_are_capped() -> None:
    auditor = ListAuditor()
    app, server, port = guarded(auditor, max_sessions=2)
    with serve(app, port) as url:
        async with httpx.AsyncClient(timeout=30) as http:
            await open_session(http, url, "tok-alice")
            await open_session(http, url, "tok-bob")
            over = await http.post(url + "/mcp", json=INITIALIZE, headers=headers("tok-bob"))
            assert over.status_code == 503 and "mcp-session-id" not in over.headers
            assert open_count(server) == 2
    (event,) = [e for e in auditor.events if e.method == "http/session"]
    assert "2 open sessions in all" in event.reasons[0]


async def test_portal_caps_sessions_per_principal() -> None:
    auditor = ListAuditor()
    portal = Portal(make_guard(auditor=auditor), [stdio("notes", "notes_server.py")])
    port = free_port()
    with serve(portal.streamable_http_app(port=port, max_sessions_per_principal=1), port) as url:
        async with httpx.AsyncClient(timeout=30) as http:
            first = await open_session(http, url, "tok-alice")
            await open_session(http, url, "tok-alice")
            assert await delete(http, url, "tok-alice", first) == 404
            await open_session(http, url, "tok-bob")
            assert open_count(portal.server) == 2
