"""Stdlib logging sink: one JSON line per event on a named logger.

The message is the stored record line itself (already escaped), so whatever
handler and formatter the host configured, an argument cannot forge a line.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from ..chain import line_of


class LoggingSink:
    """An :class:`~mcp_guard.protocols.AuditSink` that emits to ``logging``."""

    def __init__(self, logger: str | logging.Logger = "mcp_guard.audit", level: int = logging.INFO) -> None:
        self.logger = logging.getLogger(logger) if isinstance(logger, str) else logger
        self.level = level

    def write(self, records: Sequence[Mapping[str, Any]]) -> None:
        log = self.logger.log
        for record in records:
            log(self.level, "%s", line_of(record))

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"LoggingSink({self.logger.name!r})"
