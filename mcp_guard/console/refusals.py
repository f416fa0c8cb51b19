"""Refusals of unknown callers on record without letting them flood the trail: counted, not dropped.

Every refusal of someone the console does not know (a wrong key, a form without
its token, an unknown page) is an audit event, so anyone who can reach
``/admin`` could write to the trail as fast as they can send requests. Per
source address and per :attr:`RefusalGate.window` seconds, the first
:attr:`~RefusalGate.burst` refusals are recorded one by one; the rest are only
counted, and one ``console/refusals`` event per address and window then says how
many there were and when, so the total is never lost. All addresses together
get :attr:`~RefusalGate.overall` events one by one per window, so many addresses
cannot flood it either; at most :attr:`~RefusalGate.max_sources` addresses are
tracked, and refusals from more are counted under one entry without an address.

The counted ones are written when their window is over: by the next refusal
from anyone, by a background job of the guard every few seconds, and, for
whatever is still open, when the guard closes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

#: The key refusals from addresses beyond ``max_sources`` are counted under.
OTHERS = "*"


@dataclass(slots=True)
class _Window:
    start: float
    seen: int = 0
    counted: int = 0


@dataclass(frozen=True, slots=True)
class Summary:
    """Refusals from ``source`` in ``[start, end)`` that were counted instead of recorded."""

    source: str | None
    count: int
    start: float
    end: float

    def reasons(self) -> tuple[str, ...]:
        iso = [
            datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds")
            for t in (self.start, self.end)
        ]
        who = "this address" if self.source is not None else "addresses beyond the tracked ones"
        return (f"{self.count} more refusals from {who} from {iso[0]} to {iso[1]}, not recorded one by one",)


class RefusalGate:
    """Decides which refusals are recorded one by one; counts and summarises the others."""

    def __init__(
        self,
        *,
        window: float = 60.0,
        burst: int = 10,
        overall: int = 200,
        max_sources: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.window = window
        #: Refusals per address and window recorded one by one.
        self.burst = burst
        #: Refusals of all addresses together per window recorded one by one.
        self.overall = overall
        self.max_sources = max_sources
        self.clock = clock
        self._windows: dict[str, _Window] = {}
        self._overall = _Window(0.0)

    def admit(self, source: str | None) -> tuple[bool, list[Summary]]:
        """Whether to record this refusal in full, and the summaries of windows now over."""
        now = self.clock()
        over = self.expired(now)
        if now - self._overall.start >= self.window:
            self._overall = _Window(now)
        key = source or "-"
        if key not in self._windows and len(self._windows) >= self.max_sources:
            key = OTHERS
        current = self._windows.get(key)
        if current is None:
            current = self._windows[key] = _Window(now)
        current.seen += 1
        self._overall.seen += 1
        if current.seen <= self.burst and self._overall.seen <= self.overall and key != OTHERS:
            return True, over
        current.counted += 1
        return False, over

    def expired(self, now: float | None = None) -> list[Summary]:
        """Summaries of the windows that are over (their entries are forgotten)."""
        now = self.clock() if now is None else now
        done = [k for k, w in self._windows.items() if now - w.start >= self.window]
        return [s for s in (self._close(k, now) for k in done) if s is not None]

    def drain(self) -> list[Summary]:
        """Summaries of every window, over or not (the guard is closing)."""
        now = self.clock()
        return [s for s in (self._close(k, now) for k in list(self._windows)) if s is not None]

    def _close(self, key: str, now: float) -> Summary | None:
        window = self._windows.pop(key)
        if not window.counted:
            return None
        end = min(now, window.start + self.window)
        source = None if key == OTHERS else (None if key == "-" else key)
        return Summary(source, window.counted, window.start, end)
