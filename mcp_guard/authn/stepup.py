"""Step-up at call time: a rule's ``step_up`` asks for a fresh MFA instead of only refusing.

When a call needs an MFA its credential does not carry, the guard starts a
step-up bound to the caller's subject (a random id in the state store, valid
ten minutes) and points the caller at the step-up page with a URL-mode
elicitation. On that page the user signs in with password and one-time code
(the same :class:`~mcp_guard.authn.login.LoginService` as ``POST /login``, so
lockout and audit apply); when the user who signs in is the subject the
step-up was started for, the store records an MFA for that subject at that
moment. A retried call of the subject then meets ``step_up`` for as long as
the rule's ``max_age`` allows. Each id is used once.
"""

from __future__ import annotations

import html
import json
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, quote

if TYPE_CHECKING:
    from starlette.routing import Route

    from ..protocols import StateStore
    from .login import LoginService

__all__ = ["StepUps", "step_up_routes"]

_REQ = "authn:stepup:req:"
_MFA = "authn:stepup:mfa:"
MAX_BODY = 8 * 1024


class StepUps:
    """Step-ups started by the guard and completed on the page, in the state store."""

    def __init__(
        self, store: StateStore, url: str, *, ttl: float = 600.0, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.url = url
        self.ttl = ttl
        self.clock = clock

    async def begin(self, subject: str, person: str | None = None) -> str:
        """A new step-up id for ``subject``; the MFA it records is ``person``'s.

        ``person`` is the caller as one person (the subject per issuer or tenant key book,
        :func:`~mcp_guard.ratelimit.subject_key`): a subject name alone may be two people's, and
        the MFA one of them gives on the page must not let the other's calls through.
        """
        step_id = secrets.token_urlsafe(16)
        value = json.dumps([subject, person or subject])
        await self.store.set(_REQ + step_id, value.encode(), ttl=self.ttl)
        return step_id

    def link(self, step_id: str) -> str:
        return self.url + ("&" if "?" in self.url else "?") + "id=" + quote(step_id, safe="")

    async def complete(self, step_id: str, subject: str) -> bool:
        """Record an MFA now for the person ``step_id`` was started for, when ``subject`` is their
        name (once)."""
        started = await self.store.take(_REQ + step_id)
        if started is None:
            return False
        try:
            name, person = json.loads(started)
        except ValueError:  # written before persons were kept: the name is all there is
            name = person = started.decode()
        if name != subject:
            return False
        await self.store.set(_MFA + quote(person, safe=""), repr(self.clock()).encode(), ttl=86400.0)
        return True

    async def mfa_age(self, person: str) -> float | None:
        """Seconds since ``person`` (as given to :meth:`begin`) last stepped up on the page, or None."""
        raw = await self.store.get(_MFA + quote(person, safe=""))
        return self.clock() - float(raw.decode()) if raw is not None else None


_FORM = """<!doctype html><html><head><meta charset="utf-8"><title>Confirm it is you</title></head>
<body><h1>Confirm it is you</h1><p>{message}</p>
<form method="post"><input type="hidden" name="id" value="{step_id}">
<p><label>Username <input name="username" autocomplete="username"></label></p>
<p><label>Password <input name="password" type="password" autocomplete="current-password"></label></p>
<p><label>One-time code <input name="totp" inputmode="numeric" autocomplete="one-time-code"></label></p>
<p><button type="submit">Sign in</button></p></form></body></html>"""
_HEADERS = {"Cache-Control": "no-store", "Content-Security-Policy": "default-src 'none'; form-action 'self'"}


def step_up_routes(service: LoginService, step_ups: StepUps, *, path: str = "/login/step-up") -> list[Route]:
    """``GET {path}?id=...``: the sign-in form; ``POST {path}``: password + code, then the step-up."""
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, Response
    from starlette.routing import Route

    from ..errors import GuardError

    def page(message: str, step_id: str = "", status: int = 200, form: bool = True) -> Response:
        body = (
            _FORM.format(message=html.escape(message), step_id=html.escape(step_id, quote=True))
            if form
            else f"<!doctype html><html><body><p>{html.escape(message)}</p></body></html>"
        )
        return HTMLResponse(body, status_code=status, headers=_HEADERS)

    async def show(request: Request) -> Response:
        step_id = request.query_params.get("id", "")
        return page("Sign in again to allow the call that is waiting.", step_id)

    async def submit(request: Request) -> Response:
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                return page("request too large", status=413, form=False)
        fields = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items() if v}
        step_id, username = fields.get("id", ""), fields.get("username", "")
        source = request.client.host if request.client else None
        try:
            await service.login(username, fields.get("password", ""), fields.get("totp"), source=source)
        except GuardError:
            return page("Invalid username, password or one-time code.", step_id, status=401)
        if not await step_ups.complete(step_id, username):
            return page("This link has expired, was used, or is for another user.", status=400, form=False)
        return page("Done. Return to your application and retry the call.", form=False)

    return [Route(path, show, methods=["GET"]), Route(path, submit, methods=["POST"])]
