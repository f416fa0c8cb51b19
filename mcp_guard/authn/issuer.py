"""Our own short-lived tokens: EdDSA (Ed25519) JWTs issued after a password + TOTP login.

Signing keys live as PKCS#8 PEM files (mode 0600) in ``keys_dir``, one per key
id; the newest signs, all are published in the JWKS until retired, so rotation
never invalidates tokens in flight. Every token has a ``jti`` so it can be
revoked before it expires.
"""

from __future__ import annotations

import os
import re
import secrets
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..errors import ConfigError
from ..model import Principal
from .claims import ClaimMapping
from .jwks import KeySet, StaticKeys
from .jwt_auth import JWTAuthenticator
from .revocation import RevocationList

_KID = re.compile(r"^\d{14}-[0-9a-f]{8}$")


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str
    expires_in: int
    jti: str
    token_type: str = "Bearer"

    def as_dict(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_in": self.expires_in,
        }


class TokenIssuer:
    """Signs tokens with the newest key in ``keys_dir`` (created on first use).

    ``scopes`` are granted to every issued token (``scope`` claim), so HTTP
    deployments with ``[authn.oauth] required_scopes`` admit logged-in users.
    """

    def __init__(
        self,
        keys_dir: Path,
        *,
        issuer: str = "mcp-guard",
        audience: str = "mcp-guard",
        ttl: float = 900.0,
        scopes: Iterable[str] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.keys_dir = keys_dir
        self.scopes = tuple(sorted(set(scopes)))
        self.issuer = issuer
        self.audience = audience
        self.ttl = ttl
        self._clock = clock
        self._keys: dict[str, Ed25519PrivateKey] = {}
        self._stamp: int | None = None
        self.load()
        if not self._keys:
            self.rotate()

    # -- key files -----------------------------------------------------------------------------

    def load(self) -> bool:
        """(Re)read the key directory if it changed; True when it did."""
        try:
            stamp = self.keys_dir.stat().st_mtime_ns
        except FileNotFoundError:
            return False
        if stamp == self._stamp:
            return False
        keys: dict[str, Ed25519PrivateKey] = {}
        for path in sorted(self.keys_dir.glob("*.pem")):
            if not _KID.match(path.stem):
                continue
            try:
                key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            except (ValueError, TypeError) as exc:
                raise ConfigError(f"unreadable signing key: {exc}", file=str(path)) from None
            if not isinstance(key, Ed25519PrivateKey):
                raise ConfigError("signing key is not Ed25519", file=str(path))
            keys[path.stem] = key
        self._keys, self._stamp = keys, stamp
        return True

    def rotate(self) -> str:
        """Create a new signing key; it signs from now on, older keys still verify."""
        self.keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        stamp = datetime.fromtimestamp(self._clock(), tz=timezone.utc).strftime("%Y%m%d%H%M%S")
        kid = f"{stamp}-{secrets.token_hex(4)}"
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        fd = os.open(self.keys_dir / f"{kid}.pem", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        self._stamp = None
        self.load()
        return kid

    def retire(self, kid: str) -> bool:
        """Remove a key: tokens it signed stop verifying (after the verifiers reload)."""
        if not _KID.match(kid) or kid == self.active_kid:
            return False
        path = self.keys_dir / f"{kid}.pem"
        if not path.exists():
            return False
        path.unlink()
        self._stamp = None
        self.load()
        return True

    @property
    def kids(self) -> list[str]:
        return sorted(self._keys)

    @property
    def active_kid(self) -> str:
        return max(self._keys)

    def jwks(self) -> dict[str, Any]:
        """The public JWK Set (no private material)."""
        keys = []
        for kid in self.kids:
            public = jwt.algorithms.OKPAlgorithm.to_jwk(self._keys[kid].public_key(), as_dict=True)
            keys.append({**public, "kid": kid, "alg": "EdDSA", "use": "sig"})
        return {"keys": keys}

    def keyset(self) -> KeySet:
        return KeySet(self.jwks(), ["EdDSA"])

    # -- tokens --------------------------------------------------------------------------------

    def issue(
        self,
        principal: Principal,
        *,
        amr: Iterable[str] = ("pwd",),
        auth_time: float | None = None,
        extra: dict[str, Any] | None = None,
    ) -> IssuedToken:
        self.load()
        now = int(self._clock())
        jti = uuid.uuid4().hex
        claims: dict[str, Any] = {
            **(extra or {}),
            "iss": self.issuer,
            "aud": self.audience,
            "sub": principal.subject,
            "iat": now,
            "nbf": now,
            "exp": now + int(self.ttl),
            "jti": jti,
            "amr": sorted(set(amr)),
            "auth_time": int(auth_time if auth_time is not None else now),
            "roles": sorted(principal.roles),
            "groups": sorted(principal.groups),
        }
        if principal.tenant is not None:
            claims["tenant"] = principal.tenant
        if self.scopes:
            claims["scope"] = " ".join(self.scopes)
        kid = self.active_kid
        token = jwt.encode(claims, self._keys[kid], algorithm="EdDSA", headers={"kid": kid, "typ": "JWT"})
        return IssuedToken(token, int(self.ttl), jti)

    async def revoke(self, jti: str, revocations: RevocationList) -> None:
        await revocations.revoke(jti)

    def _reload_keyset(self) -> KeySet | None:
        return self.keyset() if self.load() else None

    def authenticator(self) -> IssuedTokenAuthenticator:
        return IssuedTokenAuthenticator(self)


class IssuedTokenAuthenticator(JWTAuthenticator):
    """Verifies tokens from a :class:`TokenIssuer` (EdDSA only; keys from its directory)."""

    def __init__(self, issuer: TokenIssuer, *, leeway: float = 5.0) -> None:
        super().__init__(
            issuer.issuer,
            issuer.audience,
            ["EdDSA"],
            StaticKeys(issuer.keyset(), reload=issuer._reload_keyset),
            claims=ClaimMapping(tenant="tenant", scopes="scope"),
            leeway=leeway,
            required_claims=("jti", "sub"),
            auth_method="password",
        )
