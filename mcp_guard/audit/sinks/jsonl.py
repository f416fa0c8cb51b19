"""JSON Lines sink with size-based rotation.

One record per line; the encoder escapes every control and line-separator
character, so an argument can never start a forged line. Rotation renames
``audit.jsonl`` to ``audit.jsonl.1`` (older ones shift up) and keeps ``keep``
rotated files (0 keeps all). The sink remembers the newest seq it holds and
skips records at or below it, so replays after a failure do not duplicate.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..chain import line_of


def rotated(path: Path, index: int) -> Path:
    return path.with_name(f"{path.name}.{index}")


def _tail_seq(path: Path) -> tuple[int, str] | None:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 65536))
            chunk = fh.read()
    except FileNotFoundError:
        return None
    for raw in reversed(chunk.splitlines()):
        try:
            record = json.loads(raw)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("seq"), int):
            return int(record["seq"]), str(record.get("mac"))
    return None


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
        tail = _tail_seq(self.path) or _tail_seq(rotated(self.path, 1))
        self._last_seq = tail[0] if tail else 0
        self._last_mac = tail[1] if tail else None
        self._fh = self.path.open("ab")

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

    def _rotate(self) -> None:
        self._fh.close()
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

    def head(self) -> tuple[int, str, str | None] | None:
        with self._lock:
            if not self._last_seq or self._last_mac is None:
                return None
            return self._last_seq, self._last_mac, None

    def close(self) -> None:
        with self._lock:
            self._fh.close()

    def __repr__(self) -> str:
        return f"JsonlSink({str(self.path)!r})"
