"""A parked 2026-07-28 call belongs to one person: the subject *per issuer*, like budgets and flows.

Found: the portal bound a parked call's ``requestState`` to the bare subject name. ``alice`` of
another identity provider (a different person, as budgets, flows and the cap on calls in flight
count her) could answer the first alice's parked question - and so steer her call - given the
handle.
"""

from __future__ import annotations

import pytest
from mcp import types
from mcp.shared.exceptions import MCPError

from mcp_guard.guard import Guard
from mcp_guard.model import Principal
from mcp_guard.portal import Portal
from mcp_guard.protocols import Credential

from ..helpers import ListAuditor
from ..test_portal_support import ServerPolicy, client, portal_http
from ..test_portal_transparency import answer_parked, asker

TOKENS = {
    "tok-alice-a": Principal("alice", roles=frozenset({"analyst"}), issuer="https://idp-a.example"),
    "tok-alice-b": Principal("alice", roles=frozenset({"analyst"}), issuer="https://idp-b.example"),
}


class TwoIssuers:
    async def authenticate(self, credential: Credential) -> Principal | None:
        return TOKENS.get(credential.token or "")


async def test_alice_of_another_issuer_cannot_answer_a_parked_question() -> None:
    auditor = ListAuditor()
    guard = Guard(
        policy=ServerPolicy({"analyst": {("asker", "*")}}),
        authenticators=[TwoIssuers()],
        auditor=auditor,
        server="portal",
    )
    with asker("http") as spec, portal_http(Portal(guard, [spec])) as url:
        async with client(url, "tok-alice-a", "auto") as a, client(url, "tok-alice-b", "auto") as b:
            await a.list_tools()
            first = await a.session.call_tool("asker__ask", {"question": "q"}, allow_input_required=True)
            assert isinstance(first, types.InputRequiredResult) and first.request_state
            [key] = list(first.input_requests or {})
            with pytest.raises(MCPError):
                await answer_parked(b, first, key, "forged")
            done = await answer_parked(a, first, key, "mine")
            assert isinstance(done, types.CallToolResult) and done.structured_content == {"result": "mine"}
