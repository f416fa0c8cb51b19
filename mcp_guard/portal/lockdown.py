"""Lockdown: URL upstreams accept only requests that come through the portal.

With ``Portal(lockdown=PortalSigner(...))`` every HTTP request the portal
sends to a URL upstream carries a short-lived token in the
``MCP-Guard-Portal-Token`` header, signed with the portal's Ed25519 key and
bound to that request: audience = the upstream's name, HTTP method, SHA-256
of the body, expiry (default 60 s) and a one-time id. The upstream mounts
:class:`LockdownMiddleware` (plain ASGI, any framework) with the portal's
*public* key, so it can check tokens but never mint one; anything else -
a client that found the upstream's address, a replayed or altered request,
a token minted for another upstream - gets 403 before MCP sees it::

    verifier = LockdownVerifier(load_public_key("portal-lockdown.pub"), audience="files")
    app = LockdownMiddleware(server.streamable_http_app(), verifier)

Stdio upstreams need no token: the portal started them and holds their pipe.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import time
from collections.abc import Awaitable, Callable, Generator, MutableMapping
from pathlib import Path
from typing import Any

import httpx2
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

HEADER = "MCP-Guard-Portal-Token"
ISSUER = "mcp-guard-portal"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class LockdownError(Exception):
    """A request without a valid portal token (the reason is logged by the upstream, not sent)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def body_hash(body: bytes) -> str:
    return _b64(hashlib.sha256(body).digest())


class PortalSigner:
    """Mints the per-request tokens (the portal's side). ``ttl`` seconds of validity."""

    def __init__(self, key: Ed25519PrivateKey, *, ttl: float = 60.0, issuer: str = ISSUER) -> None:
        self.key = key
        self.ttl = ttl
        self.issuer = issuer

    @classmethod
    def generate(cls, **kw: Any) -> PortalSigner:
        return cls(Ed25519PrivateKey.generate(), **kw)

    @classmethod
    def from_file(cls, path: str | Path, *, create: bool = True, **kw: Any) -> PortalSigner:
        """Load the PEM private key at ``path``; create it (mode 0600, public key beside it) if absent."""
        file = Path(path)
        if not file.exists() and create:
            signer = cls.generate(**kw)
            file.parent.mkdir(parents=True, exist_ok=True)
            pem = signer.key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(pem)
            file.with_suffix(".pub").write_bytes(signer.public_pem())
            return signer
        key = serialization.load_pem_private_key(file.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{file} is not an Ed25519 private key")
        return cls(key, **kw)

    def public_pem(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def mint(self, audience: str, method: str, body: bytes, *, now: float | None = None) -> str:
        issued = time.time() if now is None else now
        claims = {
            "iss": self.issuer,
            "aud": audience,
            "iat": int(issued),
            "exp": int(issued + self.ttl),
            "jti": _b64(secrets.token_bytes(12)),
            "htm": method.upper(),
            "bh": body_hash(body),
        }
        return jwt.encode(claims, self.key, algorithm="EdDSA", headers={"typ": "mcp-guard-portal+jwt"})

    def auth(self, audience: str) -> LockdownAuth:
        return LockdownAuth(self, audience)


class LockdownAuth(httpx2.Auth):
    """Adds a fresh token, bound to the body, to every request of one upstream's HTTP client."""

    requires_request_body = True

    def __init__(self, signer: PortalSigner, audience: str) -> None:
        self.signer = signer
        self.audience = audience

    def auth_flow(self, request: httpx2.Request) -> Generator[httpx2.Request, httpx2.Response, None]:
        request.headers[HEADER] = self.signer.mint(self.audience, request.method, request.content)
        yield request


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(Path(path).read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path} is not an Ed25519 public key")
    return key


class LockdownVerifier:
    """Checks portal tokens (the upstream's side): signature, issuer, audience, expiry, binding, replay."""

    def __init__(
        self,
        public_key: Ed25519PublicKey,
        *,
        audience: str,
        issuer: str = ISSUER,
        leeway: float = 5.0,
        max_ttl: float = 300.0,
    ) -> None:
        self.public_key = public_key
        self.audience = audience
        self.issuer = issuer
        self.leeway = leeway
        self.max_ttl = max_ttl
        self._seen: dict[str, float] = {}

    def verify(
        self, token: str | None, method: str, body: bytes, *, now: float | None = None
    ) -> dict[str, Any]:
        if not token:
            raise LockdownError("no portal token")
        at = time.time() if now is None else now
        try:
            # A compact EdDSA JWT; the algorithm is pinned, so no header can choose another.
            claims = jwt.decode(
                token,
                self.public_key,
                algorithms=["EdDSA"],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                # Times are checked below against ``now``, so callers (and tests) control the clock.
                options={
                    "require": ["exp", "iat", "jti", "aud", "iss"],
                    "verify_exp": False,
                    "verify_iat": False,
                },
            )
        except (jwt.InvalidAudienceError, jwt.InvalidIssuerError):
            raise LockdownError("portal token for another issuer or upstream") from None
        except jwt.InvalidSignatureError:
            raise LockdownError("portal token signature invalid") from None
        except jwt.InvalidTokenError:
            raise LockdownError("malformed portal token") from None
        exp, iat = claims.get("exp"), claims.get("iat")
        if not isinstance(exp, int) or not isinstance(iat, int) or exp - iat > self.max_ttl:
            raise LockdownError("portal token lifetime invalid")
        if at > exp + self.leeway or at < iat - self.leeway:
            raise LockdownError("portal token expired or not yet valid")
        if claims.get("htm") != method.upper() or claims.get("bh") != body_hash(body):
            raise LockdownError("portal token bound to another request")
        jti = str(claims.get("jti"))
        if len(self._seen) > 4096:
            self._seen = {k: v for k, v in self._seen.items() if v + self.leeway >= at}
        if jti in self._seen:
            raise LockdownError("portal token replayed")
        self._seen[jti] = float(exp)
        return claims


class LockdownMiddleware:
    """ASGI middleware for an upstream: 403 for any HTTP request without a valid portal token."""

    def __init__(
        self,
        app: Callable[[Scope, Receive, Send], Awaitable[None]],
        verifier: LockdownVerifier,
        *,
        max_body: int = 16 * 1024 * 1024,
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.max_body = max_body
        self.refused = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = None
        for name, value in scope.get("headers", ()):
            if name.decode("latin-1").lower() == HEADER.lower():
                token = value.decode("latin-1")
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await _refuse(send, 413, "request body too large")
                return
            chunks.append(chunk)
            more = bool(message.get("more_body", False))
        body = b"".join(chunks)
        try:
            self.verifier.verify(token, str(scope.get("method", "")), body)
        except LockdownError:
            self.refused += 1
            await _refuse(send, 403, "requests to this server must come through the portal")
            return
        replayed = False

        async def replay() -> MutableMapping[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _refuse(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


__all__ = [
    "HEADER",
    "LockdownAuth",
    "LockdownError",
    "LockdownMiddleware",
    "LockdownVerifier",
    "PortalSigner",
    "load_public_key",
]
