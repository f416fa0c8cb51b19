"""Budgets through the portal: charged under the upstream's own names, once per allowed call."""

from __future__ import annotations

import pytest
from mcp.shared.exceptions import MCPError

from mcp_guard import errors
from mcp_guard.config import UpstreamSection
from mcp_guard.policy import load_policy_text
from mcp_guard.portal import Portal

from .helpers import ListAuditor
from .test_pipeline_outcomes import Probe, events_for
from .test_portal_outcomes import probe_upstream
from .test_portal_support import client, make_guard, portal_http

POLICY = """
version = 1
[[rules]]
id = "probe-tools"
effect = "allow"
roles = ["analyst"]
servers = ["probe"]
tools = ["ok", "boom"]

[[budgets]]
id = "probe-units"
per = "subject"
period = "1h"
limit = 4
servers = ["probe"]
cost = { "boom" = 2 }
"""


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_portal_charges_allowed_calls_once_and_refuses_with_the_budget(mode: str) -> None:
    probe, auditor = Probe(), ListAuditor()
    guard = make_guard(load_policy_text(POLICY), auditor)
    with probe_upstream(probe) as up:
        portal = Portal(guard, [UpstreamSection(name="probe", url=up, timeout=30.0)])
        with portal_http(portal) as url:
            async with client(url, "tok-alice", mode) as c:
                await c.call_tool("probe__ok", {})  # 1
                with pytest.raises(MCPError):
                    await c.call_tool("probe__forbidden", {})  # denied by policy: free
                with pytest.raises(MCPError):
                    await c.call_tool("probe__boom", {})  # admitted, the upstream fails: 3, still charged
                await c.call_tool("probe__ok", {})  # 4
                with pytest.raises(MCPError) as refused:
                    await c.call_tool("probe__ok", {})
            oks = await events_for(auditor, "ok", 3)
    error = refused.value
    assert error.code == errors.RATE_LIMITED
    assert "Budget 'probe-units' exhausted: 4/4 units used" in error.error.message
    assert error.error.data["budget"] == "probe-units"
    assert [e.decision for e in oks] == ["allow", "allow", "deny"]
    assert {e.server for e in oks} == {"probe"}
    assert any("budget 'probe-units' exhausted" in r and "subject=alice" in r for r in oks[2].reasons)
    assert any("budget 'probe-units': 4/4 used after this call" in r for r in oks[1].reasons)
