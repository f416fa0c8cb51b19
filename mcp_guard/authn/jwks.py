"""Verification keys for JWT issuers: a parsed JWK Set, from a file or fetched over HTTPS.

Keys are indexed once per (kid, algorithm) when a set is loaded, only for the
algorithms the issuer allows and only when the key type fits the algorithm, so
an RSA public key can never be used as an HMAC secret and ``none`` has no key
at all. Parsing is pyjwt's (:class:`jwt.PyJWK`). Its own ``PyJWKClient``
is not used because it fetches synchronously with urllib, which would stall the
event loop and bypass our SSRF rules.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

import anyio
import jwt

from ..errors import AuthenticationError, ConfigError
from .fetch import FetchError, SafeFetcher

log = logging.getLogger(__name__)

#: Asymmetric signature algorithms a JWT issuer may be configured with.
SUPPORTED_ALGORITHMS: frozenset[str] = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "ES256K", "EdDSA"}
)
_EC_CURVES = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521", "ES256K": "secp256k1"}
#: kid values we are willing to look up (base64/base64url, hex, UUIDs, dotted names); anything
#: else - path traversal, quotes, whitespace, shell or SQL syntax - is refused before any fetch.
KID_PATTERN = re.compile(r"^(?!.*\.\.)(?!/)[A-Za-z0-9._~+/=:-]{1,128}\Z")


def check_algorithms(algorithms: Iterable[str]) -> tuple[str, ...]:
    """Validate an allow-list: non-empty, asymmetric only. Raises ValueError."""
    algs = tuple(algorithms)
    if not algs:
        raise ValueError("algorithms must list at least one algorithm (e.g. RS256, ES256, EdDSA)")
    for alg in algs:
        if alg.lower() == "none":
            raise ValueError("algorithm 'none' is never accepted")
        if alg.upper().startswith("HS"):
            raise ValueError(f"{alg}: HMAC algorithms are not accepted for issuers with public keys")
        if alg not in SUPPORTED_ALGORITHMS:
            raise ValueError(
                f"unsupported algorithm {alg!r}; choose from {', '.join(sorted(SUPPORTED_ALGORITHMS))}"
            )
    return algs


def _fits(jwk: Mapping[str, Any], alg: str) -> bool:
    kty = jwk.get("kty")
    if jwk.get("alg") not in (None, alg) or jwk.get("use") not in (None, "sig"):
        return False
    ops = jwk.get("key_ops")
    if isinstance(ops, list) and "verify" not in ops:
        return False
    if alg[:2] in ("RS", "PS"):
        return kty == "RSA"
    if alg in _EC_CURVES:
        return kty == "EC" and jwk.get("crv") == _EC_CURVES[alg]
    if alg == "EdDSA":
        return kty == "OKP" and jwk.get("crv") in ("Ed25519", "Ed448")
    return False


class KeySet:
    """An immutable index of usable verification keys."""

    def __init__(self, document: Mapping[str, Any], algorithms: Iterable[str]) -> None:
        keys = document.get("keys")
        if not isinstance(keys, list):
            raise ValueError("a JWK Set needs a 'keys' list")
        algs = tuple(algorithms)
        self._by_kid: dict[tuple[str, str], jwt.PyJWK] = {}
        self._no_kid: dict[str, list[jwt.PyJWK]] = {}
        for jwk in keys:
            if not isinstance(jwk, dict) or "d" in jwk:  # private keys never belong in a JWKS
                continue
            for alg in algs:
                if not _fits(jwk, alg):
                    continue
                try:
                    parsed = jwt.PyJWK(jwk, algorithm=alg)
                except jwt.PyJWTError:
                    continue
                kid = jwk.get("kid")
                if isinstance(kid, str):
                    self._by_kid[(kid, alg)] = parsed
                self._no_kid.setdefault(alg, []).append(parsed)

    def __len__(self) -> int:
        return sum(len(v) for v in self._no_kid.values())

    def find(self, kid: str | None, alg: str) -> jwt.PyJWK | None:
        if kid is not None:
            return self._by_kid.get((kid, alg))
        candidates = self._no_kid.get(alg, [])
        # Without a kid only an unambiguous set may answer.
        return candidates[0] if len(candidates) == 1 else None


class KeySource(Protocol):
    """Where a :class:`JWTAuthenticator` gets the key for a token's (kid, alg)."""

    async def key(self, kid: str | None, alg: str) -> jwt.PyJWK: ...


