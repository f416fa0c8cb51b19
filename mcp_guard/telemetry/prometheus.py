"""The guard's metrics in the Prometheus text format (extra ``metrics``: ``prometheus-client``).

A custom collector reads one :class:`~.metrics.GuardMetrics` snapshot per
scrape, so the request path never touches ``prometheus_client``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from .metrics import BUCKETS, GuardMetrics


class GuardCollector(Collector):
    """Requests by method, direction, decision and outcome; decisions by rule; latency; gauges."""

    def __init__(self, metrics: GuardMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Any]:
        snap = self.metrics.snapshot()
        requests = CounterMetricFamily(
            "mcp_guard_requests",
            "MCP requests and notifications the guard handled",
            labels=["method", "direction", "decision", "outcome"],
        )
        for key, count in sorted(snap.requests.items()):
            requests.add_metric(list(key), count)
        yield requests
        decisions = CounterMetricFamily(
            "mcp_guard_decisions", "Policy decisions by outcome and rule id", labels=["decision", "rule"]
        )
        for pair, count in sorted(snap.decisions.items()):
            decisions.add_metric(list(pair), count)
        yield decisions
        latency = HistogramMetricFamily(
            "mcp_guard_request_duration_seconds",
            "Time from a request's arrival to its answer, guard and handler included",
            labels=["method", "direction"],
        )
        for series, hist in sorted(snap.latency.items()):
            cumulative, buckets = 0, []
            for bound, count in zip((*BUCKETS, float("inf")), hist.counts, strict=True):
                cumulative += count
                buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
            latency.add_metric(list(series), buckets, hist.total)
        yield latency
        for gauge, values in snap.gauges:
            family = GaugeMetricFamily(gauge.name, gauge.help, labels=list(gauge.labels))
            for labels, value in sorted(values.items()):
                family.add_metric(list(labels), value)
            yield family


def registry_for(metrics: GuardMetrics) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(GuardCollector(metrics))
    return registry


def exposition(registry: CollectorRegistry) -> tuple[bytes, str]:
    """The body and content type of one scrape."""
    return generate_latest(registry), CONTENT_TYPE_LATEST


__all__ = ["GuardCollector", "exposition", "registry_for"]
