"""Multi-round-trip calls across portal replicas: a round that reaches another replica is relayed.

Two portals (two replicas) share one state store; a 2026-07-28 client starts a
call on one and answers its question on the other, as a load balancer without
affinity would route it. Real store backends: SQLite, a real Redis server and
the in-process store.
"""

from __future__ import annotations

import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from mcp import types
from mcp.shared.exceptions import MCPError

from mcp_guard import errors
from mcp_guard.guard import Guard
from mcp_guard.portal import Portal
from mcp_guard.portal.relay import owner_of
from mcp_guard.protocols import StateStore
from mcp_guard.store import MemoryStore, open_store

from .helpers import ListAuditor
from .redis_server import RedisServer
from .test_portal_support import (
    GRANTS,
    KeywordSanitizer,
    ServerPolicy,
    TokenTable,
    client,
    portal_http,
    stdio,
)


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return "memory"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shared.db'}"
    redis: RedisServer = request.getfixturevalue("redis_server")  # skips without redis-server
    return f"{redis.url}?prefix=t{uuid.uuid4().hex[:8]}:"


def replica(store: StateStore, auditor: ListAuditor, callbacks: tuple[str, ...] = ("lab",)) -> Portal:
    guard = Guard(
        policy=ServerPolicy(GRANTS),
        authenticators=[TokenTable()],
        auditor=auditor,
        sanitizers=[KeywordSanitizer()],
        store=store,
        server="portal",
    )
    return Portal(guard, [stdio("lab", "lab_server.py")], callbacks=callbacks)


def sample(text: str) -> types.CreateMessageResult:
    return types.CreateMessageResult(
        role="assistant", content=types.TextContent(type="text", text=text), model="m"
    )


async def first_round(c: Any) -> tuple[types.InputRequiredResult, str]:
    await c.list_tools()
    first = await c.session.call_tool("lab__ask", {"question": "q"}, allow_input_required=True)
    assert isinstance(first, types.InputRequiredResult) and first.request_state
    [key] = list(first.input_requests or {})
    return first, key


async def answer(c: Any, first: types.InputRequiredResult, key: str, text: str) -> Any:
    await c.list_tools()
    return await c.session.call_tool(
        "lab__ask",
        {"question": "q"},
        input_responses={key: sample(text)},
        request_state=first.request_state,
        allow_input_required=True,
    )


async def test_a_round_answered_on_another_replica_finishes_the_parked_call(store_url: str) -> None:
    shared = MemoryStore() if store_url == "memory" else open_store(store_url)
    audit_a, audit_b = ListAuditor(), ListAuditor()
    a, b = replica(shared, audit_a), replica(shared, audit_b)
    assert a.replica != b.replica
    with ExitStack() as stack:
        url_a, url_b = stack.enter_context(portal_http(a)), stack.enter_context(portal_http(b))
        async with (
            client(url_a, "tok-alice", "auto") as on_a,
            client(url_b, "tok-alice", "auto") as on_b,
            client(url_b, "tok-bob", "auto") as bob_on_b,
        ):
            first, key = await first_round(on_a)
            assert owner_of(first.request_state or "") == a.replica
            # Someone else cannot answer it through the other replica either,
            with pytest.raises(MCPError) as exc:
                await answer(bob_on_b, first, key, "forged")
            assert exc.value.error.code == errors.ACCESS_DENIED
            # and the caller it belongs to finishes it there, with its answer reaching the parked call.
            done = await answer(on_b, first, key, "answered on b")
            assert isinstance(done, types.CallToolResult)
            assert done.structured_content == {"result": "answered on b"}
            # The call ran once, on the replica that parked it: a finished handle is spent.
            with pytest.raises(MCPError):
                await answer(on_b, first, key, "again")
    calls_a = [e for e in audit_a.events if e.method == "tools/call" and e.decision == "allow"]
    calls_b = [e for e in audit_b.events if e.method == "tools/call" and e.decision == "allow"]
    assert len(calls_a) == 1 and calls_b == []
    if store_url != "memory":
        await shared.aclose()


async def test_without_a_store_another_replicas_handle_is_refused() -> None:
    a, b = replica(None, ListAuditor()), replica(None, ListAuditor())  # type: ignore[arg-type]
    with ExitStack() as stack:
        url_a, url_b = stack.enter_context(portal_http(a)), stack.enter_context(portal_http(b))
        async with client(url_a, "tok-alice", "auto") as on_a, client(url_b, "tok-alice", "auto") as on_b:
            first, key = await first_round(on_a)
            with pytest.raises(MCPError) as exc:
                await answer(on_b, first, key, "lost")
            assert exc.value.error.code == errors.ACCESS_DENIED


async def test_a_call_parked_on_the_shared_session_is_relayed_too() -> None:
    """Without ``callbacks`` the call waits on the shared session; a later round may reach another replica."""
    shared = MemoryStore()
    audit_a = ListAuditor()
    a, b = replica(shared, audit_a, callbacks=()), replica(shared, ListAuditor(), callbacks=())
    with ExitStack() as stack:
        url_a, url_b = stack.enter_context(portal_http(a)), stack.enter_context(portal_http(b))
        async with client(url_a, "tok-alice", "auto") as on_a, client(url_b, "tok-alice", "auto") as on_b:
            first, key = await first_round(on_a)
            assert owner_of(first.request_state or "") == a.replica
            done = await answer(on_b, first, key, "answered on b")
            assert isinstance(done, types.CallToolResult)
            assert done.structured_content == {"result": "answered on b"}
    calls = [e for e in audit_a.events if e.method == "tools/call" and e.decision == "allow"]
    assert len(calls) == 1
