"""The portal x every outcome: exactly one audit event per downstream request, with its outcome.

The portal's front door delegates the decision to a guarded session per
upstream; the nested run fills the downstream request's one event.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from mcp.shared.exceptions import MCPError

from mcp_guard import errors
from mcp_guard.config import UpstreamSection
from mcp_guard.integrations.http import loopback_security
from mcp_guard.portal import Portal

from .helpers import ListAuditor
from .http_util import free_port, serve
from .test_pipeline_outcomes import TOOLS, Probe, cancel_while_running, events_for
from .test_portal_support import ServerPolicy, client, make_guard, portal_http

MODES = ["legacy", "auto"]
GRANTS = {"analyst": {("probe", "ok"), ("probe", "boom"), ("probe", "slow")}}


@contextmanager
def probe_upstream(probe: Probe) -> Iterator[str]:
    port = free_port()
    app = probe.server().streamable_http_app(transport_security=loopback_security(port))
    with serve(app, port) as url:
        yield url + "/mcp"


def build(url: str, auditor: ListAuditor, timeout: float = 30.0) -> Portal:
    guard = make_guard(ServerPolicy(GRANTS), auditor)
    return Portal(guard, [UpstreamSection(name="probe", url=url, timeout=timeout)])


def outcomes(events: list[object]) -> list[tuple[str, str | None]]:
    return [(e.decision, e.outcome) for e in events]  # type: ignore[attr-defined]


@pytest.mark.parametrize("mode", MODES)
async def test_portal_allowed_denied_upstream_error_and_cancelled(mode: str) -> None:
    probe, auditor = Probe(), ListAuditor()
    with probe_upstream(probe) as up, portal_http(build(up, auditor)) as url:
        async with client(url, "tok-alice", mode) as c:
            await c.call_tool("probe__ok", {})
            with pytest.raises(MCPError):
                await c.call_tool("probe__forbidden", {})
            with pytest.raises(MCPError):
                await c.call_tool("probe__boom", {})
            await cancel_while_running(probe, lambda: c.call_tool("probe__slow", {}))
        found = {t: outcomes(await events_for(auditor, t)) for t in TOOLS}
    assert found == {
        "ok": [("allow", "ok")],
        "forbidden": [("deny", "refused")],
        "boom": [("allow", "upstream_error")],
        "slow": [("allow", "cancelled")],
    }
    # The events name the upstream and its own tool name, as the policy saw them.
    assert {e.server for e in auditor.events if e.method == "tools/call"} == {"probe"}


@pytest.mark.parametrize("mode", MODES)
async def test_portal_records_an_upstream_timeout_once(mode: str) -> None:
    probe, auditor = Probe(), ListAuditor()
    with probe_upstream(probe) as up, portal_http(build(up, auditor, timeout=0.5)) as url:
        async with client(url, "tok-alice", mode) as c:
            with pytest.raises(MCPError) as exc:
                await c.call_tool("probe__slow", {})
            assert exc.value.error.code == errors.GUARD_UNAVAILABLE
        assert outcomes(await events_for(auditor, "slow")) == [("allow", "timeout")]
    assert [e for e in auditor.events if e.method == "tools/call" and e.server != "probe"] == []


async def test_an_unknown_name_is_one_refusal() -> None:
    probe, auditor = Probe(), ListAuditor()
    with probe_upstream(probe) as up, portal_http(build(up, auditor)) as url:
        async with client(url, "tok-alice") as c:
            with pytest.raises(MCPError):
                await c.call_tool("nobody__nothing", {})
    refused = [e for e in auditor.events if e.method == "tools/call"]
    assert outcomes(refused) == [("deny", "refused")]
    assert refused[0].reasons[0] == "no served tool 'nobody__nothing': no upstream serves it"
