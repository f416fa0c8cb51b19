"""The audit trail: who used which server and tool, with what, and whether they were allowed.

Events are enqueued on the request path and redacted, HMAC-chained and
written by a background flusher; see ``docs/audit.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..errors import ConfigError
from .chain import GENESIS, Anchor, AnchorError, ChainedRecord, read_anchor, write_anchor
from .checkpoint import Checkpoint, load_checkpoints, sign_checkpoint
from .config import AuditConfig, AuditSettings, load_audit_config
from .keys import AuditKey, KeyRing, load_key_file, rotate_key_file
from .log import AuditLog
from .redact import parse_path, redact_record
from .sinks import FanoutSink, JsonlSink, LoggingSink, OtelSink, SQLiteSink, open_sink, store_path
from .verify import VerifyResult, store_rows, verify_rows

__all__ = [
    "GENESIS",
    "Anchor",
    "AnchorError",
    "AuditConfig",
    "AuditKey",
    "AuditLog",
    "AuditSettings",
    "ChainedRecord",
    "Checkpoint",
    "FanoutSink",
    "JsonlSink",
    "KeyRing",
    "LoggingSink",
    "OtelSink",
    "SQLiteSink",
    "VerifyResult",
    "load_audit_config",
    "load_checkpoints",
    "load_key_file",
    "open_auditor",
    "open_sink",
    "parse_path",
    "read_anchor",
    "redact_record",
    "rotate_key_file",
    "sign_checkpoint",
    "store_path",
    "store_rows",
    "verify_rows",
    "write_anchor",
]


def open_auditor(urls: Sequence[str], settings: AuditSettings | None, base_dir: Path) -> AuditLog:
    """Build the audit pipeline for ``[guard] audit`` URLs and the ``[audit]`` table.

    Creates the key file (0600) on first use when no key is configured.
    Relative paths in URLs and settings are taken from ``base_dir``.
    """
    if not urls:
        raise ConfigError(
            "at least one audit URL is required (logging:// is the lightest)", field="guard.audit"
        )
    settings = settings or AuditSettings()
    resolved = settings.resolve(base_dir)
    keys = settings.key_ring(base_dir, create=True)
    synchronous = "FULL" if settings.sync else None
    sinks = [open_sink(u, base_dir, synchronous=synchronous) for u in urls]
    sink = sinks[0] if len(sinks) == 1 else FanoutSink(sinks)
    for path in (resolved.anchor_file, resolved.spill_file):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    return AuditLog(
        sink,
        keys,
        anchor_path=resolved.anchor_file,
        spill_path=resolved.spill_file,
        on_unavailable=settings.on_unavailable,
        sync=settings.sync,
        buffer_size=settings.buffer_size,
        batch_size=settings.batch_size,
        flush_interval=settings.flush_interval,
        retry_interval=settings.retry_interval,
        redact_fields=settings.redact_fields,
        shared_detectors=settings.shared_detectors,
    )
