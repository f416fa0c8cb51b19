"""Tamper evidence: editing, deleting, swapping or truncating any stored event makes verify fail."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_guard.audit import AnchorError, read_anchor, store_rows, verify_rows
from mcp_guard.audit.chain import Anchor, Chainer, split_line, write_anchor
from mcp_guard.audit.keys import AuditKey, KeyRing, load_key_file, parse_key_file, rotate_key_file
from mcp_guard.audit.log import AuditLog
from mcp_guard.audit.sinks import JsonlSink, SQLiteSink
from mcp_guard.errors import ConfigError
from mcp_guard.model import AuditEvent

KEYS = KeyRing([AuditKey("test", b"k" * 32)])


def chain_lines(n: int, keys: KeyRing = KEYS) -> tuple[list[str], Anchor]:
    chainer = Chainer(keys)
    lines = []
    for i in range(n):
        rec = chainer.link({"id": f"e{i}", "time": 1000.0 + i, "method": "tools/call", "arguments": {"n": i}})
        lines.append(rec.line)
    assert chainer.first is not None
    return lines, Anchor(chainer.seq, chainer.prev, chainer.first, 0.0, "test")


def verify(lines: list[str], anchor: Anchor | None, keys: KeyRing = KEYS) -> Any:
    return verify_rows(((line, None) for line in lines), keys, anchor)


def edit(line: str, **changes: Any) -> str:
    """Change fields of a stored line but keep its MAC (what an attacker without the key can do)."""
    body, mac = split_line(line) or ("", "")
    record = json.loads(body)
    record.update(changes)
    return json.dumps(record, sort_keys=True, separators=(",", ":"))[:-1] + f',"mac":"{mac}"}}'


def test_untouched_chain_verifies() -> None:
    lines, anchor = chain_lines(5)
    assert verify(lines, anchor).message == "ok: 5 events"
    assert verify([], None).message == "ok: 0 events"


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(2, 25),
    op=st.sampled_from(["edit", "delete", "swap", "truncate", "renumber", "relink", "forge"]),
    data=st.data(),
)
def test_any_tampering_is_detected(n: int, op: str, data: st.DataObject) -> None:
    lines, anchor = chain_lines(n)
    i = data.draw(st.integers(0, n - 1))
    j = data.draw(st.integers(0, n - 1).filter(lambda x: x != i))
    if op == "edit":
        lines[i] = edit(lines[i], arguments={"n": -1})
    elif op == "delete":
        del lines[i]
    elif op == "swap":
        lines[i], lines[j] = lines[j], lines[i]
    elif op == "truncate":
        del lines[i + 1 if i + 1 < n else 1 :]
    elif op == "renumber":  # swap and fix up the seq numbers
        lines[i], lines[j] = edit(lines[j], seq=i + 1), edit(lines[i], seq=j + 1)
    elif op == "relink":
        lines[i] = edit(lines[i], prev="f" * 64)
    else:  # a record made up with a wrong key
        other = KeyRing([AuditKey("test", b"x" * 32)])
        fake = Chainer(other, i, json.loads(lines[i - 1])["mac"] if i else "0" * 64).link({"id": "forged"})
        lines[i] = fake.line
    result = verify(lines, anchor)
    assert not result.ok
    assert "#" in result.message or "anchor" in result.message


def test_messages_name_the_first_bad_event() -> None:
    lines, anchor = chain_lines(6)
    bad = list(lines)
    bad[2] = edit(bad[2], decision="allow")
    assert verify(bad, anchor).message == "event #3 (id e2) altered: MAC does not match its content"
    assert verify(lines[:2] + lines[3:], anchor).message == "event #3 missing (store continues at #4)"
    assert "out of order" in verify([lines[0], lines[2], lines[1], *lines[3:]], anchor).message
    assert verify(lines[:4], anchor).message.startswith("newest events missing: the anchor records #6")
    assert "no anchor" in verify(lines, None).message
    assert verify_rows(((x, None) for x in lines), KEYS, None, require_anchor=False).ok


def test_replayed_duplicate_line_is_tolerated_but_not_a_changed_one() -> None:
    lines, anchor = chain_lines(3)
    assert verify([lines[0], lines[1], lines[1], lines[2]], anchor).ok
    assert not verify([lines[0], lines[1], edit(lines[1], method="x"), lines[2]], anchor).ok


def test_key_rotation_keeps_old_events_verifiable(tmp_path: Path) -> None:
    key_file = tmp_path / "audit.key"
    old = load_key_file(key_file, create=True)
    assert key_file.stat().st_mode & 0o777 == 0o600
    first, _ = chain_lines(3, old)
    new_id = rotate_key_file(key_file)
    ring = load_key_file(key_file)
    assert ring.active.key_id == new_id and len(ring.ids) == 2
    chainer = Chainer(ring, 3, json.loads(first[-1])["mac"], json.loads(first[0])["mac"])
    more = [chainer.link({"id": f"n{i}"}).line for i in range(2)]
    anchor = Anchor(5, chainer.prev, json.loads(first[0])["mac"], 0, new_id)
    assert verify(first + more, anchor, ring).message == "ok: 5 events"
    only_new = KeyRing([AuditKey(new_id, b"z" * 32)])
    assert "unknown key id" in verify(first + more, anchor, only_new).message


def test_key_file_errors_name_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"k\.key:2: .*neither hex"):
        parse_key_file("# comment\nid nothex!\n", "k.key")
    with pytest.raises(ConfigError, match="shorter"):
        parse_key_file("abcd\n", "k.key")
    with pytest.raises(ConfigError, match="no audit key"):
        parse_key_file("# empty\n", "k.key")


def test_anchor_is_authenticated(tmp_path: Path) -> None:
    path = tmp_path / "audit.anchor"
    write_anchor(path, KEYS, 7, "a" * 64, "b" * 64)
    anchor = read_anchor(path, KEYS)
    assert anchor is not None and anchor.seq == 7
    path.write_text(path.read_text().replace('"seq":7', '"seq":9'))
    with pytest.raises(AnchorError, match="altered"):
        read_anchor(path, KEYS)
    assert read_anchor(tmp_path / "none", KEYS) is None


def sqlite_store(tmp_path: Path, n: int = 8) -> tuple[Path, KeyRing, Path]:
    keys = load_key_file(tmp_path / "audit.key", create=True)
    anchor = tmp_path / "audit.anchor"
    log = AuditLog(SQLiteSink(tmp_path / "audit.db"), keys, anchor_path=anchor, spill_path=tmp_path / "spill")
    for i in range(n):
        log.record(
            AuditEvent(method="tools/call", decision="allow", principal={"subject": f"u{i}"}, target="t")
        )
    log.close()
    return tmp_path / "audit.db", keys, anchor


def sql(db: Path, *statements: str) -> None:
    with sqlite3.connect(db) as conn:
        for s in statements:
            conn.execute(s)


@pytest.mark.parametrize(
    ("statements", "expected"),
    [
        (
            ["UPDATE audit_events SET record = replace(record, '\"u3\"', '\"mallory\"') WHERE seq = 4"],
            "#4 (id",
        ),
        (["UPDATE audit_events SET subject = 'mallory' WHERE seq = 5"], "column 'subject'"),
        (["UPDATE audit_events SET decision = 'deny' WHERE seq = 2"], "column 'decision'"),
        (["DELETE FROM audit_events WHERE seq = 3"], "event #3 missing"),
        (["DELETE FROM audit_events WHERE seq >= 6"], "newest events missing"),
        (["DELETE FROM audit_events"], "newest events missing"),
        (
            [
                "UPDATE audit_events SET seq = -2 WHERE seq = 2",
                "UPDATE audit_events SET seq = 2 WHERE seq = 3",
                "UPDATE audit_events SET seq = 3 WHERE seq = -2",
            ],
            "out of order",
        ),
        (
            [
                "CREATE TEMP TABLE t AS SELECT * FROM audit_events WHERE seq IN (4, 5)",
                "UPDATE audit_events SET record = (SELECT record FROM t WHERE seq = 5) WHERE seq = 4",
            ],
            "#4 out of order",
        ),
    ],
)
def test_sqlite_tampering_fails_verify(tmp_path: Path, statements: list[str], expected: str) -> None:
    db, keys, anchor_path = sqlite_store(tmp_path)
    assert verify_rows(store_rows(db), keys, read_anchor(anchor_path, keys)).message == "ok: 8 events"
    sql(db, *statements)
    result = verify_rows(store_rows(db), keys, read_anchor(anchor_path, keys))
    assert not result.ok and expected in result.message, result.message


def test_jsonl_store_verifies_across_rotation_and_detects_swaps(tmp_path: Path) -> None:
    keys = load_key_file(tmp_path / "audit.key", create=True)
    path = tmp_path / "audit.jsonl"
    log = AuditLog(JsonlSink(path, max_bytes=2000, keep=0), keys, anchor_path=tmp_path / "a", spill_path=None)
    for i in range(30):
        log.record(AuditEvent(method="tools/call", decision="allow", arguments={"i": i}))
        if i % 7 == 0:
            log.flush()
    log.close()
    assert (tmp_path / "audit.jsonl.2").exists()
    anchor = read_anchor(tmp_path / "a", keys)
    assert verify_rows(store_rows(path), keys, anchor).message == "ok: 30 events"
    victim = next(p for p in sorted(tmp_path.glob("audit.jsonl*")) if len(p.read_text().splitlines()) >= 2)
    lines = victim.read_text().splitlines()
    lines[0], lines[1] = lines[1], lines[0]
    victim.write_text("\n".join(lines) + "\n")
    result = verify_rows(store_rows(path), keys, anchor)
    assert not result.ok and "out of order" in result.message