def load_jwks_file(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("JWKS file not found", file=str(path)) from None
    except ValueError as exc:
        raise ConfigError(f"not valid JSON: {exc}", file=str(path)) from None
    if not isinstance(document, dict):
        raise ConfigError("a JWK Set must be a JSON object with 'keys'", file=str(path))
    return document


class StaticKeys:
    """Keys fixed at load time (a JWKS file, or a set handed over in code).

    ``reload`` (optional) is called on an unknown kid at most every
    ``min_reload_interval`` seconds; the token issuer uses it to pick up keys
    rotated by another process.
    """

    def __init__(
        self,
        keyset: KeySet,
        *,
        reload: Callable[[], KeySet | None] | None = None,
        min_reload_interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.keyset = keyset
        self._reload = reload
        self._min = min_reload_interval
        self._clock = clock
        self._last = -float("inf")

    async def key(self, kid: str | None, alg: str) -> jwt.PyJWK:
        found = self.keyset.find(kid, alg)
        if found is None and self._reload is not None and self._clock() - self._last >= self._min:
            self._last = self._clock()
            fresh = self._reload()
            if fresh is not None:
                self.keyset = fresh
                found = fresh.find(kid, alg)
        if found is None:
            raise AuthenticationError(f"no {alg} key with kid {kid!r}")
        return found


class RemoteKeys:
    """A JWK Set fetched from a URL (or found through OIDC discovery), cached.

    Refetched when older than ``cache_ttl``, and on an unknown kid - but at most
    once per ``min_refetch_interval`` so junk kids cannot make us hammer the
    IdP. If the endpoint is down, known keys keep working until ``max_stale``
    after their fetch; with no keys at all every token is refused.
    """

    def __init__(
        self,
        url: str | None,
        algorithms: Iterable[str],
        fetcher: SafeFetcher,
        *,
        discovery_issuer: str | None = None,
        cache_ttl: float = 600.0,
        min_refetch_interval: float = 30.0,
        max_stale: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if (url is None) == (discovery_issuer is None):
            raise ValueError("give either a JWKS URL or an issuer for discovery")
        self._url = url
        self._issuer = discovery_issuer
        self._algorithms = tuple(algorithms)
        self._fetcher = fetcher
        self.cache_ttl = cache_ttl
        self.min_refetch_interval = min_refetch_interval
        self.max_stale = max_stale
        self._clock = clock
        self._keyset: KeySet | None = None
        self._fetched_at = -float("inf")
        self._attempted_at = -float("inf")
        self._lock = anyio.Lock()
        self.fetches = 0

    async def key(self, kid: str | None, alg: str) -> jwt.PyJWK:
        now = self._clock()
        keyset = self._keyset
        found = keyset.find(kid, alg) if keyset is not None else None
        if found is not None and now - self._fetched_at < self.cache_ttl:
            return found
        await self._refresh()
        keyset = self._keyset
        if keyset is None:
            raise AuthenticationError("issuer keys unavailable (JWKS could not be fetched)")
        found = keyset.find(kid, alg)
        if found is None:
            raise AuthenticationError(f"no {alg} key with kid {kid!r} in the issuer's JWKS")
        return found

    async def prepare(self) -> None:
        """Fetch once, ahead of the first token."""
        await self._refresh()

    async def maintain(self) -> None:
        """Keep the set fresh in the background until cancelled, so requests only ever fetch
        for an unknown kid. Started by :meth:`AuthenticatorChain.run`."""
        while True:
            try:
                await self._refresh()
            except Exception:  # never let the maintainer die; requests still fail closed
                log.warning("JWKS maintenance failed", exc_info=True)
            fresh = self._keyset is not None and self._clock() - self._fetched_at < self.cache_ttl
            await anyio.sleep(max(self.cache_ttl * 0.8 if fresh else self.min_refetch_interval, 1.0))

    async def _refresh(self) -> None:
        async with self._lock:
            now = self._clock()
            if now - self._attempted_at < self.min_refetch_interval:
                self._expire(now)
                return
            self._attempted_at = now
            try:
                url = await self._jwks_url()
                self.fetches += 1
                document = await self._fetcher.get_json(url)
                keyset = KeySet(document, self._algorithms)
                if not len(keyset):
                    raise FetchError(f"{url}: no usable keys for {', '.join(self._algorithms)}")
            except (FetchError, ValueError) as exc:
                log.warning("JWKS refresh failed: %s", exc)
                self._expire(now)
                return
            self._keyset = keyset
            self._fetched_at = self._clock()

    def _expire(self, now: float) -> None:
        if self._keyset is not None and now - self._fetched_at >= self.max_stale:
            self._keyset = None

    async def _jwks_url(self) -> str:
        if self._url is not None:
            return self._url
        assert self._issuer is not None
        url = await discover_jwks_uri(self._issuer, self._fetcher)
        self._url = url
        return url


async def discover_jwks_uri(issuer: str, fetcher: SafeFetcher) -> str:
    """Read ``jwks_uri`` from the issuer's OpenID discovery document (whose issuer must match)."""
    document = await fetcher.get_json(issuer.rstrip("/") + "/.well-known/openid-configuration")
    if document.get("issuer") != issuer:
        raise FetchError(f"discovery document names issuer {document.get('issuer')!r}, expected {issuer!r}")
    jwks_uri = document.get("jwks_uri")
    if not isinstance(jwks_uri, str):
        raise FetchError("discovery document has no jwks_uri")
    await fetcher.check_url(jwks_uri)
    return jwks_uri
