"""Lockout against password guessing, kept in the shared state store.

Three counters, each over a sliding ``window``:

* account + source address - the tight one (``max_failures``): whoever guesses
  from one address is locked out quickly, with a back-off that doubles on every
  new lock (``base_lock`` .. ``max_lock``);
* source address across accounts (``source_max_failures``): stops spraying one
  password over many accounts;
* account across all sources (``account_max_failures``, much higher): stops a
  distributed attack on one account, but its lock is capped at
  ``account_max_lock`` (minutes, not hours) so an attacker elsewhere cannot keep
  the real user out for long - the user's own address is never in the tight
  counters the attacker fills;
* and an address the account logged in from successfully (within
  ``known_source_memory``) is exempt from the account-wide lock altogether: a
  distributed attack can slow down logins from new places, never the user's
  usual ones. Its own pair and source counters still apply.

Checked before the password is verified, so a locked attempt costs no hashing.

Beside these counters, :meth:`Lockout.hold` locks a person or a source address outright for a
while (the anomaly monitor's ``lock`` action). A hold applies to logins and, through
:meth:`Lockout.check_hold`, to every credential the guard resolves; ``unlock`` clears it. A hold
names the person, not the user name: the subject per issuer or tenant key book
(:func:`~mcp_guard.ratelimit.subject_key`), so the counters above stay keyed by the name typed at
the login while ``person`` says whose hold a login, ``status`` or ``unlock`` concerns.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import RateLimited
from ..protocols import StateStore

_P = "authn:lock:"


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    max_failures: int = 5
    source_max_failures: int = 20
    account_max_failures: int = 50
    window: float = 900.0
    base_lock: float = 30.0
    max_lock: float = 3600.0
    account_max_lock: float = 300.0
    #: how long a scope's strike count (which drives the back-off) is remembered
    strike_memory: float = 86400.0
    #: how long a successful login exempts its source address from the account-wide lock
    known_source_memory: float = 30 * 86400.0


class Lockout:
    def __init__(
        self,
        store: StateStore,
        policy: LockoutPolicy | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.policy = policy or LockoutPolicy()
        self._clock = clock

    def _scopes(self, account: str, source: str | None) -> list[tuple[str, int, float]]:
        p = self.policy
        src = source or "-"
        return [
            (f"pair:{account}|{src}", p.max_failures, p.max_lock),
            (f"src:{src}", p.source_max_failures, p.max_lock),
            (f"acct:{account}", p.account_max_failures, p.account_max_lock),
        ]

    async def hold(self, account: str | None, source: str | None, duration: float) -> list[str]:
        """Lock ``account`` (from everywhere, known addresses too) and/or ``source`` for ``duration`` s."""
        until = repr(self._clock() + duration).encode()
        scopes = [f"hold:{account}" for _ in (account,) if account] + [
            f"hold-src:{s}" for s in (source,) if s
        ]
        for scope in scopes:
            await self.store.set(_P + "until:" + scope, until, ttl=duration)
        return scopes

    async def check_hold(self, account: str | None, source: str | None) -> None:
        """Raise :class:`RateLimited` while ``account`` or ``source`` is held (see :meth:`hold`)."""
        now = self._clock()
        for scope in [f"hold:{account}" for _ in (account,) if account] + [
            f"hold-src:{s}" for s in (source,) if s
        ]:
            raw = await self.store.get(_P + "until:" + scope)
            if raw is not None and float(raw) > now:
                raise RateLimited(f"locked ({scope.split(':')[0]})", retry_after=float(raw) - now)

    async def check(self, account: str, source: str | None, *, person: str | None = None) -> None:
        """Raise :class:`RateLimited` (with retry-after) when any scope is locked, or the person a
        login as ``account`` becomes (``person``, else ``account`` itself) is held."""
        await self.check_hold(account if person is None else person, source)
        now = self._clock()
        known: bool | None = None
        for scope, _, _ in self._scopes(account, source):
            raw = await self.store.get(_P + "until:" + scope)
            if raw is not None and scope.startswith("acct:"):
                if known is None:
                    known = await self.known_source(account, source)
                if known:
                    continue
            if raw is not None:
                until = float(raw)
                if until > now:
                    raise RateLimited(f"login locked ({scope.split(':')[0]})", retry_after=until - now)

    async def failure(self, account: str, source: str | None) -> None:
        p = self.policy
        for scope, limit, cap in self._scopes(account, source):
            count = await self.store.incr(_P + "fail:" + scope, ttl=p.window)
            if count < limit:
                continue
            strikes = await self.store.incr(_P + "strikes:" + scope, ttl=p.strike_memory)
            duration = min(p.base_lock * 2 ** (strikes - 1), cap)
            await self.store.set(_P + "until:" + scope, repr(self._clock() + duration).encode(), ttl=duration)
            await self.store.delete(_P + "fail:" + scope)
            if scope.startswith("pair:"):
                await self.store.sadd(_P + "pairs:" + account, scope)

    async def success(self, account: str, source: str | None) -> None:
        """A correct login clears the pair's failure count (not its strikes, not other scopes)
        and remembers the source as one this account uses."""
        await self.store.delete(_P + "fail:" + self._scopes(account, source)[0][0])
        if source is not None and self.policy.known_source_memory > 0:
            await self.store.set(
                _P + "known:" + f"{account}|{source}", b"1", ttl=self.policy.known_source_memory
            )

    async def known_source(self, account: str, source: str | None) -> bool:
        """Whether ``account`` logged in successfully from ``source`` recently."""
        if source is None:
            return False
        return await self.store.get(_P + "known:" + f"{account}|{source}") is not None

    async def unlock(
        self, account: str | None = None, source: str | None = None, *, person: str | None = None
    ) -> list[str]:
        """Admin action: clear locks, counters and back-off of an account and/or a source address,
        and the hold of the account's ``person`` too when given."""
        scopes: list[str] = []
        if person is not None:
            scopes.append(f"hold:{person}")
        if account is not None:
            scopes.append(f"acct:{account}")
            scopes.append(f"hold:{account}")
            scopes.extend(await self.store.smembers(_P + "pairs:" + account))
            if source is not None:
                scopes.append(f"pair:{account}|{source}")
            await self.store.delete(_P + "pairs:" + account)
        if source is not None:
            scopes.append(f"src:{source}")
            scopes.append(f"hold-src:{source}")
        for scope in dict.fromkeys(scopes):
            for kind in ("until:", "fail:", "strikes:"):
                await self.store.delete(_P + kind + scope)
        return list(dict.fromkeys(scopes))

    async def status(self, account: str, *, person: str | None = None) -> dict[str, float]:
        """Remaining lock seconds per locked scope of an account (for ``users list``), the hold of
        its ``person`` included when given."""
        now = self._clock()
        out = {}
        held = [f"hold:{person}"] if person is not None and person != account else []
        scopes = [
            f"acct:{account}",
            f"hold:{account}",
            *held,
            *await self.store.smembers(_P + "pairs:" + account),
        ]
        for scope in scopes:
            raw = await self.store.get(_P + "until:" + scope)
            if raw is not None and float(raw) > now:
                out[scope] = round(float(raw) - now, 1)
        return out


__all__ = ["Lockout", "LockoutPolicy"]
