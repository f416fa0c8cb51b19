"""Local spill file: where chained events wait, durably, while sinks fail.

Lines are the exact stored form of chained records, so a replay writes the
very bytes that were authenticated. A torn last line (crash mid-append) is
ignored on load: its batch was never acknowledged as durable.

Processes started with one config share the spill file: appends, replays and
clears happen under a lock file beside it (``.NAME.lock``), and any of them may
replay (re-chain) what another spilled. Lines whose MAC does not verify are
never re-signed: they move to ``NAME.rejected`` and stay there, reported by
``audit verify``, until someone inspects and removes them.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from .chain import ChainedRecord, file_lock, line_mac_ok, line_of
from .keys import KeyRing


class Spill:
    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def rejected_path(self) -> Path:
        return self.path.with_name(self.path.name + ".rejected")

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive across processes; hold it from load to clear when replaying."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with file_lock(self.path.with_name(f".{self.path.name}.lock")):
            yield

    def append(self, records: Sequence[ChainedRecord], *, locked: bool = False) -> None:
        """Append and fsync; raises OSError when the disk refuses (the caller keeps them in memory)."""
        if not locked:
            with self.lock():
                self.append(records, locked=True)
            return
        self._append(self.path, "".join(line_of(r) + "\n" for r in records))

    @staticmethod
    def _append(path: Path, text: str) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, text.encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)

    def split(self, ring: KeyRing) -> tuple[list[ChainedRecord], list[ChainedRecord]]:
        """``(records whose MAC verifies, records that fail it)`` of the spill file."""
        good: list[ChainedRecord] = []
        bad: list[ChainedRecord] = []
        for r in self.load():
            (good if line_mac_ok(r, ring) else bad).append(r)
        return good, bad

    def reject(self, bad: Sequence[ChainedRecord]) -> None:
        """Move lines that fail their MAC check to ``NAME.rejected`` (call under ``lock``)."""
        if bad:
            self._append(self.rejected_path, "".join(line_of(r) + "\n" for r in bad))

    def rewrite(self, records: Sequence[ChainedRecord]) -> None:
        """Atomically replace the file's content (temp file + fsync + rename; call under ``lock``)."""
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.unlink(missing_ok=True)
        self._append(tmp, "".join(line_of(r) + "\n" for r in records))
        os.replace(tmp, self.path)

    def load_rejected(self) -> list[str]:
        try:
            return [ln for ln in self.rejected_path.read_text("ascii", errors="replace").splitlines() if ln]
        except FileNotFoundError:
            return []

    def exists(self) -> bool:
        try:
            return self.path.stat().st_size > 0
        except FileNotFoundError:
            return False

    def load(self) -> list[ChainedRecord]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        out: list[ChainedRecord] = []
        for line in raw.decode("ascii", errors="replace").splitlines():
            try:
                data = json.loads(line)
            except ValueError:
                continue
            if isinstance(data, dict) and isinstance(data.get("seq"), int):
                rec = ChainedRecord(data)
                rec.line = line
                out.append(rec)
        return out

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
