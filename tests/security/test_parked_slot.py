"""A 2026-07-28 call parked on a question its caller never answers holds its place only so long.

The parked call is the caller's call in flight on the upstream (it holds a connection), so it
counts under ``max_in_flight_per_caller`` - but an abandoned one must give its place back when
the upstream's ``timeout`` ends it, or one unanswered question would lock its caller out for good.
"""

from __future__ import annotations

import anyio
import pytest
from mcp import types
from mcp.shared.exceptions import MCPError

from mcp_guard.config import UpstreamSection
from mcp_guard.errors import RATE_LIMITED
from mcp_guard.guard import Guard
from mcp_guard.portal import Portal

from ..helpers import ListAuditor
from ..http_util import free_port, serve
from ..servers.asker import build
from ..test_portal_support import ServerPolicy, TokenTable, client, portal_http


async def test_an_abandoned_parked_call_gives_its_slot_back_at_the_upstream_timeout() -> None:
    guard = Guard(
        policy=ServerPolicy({"analyst": {("asker", "*")}}),
        authenticators=[TokenTable()],
        auditor=ListAuditor(),
        server="portal",
        max_in_flight_per_caller=1,
    )
    with serve(build().streamable_http_app(), free_port()) as up:
        spec = UpstreamSection(name="asker", url=up + "/mcp", timeout=1.0)
        with portal_http(Portal(guard, [spec])) as url:
            async with client(url, "tok-alice", "auto") as a:
                first = await a.session.call_tool("asker__ask", {"question": "q"}, allow_input_required=True)
                assert isinstance(first, types.InputRequiredResult)
                with pytest.raises(MCPError) as busy:  # the parked call holds alice's one place
                    await a.call_tool("asker__wait", {"seconds": 0})
                assert busy.value.error.code == RATE_LIMITED
                with anyio.fail_after(10):  # never answered: the upstream timeout ends it
                    while guard.in_flight.total():
                        await anyio.sleep(0.05)
                done = await a.call_tool("asker__wait", {"seconds": 0})
                assert not done.is_error
