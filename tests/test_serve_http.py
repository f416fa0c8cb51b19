"""``guard.serve_http`` / ``guard.http_server``: a guarded server on streamable HTTP in one call."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import httpx
import pytest
from mcp.shared.exceptions import MCPError

from mcp_guard import ConfigError, Guard
from mcp_guard.integrations.server import GuardMiddleware
from mcp_guard.telemetry import Telemetry

from .helpers import ListAuditor, RolePolicy, notes_server
from .http_util import INITIALIZE, MCP_HEADERS, free_port
from .test_core_http import ALICE, BOB, TokenTable, client


@contextmanager
def running(server: Any) -> Iterator[str]:
    """Run a ``uvicorn.Server`` in a thread; yield its base URL."""
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def make_guard(auditor: ListAuditor, **kw: Any) -> Guard:
    return Guard(
        policy=RolePolicy({"analyst": {"add", "search_notes"}, "viewer": {"search_notes"}}),
        authenticators=[TokenTable({"tok-alice": ALICE, "tok-bob": BOB})],
        auditor=auditor,
        server="notes",
        **kw,
    )


def test_one_call_serves_a_guarded_server_with_the_standard_401() -> None:
    auditor = ListAuditor()
    guard = make_guard(auditor, telemetry=Telemetry())
    mcp = notes_server()  # not protected yet: the helper installs the guard

    async def scenario(url: str) -> None:
        async with client(url, "tok-bob", "legacy") as c:
            assert [t.name for t in (await c.list_tools()).tools] == ["search_notes"]
            with pytest.raises(MCPError):
                await c.call_tool("add", {"a": 1, "b": 2})
        async with httpx.AsyncClient() as http:
            anonymous = await http.post(url + "/mcp", json=INITIALIZE, headers=MCP_HEADERS)
            assert anonymous.status_code == 401
            assert "resource_metadata" in anonymous.headers["www-authenticate"]
            rebinding = await http.post(
                url + "/mcp",
                json=INITIALIZE,
                headers={**MCP_HEADERS, "Host": "evil.example", "Authorization": "Bearer tok-bob"},
            )
            assert rebinding.status_code in (403, 421)

    with running(guard.http_server(mcp, port=free_port())) as url:
        anyio.run(scenario, url)
    assert sum(isinstance(m, GuardMiddleware) for m in mcp._lowlevel_server.middleware) == 1
    assert [(e.target, e.decision) for e in auditor.events if e.method == "tools/call"] == [("add", "deny")]
    assert any(e.method == "http/authenticate" and e.decision == "deny" for e in auditor.events)
    assert guard.telemetry is not None and guard.telemetry.metrics is not None
    counted = guard.telemetry.metrics.snapshot().requests
    assert counted[("http/authenticate", "inbound", "deny", "refused")] == 1  # the SDK's own 401


def test_an_already_protected_server_is_not_guarded_twice() -> None:
    guard = make_guard(ListAuditor())
    mcp = guard.protect(notes_server())
    guard.http_server(mcp, port=free_port())
    assert sum(isinstance(m, GuardMiddleware) for m in mcp._lowlevel_server.middleware) == 1


def test_protecting_twice_is_refused_instead_of_ignoring_the_second_options() -> None:
    guard = make_guard(ListAuditor())
    mcp = guard.protect(notes_server())
    with pytest.raises(RuntimeError, match="already guarded"):
        guard.protect(mcp, principal=BOB)


def test_a_public_bind_is_refused_unless_allowed() -> None:
    guard = make_guard(ListAuditor())
    with pytest.raises(ConfigError, match="allow_public_bind"):
        guard.http_server(notes_server(), host="0.0.0.0", port=free_port())
    server = guard.http_server(notes_server(), host="0.0.0.0", port=free_port(), allow_public_bind=True)
    assert server.config.host == "0.0.0.0"


def test_fastmcp_in_one_call() -> None:
    fastmcp = pytest.importorskip("fastmcp")
    from fastmcp.client.transports import StreamableHttpTransport

    mcp = fastmcp.FastMCP("notes")

    @mcp.tool()
    def search_notes(query: str) -> str:
        return f"found {query}"

    auditor = ListAuditor()
    guard = make_guard(auditor)

    async def scenario(url: str) -> None:
        async with fastmcp.Client(StreamableHttpTransport(url + "/mcp", auth="tok-bob")) as c:
            assert (await c.call_tool("search_notes", {"query": "q"})).content[0].text == "found q"
        async with httpx.AsyncClient() as http:
            rebinding = await http.post(
                url + "/mcp",
                json=INITIALIZE,
                headers={**MCP_HEADERS, "Host": "evil.example", "Authorization": "Bearer tok-bob"},
            )
            assert rebinding.status_code in (403, 421)
            wrong = await http.post(
                url + "/mcp", json=INITIALIZE, headers={**MCP_HEADERS, "Authorization": "Bearer nope"}
            )
            # A plain HTTP client gets 401 and a bearer challenge; an MCP client reads the body's error.
            assert wrong.status_code == 401 and wrong.headers["www-authenticate"].startswith("Bearer")
            assert wrong.json()["error"] == {"code": -32001, "message": "Authentication required"}

    with running(guard.http_server(mcp, port=free_port())) as url:
        anyio.run(scenario, url)
    assert [(e.target, e.decision) for e in auditor.events if e.method == "tools/call"] == [
        ("search_notes", "allow")
    ]


def test_serve_http_says_where_it_listens(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import uvicorn

    monkeypatch.setattr(uvicorn.Server, "run", lambda self: None)
    port = free_port()
    make_guard(ListAuditor()).serve_http(notes_server(), port=port)
    assert f"serving on http://127.0.0.1:{port}/mcp" in capsys.readouterr().err
