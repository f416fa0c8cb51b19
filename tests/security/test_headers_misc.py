"""HTTP-layer holes: repeated ``Authorization`` headers, unaudited transport refusals, slowloris.

- Two ``Authorization`` headers used to be accepted, the first one winning (the SDK's bearer
  check and the guard's own header reader both took it); which one counts depends on the reader,
  so a request carrying more than one is refused as a presented-but-invalid credential.
- A foreign ``Origin`` (DNS-rebinding protection, HTTP 403) was audited as ``insufficient_scope``
  with no principal; a foreign ``Host`` (HTTP 421) was not audited at all.
- A client that sent headers and part of a body, part of a request line, or nothing, held its
  connection for ever: uvicorn has no read timeout. ``[listen] read_timeout`` now closes it.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.datastructures import Headers

from mcp_guard import errors
from mcp_guard.authn import credential_from_authorization
from mcp_guard.errors import AuthenticationError
from mcp_guard.integrations.sessions import bearer

from ..helpers import ListAuditor
from ..http_util import INITIALIZE, MCP_HEADERS, free_port, serve
from ..test_core_http import anonymous_app, verified_app
from .test_forwarded_headers import audited, mcp_guard_serve, write_config

PING = {"jsonrpc": "2.0", "id": 1, "method": "ping"}


def _message(r: httpx.Response) -> dict[str, Any]:
    """The JSON-RPC message of a plain JSON or a one-event SSE response."""
    if r.headers.get("content-type", "").startswith("text/event-stream"):
        data = [line[5:] for line in r.text.splitlines() if line.startswith("data:")]
        return dict(json.loads(data[-1]))
    return dict(r.json())


def _post(url: str, headers: list[tuple[str, str]], body: dict[str, Any] = INITIALIZE) -> httpx.Response:
    return httpx.post(url + "/mcp", json=body, headers=[*MCP_HEADERS.items(), *headers], timeout=20)


# --- two Authorization headers -------------------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [("Bearer tok-alice", "Bearer forged"), ("Bearer forged", "Bearer tok-alice")],
    ids=["valid-first", "valid-second"],
)
def test_two_authorization_headers_are_refused_with_sdk_auth(values: tuple[str, str]) -> None:
    port = free_port()
    auditor = ListAuditor()
    with serve(verified_app(port, auditor), port) as url:
        r = _post(url, [("Authorization", v) for v in values])
        assert r.status_code == 400, r.text
        assert 'error="invalid_request"' in r.headers["www-authenticate"]
        # One alone still works: the refusal is about the repetition.
        assert _post(url, [("Authorization", "Bearer tok-alice")]).status_code == 200
    refused = [e for e in auditor.events if e.reasons and "given 2 times" in e.reasons[0]]
    assert len(refused) == 1
    assert refused[0].decision == "deny" and refused[0].principal is None
    assert refused[0].error_code == errors.AUTHENTICATION_REQUIRED
    served = [e for e in auditor.events if e.method == "initialize" and e.decision == "allow"]
    assert len(served) == 1  # only the request with one header


def test_two_authorization_headers_are_refused_by_the_guards_header_reader() -> None:
    # A server protected by the guard and served without ``guard.http_app``: only the
    # middleware's own header reading stands between the caller and the first credential.
    port = free_port()
    auditor = ListAuditor()
    with serve(anonymous_app(port, auditor), port) as url:
        r = _post(url, [("Authorization", "Bearer tok-alice"), ("Authorization", "Bearer x")])
        assert r.status_code == 200 and _message(r)["error"]["code"] == errors.AUTHENTICATION_REQUIRED
        r = _post(url, [("Authorization", "Bearer tok-alice"), ("Authorization", "Bearer tok-alice")])
        assert _message(r)["error"]["code"] == errors.AUTHENTICATION_REQUIRED
        r = _post(url, [("Authorization", "Bearer tok-alice")])
        assert "error" not in _message(r)
    outcomes = [(e.decision, (e.principal or {}).get("subject")) for e in auditor.events]
    assert outcomes == [("deny", None), ("deny", None), ("allow", "alice")]


def test_header_readers_refuse_repeated_or_folded_credentials() -> None:
    two = Headers(raw=[(b"authorization", b"Bearer a"), (b"authorization", b"Bearer b")])
    assert bearer(two) == "\x00malformed"
    assert bearer(Headers({"authorization": "Bearer a, Bearer b"})) == "\x00malformed"
    assert bearer(Headers({"authorization": "Bearer abc"})) == "abc"
    with pytest.raises(AuthenticationError, match="2 times"):
        credential_from_authorization(["Bearer a", "Bearer b"])
    with pytest.raises(AuthenticationError):
        credential_from_authorization("Bearer a, Bearer b")
    assert credential_from_authorization(["Bearer a"]).token == "a"
    assert credential_from_authorization([]).token is None


# --- transport refusals are audited truthfully ---------------------------------------------------


def test_foreign_origin_and_host_are_audited_as_such_with_the_principal() -> None:
    port = free_port()
    auditor = ListAuditor()
    alice = [("Authorization", "Bearer tok-alice")]
    with serve(verified_app(port, auditor), port) as url:
        assert _post(url, alice).status_code == 200  # alice's credential is now known to the guard
        r = _post(url, [*alice, ("Origin", "http://evil.example")])
        assert r.status_code == 403 and "www-authenticate" not in r.headers
        r = _post(url, [*alice, ("Host", "evil.example")])
        assert r.status_code == 421
        r = _post(url, [("Authorization", "Bearer tok-carol")])  # a real insufficient_scope
        assert r.status_code == 403 and "insufficient_scope" in r.headers["www-authenticate"]
    by_reason = {e.reasons[0].split(" (")[0]: e for e in auditor.events if e.reasons}
    origin = by_reason["Origin not allowed"]
    assert "evil.example" in origin.reasons[0] and origin.decision == "deny"
    assert origin.principal is not None and origin.principal["subject"] == "alice"
    assert origin.source_ip == "127.0.0.1"
    host = by_reason["Host not allowed"]
    assert "421" in host.reasons[0] and "evil.example" in host.reasons[0]
    assert host.principal is not None and host.principal["subject"] == "alice"
    scope = by_reason["credential lacks a required scope"]
    assert scope.principal is not None and scope.principal["subject"] == "carol"
    assert not any(
        "insufficient_scope" in e.reasons[0] and e.principal and e.principal["subject"] == "alice"
        for e in auditor.events
        if e.reasons
    )


# --- slowloris -----------------------------------------------------------------------------------

READ_TIMEOUT = 1.0
SLACK = 4.0


def _held_for(port: int, payload: bytes) -> tuple[float, bytes]:
    """Send ``payload`` and wait: how long until the server closes (inf: not in time), and its answer."""
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.settimeout(READ_TIMEOUT + SLACK)
        s.sendall(payload)
        start = time.monotonic()
        got = b""
        try:
            while chunk := s.recv(4096):
                got += chunk
        except TimeoutError:
            return float("inf"), got
        except ConnectionResetError:
            pass
        return time.monotonic() - start, got


@pytest.mark.parametrize("parser", ["h11", "httptools"])
def test_slow_clients_are_closed_within_the_read_timeout(tmp_path: Path, parser: str) -> None:
    port = free_port()
    cfg = write_config(tmp_path, port, f'read_timeout = {READ_TIMEOUT}\nhttp_parser = "{parser}"')
    host = f"Host: 127.0.0.1:{port}\r\n".encode()
    partial_body = (
        b"POST /mcp HTTP/1.1\r\n" + host + b"Content-Type: application/json\r\n"
        b"Accept: application/json, text/event-stream\r\nContent-Length: 100\r\n\r\n" + b'{"jsonrpc"'
    )
    with mcp_guard_serve(cfg, port):
        held, answer = _held_for(port, partial_body)
        assert held <= READ_TIMEOUT + SLACK, "a partial body held the connection"
        assert answer.startswith(b"HTTP/1.1 408"), answer[:80]
        held, _ = _held_for(port, b"POST /mcp HTTP/1.1\r\n" + host)
        assert held <= READ_TIMEOUT + SLACK, "partial headers held the connection"
        held, _ = _held_for(port, b"")
        assert held <= READ_TIMEOUT + SLACK, "an idle connection was held"
        # An ordinary request on a fresh connection is unaffected.
        r = httpx.post(f"http://127.0.0.1:{port}/mcp", json=INITIALIZE, headers=MCP_HEADERS, timeout=20)
        assert r.status_code == 200
    events = audited(cfg)
    assert any("request body not received in time (HTTP 408)" in e.get("reasons", [""])[0] for e in events)
