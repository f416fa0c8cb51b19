"""The HMAC hash chain and the anchor that pins its newest link outside the audit store.

Each record gets ``seq`` (1, 2, ...), ``prev`` (the previous record's MAC,
64 zeros for the first), ``key_id`` and ``mac``. The MAC covers the exact
bytes of the record's compact JSON *without* ``mac``; the stored line is that
JSON with ``,"mac":"<hex>"`` appended before the closing brace. A verifier
strips that suffix and recomputes, so it never needs a canonical re-encoding
(and a verifier in another language is a few lines).

The anchor file holds the newest committed ``seq``/``mac`` plus the chain's
first MAC, itself authenticated with the active key. It is written after each
committed batch, so deleting the newest events (or the whole store) shows up
as "anchor is ahead of the store".
"""

from __future__ import annotations

import contextlib
import fcntl
import hmac
import json
import os
import re
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .canonical import canonical, encode_string
from .keys import KeyRing

GENESIS = "0" * 64
_MAC_SUFFIX = re.compile(r',"mac":"([0-9a-f]{64})"\}$')
_CHAIN_SUFFIX = re.compile(
    r',"seq":\d+,"prev":"[0-9a-f]{64}","key_id":"(?:[^"\\]|\\.)*","mac":"[0-9a-f]{64}"\}$'
)
_CHAIN_FIELDS = ("seq", "prev", "key_id", "mac")


class ChainedRecord(dict[str, Any]):
    """A chained record (plain dict for any sink) that also carries its serialized ``line``."""

    __slots__ = ("line",)
    line: str


class Chainer:
    """Assigns seq/prev/key_id/mac; not thread-safe (the audit log holds a lock around it)."""

    def __init__(self, ring: KeyRing, seq: int = 0, prev: str = GENESIS, first: str | None = None) -> None:
        self.ring = ring
        self.seq = seq
        self.prev = prev
        self.first = first
        self._keyed: tuple[object, Any, str] | None = None

    def _signer(self) -> tuple[Any, str]:
        """HMAC state already keyed with the active key (copied per record) and its JSON key id."""
        active = self.ring.active
        keyed = self._keyed
        if keyed is None or keyed[0] is not active:
            keyed = (active, hmac.new(active.secret, digestmod="sha256"), encode_string(active.key_id))
            self._keyed = keyed
        return keyed[1], keyed[2]

    def link(self, record: dict[str, Any], text: str | None = None) -> ChainedRecord:
        """Chain ``record`` (JSON-safe); the state only advances once the record is fully built.

        ``text``, when given, must be ``canonical(record)`` (the fast path already encoded it);
        the chain fields are then appended to it instead of encoding the record again.
        """
        signer, key_json = self._signer()
        seq = self.seq + 1
        record["seq"] = seq
        record["prev"] = self.prev
        record["key_id"] = self.ring.active.key_id
        if text is None:
            body = canonical(record)
        else:
            body = f'{text[:-1]},"seq":{seq},"prev":{encode_string(self.prev)},"key_id":{key_json}}}'
        state = signer.copy()
        state.update(body.encode())
        mac = state.hexdigest()
        out = record if type(record) is ChainedRecord else ChainedRecord(record)
        out["mac"] = mac
        out.line = f'{body[:-1]},"mac":"{mac}"}}'
        self.seq = seq
        self.prev = mac
        if self.first is None:
            self.first = mac
        return out


def split_line(line: str) -> tuple[str, str] | None:
    """``(authenticated body, mac)`` of a stored line, or None when it does not end in a MAC."""
    m = _MAC_SUFFIX.search(line)
    if m is None:
        return None
    return line[: m.start()] + "}", m.group(1)


def line_of(record: Any) -> str:
    """The stored form of a record handed to a sink (recomputed for plain dicts)."""
    line = getattr(record, "line", None)
    if isinstance(line, str):
        return line
    body = {k: v for k, v in record.items() if k != "mac"}
    return f'{canonical(body)[:-1]},"mac":"{record["mac"]}"}}'


def line_mac_ok(record: Any, ring: KeyRing) -> bool:
    """Whether a stored line (e.g. read back from the spill file) carries a valid MAC for its content."""
    parts = split_line(line_of(record))
    if parts is None:
        return False
    body, mac = parts
    computed = ring.mac(body.encode(), str(record.get("key_id")))
    return computed is not None and hmac.compare_digest(computed, mac) and record.get("mac") == mac


