"""OpenTelemetry sink (extra ``otel``): one span per audit event, or one log record with ``signal="logs"``.

Spans carry the event's time and latency and flat ``mcp_guard.audit.*``
attributes; the full stored record goes in ``mcp_guard.audit.record`` so a
collector-side copy can still be checked against the chain.

Without an explicit provider the sink uses the process's global one. While
that is still the API's default (a proxy with nothing behind it, or a no-op
provider), spans and log records would be discarded, so ``write`` raises
instead: the pipeline spills and retries (and, in ``deny`` mode, refuses
requests) until the host installs a real provider - an audit event is never
dropped silently into a no-op exporter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..chain import line_of

_ATTRS = ("id", "seq", "method", "server", "kind", "target", "decision", "rule", "session_id", "mac")


def _attributes(record: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {f"mcp_guard.audit.{k}": record[k] for k in _ATTRS if record.get(k) is not None}
    principal = record.get("principal") or {}
    if isinstance(principal, Mapping) and principal.get("subject") is not None:
        out["mcp_guard.audit.subject"] = str(principal["subject"])
    out["mcp_guard.audit.shadow"] = bool(record.get("shadow"))
    out["mcp_guard.audit.reasons"] = [str(r) for r in record.get("reasons") or ()]
    out["mcp_guard.audit.record"] = line_of(record)
    return out


class OtelUnconfigured(RuntimeError):
    """No OpenTelemetry provider is installed: exporting now would discard the events."""


def _global_provider_missing(signal: str) -> bool:
    if signal == "spans":
        from opentelemetry import trace

        provider: Any = trace.get_tracer_provider()
        return isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider))
    from opentelemetry import _logs
    from opentelemetry._logs._internal import ProxyLoggerProvider

    provider = _logs.get_logger_provider()
    return isinstance(provider, (ProxyLoggerProvider, _logs.NoOpLoggerProvider))


class OtelSink:
    """An :class:`~mcp_guard.protocols.AuditSink` exporting through the OpenTelemetry API."""

    def __init__(
        self, signal: str = "spans", tracer_provider: Any = None, logger_provider: Any = None
    ) -> None:
        if signal not in ("spans", "logs"):
            raise ValueError("otel signal must be 'spans' or 'logs'")
        self.signal = signal
        self._global = (tracer_provider if signal == "spans" else logger_provider) is None
        if signal == "spans":
            from opentelemetry import trace

            self._tracer = trace.get_tracer("mcp_guard.audit", tracer_provider=tracer_provider)
        else:
            from opentelemetry import _logs

            self._logger = _logs.get_logger("mcp_guard.audit", logger_provider=logger_provider)

    def write(self, records: Sequence[Mapping[str, Any]]) -> None:
        if self._global and _global_provider_missing(self.signal):
            raise OtelUnconfigured(
                f"no OpenTelemetry {'tracer' if self.signal == 'spans' else 'logger'} provider is "
                "configured in this process; audit events are kept and retried until one is"
            )
        if self._global:
            self._global = False  # a real provider, once installed, stays installed
        for record in records:
            start = int(float(record.get("time") or 0) * 1e9)
            attrs = _attributes(record)
            if self.signal == "spans":
                latency = record.get("latency_ms")
                end = start + int(float(latency) * 1e6) if isinstance(latency, (int, float)) else start
                span = self._tracer.start_span(f"mcp_guard.audit {record.get('method')}", start_time=start)
                span.set_attributes(attrs)
                span.end(end_time=end)
            else:
                from opentelemetry._logs import LogRecord, SeverityNumber

                self._logger.emit(
                    LogRecord(
                        timestamp=start,
                        body=attrs.pop("mcp_guard.audit.record"),
                        attributes=attrs,
                        severity_number=SeverityNumber.INFO,
                        severity_text="INFO",
                    )
                )

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"OtelSink({self.signal!r})"
