"""A forwarded call's event stream, read event by event without async generators.

httpx2's :class:`~httpx2.EventSource` reads a response through three nested
async generators (its own, the response's text and its bytes). The forwarder
stops at the event that answers its request, so all three are left unfinished,
and asyncio finalizes each one it drops through its async-generator hook: a
wake-up of the event loop from "another thread" (a system call) and a task
running ``aclose()``, three of each per forwarded call.

:class:`EventReader` reads the same events with plain awaits: the lean
client's :meth:`~.upstream_http.LeanResponse.read_chunk`, the same UTF-8
decoding (errors replaced) and httpx2's own event parser with the same
per-event bound, so an event the one reader rejects the other rejects too.
Responses of httpx2's client keep :class:`~httpx2.EventSource`.
"""

from __future__ import annotations

import codecs
from collections import deque
from typing import Any

from httpx2 import EventSource, ServerSentEvent
from httpx2._config import DEFAULT_MAX_EVENT_SIZE_BYTES
from httpx2._sse import _SSEParser

from .upstream_http import LeanResponse


class EventReader:
    """The events of one lean response, in order; :meth:`next` gives None once the body ended."""

    def __init__(self, response: LeanResponse) -> None:
        self._response = response
        self._parser = _SSEParser(DEFAULT_MAX_EVENT_SIZE_BYTES)
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._ready: deque[ServerSentEvent] = deque()
        self._ended = False

    async def next(self) -> ServerSentEvent | None:
        while not self._ready:
            if self._ended:
                return None
            chunk = await self._response.read_chunk()
            if chunk is None:
                self._ended = True
                tail = self._decoder.decode(b"", final=True)
                if tail:
                    self._ready.extend(self._parser.decode(tail))
                self._ready.extend(self._parser.flush())
            else:
                text = self._decoder.decode(chunk)
                if text:
                    self._ready.extend(self._parser.decode(text))
        return self._ready.popleft()


class _SourceReader:
    """httpx2's :class:`~httpx2.EventSource` behind the same ``next``, for httpx2's responses."""

    def __init__(self, source: EventSource) -> None:
        self._events = source.__aiter__()

    async def next(self) -> ServerSentEvent | None:
        return await anext(self._events, None)


def read_events(response: Any) -> EventReader | _SourceReader:
    """A reader of ``response``'s events: without async generators for the lean client's responses."""
    if isinstance(response, LeanResponse):
        return EventReader(response)
    return _SourceReader(EventSource(response))


__all__ = ["EventReader", "read_events"]
