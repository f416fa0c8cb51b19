"""SSRF of the outbound fetches (JWKS, OIDC discovery, introspection): address rules and DNS rebinding.

No traffic leaves the machine: names resolve through a fake ``socket.getaddrinfo`` (unknown
names fail, never reaching a DNS server), public answers are only ever handed to an
``httpx.MockTransport``, and real connections go to servers on 127.0.0.1.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_guard.authn import fetch
from mcp_guard.authn.fetch import FetchError, FetchPolicy, SafeFetcher

PUBLIC = "93.184.215.14"  # a global address; only ever given to a MockTransport
METADATA = "169.254.169.254"
TEREDO_SERVER = ipaddress.IPv4Address("65.54.227.120")

_real_getaddrinfo = socket.getaddrinfo


class FakeDNS:
    """Answers for names, one list per lookup (the last one repeats); IP literals pass through."""

    def __init__(self) -> None:
        self.answers: dict[str, list[list[str]]] = {}
        self.lookups: list[str] = []

    def set(self, name: str, *answers: list[str]) -> None:
        self.answers[name] = list(answers)

    def getaddrinfo(
        self, host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
    ) -> list[Any]:
        name = host.decode() if isinstance(host, bytes) else str(host)
        try:
            ipaddress.ip_address(name.split("%")[0])
        except ValueError:
            pass
        else:
            return _real_getaddrinfo(host, port, family, type, proto, flags | socket.AI_NUMERICHOST)
        self.lookups.append(name)
        queue = self.answers.get(name.rstrip(".").lower())
        if not queue:
            raise socket.gaierror(socket.EAI_NONAME, f"fake DNS: no answer for {name!r}")
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        out: list[Any] = []
        for address in answer:
            ip = ipaddress.ip_address(address)
            if ip.version == 6:
                out.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, int(port or 0), 0, 0)))
            else:
                out.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port or 0))))
        return out


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDNS:
    fake = FakeDNS()
    monkeypatch.setattr(socket, "getaddrinfo", fake.getaddrinfo)
    return fake


class Seen:
    """A MockTransport that records where each request would have gone."""

    def __init__(self, answers: list[httpx.Response] | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self._answers = answers or []
        self.transport = httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self._answers:
            return self._answers.pop(0)
        return httpx.Response(200, json={"keys": []})


# -- address rules ---------------------------------------------------------------------------------

REFUSED = [
    "100.100.100.200",  # Alibaba metadata, in 100.64.0.0/10 (shared address space)
    "100.64.0.1",
    METADATA,
    "127.0.0.1",
    "10.0.0.5",
    "0.0.0.0",
    "224.0.0.1",
    "240.0.0.1",
    "255.255.255.255",
    "2002:a9fe:a9fe::",  # 6to4 of 169.254.169.254
    "2002:6464:64c8::1",  # 6to4 of 100.100.100.200
    "64:ff9b::a9fe:a9fe",  # NAT64 well-known prefix
    "64:ff9b::6464:64c8",
    "64:ff9b:1::a9fe:a9fe",  # NAT64 local-use prefix
    "64:ff9b:1:a9fe:a9:fe00::",  # ... with a /48 layout
    "::ffff:169.254.169.254",  # IPv4-mapped
    "::ffff:100.100.100.200",
    "::169.254.169.254",  # IPv4-compatible (deprecated)
    "::ffff:0:169.254.169.254",  # IPv4-translated (SIIT)
    "2001:0:4136:e378:8000:63bf:5601:5601",  # Teredo, client 169.254.169.254
    "::",
    "::1",
    "fe80::1",
    "fec0::1",  # site-local (deprecated)
    "fd00:ec2::254",  # AWS IPv6 metadata (unique local)
    "ff02::1",
    "2001:db8::1",
]


@pytest.mark.parametrize("address", REFUSED)
async def test_address_forms_refused_as_literal(address: str) -> None:
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(FetchError):
        await SafeFetcher().check_url(f"https://{host}/jwks.json")


@pytest.mark.parametrize("address", REFUSED)
async def test_address_forms_refused_when_resolved(address: str, dns: FakeDNS) -> None:
    dns.set("idp.example", [address])
    seen = Seen()
    with pytest.raises(FetchError, match="non-public"):
        await SafeFetcher(transport=seen.transport).get_json("https://idp.example/jwks.json")
    assert seen.requests == []


@pytest.mark.parametrize("address", REFUSED)
def test_predicate_refuses(address: str) -> None:
    assert not fetch.is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address", [PUBLIC, "8.8.8.8", "2606:4700:4700::1111", "2002:5db8:d70e::1", "64:ff9b::5db8:d70e"]
)
def test_predicate_allows_public(address: str) -> None:
    assert fetch.is_public_address(ipaddress.ip_address(address))


def _wrappings(v4: ipaddress.IPv4Address) -> dict[str, ipaddress.IPv6Address]:
    n = int(v4)
    teredo_client = n ^ 0xFFFFFFFF
    return {
        "mapped": ipaddress.IPv6Address(0xFFFF << 32 | n),
        "compat": ipaddress.IPv6Address(n),
        "translated": ipaddress.IPv6Address(0xFFFF << 48 | n),
        "6to4": ipaddress.IPv6Address(0x2002 << 112 | n << 80 | 1),
        "nat64": ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b::")) | n),
        "teredo": ipaddress.IPv6Address(0x20010000 << 96 | int(TEREDO_SERVER) << 64 | teredo_client),
    }


@settings(max_examples=300, deadline=None)
@given(st.ip_addresses(v=4))
def test_embedded_ipv4_verdict_equals_the_ipv4_verdict(v4: ipaddress.IPv4Address) -> None:
    expected = fetch.is_public_address(v4)
    for form, wrapped in _wrappings(v4).items():
        assert fetch.is_public_address(wrapped) == expected, (form, str(wrapped))
    # The local-use NAT64 prefix embeds at an operator-chosen length: always refused.
    assert not fetch.is_public_address(
        ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b:1::")) | int(v4))
    )


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["169.254.0.0/16", "100.64.0.0/10", "10.0.0.0/8", "127.0.0.0/8"]), st.data())
def test_special_ipv4_ranges_refused_in_every_wrapping(network: str, data: st.DataObject) -> None:
    net = ipaddress.IPv4Network(network)
    v4 = ipaddress.IPv4Address(data.draw(st.integers(int(net.network_address), int(net.broadcast_address))))
    for form, wrapped in _wrappings(v4).items():
        assert not fetch.is_public_address(wrapped), (form, str(wrapped))


async def test_all_answers_must_be_public(dns: FakeDNS) -> None:
    dns.set("idp.example", [PUBLIC, METADATA])
    with pytest.raises(FetchError, match="non-public"):
        await SafeFetcher(transport=Seen().transport).get_json("https://idp.example/jwks.json")


async def test_numeric_host_spellings_are_resolved_and_checked(dns: FakeDNS) -> None:
    for spelling in ["2130706433", "0x7f000001", "0177.0.0.1", "127.1"]:
        dns.set(spelling, ["127.0.0.1"])  # what inet_aton makes of them
        with pytest.raises(FetchError):
            await SafeFetcher(transport=Seen().transport).get_json(f"https://{spelling}/jwks.json")


# -- DNS rebinding: the connection goes to the address that was checked -----------------------------


async def test_rebinding_connects_to_the_checked_address_only(dns: FakeDNS) -> None:
    dns.set("idp.example", [PUBLIC], [METADATA])  # public when checked, metadata afterwards
    seen = Seen()
    document = await SafeFetcher(transport=seen.transport).get_json("https://idp.example:8443/jwks.json")
    assert document == {"keys": []}
    assert len(seen.requests) == 1
    request = seen.requests[0]
    assert request.url.host == PUBLIC and request.url.port == 8443
    assert request.headers["host"] == "idp.example:8443"
    assert request.extensions["sni_hostname"] == "idp.example"
    assert dns.lookups == ["idp.example"]  # resolved once, by the check


async def test_rebinding_between_redirects_is_checked_again(dns: FakeDNS) -> None:
    dns.set("idp.example", [PUBLIC], [METADATA])
    seen = Seen([httpx.Response(302, headers={"Location": "/jwks.json"})])
    with pytest.raises(FetchError, match="non-public"):
        await SafeFetcher(transport=seen.transport).get_json("https://idp.example/start")
    assert [r.url.host for r in seen.requests] == [PUBLIC]


async def test_ipv6_answer_pinned_with_brackets(dns: FakeDNS) -> None:
    dns.set("idp.example", ["2606:4700:4700::1111"])
    seen = Seen()
    await SafeFetcher(transport=seen.transport).post_form("https://idp.example/introspect", {"token": "t"})
    request = seen.requests[0]
    assert request.url.host == "2606:4700:4700::1111" and request.method == "POST"
    assert request.headers["host"] == "idp.example" and request.extensions["sni_hostname"] == "idp.example"


# -- the local opt-ins still work, over a real connection to 127.0.0.1 ------------------------------


def _certificate(tmp: Path) -> tuple[Path, Path, Path]:
    """A CA and a leaf for ``idp.example`` (written as PEM files): CA, leaf chain, leaf key."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "idp.example")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("idp.example")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (tmp / "ca.pem").write_bytes(ca.public_bytes(pem))
    (tmp / "leaf.pem").write_bytes(leaf.public_bytes(pem))
    (tmp / "leaf.key").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return tmp / "ca.pem", tmp / "leaf.pem", tmp / "leaf.key"


