"""Signing in to the console with an admin's API key (or password + one-time code), and signing out.

The key is checked by the guard's own authenticators (so a revoked or expired
key fails here as it does on the MCP endpoint), then its holder must have an
admin role. Username + password + code, where ``[authn.passwords]`` is
configured, go through the login service (its lockout and audit) and end in a
token that is checked the same way. Wrong keys feed the same lockout as password logins (scope: the
console and the source address), and a locked source is refused before any key
is checked. Every attempt, whatever its outcome, is audited. The sign-in form
has its own CSRF token in a short-lived cookie, since there is no session yet.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..authn.lockout import Lockout
from ..authn.login import INVALID
from ..errors import AuthenticationError, GuardError, RateLimited
from ..protocols import Credential
from ..ratelimit import subject_key
from .core import Console, Refused, key_account, read_form, source_ip
from .html import csrf_field, esc, message, page, when
from .sessions import LOGIN_COOKIE, SESSION_COOKIE, new_token, tokens_match
from .standing import VIA_PASSWORD

#: Seconds the sign-in form's CSRF cookie lives.
FORM_TTL = 900


def _cookie(response: Response, request: Request, name: str, value: str, max_age: int | None) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/admin",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def _form(
    request: Request, error: str | None = None, status: int = 200, *, passwords: bool = False
) -> Response:
    token = new_token()
    problem = f'<p class="error">{esc(error)}</p>' if error else ""
    body = (
        f'{problem}<form method="post" action="/admin/login">{csrf_field(token)}'
        '<p><label>Admin API key <input type="password" name="key" autocomplete="off" required></label></p>'
        '<p><button type="submit">Sign in</button></p></form>'
    )
    if passwords:
        body += (
            f'<h2>Or with a password</h2><form method="post" action="/admin/login">{csrf_field(token)}'
            '<p><label>Username <input type="text" name="username" autocomplete="username" required>'
            "</label></p>"
            '<p><label>Password <input type="password" name="password" autocomplete="current-password" '
            "required></label></p>"
            '<p><label>One-time code <input type="text" name="code" inputmode="numeric" '
            'autocomplete="one-time-code"></label></p><p><button type="submit">Sign in</button></p></form>'
        )
    response = page("Sign in", body, status=status)
    _cookie(response, request, LOGIN_COOKIE, token, FORM_TTL)
    return response


async def login_page(console: Console, request: Request) -> Response:
    if await console.session(request) is not None:
        return RedirectResponse("/admin/approvals", status_code=303)
    return _form(request, passwords=console.login is not None)


async def login(console: Console, request: Request, lockout: Lockout) -> Response:
    console.same_site(request, None)
    fields = await read_form(request)
    source = source_ip(request)
    if not tokens_match(fields.get("csrf"), request.cookies.get(LOGIN_COOKIE)):
        console.record("console/login", "deny", None, request, reasons=("missing or wrong CSRF token",))
        raise Refused(message("Forbidden", "the form's CSRF token is missing or wrong: reload the page", 403))
    passwords = console.login is not None
    if "username" in fields and console.login is not None:
        token = await _password(console, request, fields, source)
        if isinstance(token, Response):
            return token
        key, bound = token, False
    else:
        key, bound = fields.get("key", ""), True
        try:
            await lockout.check(key_account(source), source)
        except RateLimited as exc:
            console.record("console/login", "deny", None, request, reasons=(exc.reason,))
            return _form(request, "too many failed sign-ins: try again later", 429, passwords=passwords)
        if not key or len(key) > 4096:
            await lockout.failure(key_account(source), source)
            console.record("console/login", "deny", None, request, reasons=("empty or oversized key",))
            return _form(request, "invalid key", 401, passwords=passwords)
    try:
        principal = await console.guard.identify(Credential(key, "http", source))
    except AuthenticationError as exc:
        await lockout.failure(key_account(source), source)
        console.record("console/login", "deny", None, request, reasons=(exc.reason,))
        return _form(request, "invalid key", 401, passwords=passwords)
    except GuardError as exc:
        console.record("console/login", "error", None, request, reasons=(exc.reason,))
        return _form(request, "sign-in is unavailable right now", 503, passwords=passwords)
    summary = dict(principal.summary())
    roles = console.roles_of(principal)
    if not console.is_admin(roles):
        console.record("console/login", "deny", summary, request, reasons=("not an admin",))
        return message("Forbidden", "the console is for administrators only", 403)
    console.ready()
    session_id, made, _ = await console.sessions.create(
        principal.subject,
        tuple(sorted(roles)),
        summary,
        # A key binds the session to itself (revoked or expired: signed out); a password sign-in's
        # token is only the means of sign-in, so its short life does not end the session.
        credential_id=principal.credential_id if bound else None,
        expires_at=principal.expires_at if bound else None,
        via=principal.auth_method if bound else VIA_PASSWORD,
        capped=False,  # older sessions end only once this sign-in is on record and stands
        person=subject_key(principal),  # another tenant's key of the same name is someone else
    )
    await console.record_action(
        console.event("console/login", "allow", summary, request),
        lambda: console.sessions.end(session_id),  # a sign-in not on record does not stand
    )
    await lockout.success(key_account(source), source)  # a sign-in taken back clears no counter
    dropped = await console.sessions.cap(session_id, made)
    cap = console.sessions.max_sessions
    for opened in dropped:  # the cap ended an older session: as much on record as a sign-out
        reason = f"at most {cap} sessions per administrator: the oldest, signed in at {when(opened)}, ended"
        await console.record_action(
            console.event("console/sessions.end", "allow", summary, request, reasons=(reason,))
        )
    response = RedirectResponse("/admin/approvals", status_code=303)
    _cookie(response, request, SESSION_COOKIE, session_id, None)
    response.delete_cookie(LOGIN_COOKIE, path="/admin", httponly=True, samesite="strict")
    return response


async def _password(
    console: Console, request: Request, fields: dict[str, str], source: str | None
) -> str | Response:
    """A token for username + password (+ one-time code) from the login service, or the refusal page.

    The service applies its own lockout and audits every refusal (``login`` events), as the
    login endpoint does.
    """
    assert console.login is not None
    code = fields.get("code") or None
    try:
        issued = await console.login.login(
            fields["username"], fields.get("password", ""), code, source=source
        )
    except RateLimited:
        return _form(request, "too many failed sign-ins: try again later", 429, passwords=True)
    except AuthenticationError:
        return _form(request, INVALID, 401, passwords=True)
    except GuardError:
        return _form(request, "sign-in is unavailable right now", 503, passwords=True)
    return issued.access_token


async def logout(console: Console, request: Request) -> Response:
    session = await console.admin(request, write=True)
    await console.form(request, session)
    await console.sessions.end(request.cookies.get(SESSION_COOKIE))
    await console.record_action(console.event("console/logout", "allow", session.principal, request))
    response = RedirectResponse("/admin/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/admin", httponly=True, samesite="strict")
    return response
