"""OpenTelemetry spans and metrics for guarded requests (extra ``otel``), after the MCP conventions.

One span per exchange the pipeline runs, named ``{mcp.method.name} {target}``,
``SERVER`` for a request a client made to this server and ``CLIENT`` for one
this host made to a server. Attributes follow the OpenTelemetry semantic
conventions for MCP and GenAI (``mcp.method.name``, ``mcp.session.id``,
``mcp.protocol.version``, ``jsonrpc.request.id``, ``gen_ai.tool.name``,
``gen_ai.prompt.name``, ``mcp.resource.uri``, ``error.type``) plus the guard's
own (``mcp_guard.decision``, ``mcp_guard.rule``, ``mcp_guard.outcome``).

Parent: the span active when the request arrives (the SDK's or FastMCP's own
server span, an HTTP instrumentation), else the W3C trace context a caller put
in ``params._meta`` (``traceparent`` / ``tracestate``), else none. Imported only
when tracing is on; the rest of the package never imports ``opentelemetry``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from .metrics import BUCKETS

if TYPE_CHECKING:
    from . import Ending

_TARGET_ATTRIBUTE = {
    "tools/call": "gen_ai.tool.name",
    "prompts/get": "gen_ai.prompt.name",
    "resources/read": "mcp.resource.uri",
    "resources/subscribe": "mcp.resource.uri",
    "resources/unsubscribe": "mcp.resource.uri",
}
_TARGET_FIELD = {"tools/call": "name", "prompts/get": "name"}
_NETWORK = {"stdio": "pipe", "http": "tcp"}
_ERROR_STATUSES = frozenset({"refused", "guard_error", "handler_error", "upstream_error", "timeout"})


def _version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mcp-guard")
    except PackageNotFoundError:
        return None


class Tracer:
    """Starts and ends the span of one exchange; ``provider`` defaults to the global one."""

    def __init__(self, provider: Any = None, meter_provider: Any = None, *, metrics: bool = False) -> None:
        version = _version()
        self._tracer = trace.get_tracer("mcp_guard", version, tracer_provider=provider)
        self._duration: dict[str, Any] = {}
        self._decisions: Any = None
        if metrics:
            from opentelemetry import metrics as otel_metrics

            meter = otel_metrics.get_meter("mcp_guard", version or "", meter_provider=meter_provider)
            self._meter = meter
            for direction, name in (("inbound", "server"), ("outbound", "client")):
                self._duration[direction] = meter.create_histogram(
                    f"mcp.{name}.operation.duration",
                    unit="s",
                    description=f"Duration of MCP requests as the {name} sees them, guard included",
                    explicit_bucket_boundaries_advisory=list(BUCKETS),
                )
            self._decisions = meter.create_counter(
                "mcp_guard.decisions", unit="{decision}", description="Policy decisions by outcome and rule"
            )

    def observable_gauges(self, read: Any) -> None:
        """Export the in-process gauges (audit queue depth, upstream health) as observable gauges."""
        from opentelemetry.metrics import Observation

        meter = getattr(self, "_meter", None)
        if meter is None:
            return
        exported: set[str] = self.__dict__.setdefault("_exported", set())

        def callback(name: str) -> Any:
            def observe(_options: Any) -> list[Observation]:
                for gauge, values in read():
                    if gauge.name == name:
                        return [
                            Observation(v, dict(zip(gauge.labels, k, strict=True))) for k, v in values.items()
                        ]
                return []

            return observe

        for gauge, _ in read():
            if gauge.name in exported:
                continue
            exported.add(gauge.name)
            meter.create_observable_gauge(
                gauge.name.replace("mcp_guard_", "mcp_guard.", 1),
                callbacks=[callback(gauge.name)],
                description=gauge.help,
            )

    def start(
        self,
        method: str,
        params: Mapping[str, Any] | None,
        direction: str,
        server: str,
        context: Any,
    ) -> tuple[Any, object]:
        """Open the exchange's span and make it current; returns (span, token to detach)."""
        target = None
        field = _TARGET_FIELD.get(method)
        if params is not None:
            raw = params.get(field) if field is not None else params.get("uri")
            target = str(raw) if isinstance(raw, (str, int)) else None
        parent = None
        if direction == "inbound" and not trace.get_current_span().get_span_context().is_valid:
            meta = params.get("_meta") if params is not None else None
            if isinstance(meta, Mapping) and "traceparent" in meta:
                carrier = {k: str(meta[k]) for k in ("traceparent", "tracestate") if k in meta}
                parent = propagate.extract(carrier)
        attributes: dict[str, Any] = {"mcp.method.name": method, "mcp_guard.server": server}
        if target is not None and method in _TARGET_ATTRIBUTE:
            attributes[_TARGET_ATTRIBUTE[method]] = target
        if method == "tools/call":
            attributes["gen_ai.operation.name"] = "execute_tool"
        if context is not None:
            if context.session_id:
                attributes["mcp.session.id"] = context.session_id
            if context.request_id is not None:
                attributes["jsonrpc.request.id"] = str(context.request_id)
            if context.protocol_version:
                attributes["mcp.protocol.version"] = context.protocol_version
            if context.transport in _NETWORK:
                attributes["network.transport"] = _NETWORK[context.transport]
        span = self._tracer.start_span(
            f"{method} {target}" if target else method,
            context=parent,
            kind=SpanKind.SERVER if direction == "inbound" else SpanKind.CLIENT,
            attributes=attributes,
        )
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        return span, token

    def end(self, handle: tuple[Any, object], ending: Ending, seconds: float) -> None:
        span, token = handle
        with contextlib.suppress(Exception):  # a context switched under us: the span still ends
            otel_context.detach(token)  # type: ignore[arg-type]
        span.set_attribute("mcp_guard.decision", ending.decision)
        span.set_attribute("mcp_guard.outcome", ending.outcome)
        if ending.rule:
            span.set_attribute("mcp_guard.rule", ending.rule)
        if ending.outcome in _ERROR_STATUSES:
            span.set_attribute("error.type", ending.error_type or ending.outcome)
            span.set_status(Status(StatusCode.ERROR, f"{ending.outcome}"))
        span.end()
        self.record(ending, seconds)

    def record(self, ending: Ending, seconds: float) -> None:
        """The exchange's OpenTelemetry metrics (when they are on)."""
        histogram = self._duration.get(ending.direction)
        if histogram is not None:
            attrs = {"mcp.method.name": ending.method}
            if ending.outcome in _ERROR_STATUSES:
                attrs["error.type"] = ending.error_type or ending.outcome
            histogram.record(seconds, attrs)
        if self._decisions is not None and ending.decided:
            self._decisions.add(
                1, {"mcp_guard.decision": ending.decision, "mcp_guard.rule": ending.rule or ""}
            )


__all__ = ["Tracer"]
