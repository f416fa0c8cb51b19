"""One caller's slow calls cannot monopolise an upstream behind the portal (the concurrency cap).

The finding, at small scale: the portal's connection pool to an upstream is
cut to 6 connections (100 in production); one caller starts 10 calls that
hang, another caller's quick call to the same upstream must still answer. With
a cap of 4, only 4 of the 10 reach the upstream, the other 6 are refused as
rate-limited, and the pool keeps room for everyone else - on the fast lane and
on the SDK path alike.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import httpx2
import pytest
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError

from mcp_guard.config import UpstreamSection
from mcp_guard.errors import RATE_LIMITED
from mcp_guard.guard import Guard
from mcp_guard.portal import Portal
from mcp_guard.portal import upstream as upstream_module

from .helpers import ListAuditor
from .http_util import free_port, serve
from .test_portal_credentials import People
from .test_portal_support import ServerPolicy, client, portal_http

POOL = 6


class Slow:
    """An HTTP upstream whose ``hang`` tool holds its connection until the test lets it go."""

    def __init__(self) -> None:
        self.release = threading.Event()  # set from the test; the upstream runs in its own thread
        self.running = 0
        self.lock = threading.Lock()
        self.server = server = MCPServer("slow")

        @server.tool()
        async def hang() -> str:
            """Wait until released (at most 30 s)."""
            with self.lock:
                self.running += 1
            with anyio.move_on_after(30):
                while not self.release.is_set():
                    await anyio.sleep(0.01)
            return "finally"

        @server.tool()
        def quick() -> str:
            """Answer at once."""
            return "quick"

    @contextmanager
    def running_at(self) -> Iterator[str]:
        with serve(self.server.streamable_http_app(), free_port()) as url:
            try:
                yield url + "/mcp"
            finally:
                self.release.set()


@pytest.fixture
def small_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    """The portal's upstream connections limited to ``POOL``, as 100 are in production."""
    inner = upstream_module._KeepAliveTransport.__init__

    def init(self: Any, max_message: int | None = None) -> None:
        inner(self, max_message)
        self._inner = httpx2.AsyncHTTPTransport(limits=httpx2.Limits(max_connections=POOL))

    monkeypatch.setattr(upstream_module._KeepAliveTransport, "__init__", init)
    lean = upstream_module.LeanClient.__init__

    def lean_init(self: Any, *args: Any, **kw: Any) -> None:  # the forwarder's own client
        lean(self, *args, **{**kw, "max_connections": POOL})

    monkeypatch.setattr(upstream_module.LeanClient, "__init__", lean_init)


def portal(url: str, cap: int, lane: bool, auditor: ListAuditor, timeout: float = 30.0) -> Portal:
    guard = Guard(
        policy=ServerPolicy({"staff": {("slow", "*")}}),
        authenticators=[People()],
        auditor=auditor,
        server="portal",
        max_in_flight_per_caller=cap,
    )
    return Portal(guard, [UpstreamSection(name="slow", url=url, timeout=timeout)], fast_lane=lane)


async def flood_then_ask(url: str, slow: Slow, calls: int, admitted: int) -> tuple[list[int], str]:
    """Start ``calls`` hanging calls as alice; once they hold the upstream, bob asks something quick."""
    refused: list[int] = []
    async with client(url, "tok-alice") as alice, client(url, "tok-bob") as bob:

        async def hang() -> None:
            try:
                await alice.call_tool("slow__hang", {})
            except MCPError as exc:
                refused.append(exc.error.code)

        async with anyio.create_task_group() as tg:
            for _ in range(calls):
                tg.start_soon(hang)
            with anyio.fail_after(10):
                while slow.running < admitted or len(refused) < calls - admitted:
                    await anyio.sleep(0.01)
            # Alice's calls still hang: bob's answer cannot be waiting for them to end.
            with anyio.fail_after(10):
                answer = await bob.call_tool("slow__quick", {})
            assert not slow.release.is_set()
            slow.release.set()
    return refused, str(answer.content[0].text)  # type: ignore[union-attr]


@pytest.mark.parametrize("lane", [True, False], ids=["fast lane", "sdk path"])
async def test_one_callers_hanging_calls_leave_room_for_another_caller(small_pool: None, lane: bool) -> None:
    slow, auditor = Slow(), ListAuditor()
    with slow.running_at() as up:
        served = portal(up, 4, lane, auditor)
        with portal_http(served) as url:
            refused, answer = await flood_then_ask(url, slow, 10, 4)
    assert answer == "quick"
    assert refused == [RATE_LIMITED] * 6 and slow.running == 4
    denied = [e for e in auditor.events if e.decision == "deny"]
    assert len(denied) == 6 and {e.error_code for e in denied} == {RATE_LIMITED}
    assert all(e.server == "slow" and e.principal and e.principal["subject"] == "alice" for e in denied)
    assert any("4 calls already in flight for you on server 'slow'" in e.reasons[0] for e in denied)
    assert served.guard.in_flight.total() == 0
    if lane:
        assert served.lane is not None and served.lane.served >= 11
    else:
        assert served.lane is None


async def test_calls_of_a_client_that_disconnects_give_their_slots_back_when_they_end(
    small_pool: None,
) -> None:
    """A disconnect does not stop the forwarded call: it holds its slot while it still holds a connection."""
    slow, auditor = Slow(), ListAuditor()
    with slow.running_at() as up:
        served = portal(up, 2, True, auditor)
        with portal_http(served) as url:
            async with anyio.create_task_group() as tg:

                async def hang() -> None:
                    async with client(url, "tok-alice") as alice:
                        await alice.call_tool("slow__hang", {})

                tg.start_soon(hang)
                tg.start_soon(hang)
                with anyio.fail_after(10):
                    while slow.running < 2:
                        await anyio.sleep(0.01)
                tg.cancel_scope.cancel()  # both clients go away mid-call
            assert served.guard.in_flight.total() == 2  # still running upstream
            async with client(url, "tok-alice") as alice:
                with pytest.raises(MCPError) as refused:
                    await alice.call_tool("slow__quick", {})
                assert refused.value.error.code == RATE_LIMITED
                slow.release.set()  # the upstream answers the abandoned calls
                with anyio.fail_after(10):
                    while served.guard.in_flight.total():
                        await anyio.sleep(0.01)
                assert (await alice.call_tool("slow__quick", {})).content[0].text == "quick"  # type: ignore[union-attr]
    assert served.guard.in_flight.total() == 0


@pytest.mark.parametrize("lane", [True, False], ids=["fast lane", "sdk path"])
async def test_a_call_the_upstream_timeout_ends_gives_its_slot_back(lane: bool) -> None:
    slow, auditor = Slow(), ListAuditor()
    with slow.running_at() as up:
        served = portal(up, 1, lane, auditor, timeout=0.5)
        with portal_http(served) as url:
            async with client(url, "tok-alice") as alice:
                with pytest.raises(MCPError) as late:
                    await alice.call_tool("slow__hang", {})
                assert late.value.error.code != RATE_LIMITED
                assert served.guard.in_flight.total() == 0
                assert (await alice.call_tool("slow__quick", {})).content[0].text == "quick"  # type: ignore[union-attr]
    [event] = [e for e in auditor.events if e.target == "hang"]
    assert event.outcome == "timeout"
