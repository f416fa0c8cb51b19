"""The lane's kernel, its event-stream reader and the served side's HTTP parser choice."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any, cast

import httpx2
import pytest
from hypothesis import given
from hypothesis import strategies as st
from mcp.server._otel import OpenTelemetryMiddleware
from mcp.server.lowlevel import Server
from pydantic import ValidationError

import mcp_guard.portal.lanekernel as lanekernel
from mcp_guard.config import ListenSection
from mcp_guard.errors import ConfigError
from mcp_guard.integrations.http import header_timeout_protocol
from mcp_guard.portal.events_reader import EventReader
from mcp_guard.portal.lanekernel import LaneKernel, untraced
from mcp_guard.portal.upstream_http import LeanResponse


# --- the kernel ------------------------------------------------------------------------------------
def test_the_span_is_left_out_only_when_it_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = lanekernel.ProxyTracerProvider()
    monkeypatch.setattr(lanekernel, "get_tracer_provider", lambda: proxy)
    assert untraced({"name": "x"}) and untraced(None)
    assert not untraced({"name": "x", "_meta": {"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"}})
    monkeypatch.setattr(lanekernel, "get_tracer_provider", lambda: object())  # a provider is installed
    assert not untraced({"name": "x"})


def test_the_untraced_runner_keeps_every_other_middleware_and_the_servers_handlers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server: Server[Any] = Server("s")

    async def mine(ctx: Any, call_next: Any) -> Any:
        return await call_next(ctx)

    server.middleware.append(mine)
    kernel = LaneKernel(server, None)
    connection: Any = object()
    proxy = lanekernel.ProxyTracerProvider()
    monkeypatch.setattr(lanekernel, "get_tracer_provider", lambda: proxy)
    lean = kernel.runner(connection, {"name": "x"})
    assert list(lean.server.middleware) == [mine]
    assert lean.server.get_request_handler("tools/call") is server.get_request_handler("tools/call")
    assert lean.server.cache_hints is server.cache_hints
    full = kernel.runner(connection, {"name": "x", "_meta": {}})
    assert full.server is server and isinstance(full.server.middleware[0], OpenTelemetryMiddleware)
    server.middleware.append(mine)  # read at use: a middleware added later is in the chain too
    assert list(lean.server.middleware) == [mine, mine]


# --- the event-stream reader ----------------------------------------------------------------------
class _Chunks:
    """What :class:`EventReader` reads of a lean response: its body, part by part."""

    def __init__(self, parts: list[bytes]) -> None:
        self._parts = list(parts)

    async def read_chunk(self) -> bytes | None:
        return self._parts.pop(0) if self._parts else None


def _httpx2_events(body: bytes) -> list[tuple[str, str, str, int | None]]:
    request = httpx2.Request("POST", "http://upstream.test/mcp")
    response = httpx2.Response(
        200, headers={"content-type": "text/event-stream"}, content=body, request=request
    )
    return [(e.event, e.data, e.id, e.retry) for e in httpx2.EventSource(response)]


def _reader_events(parts: list[bytes]) -> list[tuple[str, str, str, int | None]]:
    async def read() -> list[tuple[str, str, str, int | None]]:
        reader = EventReader(cast(LeanResponse, _Chunks(parts)))
        out = []
        while (event := await reader.next()) is not None:
            out.append((event.event, event.data, event.id, event.retry))
        assert await reader.next() is None
        return out

    return asyncio.run(read())


_LINES = st.sampled_from(
    [
        "event: message\r\n",
        'data: {"jsonrpc": "2.0", "id": 1, "result": {}}\r\n',
        "data: caf\u00e9 \u2603\n",
        "id: 7\n",
        "retry: 10\n",
        ": comment\n",
        "\r\n",
        "\n",
        "data:no space\r",
    ]
)


@given(
    st.lists(_LINES, max_size=12).map("".join).map(str.encode),
    st.lists(st.integers(min_value=0, max_value=400), max_size=6),
    st.binary(max_size=3),
    st.sampled_from([b"", b"\n", b"\n\n", b"data: x", b"data: \xe2\x98"]),
)
def test_the_reader_reads_what_httpx2s_event_source_reads(
    body: bytes, cuts: list[int], junk: bytes, end: bytes
) -> None:
    """However the body is cut (a character's bytes split over parts, invalid bytes too), the same events."""
    body = body + junk + end
    points = sorted({min(c, len(body)) for c in cuts} | {0, len(body)})
    parts = [body[a:b] for a, b in itertools.pairwise(points) if b > a]
    assert _reader_events(parts) == _httpx2_events(body)


# --- the served side's parser ---------------------------------------------------------------------
def test_the_parser_is_chosen_by_name_and_a_wrong_name_is_refused() -> None:
    from uvicorn.protocols.http.h11_impl import H11Protocol
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    assert issubclass(header_timeout_protocol(5, "h11"), H11Protocol)
    assert issubclass(header_timeout_protocol(5, "httptools"), HttpToolsProtocol)
    assert issubclass(header_timeout_protocol(5), HttpToolsProtocol)  # installed here: auto takes it
    with pytest.raises(ConfigError, match="unknown HTTP parser 'llhttp'"):
        header_timeout_protocol(5, "llhttp")
    with pytest.raises(ValidationError, match="http_parser"):
        ListenSection(http_parser="fast")  # type: ignore[arg-type]


def test_without_httptools_auto_falls_back_to_h11(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from uvicorn.protocols.http.h11_impl import H11Protocol

    monkeypatch.setitem(sys.modules, "uvicorn.protocols.http.httptools_impl", None)  # not importable
    assert issubclass(header_timeout_protocol(5), H11Protocol)
    with pytest.raises(ConfigError, match=r"pip install 'mcp-guard\[fast\]'"):
        header_timeout_protocol(5, "httptools")
