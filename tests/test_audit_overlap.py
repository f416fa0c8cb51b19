"""One flush that takes several batches: same trail, same anchor, same order as one at a time."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mcp_guard.audit import AuditLog, SQLiteSink, read_anchor, store_rows, verify_rows
from mcp_guard.audit.keys import AuditKey, KeyRing
from mcp_guard.model import AuditEvent

KEYS = KeyRing([AuditKey("k1", b"s" * 32)])


def event(i: int) -> AuditEvent:
    return AuditEvent(method="tools/call", decision="allow", target="query", arguments={"n": i})


def seqs_and_ns(db: Path) -> list[tuple[int, str]]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute(
            "SELECT seq, json_extract(record, '$.arguments.n') FROM audit_events ORDER BY seq"
        )
        return [(int(s), str(n)) for s, n in rows]
    finally:
        conn.close()


def fill(audit: AuditLog, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        audit.record(event(i))


def test_many_batches_in_one_flush_keep_order_chain_and_anchor(tmp_path: Path) -> None:
    db, anchor = tmp_path / "audit.db", tmp_path / "audit.anchor"
    audit = AuditLog(SQLiteSink(db), KEYS, anchor_path=anchor, batch_size=10_000, flush_interval=60)
    fill(audit, 2_500)
    audit._batch = 300  # several batches in the one flush below
    assert audit.flush()
    head = read_anchor(anchor, KEYS)
    assert head is not None and head.seq == 2_500
    audit.close()
    rows = seqs_and_ns(db)
    assert [s for s, _ in rows] == list(range(1, 2_501))
    assert [n for _, n in rows] == [str(i) for i in range(2_500)]
    assert verify_rows(store_rows(db), KEYS, read_anchor(anchor, KEYS)).ok


class Interleaved(SQLiteSink):
    """A store another process appends to just before this writer's first batch commits."""

    def __init__(self, path: Path, other: Callable[[], None]) -> None:
        super().__init__(path)
        self._other: Callable[[], None] | None = other

    def write_linked(
        self, records: Sequence[Any], relink: Any, *, replay: bool = False
    ) -> tuple[Sequence[Any], tuple[int, str, str] | None]:
        if self._other is not None:
            other, self._other = self._other, None
            other()
        return super().write_linked(records, relink, replay=replay)


def test_later_batches_are_rechained_after_another_writer(tmp_path: Path) -> None:
    db, anchor = tmp_path / "audit.db", tmp_path / "audit.anchor"

    def other_writer() -> None:
        other = AuditLog(SQLiteSink(db), KEYS, anchor_path=anchor, flush_interval=60)
        fill(other, 7, start=10_000)
        other.close()

    audit = AuditLog(
        Interleaved(db, other_writer), KEYS, anchor_path=anchor, batch_size=10_000, flush_interval=60
    )
    fill(audit, 1_000)
    audit._batch = 250
    assert audit.flush()
    audit.close()
    rows = seqs_and_ns(db)
    assert [s for s, _ in rows] == list(range(1, 1_008))
    assert [n for _, n in rows] == [str(i) for i in range(10_000, 10_007)] + [str(i) for i in range(1_000)]
    result = verify_rows(store_rows(db), KEYS, read_anchor(anchor, KEYS))
    assert result.ok, result.message
    head = read_anchor(anchor, KEYS)
    assert head is not None and head.seq == 1_007


class FailsOnce(SQLiteSink):
    """The second batch fails once; everything after it must wait behind it, in order."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.calls = 0

    def write_linked(
        self, records: Sequence[Any], relink: Any, *, replay: bool = False
    ) -> tuple[Sequence[Any], tuple[int, str, str] | None]:
        self.calls += 1
        if self.calls == 2:
            raise sqlite3.OperationalError("disk I/O error")
        return super().write_linked(records, relink, replay=replay)


def test_a_failing_batch_of_several_is_spilled_and_replayed_in_order(tmp_path: Path) -> None:
    db, anchor, spill = tmp_path / "audit.db", tmp_path / "audit.anchor", tmp_path / "audit.spill"
    audit = AuditLog(
        FailsOnce(db), KEYS, anchor_path=anchor, spill_path=spill, batch_size=10_000, flush_interval=60
    )
    fill(audit, 1_000)
    audit._batch = 200
    assert not audit.flush()  # the failed batch and every one behind it wait in the spill file
    assert audit.stats()["spilled"] == 800
    assert audit.flush()  # replayed by the next forced retry
    audit.close()
    rows = seqs_and_ns(db)
    assert [n for _, n in rows] == [str(i) for i in range(1_000)]
    assert verify_rows(store_rows(db), KEYS, read_anchor(anchor, KEYS)).ok
