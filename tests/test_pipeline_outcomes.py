"""One audit event per request, whatever happens: every adapter x every outcome.

Adapters: the server middleware (in memory, both protocol eras), the client
wrapper around an unguarded server, and (in ``test_portal_outcomes.py``) the
portal. Outcomes: allowed, denied, handler or upstream error, timeout,
cancelled by the caller.
"""

from __future__ import annotations

import threading
from typing import Any

import anyio
import pytest
from mcp import Client, types
from mcp.client.streamable_http import streamable_http_client
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import MCPError

from mcp_guard.guard import Guard
from mcp_guard.integrations.client import guarded_client
from mcp_guard.integrations.http import loopback_security
from mcp_guard.model import AuditEvent, Principal

from .helpers import ListAuditor, RolePolicy
from .http_util import free_port, serve

MODES = ["legacy", "auto"]
ALICE = Principal("alice", roles=frozenset({"analyst"}))
TOOLS = ["ok", "boom", "slow", "forbidden"]


class Probe:
    """A low-level server whose tools succeed, raise, or hang until cancelled."""

    def __init__(self) -> None:
        self.started = threading.Event()  # set from whichever thread serves the call
        self.finished = False

    def server(self) -> Server[Any]:
        async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
            return types.ListToolsResult(
                tools=[
                    types.Tool(name=n, description=f"{n} tool", input_schema={"type": "object"})
                    for n in TOOLS
                ]
            )

        async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
            if params.name == "boom":
                raise MCPError(-32010, "the handler failed")
            if params.name == "slow":
                self.started.set()
                await anyio.sleep(30)
                self.finished = True
            return types.CallToolResult(content=[types.TextContent(type="text", text="done")])

        return Server("probe", on_list_tools=list_tools, on_call_tool=call_tool)


def policy() -> RolePolicy:
    return RolePolicy({"analyst": {"ok", "boom", "slow"}})


async def events_for(auditor: ListAuditor, target: str, count: int = 1) -> list[AuditEvent]:
    """The tools/call events for ``target``, waiting briefly for ones recorded after a cancel."""
    with anyio.move_on_after(5):
        while len([e for e in auditor.events if e.target == target]) < count:
            await anyio.sleep(0.01)
    return [e for e in auditor.events if e.method == "tools/call" and e.target == target]


async def cancel_while_running(probe: Probe, call: Any) -> None:
    async with anyio.create_task_group() as tg:
        tg.start_soon(call)
        with anyio.fail_after(5):
            while not probe.started.is_set():
                await anyio.sleep(0.01)
        tg.cancel_scope.cancel()


# ---------------------------------------------------------------------- server middleware, in memory
def guarded_probe() -> tuple[Probe, Server[Any], ListAuditor]:
    probe, auditor = Probe(), ListAuditor()
    server = probe.server()
    guard = Guard(policy=policy(), auditor=auditor, anonymous=ALICE, server="probe")
    guard.protect(server, read_env=False)
    return probe, server, auditor


@pytest.mark.parametrize("mode", MODES)
async def test_server_allowed_denied_and_handler_error_each_leave_one_event(mode: str) -> None:
    _, server, auditor = guarded_probe()
    async with Client(server, mode=mode) as client:
        assert (await client.call_tool("ok", {})).content[0].text == "done"  # type: ignore[union-attr]
        with pytest.raises(MCPError) as denied:
            await client.call_tool("forbidden", {})
        assert denied.value.error.message == "Access denied"
        with pytest.raises(MCPError):
            await client.call_tool("boom", {})
    [ok] = await events_for(auditor, "ok")
    assert (ok.decision, ok.outcome) == ("allow", "ok")
    [no] = await events_for(auditor, "forbidden")
    assert (no.decision, no.outcome) == ("deny", "refused")
    [boom] = await events_for(auditor, "boom")
    assert (boom.decision, boom.outcome, boom.error_code) == ("allow", "handler_error", -32010)
    assert boom.result is not None and boom.result.is_error


@pytest.mark.parametrize("mode", MODES)
async def test_server_records_a_call_the_client_cancels(mode: str) -> None:
    probe, server, auditor = guarded_probe()
    async with Client(server, mode=mode) as client:
        await cancel_while_running(probe, lambda: client.call_tool("slow", {}))
        [event] = await events_for(auditor, "slow")
    assert event.decision == "allow" and event.outcome == "cancelled"
    assert event.latency_ms is not None and event.latency_ms > 0
    assert not probe.finished