def relink(ring: KeyRing, seq: int, prev: str, records: Sequence[Any]) -> list[ChainedRecord]:
    """Re-chain records after ``(seq, prev)``: same content bytes, new seq/prev/key_id/mac.

    Used when another writer appended to the shared store since these records were linked
    (a batch written under the store's write lock, or a spill file replayed later).
    """
    chainer = Chainer(ring, seq, prev)
    out: list[ChainedRecord] = []
    for record in records:
        line = line_of(record)
        m = _CHAIN_SUFFIX.search(line)
        fresh = {k: v for k, v in record.items() if k not in _CHAIN_FIELDS}
        out.append(chainer.link(fresh, line[: m.start()] + "}" if m is not None else None))
    return out


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock (``flock``) on ``path``, created 0600; serializes processes."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


@dataclass(frozen=True, slots=True)
class Anchor:
    seq: int
    mac: str
    first: str
    time: float
    key_id: str


class AnchorError(Exception):
    """The anchor file exists but is unreadable or its MAC does not match."""


def write_anchor(path: Path, ring: KeyRing, seq: int, mac: str, first: str) -> None:
    """Atomically replace the anchor (temp file + rename; a crash leaves the old or the new one)."""
    body = {"v": 1, "seq": seq, "mac": mac, "first": first, "time": time.time(), "key_id": ring.active.key_id}
    text = canonical(body)
    tag = ring.mac(b"mcp-guard/anchor\0" + text.encode())
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(f'{text[:-1]},"anchor_mac":"{tag}"}}\n')
    os.replace(tmp, path)


def advance_anchor(path: Path, ring: KeyRing, seq: int, mac: str, first: str) -> None:
    """Move the anchor forward to ``seq``, never back: several writers may share one anchor.

    Under a lock file beside the anchor, an existing valid anchor of the same chain that already
    records ``seq`` or later is kept, so a writer that commits first but anchors last cannot pull
    the anchor behind another writer's newer events.
    """
    with file_lock(path.with_name(f".{path.name}.lock")):
        try:
            current = read_anchor(path, ring)
        except AnchorError:
            current = None
        if current is not None and current.first == first and current.seq >= seq:
            return
        write_anchor(path, ring, seq, mac, first)


def read_anchor(path: Path, ring: KeyRing) -> Anchor | None:
    """The anchor, None when there is none yet; AnchorError when it was tampered with."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise AnchorError(f"cannot read anchor {path}: {exc.strerror}") from None
    m = re.search(r',"anchor_mac":"([0-9a-f]{64})"\}$', text)
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if m is None or not isinstance(data, dict):
        raise AnchorError(f"anchor {path} is malformed")
    body = text[: m.start()] + "}"
    key_id = data.get("key_id")
    expected = ring.mac(b"mcp-guard/anchor\0" + body.encode(), key_id if isinstance(key_id, str) else "")
    if expected is None:
        raise AnchorError(f"anchor {path} is signed with unknown key id {key_id!r}")
    if expected != m.group(1):
        raise AnchorError(f"anchor {path} was altered (MAC mismatch)")
    try:
        return Anchor(
            int(data["seq"]), str(data["mac"]), str(data["first"]), float(data["time"]), str(key_id)
        )
    except (KeyError, TypeError, ValueError):
        raise AnchorError(f"anchor {path} is malformed") from None


def fit_after(
    seq: int,
    mac: str,
    records: Sequence[Mapping[str, Any]],
    relink: Callable[[int, str, Sequence[Mapping[str, Any]]], Sequence[Mapping[str, Any]]],
    *,
    replay: bool = False,
    held: Collection[str] = (),
) -> Sequence[Mapping[str, Any]]:
    """What a store whose head is ``(seq, mac)`` should append of a batch, chained after that head.

    Every sink that can be shared by several writers decides the same way: a replayed batch
    (spilled or held records) drops the events whose id the store already ``held`` and is always
    re-chained, so replaying twice never duplicates; a fresh batch is re-chained only when another
    writer appended since it was linked. A fresh batch whose first seq lies beyond the head (the
    chain continues after an anchor that recorded removed events) is kept as it is, gap visible.
    """
    if not records:
        return records
    if replay:
        todo = [r for r in records if not (isinstance(r.get("id"), str) and r["id"] in held)]
        return relink(seq, mac, todo) if todo else todo
    start = int(records[0]["seq"]) - 1
    if start < seq or (start == seq and records[0]["prev"] != mac):
        return relink(seq, mac, records)
    return records
