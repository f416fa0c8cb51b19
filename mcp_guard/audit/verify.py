"""Chain verification: names the first altered, missing or reordered event, checks the anchor and
reports acknowledged events still waiting in (or rejected from) the spill file."""

from __future__ import annotations

import hmac
import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .chain import GENESIS, Anchor, line_of, split_line
from .checkpoint import Checkpoint
from .keys import KeyRing
from .sinks.jsonl import rotated
from .sinks.sqlite import CHAIN_COLUMNS, COLUMNS, column_values
from .spill import Spill

Row = tuple[str, tuple[Any, ...] | None]


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    count: int
    message: str
    seq: int | None = None
    #: ``(seq, mac, first mac)`` of the verified head when ok and non-empty.
    head: tuple[int, str, str] | None = None


class StoreError(Exception):
    """The path is missing or is not an audit store."""


def _label(seq: int, record: dict[str, Any] | None = None) -> str:
    if record and isinstance(record.get("id"), str):
        return f"event #{seq} (id {record['id']})"
    return f"event #{seq}"


def verify_rows(
    rows: Iterable[Row],
    keys: KeyRing,
    anchor: Anchor | None,
    *,
    require_anchor: bool = True,
    checkpoints: Sequence[Checkpoint] = (),
) -> VerifyResult:
    """Walk rows in storage order; the first problem found is reported.

    ``checkpoints`` (already signature-checked) pin ``seq -> mac`` like the
    anchor does, but with a key the HMAC key holder does not have.
    """
    pins: dict[int, str] = {}
    for cp in checkpoints:
        pins[cp.seq] = cp.mac
    expected, last_mac, count = 1, GENESIS, 0
    first_mac: str | None = None
    last_line = ""
    anchored_mac: str | None = None
    stream = iter(rows)
    for position, (line, columns) in enumerate(stream, 1):
        parts = split_line(line)
        try:
            record: Any = json.loads(line)
        except ValueError:
            record = None
        if parts is None or not isinstance(record, dict) or not isinstance(record.get("seq"), int):
            where = f"event #{columns[0]}" if columns else f"record {position}"
            return VerifyResult(False, count, f"{where} altered: not a chained record", expected)
        body, mac = parts
        seq = int(record["seq"])
        if columns is not None and columns[0] != seq:
            return VerifyResult(
                False,
                count,
                f"event #{columns[0]} out of order: its row holds signed event #{seq} (swapped/renumbered)",
                columns[0],
            )
        if line == last_line:
            continue  # an exact replay of the previous line (a retried batch in a JSONL file)
        if seq < expected:
            return VerifyResult(
                False, count, f"{_label(seq, record)} out of order: found after #{expected - 1}", seq
            )
        if seq > expected:
            if _appears_later(stream, expected):
                return VerifyResult(
                    False,
                    count,
                    f"event #{expected} out of order: found after #{seq} (events reordered)",
                    expected,
                )
            gap = f"#{expected}" if seq == expected + 1 else f"#{expected}..#{seq - 1}"
            return VerifyResult(False, count, f"event {gap} missing (store continues at #{seq})", expected)
        computed = keys.mac(body.encode(), str(record.get("key_id")))
        if computed is None:
            return VerifyResult(
                False,
                count,
                f"{_label(seq, record)} signed with unknown key id {record.get('key_id')!r}",
                seq,
            )
        if not hmac.compare_digest(computed, mac) or record.get("mac") != mac:
            return VerifyResult(
                False, count, f"{_label(seq, record)} altered: MAC does not match its content", seq
            )
        if record.get("prev") != last_mac:
            return VerifyResult(
                False,
                count,
                f"{_label(seq, record)} does not follow #{seq - 1}: chain broken "
                f"(#{seq - 1} replaced, removed or events reordered)",
                seq,
            )
        if columns is not None:
            implied = (seq, *column_values(record), *(record.get(c) for c in CHAIN_COLUMNS))
            for name, have, want in zip(("seq", *COLUMNS, *CHAIN_COLUMNS), columns, implied, strict=True):
                if have != want:
                    return VerifyResult(
                        False,
                        count,
                        f"{_label(seq, record)} altered: column {name!r} differs from the signed record",
                        seq,
                    )
        if seq == 1:
            first_mac = mac
        if anchor is not None and seq == anchor.seq:
            anchored_mac = mac
        if pins.get(seq, mac) != mac:
            return VerifyResult(
                False, count, f"{_label(seq, record)} does not match a signed checkpoint", seq
            )
        last_mac, last_line = mac, line
        expected = seq + 1
        count += 1
    last = expected - 1
    if pins and max(pins) > last:
        return VerifyResult(
            False,
            count,
            f"newest events missing: a signed checkpoint records #{max(pins)}, store ends at #{last}",
            last + 1,
        )
    if checkpoints and first_mac is not None and any(cp.first != first_mac for cp in checkpoints):
        return VerifyResult(False, count, "a signed checkpoint belongs to a different audit chain", 1)
    if anchor is not None:
        if anchor.seq > last:
            return VerifyResult(
                False,
                count,
                f"newest events missing: the anchor records #{anchor.seq} but the store ends at #{last}",
                last + 1,
            )
        if first_mac is not None and anchor.first != first_mac:
            return VerifyResult(
                False, count, "the anchor belongs to a different audit chain (wrong --anchor?)", 1
            )
        if anchored_mac != anchor.mac:
            return VerifyResult(
                False, count, f"event #{anchor.seq} does not match the anchor (replaced)", anchor.seq
            )
    elif require_anchor and count:
        return VerifyResult(
            False,
            count,
            "no anchor: removal of the newest events cannot be ruled out (--no-anchor to skip)",
            None,
        )
    head = (last, last_mac, first_mac) if count and first_mac is not None else None
    return VerifyResult(True, count, f"ok: {count} events", head=head)


