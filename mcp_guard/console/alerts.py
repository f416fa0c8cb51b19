"""The anomaly alerts of the last day, for the Overview.

Live anomaly detection (``[anomalies]`` in ``guard.toml``) records every
finding as an audit event of kind ``anomaly`` (method ``anomaly/<kind>``): the
Overview lists the newest of them so an administrator sees trouble on the page
they land on, without a log or webhook. The audit trail is the one source, so
the list shows exactly what replicas sharing the store have found.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..audit.anomaly.detect import named
from ..audit.query import Filters, open_store, query
from ..audit.verify import StoreError
from .html import esc, table, when

#: Alerts shown on the Overview (the Audit page has the rest: method ``anomaly/...``).
SHOWN = 20

_NEWEST = """
SELECT record FROM audit_events
WHERE time >= ? AND method LIKE 'anomaly/%'{tenant}
ORDER BY time DESC, seq DESC LIMIT ?
"""


def read_alerts(path: Path, since: float, tenant: str | None = None) -> list[dict[str, Any]]:
    """The newest :data:`SHOWN` anomaly events at ``path`` since ``since`` (of ``tenant`` only when given).

    Alerts name a subject or an address, not a tenant, so an administrator bound to a tenant
    sees only alerts recorded with that tenant (none, today): no other tenant's subjects leak.
    """
    if not path.exists():
        return []
    if path.suffix == ".jsonl":
        found = [r for r in query(path, Filters(since=since, tenant=tenant)) if _is_alert(r)]
        found.sort(key=lambda r: float(r.get("time") or 0), reverse=True)
        return found[:SHOWN]
    conn = open_store(path)
    try:
        sql = _NEWEST.format(tenant=" AND tenant = ?" if tenant is not None else "")
        args: list[Any] = [since, *([tenant] if tenant is not None else []), SHOWN]
        rows = conn.execute(sql, args).fetchall()
    except sqlite3.Error as exc:
        raise StoreError(f"{path} is not an audit store: {exc}") from None
    finally:
        conn.close()
    out = []
    for (text,) in rows:
        try:
            out.append(json.loads(text))
        except ValueError:
            continue  # a damaged record is the chain verification's to report
    return out


def _is_alert(record: dict[str, Any]) -> bool:
    return str(record.get("method", "")).startswith("anomaly/")


def _action(record: dict[str, Any]) -> str:
    for reason in record.get("reasons") or ():
        if isinstance(reason, str) and reason.startswith("action "):
            return reason.removeprefix("action ")
    return "lock" if record.get("decision") == "deny" else "none"


def _who(principal: dict[str, Any]) -> str:
    """The alert's subject, with who vouches for it when someone does (that person is the one a
    lock holds; an alert written before alerts named them has the subject alone)."""
    subject, by = principal.get("subject"), principal.get("vouched_by")
    if not isinstance(subject, str):
        return ""
    return named(subject, by if isinstance(by, str) else None)


def render_alerts(records: list[dict[str, Any]]) -> str:
    """The alerts as a table of escaped cells, each linking to its audit event."""
    rows = []
    for r in records:
        principal = r.get("principal") if isinstance(r.get("principal"), dict) else {}
        reasons = [x for x in r.get("reasons") or () if isinstance(x, str)]
        event = f'<a href="/admin/audit/events/{quote(str(r.get("id", "")), safe="")}">detail</a>'
        rows.append(
            [
                esc(when(float(r.get("time") or 0))),
                f"<code>{esc(str(r.get('method', '')).removeprefix('anomaly/'))}</code>",
                esc(_who(principal or {})),
                esc(str(r.get("source_ip") or "")),
                esc(reasons[0] if reasons else ""),
                esc(_action(r)),
                event,
            ]
        )
    return table(
        ["Time", "Kind", "Subject", "Source", "Why", "Action", "Event"],
        rows,
        "No anomaly alerts in the last 24 hours (live detection runs when guard.toml has [anomalies]).",
    )
