"""Which downstream callers are subscribed to which upstream resource, and over which connection.

A resource subscription lives on one upstream *channel*: the upstream's shared
connection, or - for an upstream that keeps per-user credentials - the pooled
connection opened with that caller's own secrets, so the upstream only ever
reports changes it would let that user see. An update that arrives on a
channel reaches exactly the subscribers of that channel and URI; nothing
crosses from one user's connection to another user's subscription.

The table counts subscribers per ``(channel, uri)`` so the portal unsubscribes
upstream only when the last subscriber leaves (every subscribe is decided by
the guard and forwarded; upstreams treat a repeated one as a no-op), and it keeps
the channels that still carry subscriptions open (a pooled per-user
connection is not reaped while someone listens on it). Subscribers are either
2025-11-25 connections (held weakly: a connection that goes away without
unsubscribing is pruned) or 2026-07-28 ``subscriptions/listen`` streams (held
until the stream ends).
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger("mcp_guard.portal")

#: ``(upstream,)`` for the shared connection; the credential pool key for a per-user one.
Channel = tuple[Any, ...]

Deliver = Callable[[str], Awaitable[None]]


@dataclass(eq=False)
class _Subscriber:
    deliver: Deliver
    ref: weakref.ref[Any] | None = None  # the 2025-11-25 connection, held weakly
    on_lost: Callable[[], None] | None = None  # a listen stream: ended when its channel dies

    def alive(self) -> bool:
        return self.ref is None or self.ref() is not None


@dataclass
class SubscriptionTable:
    """Subscribers per ``(channel, uri)``; the portal does the upstream (un)subscribing it reports."""

    _subs: dict[tuple[Channel, str], dict[object, _Subscriber]] = field(default_factory=dict)

    def add(
        self,
        channel: Channel,
        uri: str,
        token: object,
        deliver: Deliver,
        *,
        connection: Any = None,
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        """Register (or replace) one subscriber of ``uri`` on ``channel``."""
        ref = weakref.ref(connection) if connection is not None else None
        self._subs.setdefault((channel, uri), {})[token] = _Subscriber(deliver, ref, on_lost)

    def remove(self, channel: Channel, uri: str, token: object) -> bool:
        """Drop a subscriber; True when no live one is left on this channel and URI (unsubscribe upstream)."""
        key = (channel, uri)
        subs = self._subs.get(key)
        if subs is None or subs.pop(token, None) is None:
            return False
        if any(s.alive() for s in subs.values()):
            return False
        del self._subs[key]
        return True

    def drop(self, token: object) -> list[tuple[Channel, str]]:
        """Remove one subscriber everywhere; the keys left with nobody, to unsubscribe upstream."""
        return [key for key in list(self._subs) if self.remove(key[0], key[1], token)]

    def prune(self) -> list[tuple[Channel, str]]:
        """Forget subscribers whose connection is gone; the keys left with nobody, to unsubscribe upstream."""
        emptied = []
        for key, subs in list(self._subs.items()):
            for token, sub in list(subs.items()):
                if not sub.alive():
                    del subs[token]
            if not subs:
                del self._subs[key]
                emptied.append(key)
        return emptied

    def lose(self, channel: Channel) -> int:
        """The connection behind ``channel`` is gone: forget its subscribers, ending listen streams."""
        lost = 0
        for key in [k for k in self._subs if k[0] == channel]:
            for sub in self._subs.pop(key).values():
                lost += 1
                if sub.on_lost is not None:
                    try:
                        sub.on_lost()
                    except Exception:
                        logger.debug("ending a listen stream failed", exc_info=True)
        return lost

    def holds(self, channel: Channel) -> bool:
        """Whether any subscription still lives on ``channel`` (its connection must stay open)."""
        return any(key[0] == channel and subs for key, subs in self._subs.items())

    def uris(self, channel: Channel) -> list[str]:
        """The URIs subscribed on ``channel`` (re-subscribed upstream after a reconnect)."""
        return sorted(uri for (ch, uri), subs in self._subs.items() if ch == channel and subs)

    def channels_of(self, upstream: str) -> list[Channel]:
        return sorted({ch for ch, _ in self._subs if ch and ch[0] == upstream}, key=repr)

    async def deliver(self, channel: Channel, uri: str) -> int:
        """Hand an update to the subscribers of ``channel`` and ``uri``; a failing one is dropped."""
        subs = self._subs.get((channel, uri))
        if not subs:
            return 0
        delivered = 0
        for token, sub in list(subs.items()):
            if not sub.alive():
                subs.pop(token, None)
                continue
            try:
                await sub.deliver(uri)
                delivered += 1
            except Exception:
                logger.debug("resource update not delivered to a subscriber", exc_info=True)
                subs.pop(token, None)
        return delivered


__all__ = ["Channel", "SubscriptionTable"]
