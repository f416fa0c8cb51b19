"""The ordered authenticator chain and the verified-principal cache.

Cold path: each authenticator in order until one claims the credential. Hot
path: a dict lookup by SHA-256 of the token, an expiry compare and a membership
test in the in-memory revocation set - no I/O, no signature work.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType

import anyio

from ..errors import AuthenticationError, GuardError, GuardUnavailable
from ..model import AuditEvent, Principal
from ..protocols import Auditor, Authenticator, Credential
from ..ratelimit import subject_key
from .lockout import Lockout
from .revocation import RevocationList

log = logging.getLogger(__name__)

#: Larger credentials are refused before any parsing (a JWT with a few claims is well under 2 KB).
MAX_CREDENTIAL_BYTES = 16 * 1024


class AuthenticatorChain:
    """Resolve credentials to principals: ordered authenticators, cache, revocation, audit.

    ``anonymous`` is the principal for requests without any credential (None:
    such requests are refused). A credential that is present but invalid is
    refused, never downgraded. Cached entries live until the principal's
    ``expires_at``, at most ``max_ttl`` seconds, and at most the authenticator's
    own ``cache_ttl`` attribute when it has one (introspection uses this).
    ``auditor`` receives one ``authn`` event per refusal.
    """

    def __init__(
        self,
        authenticators: Sequence[Authenticator],
        anonymous: Principal | None = None,
        *,
        cache_size: int = 10_000,
        max_ttl: float = 300.0,
        revocations: RevocationList | None = None,
        auditor: Auditor | None = None,
        max_credential_bytes: int = MAX_CREDENTIAL_BYTES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.authenticators = tuple(authenticators)
        self.anonymous = anonymous
        self.cache_size = cache_size
        self.max_ttl = max_ttl
        self.revocations = revocations or RevocationList(None)
        self.auditor = auditor
        self.max_credential_bytes = max_credential_bytes
        self._clock = clock
        self._cache: dict[bytes, tuple[Principal, float]] = {}
        #: The last token hashed and its hash, replaced in one assignment (threads may share a chain).
        self._last_key: tuple[str | None, bytes] = (None, b"")
        #: Persons (:func:`~mcp_guard.ratelimit.subject_key`) and source addresses held by
        #: :meth:`Lockout.hold <.lockout.Lockout.hold>` (the anomaly monitor's ``lock`` action)
        #: are refused; None, the default, costs nothing.
        self.holds: Lockout | None = None
        self._held_until = 0.0
        self._tg: anyio.abc.TaskGroup | None = None

    async def resolve(self, credential: Credential) -> Principal:
        principal = await self._resolve(credential)
        if self.holds is not None:
            try:
                # The person is held, not the name: a namesake another issuer or tenant's key
                # book vouches for is someone else (see ``portal.anomalies.hold_targets``).
                await self.holds.check_hold(subject_key(principal), credential.ip)
            except GuardError as exc:
                raise self._refuse(credential, exc.reason, exc) from None
            except Exception as exc:  # fail closed: an unreadable hold is no permission
                raise self._refuse(credential, f"lock check failed: {exc}", GuardUnavailable) from None
        return principal

    def held(self, until: float) -> None:
        """Something was held until ``until``: till then :meth:`peek` knows no credential, so every
        one goes through :meth:`resolve` and its hold check (the cache knows no source address)."""
        self._held_until = max(self._held_until, until)

    def _key(self, token: str) -> bytes | None:
        """The cache key of ``token`` (its SHA-256), or None when it is not valid text.

        The very string object hashed last time (a stdio or in-memory connection presents its
        one credential on every request) is not hashed again. Identity, never equality:
        comparing a presented token with a remembered one would time their common prefix.
        """
        last = self._last_key
        if last[0] is token:
            return last[1]
        try:
            key = hashlib.sha256(token.encode("utf-8")).digest()
        except UnicodeError:
            return None
        self._last_key = (token, key)
        return key

    def hit(self, credential: Credential) -> Principal | None:
        """What :meth:`resolve` returns when that takes no verifying and no await, else None.

        A cached, unexpired, unrevoked principal (or the anonymous one for no credential) while
        no hold needs checking; anything else, including a failure, is left to :meth:`resolve`,
        which verifies, refuses and audits as usual. Lets the request path skip three coroutine
        layers on the common cache hit.
        """
        if self.holds is not None:
            return None
        token = credential.token
        if not token:
            return self.anonymous
        key = self._key(token)  # a miss goes on to resolve, which then hashes nothing
        if key is None:
            return None  # refused (and audited) by resolve
        entry = self._cache.get(key)
        if entry is None:
            return None
        principal, until = entry
        cid = principal.credential_id
        if self._clock() < until and (cid is None or cid not in self.revocations.ids):
            return principal
        return None

    async def _resolve(self, credential: Credential) -> Principal:
        token = credential.token
        if not token:
            if self.anonymous is not None:
                return self.anonymous
            raise self._refuse(credential, "no credential presented")
        key = self._key(token)
        if key is None:
            raise self._refuse(credential, "credential is not valid text")
        entry = self._cache.get(key)
        if entry is not None:
            principal, until = entry
            cid = principal.credential_id
            if self._clock() < until and (cid is None or cid not in self.revocations.ids):
                return principal
            del self._cache[key]
        return await self._verify(credential, token, key)

    async def _verify(self, credential: Credential, token: str, key: bytes) -> Principal:
        if len(token) > self.max_credential_bytes:
            raise self._refuse(credential, f"credential larger than {self.max_credential_bytes} bytes")
        for authenticator in self.authenticators:
            try:
                principal = await authenticator.authenticate(credential)
            except AuthenticationError as exc:
                raise self._refuse(credential, exc.reason, owner=exc.owner) from None
            except GuardError as exc:  # lockout and the like: refused, audited, passed on as is
                self._audit(credential, exc.reason)
                raise
            except Exception as exc:  # fail closed: a broken authenticator never lets anyone in
                log.warning("authenticator %r failed", authenticator, exc_info=True)
                reason = f"{type(authenticator).__name__} failed: {exc}"
                self._audit(credential, reason)
                # Not the caller's fault: say "unavailable", not "bad credential".
                raise GuardUnavailable(reason) from None
            if principal is None:
                continue
            now = self._clock()
            cid = principal.credential_id
            try:
                revoked = cid is not None and await self.revocations.is_revoked(cid)
            except Exception as exc:
                raise self._refuse(credential, f"revocation check failed: {exc}") from None
            if revoked or (principal.expires_at is not None and principal.expires_at <= now):
                reason = f"credential {cid} is revoked" if revoked else "credential expired"
                raise self._refuse(credential, reason, owner=principal)
            self._remember(key, principal, authenticator, now)
            return principal
        raise self._refuse(credential, "credential not recognised by any authenticator")

    def _remember(self, key: bytes, principal: Principal, authenticator: Authenticator, now: float) -> None:
        ttl = self.max_ttl
        own = getattr(authenticator, "cache_ttl", None)
        if isinstance(own, (int, float)):
            ttl = min(ttl, float(own))
        until = now + ttl
        if principal.expires_at is not None:
            until = min(until, principal.expires_at)
        if ttl <= 0 or self.cache_size <= 0:
            return
        if len(self._cache) >= self.cache_size:
            # Drop the oldest insertion: cheap, and a hot token is simply re-verified once.
            self._cache.pop(next(iter(self._cache)))
        self._cache[key] = (principal, until)

    def peek(self, token: str | None) -> Principal | None:
        """The cached principal for ``token`` (or the anonymous one), without verifying anything.

        Synchronous and I/O-free, for callers that run before any await is
        possible (the SDK's tool-schema lookup); ``None`` means "not known yet".
        """
        if not token:
            return self.anonymous
        if self._held_until and self._clock() < self._held_until:
            return None
        entry = self._cache.get(hashlib.sha256(token.encode("utf-8", "replace")).digest())
        if entry is None:
            return None
        principal, until = entry
        cid = principal.credential_id
        if self._clock() >= until or (cid is not None and cid in self.revocations.ids):
            return None
        return principal

    def forget(self, token: str) -> None:
        """Drop one credential from the cache (e.g. after a logout)."""
        self._cache.pop(hashlib.sha256(token.encode("utf-8")).digest(), None)

    def clear(self) -> None:
        self._cache.clear()

    def _refuse(
        self,
        credential: Credential,
        reason: str,
        error: GuardError | type[GuardError] = AuthenticationError,
        owner: Principal | None = None,
    ) -> GuardError:
        """Audit a refusal; ``owner`` is whose genuine credential (revoked, expired) it was."""
        self._audit(credential, reason, owner)
        refusal = error(reason) if isinstance(error, type) else error
        if isinstance(refusal, AuthenticationError):
            refusal.owner = owner  # the transport's own refusal event names the person too
        return refusal

    def _audit(self, credential: Credential, reason: str, owner: Principal | None = None) -> None:
        if self.auditor is None:
            return
        event = AuditEvent(
            method="authenticate",
            decision="deny",
            event="authn",
            principal=owner.summary() if owner is not None else None,
            reasons=(reason,),
            source_ip=credential.ip,
            transport=credential.source,
        )
        try:
            self.auditor.record(event)
        except Exception:  # the refusal stands either way
            log.warning("could not audit an authentication refusal", exc_info=True)

    # -- background upkeep -------------------------------------------------------------------

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Follow revocations and keep key sets fresh until cancelled.

        Start it in a task group (``await tg.start(authentication.run)``) or use
        ``async with authentication:``. Authenticators with an async
        ``maintain()`` method get it run here.
        """
        async with anyio.create_task_group() as tg:
            await tg.start(self.revocations.run)
            for authenticator in self.authenticators:
                maintain = getattr(authenticator, "maintain", None)
                if maintain is not None:
                    tg.start_soon(self._maintain, authenticator, maintain)
            task_status.started()

    @staticmethod
    async def _maintain(authenticator: Authenticator, maintain: Callable[[], Awaitable[object]]) -> None:
        try:
            await maintain()
        except Exception:  # upkeep only: verification still fetches on demand and fails closed
            log.warning("background upkeep of %r stopped", authenticator, exc_info=True)

    async def __aenter__(self) -> AuthenticatorChain:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        await self._tg.start(self.run)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._tg is not None
        self._tg.cancel_scope.cancel()
        await self._tg.__aexit__(exc_type, exc, tb)
        self._tg = None
