"""What the anomaly detectors read of an audit record, and reading it from a store.

The detectors see a small flat :class:`Event` instead of the whole record, so the one
implementation serves the offline command (records read back from SQLite or JSONL) and the
live monitor (records as the audit pipeline writes them) alike.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from math import isfinite
from pathlib import Path
from typing import Any

from ...ratelimit import voucher
from ..query import Filters, open_store, query
from ..verify import StoreError

#: Record kinds the detectors look at; lifecycle records and the alerts themselves are not traffic.
TRAFFIC = frozenset({"request", "authn"})


@dataclass(slots=True)
class Event:
    """The fields of one audit record the detectors use (``kind`` is the record's ``event``)."""

    id: str
    time: float
    kind: str
    decision: str
    subject: str | None = None
    source_ip: str | None = None
    country: str | None = None
    server: str | None = None
    target: str | None = None
    method: str | None = None
    reason: str | None = None
    #: Who vouches for the subject name (:func:`~mcp_guard.ratelimit.vouched_by`): the detectors
    #: count a person, and another issuer's or tenant's namesake is someone else.
    vouched_by: str | None = None


#: Latest time an event may carry (the end of year 9999, the last one a finding can show).
LATEST = 253402300799.0


def _when(value: Any) -> float | None:
    """``value`` as an event time, or None when it cannot be one: not a number, not finite, before
    1970 or after year 9999 (a corrupt or forged record must not crash the report of a trail)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not isfinite(value):
        return None
    return float(value) if 0 <= value <= LATEST else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def from_record(record: Mapping[str, Any]) -> Event | None:
    """The detectors' view of a record, or None for a record that is not traffic (or is unreadable)."""
    kind = record.get("event")
    t = _when(record.get("time"))
    if kind not in TRAFFIC or t is None:
        return None
    principal = record.get("principal")
    subject = country = by = None
    if isinstance(principal, Mapping):
        subject = _text(principal.get("subject"))
        country = _text(principal.get("country"))
        by = _voucher(principal.get("issuer"), principal.get("tenant"), principal.get("auth_method"))
    reasons = record.get("reasons")
    reason = _text(reasons[0]) if isinstance(reasons, list) and reasons else None
    return Event(
        id=str(record.get("id")),
        time=t,
        kind=str(kind),
        decision=str(record.get("decision")),
        subject=subject,
        source_ip=_text(record.get("source_ip")),
        country=country or _text(record.get("country")),
        server=_text(record.get("server")),
        target=_text(record.get("target")),
        method=_text(record.get("method")),
        reason=reason,
        vouched_by=by,
    )


def _voucher(issuer: Any, tenant: Any, auth_method: Any) -> str | None:
    """Who vouches for a record's subject; a record written before principals kept their issuer
    has none, so an identity provider's user is counted by subject alone there."""
    return voucher(_text(issuer), _text(tenant), auth_method if isinstance(auth_method, str) else None)


def read_events(path: Path, until: float | None = None, since: float | None = None) -> Iterator[Event]:
    """The traffic events of a store (SQLite, or JSONL by its suffix), oldest first.

    Everything is read, not only what ``--since`` asks to report on: the older events are
    what the baselines are learned from. SQLite is streamed in time order (its time index), so
    memory stays flat however long the trail, and only the needed fields are taken out of each
    record, by SQLite's own JSON functions. A JSONL file is read whole.
    """
    if path.suffix != ".jsonl":
        return _sqlite_events(path, until, since)
    events = [e for e in map(from_record, query(path, Filters(since=since, until=until))) if e is not None]
    events.sort(key=lambda e: e.time)  # several writers append in commit order, not event time
    return iter(events)


_SELECT = (
    "SELECT id, time, json_extract(record, '$.event'), decision, subject,"
    " json_extract(record, '$.source_ip'),"
    " json_extract(record, '$.principal.country'), server, target, method,"
    " json_extract(record, '$.reasons[0]'), json_extract(record, '$.principal.issuer'), tenant,"
    # Only a tenant's key book vouches by the method: other records spare SQLite the extraction.
    " CASE WHEN tenant <> '' THEN json_extract(record, '$.principal.auth_method') END"
    " FROM audit_events"
)


def _sqlite_events(path: Path, until: float | None, since: float | None) -> Iterator[Event]:
    where, args = [], []
    if until is not None:
        where.append("time < ?")
        args.append(until)
    if since is not None:
        where.append("time >= ?")
        args.append(since)
    sql = _SELECT + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY time, seq"
    conn = open_store(path)  # raises StoreError now, not at the first next()
    return _stream(conn, sql, args, path)


def _stream(conn: sqlite3.Connection, sql: str, args: list[float], path: Path) -> Iterator[Event]:
    try:
        try:
            cursor = conn.execute(sql, args)
            while rows := cursor.fetchmany(5000):
                for (
                    event_id,
                    t,
                    kind,
                    decision,
                    subject,
                    ip,
                    country,
                    server,
                    target,
                    method,
                    reason,
                    issuer,
                    tenant,
                    auth_method,
                ) in rows:
                    when = _when(t)
                    if kind not in TRAFFIC or when is None:
                        continue
                    yield Event(
                        str(event_id),
                        when,
                        kind,
                        str(decision),
                        _text(subject),
                        _text(ip),
                        _text(country),
                        _text(server),
                        _text(target),
                        _text(method),
                        _text(reason),
                        _voucher(issuer, tenant, auth_method) if issuer or tenant else None,
                    )
        except sqlite3.Error as exc:
            raise StoreError(f"{path} is not an audit store: {exc}") from None
    finally:
        conn.close()
