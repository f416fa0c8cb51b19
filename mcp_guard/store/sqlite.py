"""SQLite state store: the embedded default, shared by every process that opens the same file.

sqlite3 is blocking, so each operation first runs inline on the event loop
without waiting for locks (a WAL-mode statement on a warm page cache takes
microseconds, less than a hop to a worker thread). When another process or
thread holds the write lock, the operation is retried in a worker thread
(``anyio.to_thread``) that may wait up to ``busy_timeout``, so the loop never
blocks on a lock. Writers are serialised by ``BEGIN IMMEDIATE``, which makes
each operation atomic across processes.

Times are wall-clock (``time.time``) because processes do not share a
monotonic clock; replicas sharing a file share a host, hence a clock.

Change notification polls a ``changes`` table every ``poll_interval``
seconds (default 0.2), so a message reaches other processes within about that
long; rows older than ``retention`` seconds are pruned.
"""

from __future__ import annotations

import builtins
import os
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import TypeVar

import anyio
import anyio.to_thread

from ..errors import GuardUnavailable
from ..protocols import RateDecision
from ._common import PERIOD_GRACE, Spend, check_distinct, check_spends, period_window

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL, expires REAL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sets (key TEXT NOT NULL, member TEXT NOT NULL, PRIMARY KEY (key, member))
    WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS hits (key TEXT NOT NULL, ts REAL NOT NULL, expires REAL NOT NULL);
