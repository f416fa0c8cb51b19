"""Telling people that a request waits for them, or was decided: a small plugin Protocol.

The guard calls every configured notifier when a request is created and when
it is approved or denied. A failing notifier is logged and never changes the
outcome. The built-in one writes a log line; a webhook or chat notifier is a
class with the same ``notify`` method.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

from ..audit.canonical import printable

if TYPE_CHECKING:
    from .model import ApprovalRequest

__all__ = ["LoggingNotifier", "Notifier"]


class Notifier(Protocol):
    """Called with the request after every change of its status (``pending``, ``approved``, ``denied``)."""

    async def notify(self, request: ApprovalRequest) -> None: ...


class LoggingNotifier:
    """Logs each change on the ``mcp_guard.approvals`` logger, with the command that decides it."""

    def __init__(self, logger: logging.Logger | None = None, config: str | None = None) -> None:
        self.logger = logger or logging.getLogger("mcp_guard.approvals")
        #: The guard.toml the command must name: run elsewhere, it would read another state store.
        self.config = config

    async def notify(self, request: ApprovalRequest) -> None:
        # Subject, server and rule are escaped (the target is a repr): no caller-chosen text
        # may forge a log line or drive the terminal of whoever reads it.
        if request.status == "pending":
            self.logger.warning(
                "approval %s: %s asks to run %s %r on %s (rule %s; approvers: %s); "
                "decide with: mcp-guard approvals approve|deny %s --as APPROVER%s",
                request.id,
                printable(request.subject),
                request.kind or "target",
                request.target,
                printable(request.server),
                printable(str(request.rule)),
                printable(", ".join(request.approvers)),
                request.id,
                f" --config {self.config}" if self.config else "",
            )
        else:
            decided_by = printable(str(request.decided_by))
            self.logger.info("approval %s %s by %s", request.id, request.status, decided_by)
