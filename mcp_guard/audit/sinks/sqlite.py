"""SQLite sink: the embedded default store, queryable and verifiable.

WAL mode so readers (``audit query``, ``audit verify``) never block the
writer; one transaction per batch with ``executemany``. ``seq`` is the
primary key, so replaying a spilled batch that was already committed is a
no-op, while a *different* record under an existing seq is refused loudly by
plain ``write`` instead of being ignored.

Several processes may append to one file: the audit pipeline calls
``write_linked``, which takes SQLite's write lock (``BEGIN IMMEDIATE``), reads
the chain head inside the transaction and, when another writer appended since
the batch was chained, re-chains the batch after that head before inserting.
The chain stays one linear chain across processes.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..chain import GENESIS, ChainedRecord, fit_after, line_of

#: ``relink(head seq, head mac, records)``: the records re-chained after that head.
Relink = Callable[[int, str, Sequence[Mapping[str, Any]]], list[ChainedRecord]]

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
CREATE INDEX IF NOT EXISTS audit_events_tenant ON audit_events(tenant, time);
CREATE INDEX IF NOT EXISTS audit_events_id ON audit_events(id);
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


def _while_busy(step: Callable[[], object], timeout: float) -> None:
    """Run one opening step, retrying while another process holds the file.

    Switching a new file to WAL and creating the schema can report "database
    is locked" at once, without waiting on the busy timeout, when two
    processes open the same fresh store together; opening must not fail for
    that, so the step is retried until ``timeout``.
    """
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        try:
            step()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.1)


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
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"invalid synchronous mode {synchronous!r}")
        _while_busy(lambda: self._conn.execute("PRAGMA journal_mode=WAL"), timeout)
        self._conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
        _while_busy(lambda: self._conn.executescript(SCHEMA), timeout)

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

    def write_linked(
        self, records: Sequence[Mapping[str, Any]], relink: Relink, *, replay: bool = False
    ) -> tuple[Sequence[Mapping[str, Any]], tuple[int, str, str] | None]:
        """Append under the store's write lock, re-chaining after the current head when needed.

        Returns the records actually inserted (re-chained or not) and the store's head
        ``(seq, mac, first mac)`` after the commit. ``replay`` (spilled or held records): events
        whose id the store already holds at or after the batch's first seq are skipped, and the
        rest is always re-chained, so replaying twice never duplicates. A fresh batch whose first
        seq lies beyond the head (the chain continues after an anchor that recorded removed
        events) is written as it is, keeping that gap visible.
        """
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                last = conn.execute("SELECT seq, mac FROM audit_events ORDER BY seq DESC LIMIT 1").fetchone()
                seq, mac = (int(last[0]), str(last[1])) if last is not None else (0, GENESIS)
                held: set[str] = set()
                if records and replay:
                    low = min(int(r["seq"]) for r in records)
                    held = {r[0] for r in conn.execute("SELECT id FROM audit_events WHERE seq >= ?", (low,))}
                todo = fit_after(seq, mac, records, relink, replay=replay, held=held)
                if todo:
                    rows = [
                        (r["seq"], *column_values(r), r["prev"], r["key_id"], r["mac"], line_of(r))
                        for r in todo
                    ]
                    cur = conn.executemany(_INSERT, rows)
                    if cur.rowcount != len(rows):
                        self._check_replays(rows)
                    seq, mac = int(todo[-1]["seq"]), str(todo[-1]["mac"])
                first = conn.execute("SELECT mac FROM audit_events ORDER BY seq LIMIT 1").fetchone()
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        return todo, ((seq, mac, str(first[0])) if first is not None else None)

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
