"""The live monitor of ``mcp-guard serve``: the offline detectors, fed by the audit pipeline.

The pipeline's flusher thread hands each stored batch to :meth:`Monitor.observe`, which only
appends to a bounded queue (nothing on the request path, never blocking the flusher). A
background task drains the queue every ``interval`` seconds, runs the detectors in a worker
thread, and for each finding: applies the action (``lock``), records an ``anomaly`` audit event,
and hands the finding to every alert sink concurrently (a slow webhook delays no other sink and
no other finding). At start the monitor reads ``history_days`` of the trail so baselines are
known from the first request; it reports nothing about that history.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ...model import AuditEvent
from ...protocols import AlertSink, Auditor
from .detect import Detector, Finding
from .events import from_record, read_events
from .settings import AnomalySettings

log = logging.getLogger("mcp_guard.anomalies")

#: Deliveries one sink works on at once.
WORKERS = 4

#: ``lock(finding)``: lock what the finding names; returns what was locked (empty: nothing).
Lock = Callable[[Finding], Awaitable[Sequence[str]]]


class Monitor:
    """Detect anomalies in the records an :class:`~mcp_guard.audit.AuditLog` stores."""

    def __init__(
        self,
        settings: AnomalySettings,
        *,
        sinks: Sequence[AlertSink] = (),
        auditor: Auditor | None = None,
        lock: Lock | None = None,
        history: Path | None = None,
        interval: float = 0.25,
        capacity: int = 100_000,
        max_pending: int = 1000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.detector = Detector(settings.thresholds())
        self.sinks = list(sinks)
        self.auditor = auditor
        self.lock = lock
        self.history = history
        self.interval = interval
        self.capacity = capacity
        #: Alerts a sink may have queued or in delivery; beyond, it misses them (counted, logged):
        #: a dead webhook under a flood of findings must not pile up alerts and retries.
        self.max_pending = max_pending
        self._pending = [0] * len(self.sinks)
        self._outboxes: list[MemoryObjectSendStream[dict[str, Any]]] | None = None
        #: Alerts a sink missed because it had ``max_pending`` in delivery already.
        self.undelivered = 0
        self.clock = clock
        self._queue: deque[Mapping[str, Any]] = deque()
        self._since = clock()
        #: Records not looked at because the queue was full (logged when it happens).
        self.dropped = 0
        #: Every finding so far, as sent to the sinks (newest last, at most 1000).
        self.alerts: deque[dict[str, Any]] = deque(maxlen=1000)

    def observe(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Called by the audit flusher with each stored batch: enqueue only."""
        if len(self._queue) + len(records) > self.capacity:
            self.dropped += len(records)
            return
        self._queue.extend(records)

    async def run(self) -> None:
        """Learn from the stored history, then watch until cancelled."""
        if self.history is not None and self.settings.history_days > 0:
            try:
                await anyio.to_thread.run_sync(self._prime)
            except Exception as exc:  # no history is a weaker monitor, not a stopped one
                log.warning("anomaly monitor: could not read the trail's history: %s", exc)
        reported = missed = 0
        async with anyio.create_task_group() as tg:
            for sink in self.sinks:
                tg.start_soon(self._check, sink)
            while True:
                await anyio.sleep(self.interval)
                if self.dropped != reported:
                    log.error(
                        "anomaly monitor: %d audit records skipped (queue full)", self.dropped - reported
                    )
                    reported = self.dropped
                if self.undelivered != missed:
                    log.error(
                        "anomaly monitor: %d alerts not sent (a sink had %d in delivery already)",
                        self.undelivered - missed,
                        self.max_pending,
                    )
                    missed = self.undelivered
                if not self._queue:
                    continue
                batch = [self._queue.popleft() for _ in range(len(self._queue))]
                try:
                    for finding in await anyio.to_thread.run_sync(self._detect, batch):
                        await self.handle(finding, tg)
                except Exception:  # one bad batch must not end the watch
                    log.exception("anomaly monitor: a batch of %d records failed", len(batch))

    @staticmethod
    async def _check(sink: AlertSink) -> None:
        """Say at start, not at the first alert, that a sink's destination will be refused."""
        check = getattr(sink, "check", None)
        if check is None:
            return
        try:
            with anyio.fail_after(30):
                await check()
        except Exception as exc:
            where = getattr(sink, "url", type(sink).__name__)
            log.error("anomaly alerts to %s will not be delivered: %s", where, exc)

    def _prime(self) -> None:
        assert self.history is not None
        start = self._since - self.settings.history_days * 86400
        for event in read_events(self.history, until=self._since, since=start):
            self.detector.feed(event, report=False)

    def _detect(self, records: list[Mapping[str, Any]]) -> list[Finding]:
        events = [e for e in map(from_record, records) if e is not None and e.time >= self._since]
        events.sort(key=lambda e: e.time)
        found: list[Finding] = []
        for event in events:
            found.extend(self.detector.feed(event))
        if events:
            self.detector.prune(events[-1].time)
        return found

    async def handle(self, finding: Finding, tg: anyio.abc.TaskGroup) -> None:
        action = "none"
        if self.lock is not None and finding.kind in self.settings.lock_kinds:
            try:
                if await self.lock(finding):
                    action = "lock"
            except Exception as exc:
                log.error("anomaly monitor: lock for %s failed: %s", finding.kind, exc)
        document = {**finding.as_dict(), "action": action}
        self.alerts.append(document)
        self._audit(finding, action)
        if self._outboxes is None:
            self._outboxes = []
            for index in range(len(self.sinks)):
                send, receive = anyio.create_memory_object_stream[dict[str, Any]](self.max_pending)
                self._outboxes.append(send)
                for _ in range(min(WORKERS, self.max_pending)):
                    tg.start_soon(self._deliver, index, receive.clone())
                receive.close()
        for index, outbox in enumerate(self._outboxes):
            if self._pending[index] >= self.max_pending:
                self.undelivered += 1
                continue
            self._pending[index] += 1
            outbox.send_nowait(document)
        await anyio.lowlevel.checkpoint()  # quick sinks keep up even with many findings at once

    @property
    def in_flight(self) -> int:
        """Alerts being delivered now, over all sinks."""
        return sum(self._pending)

    def _audit(self, f: Finding, action: str) -> None:
        if self.auditor is None:
            return
        try:
            self.auditor.record(
                AuditEvent(
                    method=f"anomaly/{f.kind}",
                    decision="deny" if action == "lock" else "allow",
                    event="anomaly",
                    principal=_who(f),
                    source_ip=f.source_ip,
                    server=f.server,
                    target=f.target,
                    reasons=(
                        f.why,
                        f"score {f.score:.2f}",
                        f"action {action}",
                        "events " + " ".join(f.events),
                    ),
                )
            )
        except Exception as exc:  # the alert still goes out
            log.error("anomaly monitor: could not audit a finding: %s", exc)

    async def _deliver(self, index: int, outbox: MemoryObjectReceiveStream[dict[str, Any]]) -> None:
        """One of a sink's workers: a few deliveries at once, so one slow alert holds up no other."""
        sink = self.sinks[index]
        async with outbox:
            async for document in outbox:
                try:
                    await sink.alert(document)
                except Exception as exc:
                    log.error("anomaly alert to %s failed: %s", type(sink).__name__, exc)
                finally:
                    self._pending[index] -= 1


def _who(f: Finding) -> dict[str, Any] | None:
    """The anomaly event's principal: the finding's subject, and who vouches for it when someone
    does (that person is the one held, and ``users unlock --vouched-by`` takes it)."""
    if not f.subject:
        return None
    if f.vouched_by is None:
        return {"subject": f.subject}
    return {"subject": f.subject, "vouched_by": f.vouched_by}


__all__ = ["Lock", "Monitor"]
