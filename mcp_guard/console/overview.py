"""The Overview page, the console's landing page: the last 24 hours at a glance.

Calls and denials per hour (a chart drawn server-side as SVG, and the same
numbers as a table), the rules that denied most, the last chain verification,
and what waits for an administrator (pins, approval requests, servers down), and the
anomaly alerts of the day (see ``alerts.py``).
The counts are read from the audit store the Audit page reads: a *call* is an
MCP request or a refused connection (events of kind ``request`` and
``authn``), a *denial* one of them whose decision is ``deny`` or ``error``;
the console's own events are not counted. An administrator bound to a tenant
counts only calls whose principal belongs to that tenant, as the Audit page shows.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import Response

from ..audit.query import Filters, open_store, query
from ..audit.verify import StoreError
from .alerts import read_alerts, render_alerts
from .approvals import approver_of
from .chart import bar_chart
from .core import Console
from .html import esc, page, table, when
from .servers import tenant_of
from .sessions import ConsoleSession

HOURS = 24
_COUNTED = ("request", "authn")
#: Rules shown in the "top denied" table.
TOP = 10
_NO_RULE = "(no rule: default deny or a refusal)"


@dataclass
class Day:
    """Per-hour counts of the last :data:`HOURS` hours (oldest first) and denials per rule."""

    start: float
    calls: list[int] = field(default_factory=lambda: [0] * HOURS)
    denials: list[int] = field(default_factory=lambda: [0] * HOURS)
    rules: Counter[str] = field(default_factory=Counter)

    def top(self) -> list[tuple[str, int]]:
        """The :data:`TOP` rules that denied most (ties by name, so the order is stable)."""
        return sorted(self.rules.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]

    def labels(self) -> list[str]:
        hour = [datetime.fromtimestamp(self.start + 3600 * i, timezone.utc) for i in range(HOURS)]
        return [h.strftime("%H:00") for h in hour]


def count(records: list[dict[str, Any]], now: float) -> Day:
    """The hour buckets (whole UTC hours, the current one last) of ``records``."""
    day = Day(start=(now // 3600 - (HOURS - 1)) * 3600)
    for record in records:
        when_ = record.get("time")
        if record.get("event") not in _COUNTED or not isinstance(when_, (int, float)):
            continue
        slot = int((when_ - day.start) // 3600)
        if not 0 <= slot < HOURS:
            continue
        day.calls[slot] += 1
        if record.get("decision") in ("deny", "error"):
            day.denials[slot] += 1
            day.rules[str(record.get("rule") or _NO_RULE)] += 1
    return day


#: Per hour, decision and rule: the counted events of a SQLite trail, summed by SQLite itself.
_SUMS = """
SELECT CAST((time - ?) / 3600 AS INTEGER), decision, json_extract(record, '$.rule'), count(*)
FROM audit_events
WHERE time >= ? AND time < ? AND json_extract(record, '$.event') IN ('request', 'authn'){tenant}
GROUP BY 1, 2, 3
"""


def read_day(path: Path, now: float, tenant: str | None = None) -> Day:
    """The day's counts from the store at ``path`` (only calls of ``tenant``'s principals when given).

    A SQLite store sums them in SQL (no record is decoded in Python; about 3 times faster,
    ``docs/benchmarks.md``); a JSON lines file is read record by record.
    """
    day = Day(start=(now // 3600 - (HOURS - 1)) * 3600)
    if path.suffix == ".jsonl":
        return count(query(path, Filters(since=day.start, tenant=tenant)), now)
    conn = open_store(path)
    try:
        args: list[Any] = [day.start, day.start, day.start + HOURS * 3600]
        sql = _SUMS.format(tenant=" AND tenant = ?" if tenant is not None else "")
        rows = conn.execute(sql, [*args, *([tenant] if tenant is not None else [])]).fetchall()
    except sqlite3.Error as exc:
        raise StoreError(f"{path} is not an audit store: {exc}") from None
    finally:
        conn.close()
    for slot, decision, rule, n in rows:
        if not 0 <= slot < HOURS:
            continue
        day.calls[slot] += n
        if decision in ("deny", "error"):
            day.denials[slot] += n
            day.rules[str(rule or _NO_RULE)] += n
    return day


def _verification(console: Console) -> str:
    again = '<a href="/admin/audit/verify">Verify the chain now</a>'
    checked = console.verified
    if checked is None:
        return f"<p>Chain verification: not run since the console started. {again}</p>"
    css = "ok" if checked.ok else "error"
    at = esc(when(checked.at))
    return f'<p class="{css}">Chain verification at {at}: {esc(checked.message)}. {again}</p>'


async def _waiting(console: Console, session: ConsoleSession) -> str:
    items: list[str] = []
    if console.guard.pins is not None:
        waiting = [e for e in await console.guard.pins.list() if e.status != "pinned"]
        items.append(f'<a href="/admin/pins">{len(waiting)} definition(s) withheld until approved</a>')
    # The requests the Approvals page shows this admin: no count of another tenant's.
    pending = await console.guard.approvals.list(viewer=approver_of(session))
    items.append(f'<a href="/admin/approvals">{len(pending)} approval request(s) pending</a>')
    if console.portal is not None:
        states = Counter(u.state for u in console.portal.upstreams.values())
        items.append(
            f'<a href="/admin/servers">servers: {states["up"]} up, {states["starting"]} starting, '
            f"{states['down']} down</a>"
        )
    return "<ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>"


async def overview_page(console: Console, request: Request) -> Response:
    session = await console.admin(request)
    now = console.clock()
    body = "<h2>Waiting</h2>" + await _waiting(console, session)
    if console.audit is None or console.audit.path is None:
        body += "<p>No sqlite:// or jsonl:// store in [guard] audit: no counts to show.</p>"
        return page("Overview", body, session)
    path = console.audit.path
    try:
        # An administrator bound to a tenant counts only that tenant's calls, as the Audit page shows.
        tenant = tenant_of(session)
        day = await anyio.to_thread.run_sync(read_day, path, now, tenant) if path.exists() else count([], now)
        alerts = await anyio.to_thread.run_sync(read_alerts, path, day.start, tenant)
    except StoreError as exc:
        body += f'<p class="error">The audit store cannot be read: {esc(exc)}</p>'
        return page("Overview", body + _verification(console), session)
    labels = day.labels()
    chart = bar_chart(
        labels,
        [("calls", "calls", day.calls), ("denials", "denials", day.denials)],
        "Calls and denials per hour, last 24 hours (UTC)",
    )
    numbers = table(
        ["Hour (UTC)", "Calls", "Denials"],
        [[esc(h), str(c), str(d)] for h, c, d in zip(labels, day.calls, day.denials, strict=True)],
        "",
    )
    top = table(
        ["Rule", "Denials"],
        [[f"<code>{esc(rule)}</code>", str(n)] for rule, n in day.top()],
        "Nothing was denied in the last 24 hours.",
    )
    body += (
        f"<h2>Last 24 hours</h2><p>{sum(day.calls)} call(s), {sum(day.denials)} denial(s). "
        "Bars: calls (blue) and denials (red) per hour.</p>"
        f"{chart}<details><summary>The numbers</summary>{numbers}</details>"
        f"<h2>Top denied rules</h2>{top}<h2>Anomaly alerts</h2>{render_alerts(alerts)}"
        f"<h2>Audit chain</h2>{_verification(console)}"
    )
    return page("Overview", body, session)
