"""Approval requests: a human decides on a call before it runs (policy ``approval`` obligation).

:class:`ApprovalBook` keeps requests in the state store, so any replica or
``mcp-guard approvals`` can decide them; :class:`Notifier` plugins hear about
each change.
"""

from __future__ import annotations

from .book import CHANNEL, ApprovalBook
from .model import ApprovalError, ApprovalRequest, Approver, arguments_hash
from .notify import LoggingNotifier, Notifier

__all__ = [
    "CHANNEL",
    "ApprovalBook",
    "ApprovalError",
    "ApprovalRequest",
    "Approver",
    "LoggingNotifier",
    "Notifier",
    "arguments_hash",
]
