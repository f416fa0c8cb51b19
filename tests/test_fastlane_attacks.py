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

import httpx

from .http_util import MCP_HEADERS
from .test_portal_fastlane import call, make_portal, open_session, portal_url, running_lab


def _headers(session: str, token: str = "tok-alice") -> dict[str, str]:
    return {
        **MCP_HEADERS,
        "mcp-protocol-version": "2025-11-25",
        "mcp-session-id": session,
        "Authorization": f"Bearer {token}",
    }


def _post_in_two_parts(url: str, headers: dict[str, str], body: bytes, between: Any) -> bytes:
    """POST ``body`` over a raw socket: the head first, then ``between()``, then the body; the answer."""
    host, _, rest = url.partition("//")[2].partition("/")
    name, _, port = host.partition(":")
    head = f"POST /{rest} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(body)}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    with socket.create_connection((name, int(port)), timeout=30) as s:
        s.sendall(head.encode())
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
