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

from ..errors import AuditUnavailable, AuthenticationError, GuardError
from ..model import AuditEvent
from ..protocols import Auditor, StateStore
from ..ratelimit import person_key
from . import totp
from .issuer import IssuedToken, TokenIssuer
from .lockout import Lockout
from .passwords import SCRYPT_PREFIX, argon2_available, hash_password, verify_password
from .users import User, UsersFile

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
        """Raise :class:`AuthenticationError` (always :data:`INVALID`) or RateLimited.

        Whatever the inputs, a failed attempt is audited; one that reached the credential
        check (or was malformed) is also counted by the lockout.
        """
        try:
            return await self._login(username, password, code, source)
        except AuthenticationError as exc:
            self._audit(username, source, exc.reason)
            raise AuthenticationError(INVALID) from None
        except GuardError as exc:
            self._audit(username, source, exc.reason)
            raise
        except Exception as exc:  # not a refusal we decided: audit it, then let the caller fail closed
            self._audit(username, source, f"login error ({type(exc).__name__})")
            raise

    async def refuse(self, username: object, source: str | None, reason: str) -> None:
        """Count and audit a request refused before it reached :meth:`login` (malformed body,
        wrong field types): every login input ends in a counted, audited refusal."""
        account = _printable(username)
        await self._count_failure(account, source)
        self._audit(account, source, reason)

    async def _count_failure(self, account: str, source: str | None) -> None:
        """Feed the lockout; on a refusal path, so a store error must not turn it into a crash."""
        try:
            await self.lockout.failure(account, source)
        except Exception:
            log.warning("could not count a login failure", exc_info=True)

    async def _login(self, username: str, password: str, code: str | None, source: str | None) -> IssuedToken:
        malformed = _malformed(username, password, code)
        if malformed is not None:
            await self._count_failure(_printable(username), source)
            raise AuthenticationError(f"malformed login request ({malformed})")
        await self.lockout.check(username, source, person=self.person(username))
        try:
            user, reason = await self._check(username, password, code)
        except Exception as exc:  # any crash of a credential check is a refusal, counted like one
            log.warning("login credential check failed", exc_info=True)
            user, reason = None, f"credential check failed ({type(exc).__name__})"
        if reason is not None:
            await self._count_failure(username, source)
            raise AuthenticationError(reason)
        assert user is not None
        await self.lockout.success(username, source)
        amr = ["pwd", "otp", "mfa"] if user.totp_secret else ["pwd"]
        token = self.issuer.issue(user.principal(), amr=amr, auth_time=self._clock())
        await self._record_issued(user, token, source)
        return token

    def person(self, username: str) -> str:
        """Who a login as ``username`` becomes: that subject as our issuer vouches for it
        (:func:`~mcp_guard.ratelimit.subject_key` of the tokens it gets), the one an anomaly
        hold of their calls names."""
        return person_key(username, self.issuer.issuer)

    async def _record_issued(self, user: User, token: IssuedToken, source: str | None) -> None:
        """Put the issued token on record before it is handed out, or hand out nothing.

        A bearer token is access: the trail must name its holder, source and ``jti`` (the handle
        ``keys revoke --jti`` takes). The token is not returned when the event cannot be written,
        so nobody holds a credential the trail does not know of.
        """
        if self.auditor is None:
            return
        summary = {**user.principal().summary(), "mfa": bool(user.totp_secret)}
        event = AuditEvent(
            method="login",
            decision="allow",
            event="authn",
            principal=summary,
            target=token.jti,
            reasons=(f"token issued, valid {token.expires_in} s",),
            source_ip=source,
            transport="http",
        )
        try:
            if self.auditor.synchronous:
                await self.auditor.record_sync(event)
            else:
                self.auditor.record(event)
        except Exception as exc:
            raise AuditUnavailable(f"login of {user.name!r} could not be audited: {exc!r}") from None

    async def _check(self, username: str, password: str, code: str | None) -> tuple[User | None, str | None]:
        """The user and None when the credentials are right, else the reason they are not."""
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
        if user is None:
            return None, "unknown user"
        if user.disabled:
            return user, "user disabled"
        if not password_ok:
            return user, "wrong password"
        if user.totp_secret:
            if step is None:
                return user, "wrong one-time code"
            if not await self._fresh_step(username, step):
                return user, "one-time code already used"
        elif self.require_totp:
            return user, "user has no TOTP enrolled and TOTP is required"
        return user, None

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

    def _audit(self, username: object, source: str | None, reason: str) -> None:
        if self.auditor is None:
            return
        try:
            self.auditor.record(
                AuditEvent(
                    method="login",
                    decision="deny",
                    event="authn",
                    principal={"subject": _printable(username), "auth_method": "password"},
                    reasons=(reason,),
                    source_ip=source,
                    transport="http",
                )
            )
        except Exception:
            log.warning("could not audit a login refusal", exc_info=True)


def _printable(text: object) -> str:
    """``text`` cut to 256 characters and made encodable (lone surrogates escaped), for audit
    events and lockout keys; "" for anything but a string."""
    if not isinstance(text, str):
        return ""
    return text[:256].encode("utf-8", "backslashreplace").decode("utf-8")


def _malformed(username: object, password: object, code: object) -> str | None:
    """Why the fields cannot be a login attempt, or None. Types are checked too, for callers
    other than the HTTP route."""
    if not isinstance(username, str) or not isinstance(password, str):
        return "username and password must be strings"
    if code is not None and not isinstance(code, str):
        return "one-time code must be a string"
    if not username or len(username) > 256 or len(password) > 1024 or (code is not None and len(code) > 16):
        return "field empty or too long"
    for text in (username, password, code or ""):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "field is not valid Unicode text"
    return None
