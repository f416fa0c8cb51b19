"""In-process state store: for tests and single-process hosts that keep nothing across restarts."""

from __future__ import annotations

import builtins
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable, Sequence

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from ..protocols import RateDecision
from ._common import PERIOD_GRACE, Spend, check_distinct, check_spends, period_window


class MemoryStore:
    """A :class:`~mcp_guard.protocols.StateStore` held in dictionaries.

    Operations never await, so each is atomic with respect to other tasks of
    the same event loop; a threading lock is not needed because the guard
    calls the store from async code only. Rate limits use a sliding log per
    key: exact, and cheap for the window sizes policies use.

    Besides the protocol it offers the optional operations every built-in
    store shares (``hit_many``, ``set_if_absent``, ``take``, ``keys``), which
    callers look up with ``getattr`` so plain protocol stores keep working.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._kv: dict[str, tuple[bytes, float | None]] = {}
        self._sets: dict[str, set[str]] = defaultdict(set)
        self._hits: dict[str, deque[float]] = {}
        self._subscribers: dict[str, list[MemoryObjectSendStream[str]]] = defaultdict(list)

    def _window(self, key: str, window: float, now: float) -> deque[float]:
        log = self._hits.get(key)
        if log is None:
            log = self._hits[key] = deque()
        cutoff = now - window
        while log and log[0] <= cutoff:
            log.popleft()
        return log

    async def hit(self, key: str, limit: int, window: float) -> RateDecision:
        now = self._clock()
        log = self._window(key, window, now)
        if len(log) >= limit:
            retry = log[0] + window - now if log else window
            return RateDecision(False, len(log), limit, max(retry, 0.0))
        log.append(now)
        return RateDecision(True, len(log), limit, 0.0)

    async def hit_many(self, hits: Sequence[tuple[str, int, float]]) -> list[RateDecision]:
        """Count one call against several limits, all or nothing (keys must be distinct).

        The call is recorded in every window only when every limit admits it,
        so a call refused by one limit spends no budget of the others.
        """
        check_distinct(hits)
        now = self._clock()
        logs = [self._window(key, window, now) for key, _, window in hits]
        out: list[RateDecision] = []
        admitted = True
        for log, (_, limit, window) in zip(logs, hits):  # noqa: B905 - same length by construction
            if len(log) >= limit:
                admitted = False
                retry = log[0] + window - now if log else window
                out.append(RateDecision(False, len(log), limit, max(retry, 0.0)))
            else:
                out.append(RateDecision(True, len(log), limit, 0.0))
        if admitted:
            for log in logs:
                log.append(now)
            out = [RateDecision(True, d.count + 1, d.limit, 0.0) for d in out]
        return out

    async def spend_many(self, items: Sequence[Spend], now: float) -> tuple[bool, list[tuple[int, int]]]:
        """Charge one call to several budget counters, all or nothing (see ``mcp_guard.budgets``).

        Each item is ``(key, cost, limit, period)``; the counter is the fixed window of
        ``period`` seconds holding ``now`` (Unix seconds). Returns whether every budget had
        room, and per item the units used (after this charge when admitted) and the end of
        its window. A cost of 0 only reads.
        """
        check_spends(items)
        rows: list[tuple[str, int, int]] = []
        for key, _, _, period in items:
            start, end = period_window(now, period)
            name = f"{key}@{start}"
            current = self._live(name)
            rows.append((name, int(current) if current is not None else 0, end))
        admitted = all(used + cost <= limit for (_, used, _), (_, cost, limit, _) in zip(rows, items))  # noqa: B905
        if not admitted:
            return False, [(used, end) for _, used, end in rows]
        out: list[tuple[int, int]] = []
        for (name, used, end), (_, cost, _, _) in zip(rows, items):  # noqa: B905
            if cost > 0:
                self._kv[name] = (str(used + cost).encode(), self._clock() + end - now + PERIOD_GRACE)
            out.append((used + cost, end))
        return True, out

    def _live(self, key: str) -> bytes | None:
        entry = self._kv.get(key)
        if entry is None:
            return None
        value, expires = entry
        if expires is not None and expires <= self._clock():
            del self._kv[key]
            return None
        return value

    async def get(self, key: str) -> bytes | None:
        return self._live(key)

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        self._kv[key] = (value, self._clock() + ttl if ttl is not None else None)

    async def set_if_absent(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        """Store ``value`` only when ``key`` holds nothing live; True when this call stored it."""
        if self._live(key) is not None:
            return False
        await self.set(key, value, ttl)
        return True

    async def take(self, key: str) -> bytes | None:
        """Return and delete a value in one step, so a one-time token is redeemed once."""
        value = self._live(key)
        self._kv.pop(key, None)
        return value

    async def keys(self, prefix: str = "") -> list[str]:
        """Live key-value and non-empty set keys starting with ``prefix``, sorted."""
        found = {k for k in list(self._kv) if k.startswith(prefix) and self._live(k) is not None}
        found.update(k for k, members in self._sets.items() if members and k.startswith(prefix))
        return sorted(found)

    async def delete(self, key: str) -> None:
        self._kv.pop(key, None)
        self._sets.pop(key, None)

    async def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        current = self._live(key)
        value = (int(current) if current is not None else 0) + amount
        expires = self._kv[key][1] if current is not None else None
        if expires is None and ttl is not None:
            expires = self._clock() + ttl
        self._kv[key] = (str(value).encode(), expires)
        return value

    async def sadd(self, key: str, member: str) -> None:
        self._sets[key].add(member)

    async def srem(self, key: str, member: str) -> None:
        self._sets[key].discard(member)

    async def sismember(self, key: str, member: str) -> bool:
        return member in self._sets.get(key, ())

    async def smembers(self, key: str) -> builtins.set[str]:
        return set(self._sets.get(key, ()))

    async def publish(self, channel: str, message: str) -> None:
        for stream in list(self._subscribers.get(channel, ())):
            try:
                stream.send_nowait(message)
            except (anyio.WouldBlock, anyio.BrokenResourceError, anyio.ClosedResourceError):
                self._subscribers[channel].remove(stream)

    async def subscribe(self, channel: str) -> AsyncIterator[str]:
        send, receive = anyio.create_memory_object_stream[str](1000)
        self._subscribers[channel].append(send)
        try:
            async with receive:
                async for message in receive:
                    yield message
        finally:
            if send in self._subscribers[channel]:
                self._subscribers[channel].remove(send)
            send.close()

    async def aclose(self) -> None:
        for streams in self._subscribers.values():
            for stream in streams:
                stream.close()
        self._subscribers.clear()
