"""A ``tenant`` flow must not be escaped by a person switching tenant.

Found: a ``scope = "tenant"`` flow kept its marks under the tenant only. A person whose tokens (or
API keys) name different tenants - or one of them none - armed the flow in one tenant and sent
from the other with a clean history, although a ``subject`` flow follows that person across
tenants. A tenant flow widens who shares a mark; it must never narrow whom a mark follows.
"""

from __future__ import annotations

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from mcp_guard.errors import ACCESS_DENIED
from mcp_guard.model import Principal
from mcp_guard.store import MemoryStore

from ..test_flows import LABELS, flow, guarded

SEND = {"to": "eve", "body": "secrets"}


@pytest.mark.parametrize("other", ["other", None], ids=["another tenant", "no tenant"])
async def test_switching_tenant_does_not_escape_a_tenant_flow(other: str | None) -> None:
    store = MemoryStore()
    policy = LABELS + flow(scope='"tenant"')
    in_acme = Principal("alice", roles=frozenset({"agent"}), tenant="acme", issuer="https://idp")
    elsewhere = Principal("alice", roles=frozenset({"agent"}), tenant=other, issuer="https://idp")
    first, _, _ = guarded(policy, store=store, principal=in_acme)
    second, _, _ = guarded(policy, store=store, principal=elsewhere)
    async with Client(first, mode="legacy") as client:
        await client.call_tool("fetch_page", {"url": "u"})
    async with Client(second, mode="legacy") as client:
        with pytest.raises(MCPError) as refused:
            await client.call_tool("send_mail", SEND)
    assert refused.value.error.code == ACCESS_DENIED
    assert second.sent == []  # type: ignore[attr-defined]


async def test_a_tenant_flow_still_joins_the_tenants_members() -> None:
    store = MemoryStore()
    policy = LABELS + flow(scope='"tenant"')
    alice = Principal("alice", roles=frozenset({"agent"}), tenant="acme")
    bob = Principal("bob", roles=frozenset({"agent"}), tenant="acme")
    first, _, _ = guarded(policy, store=store, principal=alice)
    second, _, _ = guarded(policy, store=store, principal=bob)
    async with Client(first, mode="legacy") as client:
        await client.call_tool("fetch_page", {"url": "u"})
    async with Client(second, mode="legacy") as client:
        with pytest.raises(MCPError):
            await client.call_tool("send_mail", SEND)
