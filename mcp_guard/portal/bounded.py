"""Upstream answers are read only as far as the guard could still pass them on.

The guard refuses a result larger than ``[guard] max_result_bytes`` (16 MiB by
default), but only after the whole message has been read, parsed and
measured: an upstream that answers one call with gigabytes - by mistake, or to
take the portal down - would otherwise be buffered in full (several times its
size while parsed) before the refusal, and one such call can exhaust the
memory every other caller shares.

:class:`BoundedStream` wraps the body of each upstream HTTP response, on the
forwarded path and on the SDK client sessions alike, and stops reading once one
message is past :func:`message_cap`: a JSON body as a whole, an event stream
per event (a long-lived stream of small events is never cut). The read then
fails like a broken connection, so the call ends with the upstream's error and
its one audit event, and the connection is dropped.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx2

#: The bound is this many times ``max_result_bytes``: the wire form of a result may be larger than
#: the compact JSON the guard measures (whitespace, ``\\u`` escapes, event framing).
WIRE_FACTOR = 4
#: ... and never below this, so small result limits leave room for ordinary notifications.
MIN_CAP = 1 << 20

_BOUNDARY = re.compile(rb"\r\n\r\n|\n\n|\r\r")


class MessageTooLarge(httpx2.RemoteProtocolError, httpx2.StreamError):
    """An upstream message past the bound: a broken response to the forwarder (a transport error),
    and to the SDK's client a body it cannot read (a stream error), which fails that one request
    instead of the whole client session."""


def message_cap(max_result_bytes: int | None) -> int | None:
    """The most bytes one upstream message may take on the wire; None: no bound (no result limit)."""
    if max_result_bytes is None:
        return None
    return max(MIN_CAP, WIRE_FACTOR * max_result_bytes)


class BoundedStream(httpx2.AsyncByteStream):
    """A response body that fails once one message in it is past ``cap`` bytes (see the module)."""

    def __init__(self, inner: httpx2.AsyncByteStream, cap: int, *, events: bool) -> None:
        self._inner = inner
        self._cap = cap
        self._events = events

    async def __aiter__(self) -> AsyncIterator[bytes]:
        size = 0  # bytes of the message being read
        tail = b""  # the end of the previous chunk, for a boundary split between two chunks
        async for chunk in self._inner:
            if self._events:
                data = tail + chunk
                start = -len(tail)  # where the current message's new bytes begin, relative to data
                for found in _BOUNDARY.finditer(data):
                    self._check(size + max(found.end() + start, 0))  # bytes of a finished event
                    size, start = 0, -found.end()
                size += len(data) + start
                tail = data[-3:]
            else:
                size += len(chunk)
            self._check(size)
            yield chunk

    def _check(self, size: int) -> None:
        if size > self._cap:
            message = f"upstream message larger than {self._cap} bytes: not read further"
            raise MessageTooLarge(message)

    async def aclose(self) -> None:
        await self._inner.aclose()


def bounded(response: httpx2.Response, cap: int | None) -> Any:
    """``response``'s body stream, bounded by ``cap`` when there is one."""
    stream = response.stream
    if cap is None or not isinstance(stream, httpx2.AsyncByteStream):
        return stream
    kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
    return BoundedStream(stream, cap, events=kind == "text/event-stream")


__all__ = ["BoundedStream", "MessageTooLarge", "bounded", "message_cap"]
