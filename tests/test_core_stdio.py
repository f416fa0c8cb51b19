"""The guard on a real stdio subprocess server; the caller's credential is MCP_GUARD_TOKEN."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError

from mcp_guard import errors

from .test_core_memory import first_mcp_error

SERVER = Path(__file__).parent / "servers" / "stdio_notes.py"


def params(token: str | None) -> StdioServerParameters:
    env = {"MCP_GUARD_TOKEN": token} if token else {}
    return StdioServerParameters(command=sys.executable, args=[str(SERVER)], env=env)


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_stdio_with_token(mode: str) -> None:
    async with Client(params("tok-alice"), mode=mode) as client:
        assert [t.name for t in (await client.list_tools()).tools] == ["add"]
        assert (await client.call_tool("add", {"a": 4, "b": 5})).structured_content == {"result": 9}
        with pytest.raises(MCPError) as exc:
            await client.call_tool("delete_notes", {"query": "x"})
        assert exc.value.code == errors.ACCESS_DENIED


async def test_stdio_without_or_with_bad_token_is_refused() -> None:
    for token in (None, "forged"):
        with pytest.raises(BaseException) as caught:
            async with Client(params(token), mode="legacy") as client:
                await client.list_tools()
        assert first_mcp_error(caught.value).code == errors.AUTHENTICATION_REQUIRED


@pytest.mark.parametrize("token", [None, "forged"])
async def test_stdio_default_client_sees_authentication_required(token: str | None) -> None:
    """The SDK client's default era probe falls back to initialize when discover is refused.

    That initialize must be refused for the same reason (-32001), not with the SDK's
    "connection is serving the 2026-07-28 protocol" (-32022).
    """
    with pytest.raises(BaseException) as caught:
        async with Client(params(token)) as client:
            await client.list_tools()
    error = first_mcp_error(caught.value)
    assert (error.code, error.message) == (errors.AUTHENTICATION_REQUIRED, "Authentication required")


async def test_stdio_client_session_sees_authentication_required() -> None:
    """A bare ClientSession, with either handshake, gets -32001 too."""
    from mcp.client.session import ClientSession
    from mcp.client.stdio import stdio_client

    for start in ("initialize", "discover"):
        async with stdio_client(params("forged")) as (read, write), ClientSession(read, write) as session:
            with pytest.raises(MCPError) as caught:
                await getattr(session, start)()
            assert caught.value.code == errors.AUTHENTICATION_REQUIRED, start


async def test_audit_events_of_one_stdio_connection_share_a_session_id() -> None:
    """stdio has no session header; the guard still groups a connection's events."""
    import json
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "audit.jsonl"
        env = {"MCP_GUARD_TOKEN": "tok-alice", "AUDIT_JSONL": str(log)}
        params = StdioServerParameters(command=sys.executable, args=[str(SERVER)], env=env)
        for _ in range(2):
            async with Client(params, mode="legacy") as client:
                await client.list_tools()
                await client.call_tool("add", {"a": 1, "b": 2})
        records = [json.loads(line) for line in log.read_text().splitlines()]
    ids = [r.get("session_id") for r in records if r.get("method") in ("tools/list", "tools/call")]
    assert len(ids) == 4 and None not in ids
    assert ids[0] == ids[1] and ids[2] == ids[3] and ids[0] != ids[2]
