"""Server-side console sessions and their CSRF tokens, kept in the guard's state store.

A session also ends when the credential it was opened with expires or is revoked
(:meth:`ConsoleSessions.get` checks the store's revocation set on every request).

The browser holds only a random session id; the store holds who signed in,
their roles, the session's CSRF token and when it was last used (under a hash
of the id, so a leaked store dump names no usable cookie). A session unused
for ``idle`` seconds is gone: checked against ``last_seen`` on every request,
and the store's TTL removes it even when nobody asks again. Sign-out deletes it.
Every replica sharing the store shares the sessions.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

from ..authn.revocation import RevocationList
from ..protocols import StateStore

_PREFIX = "console:session:"
_ADMIN = "console:admin:"

#: Name of the session cookie (path ``/admin``, HttpOnly, SameSite=Strict, Secure over TLS).
SESSION_COOKIE = "mcp_guard_console"
#: Name of the cookie that carries the sign-in form's CSRF token before there is a session.
LOGIN_COOKIE = "mcp_guard_console_login"


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    """One signed-in administrator."""

    subject: str
    roles: tuple[str, ...]
    #: What audit events of this session name as the principal (``Principal.summary()``).
    principal: dict[str, Any]
    csrf: str
    created: float
    last_seen: float
    #: The signing-in credential's id (API key id, JWT ``jti``): revoking it ends the session.
    credential_id: str | None = None
    #: When that credential expires: the session ends with it.
    expires_at: float | None = None
    #: How it was opened (``api_key``, ``password``, or the credential's auth method): what
    #: :mod:`.standing` looks up again to see that the key or user is still there.
    via: str | None = None
    #: The administrator as one person (the subject per issuer or tenant key book,
    #: :func:`~mcp_guard.ratelimit.subject_key`): whose sessions this one counts against.
    person: str | None = None

    def csrf_ok(self, token: object) -> bool:
        """Whether a submitted form's token is this session's (constant time)."""
        return isinstance(token, str) and hmac.compare_digest(token.encode(), self.csrf.encode())


def new_token() -> str:
    """A random URL-safe token (session ids and CSRF tokens): 256 bits."""
    return secrets.token_urlsafe(32)


def tokens_match(a: object, b: object) -> bool:
    """Two non-empty string tokens equal, compared in constant time."""
    if not isinstance(a, str) or not isinstance(b, str) or not a or not b:
        return False
    return hmac.compare_digest(a.encode(), b.encode())


class ConsoleSessions:
    """Create, find (refreshing the idle timer) and end console sessions."""

    def __init__(
        self,
        store: StateStore,
        idle: float,
        clock: Callable[[], float] = time.time,
        max_age: float = 43200.0,
        max_sessions: int = 5,
    ) -> None:
        self.store = store
        self.idle = idle
        self.clock = clock
        #: However busy, a session ends this long after sign-in: a credential removed from the
        #: config or a user removed from the users file stops working by then at the latest.
        self.max_age = max_age
        #: Sessions one subject may have at once: a stolen cookie cannot hide among hundreds of
        #: sign-ins, and a script signing in on every run does not fill the store.
        self.max_sessions = max_sessions

    @staticmethod
    def _key(session_id: str) -> str:
        return _PREFIX + hashlib.sha256(session_id.encode()).hexdigest()

    async def create(
        self,
        subject: str,
        roles: tuple[str, ...],
        principal: dict[str, Any],
        *,
        credential_id: str | None = None,
        expires_at: float | None = None,
        via: str | None = None,
        capped: bool = True,
        person: str | None = None,
    ) -> tuple[str, ConsoleSession, list[float]]:
        """A new session id (for the cookie), its session, and when the sessions it ended (the
        subject's oldest beyond :attr:`max_sessions`) were opened: the caller puts those on record.

        With ``capped=False`` no older session is ended yet: the caller applies the cap with
        :meth:`cap` once the sign-in stands (a sign-in taken back must not have ended any).
        ``person`` names whose sessions are capped when ``subject`` alone could be two people's
        (a key another tenant's admin named after this one must not end their sessions).
        """
        now = self.clock()
        session = ConsoleSession(
            subject,
            roles,
            principal,
            new_token(),
            now,
            now,
            credential_id=credential_id,
            expires_at=expires_at,
            via=via,
            person=person,
        )
        session_id = new_token()
        await self._save(session_id, session)
        dropped = await self._cap(person or subject, self._key(session_id), now) if capped else []
        return session_id, session, dropped

    async def cap(self, session_id: str, session: ConsoleSession) -> list[float]:
        """Count a session :meth:`create` opened with ``capped=False`` and end the subject's oldest."""
        return await self._cap(session.person or session.subject, self._key(session_id), session.created)

    async def _cap(self, subject: str, key: str, now: float) -> list[float]:
        """Add ``key`` to the sessions of ``subject`` (the person, when known) and end the oldest
        beyond :attr:`max_sessions`.

        The list lives beside the sessions (``console:admin:`` + a hash of the subject); ended or
        expired sessions drop out of it here. Returns when each session it ended was opened.
        Two sign-ins racing on two replicas may leave one session too many until the next sign-in:
        the cap bounds, it does not count exactly.
        """
        index = _ADMIN + hashlib.sha256(subject.encode()).hexdigest()
        try:
            listed = [(str(k), float(t)) for k, t in json.loads(await self.store.get(index) or b"[]")]
        except (ValueError, TypeError):
            listed = []
        live = [(k, t) for k, t in listed if await self.store.get(k) is not None]
        live.append((key, now))
        live.sort(key=lambda item: item[1])
        dropped = live[: -self.max_sessions]
        for old, _ in dropped:
            await self.store.delete(old)
        kept = live[-self.max_sessions :]
        await self.store.set(index, json.dumps(kept).encode(), ttl=self.max_age)
        return [opened for _, opened in dropped]

    async def get(self, session_id: str | None) -> ConsoleSession | None:
        """The live session of ``session_id`` (idle timer restarted); None when unknown or idle too long."""
        if not session_id or len(session_id) > 128:
            return None
        raw = await self.store.get(self._key(session_id))
        if raw is None:
            return None
        try:
            data = json.loads(raw)
            data["roles"] = tuple(data["roles"])
            session = ConsoleSession(**data)
        except (ValueError, TypeError, KeyError):
            await self.store.delete(self._key(session_id))
            return None
        now = self.clock()
        expired = (session.expires_at is not None and now >= session.expires_at) or (
            now - session.created >= self.max_age
        )
        if now - session.last_seen >= self.idle or expired:
            await self.store.delete(self._key(session_id))
            return None
        if session.credential_id is not None and await RevocationList(self.store).is_revoked(
            session.credential_id
        ):
            await self.store.delete(self._key(session_id))
            return None
        session = replace(session, last_seen=now)
        await self._save(session_id, session)
        return session

    async def end(self, session_id: str | None) -> None:
        """Sign out: the session id stops working at once."""
        if session_id and len(session_id) <= 128:
            await self.store.delete(self._key(session_id))

    async def _save(self, session_id: str, session: ConsoleSession) -> None:
        body = json.dumps(asdict(session), separators=(",", ":")).encode()
        await self.store.set(self._key(session_id), body, ttl=self.idle)
