"""The cap on calls in flight per caller and server (``[portal] max_in_flight_per_caller``).

Rate limits count calls per window; they say nothing about how long a call
runs. One caller firing many slow calls at once can fill the pool of
connections to an upstream, and every other caller of that upstream waits
behind them. This cap bounds the calls one caller has running on one server
at the same time; a call past it is refused at admission with the rate-limit
error (``-32029``), before it reaches the upstream.

The counters are a dict in this process, touched without any I/O: each
replica counts its own calls, because what the cap protects is the replica's
own connection pool. A slot is taken in the pipeline's admission and given
back exactly once, whatever ends the call (see :class:`Slot`).
"""

from __future__ import annotations

import threading

from .errors import RateLimited
from .model import Principal
from .ratelimit import vouched_by

#: Calls one caller may have running on one server unless configured otherwise: far above what an
#: interactive client or agent runs at once, and well below the HTTP client's 100 connections.
DEFAULT_MAX_IN_FLIGHT = 32

#: A counter's key: subject, issuer, source address (anonymous callers only), server. Kept in
#: memory only, so plain values in a tuple; nothing needs encoding as for a store key.
Key = tuple[str, str | None, str | None, str]


class TooManyInFlight(RateLimited):
    """The caller already has as many calls running on this server as the cap allows."""

    def __init__(self, in_flight: int, cap: int, server: str) -> None:
        calls = "1 call" if in_flight == 1 else f"{in_flight} calls"
        message = f"{calls} already in flight for you on server {server!r}; retry when one ends"
        super().__init__(f"concurrency cap: {message}")
        # Nothing here is secret: the caller learns about its own calls and the server it named.
        self.public_message = f"Rate limit exceeded: {message}"
        self.data = {"inFlight": in_flight, "limit": cap}


class Slot:
    """One admitted call's place under the cap; :meth:`release` gives it back once, later calls do nothing."""

    __slots__ = ("_key", "_owner")

    def __init__(self, owner: InFlight, key: Key) -> None:
        self._owner: InFlight | None = owner
        self._key = key

    def release(self) -> None:
        owner, self._owner = self._owner, None
        if owner is not None:
            owner._release(self._key)


class InFlight:
    """Counts the calls each caller has running on each server, in this process.

    ``cap`` 0 turns the cap off (:meth:`acquire` then returns None and counts
    nothing). Safe across tasks and threads: the counters change under a lock
    that is never held across an ``await``.
    """

    def __init__(self, cap: int = DEFAULT_MAX_IN_FLIGHT) -> None:
        if not isinstance(cap, int) or isinstance(cap, bool) or cap < 0:
            raise ValueError(f"max_in_flight_per_caller must be a non-negative integer, not {cap!r}")
        self.cap = cap
        self._counts: dict[Key, int] = {}
        self._lock = threading.Lock()

    @staticmethod
    def key(principal: Principal, server: str) -> Key:
        """Whose calls count together: one person (a subject per issuer); anonymous callers per address.

        A subject name is unique only within whoever vouches for it (its issuer, or a tenant's
        keys: :func:`~mcp_guard.ratelimit.vouched_by`), so two issuers' ``alice`` are two people.
        Every anonymous caller carries the same subject; without the address they
        would all share one cap and any one of them could use it up. The tenant is left out:
        a person who may pick a tenant per token must not get a fresh cap with each.
        """
        address = principal.ip if principal.auth_method == "anonymous" else None
        return principal.subject, vouched_by(principal), address, server

    def acquire(self, principal: Principal, server: str) -> Slot | None:
        """Take a slot for a call, or raise :class:`TooManyInFlight` when the caller has none left."""
        if self.cap == 0:
            return None
        key = self.key(principal, server)
        with self._lock:
            running = self._counts.get(key, 0)
            if running >= self.cap:
                raise TooManyInFlight(running, self.cap, server)
            self._counts[key] = running + 1
        return Slot(self, key)

    def _release(self, key: Key) -> None:
        with self._lock:
            running = self._counts.get(key, 0) - 1
            if running > 0:
                self._counts[key] = running
            else:
                # Idle callers leave no entry behind: the dict stays as small as the calls running now.
                self._counts.pop(key, None)

    def running(self, principal: Principal, server: str) -> int:
        """The calls ``principal`` has in flight on ``server`` now."""
        with self._lock:
            return self._counts.get(self.key(principal, server), 0)

    def total(self) -> int:
        """All calls in flight in this process (for tests and operators)."""
        with self._lock:
            return sum(self._counts.values())


__all__ = ["DEFAULT_MAX_IN_FLIGHT", "InFlight", "Slot", "TooManyInFlight"]
