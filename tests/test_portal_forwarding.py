"""Forwarding through the portal: pagination, subscriptions, completion, logs, cancellation, Host."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import httpx
import pytest
from mcp import types
from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.exceptions import MCPError

from mcp_guard.config import UpstreamSection
from mcp_guard.guard import Guard
from mcp_guard.portal import Portal

from .helpers import ListAuditor
from .http_util import free_port, serve
from .test_portal_credentials import People
from .test_portal_subscriptions import updates_into
from .test_portal_support import ServerPolicy, client, portal_http

MODES = ["legacy", "auto"]


class Probe:
    """An HTTP upstream that records what reached it."""

    def __init__(self) -> None:
        self.cancelled = anyio.Event()
        self.started = anyio.Event()
        self.subscribed: list[str] = []
        self.server = server = MCPServer("probe")
        for i in range(5):
            server.add_tool(lambda i=i: i, name=f"tool_{i}", description=f"Tool number {i}")

        @server.tool()
        async def slow() -> str:
            """Wait until cancelled."""
            self.started.set()
            try:
                await anyio.sleep(30)
            except anyio.get_cancelled_exc_class():
                self.cancelled.set()
                raise
            return "finished"

        @server.tool()
        async def touch(ctx: Context) -> str:
            """Announce that probe://watched changed."""
            await ctx.session.send_resource_updated("probe://watched")
            return "touched"

        @server.tool()
        async def chatty(ctx: Context) -> str:
            """Log one message per level."""
            await ctx.debug("a debug line")
            await ctx.info("an info line")
            await ctx.error("an error line")
            return "said"

        @server.resource("probe://watched")
        def watched() -> str:
            return "watched"

        async def subscribe(ctx: ServerRequestContext[Any, Any], params: types.SubscribeRequestParams) -> Any:
            self.subscribed.append(str(params.uri))
            return types.EmptyResult()

        async def complete(ctx: ServerRequestContext[Any, Any], params: types.CompleteRequestParams) -> Any:
            values = [v for v in ("alpha", "beta", "alps") if v.startswith(params.argument.value)]
            return types.CompleteResult(completion=types.Completion(values=values, total=len(values)))

        low = server._lowlevel_server
        low.add_request_handler("resources/subscribe", types.SubscribeRequestParams, subscribe)
        low.add_request_handler("completion/complete", types.CompleteRequestParams, complete)

    @contextmanager
    def running(self) -> Iterator[str]:
        with serve(self.server.streamable_http_app(), free_port()) as url:
            yield url + "/mcp"


def portal(upstream_url: str, **kw: Any) -> Portal:
    guard = Guard(
        policy=ServerPolicy({"staff": {("probe", "*")}}),
        authenticators=[People()],
        auditor=ListAuditor(),
        server="portal",
    )
    return Portal(guard, [UpstreamSection(name="probe", url=upstream_url)], **kw)


def log_into(lines: list[str]) -> Any:
    """A client logging callback that collects each message's data."""

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        lines.append(str(params.data))

    return on_log


@pytest.mark.parametrize("mode", MODES)
async def test_lists_are_paginated_with_opaque_cursors(mode: str) -> None:
    probe = Probe()
    with probe.running() as up, portal_http(portal(up, page_size=3)) as url:
        async with client(url, "tok-alice", mode) as c:
            names: list[str] = []
            pages = 0
            cursor: str | None = None
            while True:
                page = await c.list_tools(cursor=cursor, cache_mode="refresh")
                assert len(page.tools) <= 3
                names += [t.name for t in page.tools]
                pages += 1
                cursor = page.next_cursor
                if not cursor:
                    break
            assert pages == 3 and sorted(names) == sorted(
                [f"probe__tool_{i}" for i in range(5)] + ["probe__slow", "probe__touch", "probe__chatty"]
            )
            with pytest.raises(MCPError) as exc:
                await c.list_tools(cursor="not-a-cursor", cache_mode="refresh")
            assert exc.value.error.code == types.INVALID_PARAMS


