"""One socket write per response on the served side: what uvicorn writes in one loop step goes out together.

uvicorn's h11 protocol writes a response's status line and headers as soon as
the app sends ``http.response.start``, and its body on the next message: two
``send`` system calls for a one-body answer (the portal's fast lane, every JSON
answer). On loopback, and on a loaded machine, each ``send`` also carries the
receiving side's network processing, so the second one is not cheap.

:class:`CoalescingTransport` stands between the protocol and the socket: the
first write of an event-loop step is held, later writes of the same step are
appended, and everything is written once at the end of the step (one
``call_soon``). Order is kept; closing writes what is held first. An event
stream still goes out event by event, each at most one step late.
"""

from __future__ import annotations

import asyncio
from typing import Any


class CoalescingTransport:
    """Wraps an asyncio transport; writes in one event-loop step become one write (see the module)."""

    def __init__(self, inner: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._inner = inner
        self._loop = loop
        self._held: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._held:
            self._loop.call_soon(self.flush)
        self._held.append(bytes(data))

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def flush(self) -> None:
        """Write what is held (at the end of the step, or before closing)."""
        if self._held:
            data = self._held[0] if len(self._held) == 1 else b"".join(self._held)
            self._held.clear()
            if not self._inner.is_closing():
                self._inner.write(data)

    def close(self) -> None:
        self.flush()
        self._inner.close()

    def write_eof(self) -> None:
        self.flush()  # what was written before the end goes out before it
        self._inner.write_eof()

    def abort(self) -> None:
        self._held.clear()
        self._inner.abort()

    def get_write_buffer_size(self) -> int:
        return sum(map(len, self._held)) + self._inner.get_write_buffer_size()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


__all__ = ["CoalescingTransport"]
