"""Local spill file: where chained events wait, durably, while sinks fail.

Lines are the exact stored form of chained records, so a replay writes the
very bytes that were authenticated. A torn last line (crash mid-append) is
ignored on load: its batch was never acknowledged as durable.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from .chain import ChainedRecord, line_of


class Spill:
    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, records: Sequence[ChainedRecord]) -> None:
        """Append and fsync; raises OSError when the disk refuses (the caller keeps them in memory)."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        data = "".join(line_of(r) + "\n" for r in records).encode("ascii")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)

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
