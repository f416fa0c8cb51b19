"""Outbound HTTP for key sets, discovery documents and introspection, hardened against SSRF.

Rules: https only (plain http only to a loopback address, and only when the
operator allowed it); no redirect to another origin; a host name is resolved
once, every answer must be a globally reachable unicast address
(:func:`is_public_address`, which also sees through IPv4 addresses wrapped in
IPv6: mapped, compatible, translated, 6to4, NAT64, Teredo) unless the operator
allowed private addresses, and the connection goes to the address that was
checked - the URL carries the pinned IP, while the Host header and TLS (SNI
and certificate verification) keep the original name - so a DNS answer that
changes after the check (rebinding) is never used. Bounded body size and total
time; any deviation raises :class:`FetchError`, which callers turn into a
refusal. Proxies and credentials from the environment are ignored so a stray
variable cannot reroute key fetching.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from dataclasses import dataclass
from typing import Any

import anyio
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class FetchError(Exception):
    """An outbound fetch was refused or failed."""


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    allow_insecure_loopback: bool = False
    #: also allow private, shared (100.64/10), unique-local and loopback addresses, for an
    #: identity provider on an internal network; link-local, multicast and the like stay refused
    allow_private_addresses: bool = False
    timeout: float = 5.0
    max_bytes: int = 512 * 1024
    max_redirects: int = 3


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
#: RFC 8215 local-use NAT64 prefix: the IPv4 address sits where the operator's prefix length puts it.
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
_COMPATIBLE = ipaddress.IPv6Network("::/96")
_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")
#: Cloud metadata services that are not link-local, refused even with private addresses allowed.
_METADATA = frozenset(ipaddress.ip_address(a) for a in ("100.100.100.200", "fd00:ec2::254"))


def _unwrap(address: IPAddress) -> list[IPAddress] | None:
    """The addresses a packet to ``address`` really reaches: the IPv4 address(es) embedded in
    an IPv6 transition form, else ``address`` itself; None for a form that cannot be judged."""
    if isinstance(address, ipaddress.IPv4Address):
        return [address]
    if address in _NAT64_LOCAL:
        return None
    low = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.ipv4_mapped is not None:
        return [address.ipv4_mapped]
    if address in _NAT64 or address in _TRANSLATED:
        return [low]
    if address in _COMPATIBLE and int(address) > 1:  # not :: or ::1, judged as themselves
        return [low]
    if address.sixtofour is not None:
        return [address.sixtofour]
    if address.teredo is not None:
        return list(address.teredo)
    return [address]


def address_allowed(address: IPAddress, *, private: bool = False, loopback: bool = False) -> bool:
    """Whether an outbound fetch may connect to ``address``.

    By default only globally reachable unicast addresses (``is_global``, after unwrapping
    IPv4-in-IPv6 forms); ``private`` adds private, shared, unique-local and loopback
    addresses, ``loopback`` adds loopback ones. Link-local, multicast, reserved, unspecified,
    site-local, documentation and known metadata addresses are never allowed.
    """
    inner = _unwrap(address)
    if inner is None:
        return False
    for ip in inner:
        if ip.is_loopback:
            if not (loopback or private):
                return False
            continue
        if (
            ip in _METADATA
            or ip.is_link_local
            or ip.is_multicast
            or ip.is_unspecified
            or ip.is_reserved
            or (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local)
        ):
            return False
        if not (ip.is_global or (private and _privately_routable(ip))):
            return False
    return True


_PRIVATE = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)


def _privately_routable(ip: IPAddress) -> bool:
    return any(ip.version == net.version and ip in net for net in _PRIVATE)


def is_public_address(address: IPAddress) -> bool:
    """The default rule: a globally reachable unicast address, seen through IPv6 wrappings."""
    return address_allowed(address)


def _parse_ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text.split("%")[0])
    except ValueError:
        return None


def _is_loopback(address: IPAddress) -> bool:
    inner = _unwrap(address)
    return inner is not None and all(ip.is_loopback for ip in inner)


class SafeFetcher:
    """Fetches JSON under a :class:`FetchPolicy`. One instance per configured endpoint is fine."""

    def __init__(
        self, policy: FetchPolicy | None = None, *, transport: httpx.AsyncBaseTransport | None = None
    ):
        self.policy = policy or FetchPolicy()
        self._transport = transport

    async def check_url(self, url: str) -> httpx.URL:
        """Raise FetchError unless ``url`` may be fetched under the policy."""
        return (await self._checked(url))[0]

    async def _checked(self, url: str) -> tuple[httpx.URL, list[IPAddress]]:
        """``url`` parsed, and the checked addresses (in resolver order) to connect to."""
        try:
            parsed = httpx.URL(url)
        except Exception as exc:
            raise FetchError(f"invalid URL {url!r}: {exc}") from None
        host = parsed.host
        if not host or parsed.userinfo:
            raise FetchError(f"URL {url!r} must name a host and carry no credentials")
        if parsed.scheme not in ("http", "https"):
            raise FetchError(f"refusing scheme {parsed.scheme!r} for {url!r}")
        literal = _parse_ip(host)
        if parsed.scheme == "http" and not (
            self.policy.allow_insecure_loopback
            and (host.rstrip(".") == "localhost" or (literal is not None and _is_loopback(literal)))
        ):
            allowed = " outside loopback" if self.policy.allow_insecure_loopback else ""
            raise FetchError(f"refusing plain http for {url!r} (https required{allowed})")
        addresses = [literal] if literal is not None else await self._resolve(parsed)
        # The loopback opt-in covers a name only when every answer is loopback.
        loopback = self.policy.allow_insecure_loopback and all(_is_loopback(a) for a in addresses)
        if parsed.scheme == "http" and not loopback:
            raise FetchError(f"refusing plain http for {url!r}: {host!r} is not only loopback")
        for address in addresses:
            if not address_allowed(address, private=self.policy.allow_private_addresses, loopback=loopback):
                raise FetchError(f"{host!r} resolves to non-public address {address}")
        return parsed, addresses

    async def _resolve(self, url: httpx.URL) -> list[IPAddress]:
        name = url.raw_host.decode("ascii")
        try:
            infos = await anyio.getaddrinfo(name, url.port or 443, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise FetchError(f"cannot resolve {url.host!r}: {exc}") from None
        addresses: list[IPAddress] = []
        for info in infos:
            address = _parse_ip(str(info[4][0]))
            if address is None:
                raise FetchError(f"{url.host!r} resolves to an unreadable address {info[4][0]!r}")
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise FetchError(f"cannot resolve {url.host!r}: no address")
        return addresses

    async def get_json(self, url: str) -> dict[str, Any]:
        return await self._request("GET", url)

    async def post_form(
        self, url: str, data: dict[str, str], *, auth: tuple[str, str] | None = None
    ) -> dict[str, Any]:
        return await self._request("POST", url, data=data, auth=auth)

    async def post_json(self, url: str, document: Any) -> int:
        """POST ``document`` as JSON under the same rules (redirects are not followed); the status.

        For notifications (webhooks), whose answer is not read.
        """
        body = json.dumps(document, ensure_ascii=True).encode()
        try:
            with anyio.fail_after(self.policy.timeout):
                current, addresses = await self._checked(url)
                async with httpx.AsyncClient(
                    transport=self._transport,
                    trust_env=False,
                    follow_redirects=False,
                    timeout=self.policy.timeout,
                ) as client:
                    response = await self._send(client, "POST", current, addresses, None, None, body)
                    await response.aclose()
                    return response.status_code
        except FetchError:
            raise
        except TimeoutError:
            raise FetchError(f"{url}: no answer within {self.policy.timeout:g}s") from None
        except Exception as exc:
            raise FetchError(f"{url}: {type(exc).__name__}: {exc}") from None

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

    async def _send(
        self,
        client: httpx.AsyncClient,
        method: str,
        url: httpx.URL,
        addresses: list[IPAddress],
        data: dict[str, str] | None,
        auth: tuple[str, str] | None,
        content: bytes | None = None,
    ) -> httpx.Response:
        """Send to the checked addresses (the next one only if connecting fails), never to
        whatever the name resolves to now: the IP goes in the URL, the name stays in the
        Host header and in TLS (SNI, and the certificate is verified against it)."""
        last: httpx.ConnectError | None = None
        for address in addresses:
            headers = {"Accept": "application/json"}
            if content is not None:
                headers["Content-Type"] = "application/json"
            extensions: dict[str, Any] = {}
            if _parse_ip(url.host) is None:
                headers["Host"] = url.netloc.decode("ascii")
                extensions["sni_hostname"] = url.raw_host.decode("ascii")
            request = client.build_request(
                method,
                url.copy_with(host=str(address)),
                data=data,
                content=content,
                headers=headers,
                extensions=extensions,
            )
            try:
                return await client.send(request, stream=True, auth=auth)
            except httpx.ConnectError as exc:
                last = exc
        assert last is not None
        raise last

    async def _follow(
        self, method: str, url: str, data: dict[str, str] | None, auth: tuple[str, str] | None
    ) -> dict[str, Any]:
        current, addresses = await self._checked(url)
        origin = (current.scheme, current.host, current.port)
        async with httpx.AsyncClient(
            transport=self._transport,
            trust_env=False,
            follow_redirects=False,
            timeout=self.policy.timeout,
        ) as client:
            for _ in range(self.policy.max_redirects + 1):
                response = await self._send(client, method, current, addresses, data, auth)
                try:
                    if response.is_redirect:
                        target = current.join(response.headers.get("location", ""))
                        if (target.scheme, target.host, target.port) != origin:
                            raise FetchError(f"{url}: refusing redirect to another origin ({target})")
                        current, addresses = await self._checked(str(target))
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