class TLSServer:
    def __init__(self, tmp: Path) -> None:
        self.ca, chain, key = _certificate(tmp)
        self.hosts: list[str] = []
        self.sni: list[str | None] = []
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(chain, key)

        def note_sni(sock: Any, name: str | None, ctx: Any) -> None:
            self.sni.append(name)

        context.sni_callback = note_sni
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                server.hosts.append(self.headers.get("Host", ""))
                body = json.dumps({"keys": [], "path": self.path}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def client_transport(self) -> httpx.AsyncHTTPTransport:
        return httpx.AsyncHTTPTransport(verify=ssl.create_default_context(cafile=str(self.ca)))

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[TLSServer]:
    server = TLSServer(tmp_path)
    yield server
    server.close()


PRIVATE_OK = FetchPolicy(allow_private_addresses=True, timeout=5.0)


async def test_private_opt_in_pins_and_verifies_tls_for_the_name(tls_server: TLSServer, dns: FakeDNS) -> None:
    # Checked answer 127.0.0.1 (allowed by the opt-in); any later lookup would say 127.0.0.2,
    # where nothing listens: the fetch only succeeds over the pinned address.
    dns.set("idp.example", ["127.0.0.1"], ["127.0.0.2"])
    fetcher = SafeFetcher(PRIVATE_OK, transport=tls_server.client_transport())
    url = f"https://idp.example:{tls_server.port}/jwks.json"
    assert (await fetcher.get_json(url))["path"] == "/jwks.json"
    assert tls_server.hosts == [f"idp.example:{tls_server.port}"]
    assert tls_server.sni == ["idp.example"]
    assert dns.lookups == ["idp.example"]
    # The same name without the opt-in is refused before any connection.
    with pytest.raises(FetchError, match="non-public"):
        await SafeFetcher(transport=tls_server.client_transport()).get_json(url)
    assert len(tls_server.hosts) == 1


async def test_certificate_is_verified_against_the_original_name(tls_server: TLSServer, dns: FakeDNS) -> None:
    dns.set("other.example", ["127.0.0.1"])
    fetcher = SafeFetcher(PRIVATE_OK, transport=tls_server.client_transport())
    with pytest.raises(FetchError, match=r"(?i)certificate"):
        await fetcher.get_json(f"https://other.example:{tls_server.port}/jwks.json")
    assert tls_server.hosts == []


async def test_opt_in_does_not_open_link_local_or_metadata(dns: FakeDNS) -> None:
    for address in [METADATA, "fe80::1", "100.100.100.200", "fd00:ec2::254", "224.0.0.1"]:
        dns.set("idp.example", [address])
        with pytest.raises(FetchError):
            await SafeFetcher(PRIVATE_OK, transport=Seen().transport).get_json("https://idp.example/x")


async def test_loopback_opt_in_still_works_for_localhost(dns: FakeDNS) -> None:
    policy = FetchPolicy(allow_insecure_loopback=True, timeout=5.0)
    dns.set("localhost", ["127.0.0.1"], ["127.0.0.2"])
    seen = Seen()
    await SafeFetcher(policy, transport=seen.transport).get_json("http://localhost:8080/jwks.json")
    assert seen.requests[0].url.host == "127.0.0.1" and seen.requests[0].headers["host"] == "localhost:8080"
    # A "localhost" that resolves elsewhere is not loopback.
    dns.set("localhost", [PUBLIC])
    with pytest.raises(FetchError):
        await SafeFetcher(policy, transport=Seen().transport).get_json("http://localhost:8080/jwks.json")
