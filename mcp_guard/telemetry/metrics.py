"""In-process counters, latency histograms and gauges of a guard: cheap to update, read on scrape.

Updating one is a dictionary increment under an uncontended lock and a
bisection into fixed buckets; nothing is formatted, exported or written on
the request path. Exporters (Prometheus ``/metrics``, OpenTelemetry
observable instruments) read a :meth:`GuardMetrics.snapshot` when asked.
Labels are bounded: methods the guard does not know count as ``other`` and
rule ids past :data:`MAX_RULES` as ``other``, so no caller can grow the
series without limit.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..classify import REQUESTS

#: Upper bounds (seconds) of the latency buckets: the guard's own overhead is tens of
#: microseconds, a handler or upstream call up to many seconds.
BUCKETS: tuple[float, ...] = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
#: Distinct rule ids counted before the rest are counted as ``other``.
MAX_RULES = 512
_KNOWN = frozenset(REQUESTS) | frozenset(
    {
        "notifications/initialized",
        "notifications/cancelled",
        "notifications/progress",
        "notifications/roots/list_changed",
        "http/authenticate",
        "http/reject",
        "http/session",
        "http/metrics",
    }
)

#: A gauge callback: label values (a tuple matching the gauge's label names) -> value.
GaugeRead = Callable[[], Mapping[tuple[str, ...], float]]


@dataclass(slots=True)
class Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))
    total: float = 0.0
    count: int = 0


@dataclass(frozen=True, slots=True)
class Gauge:
    name: str
    help: str
    labels: tuple[str, ...]
    read: GaugeRead


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A consistent copy of every series, for one export."""

    requests: dict[tuple[str, str, str, str], int]
    decisions: dict[tuple[str, str], int]
    latency: dict[tuple[str, str], Histogram]
    gauges: list[tuple[Gauge, dict[tuple[str, ...], float]]]


class GuardMetrics:
    """Counts every exchange the pipeline ran, by method, direction, decision, outcome and rule."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, str, str], int] = {}
        self._decisions: dict[tuple[str, str], int] = {}
        self._latency: dict[tuple[str, str], Histogram] = {}
        self._rules: set[str] = set()
        self._gauges: dict[str, Gauge] = {}

    def observe(
        self,
        method: str,
        direction: str,
        decision: str,
        outcome: str,
        rule: str | None,
        decided: bool,
        seconds: float,
    ) -> None:
        """One finished exchange; ``decided``: a policy decision was taken (not housekeeping or lists)."""
        method = method if method in _KNOWN else "other"
        slot = bisect_left(BUCKETS, seconds)
        with self._lock:
            key = (method, direction, decision, outcome)
            self._requests[key] = self._requests.get(key, 0) + 1
            if decided:
                name = rule or ""
                if name and name not in self._rules:
                    if len(self._rules) >= MAX_RULES:
                        name = "other"
                    else:
                        self._rules.add(name)
                dkey = (decision, name)
                self._decisions[dkey] = self._decisions.get(dkey, 0) + 1
            hist = self._latency.get((method, direction))
            if hist is None:
                hist = self._latency[(method, direction)] = Histogram()
            hist.counts[slot] += 1
            hist.total += seconds
            hist.count += 1

    def count(self, method: str, direction: str, decision: str, outcome: str) -> None:
        """A request refused before the pipeline (HTTP 401/403/421, a session refused): no latency."""
        method = method if method in _KNOWN else "other"
        key = (method, direction, decision, outcome)
        with self._lock:
            self._requests[key] = self._requests.get(key, 0) + 1

    def gauge(self, name: str, help: str, labels: tuple[str, ...], read: GaugeRead) -> None:
        """Register (or replace) a gauge read at export time, e.g. the audit queue depth."""
        with self._lock:
            self._gauges[name] = Gauge(name, help, labels, read)

    def snapshot(self) -> Snapshot:
        with self._lock:
            requests = dict(self._requests)
            decisions = dict(self._decisions)
            latency = {k: Histogram(list(h.counts), h.total, h.count) for k, h in self._latency.items()}
            gauges = list(self._gauges.values())
        read: list[tuple[Gauge, dict[tuple[str, ...], float]]] = []
        for g in gauges:
            try:
                values = dict(g.read())
            except Exception:
                values = {}  # a failing source shows as no sample, never as a failed scrape
            read.append((g, values))
        return Snapshot(requests, decisions, latency, read)


def audit_gauges(metrics: GuardMetrics, auditor: Any) -> None:
    """Queue depth and failing state of an audit log that reports :meth:`stats`."""
    stats = getattr(auditor, "stats", None)
    if stats is None:
        return

    def queued() -> dict[tuple[str, ...], float]:
        s = stats()
        return {(): float(s.get("queued", 0)) + float(s.get("held", 0))}

    def failing() -> dict[tuple[str, ...], float]:
        return {(): 1.0 if stats().get("failing") else 0.0}

    metrics.gauge("mcp_guard_audit_queue_depth", "Audit events waiting to be written", (), queued)
    metrics.gauge("mcp_guard_audit_failing", "1 while the audit sink is failing", (), failing)


__all__ = ["BUCKETS", "MAX_RULES", "GuardMetrics", "Snapshot", "audit_gauges"]
