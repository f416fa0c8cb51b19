"""JSON Lines sink with size-based rotation.

One record per line; the encoder escapes every control and line-separator
character, so an argument can never start a forged line. Rotation renames
``audit.jsonl`` to ``audit.jsonl.1`` (older ones shift up) and keeps ``keep``
rotated files (0 keeps all). The sink remembers the newest seq it holds and
skips records at or below it, so replays after a failure do not duplicate.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..chain import GENESIS, fit_after, line_of


def rotated(path: Path, index: int) -> Path:
    return path.with_name(f"{path.name}.{index}")


def _tail(path: Path) -> tuple[int, str, set[str]] | None:
    """The newest record's seq and mac, and the ids of the newest records (for replays)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 65536))
            chunk = fh.read()
    except FileNotFoundError:
        return None
    found: tuple[int, str] | None = None
    ids: set[str] = set()
    for raw in reversed(chunk.splitlines()):
        try:
            record = json.loads(raw)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("seq"), int):
            if found is None:
                found = int(record["seq"]), str(record.get("mac"))
            if isinstance(record.get("id"), str):
                ids.add(record["id"])
    return (found[0], found[1], ids) if found is not None else None


class JsonlSink:
    """An :class:`~mcp_guard.protocols.AuditSink` appending to a local file."""

    def __init__(self, path: Path | str, *, max_bytes: int = 0, keep: int = 10, fsync: bool = False) -> None:
        if max_bytes < 0 or keep < 0:
            raise ValueError("max_bytes and keep must be >= 0")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.keep = keep
        self.fsync = fsync
        self._lock = threading.Lock()
        tail = _tail(self.path) or _tail(rotated(self.path, 1))
        self._last_seq = tail[0] if tail else 0
        self._last_mac = tail[1] if tail else None
        self._fh = self.path.open("ab")
        self._first: str | None = None

    def write(self, records: Sequence[Mapping[str, Any]]) -> None:
        with self._lock:
            fresh = [r for r in records if int(r["seq"]) > self._last_seq]
            if not fresh:
                return
            data = "".join(line_of(r) + "\n" for r in fresh).encode("ascii")
            self._fh.write(data)
            self._fh.flush()
            if self.fsync:
                os.fsync(self._fh.fileno())
            self._last_seq = int(fresh[-1]["seq"])
            self._last_mac = str(fresh[-1]["mac"])
            if self.max_bytes and self._fh.tell() >= self.max_bytes:
                self._rotate()

    def write_linked(
        self,
        records: Sequence[Mapping[str, Any]],
        relink: Callable[[int, str, Sequence[Mapping[str, Any]]], Sequence[Mapping[str, Any]]],
        *,
        replay: bool = False,
    ) -> tuple[Sequence[Mapping[str, Any]], tuple[int, str, str | None] | None]:
        """Append ``records`` after the file's own last record, under an exclusive ``flock``.

        Several processes append to one trail (a guard and the admin commands, which write the
        guard's trail): each reads the chain head inside the lock and, when another process
        appended since the batch was chained, re-chains it after that head (``relink``), as the
        SQLite sink does inside its write transaction. A replayed batch (from the spill file)
        skips events whose id the file's newest records already hold. Returns what was written
        and the new head ``(seq, mac, first mac or None)``.
        """
        with self._lock:
            while True:  # the lock of the file now at the path (another writer may rotate it)
                self._reopen_if_rotated()
                fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX)
                if not self._rotated_away():
                    break
            try:
                tail = _tail(self.path) or _tail(rotated(self.path, 1))
                seq, mac, held = (tail[0], tail[1], tail[2]) if tail else (0, GENESIS, set())
                todo = fit_after(seq, mac, records, relink, replay=replay, held=held)
                if todo:
                    self._fh.write("".join(line_of(r) + "\n" for r in todo).encode("ascii"))
                    self._fh.flush()
                    if self.fsync:
                        os.fsync(self._fh.fileno())
                    seq, mac = int(todo[-1]["seq"]), str(todo[-1]["mac"])
                self._last_seq, self._last_mac = seq, mac
                first = self._first_mac()
                if self.max_bytes and self._fh.tell() >= self.max_bytes:
                    self._rotate()
            finally:
                with contextlib.suppress(OSError, ValueError):  # closed by a rotation: lock gone with it
                    fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
        return todo, ((seq, mac, first) if seq else None)

    def _first_mac(self) -> str | None:
        """The mac of event #1, from the oldest file (None when rotation has dropped it)."""
        if self._first is not None:
            return self._first
        index = 1
        while rotated(self.path, index).exists():
            index += 1
        for path in [rotated(self.path, i) for i in range(index - 1, 0, -1)] + [self.path]:
            try:
                with path.open("rb") as fh:
                    line = fh.readline()
            except FileNotFoundError:
                continue
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                return None
            if isinstance(record, dict) and record.get("seq") == 1 and isinstance(record.get("mac"), str):
                self._first = record["mac"]
            return self._first
        return None

    def _rotated_away(self) -> bool:
        """Whether the file we hold is no longer the one at the path (another writer rotated it)."""
        try:
            current = os.stat(self.path)
        except FileNotFoundError:
            return True
        held = os.fstat(self._fh.fileno())
        return (current.st_ino, current.st_dev) != (held.st_ino, held.st_dev)

    def _reopen_if_rotated(self) -> None:
        """Follow the path when another process renamed the file we hold (closing drops its lock)."""
        if self._rotated_away():
            self._fh.close()
            self._fh = self.path.open("ab")

    def _rotate(self) -> None:
        """Rename the files while this process still holds the lock of the one it wrote.

        Closing the file drops its ``flock``: a writer waiting for it must then find it renamed
        (``_rotated_away``) and move on to the new file. Closing first let that writer append to
        the old file after it was checked but before it was renamed, while another already wrote
        the new one from the same head: two chains.
        """
        old = self._fh
        index = 1
        while rotated(self.path, index).exists():
            index += 1
        for i in range(index, 0, -1):
            src = self.path if i == 1 else rotated(self.path, i - 1)
            if self.keep and i > self.keep:
                src.unlink(missing_ok=True)
            else:
                os.replace(src, rotated(self.path, i))
        self._fh = self.path.open("ab")
        old.close()

    def head(self) -> tuple[int, str, str | None] | None:
        with self._lock:
            if not self._last_seq or self._last_mac is None:
                return None
            return self._last_seq, self._last_mac, self._first_mac()

    def close(self) -> None:
        with self._lock:
            self._fh.close()

    def __repr__(self) -> str:
        return f"JsonlSink({str(self.path)!r})"
