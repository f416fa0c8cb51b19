"""SQLite sink: the embedded default store, queryable and verifiable.

WAL mode so readers (``audit query``, ``audit verify``) never block the
writer; one transaction per batch with ``executemany``. ``seq`` is the
primary key, so replaying a spilled batch that was already committed is a
no-op, while a *different* record under an existing seq (two writers forking
one chain) is refused loudly instead of being ignored.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..chain import line_of

SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_events (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    time REAL NOT NULL,
    subject TEXT,
    tenant TEXT,
    server TEXT,
    target TEXT,
    method TEXT NOT NULL,
    decision TEXT NOT NULL,
    session_id TEXT,
    prev TEXT NOT NULL,
    key_id TEXT NOT NULL,
    mac TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_events_time ON audit_events(time);
CREATE INDEX IF NOT EXISTS audit_events_subject ON audit_events(subject, time);
CREATE INDEX IF NOT EXISTS audit_events_server ON audit_events(server, target, time);
"""

#: Indexed columns, in table order after ``seq``; verify checks each against the JSON record.
COLUMNS = ("id", "time", "subject", "tenant", "server", "target", "method", "decision", "session_id")
CHAIN_COLUMNS = ("prev", "key_id", "mac")

_INSERT = (
    "INSERT INTO audit_events (seq, id, time, subject, tenant, server, target, method, decision, session_id,"
    " prev, key_id, mac, record) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(seq) DO NOTHING"
)


class ChainConflict(RuntimeError):
    """A different record already holds this seq: two writers are appending to one store."""


def column_values(record: Mapping[str, Any]) -> tuple[Any, ...]:
    """The indexed column values a record implies (used by the sink and by verify)."""
    principal = record.get("principal")
    if not isinstance(principal, Mapping):
        principal = {}
    return (
        record.get("id"),
        record.get("time"),
        principal.get("subject"),
        principal.get("tenant"),
        record.get("server"),
        record.get("target"),
        record.get("method"),
        record.get("decision"),
        record.get("session_id"),
    )


class SQLiteSink:
    """An :class:`~mcp_guard.protocols.AuditSink` writing to one SQLite file."""

    def __init__(self, path: Path | str, *, synchronous: str = "NORMAL", timeout: float = 10.0) -> None:
        self.path = Path(path)
        # The trail names users, tools and arguments: owner-only, like the key file. A directory we
        # create is 0700; the database is created 0600 before SQLite opens it, and SQLite gives its
        # -wal and -shm files the database file's permissions.
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=timeout
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"invalid synchronous mode {synchronous!r}")
        self._conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
        self._conn.executescript(SCHEMA)

    def write(self, records: Sequence[Mapping[str, Any]]) -> None:
        rows = [(r["seq"], *column_values(r), r["prev"], r["key_id"], r["mac"], line_of(r)) for r in records]
        if not rows:
            return
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                cur = conn.executemany(_INSERT, rows)
                if cur.rowcount != len(rows):
                    self._check_replays(rows)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def _check_replays(self, rows: list[tuple[Any, ...]]) -> None:
        for row in rows:
            found = self._conn.execute("SELECT mac FROM audit_events WHERE seq = ?", (row[0],)).fetchone()
            if found is not None and found[0] != row[12]:
                raise ChainConflict(f"{self.path}: seq {row[0]} already holds a different event")

    def head(self) -> tuple[int, str, str] | None:
        """``(seq, mac, first mac)`` of the stored chain, None when empty."""
        with self._lock:
            last = self._conn.execute(
                "SELECT seq, mac FROM audit_events ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            if last is None:
                return None
            first = self._conn.execute("SELECT mac FROM audit_events ORDER BY seq LIMIT 1").fetchone()
        return int(last[0]), str(last[1]), str(first[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __repr__(self) -> str:
        return f"SQLiteSink({str(self.path)!r})"
