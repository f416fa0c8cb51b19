"""Telling people that a request waits for them, or was decided: a small plugin Protocol.

The guard calls every configured notifier when a request is created and when
it is approved or denied. A failing notifier is logged and never changes the
outcome. The built-in one writes a log line (a WARNING for a new request, at
most one a minute per caller so a flood of requests cannot flood the log; the
others at DEBUG, counted in the next WARNING); a webhook or chat notifier is a
class with the same ``notify`` method.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from ..audit.canonical import printable

if TYPE_CHECKING:
    from .model import ApprovalRequest

__all__ = ["QUIET", "LoggingNotifier", "Notifier"]

#: Seconds between two WARNING notices for one caller's new requests (the rest log at DEBUG).
QUIET = 60.0
_MAX_TRACKED = 4096


class Notifier(Protocol):
    """Called with the request after every change of its status (``pending``, ``approved``, ``denied``)."""

    async def notify(self, request: ApprovalRequest) -> None: ...


class LoggingNotifier:
    """Logs each change on the ``mcp_guard.approvals`` logger, with the command that decides it."""

    def __init__(
        self,
        logger: logging.Logger | None = None,
        config: str | None = None,
        *,
        quiet: float = QUIET,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger or logging.getLogger("mcp_guard.approvals")
        #: The guard.toml the command must name: run elsewhere, it would read another state store.
        self.config = config
        #: Seconds after a caller's WARNING during which their further new requests log at DEBUG.
        self.quiet = quiet
        self.clock = clock
        self._last: dict[str, tuple[float, int]] = {}  # subject -> (last warning, requests not shown)

    def _level(self, subject: str) -> tuple[int, int]:
        """WARNING and the count of quiet requests since the last one, or DEBUG (throttled)."""
        now = self.clock()
        last, quiet = self._last.get(subject, (float("-inf"), 0))
        if now - last < self.quiet:
            self._last[subject] = (last, quiet + 1)
            return logging.DEBUG, 0
        if len(self._last) >= _MAX_TRACKED:
            self._last = {s: v for s, v in self._last.items() if now - v[0] < self.quiet}
        self._last[subject] = (now, 0)
        return logging.WARNING, quiet

    async def notify(self, request: ApprovalRequest) -> None:
        # Subject, server and rule are escaped (the target is a repr): no caller-chosen text
        # may forge a log line or drive the terminal of whoever reads it.
        if request.status == "pending":
            level, quiet = self._level(request.subject)
            self.logger.log(
                level,
                "approval %s: %s asks to run %s %r on %s (rule %s; approvers: %s); "
                "decide with: mcp-guard approvals approve|deny %s --as APPROVER%s%s",
                request.id,
                printable(request.subject),
                request.kind or "target",
                request.target,
                printable(request.server),
                printable(str(request.rule)),
                printable(", ".join(request.approvers)),
                request.id,
                f" --config {self.config}" if self.config else "",
                f" ({quiet} more from {printable(request.subject)} not shown: approvals list)"
                if quiet
                else "",
            )
        else:
            decided_by = printable(str(request.decided_by))
            self.logger.info("approval %s %s by %s", request.id, request.status, decided_by)
