"""Reading the trail: filters for ``audit query`` / ``audit tail`` over SQLite or JSONL stores."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .sinks.sqlite import column_values
from .verify import StoreError, jsonl_rows

_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d|w)(?:\s+ago)?$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _record(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise StoreError("a stored record is not valid JSON: run `mcp-guard audit verify`")
    return value


def parse_time(text: str, now: datetime | None = None) -> float:
    """Epoch seconds for ``now``, ``today``, ``yesterday`` (local midnight), a time that long ago
    (``30s``, ``15m``, ``24h``, ``7d``, ``2w``, each also with ``ago``: ``15m ago``), or an ISO 8601
    date / date-time (naive values are local time)."""
    now = now or datetime.now().astimezone()
    value = text.strip().lower()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if value == "now":
        return now.timestamp()
    if value == "today":
        return midnight.timestamp()
    if value == "yesterday":
        return (midnight - timedelta(days=1)).timestamp()
    m = _RELATIVE.match(value)
    if m:
        return now.timestamp() - float(m.group(1)) * _UNITS[m.group(2)]
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"unrecognised time {text!r} (use ISO 8601, today, yesterday, now, or 15m, 24h, 7d"
            " with or without 'ago')",
            field="time",
        ) from None
    try:
        if parsed.tzinfo is None:
            parsed = parsed.astimezone()
        return parsed.timestamp()
    except (OverflowError, OSError, ValueError):  # year 1 or 9999 shifted past the calendar's ends
        raise ConfigError(f"time {text!r} is out of range", field="time") from None


@dataclass(frozen=True, slots=True)
class Filters:
    subject: str | None = None
    server: str | None = None
    tool: str | None = None
    decision: str | None = None
    #: An MCP method, or a prefix ending in ``*`` (``cli/*``: the admin commands).
    method: str | None = None
    session: str | None = None
    #: Events of the calls that one approval request was about (``approval.id`` of the record).
    approval: str | None = None
    #: Events of the calls one ``[[flows]]`` rule refused or held (``flow.id`` of the record).
    flow: str | None = None
    #: One event, by its ``id``.
    event_id: str | None = None
    #: The record's ``event`` kind: ``request``, ``authn``, ``lifecycle``, ``console``, ``admin``, ...
    kind: str | None = None
    #: Events whose principal belongs to this tenant (``principal.tenant``): what an administrator
    #: bound to a tenant may read. Filtered in the query, so pages stay full and exports stream.
    tenant: str | None = None
    since: float | None = None
    until: float | None = None


def _method_pattern(method: str | None) -> tuple[str | None, str | None]:
    """(exact method, prefix): a trailing ``*`` matches every method that starts with the rest.

    ``cli/*`` picks out the admin commands, ``tools/*`` every tool request; any other ``*`` is
    part of the name.
    """
    if method is not None and method.endswith("*"):
        return None, method[:-1]
    return method, None


def _sql(f: Filters) -> tuple[str, list[Any]]:
    where: list[str] = []
    args: list[Any] = []
    method, prefix = _method_pattern(f.method)
    for column, value in (
        ("subject", f.subject),
        ("server", f.server),
        ("target", f.tool),
        ("decision", f.decision),
        ("method", method),
        ("session_id", f.session),
        ("id", f.event_id),
        ("tenant", f.tenant),
    ):
        if value is not None:
            where.append(f"{column} = ?")
            args.append(value)
    if prefix is not None:
        where.append("substr(method, 1, ?) = ?")
        args.extend((len(prefix), prefix))
    if f.approval is not None:
        where.append("json_extract(record, '$.approval.id') = ?")
        args.append(f.approval)
    if f.flow is not None:
        where.append("json_extract(record, '$.flow.id') = ?")
        args.append(f.flow)
    if f.kind is not None:
        where.append("json_extract(record, '$.event') = ?")
        args.append(f.kind)
    if f.since is not None:
        where.append("time >= ?")
        args.append(f.since)
    if f.until is not None:
        where.append("time < ?")
        args.append(f.until)
    return (" WHERE " + " AND ".join(where)) if where else "", args


def _matches(record: dict[str, Any], f: Filters) -> bool:
    event_id, t, subject, tenant, server, target, method, decision, session = column_values(record)
    exact, prefix = _method_pattern(f.method)
    if prefix is not None and not (isinstance(method, str) and method.startswith(prefix)):
        return False
    checks = (
        (f.subject, subject),
        (f.server, server),
        (f.tool, target),
        (f.decision, decision),
        (exact, method),
        (f.session, session),
        (f.event_id, event_id),
        (f.tenant, tenant),
    )
    if any(want is not None and want != have for want, have in checks):
        return False
    if f.approval is not None:
        approval = record.get("approval")
        if not isinstance(approval, dict) or approval.get("id") != f.approval:
            return False
    if f.flow is not None:
        flow = record.get("flow")
        if not isinstance(flow, dict) or flow.get("id") != f.flow:
            return False
    if f.kind is not None and record.get("event", "request") != f.kind:
        return False
    if f.since is not None and (not isinstance(t, (int, float)) or t < f.since):
        return False
    return not (f.until is not None and (not isinstance(t, (int, float)) or t >= f.until))


def open_store(path: Path) -> sqlite3.Connection:
    """A read-only connection to the SQLite audit store at ``path``; :class:`StoreError` if there is none."""
    if not path.is_file():
        raise StoreError(f"no audit store at {path}")
    try:
        return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open {path}: {exc}") from None


def query(
    path: Path, filters: Filters, limit: int | None = None, newest: bool = False
) -> list[dict[str, Any]]:
    """Matching records in seq order (the newest ``limit`` ones when ``newest``)."""
    if path.suffix == ".jsonl":
        found = [r for r in (_record(line) for line, _ in jsonl_rows(path)) if _matches(r, filters)]
        if limit is not None:
            found = found[-limit:] if newest else found[:limit]
        return found
    clause, args = _sql(filters)
    order = "DESC" if newest else "ASC"
    sql = f"SELECT record FROM audit_events{clause} ORDER BY seq {order}"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    conn = open_store(path)
    try:
        try:
            rows = [_record(r[0]) for r in conn.execute(sql, args)]
        except sqlite3.Error as exc:
            raise StoreError(f"{path} is not an audit store: {exc}") from None
    finally:
        conn.close()
    return rows[::-1] if newest else rows


def after(path: Path, seq: int) -> Iterator[dict[str, Any]]:
    """Records with a seq greater than ``seq`` (for ``tail --follow``)."""
    if path.suffix == ".jsonl":
        for line, _ in jsonl_rows(path):
            record = _record(line)
            if int(record.get("seq", 0)) > seq:
                yield record
        return
    conn = open_store(path)
    try:
        try:
            rows = conn.execute(
                "SELECT record FROM audit_events WHERE seq > ? ORDER BY seq", (seq,)
            ).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"{path} is not a readable audit store: {exc}") from None
        for (text,) in rows:
            yield _record(text)
    finally:
        conn.close()


def pages(path: Path, filters: Filters, size: int) -> Generator[list[dict[str, Any]], None, None]:
    """Matching records in seq order, ``size`` at a time, never all in memory at once.

    A SQLite store is read one page per statement (keyset on ``seq``, a connection each), so a
    long export holds no read transaction open between pages; a JSONL store line by line.
    """
    if path.suffix == ".jsonl":
        batch: list[dict[str, Any]] = []
        for line, _ in jsonl_rows(path):
            record = _record(line)
            if _matches(record, filters):
                batch.append(record)
                if len(batch) >= size:
                    yield batch
                    batch = []
        if batch:
            yield batch
        return
    clause, args = _sql(filters)
    where = f"{clause} AND seq > ?" if clause else " WHERE seq > ?"
    sql = f"SELECT seq, record FROM audit_events{where} ORDER BY seq ASC LIMIT {int(size)}"
    last = -1
    while True:
        conn = open_store(path)
        try:
            rows = conn.execute(sql, [*args, last]).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"{path} is not an audit store: {exc}") from None
        finally:
            conn.close()
        if not rows:
            return
        last = int(rows[-1][0])
        yield [_record(text) for _, text in rows]
        if len(rows) < size:
            return
