"""Observability of the guard: in-process metrics, OpenTelemetry spans and metrics, health.

``Guard(telemetry=Telemetry(...))`` (or ``[guard] opentelemetry = true`` and
``[portal] metrics = true``) turns it on; without it the pipeline does no
extra work at all. The pipeline calls :meth:`Telemetry.begin` and
:meth:`Telemetry.end` around every exchange, refusals and failures included,
so no path is missing from the figures. See ``docs/observability.md``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .metrics import GuardMetrics, Snapshot, audit_gauges


@dataclass(frozen=True, slots=True)
class Ending:
    """How an exchange ended: the labels its figures and span carry (those of its audit event)."""

    method: str
    direction: str
    decision: str
    outcome: str
    rule: str | None
    #: Whether the policy decided it (refusals before the decision count no rule).
    decided: bool
    error_type: str | None


class Telemetry:
    """What to observe: ``metrics`` (kept in process, for ``/metrics``) and OpenTelemetry.

    ``traces``: a span per exchange through ``tracer_provider`` (default: the
    global one). ``otel_metrics``: duration histograms, decision counters and
    the gauges through ``meter_provider`` (default: the global one). Both need
    the ``otel`` extra (``opentelemetry-api``); an import error names it.
    """

    def __init__(
        self,
        *,
        metrics: GuardMetrics | bool = True,
        traces: bool = False,
        otel_metrics: bool = False,
        tracer_provider: Any = None,
        meter_provider: Any = None,
    ) -> None:
        if metrics is True:
            metrics = GuardMetrics()
        self.metrics: GuardMetrics | None = metrics or None
        self._gauges = self.metrics if self.metrics is not None else GuardMetrics()
        self.tracer: Any = None
        if traces or otel_metrics or tracer_provider is not None or meter_provider is not None:
            try:
                from .tracing import Tracer
            except ImportError as exc:
                raise ImportError("OpenTelemetry is not installed: pip install 'mcp-guard[otel]'") from exc
            self.tracer = Tracer(
                tracer_provider, meter_provider, metrics=otel_metrics or meter_provider is not None
            )
            self._traces = traces or tracer_provider is not None or not otel_metrics
        else:
            self._traces = False

    def watch(self, name: str, help: str, labels: tuple[str, ...], read: Any) -> None:
        """A gauge read when metrics are exported (upstream health, queue depths)."""
        self._gauges.gauge(name, help, labels, read)

    def refused(self, method: str, decision: str = "deny") -> None:
        """Count a refusal made before the pipeline ran (the HTTP layer's 401s, session refusals)."""
        if self.metrics is not None:
            self.metrics.count(method, "inbound", decision, "refused" if decision != "allow" else "ok")

    def watch_audit(self, auditor: Any) -> None:
        audit_gauges(self._gauges, auditor)

    def export_gauges(self) -> None:
        """Expose the registered gauges through OpenTelemetry too (call once gauges are registered)."""
        if self.tracer is not None:
            self.tracer.observable_gauges(lambda: self._gauges.snapshot().gauges)

    def begin(
        self, method: str, params: Mapping[str, Any] | None, direction: str, server: str, context: Any
    ) -> Any:
        span = None
        if self.tracer is not None and self._traces:
            span = self.tracer.start(method, params, direction, server, context)
        return (time.perf_counter(), span)

    def end(self, handle: Any, ending: Ending) -> None:
        started, span = handle
        seconds = time.perf_counter() - started
        if self.metrics is not None:
            self.metrics.observe(
                ending.method,
                ending.direction,
                ending.decision,
                ending.outcome,
                ending.rule,
                ending.decided,
                seconds,
            )
        if self.tracer is not None:
            if span is not None:
                self.tracer.end(span, ending, seconds)
            else:
                self.tracer.record(ending, seconds)


__all__ = ["Ending", "GuardMetrics", "Snapshot", "Telemetry"]