def stored_ids(path: Path, low: int) -> set[str]:
    """Event ids the store holds at seq >= ``low`` (a re-chained event only ever moves to a later seq)."""
    if path.suffix == ".jsonl":
        out: set[str] = set()
        for line, _ in jsonl_rows(path):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and isinstance(record.get("id"), str):
                out.add(record["id"])
        return out
    if not path.is_file():
        return set()
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            rows = conn.execute("SELECT id FROM audit_events WHERE seq >= ?", (low,)).fetchall()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise StoreError(f"{path} is not a readable audit store: {exc}") from None
    return {str(r[0]) for r in rows}


def unstored_spill(spill: Spill, store: Path, keys: KeyRing) -> tuple[list[Any], list[Any], list[str]]:
    """``(spilled events the store lacks, spilled events it holds, lines failing their MAC check)``.

    The last also includes lines already set aside in the spill's ``.rejected`` file.
    """
    good, bad = spill.split(keys)
    held = stored_ids(store, min(int(r["seq"]) for r in good)) if good else set()
    missing = [r for r in good if r.get("id") not in held]
    present = [r for r in good if r.get("id") in held]
    return missing, present, [line_of(r) for r in bad] + spill.load_rejected()


def spill_problem(spill: Spill, store: Path, keys: KeyRing) -> str | None:
    """What ``verify`` reports about a spill file, or None when nothing waits there."""
    missing, _, rejected = unstored_spill(spill, store, keys)
    problems = []
    if missing:
        seqs = sorted({int(r["seq"]) for r in missing})
        problems.append(
            f"{len(missing)} acknowledged events are in the spill file {spill.path} but not in the store "
            f"(spilled as #{seqs[0]}..#{seqs[-1]}); inspect with `mcp-guard audit spill list`, "
            "write them with `mcp-guard audit spill replay`"
        )
    if rejected:
        problems.append(
            f"{len(rejected)} spilled lines failed their MAC check (altered?) and were not written: "
            f"{spill.rejected_path if spill.rejected_path.exists() else spill.path}; inspect, then remove"
        )
    return "; ".join(problems) or None


def _appears_later(rows: Iterator[Row], seq: int) -> bool:
    """Whether a missing seq shows up further on (the rest of the stream is consumed: we are failing)."""
    marker = f'"seq":{seq},'
    for line, _ in rows:
        if marker in line:
            try:
                if json.loads(line).get("seq") == seq:
                    return True
            except ValueError:
                continue
    return False


def sqlite_rows(path: Path) -> Iterator[Row]:
    if not path.is_file():
        raise StoreError(f"no audit store at {path}")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open {path}: {exc}") from None
    try:
        cols = ", ".join(("seq", *COLUMNS, *CHAIN_COLUMNS, "record"))
        try:
            cur = conn.execute(f"SELECT {cols} FROM audit_events ORDER BY seq")
            for row in cur:
                yield str(row[-1]), tuple(row[:-1])
        except sqlite3.Error as exc:
            raise StoreError(f"{path} is not a readable audit store: {exc}") from None
    finally:
        conn.close()


def jsonl_files(path: Path) -> list[Path]:
    """The file and its rotated siblings, oldest first."""
    older: list[Path] = []
    i = 1
    while rotated(path, i).exists():
        older.append(rotated(path, i))
        i += 1
    return [*reversed(older), *([path] if path.exists() else [])]


def jsonl_rows(path: Path) -> Iterator[Row]:
    files = jsonl_files(path)
    if not files:
        raise StoreError(f"no audit store at {path}")
    for file in files:
        try:
            with file.open("r", encoding="ascii", errors="replace", newline="\n") as fh:
                for line in fh:
                    if line.strip():
                        yield line.rstrip("\n"), None
        except OSError as exc:
            raise StoreError(f"cannot read {file}: {exc.strerror}") from None


def store_rows(path: Path) -> Iterator[Row]:
    """Rows of a SQLite (default) or JSONL (``*.jsonl``) store."""
    return jsonl_rows(path) if path.suffix == ".jsonl" else sqlite_rows(path)
