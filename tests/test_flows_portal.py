"""Flows across a portal (two upstreams, both eras) and across two guards sharing one Redis store."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError

from mcp_guard.config import UpstreamSection
from mcp_guard.errors import ACCESS_DENIED
from mcp_guard.guard import Guard
from mcp_guard.integrations.http import loopback_security
from mcp_guard.model import Principal
from mcp_guard.policy import load_policy_text
from mcp_guard.portal import Portal
from mcp_guard.sanitize.pins import PinStore
from mcp_guard.store import MemoryStore, open_store

from .helpers import ListAuditor
from .http_util import free_port, serve
from .redis_server import RedisServer
from .test_flows import agent_server
from .test_portal_support import TokenTable, client, portal_http

MODES = ["legacy", "auto"]

#: The recipe of docs/policy.md: forbid "fetch then send" across a portal.
POLICY = """
[[labels]]
servers = ["web"]
tools = ["fetch*"]
labels = ["untrusted-input"]

[[labels]]
servers = ["mail"]
tools = ["send_*"]
labels = ["external-output"]

[[rules]]
id = "analysts-use-web-and-mail"
effect = "allow"
roles = ["analyst"]
servers = ["web", "mail"]

[[rules]]
id = "read-only-anywhere"
effect = "allow"
roles = ["analyst"]
servers = ["docs"]
tools = ["*"]
annotations = { readOnlyHint = true }

[[flows]]
id = "no-send-after-untrusted"
after = ["untrusted-input"]
deny = ["external-output"]
scope = "session"
window = "30m"
"""


@contextmanager
def upstream(server: MCPServer) -> Iterator[str]:
    port = free_port()
    with serve(server.streamable_http_app(transport_security=loopback_security(port)), port) as url:
        yield url + "/mcp"


def calls(auditor: ListAuditor, target: str) -> list[Any]:
    return [e for e in auditor.events if e.method == "tools/call" and e.target == target]


@pytest.mark.parametrize("mode", MODES)
async def test_fetch_then_send_is_refused_across_a_portal(mode: str) -> None:
    auditor = ListAuditor()
    guard = Guard(
        policy=load_policy_text(POLICY),
        authenticators=[TokenTable()],
        auditor=auditor,
        server="portal",
        pins=PinStore(MemoryStore()),  # annotations count only where pins vetted them
    )
    mail, web, docs = agent_server(), agent_server(), agent_server()
    with upstream(web) as web_url, upstream(mail) as mail_url, upstream(docs) as docs_url:
        portal = Portal(
            guard,
            [
                UpstreamSection(name="web", url=web_url),
                UpstreamSection(name="mail", url=mail_url),
                UpstreamSection(name="docs", url=docs_url),
            ],
        )
        with portal_http(portal) as url:
            async with client(url, "tok-alice", mode) as c:
                await c.call_tool("mail__send_mail", {"to": "bob", "body": "hi"})
                await c.call_tool("web__fetch_page", {"url": "https://evil.example"})
                with pytest.raises(MCPError) as refused:
                    await c.call_tool("mail__send_mail", {"to": "eve", "body": "secrets"})
                # pinned annotations of the upstream's served definitions reach the policy
                assert (await c.call_tool("docs__read_page", {"url": "u"})).is_error is False
                with pytest.raises(MCPError):
                    await c.call_tool("docs__wipe", {})
    (fetch,) = calls(auditor, "fetch_page")
    assert fetch.server == "web" and fetch.decision == "allow"
    assert refused.value.error.code == ACCESS_DENIED
    message = refused.value.error.message
    assert "no-send-after-untrusted" in message and fetch.id in message
    event = calls(auditor, "send_mail")[-1]
    assert (event.decision, event.server) == ("deny", "mail")
    assert event.flow is not None and event.flow["after_event"] == fetch.id
    assert event.flow["after_server"] == "web"
    assert mail.sent == [("bob", "hi")]  # type: ignore[attr-defined]
    assert calls(auditor, "read_page")[0].rule == "read-only-anywhere"


@pytest.mark.redis
async def test_two_guards_sharing_redis_share_flow_state(redis_server: RedisServer) -> None:
    alice = Principal("alice", roles=frozenset({"agent"}))
    policy = POLICY.replace('servers = ["web"]', 'servers = ["agent"]').replace(
        'servers = ["mail"]', 'servers = ["agent"]'
    )
    policy += '[[rules]]\nid = "agent"\neffect = "allow"\nroles = ["agent"]\ntools = ["*"]\n'
    stores, servers, auditors = [], [], []
    for _ in range(2):
        store = open_store(f"{redis_server.url}?prefix=flows-two:")
        auditor = ListAuditor()
        server = agent_server()
        Guard(policy=load_policy_text(policy), auditor=auditor, anonymous=alice, store=store).protect(
            server, read_env=False
        )
        stores.append(store)
        servers.append(server)
        auditors.append(auditor)
    try:
        async with Client(servers[0], mode="auto") as first:
            await first.call_tool("fetch_page", {"url": "u"})
        async with Client(servers[1], mode="auto") as second:
            with pytest.raises(MCPError) as refused:
                await second.call_tool("send_mail", {"to": "a", "body": "b"})
        (fetch,) = calls(auditors[0], "fetch_page")
        assert fetch.id in refused.value.error.message
        assert calls(auditors[1], "send_mail")[0].flow["after_event"] == fetch.id
    finally:
        for store in stores:
            await store.aclose()
