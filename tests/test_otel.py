"""OpenTelemetry: one span per guarded request after the MCP conventions, trace context from ``_meta``,
and metrics (durations, decisions, audit queue depth), exported with the SDK's in-memory exporters."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")

from mcp import Client
from mcp.shared.exceptions import MCPError
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from mcp_guard import Guard, Principal
from mcp_guard.telemetry import Telemetry

from .helpers import ListAuditor, RolePolicy, notes_server

ANALYST = Principal("alice", roles=frozenset({"analyst"}))
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


def traced(**kw: Any) -> tuple[Any, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    guard = Guard(
        policy=RolePolicy({"analyst": {"add"}}),
        anonymous=ANALYST,
        auditor=ListAuditor(),
        server="notes",
        telemetry=Telemetry(traces=True, tracer_provider=provider, **kw),
    )
    return guard.protect(notes_server()), exporter


def guard_spans(exporter: InMemorySpanExporter) -> list[Any]:
    return [s for s in exporter.get_finished_spans() if s.instrumentation_scope.name == "mcp_guard"]


async def test_one_span_per_request_with_mcp_attributes() -> None:
    server, exporter = traced()
    async with Client(server) as client:
        assert (await client.call_tool("add", {"a": 1, "b": 2})).structured_content == {"result": 3}
        with pytest.raises(MCPError):
            await client.call_tool("delete_notes", {"query": "x"})
    spans = {s.name: s for s in guard_spans(exporter)}
    allowed, denied = spans["tools/call add"], spans["tools/call delete_notes"]
    assert allowed.kind is SpanKind.SERVER
    attrs = dict(allowed.attributes or {})
    assert attrs["mcp.method.name"] == "tools/call"
    assert attrs["gen_ai.tool.name"] == "add"
    assert attrs["gen_ai.operation.name"] == "execute_tool"
    assert attrs["mcp_guard.decision"] == "allow" and attrs["mcp_guard.rule"] == "role-allow"
    assert attrs["mcp_guard.outcome"] == "ok"
    assert attrs["mcp.session.id"] and attrs["jsonrpc.request.id"]
    assert allowed.status.status_code is not StatusCode.ERROR
    denied_attrs = dict(denied.attributes or {})
    assert denied_attrs["mcp_guard.decision"] == "deny"
    assert denied_attrs["error.type"] == "-32003"  # the guard's access-denied code
    assert denied.status.status_code is StatusCode.ERROR
    # Lists and the handshake are traced too: no path is missing.
    assert "tools/list" in spans and ({"initialize", "server/discover"} & set(spans))


async def test_trace_context_in_meta_is_the_parent() -> None:
    server, exporter = traced()
    traceparent = f"00-{TRACE_ID}-{PARENT_ID}-01"
    async with Client(server) as client:
        await client.call_tool("add", {"a": 1, "b": 1}, meta={"traceparent": traceparent})  # type: ignore[typeddict-unknown-key]
    span = next(s for s in guard_spans(exporter) if s.name == "tools/call add")
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.parent is not None and span.parent.trace_id == span.context.trace_id


async def test_otel_metrics_durations_decisions_and_audit_queue() -> None:
    reader = InMemoryMetricReader()
    telemetry = Telemetry(otel_metrics=True, meter_provider=MeterProvider(metric_readers=[reader]))
    guard = Guard(
        policy=RolePolicy({"analyst": {"add"}}), anonymous=ANALYST, auditor=ListAuditor(), telemetry=telemetry
    )
    telemetry.watch("mcp_guard_upstream_up", "1 while an upstream is up", ("server",), lambda: {("db",): 1.0})
    telemetry.export_gauges()
    async with Client(guard.protect(notes_server())) as client:
        await client.call_tool("add", {"a": 1, "b": 2})
        with pytest.raises(MCPError):
            await client.call_tool("search_notes", {"query": "q"})
    data = reader.get_metrics_data()
    assert data is not None
    points: dict[str, list[Any]] = {}
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                points.setdefault(metric.name, []).extend(metric.data.data_points)
    calls = [
        p for p in points["mcp.server.operation.duration"] if p.attributes["mcp.method.name"] == "tools/call"
    ]
    assert sum(p.count for p in calls) == 2
    assert [p.attributes.get("error.type") for p in calls if p.attributes.get("error.type")] == ["-32003"]
    assert min(p.explicit_bounds[0] for p in calls) < 0.01  # seconds, not milliseconds
    decisions = {
        (p.attributes["mcp_guard.decision"], p.attributes["mcp_guard.rule"]): p.value
        for p in points["mcp_guard.decisions"]
    }
    assert decisions == {("allow", "role-allow"): 1, ("deny", ""): 1}
    assert [p.value for p in points["mcp_guard.upstream_up"]] == [1.0]


def test_without_telemetry_nothing_is_imported_or_observed() -> None:
    guard = Guard(policy=RolePolicy({}), anonymous=ANALYST)
    assert guard.telemetry is None
    metrics_only = Telemetry()
    assert metrics_only.tracer is None and metrics_only.metrics is not None


async def test_meta_trace_context_is_honoured_without_an_sdk_span() -> None:
    """A transport with no span of its own (the portal's front door, a custom adapter): `_meta` decides."""
    from datetime import datetime, timezone

    from mcp_guard.model import RequestContext
    from mcp_guard.pipeline import Exchange

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    guard = Guard(
        policy=RolePolicy({"analyst": {"add"}}),
        anonymous=ANALYST,
        telemetry=Telemetry(traces=True, tracer_provider=provider),
    )
    params = {"name": "add", "arguments": {}, "_meta": {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"}}
    context = RequestContext(time=datetime.now(timezone.utc), transport="http", request_id=7)

    async def call(admitted: Any) -> dict[str, Any]:
        return {"content": [], "isError": False}

    await guard.run(Exchange("tools/call", params, "notes", context), call)
    (span,) = exporter.get_finished_spans()
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.parent is not None and format(span.parent.span_id, "016x") == PARENT_ID
    assert dict(span.attributes or {})["network.transport"] == "tcp"


async def test_guard_toml_turns_opentelemetry_on(tmp_path: Any) -> None:
    (tmp_path / "guard.toml").write_text("[guard]\nopentelemetry = true\n")
    guard = Guard.from_config(tmp_path / "guard.toml", auditor=ListAuditor())
    try:
        assert guard.telemetry is not None and guard.telemetry.tracer is not None
        assert guard.telemetry.metrics is not None  # /metrics keeps working alongside
    finally:
        await guard.aclose()
