"""What every console page shares: the guard, the sessions, who is asking, CSRF, and auditing.

A request under ``/admin`` is served for an administrator only: one with a
live console session, or (for reading pages) one presenting an admin's API key
as ``Authorization: Bearer``. Anyone else is sent to the sign-in page (a
browser without a session) or refused with 403 (a non-admin credential, a POST
without a session). A POST must carry the session's CSRF token. Every admin
action is audited with the admin's subject; when the audit trail cannot take
events the action is refused before it is done (fail closed).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import anyio
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..errors import AuthenticationError, GuardError
from ..model import AuditEvent, Principal
from ..protocols import Credential
from .html import message
from .refusals import RefusalGate, Summary
from .sessions import SESSION_COOKIE, ConsoleSession, ConsoleSessions
from .standing import Standing

if TYPE_CHECKING:
    from ..audit.config import AuditSettings
    from ..authn.lockout import Lockout
    from ..authn.login import LoginService
    from ..guard import Guard
    from ..portal import Portal

logger = logging.getLogger("mcp_guard.console")

#: Set in a request's scope once the console recorded an event for it.
RECORDED = "mcp_guard.console.recorded"
#: Largest form body the console reads (a note is short; anything bigger is refused with 413).
MAX_FORM = 16 * 1024


@dataclass(frozen=True, slots=True)
class AuditSource:
    """Where the console reads the trail: the store file, and the ``[audit]`` settings (key, anchor)."""

    path: Path | None
    settings: AuditSettings
    base_dir: Path


class Refused(Exception):
    """A console request refused with ``response`` (raised by the checks, answered by the app)."""

    def __init__(self, response: Response) -> None:
        super().__init__("refused")
        self.response = response


class Console:
    """The console's shared state and checks; the pages are functions of it."""

    def __init__(
        self,
        guard: Guard,
        sessions: ConsoleSessions,
        *,
        admin_roles: tuple[str, ...],
        audit: AuditSource | None = None,
        login: LoginService | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.guard = guard
        self.sessions = sessions
        self.admin_roles = frozenset(admin_roles)
        self.audit = audit
        #: Username + password (+ TOTP) sign-in, where ``[authn.passwords]`` is configured.
        self.login = login
        self.clock = clock
        #: The last chain verification (``console.audit.Verification``), shown on the Audit page.
        self.verified: Any = None
        #: Failed keys slow down per address (set by the app; sign-ins and bearer reads share it).
        self.lockout: Lockout | None = None
        #: The portal serving the console (its upstreams' health, its registry), set by the portal.
        self.portal: Portal | None = None
        #: Whether a session's key or user still stands, asked on every request (briefly cached).
        self.standing = Standing(guard, login, self.admin_roles_of)
        #: Which refusals of unknown callers are recorded one by one, and the count of the others.
        self.refusals = RefusalGate()
        guard.run_in_background(self.write_refusal_counts)

    # ------------------------------------------------------------------ who asks
    def roles_of(self, principal: Principal) -> frozenset[str]:
        """The principal's roles after the policy's inheritance (what approver lists are written against)."""
        effective = getattr(self.guard.policy, "effective_roles", None)
        if effective is not None:
            try:
                return frozenset(effective(principal))
            except Exception:  # a policy plugin that cannot say: its own roles only
                return principal.roles
        return principal.roles

    def is_admin(self, roles: frozenset[str]) -> bool:
        return bool(roles & self.admin_roles)

    def admin_roles_of(self, principal: Principal) -> frozenset[str] | None:
        """The principal's effective roles when they make an administrator, else None."""
        roles = self.roles_of(principal)
        return roles if self.is_admin(roles) else None

    async def session(self, request: Request) -> ConsoleSession | None:
        """The request's live session, with the roles its key or user has now; a session whose
        key or user is gone, or no longer an administrator, ends here (and that is on record)."""
        cookie = request.cookies.get(SESSION_COOKIE)
        session = await self.sessions.get(cookie)
        if session is None:
            return None
        roles = await self.standing.roles(session)
        if roles is None:
            await self.sessions.end(cookie)
            reason = "session ended: its key or user is no longer there or no longer an admin"
            self.record("console/access", "deny", session.principal, request, reasons=(reason,))
            return None
        return session if roles == session.roles else replace(session, roles=roles)

    async def admin(self, request: Request, *, write: bool = False) -> ConsoleSession:
        """The administrator making ``request``, or raise :class:`Refused`.

        A bearer credential is honoured for reading pages only; actions need a
        session and its CSRF token (checked by :meth:`form`).
        """
        header = request.headers.get("authorization")
        if header is not None:
            return await self._bearer(request, header, write)
        session = await self.session(request)
        if session is None:
            if write:
                self.record("console/access", "deny", None, request, reasons=("no console session",))
                raise Refused(message("Sign in", "sign in to the console first", 403))
            raise Refused(RedirectResponse("/admin/login", status_code=303))
        return session

    async def _bearer(self, request: Request, header: str, write: bool) -> ConsoleSession:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Refused(message("Forbidden", "unsupported Authorization header", 403))
        source = source_ip(request)
        lockout, account = self.lockout, key_account(source)
        if lockout is not None:  # the same lockout as key sign-ins: reading must not be a way around it
            try:
                await lockout.check(account, source)
            except GuardError as exc:
                self.record("console/access", "deny", None, request, reasons=(exc.reason,))
                raise Refused(
                    message("Too many attempts", "too many failed keys: try again later", 429)
                ) from None
        try:
            principal = await self.guard.identify(Credential(token.strip(), "http", source))
        except GuardError as exc:
            if lockout is not None and isinstance(exc, AuthenticationError):
                await lockout.failure(account, source)
            self.record("console/access", "deny", None, request, reasons=(exc.reason,))
            raise Refused(message("Forbidden", "the credential was not accepted", 403)) from None
        roles = self.roles_of(principal)
        if not self.is_admin(roles):
            self.record("console/access", "deny", principal.summary(), request, reasons=("not an admin",))
            raise Refused(message("Forbidden", "the console is for administrators only", 403))
        if write:
            reasons = ("a key reads the console; acting needs a session",)
            self.record("console/access", "deny", principal.summary(), request, reasons=reasons)
            raise Refused(message("Forbidden", "sign in to the console to act: a key is for reading", 403))
        now = self.clock()
        return ConsoleSession(
            principal.subject, tuple(sorted(roles)), dict(principal.summary()), "", now, now
        )

    async def form(self, request: Request, session: ConsoleSession | None) -> dict[str, str]:
        """The POSTed form (first value of each field); 403 without the session's CSRF token."""
        self.same_site(request, session.principal if session is not None else None)
        fields = await read_form(request)
        if session is not None and not session.csrf_ok(fields.get("csrf")):
            self.record(
                "console/csrf", "deny", session.principal, request, reasons=("missing or wrong CSRF token",)
            )
            raise Refused(
                message("Forbidden", "the form's CSRF token is missing or wrong: reload the page", 403)
            )
        return fields

    def same_site(self, request: Request, principal: dict[str, Any] | None) -> None:
        """Refuse (403, audited) a form posted from another site's page, whatever token it carries.

        Browsers name the page a POST comes from (``Origin``, ``Sec-Fetch-Site``); the CSRF token
        already stops forged forms, this stops one that somehow learnt it.
        """
        if not foreign(request):
            return
        origin = request.headers.get("origin", "")[:200]
        self.record(
            "console/csrf", "deny", principal, request, reasons=(f"cross-site form post from {origin!r}",)
        )
        raise Refused(message("Forbidden", "forms are only accepted from the console's own pages", 403))

    # ------------------------------------------------------------------ audit
    def event(
        self,
        method: str,
        decision: str,
        principal: dict[str, Any] | None,
        request: Request,
        **fields: Any,
    ) -> AuditEvent:
        request.scope[RECORDED] = True  # the console said why; no generic refusal event is added
        return AuditEvent(
            method=method,
            decision=decision,  # type: ignore[arg-type]
            event="console",
            principal=principal,
            source_ip=source_ip(request),
            transport="http",
            **fields,
        )

    def record(
        self, method: str, decision: str, principal: dict[str, Any] | None, request: Request, **fields: Any
    ) -> None:
        """Best effort, for refusals: the refusal stands whatever happens to its event.

        A refusal of an unknown caller goes through :attr:`refusals`: beyond its burst per
        address it is counted, and written later as part of a ``console/refusals`` event.
        """
        event = self.event(method, decision, principal, request, **fields)
        if principal is None and decision == "deny":
            self.guard.ensure_background()  # the job that writes the counts of windows gone quiet
            full, over = self.refusals.admit(event.source_ip)
            self.summarise(over)
            if not full:
                return
        self.guard.record_nowait(event)

    def summarise(self, summaries: list[Summary]) -> None:
        """One ``console/refusals`` event per address and window of counted refusals."""
        for summary in summaries:
            self.guard.record_nowait(
                AuditEvent(
                    method="console/refusals",
                    decision="deny",
                    event="console",
                    source_ip=summary.source,
                    transport="http",
                    reasons=summary.reasons(),
                )
            )

    async def write_refusal_counts(self) -> None:
        """Background job: write the counts of windows that are over; at close, of all of them."""
        try:
            while True:
                await anyio.sleep(max(1.0, self.refusals.window / 10))
                self.summarise(self.refusals.expired())
        finally:
            self.summarise(self.refusals.drain())

    def ready(self) -> None:
        """Raise :class:`Refused` (503) when the audit trail cannot take events: no unaudited action."""
        try:
            self.guard.check_audit()
        except GuardError as exc:
            raise Refused(
                message("Unavailable", f"the audit trail is unavailable ({exc.reason})", 503)
            ) from None

    async def record_action(
        self,
        event: AuditEvent,
        undo: Callable[[], Awaitable[object]] | None = None,
        *,
        session: ConsoleSession | None = None,
    ) -> None:
        """Audit a done admin action (:meth:`ready` allowed it), or raise :class:`Refused` (503).

        The trail can still fail between :meth:`ready` and this write (a sink that fails on the
        commit itself, a shutdown). An action that can be taken back is then taken back with
        ``undo``, so no change stands unaudited. One that cannot (a decision already announced to
        a waiting call, a revocation, which only ever takes access away) stands, and the
        administrator is told so instead of being shown success; either way the server log says it.
        """
        try:
            await self.guard.record(event)
        except GuardError as exc:
            logger.error(
                "console action %s by %s could not be audited (%s)%s",
                event.method,
                (event.principal or {}).get("subject"),
                exc.reason,
                "; it is undone" if undo is not None else "; it stands",
            )
            if undo is not None:
                try:
                    await undo()
                except Exception:
                    logger.exception("console action %s could not be undone", event.method)
                    raise Refused(
                        message(
                            "Unavailable",
                            "the audit trail failed and the action could not be undone: see the server log",
                            503,
                            session,
                        )
                    ) from None
                text = "the audit trail could not take the event, so nothing was changed: try again later"
            else:
                text = "the action was done, but the audit trail could not take its event: see the server log"
            raise Refused(message("Unavailable", text, 503, session)) from None


def foreign(request: Request) -> bool:
    """Whether the browser says the request comes from a page of another origin.

    ``Origin: null`` (an opaque origin: a sandboxed frame, a ``data:`` page, or a page whose
    referrer policy hides it) counts as foreign unless the browser also says ``Sec-Fetch-Site:
    same-origin``.
    """
    site = request.headers.get("sec-fetch-site", "").lower()
    if site == "cross-site":
        return True
    origin = request.headers.get("origin")
    if origin is None:
        return False
    if origin == "null":
        return site != "same-origin"
    return origin.lower() != f"{request.url.scheme}://{request.url.netloc}".lower()


def key_account(source: str | None) -> str:
    """The lockout's account for key sign-ins from ``source``.

    A key names no account before it is checked, and keys are long random secrets: guessing
    them is slowed per address. One account for every key sign-in would let anyone lock every
    administrator out by failing from a few addresses.
    """
    return f"console-key|{source or '-'}"


def source_ip(request: Request) -> str | None:
    return request.client.host if request.client is not None else None


async def read_form(request: Request) -> dict[str, str]:
    """A urlencoded form body (at most :data:`MAX_FORM` bytes, else :class:`Refused`); {} for another type."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        return {}  # no fields, so no CSRF token: refused with 403 like any other POST without one
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            raise Refused(message("Bad request", "form too large", 413))
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise Refused(message("Bad request", "the form is not UTF-8", 400)) from None
    return {k: v[0] for k, v in parsed.items() if v}
