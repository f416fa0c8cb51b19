"""Prometheus ``/metrics``, ``/healthz`` and ``/readyz`` on a running portal; the metrics registry."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("prometheus_client")

from mcp_guard import ConfigError, Guard, load_config
from mcp_guard.portal import Portal
from mcp_guard.telemetry import GuardMetrics, Telemetry
from mcp_guard.telemetry.metrics import MAX_RULES
from mcp_guard.telemetry.prometheus import exposition, registry_for

from .helpers import KeywordSanitizer, ListAuditor
from .test_portal_support import GRANTS, ServerPolicy, TokenTable, client, portal_http, stdio


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample of a scrape (0 when the series does not exist yet)."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def build(auditor: ListAuditor, *, public: bool = False) -> Portal:
    guard = Guard(
        policy=ServerPolicy(GRANTS),
        authenticators=[TokenTable()],
        auditor=auditor,
        sanitizers=[KeywordSanitizer()],
        server="portal",
        telemetry=Telemetry(),
    )
    portal = Portal(guard, [stdio("weather", "weather_server.py", prefix="wx_")])
    portal.metrics_endpoint, portal.metrics_public = True, public
    return portal


async def test_a_scrape_of_a_running_portal_sees_decisions_change() -> None:
    auditor = ListAuditor()
    auth = {"Authorization": "Bearer tok-bob"}
    with portal_http(build(auditor)) as url:
        async with httpx.AsyncClient(base_url=url) as http:
            before = (await http.get("/metrics", headers=auth)).text
            async with client(url, "tok-bob") as c:
                await c.call_tool("wx_forecast", {"city": "Oslo"})
                await c.call_tool("wx_forecast", {"city": "Rome"})
                with pytest.raises(Exception):  # noqa: B017 - refused: bob may not use it
                    await c.call_tool("wx_weather_alerts", {"region": "north"})
            scrape = await http.get("/metrics", headers=auth)
            assert scrape.status_code == 200
            assert scrape.headers["content-type"].startswith("text/plain")
            after = scrape.text
            health = await http.get("/healthz")
            ready = await http.get("/readyz")
    allowed = dict(method="tools/call", direction="inbound", decision="allow", outcome="ok")
    assert (
        sample(after, "mcp_guard_requests_total", **allowed)
        - sample(before, "mcp_guard_requests_total", **allowed)
        == 2
    )
    assert sample(after, "mcp_guard_decisions_total", decision="allow", rule="grant") >= 2
    # The portal decides per upstream (outbound through its guarded sessions): refusals are counted too.
    assert sample(after, "mcp_guard_requests_total", method="tools/call", decision="deny") >= 1
    assert (
        sample(after, "mcp_guard_request_duration_seconds_count", method="tools/call", direction="inbound")
        >= 3
    )
    assert sample(after, "mcp_guard_upstream_up", server="weather") == 1.0
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "audit": "ok",
        "upstreams": {"up": 1, "starting": 0, "down": 0},
    }


async def test_metrics_need_a_credential_unless_public() -> None:
    auditor = ListAuditor()
    with portal_http(build(auditor)) as url:
        async with httpx.AsyncClient(base_url=url) as http:
            missing = await http.get("/metrics")
            wrong = await http.get("/metrics", headers={"Authorization": "Bearer nope"})
            healthy = await http.get("/healthz")  # never needs one
            scrape = (await http.get("/metrics", headers={"Authorization": "Bearer tok-bob"})).text
    assert missing.status_code == wrong.status_code == 401
    assert "Bearer" in missing.headers["www-authenticate"]
    assert "mcp_guard" not in missing.text
    assert healthy.status_code == 200
    refused = [e for e in auditor.events if e.method == "http/metrics"]
    assert len(refused) == 2 and all(e.decision == "deny" for e in refused)
    # Refusals before the pipeline (here: of /metrics itself) are counted like the others.
    assert sample(scrape, "mcp_guard_requests_total", method="http/metrics", outcome="refused") == 2
    with portal_http(build(ListAuditor(), public=True)) as url:
        assert httpx.get(url + "/metrics").status_code == 200


async def test_readyz_is_503_while_the_audit_trail_fails() -> None:
    auditor = ListAuditor()
    with portal_http(build(auditor)) as url:
        auditor.fail = True
        ready = httpx.get(url + "/readyz")
    assert ready.status_code == 503
    assert ready.json()["audit"] == "failing" and ready.json()["status"] == "not ready"


def test_without_metrics_there_is_no_metrics_endpoint() -> None:
    guard = Guard(policy=ServerPolicy(GRANTS), authenticators=[TokenTable()], auditor=ListAuditor())
    portal = Portal(guard, [])
    with portal_http(portal) as url:
        assert httpx.get(url + "/metrics").status_code == 404
        assert httpx.get(url + "/healthz").status_code == 200
        assert httpx.get(url + "/readyz").json()["upstreams"] == {"up": 0, "starting": 0, "down": 0}


def test_config_keys_are_validated(tmp_path: Path) -> None:
    (tmp_path / "guard.toml").write_text("[portal]\nmetrics = true\nmetrics_publc = true\n")
    with pytest.raises(ConfigError, match="metrics_public"):
        load_config(tmp_path / "guard.toml")
    (tmp_path / "guard.toml").write_text('[portal]\nmetrics = "yes"\n')
    with pytest.raises(ConfigError, match=r"guard.toml:2.*portal.metrics"):
        load_config(tmp_path / "guard.toml")
    (tmp_path / "guard.toml").write_text("[portal]\nmetrics = true\n[guard]\nopentelemetry = true\n")
    config = load_config(tmp_path / "guard.toml")
    assert config.portal.metrics and not config.portal.metrics_public and config.guard.opentelemetry


def test_portal_from_config_with_metrics_counts(tmp_path: Path) -> None:
    (tmp_path / "guard.toml").write_text("[portal]\nmetrics = true\n")
    portal = Portal.from_guard_config(load_config(tmp_path / "guard.toml"), auditor=ListAuditor())
    assert portal.metrics_endpoint and portal.guard.telemetry is not None
    assert portal.guard.telemetry.metrics is not None and portal.guard.telemetry.tracer is None


def test_labels_stay_bounded() -> None:
    metrics = GuardMetrics()
    for i in range(MAX_RULES + 50):
        metrics.observe(f"x/{i}", "inbound", "allow", "ok", f"rule-{i}", True, 0.001)
    snap = metrics.snapshot()
    assert {k[0] for k in snap.requests} == {"other"}
    assert len(snap.decisions) == MAX_RULES + 1 and snap.decisions[("allow", "other")] == 50


def test_audit_queue_depth_gauge() -> None:
    class QueuedAuditor(ListAuditor):
        def stats(self) -> dict[str, Any]:
            return {"queued": 7, "held": 2, "failing": False}

    telemetry = Telemetry()
    Guard(auditor=QueuedAuditor(), telemetry=telemetry)
    assert telemetry.metrics is not None
    text = exposition(registry_for(telemetry.metrics))[0].decode()
    assert sample(text, "mcp_guard_audit_queue_depth") == 9.0
    assert sample(text, "mcp_guard_audit_failing") == 0.0
