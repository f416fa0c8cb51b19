"""Many downstream clients hanging up mid-call: each call is cancelled upstream and recorded once,
and nothing is left holding the upstream client's connections."""

from __future__ import annotations

import json
import socket
import threading
import time

import anyio
import httpx
import pytest

from mcp_guard.portal.upstream_http import LeanClient

from ..helpers import ListAuditor
from ..http_util import raw_post_head
from ..test_fastlane_attacks import _headers
from ..test_portal_direct import Lab, direct_portal
from ..test_portal_disconnect import served
from ..test_portal_fastlane import call, messages, open_session

pytestmark = pytest.mark.anyio

CALLERS = 20


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _hang_up_after(url: str, headers: dict[str, str], body: bytes, seconds: float) -> None:
    address, head = raw_post_head(url, headers, len(body))
    with socket.create_connection(address, timeout=30) as s:
        s.sendall(head + body)
        time.sleep(seconds)


def held(client: LeanClient) -> int:
    """Connections neither idle nor finishing an answer's event stream (in use by a request)."""
    return client._count - len(client._idle) - len(client._draining)


async def test_callers_hanging_up_together_are_each_cancelled_recorded_and_leave_no_connection() -> None:
    lab, auditor = Lab(), ListAuditor()
    with lab.running() as up:
        portal = direct_portal(up, auditor)
        with served(portal) as base, httpx.Client(timeout=30) as http:
            url = base + "/mcp"
            headers = _headers(open_session(http, url, "tok-alice"))
            for _ in range(2):  # the first call after the handshake may still take the SDK path
                assert (
                    "result"
                    in messages(http.post(url, json=call("lab__echo", {"t": 1}), headers=headers))[-1]
                )
            forwarder = portal.upstreams["lab"].forwarder
            assert forwarder is not None and isinstance(forwarder.client, LeanClient)
            threads = [
                threading.Thread(
                    target=_hang_up_after,
                    args=(
                        url,
                        headers,
                        json.dumps(call("lab__slow", {}, rid=100 + n)).encode(),
                        1.0 + n * 0.01,
                    ),
                )
                for n in range(CALLERS)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=30)

            def slow_calls() -> list[str]:
                return [e.outcome for e in auditor.events if str(e.target).endswith("slow")]

            with anyio.fail_after(20):
                while len(slow_calls()) < CALLERS or held(forwarder.client) > 1:
                    await anyio.sleep(0.05)
            again = http.post(url, json=call("lab__echo", {"text": "still here"}), headers=headers)
            assert messages(again)[-1]["result"]["structuredContent"] == {"result": "still here"}
            await anyio.sleep(0.3)
            assert slow_calls() == ["cancelled"] * CALLERS  # each recorded once, none twice
            assert held(forwarder.client) <= 1  # the session's standalone stream; no call's connection
