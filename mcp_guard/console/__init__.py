"""The admin console: server-rendered pages at ``/admin`` of ``mcp-guard serve`` (``docs/console.md``).

Sign-in with an admin's API key, the approval requests waiting for a person,
and the audit trail, without a terminal on the portal's host. One module per
concern: :mod:`.sessions` (server-side sessions, CSRF), :mod:`.core` (who
asks, auditing), :mod:`.html` (escaping, layout), :mod:`.signin`,
:mod:`.approvals`, :mod:`.audit` (the pages), :mod:`.standing` (is the signed-in key
or user still there), :mod:`.refusals` (refusal floods counted, not recorded one by one),
:mod:`.routing` (every ``/admin`` path, relative redirects) and :mod:`.app` (routes, headers).
"""

from __future__ import annotations

from .app import audit_source, console_app, console_routes, password_login
from .core import AuditSource

__all__ = ["AuditSource", "audit_source", "console_app", "console_routes", "password_login"]
