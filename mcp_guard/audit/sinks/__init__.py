"""Built-in audit sinks and the URL scheme that selects them.

``sqlite:///PATH`` (``?synchronous=full``), ``jsonl:///PATH``
(``?max_bytes=N&keep=N&fsync=1``), ``logging://[LOGGER]`` (``?level=warning``),
``otel://`` (``?signal=logs``). Three slashes then a relative path, four for
an absolute one (``sqlite:////var/lib/mcp-guard/audit.db``).
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from ...errors import ConfigError
from ...protocols import AuditSink
from .fanout import FanoutError, FanoutSink
from .jsonl import JsonlSink
from .logsink import LoggingSink
from .otel import OtelSink
from .sqlite import ChainConflict, SQLiteSink

__all__ = [
    "ChainConflict",
    "FanoutError",
    "FanoutSink",
    "JsonlSink",
    "LoggingSink",
    "OtelSink",
    "SQLiteSink",
    "open_sink",
    "store_path",
]


def store_path(url: str, base_dir: Path | None = None) -> Path | None:
    """The file behind a ``sqlite://`` or ``jsonl://`` URL (resolved against ``base_dir``), else None."""
    parts = urlsplit(url)
    if parts.scheme not in ("sqlite", "jsonl"):
        return None
    raw = unquote(parts.path)
    if not raw.startswith("/") or raw == "/":
        raise ConfigError(f"{url!r}: expected {parts.scheme}:///PATH", field="guard.audit")
    path = Path(raw[1:]).expanduser()
    if not path.is_absolute():
        path = (base_dir or Path.cwd()) / path
    return path


def _int(params: dict[str, str], name: str, url: str, default: int) -> int:
    try:
        return int(params.get(name, default))
    except ValueError:
        raise ConfigError(f"{url!r}: {name} must be an integer", field="guard.audit") from None


def open_sink(url: str, base_dir: Path | None = None, *, synchronous: str | None = None) -> AuditSink:
    """Build the sink a URL names; ConfigError for an unknown scheme or option."""
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query))
    scheme = parts.scheme
    allowed = {
        "sqlite": {"synchronous"},
        "jsonl": {"max_bytes", "keep", "fsync"},
        "logging": {"level"},
        "otel": {"signal"},
    }
    if scheme not in allowed:
        raise ConfigError(f"{url!r}: unknown audit sink (sqlite, jsonl, logging, otel)", field="guard.audit")
    unknown = set(params) - allowed[scheme]
    if unknown:
        raise ConfigError(f"{url!r}: unknown option(s) {sorted(unknown)}", field="guard.audit")
    try:
        if scheme == "sqlite":
            path = store_path(url, base_dir)
            assert path is not None
            return SQLiteSink(path, synchronous=params.get("synchronous", synchronous or "NORMAL"))
        if scheme == "jsonl":
            path = store_path(url, base_dir)
            assert path is not None
            return JsonlSink(
                path,
                max_bytes=_int(params, "max_bytes", url, 0),
                keep=_int(params, "keep", url, 10),
                fsync=params.get("fsync", "0").lower() in ("1", "true", "yes") or synchronous == "FULL",
            )
        if scheme == "logging":
            level = logging.getLevelName(params.get("level", "INFO").upper())
            if not isinstance(level, int):
                raise ConfigError(f"{url!r}: unknown log level", field="guard.audit")
            return LoggingSink(parts.netloc or "mcp_guard.audit", level)
        try:
            return OtelSink(params.get("signal", "spans"))
        except ImportError:
            raise ConfigError(
                f"{url!r}: needs opentelemetry-api (pip install 'mcp-guard[otel]')", field="guard.audit"
            ) from None
    except (ValueError, OSError, sqlite3.Error) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{url!r}: {exc}", field="guard.audit") from None
