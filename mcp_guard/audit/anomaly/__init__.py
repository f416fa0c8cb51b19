"""Anomaly detection over the audit trail: the same detectors offline (``mcp-guard audit
anomalies``) and live in ``mcp-guard serve`` (``docs/audit.md``, "Anomalies")."""

from __future__ import annotations

from .detect import KINDS, Detector, Finding, Thresholds
from .events import Event, from_record, read_events
from .settings import AnomalySettings, WebhookSettings

__all__ = [
    "KINDS",
    "AnomalySettings",
    "Detector",
    "Event",
    "Finding",
    "Thresholds",
    "WebhookSettings",
    "from_record",
    "read_events",
]
