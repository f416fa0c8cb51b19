"""Outbound HTTP for key sets, discovery documents and introspection, hardened against SSRF.

Rules: https only (plain http only to a loopback address, and only when the
operator allowed it); no redirect to another origin; host names resolving to
private, link-local or otherwise special addresses refused unless allowed;
bounded body size and total time; any deviation raises :class:`FetchError`,
which callers turn into a refusal. Proxies and credentials from the environment
are ignored so a stray variable cannot reroute key fetching.

Residual risk, stated: the address check and the connection resolve the name
separately, so a DNS answer that changes between them (rebinding) is not
caught; keep ``allow_private_addresses`` off and use names you control.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from typing import Any

import anyio
import httpx


class FetchError(Exception):
    """An outbound fetch was refused or failed."""


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    allow_insecure_loopback: bool = False
    allow_private_addresses: bool = False
    timeout: float = 5.0
    max_bytes: int = 512 * 1024
    max_redirects: int = 3


def _special(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return bool(
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def _is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SafeFetcher:
    """Fetches JSON under a :class:`FetchPolicy`. One instance per configured endpoint is fine."""

    def __init__(
        self, policy: FetchPolicy | None = None, *, transport: httpx.AsyncBaseTransport | None = None
    ):
        self.policy = policy or FetchPolicy()
        self._transport = transport

    async def check_url(self, url: str) -> httpx.URL:
        """Raise FetchError unless ``url`` may be fetched under the policy."""
        try:
            parsed = httpx.URL(url)
        except Exception as exc:
            raise FetchError(f"invalid URL {url!r}: {exc}") from None
        host = parsed.host
        if not host or parsed.userinfo:
            raise FetchError(f"URL {url!r} must name a host and carry no credentials")
        loopback = _is_loopback_host(host)
        if parsed.scheme == "http":
            if not (loopback and self.policy.allow_insecure_loopback):
                allowed = " outside loopback" if self.policy.allow_insecure_loopback else ""
                raise FetchError(f"refusing plain http for {url!r} (https required{allowed})")
            return parsed
        if parsed.scheme != "https":
            raise FetchError(f"refusing scheme {parsed.scheme!r} for {url!r}")
        if loopback and self.policy.allow_insecure_loopback:
            return parsed
        if not self.policy.allow_private_addresses:
            port = parsed.port or 443
            try:
                infos = await anyio.getaddrinfo(host, port)
            except OSError as exc:
                raise FetchError(f"cannot resolve {host!r}: {exc}") from None
            for info in infos:
                address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
                if _special(address):
                    raise FetchError(f"{host!r} resolves to non-public address {address}")
        return parsed

    async def get_json(self, url: str) -> dict[str, Any]:
        return await self._request("GET", url)

    async def post_form(
        self, url: str, data: dict[str, str], *, auth: tuple[str, str] | None = None
    ) -> dict[str, Any]:
        return await self._request("POST", url, data=data, auth=auth)

    async def _request(
        self,
        method: str,
        url: str,
        *,
        data: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
    ) -> dict[str, Any]:
        try:
            with anyio.fail_after(self.policy.timeout):
                return await self._follow(method, url, data, auth)
        except FetchError:
            raise
        except TimeoutError:
            raise FetchError(f"{url}: no answer within {self.policy.timeout:g}s") from None
        except Exception as exc:
            raise FetchError(f"{url}: {type(exc).__name__}: {exc}") from None

    async def _follow(
        self, method: str, url: str, data: dict[str, str] | None, auth: tuple[str, str] | None
    ) -> dict[str, Any]:
        current = await self.check_url(url)
        origin = (current.scheme, current.host, current.port)
        async with httpx.AsyncClient(
            transport=self._transport,
            trust_env=False,
            follow_redirects=False,
            timeout=self.policy.timeout,
        ) as client:
            for _ in range(self.policy.max_redirects + 1):
                request = client.build_request(
                    method,
                    current,
                    data=data,
                    headers={"Accept": "application/json"},
                )
                response = await client.send(request, stream=True, auth=auth)
                try:
                    if response.is_redirect:
                        target = current.join(response.headers.get("location", ""))
                        if (target.scheme, target.host, target.port) != origin:
                            raise FetchError(f"{url}: refusing redirect to another origin ({target})")
                        current = await self.check_url(str(target))
                        continue
                    if response.status_code != 200:
                        raise FetchError(f"{current}: HTTP {response.status_code}")
                    body = bytearray()
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > self.policy.max_bytes:
                            raise FetchError(f"{current}: response larger than {self.policy.max_bytes} bytes")
                finally:
                    await response.aclose()
                try:
                    document = json.loads(bytes(body))
                except ValueError as exc:
                    raise FetchError(f"{current}: response is not JSON ({exc})") from None
                if not isinstance(document, dict):
                    raise FetchError(f"{current}: expected a JSON object")
                return document
        raise FetchError(f"{url}: too many redirects")
