"""SSRF rules of outbound fetches (JWKS, discovery, introspection), against a real local server."""

from __future__ import annotations

import pytest

from mcp_guard.authn.fetch import FetchError, FetchPolicy, SafeFetcher

from .test_authn_jwt import JWKSServer, idp, server  # noqa: F401 - fixtures

LOOPBACK = FetchPolicy(allow_insecure_loopback=True, timeout=2.0, max_bytes=64 * 1024)


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/jwks.json",  # plain http off loopback
        "ftp://127.0.0.1/jwks.json",
        "file:///etc/passwd",
        "https://user:pw@example.com/jwks.json",
        "https://169.254.169.254/latest/meta-data",  # cloud metadata
        "https://10.0.0.5/jwks.json",
        "https://[::1]/jwks.json",
        "https://localhost/jwks.json",
        "https://[::ffff:192.168.1.1]/x",
    ],
)
async def test_refused_urls(url: str) -> None:
    with pytest.raises(FetchError):
        await SafeFetcher().check_url(url)


async def test_loopback_http_needs_explicit_permission(server: JWKSServer) -> None:  # noqa: F811
    with pytest.raises(FetchError, match="https required"):
        await SafeFetcher().get_json(server.url + "/jwks.json")
    document = await SafeFetcher(LOOPBACK).get_json(server.url + "/jwks.json")
    assert len(document["keys"]) == 3


async def test_same_origin_redirect_followed_cross_origin_refused(server: JWKSServer) -> None:  # noqa: F811
    assert "keys" in await SafeFetcher(LOOPBACK).get_json(server.url + "/redirect-same")
    with pytest.raises(FetchError, match="another origin"):
        await SafeFetcher(LOOPBACK).get_json(server.url + "/redirect-away")


async def test_size_limit(server: JWKSServer) -> None:  # noqa: F811
    with pytest.raises(FetchError, match="larger than"):
        await SafeFetcher(LOOPBACK).get_json(server.url + "/big")


async def test_time_limit(server: JWKSServer) -> None:  # noqa: F811
    policy = FetchPolicy(allow_insecure_loopback=True, timeout=0.5)
    with pytest.raises(FetchError, match=r"no answer within|Timeout"):
        await SafeFetcher(policy).get_json(server.url + "/slow")


async def test_http_errors_and_non_json(server: JWKSServer) -> None:  # noqa: F811
    with pytest.raises(FetchError, match="HTTP 404"):
        await SafeFetcher(LOOPBACK).get_json(server.url + "/missing")
    server.down = True
    with pytest.raises(FetchError, match="HTTP 503"):
        await SafeFetcher(LOOPBACK).get_json(server.url + "/jwks.json")


async def test_connection_refused_is_fetch_error() -> None:
    with pytest.raises(FetchError):
        await SafeFetcher(LOOPBACK).get_json("http://127.0.0.1:9/jwks.json")
