"""The audit pipeline: enqueue on the request path, redact + chain + write in a background thread.

``record`` only appends the (immutable) event to a bounded deque; the
flusher thread wakes every ``flush_interval`` (or when a batch is ready),
serializes with ``AuditEvent.as_dict()``, redacts, chains and writes one batch
per sink transaction, then moves the anchor. Events a cheap whole-event
prefilter proves clean are encoded once and stored without the per-string
redaction walk (``fastrecord.fast_record``); the stored bytes are the same. When a sink fails the chained
batch is appended to the spill file (fsync) and retried every
``retry_interval``; newer batches queue behind it so order is kept. Nothing is
dropped silently: in ``continue`` mode a full buffer drops with a counter that
is itself written to the trail as a ``lifecycle`` event.

Several processes may share one SQLite store: a sink with ``write_linked``
(SQLite) re-chains a batch after the head it finds under its write lock, and
the pipeline then continues from that head, so the chain stays linear across
writers. Spilled events are re-chained on replay the same way; spilled lines
whose MAC does not verify are set aside (``NAME.rejected``), never re-signed.

Batches are written by the flusher thread itself, one after the other. A second writer thread
does not overlap with chaining in one process: SQLite releases the interpreter lock for each
statement it runs, and getting it back while the flusher computes waits out the interpreter's
switch interval (5 ms), so a batch written beside a busy flusher took 6-30 times longer than alone
(``docs/benchmarks.md``). While the flusher waits on SQLite the lock is free for request handling.

``record_sync`` puts a ticket in the same queue and commits under the writer
lock from a worker thread, so concurrent sync callers share one transaction
(group commit) and the event loop never blocks.
"""

from __future__ import annotations

import atexit
import functools
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import anyio.to_thread

from ..errors import AuditUnavailable
from ..model import AuditEvent
from ..protocols import AuditSink
from .chain import GENESIS, AnchorError, ChainedRecord, Chainer, advance_anchor, read_anchor, relink
from .fastrecord import fast_record
from .keys import KeyRing
from .redact import redact_record
from .spill import Spill

log = logging.getLogger("mcp_guard.audit.pipeline")


class _Ticket:
    """A ``record_sync`` event; ``done``/``error`` are set by whoever committed it, under the lock."""

    __slots__ = ("done", "error", "event")

    def __init__(self, event: AuditEvent) -> None:
        self.event = event
        self.done = False
        self.error: Exception | None = None


def _safe(event: AuditEvent, name: str) -> str | None:
    """A scalar field as a JSON-safe string, or None if even that fails."""
    try:
        value = getattr(event, name)
        out = redact_record({"v": value if type(value) is str else str(value)}, (), False)["v"]
        return out if isinstance(out, str) else None
    except Exception:
        return None


def _close_weak(ref: weakref.ref[AuditLog]) -> None:
    audit = ref()
    if audit is not None:
        audit.close()


