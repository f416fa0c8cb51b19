"""A 2026-07-28 request whose ``requestState`` the SDK refuses (before the guard runs) is audited too."""

from __future__ import annotations

import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError

from mcp_guard.guard import Guard
from mcp_guard.model import Principal
from mcp_guard.policy import policy_from_dict

from ..helpers import ListAuditor


@pytest.mark.anyio
async def test_a_tampered_request_state_refused_by_the_sdk_is_on_the_audit_trail() -> None:
    server = MCPServer("bank")

    @server.tool()
    def balance() -> str:
        return "42"

    auditor = ListAuditor()
    rules = [{"id": "all", "effect": "allow", "tools": ["balance"]}]
    guard = Guard(policy=policy_from_dict({"rules": rules}), anonymous=Principal("olga"), auditor=auditor)
    guard.protect(server, read_env=False)
    async with Client(server, mode="auto") as client:
        await client.list_tools()
        before = len(auditor.events)
        with pytest.raises(MCPError):
            await client.session.call_tool("balance", {}, request_state="forged", allow_input_required=True)
    [event] = auditor.events[before:]
    assert (event.method, event.decision, event.server) == ("tools/call", "deny", "bank")
    assert (event.principal or {}).get("subject") == "olga"
    assert any("requestState" in reason for reason in event.reasons)
    assert event.error_code is not None