CREATE INDEX IF NOT EXISTS hits_key_ts ON hits (key, ts);
CREATE TABLE IF NOT EXISTS hitcount (key TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT, channel TEXT NOT NULL, message TEXT NOT NULL, at REAL NOT NULL);
"""

#: Purge expired rows of every key after this many writes (lazy per-key expiry covers the rest).
_PURGE_EVERY = 2000


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)  # Python >= 3.11
    if code is not None:
        return (code & 0xFF) in (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED (and extended codes)
    return "locked" in str(exc) or "busy" in str(exc)


class _Busy(Exception):
    """The inline attempt met a lock held elsewhere; retry in a thread."""


class SQLiteStore:
    """A :class:`~mcp_guard.protocols.StateStore` in one SQLite file (WAL mode)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        poll_interval: float = 0.2,
        busy_timeout: float = 5.0,
        retention: float = 600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.poll_interval = poll_interval
        self._busy_ms = int(busy_timeout * 1000)
        self._retention = retention
        self._clock = clock
        self._lock = threading.Lock()
        self._writes = 0
        self._closed = False
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # The store holds shared keys and credentials' state: owner-only, like a key file.
        # SQLite gives its -wal and -shm files the database file's permissions.
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        self._conn = sqlite3.connect(
            str(self.path), timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
        try:
            self._initialise(busy_timeout)
        except BaseException:
            self._conn.close()
            raise

    def _initialise(self, busy_timeout: float) -> None:
        """Switch to WAL and create tables; retried because a fresh file may be set up by several
        processes at once and the WAL switch does not always wait for the busy handler."""
        deadline = time.monotonic() + busy_timeout
        while True:
            try:
                mode = self._conn.execute("PRAGMA journal_mode").fetchone()[0]
                if str(mode).lower() != "wal":
                    self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA synchronous=NORMAL")
                self._conn.executescript("BEGIN IMMEDIATE;" + _SCHEMA + "COMMIT;")
                self._conn.execute("PRAGMA busy_timeout=0")
                return
            except sqlite3.OperationalError as exc:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                if not _is_busy(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    # -- execution ---------------------------------------------------------------------------

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise GuardUnavailable("state store unavailable: sqlite store is closed")
        if self._lock.acquire(blocking=False):
            try:
                return self._attempt(fn, wait=False)
            except _Busy:
                pass
            finally:
                self._lock.release()
        return await anyio.to_thread.run_sync(self._blocking, fn)

    def _blocking(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            self._conn.execute(f"PRAGMA busy_timeout={self._busy_ms}")
            try:
                return self._attempt(fn, wait=True)
            finally:
                self._conn.execute("PRAGMA busy_timeout=0")

    def _attempt(self, fn: Callable[[sqlite3.Connection], T], *, wait: bool) -> T:
        try:
            return fn(self._conn)
        except sqlite3.OperationalError as exc:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            if _is_busy(exc) and not wait:
                raise _Busy from exc
            raise GuardUnavailable(f"state store unavailable: sqlite {self.path}: {exc}") from exc
        except sqlite3.Error as exc:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise GuardUnavailable(f"state store unavailable: sqlite {self.path}: {exc}") from exc
        except BaseException:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise

    def _write(self, conn: sqlite3.Connection, body: Callable[[sqlite3.Connection, float], T]) -> T:
        """Run ``body`` in one IMMEDIATE transaction (the cross-process write lock)."""
        conn.execute("BEGIN IMMEDIATE")
        now = self._clock()
        result = body(conn, now)
        self._writes += 1
        if self._writes % _PURGE_EVERY == 0:
            conn.execute(
                "DELETE FROM hitcount WHERE key IN "
                "(SELECT key FROM hits GROUP BY key HAVING max(expires) <= ?)",
                (now,),
            )
            conn.execute("DELETE FROM hitcount WHERE n <= 0")
            conn.execute("DELETE FROM hits WHERE key NOT IN (SELECT key FROM hitcount)")
            conn.execute("DELETE FROM kv WHERE expires IS NOT NULL AND expires <= ?", (now,))
        conn.execute("COMMIT")
        return result

    # -- rate limits -------------------------------------------------------------------------

    @staticmethod
    def _count(conn: sqlite3.Connection, key: str, limit: int, window: float, now: float) -> RateDecision:
        """Trim the window and read its size; ``hitcount`` keeps sizes so no hit scans its window."""
        removed = conn.execute("DELETE FROM hits WHERE key = ? AND ts <= ?", (key, now - window)).rowcount
        row = conn.execute("SELECT n FROM hitcount WHERE key = ?", (key,)).fetchone()
        count = (row[0] if row is not None else 0) - removed
        if removed:
            conn.execute("UPDATE hitcount SET n = ? WHERE key = ?", (count, key))
        if count >= limit:
            oldest = conn.execute("SELECT min(ts) FROM hits WHERE key = ?", (key,)).fetchone()[0]
            retry = oldest + window - now if oldest is not None else window
            return RateDecision(False, count, limit, max(retry, 0.0))
        return RateDecision(True, count, limit, 0.0)

    async def hit(self, key: str, limit: int, window: float) -> RateDecision:
        return (await self.hit_many(((key, limit, window),)))[0]

    async def hit_many(self, hits: Sequence[tuple[str, int, float]]) -> list[RateDecision]:
        """Count one call against several limits in one transaction, all or nothing.

        Keys must be distinct.
        """
        items = tuple(hits)
        check_distinct(items)

        def body(conn: sqlite3.Connection, now: float) -> list[RateDecision]:
            out = [self._count(conn, key, limit, window, now) for key, limit, window in items]
            if all(d.allowed for d in out):
                conn.executemany(
                    "INSERT INTO hits (key, ts, expires) VALUES (?, ?, ?)",
                    [(key, now, now + window) for key, _, window in items],
                )
                conn.executemany(
                    "INSERT OR REPLACE INTO hitcount (key, n) VALUES (?, ?)",
                    [(key, d.count + 1) for (key, _, _), d in zip(items, out)],  # noqa: B905
                )
                out = [RateDecision(True, d.count + 1, d.limit, 0.0) for d in out]
            return out

        return await self._run(lambda conn: self._write(conn, body))

    async def spend_many(self, items: Sequence[Spend], now: float) -> tuple[bool, list[tuple[int, int]]]:
        """Charge one call to several budget counters in one transaction, all or nothing.

        Same contract as :meth:`MemoryStore.spend_many <mcp_guard.store.memory.MemoryStore.spend_many>`;
        counters are key-value entries named ``key@window_start``.
        """
        charges = tuple(items)
        check_spends(charges)

        def body(conn: sqlite3.Connection, clock: float) -> tuple[bool, list[tuple[int, int]]]:
            rows: list[tuple[str, int, int]] = []
            for key, _, _, period in charges:
                start, end = period_window(now, period)
                name = f"{key}@{start}"
                row = conn.execute(
                    "SELECT value FROM kv WHERE key = ? AND (expires IS NULL OR expires > ?)", (name, clock)
                ).fetchone()
                rows.append((name, int(bytes(row[0])) if row is not None else 0, end))
            pairs = list(zip(rows, charges))  # noqa: B905 - same length by construction
            if any(used + cost > limit for (_, used, _), (_, cost, limit, _) in pairs):
                return False, [(used, end) for _, used, end in rows]
            conn.executemany(
                "INSERT OR REPLACE INTO kv (key, value, expires) VALUES (?, ?, ?)",
                [
                    (name, str(used + cost).encode(), clock + end - now + PERIOD_GRACE)
                    for (name, used, end), (_, cost, _, _) in pairs
                    if cost > 0
                ],
            )
            return True, [(used + cost, end) for (_, used, end), (_, cost, _, _) in pairs]

        return await self._run(lambda conn: self._write(conn, body))

    # -- key-value ---------------------------------------------------------------------------

    async def get(self, key: str) -> bytes | None:
        def read(conn: sqlite3.Connection) -> bytes | None:
            row = conn.execute(
                "SELECT value FROM kv WHERE key = ? AND (expires IS NULL OR expires > ?)",
                (key, self._clock()),
            ).fetchone()
            return bytes(row[0]) if row is not None else None

        return await self._run(read)

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        def body(conn: sqlite3.Connection, now: float) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO kv (key, value, expires) VALUES (?, ?, ?)",
                (key, bytes(value), now + ttl if ttl is not None else None),
            )

        await self._run(lambda conn: self._write(conn, body))

    async def set_if_absent(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        """Store ``value`` only when ``key`` holds nothing live; True when this call stored it."""

        def body(conn: sqlite3.Connection, now: float) -> bool:
            conn.execute("DELETE FROM kv WHERE key = ? AND expires IS NOT NULL AND expires <= ?", (key, now))
            cur = conn.execute(
                "INSERT OR IGNORE INTO kv (key, value, expires) VALUES (?, ?, ?)",
                (key, bytes(value), now + ttl if ttl is not None else None),
            )
            return cur.rowcount == 1

        return await self._run(lambda conn: self._write(conn, body))

    async def take(self, key: str) -> bytes | None:
        """Return and delete a value in one transaction, so a one-time token is redeemed once."""

        def body(conn: sqlite3.Connection, now: float) -> bytes | None:
            row = conn.execute("SELECT value, expires FROM kv WHERE key = ?", (key,)).fetchone()
            conn.execute("DELETE FROM kv WHERE key = ?", (key,))
            if row is None or (row[1] is not None and row[1] <= now):
                return None
            return bytes(row[0])

        return await self._run(lambda conn: self._write(conn, body))

    async def keys(self, prefix: str = "") -> list[str]:
        """Live key-value and non-empty set keys starting with ``prefix``, sorted."""

        def read(conn: sqlite3.Connection) -> list[str]:
            now = self._clock()
            found: builtins.set[str] = set()
            queries = (
                (
                    "SELECT key FROM kv WHERE key >= ? AND (expires IS NULL OR expires > ?) ORDER BY key",
                    (now,),
                ),
                ("SELECT DISTINCT key FROM sets WHERE key >= ? ORDER BY key", ()),
            )
            for sql, extra in queries:
                for (key,) in conn.execute(sql, (prefix, *extra)):
                    if not key.startswith(prefix):
                        break  # index order: past the last key with this prefix
                    found.add(key)
            return sorted(found)

        return await self._run(read)

    async def delete(self, key: str) -> None:
        def body(conn: sqlite3.Connection, now: float) -> None:
            conn.execute("DELETE FROM kv WHERE key = ?", (key,))
            conn.execute("DELETE FROM sets WHERE key = ?", (key,))

        await self._run(lambda conn: self._write(conn, body))

    async def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        def body(conn: sqlite3.Connection, now: float) -> int:
            row = conn.execute(
                "SELECT value, expires FROM kv WHERE key = ? AND (expires IS NULL OR expires > ?)", (key, now)
            ).fetchone()
            current = int(bytes(row[0])) if row is not None else 0
            expires = row[1] if row is not None else None
            if expires is None and ttl is not None:
                expires = now + ttl
            value = current + amount
            conn.execute(
                "INSERT OR REPLACE INTO kv (key, value, expires) VALUES (?, ?, ?)",
                (key, str(value).encode(), expires),
            )
            return value

        return await self._run(lambda conn: self._write(conn, body))

    # -- sets --------------------------------------------------------------------------------

    async def sadd(self, key: str, member: str) -> None:
        def body(conn: sqlite3.Connection, now: float) -> None:
            conn.execute("INSERT OR IGNORE INTO sets (key, member) VALUES (?, ?)", (key, member))

        await self._run(lambda conn: self._write(conn, body))

    async def srem(self, key: str, member: str) -> None:
        def body(conn: sqlite3.Connection, now: float) -> None:
            conn.execute("DELETE FROM sets WHERE key = ? AND member = ?", (key, member))

        await self._run(lambda conn: self._write(conn, body))

    async def sismember(self, key: str, member: str) -> bool:
        def read(conn: sqlite3.Connection) -> bool:
            row = conn.execute("SELECT 1 FROM sets WHERE key = ? AND member = ?", (key, member)).fetchone()
            return row is not None

        return await self._run(read)

    async def smembers(self, key: str) -> builtins.set[str]:
        def read(conn: sqlite3.Connection) -> builtins.set[str]:
            return {r[0] for r in conn.execute("SELECT member FROM sets WHERE key = ?", (key,))}

        return await self._run(read)

    # -- change notification -----------------------------------------------------------------

    async def publish(self, channel: str, message: str) -> None:
        def body(conn: sqlite3.Connection, now: float) -> None:
            conn.execute(
                "INSERT INTO changes (channel, message, at) VALUES (?, ?, ?)", (channel, message, now)
            )
            conn.execute("DELETE FROM changes WHERE at < ?", (now - self._retention,))

        await self._run(lambda conn: self._write(conn, body))

    async def subscribe(self, channel: str) -> AsyncIterator[str]:
        """Yield messages published after the first ``__anext__`` (polled, see the module doc)."""

        def start(conn: sqlite3.Connection) -> int:
            row = conn.execute("SELECT coalesce(max(id), 0) FROM changes").fetchone()
            return int(row[0])

        def poll(after: int) -> Callable[[sqlite3.Connection], list[tuple[int, str]]]:
            def read(conn: sqlite3.Connection) -> list[tuple[int, str]]:
                return conn.execute(
                    "SELECT id, message FROM changes WHERE id > ? AND channel = ? ORDER BY id",
                    (after, channel),
                ).fetchall()

            return read

        last = await self._run(start)
        while True:
            await anyio.sleep(self.poll_interval)
            for row_id, message in await self._run(poll(last)):
                last = row_id
                yield message

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        await anyio.to_thread.run_sync(self._close)

    def _close(self) -> None:
        with self._lock:
            self._conn.close()
