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