async def test_subscriptions_and_updates_reach_only_subscribers() -> None:
    probe = Probe()
    updates: dict[str, list[str]] = {"sub": [], "other": []}
    with probe.running() as up, portal_http(portal(up)) as url:
        async with (
            client(url, "tok-alice", message_handler=updates_into(updates["sub"])) as sub,
            client(url, "tok-bob", message_handler=updates_into(updates["other"])) as other,
        ):
            await sub.subscribe_resource("probe://watched")
            assert probe.subscribed == ["probe://watched"]
            await other.call_tool("probe__touch", {})
            with anyio.fail_after(5):
                while not updates["sub"]:
                    await anyio.sleep(0.05)
            assert updates == {"sub": ["probe://watched"], "other": []}
            with pytest.raises(MCPError):
                await sub.subscribe_resource("probe://unknown")


@pytest.mark.parametrize("mode", MODES)
async def test_completion_is_forwarded(mode: str) -> None:
    probe = Probe()
    with probe.running() as up, portal_http(portal(up)) as url:
        async with client(url, "tok-alice", mode) as c:
            ref = types.ResourceTemplateReference(type="ref/resource", uri="probe://watched")
            result = await c.complete(ref, {"name": "x", "value": "al"})
            assert result.completion.values == ["alpha", "alps"]


@pytest.mark.parametrize("callbacks", [["probe"], []], ids=["private", "shared"])
async def test_log_messages_follow_the_level_each_caller_set(callbacks: list[str]) -> None:
    probe = Probe()
    logs: dict[str, list[str]] = {"quiet": [], "loud": []}
    with probe.running() as up, portal_http(portal(up, callbacks=callbacks)) as url:
        async with (
            client(url, "tok-alice", logging_callback=log_into(logs["quiet"])) as quiet,
            client(url, "tok-bob", logging_callback=log_into(logs["loud"])) as loud,
        ):
            await quiet.set_logging_level("error")
            await loud.set_logging_level("debug")
            await quiet.call_tool("probe__chatty", {})
            await loud.call_tool("probe__chatty", {})
    assert logs["quiet"] == ["an error line"]
    assert logs["loud"] == ["a debug line", "an info line", "an error line"]


@pytest.mark.parametrize("callbacks", [["probe"], []], ids=["private", "shared"])
async def test_on_2026_log_messages_ride_the_round_at_the_level_each_request_asked_for(
    callbacks: list[str],
) -> None:
    probe = Probe()
    logs: dict[str, list[str]] = {"info": [], "none": []}
    with probe.running() as up, portal_http(portal(up, callbacks=callbacks)) as url:
        async with (
            client(
                url, "tok-alice", "auto", logging_callback=log_into(logs["info"]), log_level="info"
            ) as info,
            client(url, "tok-bob", "auto", logging_callback=log_into(logs["none"])) as silent,
        ):
            assert (await info.call_tool("probe__chatty", {})).structured_content == {"result": "said"}
            await silent.call_tool("probe__chatty", {})
    assert logs == {"info": ["an info line", "an error line"], "none": []}


async def test_cancellation_reaches_the_upstream() -> None:
    probe = Probe()
    with probe.running() as up, portal_http(portal(up)) as url:
        async with client(url, "tok-alice") as c:
            with anyio.move_on_after(10):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(c.call_tool, "probe__slow", {})
                    await probe.started.wait()
                    tg.cancel_scope.cancel()
            with anyio.fail_after(10):
                await probe.cancelled.wait()
            # The session is still usable after the cancelled call.
            assert (await c.call_tool("probe__tool_1", {})).content[0].text == "1"  # type: ignore[union-attr]


def test_foreign_host_and_origin_are_refused() -> None:
    probe = Probe()
    with probe.running() as up:
        p = portal(up)
        port = free_port()
        with serve(p.streamable_http_app(port=port), port) as url:
            body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
            headers = {"accept": "application/json, text/event-stream", "authorization": "Bearer tok-alice"}
            evil_host = httpx.post(url + "/mcp", json=body, headers={**headers, "host": "evil.example"})
            evil_origin = httpx.post(
                url + "/mcp", json=body, headers={**headers, "origin": "http://evil.example"}
            )
            assert evil_host.status_code in (400, 421) and evil_origin.status_code in (400, 403)
