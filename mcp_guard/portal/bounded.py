"""Upstream JSON answers are read only as far as the guard could still pass them on.

The guard refuses a result larger than ``[guard] max_result_bytes`` (16 MiB by
default), but only after the whole message has been read, parsed and
measured: an upstream that answers one call with a JSON body of gigabytes - by
mistake, or to take the portal down - would otherwise be buffered in full
(several times its size while parsed) before the refusal, and one such call
can exhaust the memory every other caller shares.

:class:`BoundedStream` wraps the body of each upstream HTTP response that is
not an event stream (event streams are already read one bounded event at a
time by the HTTP client), on the forwarded path and on the SDK client sessions
alike, and stops reading once it is past :func:`message_cap`. The read then
fails, so the call ends with an error and its one audit event, and the
connection is dropped.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx2

#: The bound is this many times ``max_result_bytes``: the wire form of a result may be larger than
#: the compact JSON the guard measures (whitespace, ``\\u`` escapes).
WIRE_FACTOR = 4
#: ... and never below this, so small result limits leave room for ordinary answers.
MIN_CAP = 1 << 20


class MessageTooLarge(httpx2.RemoteProtocolError, httpx2.StreamError):
    """An upstream answer past the bound: a broken response to the forwarder (a transport error),
    and to the SDK's client a body it cannot read (a stream error), which fails that one request
    instead of the whole client session."""


def message_cap(max_result_bytes: int | None) -> int | None:
    """The most bytes one upstream JSON answer may take on the wire; None: no bound (no result limit)."""
    if max_result_bytes is None:
        return None
    return max(MIN_CAP, WIRE_FACTOR * max_result_bytes)


class BoundedStream(httpx2.AsyncByteStream):
    """A response body that fails once it is past ``cap`` bytes (see the module)."""

    def __init__(self, inner: httpx2.AsyncByteStream, cap: int) -> None:
        self._inner = inner
        self._cap = cap

    async def __aiter__(self) -> AsyncIterator[bytes]:
        size = 0
        async for chunk in self._inner:
            size += len(chunk)
            if size > self._cap:
                raise MessageTooLarge(f"upstream message larger than {self._cap} bytes: not read further")
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


def bounded(response: httpx2.Response, cap: int | None) -> Any:
    """``response``'s body stream, bounded by ``cap`` unless there is none or it is an event stream."""
    stream = response.stream
    if cap is None or not isinstance(stream, httpx2.AsyncByteStream):
        return stream
    kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
    return stream if kind == "text/event-stream" else BoundedStream(stream, cap)


__all__ = ["BoundedStream", "MessageTooLarge", "bounded", "message_cap"]