class AuditLog:
    """The built-in :class:`~mcp_guard.protocols.Auditor`."""

    def __init__(
        self,
        sink: AuditSink,
        keys: KeyRing,
        *,
        anchor_path: Path | None = None,
        spill_path: Path | None = None,
        on_unavailable: Literal["deny", "continue"] = "deny",
        sync: bool = False,
        buffer_size: int = 100_000,
        batch_size: int = 1000,
        flush_interval: float = 0.05,
        retry_interval: float = 1.0,
        redact_fields: Sequence[str] = (),
        shared_detectors: bool = True,
    ) -> None:
        self._sink = sink
        self._keys = keys
        self._anchor_path = anchor_path
        self._spill = Spill(spill_path) if spill_path is not None else None
        self._deny = on_unavailable == "deny"
        self._sync = sync
        self._cap = buffer_size
        self._batch = batch_size
        self._interval = flush_interval
        self._retry_interval = retry_interval
        self._extra_fields = tuple(redact_fields)
        self._shared_detectors = shared_detectors
        self._queue: deque[AuditEvent | _Ticket] = deque()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._stopping = False
        self._failing = False
        self._next_retry = 0.0
        self._held: list[ChainedRecord] = []
        self._spilled = 0
        self._dropped = 0
        self._dropped_reported = 0
        self.written = 0
        self.last_error: str | None = None
        #: Skip the per-string redaction walk for events the prefilter proves clean (same output).
        self.fast_path = True
        #: Called in the flusher thread with each batch once it is stored (the live anomaly
        #: monitor); must return at once and never raise into the pipeline.
        self.observers: list[Callable[[Sequence[Mapping[str, Any]]], None]] = []
        self._linking = callable(getattr(sink, "write_linked", None))
        self._chain = self._resume()
        if self._spill is not None and self._spill.exists():
            self._spilled = len(self._spill.load())  # replayed by the first flush
        self._atexit = functools.partial(_close_weak, weakref.ref(self))
        atexit.register(self._atexit)
        self._thread = threading.Thread(target=self._run, name="mcp-guard-audit", daemon=True)
        self._thread.start()

    # -- startup -------------------------------------------------------------------------------------

    def _resume(self) -> Chainer:
        """Continue the chain from the furthest known link: store, spill file or anchor.

        The anchor is read before the store (it only ever lags behind a store that other writers
        keep appending to). A linking sink re-chains spilled events on replay, so only the store
        and the anchor count there.
        """
        anchor = None
        if self._anchor_path is not None:
            try:
                anchor = read_anchor(self._anchor_path, self._keys)
            except AnchorError as exc:
                log.error("audit anchor unusable, continuing from the store: %s", exc)
        seq, prev, first = 0, GENESIS, None
        head = getattr(self._sink, "head", None)
        found = head() if callable(head) else None
        if found is not None:
            seq, prev, first = found
        if self._spill is not None and not self._linking:
            spilled = self._spill.load()
            if spilled and int(spilled[-1]["seq"]) > seq:
                seq, prev = int(spilled[-1]["seq"]), str(spilled[-1]["mac"])
                if spilled[0]["seq"] == 1:
                    first = str(spilled[0]["mac"])
        if anchor is not None:
            if anchor.seq > seq:
                # The store lost its newest events; keep the gap visible instead of reusing seqs.
                log.error("audit store ends at #%d but the anchor records #%d", seq, anchor.seq)
                seq, prev = anchor.seq, anchor.mac
            first = first or anchor.first
        return Chainer(self._keys, seq, prev, first)

    # -- Auditor protocol ------------------------------------------------------------------------------

    @property
    def synchronous(self) -> bool:
        return self._sync

    def check_available(self) -> None:
        """Raise AuditUnavailable when an allowed request could not be audited right now (deny mode)."""
        if self._closed:
            raise AuditUnavailable("audit log is closed")
        if self._deny and (self._failing or len(self._queue) >= self._cap):
            raise AuditUnavailable(
                f"audit sinks are failing: {self.last_error}" if self._failing else "audit buffer full"
            )

    def record(self, event: AuditEvent) -> None:
        """Enqueue only; raises AuditUnavailable (deny mode) when the event cannot be taken.

        While sinks fail, refusals (decision ``deny``/``error``) are still accepted - they go to
        the spill file - so an outage does not also hide who was turned away.
        """
        if self._closed:
            raise AuditUnavailable("audit log is closed")
        if self._failing and self._deny and event.decision == "allow":
            raise AuditUnavailable(f"audit sinks are failing: {self.last_error}")
        queue = self._queue
        if len(queue) >= self._cap:
            if self._deny:
                raise AuditUnavailable("audit buffer full")
            self._dropped += 1
            return
        queue.append(event)
        if len(queue) >= self._batch:
            self._wake.set()

    async def record_sync(self, event: AuditEvent) -> None:
        """Return only once the event is committed to the sinks (or, in continue mode, fsynced to spill)."""
        if self._closed:
            raise AuditUnavailable("audit log is closed")
        if self._failing and self._deny and event.decision == "allow":
            raise AuditUnavailable(f"audit sinks are failing: {self.last_error}")
        if len(self._queue) >= self._cap:
            raise AuditUnavailable("audit buffer full")
        ticket = _Ticket(event)
        self._queue.append(ticket)
        await anyio.to_thread.run_sync(self._commit, ticket)
        if ticket.error is not None:
            raise ticket.error

    def _commit(self, ticket: _Ticket) -> None:
        with self._lock:
            if not ticket.done:
                self._pump_locked(force_retry=False)
        if not ticket.done:  # pragma: no cover - the drain always reaches it
            ticket.error = AuditUnavailable("audit event was not committed")

    def flush(self) -> bool:
        """Write everything queued now; True when nothing is left waiting for a failing sink."""
        with self._lock:
            self._pump_locked(force_retry=True)
            return not self._backlog()

    def close(self) -> None:
        """Flush everything, stop the flusher, close the sinks; idempotent and safe from atexit."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._stopping = True
        self._wake.set()
        if self._thread is not threading.current_thread():
            self._thread.join()
        with self._lock:
            self._pump_locked(force_retry=True)
            if self._backlog():
                log.error(
                    "audit sinks still failing at shutdown; %d events kept in %s for the next start",
                    len(self._held) + self._spilled,
                    self._spill.path if self._spill else "memory (LOST: no spill file)",
                )
            try:
                self._sink.close()
            except Exception:
                log.exception("closing audit sink failed")
        atexit.unregister(self._atexit)

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self.close)

    def stats(self) -> dict[str, Any]:
        return {
            "queued": len(self._queue),
            "written": self.written,
            "spilled": self._spilled,
            "held": len(self._held),
            "dropped": self._dropped,
            "failing": self._failing,
            "seq": self._chain.seq,
        }

    # -- flusher -------------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(self._interval)
            self._wake.clear()
            try:
                with self._lock:
                    self._pump_locked(force_retry=False)
            except Exception:  # pragma: no cover - _pump_locked contains its own failures
                log.exception("audit flusher error")

    def _backlog(self) -> bool:
        return bool(self._held) or self._spilled > 0

    def _pump_locked(self, force_retry: bool) -> None:
        if self._backlog() and (force_retry or time.monotonic() >= self._next_retry):
            self._recover_locked()
        if self._dropped != self._dropped_reported:
            lost = self._dropped - self._dropped_reported
            self._dropped_reported = self._dropped
            log.error("audit buffer full: %d events dropped (continue mode)", lost)
            self._queue.appendleft(
                AuditEvent(
                    method="audit/dropped",
                    decision="error",
                    event="lifecycle",
                    reasons=(f"{lost} audit events dropped: buffer full in continue mode",),
                )
            )
        queue = self._queue
        # With the spill file failing too, stop taking events out of the bounded queue: memory stays
        # bounded and record() refuses (deny) or counts drops (continue) instead.
        while queue and len(self._held) < self._cap:
            n = min(len(queue), self._batch)
            items = [queue.popleft() for _ in range(n)]
            tickets = [i for i in items if isinstance(i, _Ticket)]
            records = [self._link(i.event if isinstance(i, _Ticket) else i) for i in items]
            durable, error = self._emit_locked(records)
            self._done(tickets, durable, error)

    def _done(self, tickets: list[_Ticket], durable: bool, error: str | None) -> None:
        for t in tickets:
            t.done = True
            # Spilled is durable, but in deny mode an allowed request must not proceed on it.
            if not durable or (error is not None and self._deny and t.event.decision == "allow"):
                t.error = AuditUnavailable(f"audit event not committed: {error}")

    def _link(self, event: AuditEvent) -> ChainedRecord:
        fields = event.redact_fields + self._extra_fields if self._extra_fields else event.redact_fields
        try:
            fast = fast_record(event, fields) if self.fast_path else None
            if fast is not None:
                return self._chain.link(*fast)
            return self._chain.link(redact_record(event.as_dict(), fields, self._shared_detectors))
        except Exception as exc:
            # Keep the fact of the event, never its unredacted content.
            log.exception("audit event could not be serialized")
            fallback = {
                "id": _safe(event, "id"),
                "time": time.time(),
                "event": _safe(event, "event"),
                "method": _safe(event, "method"),
                "decision": _safe(event, "decision"),
                "arguments": "[REDACTED]",
                "reasons": [f"audit serialization failed: {type(exc).__name__}"],
            }
            return self._chain.link(fallback)

    def _emit_locked(self, records: list[ChainedRecord]) -> tuple[bool, str | None]:
        """Write or spill; returns (durable somewhere, error text or None)."""
        if self._backlog():
            return self._spill_locked(records), self.last_error or "earlier events still pending"
        try:
            self._write(records, replay=False)
        except Exception as exc:
            self._failed(exc)
            return self._spill_locked(records), self.last_error
        self._anchor_locked()
        return True, None

    def _write(self, records: list[ChainedRecord], replay: bool) -> None:
        """One sink transaction; a linking sink may re-chain the batch, the chain follows its head."""
        if not self._linking:
            self._sink.write(records)
            self.written += len(records)
            self._observe(records)
            return
        written, head = self._sink.write_linked(records, self._relink, replay=replay)  # type: ignore[attr-defined]
        self.written += len(written)
        if head is not None:
            self._chain.seq, self._chain.prev = head[0], head[1]
            self._chain.first = head[2] or self._chain.first  # a sink may not know the first link
        self._observe(written)

    def _observe(self, records: Sequence[Mapping[str, Any]]) -> None:
        for observer in self.observers:
            try:
                observer(records)
            except Exception:  # an observer never costs an audit event
                log.exception("audit observer failed")

    def _relink(self, seq: int, prev: str, records: Sequence[Any]) -> list[ChainedRecord]:
        return relink(self._keys, seq, prev, records)

    def _failed(self, exc: Exception) -> None:
        self.last_error = f"{type(exc).__name__}: {exc}"
        if not self._failing:
            log.error("audit sink failed, spilling and retrying: %s", self.last_error)
        self._failing = True
        self._next_retry = time.monotonic() + self._retry_interval

    def _spill_locked(self, records: list[ChainedRecord]) -> bool:
        if self._spill is not None and not self._held:
            try:
                self._spill.append(records)
                self._spilled += len(records)
                return True
            except OSError as exc:
                log.error("audit spill file failed, holding events in memory: %s", exc)
        self._held.extend(records)
        return False

    def _recover_locked(self) -> None:
        spill = self._spill
        if spill is None or not self._spilled:
            if not self._deliver(self._held):
                return
        else:
            with spill.lock():  # another process may be replaying or appending to the same file
                good, bad = spill.split(self._keys)
                if bad:
                    spill.reject(bad)
                    spill.rewrite(good)
                    log.error(
                        "audit spill %s: %d spilled events failed their MAC check (altered?) and were "
                        "NOT written; kept in %s (inspect with `mcp-guard audit spill list`)",
                        spill.path,
                        len(bad),
                        spill.rejected_path,
                    )
                if not self._deliver(good + self._held):
                    return
                spill.clear()
        pending = self._spilled + len(self._held)
        self._held.clear()
        self._spilled = 0
        if self._failing:
            log.warning("audit sink recovered; %d pending events delivered", pending)
        self._failing = False
        self.last_error = None
        self._anchor_locked()

    def _deliver(self, pending: list[ChainedRecord]) -> bool:
        try:
            for i in range(0, len(pending), self._batch):
                self._write(pending[i : i + self._batch], replay=True)
        except Exception as exc:
            self._failed(exc)
            if self._spill is not None and self._spilled:
                log.error(
                    "audit spill %s cannot be replayed yet (%s); allowed calls are refused until it is "
                    "(see `mcp-guard audit spill list|replay`)",
                    self._spill.path,
                    self.last_error,
                )
            return False
        return True

    def _anchor_locked(self) -> None:
        """Move the anchor to the chain's head (what the last write committed)."""
        chain = self._chain
        if self._anchor_path is None or chain.first is None or self._backlog():
            return
        try:
            advance_anchor(self._anchor_path, self._keys, chain.seq, chain.prev, chain.first)
        except OSError as exc:
            log.error("audit anchor not updated: %s", exc)
