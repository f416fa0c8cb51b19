"""A fast-lane call whose downstream client goes away is cancelled, upstream too, and recorded."""

from __future__ import annotations

import asyncio
import gc
import json
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import httpx
import pytest

from mcp_guard.integrations.http import header_timeout_protocol

from .helpers import ListAuditor
from .http_util import free_port, raw_post_head, serve
from .test_fastlane_attacks import _headers
from .test_portal_direct import Lab, direct_portal
from .test_portal_fastlane import call, messages, open_session

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@contextmanager
def served(portal: Any, parser: str = "auto") -> Iterator[str]:
    """The portal served as ``mcp-guard serve`` serves it (its own HTTP protocol), in a thread."""
    port = free_port()
    with serve(portal.streamable_http_app(port=port), port, http=header_timeout_protocol(30, parser)) as url:
        yield url


def _post_and_hang_up(url: str, headers: dict[str, str], body: bytes, when: Any) -> None:
    """POST over a raw socket and close it, once ``when()`` is true, without reading the answer."""
    address, head = raw_post_head(url, headers, len(body))
    with socket.create_connection(address, timeout=30) as s:
        s.sendall(head + body)
        deadline = time.monotonic() + 15
        while not when():
            assert time.monotonic() < deadline, "the call did not reach the upstream"
            time.sleep(0.02)


@pytest.mark.parametrize("parser", ["h11", "httptools"])
async def test_a_client_that_disconnects_cancels_its_forwarded_call(parser: str) -> None:
    lab, auditor = Lab(), ListAuditor()
    with lab.running() as up:
        portal = direct_portal(up, auditor)
        with served(portal, parser) as base, httpx.Client(timeout=30) as http:
            url = base + "/mcp"
            session = open_session(http, url, "tok-alice")
            headers = _headers(session)
            for _ in range(2):  # the first call after the handshake may still take the SDK path
                warm = http.post(url, json=call("lab__echo", {"text": "warm"}), headers=headers)
                assert "result" in messages(warm)[-1]
            before = portal.lane.served if portal.lane is not None else 0
            with anyio.fail_after(15):
                body = json.dumps(call("lab__slow", {}, rid=9)).encode()
                # The client hangs up while the upstream runs the call.
                _post_and_hang_up(url, headers, body, lab.started.is_set)
                while not lab.cancelled.is_set():  # set in the upstream's thread: polled
                    await anyio.sleep(0.05)  # the upstream call was cancelled, long before its 30 s
            assert portal.lane is not None and portal.lane.served == before + 1  # it took the lane
            # The session goes on: the next call is answered.
            again = http.post(url, json=call("lab__echo", {"text": "still here"}), headers=headers)
            assert messages(again)[-1]["result"]["structuredContent"] == {"result": "still here"}
    [slow] = [e for e in auditor.events if e.method == "tools/call" and str(e.target).endswith("slow")]
    assert slow.outcome == "cancelled", slow


def test_a_lane_call_leaves_no_async_generator_for_the_loop_to_finalize(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each one dropped unfinished costs a wake-up of the loop (a system call) and a task: none per call."""
    dropped: list[str] = []
    original = asyncio.BaseEventLoop._asyncgen_finalizer_hook  # type: ignore[attr-defined]

    def counting(self: asyncio.BaseEventLoop, agen: Any) -> None:
        dropped.append(agen.__qualname__)
        original(self, agen)

    monkeypatch.setattr(asyncio.BaseEventLoop, "_asyncgen_finalizer_hook", counting)
    lab, auditor = Lab(), ListAuditor()
    with lab.running() as up:
        portal = direct_portal(up, auditor)
        with served(portal) as base, httpx.Client(timeout=30) as http:
            url = base + "/mcp"
            headers = _headers(open_session(http, url, "tok-alice"))
            for _ in range(2):  # the first call after the handshake may still take the SDK path
                http.post(url, json=call("lab__echo", {"text": "warm"}), headers=headers)
            assert portal.lane is not None
            before, served_before = len(dropped), portal.lane.served
            for i in range(5):
                answer = http.post(url, json=call("lab__echo", {"text": f"n{i}"}), headers=headers)
                assert messages(answer)[-1]["result"]["structuredContent"] == {"result": f"n{i}"}
            assert portal.lane.served == served_before + 5
            gc.collect()
            ours = [name for name in dropped[before:] if "EventSource" in name or "Lean" in name]
            assert ours == []
