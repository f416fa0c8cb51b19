"""Authenticators that need no key material: fixed principals and plain functions as plugins."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ..model import Principal
from ..protocols import Credential


class StaticAuthenticator:
    """Accepts one exact token (or any token when ``token`` is None) as a fixed principal.

    Meant for tests and for a stdio server whose only caller is the local user; a
    comparison in constant time keeps it honest when a token is configured.
    """

    def __init__(self, principal: Principal, token: str | None = None) -> None:
        self.principal = principal
        self._token = token

    async def authenticate(self, credential: Credential) -> Principal | None:
        import hmac

        if self._token is None:
            return self.principal
        if credential.token is None:
            return None
        if hmac.compare_digest(credential.token.encode(), self._token.encode()):
            return self.principal
        return None


class AnonymousAuthenticator:
    """Gives callers who present *no* credential a fixed, usually low-privilege principal.

    A presented credential is never its business: returning None for it lets the
    chain refuse an invalid token instead of downgrading it to anonymous.
    """

    def __init__(self, principal: Principal | None = None) -> None:
        self.principal = principal or Principal(subject="anonymous", auth_method="anonymous")

    async def authenticate(self, credential: Credential) -> Principal | None:
        if credential.token:
            return None
        return self.principal


AuthFunction = Callable[[Credential], Awaitable[Principal | None]]


class FunctionAuthenticator:
    """Makes a plain ``async def f(credential) -> Principal | None`` an authenticator.

    The function follows the same contract as any authenticator: None for "not
    mine", :class:`~mcp_guard.errors.AuthenticationError` for "mine but invalid".
    ``cache_ttl`` bounds how long the chain may reuse its answers.
    """

    def __init__(self, func: AuthFunction, *, cache_ttl: float | None = None) -> None:
        self._func = func
        self.cache_ttl = cache_ttl

    async def authenticate(self, credential: Credential) -> Principal | None:
        return await self._func(credential)
