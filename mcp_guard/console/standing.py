"""Whether a signed-in administrator still stands: their key or user is still there, still an admin.

A console session outlives the request that opened it, and what it was opened
with can go away while it is open: a key removed from ``guard.toml`` (seen by a
restarted portal or another replica sharing the sessions), a stored key deleted,
a user removed from the users file, disabled, or given other roles. Each request
asks again, through the same authenticators and users file that signed the
administrator in, and the session ends when the answer is no. The answer is
kept for :attr:`Standing.every` seconds per credential, so a busy console costs
a dict lookup, not a store read, per request.

Sessions opened with other credentials (a JWT, introspection) are not looked up
again: their expiry, revocation and ``max_age`` end them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..authn.api_keys import ApiKeyAuthenticator
from ..model import Principal
from .sessions import ConsoleSession

if TYPE_CHECKING:
    from ..authn.login import LoginService
    from ..guard import Guard

#: How a session was opened: with an API key, or with a password of the users file.
VIA_KEY = "api_key"
VIA_PASSWORD = "password"
#: Answers kept at most (one per credential); older ones are dropped first.
_CACHE_SIZE = 10_000


class Standing:
    """Look up, with a short cache, whether a session's credential still names an administrator."""

    def __init__(
        self,
        guard: Guard,
        login: LoginService | None,
        admin_roles: Callable[[Principal], frozenset[str] | None],
        *,
        every: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.guard = guard
        self.login = login
        #: The principal's roles when they include an admin role, else None.
        self.admin_roles = admin_roles
        #: Seconds an answer is reused for the same credential (0: ask on every request).
        self.every = every
        self.clock = clock
        self._seen: dict[tuple[str, str], tuple[float, tuple[str, ...] | None]] = {}

    async def roles(self, session: ConsoleSession) -> tuple[str, ...] | None:
        """The session's roles as they stand now; None when its key or user is gone or no admin."""
        account = self._account(session)
        if account is None:
            return session.roles
        now = self.clock()
        kept = self._seen.get(account)
        if kept is not None and now - kept[0] < self.every:
            return kept[1]
        principal = await self._principal(*account)
        found = self.admin_roles(principal) if principal is not None else None
        roles = tuple(sorted(found)) if found is not None else None
        if len(self._seen) >= _CACHE_SIZE:
            self._seen.pop(next(iter(self._seen)))
        self._seen[account] = (now, roles)
        return roles

    def _account(self, session: ConsoleSession) -> tuple[str, str] | None:
        """What to look up for ``session``; None when nothing here can answer for it."""
        if session.via == VIA_KEY and session.credential_id is not None:
            if not hasattr(self.guard.resolver, "authenticators"):
                return None  # a resolver of the host's own: its keys are not ours to look up
            return VIA_KEY, session.credential_id
        if session.via == VIA_PASSWORD:
            return VIA_PASSWORD, session.subject
        return None

    async def _principal(self, via: str, name: str) -> Principal | None:
        if via == VIA_PASSWORD:
            if self.login is None:
                return None  # [authn.passwords] is gone from the config
            user = self.login.users.get(name)
            return None if user is None or user.disabled else user.principal()
        # No API key authenticator left at all (every key removed from the config): gone too.
        for authenticator in getattr(self.guard.resolver, "authenticators", ()):
            if isinstance(authenticator, ApiKeyAuthenticator):
                principal = await authenticator.holder(name)
                if principal is not None:
                    return principal
        return None