# ---------------------------------------------------------------------- server middleware, over HTTP
@pytest.mark.parametrize("mode", MODES)
async def test_server_over_http_records_every_outcome_once(mode: str) -> None:
    """2025-11-25 cancels with notifications/cancelled; a 2026-07-28 caller drops the response."""
    probe, server, auditor = guarded_probe()
    port = free_port()
    app = server.streamable_http_app(transport_security=loopback_security(port))
    with serve(app, port) as url:
        async with Client(streamable_http_client(url + "/mcp"), mode=mode) as client:  # type: ignore[arg-type]
            await client.call_tool("ok", {})
            with pytest.raises(MCPError):
                await client.call_tool("forbidden", {})
            with pytest.raises(MCPError):
                await client.call_tool("boom", {})
            await cancel_while_running(probe, lambda: client.call_tool("slow", {}))
        outcomes = {t: [(e.decision, e.outcome) for e in await events_for(auditor, t)] for t in TOOLS}
    assert outcomes == {
        "ok": [("allow", "ok")],
        "forbidden": [("deny", "refused")],
        "boom": [("allow", "handler_error")],
        "slow": [("allow", "cancelled")],
    }


# ---------------------------------------------------------------------- client wrapper
def host_guard() -> tuple[Guard, ListAuditor]:
    auditor = ListAuditor()
    return Guard(policy=policy(), auditor=auditor), auditor


@pytest.mark.parametrize("mode", MODES)
async def test_client_allowed_denied_upstream_error_and_timeout(mode: str) -> None:
    probe = Probe()
    guard, auditor = host_guard()
    async with guarded_client(guard, probe.server(), server="probe", principal=ALICE, mode=mode) as session:
        await session.call_tool("ok", {})
        with pytest.raises(MCPError):
            await session.call_tool("forbidden", {})
        with pytest.raises(MCPError):
            await session.call_tool("boom", {})
        with pytest.raises(MCPError):
            await session.call_tool("slow", {}, read_timeout_seconds=0.2)
    results = {t: await events_for(auditor, t) for t in ("ok", "forbidden", "boom", "slow")}
    assert [(e.decision, e.outcome) for e in results["ok"]] == [("allow", "ok")]
    assert [(e.decision, e.outcome) for e in results["forbidden"]] == [("deny", "refused")]
    assert [(e.decision, e.outcome) for e in results["boom"]] == [("allow", "upstream_error")]
    assert [(e.decision, e.outcome) for e in results["slow"]] == [("allow", "timeout")]
    assert all(e.direction == "outbound" for v in results.values() for e in v)


@pytest.mark.parametrize("mode", MODES)
async def test_client_records_a_call_the_host_cancels(mode: str) -> None:
    probe = Probe()
    guard, auditor = host_guard()
    async with guarded_client(guard, probe.server(), server="probe", principal=ALICE, mode=mode) as session:
        await cancel_while_running(probe, lambda: session.call_tool("slow", {}))
    [event] = await events_for(auditor, "slow")
    assert (event.decision, event.outcome) == ("allow", "cancelled")


async def test_an_unavailable_audit_refuses_before_the_call() -> None:
    """No audit, no access: the handler never runs when the trail cannot take the event."""
    probe, server, auditor = guarded_probe()
    async with Client(server, mode="legacy") as client:
        auditor.fail = True
        with pytest.raises(MCPError) as refused:
            await client.call_tool("slow", {})
    assert refused.value.error.code == -32050
    assert not probe.started.is_set()


class BrokenAuditor(ListAuditor):
    """A plugin auditor whose ``record`` fails for allowed calls only (refusals still go through)."""

    def record(self, event: AuditEvent) -> None:
        if event.decision == "allow" and event.method == "tools/call":
            raise RuntimeError("disk on fire")
        super().record(event)


async def test_an_allowed_call_whose_event_cannot_be_recorded_is_not_delivered() -> None:
    """No audit, no access: the result is withheld, the caller gets -32050, the failure is on record."""
    probe, auditor = Probe(), BrokenAuditor()
    server = probe.server()
    Guard(policy=policy(), auditor=auditor, anonymous=ALICE, server="probe").protect(server, read_env=False)
    async with Client(server, mode="legacy") as client:
        with pytest.raises(MCPError) as refused:
            await client.call_tool("ok", {})
    assert refused.value.error.code == -32050
    [event] = [e for e in auditor.events if e.method == "tools/call"]
    assert event.decision == "error" and "audit failed" in event.reasons[0]
