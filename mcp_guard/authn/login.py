"""Password + TOTP login that ends in a short-lived token from our issuer.

Every failure looks the same to the caller (one message, similar time): an
unknown user is checked against a dummy hash of the same scheme the users file
uses (argon2id and scrypt cost differently), and the TOTP code is checked even
when the password was wrong. Lockout is consulted first and fed on failure.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import anyio

from ..errors import AuthenticationError, GuardError
from ..model import AuditEvent
from ..protocols import Auditor, StateStore
from . import totp
from .issuer import IssuedToken, TokenIssuer
from .lockout import Lockout
from .passwords import SCRYPT_PREFIX, argon2_available, hash_password, verify_password
from .users import UsersFile

log = logging.getLogger(__name__)

#: The one answer every failed login gets.
INVALID = "invalid username, password or one-time code"
MAX_PARALLEL_HASHES = 4
_TOTP_USED = "authn:totp-used:"
_TOTP_LAST = "authn:totp-last:"


class LoginService:
    """Checks username + password (+ TOTP) and issues a token. Used by the HTTP route and the CLI."""

    def __init__(
        self,
        users: UsersFile,
        issuer: TokenIssuer,
        lockout: Lockout,
        store: StateStore,
        *,
        require_totp: bool = True,
        auditor: Auditor | None = None,
        hash_scheme: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.users = users
        self.issuer = issuer
        self.lockout = lockout
        self.store = store
        self.require_totp = require_totp
        self.auditor = auditor
        self._clock = clock
        self.hash_scheme = hash_scheme
        self._dummy_hashes: dict[str, str] = {}
        self._limiter: anyio.CapacityLimiter | None = None
        self._dummy_secret = totp.new_secret()

    def _dummy(self) -> str:
        """A hash nobody's password matches, of the scheme real users' hashes have."""
        scheme = self._scheme()
        dummy = self._dummy_hashes.get(scheme)
        if dummy is None:
            dummy = hash_password("not a real password, only for timing", scheme)
            self._dummy_hashes[scheme] = dummy
        return dummy

    def _scheme(self) -> str:
        counts = {"argon2id": 0, "scrypt": 0}
        for user in self.users.all():
            if user.password_hash.startswith("$argon2"):
                counts["argon2id"] += 1
            elif user.password_hash.startswith(SCRYPT_PREFIX):
                counts["scrypt"] += 1
        if counts["argon2id"] != counts["scrypt"]:
            best = max(counts, key=lambda k: counts[k])
            return best if best == "scrypt" or argon2_available() else "scrypt"
        if self.hash_scheme is not None:
            return self.hash_scheme
        return "argon2id" if argon2_available() else "scrypt"

    async def login(
        self, username: str, password: str, code: str | None = None, *, source: str | None = None
    ) -> IssuedToken:
        """Raise :class:`AuthenticationError` (always :data:`INVALID`) or RateLimited."""
        try:
            return await self._login(username, password, code, source)
        except AuthenticationError as exc:
            self._audit(username, source, exc.reason)
            raise AuthenticationError(INVALID) from None
        except GuardError as exc:
            self._audit(username, source, exc.reason)
            raise

    async def _login(self, username: str, password: str, code: str | None, source: str | None) -> IssuedToken:
        if (
            not username
            or len(username) > 256
            or len(password) > 1024
            or (code is not None and len(code) > 16)
        ):
            raise AuthenticationError("malformed login request")
        await self.lockout.check(username, source)
        user = self.users.get(username)
        encoded = user.password_hash if user is not None else self._dummy()
        if self._limiter is None:
            # A few hashes at a time: argon2id wants ~64 MiB each, a login flood must not exhaust memory.
            self._limiter = anyio.CapacityLimiter(MAX_PARALLEL_HASHES)
        password_ok = await anyio.to_thread.run_sync(
            verify_password, encoded, password, limiter=self._limiter
        )
        secret = user.totp_secret if user is not None and user.totp_secret else self._dummy_secret
        step = totp.match_step(secret, code or "", now=self._clock())
        reason = None
        if user is None:
            reason = "unknown user"
        elif user.disabled:
            reason = "user disabled"
        elif not password_ok:
            reason = "wrong password"
        elif user.totp_secret:
            if step is None:
                reason = "wrong one-time code"
            elif not await self._fresh_step(username, step):
                reason = "one-time code already used"
        elif self.require_totp:
            reason = "user has no TOTP enrolled and TOTP is required"
        if reason is not None:
            await self.lockout.failure(username, source)
            raise AuthenticationError(reason)
        assert user is not None
        await self.lockout.success(username, source)
        amr = ["pwd", "otp", "mfa"] if user.totp_secret else ["pwd"]
        return self.issuer.issue(user.principal(), amr=amr, auth_time=self._clock())

    async def _fresh_step(self, username: str, step: int) -> bool:
        """Accept each time step once, and never one older than the last accepted."""
        window = totp.PERIOD * 4
        if await self.store.incr(f"{_TOTP_USED}{username}:{step}", ttl=window) != 1:
            return False
        last = await self.store.get(_TOTP_LAST + username)
        if last is not None and int(last) >= step:
            return False
        await self.store.set(_TOTP_LAST + username, str(step).encode(), ttl=window)
        return True

    def _audit(self, username: str, source: str | None, reason: str) -> None:
        if self.auditor is None:
            return
        try:
            self.auditor.record(
                AuditEvent(
                    method="login",
                    decision="deny",
                    event="authn",
                    principal={"subject": username[:256], "auth_method": "password"},
                    reasons=(reason,),
                    source_ip=source,
                    transport="http",
                )
            )
        except Exception:
            log.warning("could not audit a login refusal", exc_info=True)
