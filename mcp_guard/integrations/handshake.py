"""One answer for a refused credential across the SDK client's era fallback (stdio, in memory).

An ``mcp`` client in ``auto`` mode opens with ``server/discover``. When the guard
refuses it (no or a wrong ``MCP_GUARD_TOKEN``), the client takes any error other
than -32022 as "legacy server" and retries with ``initialize``. By then the SDK's
dual-era loop has locked the connection to the 2026-07-28 era, so it refuses that
``initialize`` itself (-32022, "the initialize handshake is not accepted") before
any middleware runs - and the user sees a protocol-version error instead of the
authentication failure that really happened.

:func:`answer_fallback_handshakes` wraps the server's ``run`` so that such an
``initialize`` gets the guard's last authentication refusal instead. Nothing is
served that would not be: the SDK refuses that ``initialize`` in any case, and the
refusal of the credential was already audited when ``server/discover`` met it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from mcp.shared.exceptions import MCPError
from mcp.shared.message import SessionMessage
from mcp_types import PROTOCOL_VERSION_META_KEY
from mcp_types.jsonrpc import ErrorData, JSONRPCError, JSONRPCRequest


class RefusalMemory(Protocol):
    """Where the middleware keeps the authentication refusal of its fixed credential."""

    @property
    def authentication_refusal(self) -> MCPError | None: ...


def _opens_modern(request: JSONRPCRequest) -> bool:
    """The SDK's own era rule: a first request other than initialize carrying the envelope."""
    if request.method == "initialize" or not isinstance(request.params, Mapping):
        return False
    meta = request.params.get("_meta")
    return isinstance(meta, Mapping) and PROTOCOL_VERSION_META_KEY in meta


class _FallbackAnswering:
    """A read stream that answers a fallback ``initialize`` on a modern connection itself."""

    def __init__(self, inner: Any, write_stream: Any, memory: RefusalMemory) -> None:
        self._inner = inner
        self._write = write_stream
        self._memory = memory
        self._first_seen = False
        self._modern = False

    @property
    def last_context(self) -> Any:
        # The SDK reads the sender's context from the stream it iterates.
        return getattr(self._inner, "last_context", None)

    async def _answered(self, item: Any) -> bool:
        if not isinstance(item, SessionMessage) or not isinstance(item.message, JSONRPCRequest):
            return False
        request = item.message
        if not self._first_seen:
            self._first_seen = True
            self._modern = _opens_modern(request)
            return False
        refusal = self._memory.authentication_refusal
        if not self._modern or request.method != "initialize" or refusal is None:
            return False
        error = JSONRPCError(jsonrpc="2.0", id=request.id, error=ErrorData.model_validate(refusal.error))
        await self._write.send(SessionMessage(error))
        return True

    @property
    def _settled(self) -> bool:
        """The first request opened a legacy connection: no later message is ever answered here."""
        return self._first_seen and not self._modern

    async def receive(self) -> Any:
        while True:
            item = await self._inner.receive()
            if self._settled or not await self._answered(item):
                return item

    def __aiter__(self) -> _FallbackAnswering:
        return self

    async def __anext__(self) -> Any:
        while True:
            item = await self._inner.__anext__()
            # Checked inline: every message of the connection passes here.
            if (self._first_seen and not self._modern) or not await self._answered(item):
                return item

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self) -> _FallbackAnswering:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def answer_fallback_handshakes(lowlevel: Any, memory: RefusalMemory) -> None:
    """Make ``lowlevel.run`` (stdio, in-memory clients) answer a fallback ``initialize`` as refused."""
    original = lowlevel.run

    async def run(read_stream: Any, write_stream: Any, *args: Any, **kwargs: Any) -> None:
        await original(_FallbackAnswering(read_stream, write_stream, memory), write_stream, *args, **kwargs)

    lowlevel.run = run
