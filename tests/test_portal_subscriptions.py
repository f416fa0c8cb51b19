"""Resource subscriptions and change events through the portal, on both protocol eras.

2026-07-28 callers use ``subscriptions/listen``; 2025-11-25 callers use
``resources/subscribe`` and the standing connection. For an upstream with
per-user credentials the subscription lives on the caller's own upstream
connection, so one user's updates never reach another user.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import anyio
import pytest
from mcp import types
from mcp.client.subscriptions import ResourceUpdated, ToolsListChanged
from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.exceptions import MCPError

from mcp_guard.config import UpstreamSection
from mcp_guard.guard import Guard
from mcp_guard.model import Principal
from mcp_guard.portal import Portal
from mcp_guard.portal.credentials import CredentialBroker, SecretBox
from mcp_guard.protocols import Credential
from mcp_guard.store import MemoryStore

from .helpers import ListAuditor
from .http_util import free_port, serve
from .test_portal_credentials import KEY, PEOPLE
from .test_portal_support import ServerPolicy, client, portal_http

CALLERS = {**PEOPLE, "tok-dave": Principal("dave", roles=frozenset({"intern"}))}


class People:
    async def authenticate(self, credential: Credential) -> Principal | None:
        return CALLERS.get(credential.token or "")


class Feed:
    """An HTTP upstream with subscribable resources; records who (un)subscribed, by service token."""

    def __init__(self) -> None:
        self.subscribed: list[tuple[str, str | None]] = []
        self.unsubscribed: list[tuple[str, str | None]] = []
        self.server = server = MCPServer("feed")

        @server.tool()
        async def touch(ctx: Context, uri: str = "feed://news") -> str:
            """Announce on the calling session that a resource changed."""
            await ctx.session.send_resource_updated(uri)
            return "touched"

        @server.tool()
        async def grow(ctx: Context) -> str:
            """Add a tool and announce the changed tool list."""
            server.add_tool(lambda: "new", name="fresh", description="A tool added at run time")
            await ctx.session.send_tool_list_changed()
            return "grown"

        @server.resource("feed://news")
        def news() -> str:
            return "news"

        @server.resource("feed://secret")
        def secret() -> str:
            return "secret"

        def token(ctx: ServerRequestContext[Any, Any]) -> str | None:
            headers = getattr(ctx.request, "headers", None) or {}
            return headers.get("x-service-token")

        async def subscribe(ctx: ServerRequestContext[Any, Any], params: types.SubscribeRequestParams) -> Any:
            self.subscribed.append((str(params.uri), token(ctx)))
            return types.EmptyResult()

        async def unsubscribe(
            ctx: ServerRequestContext[Any, Any], params: types.UnsubscribeRequestParams
        ) -> Any:
            self.unsubscribed.append((str(params.uri), token(ctx)))
            return types.EmptyResult()

        low = server._lowlevel_server
        low.add_request_handler("resources/subscribe", types.SubscribeRequestParams, subscribe)
        low.add_request_handler("resources/unsubscribe", types.UnsubscribeRequestParams, unsubscribe)

    @contextmanager
    def running(self) -> Iterator[str]:
        with serve(self.server.streamable_http_app(), free_port()) as url:
            yield url + "/mcp"


def make_portal(upstream_url: str, auditor: ListAuditor | None = None, **kw: Any) -> Portal:
    grants = {"staff": {("feed", "*")}, "intern": {("feed", "touch"), ("feed", "feed://news")}}
    guard = Guard(
        policy=ServerPolicy(grants),
        authenticators=[People()],
        auditor=auditor or ListAuditor(),
        server="portal",
    )
    return Portal(guard, [UpstreamSection(name="feed", url=upstream_url)], **kw)


def updates_into(uris: list[str]) -> Any:
    """A client message handler that collects the URIs of ``notifications/resources/updated``."""

    async def handler(message: Any) -> None:
        root = getattr(message, "root", message)
        if isinstance(root, types.ResourceUpdatedNotification):
            uris.append(str(root.params.uri))

    return handler


async def until(predicate: Any, timeout: float = 5.0) -> None:
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.05)


async def collect(sub: Any, into: list[Any]) -> None:
    async for event in sub:
        into.append(event)


async def test_listen_delivers_list_changes_and_only_the_callers_resources() -> None:
    feed, auditor = Feed(), ListAuditor()
    with feed.running() as up, portal_http(make_portal(up, auditor)) as url:
        async with (
            client(url, "tok-alice", "auto") as alice,
            client(url, "tok-bob", "auto") as bob,
            alice.listen(tools_list_changed=True, resource_subscriptions=["feed://news"]) as a_sub,
            bob.listen(resources_list_changed=True) as b_sub,
        ):
            assert a_sub.honored.tools_list_changed is True
            assert a_sub.honored.resource_subscriptions == ["feed://news"]
            assert ("feed://news", None) in feed.subscribed
            seen_a: list[Any] = []
            seen_b: list[Any] = []
            async with anyio.create_task_group() as tg:
                tg.start_soon(collect, a_sub, seen_a)
                tg.start_soon(collect, b_sub, seen_b)
                await bob.call_tool("feed__touch", {})
                await until(lambda: ResourceUpdated(uri="feed://news") in seen_a)
                await bob.call_tool("feed__touch", {"uri": "feed://secret"})  # nobody listens to it
                await alice.call_tool("feed__grow", {})
                await until(lambda: ToolsListChanged() in seen_a)
                names = [t.name for t in (await alice.list_tools(cache_mode="refresh")).tools]
                assert "feed__fresh" in names
                await anyio.sleep(0.3)
                tg.cancel_scope.cancel()
            assert ResourceUpdated(uri="feed://secret") not in seen_a
            assert seen_b == []  # bob asked for resource-list changes only; neither happened
    listens = [e for e in auditor.events if e.method == "subscriptions/listen"]
    assert [e.decision for e in listens] == ["allow", "allow"]
    # One event per listen; the subscription it decided on the way is named in it.
    assert any("'feed://news' on 'feed' allowed" in " ".join(e.reasons) for e in listens)


async def test_listen_ends_its_upstream_subscription_when_the_stream_closes() -> None:
    feed = Feed()
    with feed.running() as up, portal_http(make_portal(up)) as url:
        async with client(url, "tok-alice", "auto") as alice:
            async with alice.listen(resource_subscriptions=["feed://news"]):
                async with (
                    client(url, "tok-bob", "auto") as bob,
                    bob.listen(resource_subscriptions=["feed://news"]),
                ):
                    pass
                await anyio.sleep(0.3)
                assert feed.unsubscribed == []  # alice still listens
            await until(lambda: feed.unsubscribed == [("feed://news", None)])


@pytest.mark.parametrize("uri", ["feed://secret", "feed://unknown"])
async def test_listen_with_a_refused_or_unknown_uri_is_refused_before_the_ack(uri: str) -> None:
    feed, auditor = Feed(), ListAuditor()
    with feed.running() as up, portal_http(make_portal(up, auditor)) as url:
        async with client(url, "tok-dave", "auto") as dave:
            with pytest.raises(MCPError) as exc:
                async with dave.listen(resource_subscriptions=["feed://news", uri]):
                    pytest.fail("the listen stream must not open")
            assert "denied" in exc.value.error.message.lower()
            await anyio.sleep(0.3)
    assert ("feed://news", None) in feed.subscribed
    assert ("feed://news", None) in feed.unsubscribed  # the part that was subscribed is undone
    assert any(e.decision == "deny" and uri in (e.target or " ".join(e.reasons)) for e in auditor.events)
    assert not any(e.method == "subscriptions/listen" and e.decision == "allow" for e in auditor.events)


def per_user_portal(upstream_url: str, broker: CredentialBroker) -> Portal:
    guard = Guard(
        policy=ServerPolicy({"staff": {("feed", "*")}}),
        authenticators=[People()],
        auditor=ListAuditor(),
        server="portal",
    )
    return Portal(
        guard, [UpstreamSection(name="feed", url=upstream_url)], credentials=broker, private_idle=0.5
    )


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_per_user_upstream_subscriptions_use_the_callers_own_connection(mode: str) -> None:
    broker = CredentialBroker(MemoryStore(), SecretBox(KEY))
    await broker.set("feed", "subject", "alice", headers={"X-Service-Token": "svc-alice"})
    await broker.set("feed", "subject", "bob", headers={"X-Service-Token": "svc-bob"})
    feed = Feed()
    updates: dict[str, list[str]] = {"alice": [], "bob": []}
    with feed.running() as up, portal_http(per_user_portal(up, broker)) as url:
        async with (
            client(url, "tok-alice", mode, message_handler=updates_into(updates["alice"])) as alice,
            client(url, "tok-bob", mode, message_handler=updates_into(updates["bob"])) as bob,
        ):
            if mode == "legacy":
                await alice.subscribe_resource("feed://news")
                await bob.subscribe_resource("feed://news")
                await _exercise(feed, alice, bob, updates)
            else:
                async with (
                    alice.listen(resource_subscriptions=["feed://news"]) as a_sub,
                    bob.listen(resource_subscriptions=["feed://news"]) as b_sub,
                ):
                    seen: dict[str, list[Any]] = {"alice": [], "bob": []}
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(collect, a_sub, seen["alice"])
                        tg.start_soon(collect, b_sub, seen["bob"])
                        await _exercise(feed, alice, bob, updates, seen)
                        tg.cancel_scope.cancel()


async def _exercise(
    feed: Feed, alice: Any, bob: Any, updates: dict[str, list[str]], seen: dict[str, list[Any]] | None = None
) -> None:
    def got(who: str) -> int:
        return len(seen[who]) if seen is not None else len(updates[who])

    # Each subscription reached the upstream with its owner's credentials, never the shared connection's.
    assert sorted(feed.subscribed) == [("feed://news", "svc-alice"), ("feed://news", "svc-bob")]
    await alice.call_tool("feed__touch", {})  # changes on alice's connection
    await until(lambda: got("alice") == 1)
    await anyio.sleep(0.5)  # longer than the idle timeout: the subscribed connection stays open
    assert got("bob") == 0
    await bob.call_tool("feed__touch", {})
    await until(lambda: got("bob") == 1)
    assert got("alice") == 1


async def test_shared_subscriptions_are_renewed_when_the_upstream_reconnects() -> None:
    port = free_port()
    first, second = Feed(), Feed()
    portal = make_portal(f"http://127.0.0.1:{port}/mcp", ping_interval=0.2, backoff=(0.1, 0.2))
    seen: list[Any] = []
    upstream = ExitStack()
    upstream.enter_context(serve(first.server.streamable_http_app(), port))
    with upstream, portal_http(portal) as url:
        async with (
            client(url, "tok-alice", "auto") as alice,
            alice.listen(resource_subscriptions=["feed://news"]) as sub,
            anyio.create_task_group() as tg,
        ):
            tg.start_soon(collect, sub, seen)
            assert first.subscribed == [("feed://news", None)]
            await anyio.to_thread.run_sync(upstream.close)  # the upstream goes away...
            await until(lambda: portal.upstreams["feed"].state != "up")
            upstream.enter_context(serve(second.server.streamable_http_app(), port))  # ...and comes back
            await until(lambda: second.subscribed == [("feed://news", None)], timeout=10)
            await alice.call_tool("feed__touch", {})
            await until(lambda: ResourceUpdated(uri="feed://news") in seen)
            tg.cancel_scope.cancel()


async def test_a_2025_subscription_ends_upstream_once_its_connection_is_gone() -> None:
    feed, auditor = Feed(), ListAuditor()
    with feed.running() as up, portal_http(make_portal(up, auditor, private_idle=1.0)) as url:
        async with client(url, "tok-alice") as alice, client(url, "tok-bob") as bob:
            await alice.subscribe_resource("feed://news")
            await bob.subscribe_resource("feed://news")
            await bob.unsubscribe_resource("feed://news")
            await anyio.sleep(0.5)
            assert feed.unsubscribed == []  # alice is still subscribed
        # Alice's connection closes without unsubscribing: the portal notices and cleans up.
        await until(lambda: feed.unsubscribed == [("feed://news", None)], timeout=10)
    [unsubscribe] = [e for e in auditor.events if e.method == "resources/unsubscribe"]
    assert unsubscribe.principal is not None and unsubscribe.principal["subject"] == "bob"
    assert (unsubscribe.server, unsubscribe.target, unsubscribe.decision) == ("feed", "feed://news", "allow")
