"""Resolving a presented credential to a principal, with a cache keyed by the credential.

Principals are cached by the SHA-256 of the token, never by connection: on the
2026-07-28 protocol every request arrives on a new connection, and on any
protocol a connection must not outlive its credential's validity.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from .errors import AuthenticationError, GuardUnavailable
from .model import Principal
from .protocols import Authenticator, Credential


@runtime_checkable
class PrincipalResolver(Protocol):
    """What the guard asks for a principal. ``peek`` is the cache-only, synchronous lookup."""

    async def resolve(self, credential: Credential) -> Principal: ...

    def peek(self, token: str | None) -> Principal | None: ...


def token_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class CredentialResolver:
    """Try authenticators in order; cache what they accept until the credential expires.

    ``anonymous`` is used only when no credential is presented at all; a
    presented credential nobody accepts is refused, never downgraded.
    ``max_ttl`` bounds how long a principal without an expiry stays cached,
    so a key revoked in its source takes effect within that bound.
    """

    def __init__(
        self,
        authenticators: Sequence[Authenticator],
        *,
        anonymous: Principal | None = None,
        max_ttl: float = 60.0,
        max_entries: int = 10_000,
        clock: object = time.time,
    ) -> None:
        self._authenticators = tuple(authenticators)
        self._anonymous = anonymous
        self._max_ttl = max_ttl
        self._max_entries = max_entries
        self._cache: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        self._clock = clock if callable(clock) else time.time

    def peek(self, token: str | None) -> Principal | None:
        if not token:
            return self._anonymous
        entry = self._cache.get(token_key(token))
        if entry is None:
            return None
        principal, until = entry
        if until <= self._clock():
            return None
        return principal

    def invalidate(self, token: str | None = None) -> None:
        """Forget one cached credential (or all), e.g. after a revocation."""
        if token is None:
            self._cache.clear()
        else:
            self._cache.pop(token_key(token), None)

    async def resolve(self, credential: Credential) -> Principal:
        token = credential.token
        if not token:
            if self._anonymous is None:
                raise AuthenticationError("no credential presented and anonymous access is not configured")
            return self._anonymous
        key = token_key(token)
        now = self._clock()
        entry = self._cache.get(key)
        if entry is not None:
            if entry[1] > now:
                return entry[0]
            del self._cache[key]
        principal = await self._authenticate(credential)
        until = now + self._max_ttl
        if principal.expires_at is not None:
            if principal.expires_at <= now:
                raise AuthenticationError("credential expired")
            until = min(until, principal.expires_at)
        self._cache[key] = (principal, until)
        if len(self._cache) > self._max_entries:
            self._cache.popitem(last=False)
        return principal

    async def _authenticate(self, credential: Credential) -> Principal:
        for authenticator in self._authenticators:
            try:
                principal = await authenticator.authenticate(credential)
            except AuthenticationError:
                raise
            except Exception as exc:  # a broken authenticator refuses, it never lets through
                raise GuardUnavailable(
                    f"authenticator {type(authenticator).__name__} failed: {exc!r}"
                ) from exc
            if principal is not None:
                return principal
        raise AuthenticationError("credential not recognised by any authenticator")
