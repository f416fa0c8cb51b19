"""Attacks on the portal's fast lane that once got further than on the SDK path.

Each test runs a real portal (``guard.toml``, the ``serve`` path) in front of a
real upstream and attacks it over raw HTTP; the lane must answer what the SDK
path answers and record what it records. The general equivalence sequence is
in ``test_portal_fastlane.py``.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_guard.limits import SizeLimits
from mcp_guard.portal.bounded import BoundedStream, MessageTooLarge, message_cap

from .http_util import MCP_HEADERS, raw_post_head
from .test_portal_fastlane import call, make_portal, messages, open_session, portal_url, running_lab


def _headers(session: str, token: str = "tok-alice") -> dict[str, str]:
    return {
        **MCP_HEADERS,
        "mcp-protocol-version": "2025-11-25",
        "mcp-session-id": session,
        "Authorization": f"Bearer {token}",
    }


def _post_in_two_parts(url: str, headers: dict[str, str], body: bytes, between: Any) -> bytes:
    """POST ``body`` over a raw socket: the head first, then ``between()``, then the body; the answer."""
    address, head = raw_post_head(url, headers, len(body))
    with socket.create_connection(address, timeout=30) as s:
        s.sendall(head)
        time.sleep(0.3)  # the portal has read the head and waits for the body
        between()
        s.sendall(body)
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = s.recv(65536)
            if not chunk:
                break
            answer += chunk
    return answer


def test_a_call_whose_session_ends_before_its_body_arrives_runs_nothing(tmp_path: Path) -> None:
    """The session is checked again once the body is in: a DELETE in between leaves nothing to serve."""
    answers: dict[bool, bytes] = {}
    ran: dict[bool, list[Any]] = {}
    with running_lab() as upstream:
        for lane in (False, True):
            where = tmp_path / str(lane)
            where.mkdir()
            portal, auditor = make_portal(where, upstream, lane=lane)
            with portal_url(portal) as url, httpx.Client(timeout=30) as http:
                session = open_session(http, url, "tok-alice")
                headers = _headers(session)
                http.post(url, json=call("lab__echo", {"text": "warm"}), headers=headers)
                before = len(auditor.events)

                def end(http: httpx.Client = http, url: str = url, headers: dict[str, str] = headers) -> None:
                    assert http.delete(url, headers=headers).status_code == 200

                body = json.dumps(call("lab__echo", {"text": "after the end"})).encode()
                answers[lane] = _post_in_two_parts(url, headers, body, end)
                time.sleep(0.2)
                ran[lane] = [e.method for e in auditor.events[before:] if e.method == "tools/call"]
    assert answers[False].startswith(b"HTTP/1.1 404"), answers[False]
    assert answers[True].startswith(b"HTTP/1.1 404"), answers[True]
    assert b"after the end" not in answers[True]
    assert ran == {False: [], True: []}


# ---------------------------------------------------------------------- a flooding upstream
_MIB = 1 << 20


def _flooding_upstream(chunks: int, sent: list[int], kind: str) -> Any:
    """An MCP upstream whose ``tools/call`` answer is ``chunks`` MiB long, as one JSON body or one
    event of an event stream (``kind``); ``sent`` counts the MiBs that went out."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response, StreamingResponse
    from starlette.routing import Route

    def answer(rid: Any, result: dict[str, Any]) -> Response:
        body = json.dumps({"jsonrpc": "2.0", "id": rid, "result": result})
        return Response(body, media_type="application/json", headers={"mcp-session-id": "flood"})

    async def mcp(request: Request) -> Response:
        if request.method != "POST":
            return Response(status_code=405 if request.method == "GET" else 200)
        message = await request.json()
        method, rid = message.get("method"), message.get("id")
        if rid is None:
            return Response(status_code=202)
        if method == "initialize":
            info = {"name": "flood", "version": "0"}
            caps = {"tools": {}}
            return answer(rid, {"protocolVersion": "2025-11-25", "capabilities": caps, "serverInfo": info})
        if method == "tools/list":
            return answer(rid, {"tools": [{"name": "echo", "inputSchema": {"type": "object"}}]})
        if method != "tools/call":
            return answer(rid, {})

        async def body() -> Any:
            # JSON: one string of ``chunks`` MiB. Events: one event of ``chunks`` MiB, in short
            # ``data:`` lines of blanks (valid JSON whitespace once joined), so no line is long.
            head = '{"jsonrpc":"2.0","id":' + json.dumps(rid) + ',"result":{"content":'
            head += '[{"type":"text","text":"'
            if kind == "json":
                yield head.encode()
                piece = b"A" * _MIB
            else:
                yield ("event: message\ndata: " + head + 'x"}]').encode()
                piece = (b"\ndata: " + b" " * 1016) * 1024
            for _ in range(chunks):
                if await request.is_disconnected():
                    return  # the portal stopped reading
                yield piece
                sent.append(1)
            yield b'"}]}}' if kind == "json" else b"\ndata: }}\n\n"

        media = "application/json" if kind == "json" else "text/event-stream"
        return StreamingResponse(body(), media_type=media, headers={"mcp-session-id": "flood"})

    return Starlette(routes=[Route("/mcp", mcp, methods=["GET", "POST", "DELETE"])])


