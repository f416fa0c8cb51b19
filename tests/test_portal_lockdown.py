"""Lockdown: a URL upstream accepts only requests signed by the portal, per request, short-lived."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from mcp.server.mcpserver import Context, MCPServer

from mcp_guard.config import UpstreamSection
from mcp_guard.portal import Portal
from mcp_guard.portal.lockdown import (
    HEADER,
    LockdownError,
    LockdownMiddleware,
    LockdownVerifier,
    PortalSigner,
    load_public_key,
)

from .http_util import INITIALIZE, MCP_HEADERS, free_port, serve
from .test_portal_credentials import guard, whoami
from .test_portal_support import EXAMPLES, portal_http

BODY = b'{"jsonrpc":"2.0","id":1,"method":"tools/list"}'


def test_tokens_are_bound_short_lived_and_single_use() -> None:
    signer = PortalSigner.generate(ttl=30)
    verifier = LockdownVerifier(signer.key.public_key(), audience="files")
    now = time.time()
    token = signer.mint("files", "POST", BODY, now=now)
    claims = verifier.verify(token, "POST", BODY, now=now)
    assert claims["aud"] == "files" and claims["exp"] - claims["iat"] == 30
    with pytest.raises(LockdownError, match="replayed"):
        verifier.verify(token, "POST", BODY, now=now)
    refused = {
        "another upstream": signer.mint("db", "POST", BODY, now=now),
        "another body": signer.mint("files", "POST", BODY + b" ", now=now),
        "another method": signer.mint("files", "DELETE", BODY, now=now),
        "expired": signer.mint("files", "POST", BODY, now=now - 120),
        "another key": PortalSigner.generate().mint("files", "POST", BODY, now=now),
        "tampered": token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1],
        "unsigned": jwt.encode(
            jwt.decode(token, options={"verify_signature": False}), None, algorithm="none"
        ),
        "HMAC": jwt.encode({**jwt.decode(token, options={"verify_signature": False}), "jti": "h"}, "k" * 32),
    }
    for why, bad in refused.items():
        with pytest.raises(LockdownError):
            verifier.verify(bad, "POST", BODY, now=now)
            pytest.fail(why)
    with pytest.raises(LockdownError):
        verifier.verify(None, "POST", BODY, now=now)
    long_lived = PortalSigner(signer.key, ttl=3600).mint("files", "POST", BODY, now=now)
    with pytest.raises(LockdownError, match="lifetime"):
        verifier.verify(long_lived, "POST", BODY, now=now)


def test_key_file_is_private_and_the_public_key_sits_beside_it(tmp_path: Path) -> None:
    path = tmp_path / "lockdown.pem"
    signer = PortalSigner.from_file(path)
    assert path.stat().st_mode & 0o077 == 0
    again = PortalSigner.from_file(path)
    public = load_public_key(path.with_suffix(".pub"))
    LockdownVerifier(public, audience="x").verify(again.mint("x", "GET", b""), "GET", b"")
    assert signer.public_pem() == again.public_pem()


@contextmanager
def locked_upstream(signer: PortalSigner) -> Iterator[tuple[str, LockdownMiddleware]]:
    server = MCPServer("whoami")

    @server.tool()
    def whoami(ctx: Context) -> dict[str, Any]:
        headers = {k.lower(): v for k, v in (ctx.headers or {}).items()}
        return {"portal_token": HEADER.lower() in headers, "authorization": headers.get("authorization")}

    verifier = LockdownVerifier(signer.key.public_key(), audience="whoami")
    app = LockdownMiddleware(server.streamable_http_app(), verifier)
    with serve(app, free_port()) as url:
        yield url + "/mcp", app


async def test_locked_upstream_serves_the_portal_and_refuses_everyone_else() -> None:
    signer = PortalSigner.generate()
    with locked_upstream(signer) as (upstream_url, app):
        # Through the portal: every request (initialize, lists, the call) carries a fresh token.
        portal = Portal(guard(), [UpstreamSection(name="whoami", url=upstream_url)], lockdown=signer)
        with portal_http(portal) as url:
            seen = await whoami(url, "tok-alice")
        assert seen == {"portal_token": True, "authorization": None}
        assert app.refused == 0
        # Directly, even with a token captured from an earlier request: refused before MCP runs.
        init, headers = json.dumps(INITIALIZE).encode(), MCP_HEADERS
        async with httpx.AsyncClient() as http:
            plain = await http.post(upstream_url, content=init, headers=headers)
            stale = signer.mint("whoami", "POST", b"{}")
            mismatched = await http.post(upstream_url, content=init, headers={**headers, HEADER: stale})
            other = signer.mint("files", "POST", init)
            wrong_aud = await http.post(upstream_url, content=init, headers={**headers, HEADER: other})
            good = signer.mint("whoami", "POST", init)
            accepted = await http.post(upstream_url, content=init, headers={**headers, HEADER: good})
            replayed = await http.post(upstream_url, content=init, headers={**headers, HEADER: good})
        assert [r.status_code for r in (plain, mismatched, wrong_aud, replayed)] == [403] * 4
        assert "through the portal" in plain.text and accepted.status_code == 200
        # A portal without the key cannot use the upstream at all: its items never show.
        async with Portal(guard(), [UpstreamSection(name="whoami", url=upstream_url)], start_timeout=3) as p:
            assert p.upstreams["whoami"].state != "up" and p.catalog_names() == []


def test_example_upstream_enforces_lockdown_from_its_key_file(tmp_path: Path) -> None:
    key = tmp_path / "portal.pem"
    signer = PortalSigner.from_file(key)
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            str(EXAMPLES / "whoami_server.py"),
            "--port",
            str(port),
            "--lockdown-key",
            str(key.with_suffix(".pub")),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}/mcp"
        deadline = time.monotonic() + 20
        while True:
            try:
                status = httpx.post(url, content=b"{}").status_code
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.1)
        assert status == 403
        body = b"{}"
        signed = httpx.post(url, content=body, headers={HEADER: signer.mint("whoami", "POST", body)})
        assert signed.status_code != 403  # past the lockdown: MCP itself answers (and rejects the junk body)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
