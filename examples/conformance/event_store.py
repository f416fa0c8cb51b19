"""A bounded in-memory ``EventStore`` so streamable-HTTP streams can be resumed.

With an event store the SDK primes every SSE stream with an event id and a
``retry`` hint, and a client that lost a stream (or had it closed on purpose,
as the ``test_reconnection`` fixture does) can reconnect with
``Last-Event-ID`` and receive what it missed. Memory is bounded: the oldest
events are forgotten first, which only limits how far back a resume can reach.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict

from mcp.server.streamable_http import EventCallback, EventId, EventMessage, EventStore, StreamId
from mcp.types import JSONRPCMessage


class MemoryEventStore(EventStore):
    """Events kept per stream in arrival order, at most ``max_events`` in total."""

    def __init__(self, max_events: int = 10_000) -> None:
        self._max = max_events
        self._ids = itertools.count(1)
        self._events: OrderedDict[str, tuple[StreamId, JSONRPCMessage | None]] = OrderedDict()

    async def store_event(self, stream_id: StreamId, message: JSONRPCMessage | None) -> EventId:
        event_id = str(next(self._ids))
        self._events[event_id] = (stream_id, message)
        while len(self._events) > self._max:
            self._events.popitem(last=False)
        return event_id

    async def replay_events_after(
        self, last_event_id: EventId, send_callback: EventCallback
    ) -> StreamId | None:
        entry = self._events.get(last_event_id)
        if entry is None:
            return None
        stream_id = entry[0]
        after = False
        for event_id, (sid, message) in list(self._events.items()):
            if event_id == last_event_id:
                after = True
                continue
            if after and sid == stream_id and message is not None:
                await send_callback(EventMessage(message, event_id))
        return stream_id