@pytest.mark.parametrize("kind", ["json", "events"])
@pytest.mark.parametrize("forward", [True, False], ids=["forwarded", "sdk-session"])
def test_an_upstream_answer_far_past_the_result_limit_is_not_read_to_its_end(
    tmp_path: Path, forward: bool, kind: str
) -> None:
    """A result the guard refuses for its size anyway is not buffered whole first (memory per call).

    JSON bodies are bounded by the portal; event streams are read one bounded event at a time by
    the HTTP client (kept here so that stays true)."""
    from .http_util import free_port, serve

    sent: list[int] = []
    with serve(_flooding_upstream(64, sent, kind), free_port()) as upstream:
        portal, auditor = make_portal(tmp_path, upstream + "/mcp", lane=True, forward=forward)
        portal.guard.size_limits = SizeLimits(max_result_bytes=_MIB)  # [guard] max_result_bytes
        with portal_url(portal) as url, httpx.Client(timeout=60) as http:
            session = open_session(http, url, "tok-alice")
            answer = http.post(url, json=call("lab__echo", {"text": "x"}), headers=_headers(session))
            time.sleep(0.3)
    (reply,) = messages(answer)
    assert "error" in reply  # refused, never passed on
    assert len(sent) < 32, f"{len(sent)} MiB of a 64 MiB answer were read"
    events = [e for e in auditor.events if e.method == "tools/call"]
    assert len(events) == 1 and events[0].error_code is not None, events
    if forward or kind == "json":  # only the call failed, not the upstream's session
        assert [u.restarts for u in portal.upstreams.values()] == [0]
    # (the SDK's client reports a broken event stream as a closed connection: the session is reopened)


async def _read(stream: Any) -> int:
    return sum([len(chunk) async for chunk in stream])


class _Chunks(httpx2.AsyncByteStream):
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    async def __aiter__(self) -> Any:
        for chunk in self.chunks:
            yield chunk


@given(st.lists(st.integers(0, 300), max_size=20), st.integers(1, 3000))
@settings(max_examples=100, deadline=None)
def test_a_body_is_read_whole_up_to_the_bound_and_not_past_it(sizes: list[int], cap: int) -> None:
    chunks = [b"x" * n for n in sizes]
    stream = BoundedStream(_Chunks(chunks), cap)
    if sum(sizes) <= cap:
        assert anyio.run(_read, stream) == sum(sizes)
    else:
        with pytest.raises(MessageTooLarge):
            anyio.run(_read, stream)


def test_the_bound_follows_the_result_limit() -> None:
    assert message_cap(None) is None
    assert message_cap(16 << 20) == 64 << 20
    assert message_cap(10) == 1 << 20


async def test_a_cancelled_request_is_answered_as_an_event_stream_as_on_the_sdk_path() -> None:
    """An SDK client that cancels a call and closes must not fail on the lane's late answer."""
    from types import SimpleNamespace

    from mcp.server.streamable_http import REQUEST_CANCELLED
    from mcp_types import ErrorData, JSONRPCError

    from mcp_guard.portal.fastlane import _answer

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    cancelled = JSONRPCError(
        jsonrpc="2.0", id=7, error=ErrorData(code=REQUEST_CANCELLED, message="Request cancelled")
    )
    await _answer(send, SimpleNamespace(mcp_session_id="s1"), cancelled, [])
    headers = dict(sent[0]["headers"])
    assert headers[b"content-type"] == b"text/event-stream"
    assert b'"Request cancelled"' in sent[1]["body"] and sent[1]["body"].startswith(b"event: message")
