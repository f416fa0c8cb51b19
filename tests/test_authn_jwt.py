"""JWT issuers against a real JWKS server on 127.0.0.1 that rotates keys: the attack suite.

Every forged or invalid token must be refused by the chain *and* leave an
``authn`` audit event naming the reason.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from mcp_guard.authn import AuthenticatorChain, build_authentication
from mcp_guard.authn.config import AuthnSettings
from mcp_guard.errors import AuthenticationError
from mcp_guard.model import AuditEvent
from mcp_guard.protocols import Credential
from mcp_guard.store import MemoryStore

ISSUER = "https://idp.test"
AUDIENCE = "mcp-guard"


class Recorder:
    """An Auditor that keeps events in memory."""

    synchronous = False

    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    def record(self, event: AuditEvent) -> None:
        self.events.append(event)

    async def record_sync(self, event: AuditEvent) -> None:
        self.events.append(event)

    async def aclose(self) -> None:
        pass


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def public_jwk(key: Any, kid: str) -> dict[str, Any]:
    pub = key.public_key()
    if isinstance(pub, rsa.RSAPublicKey):
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(pub, as_dict=True)
    elif isinstance(pub, ec.EllipticCurvePublicKey):
        jwk = jwt.algorithms.ECAlgorithm.to_jwk(pub, as_dict=True)
    else:
        jwk = jwt.algorithms.OKPAlgorithm.to_jwk(pub, as_dict=True)
    return {**jwk, "kid": kid}


class JWKSServer:
    """A tiny IdP: JWKS, discovery, a cross-origin redirect and an oversized answer."""

    def __init__(self) -> None:
        self.keys: dict[str, Any] = {}
        self.fetches = 0
        self.down = False
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path == "/jwks.json":
                    server.fetches += 1
                    if server.down:
                        self._send(503, b"{}")
                        return
                    doc = {"keys": [public_jwk(k, kid) for kid, k in server.keys.items()]}
                    self._send(200, json.dumps(doc).encode())
                elif self.path == "/.well-known/openid-configuration":
                    doc = {"issuer": server.issuer, "jwks_uri": server.url + "/jwks.json"}
                    self._send(200, json.dumps(doc).encode())
                elif self.path == "/redirect-away":
                    self._send(302, b"", {"Location": f"http://127.0.0.2:{server.port}/jwks.json"})
                elif self.path == "/redirect-same":
                    self._send(302, b"", {"Location": "/jwks.json"})
                elif self.path == "/big":
                    self._send(200, b'{"keys": [' + b" " * 2_000_000 + b"]}")
                elif self.path == "/slow":
                    time.sleep(3)
                    self._send(200, b'{"keys": []}')
                else:
                    self._send(404, b"{}")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                form = dict(p.split("=", 1) for p in self.rfile.read(length).decode().split("&") if "=" in p)
                server.introspections.append((self.headers.get("Authorization"), form))
                active = form.get("token") in server.active_tokens
                body: dict[str, Any] = {"active": active}
                if active:
                    body.update(server.active_tokens[form["token"]])
                self._send(200, json.dumps(body).encode())

        self.introspections: list[tuple[str | None, dict[str, str]]] = []
        self.active_tokens: dict[str, dict[str, Any]] = {}
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.issuer = ISSUER
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> JWKSServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_KEY_2 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
ED_KEY = ed25519.Ed25519PrivateKey.generate()
ATTACKER = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def idp() -> Iterator[JWKSServer]:
    server = JWKSServer().start()
    yield server
    server.stop()


@pytest.fixture
def server(idp: JWKSServer) -> JWKSServer:
    idp.keys = {"rsa-1": RSA_KEY, "ec-1": EC_KEY, "ed-1": ED_KEY}
    idp.fetches = 0
    idp.down = False
    return idp


def settings(url: str, **extra: Any) -> AuthnSettings:
    jwt_cfg: dict[str, Any] = {
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "jwks_url": url + "/jwks.json",
        "algorithms": ["RS256", "ES256", "EdDSA"],
        "allow_insecure_loopback": True,
        "jwks_min_refetch": 0,
        "roles_claim": "roles",
        "tenant_claim": "org",
        "attribute_claims": {"device_compliant": "device.compliant"},
    }
    jwt_cfg.update(extra)
    return AuthnSettings.model_validate({"jwt": [jwt_cfg], "stored_api_keys": False})


@pytest.fixture
def auditor() -> Recorder:
    return Recorder()


@pytest.fixture
def chain(server: JWKSServer, auditor: Recorder) -> AuthenticatorChain:
    return build_authentication(settings(server.url), MemoryStore(), Path("."), auditor=auditor)


def claims(**over: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice",
        "iat": now,
        "exp": now + 300,
        "jti": "j-1",
        "roles": ["analyst"],
        "org": "acme",
        "amr": ["pwd", "otp"],
        "auth_time": now - 10,
        "device": {"compliant": True},
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def sign(key: Any, alg: str, kid: str | None, **over: Any) -> str:
    headers = {"kid": kid} if kid is not None else {}
    return jwt.encode(claims(**over), key, algorithm=alg, headers=headers)


async def refused(chain: AuthenticatorChain, auditor: Recorder, token: str, fragment: str) -> None:
    before = len(auditor.events)
    with pytest.raises(AuthenticationError) as info:
        await chain.resolve(Credential(token, source="http", ip="198.51.100.7"))
    assert fragment in info.value.reason
    assert len(auditor.events) == before + 1
    event = auditor.events[-1]
    assert event.event == "authn" and event.decision == "deny"
    assert fragment in event.reasons[0]
    assert event.source_ip == "198.51.100.7"


@pytest.mark.parametrize(
    ("key", "alg", "kid"), [(RSA_KEY, "RS256", "rsa-1"), (EC_KEY, "ES256", "ec-1"), (ED_KEY, "EdDSA", "ed-1")]
)
async def test_valid_tokens_map_claims(chain: AuthenticatorChain, key: Any, alg: str, kid: str) -> None:
    principal = await chain.resolve(Credential(sign(key, alg, kid)))
    assert principal.subject == "alice"
    assert principal.roles == {"analyst"}
    assert principal.tenant == "acme"
    assert principal.mfa is True
    assert principal.amr == ("otp", "pwd")
    assert principal.auth_time is not None
    assert principal.attributes["device_compliant"] is True
    assert principal.credential_id == "j-1"
    assert principal.issuer == ISSUER
    assert principal.expires_at is not None and principal.expires_at > time.time()


async def test_alg_none_refused(chain: AuthenticatorChain, auditor: Recorder) -> None:
    header = b64(json.dumps({"alg": "none", "typ": "JWT", "kid": "rsa-1"}).encode())
    token = f"{header}.{b64(json.dumps(claims()).encode())}."
    await refused(chain, auditor, token, "algorithm 'none' not allowed")


async def test_hs256_signed_with_rsa_public_key_refused(chain: AuthenticatorChain, auditor: Recorder) -> None:
    pem = RSA_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}).encode())
    body = b64(json.dumps(claims()).encode())
    mac = hmac.new(pem, f"{header}.{body}".encode(), hashlib.sha256).digest()
    await refused(chain, auditor, f"{header}.{body}.{b64(mac)}", "algorithm 'HS256' not allowed")


async def test_algorithm_key_type_confusion_refused(chain: AuthenticatorChain, auditor: Recorder) -> None:
    # ES256 header but the kid names the RSA key: no key of that type exists under that kid.
    token = sign(EC_KEY, "ES256", "rsa-1")
    await refused(chain, auditor, token, "no ES256 key with kid 'rsa-1'")


async def test_bad_signature_refused(chain: AuthenticatorChain, auditor: Recorder) -> None:
    await refused(chain, auditor, sign(ATTACKER, "RS256", "rsa-1"), "bad token signature")
    token = sign(RSA_KEY, "RS256", "rsa-1")
    head, _body, sig = token.split(".")
    tampered = b64(json.dumps(claims(roles=["admin"])).encode())
    await refused(chain, auditor, f"{head}.{tampered}.{sig}", "bad token signature")


async def test_expired_refused(chain: AuthenticatorChain, auditor: Recorder) -> None:
    await refused(
        chain, auditor, sign(RSA_KEY, "RS256", "rsa-1", exp=int(time.time()) - 120), "token expired"
    )


async def test_nbf_in_future_refused(chain: AuthenticatorChain, auditor: Recorder) -> None:
    await refused(
        chain, auditor, sign(RSA_KEY, "RS256", "rsa-1", nbf=int(time.time()) + 600), "not yet valid"
    )


async def test_wrong_issuer_refused(chain: AuthenticatorChain, auditor: Recorder) -> None:
    token = sign(RSA_KEY, "RS256", "rsa-1", iss="https://evil.test")
    await refused(chain, auditor, token, "not recognised by any authenticator")


async def test_wrong_audience_refused(chain: AuthenticatorChain, auditor: Recorder) -> None:
    await refused(chain, auditor, sign(RSA_KEY, "RS256", "rsa-1", aud="other-app"), "audience does not match")


async def test_missing_exp_refused(chain: AuthenticatorChain, auditor: Recorder) -> None:
    token = jwt.encode(
        {k: v for k, v in claims().items() if k != "exp"}, RSA_KEY, "RS256", headers={"kid": "rsa-1"}
    )
    await refused(chain, auditor, token, "lacks required claim 'exp'")


async def test_unknown_kid_refused(chain: AuthenticatorChain, auditor: Recorder) -> None:
    await refused(chain, auditor, sign(RSA_KEY, "RS256", "nope"), "no RS256 key with kid 'nope'")


@pytest.mark.parametrize("kid", ["../../etc/passwd", "x' OR '1'='1", "a" * 300, "k\nid", "$(reboot)"])
async def test_injection_looking_kid_refused_without_fetch(
    chain: AuthenticatorChain, auditor: Recorder, server: JWKSServer, kid: str
) -> None:
    await refused(chain, auditor, sign(RSA_KEY, "RS256", kid), "malformed kid")
    assert server.fetches == 0


async def test_non_string_kid_refused(chain: AuthenticatorChain, auditor: Recorder) -> None:
    header = b64(json.dumps({"alg": "RS256", "kid": 7}).encode())
    body = b64(json.dumps(claims()).encode())
    sig = jwt.api_jws.PyJWS().encode(b"", RSA_KEY, "RS256").split(".")[2]
    await refused(chain, auditor, f"{header}.{body}.{sig}", "malformed kid")


@pytest.mark.parametrize("header", ["jwk", "jku", "x5u", "x5c"])
async def test_key_pointing_headers_ignored(
    chain: AuthenticatorChain, auditor: Recorder, server: JWKSServer, header: str
) -> None:
    # Signed by the attacker, whose key is offered through the header: must not be used.
    values: dict[str, Any] = {
        "jwk": public_jwk(ATTACKER, "rsa-1"),
        "jku": server.url + "/attacker-jwks.json",
        "x5u": server.url + "/attacker.pem",
        "x5c": ["MIIB"],
    }
    token = jwt.encode(claims(), ATTACKER, "RS256", headers={"kid": "rsa-1", header: values[header]})
    await refused(chain, auditor, token, "bad token signature")
    # ... and a legitimately signed token carrying such a header is judged on its real signature only.
    good = jwt.encode(claims(), RSA_KEY, "RS256", headers={"kid": "rsa-1", header: values[header]})
    assert (await chain.resolve(Credential(good))).subject == "alice"


async def test_crit_header_refused(chain: AuthenticatorChain, auditor: Recorder) -> None:
    token = jwt.encode(claims(), RSA_KEY, "RS256", headers={"kid": "rsa-1", "crit": ["b64"], "b64": True})
    await refused(chain, auditor, token, "critical header")


async def test_oversized_token_refused(chain: AuthenticatorChain, auditor: Recorder) -> None:
    token = sign(RSA_KEY, "RS256", "rsa-1", padding="x" * 17_000)
    assert len(token) > 16 * 1024
    await refused(chain, auditor, token, "larger than 16384 bytes")


async def test_jwks_down_fails_closed(server: JWKSServer, auditor: Recorder) -> None:
    server.down = True
    chain = build_authentication(settings(server.url), MemoryStore(), Path("."), auditor=auditor)
    await refused(chain, auditor, sign(RSA_KEY, "RS256", "rsa-1"), "issuer keys unavailable")


async def test_jwks_unreachable_fails_closed(auditor: Recorder) -> None:
    chain = build_authentication(
        settings("http://127.0.0.1:9", fetch_timeout=1), MemoryStore(), Path("."), auditor=auditor
    )
    await refused(chain, auditor, sign(RSA_KEY, "RS256", "rsa-1"), "issuer keys unavailable")


async def test_revoked_jti_refused_even_when_cached(chain: AuthenticatorChain, auditor: Recorder) -> None:
    token = sign(RSA_KEY, "RS256", "rsa-1", jti="to-revoke")
    assert (await chain.resolve(Credential(token))).subject == "alice"
    await chain.revocations.revoke("to-revoke")
    await refused(chain, auditor, token, "credential to-revoke is revoked")


async def test_rotation_picks_up_new_key_and_rate_limits_refetch(
    server: JWKSServer, auditor: Recorder
) -> None:
    chain = build_authentication(
        settings(server.url, jwks_min_refetch=60), MemoryStore(), Path("."), auditor=auditor
    )
    assert (await chain.resolve(Credential(sign(RSA_KEY, "RS256", "rsa-1")))).subject == "alice"
    assert server.fetches == 1
    # Unknown kids inside the refetch interval do not reach the IdP again.
    for i in range(5):
        await refused(chain, auditor, sign(RSA_KEY, "RS256", f"junk-{i}"), "no RS256 key")
    assert server.fetches == 1


async def test_rotation_new_kid_fetched(server: JWKSServer, auditor: Recorder) -> None:
    chain = build_authentication(settings(server.url), MemoryStore(), Path("."), auditor=auditor)
    assert (await chain.resolve(Credential(sign(RSA_KEY, "RS256", "rsa-1")))).subject == "alice"
    server.keys = {"rsa-2": RSA_KEY_2}  # the IdP rotates and drops the old key
    assert (await chain.resolve(Credential(sign(RSA_KEY_2, "RS256", "rsa-2", jti="j-2")))).subject == "alice"
    assert server.fetches == 2
    # The old key is gone from the refreshed set: new tokens signed with it are refused.
    await refused(chain, auditor, sign(RSA_KEY, "RS256", "rsa-1", jti="j-3"), "no RS256 key with kid 'rsa-1'")


async def test_discovery(server: JWKSServer) -> None:
    cfg = settings(server.url)
    raw = cfg.jwt[0].model_dump()
    raw.update(jwks_url=None, discovery=True, issuer=server.url)
    s = AuthnSettings.model_validate({"jwt": [raw], "stored_api_keys": False})
    chain = build_authentication(s, MemoryStore(), Path("."))
    server.issuer = server.url
    try:
        principal = await chain.resolve(Credential(sign(ED_KEY, "EdDSA", "ed-1", iss=server.url)))
    finally:
        server.issuer = ISSUER
    assert principal.subject == "alice"


async def test_discovery_issuer_mismatch_fails_closed(server: JWKSServer, auditor: Recorder) -> None:
    raw = settings(server.url).jwt[0].model_dump()
    raw.update(jwks_url=None, discovery=True, issuer=server.url)  # the document names ISSUER instead
    s = AuthnSettings.model_validate({"jwt": [raw], "stored_api_keys": False})
    chain = build_authentication(s, MemoryStore(), Path("."), auditor=auditor)
    await refused(chain, auditor, sign(ED_KEY, "EdDSA", "ed-1", iss=server.url), "issuer keys unavailable")


async def test_jwks_file_source(tmp_path: Path) -> None:
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [public_jwk(EC_KEY, "ec-1")]}))
    raw = {"issuer": ISSUER, "audience": AUDIENCE, "jwks_file": "jwks.json", "algorithms": ["ES256"]}
    chain = build_authentication(AuthnSettings.model_validate({"jwt": [raw]}), MemoryStore(), tmp_path)
    assert (await chain.resolve(Credential(sign(EC_KEY, "ES256", "ec-1")))).subject == "alice"
    with pytest.raises(AuthenticationError, match="algorithm 'RS256' not allowed"):
        await chain.resolve(Credential(sign(RSA_KEY, "RS256", "rsa-1", jti="x")))


async def test_introspection(server: JWKSServer, auditor: Recorder) -> None:
    now = int(time.time())
    server.active_tokens = {
        "opaque-good": {"sub": "bob", "scope": "read write", "exp": now + 600, "aud": "api"}
    }
    s = AuthnSettings.model_validate(
        {
            "stored_api_keys": False,
            "introspection": [
                {
                    "endpoint": server.url + "/introspect",
                    "client_id": "guard",
                    "client_secret": "s3cret",
                    "audience": "api",
                    "allow_insecure_loopback": True,
                    "cache_ttl": "30s",
                }
            ],
        }
    )
    chain = build_authentication(s, MemoryStore(), Path("."), auditor=auditor)
    principal = await chain.resolve(Credential("opaque-good"))
    assert principal.subject == "bob" and principal.scopes == {"read", "write"}
    assert principal.auth_method == "introspection"
    authz, form = server.introspections[-1]
    assert authz == "Basic " + base64.b64encode(b"guard:s3cret").decode()
    assert form["token"] == "opaque-good"
    calls = len(server.introspections)
    await chain.resolve(Credential("opaque-good"))
    assert len(server.introspections) == calls  # cached
    await refused(chain, auditor, "opaque-bad", "not active")


async def test_remote_keys_maintain_refreshes_in_background(server: JWKSServer) -> None:
    import anyio

    from mcp_guard.authn import RemoteKeys, SafeFetcher
    from mcp_guard.authn.fetch import FetchPolicy

    keys = RemoteKeys(
        server.url + "/jwks.json",
        ["RS256"],
        SafeFetcher(FetchPolicy(allow_insecure_loopback=True)),
        cache_ttl=1.0,
        min_refetch_interval=0.0,
    )
    async with anyio.create_task_group() as tg:
        tg.start_soon(keys.maintain)
        with anyio.fail_after(5):
            while server.fetches < 2:
                await anyio.sleep(0.05)
        tg.cancel_scope.cancel()
    assert (await keys.key("rsa-1", "RS256")).key_id == "rsa-1"


async def test_introspection_client_secret_post_and_exp_bound(server: JWKSServer) -> None:
    now = int(time.time())
    server.active_tokens = {"short": {"sub": "eve", "exp": now + 2}}
    s = AuthnSettings.model_validate(
        {
            "stored_api_keys": False,
            "introspection": [
                {
                    "endpoint": server.url + "/introspect",
                    "client_id": "guard",
                    "client_secret": "pw",
                    "client_auth": "client_secret_post",
                    "allow_insecure_loopback": True,
                }
            ],
        }
    )
    chain = build_authentication(s, MemoryStore(), Path("."))
    principal = await chain.resolve(Credential("short"))
    assert principal.expires_at == now + 2
    authz, form = server.introspections[-1]
    assert authz is None and form["client_id"] == "guard" and form["client_secret"] == "pw"
    key = hashlib.sha256(b"short").digest()
    assert chain._cache[key][1] <= now + 2  # cached no longer than the token lives
