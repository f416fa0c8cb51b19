"""The console as a Starlette app, mounted at ``/admin`` beside the portal's MCP endpoint.

Routes (contract: ``docs/console.md``): ``/admin/login`` (GET form, POST
sign-in), ``/admin/logout`` (POST), ``/admin/overview`` (GET, the landing page),
``/admin/servers``, ``/admin/pins`` and ``/admin/users`` with their forms,
``/admin/approvals`` (GET) and
``/admin/approvals/{id}`` (POST a decision), ``/admin/audit`` (GET, filters in
the query string), ``/admin/audit/events/{id}``, ``/admin/audit/export``,
``/admin/audit/verify`` and
the stylesheet. Every response, errors included, carries the security headers
of :data:`~.html.SECURITY_HEADERS`; an unexpected error is a 500 page, never a
traceback.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ..audit.canonical import printable
from ..authn.lockout import Lockout
from ..integrations.sessions import AUDITED
from ..store import MemoryStore
from . import approvals, audit, overview, pins, servers, signin, users
from .core import RECORDED, AuditSource, Console, Refused
from .html import CSS, SECURITY_HEADERS, message
from .routing import ConsoleRoute, PlainPaths, fallback
from .sessions import ConsoleSessions

if TYPE_CHECKING:
    from ..authn.login import LoginService
    from ..config import ConsoleSection, GuardConfig
    from ..guard import Guard

logger = logging.getLogger("mcp_guard.console")

Handler = Callable[[Console, Request], Awaitable[Response]]


class SecurityHeaders:
    """ASGI middleware adding :data:`SECURITY_HEADERS` to every response of the console (and marking
    its requests as audited by the console itself)."""

    def __init__(self, app: Any, console: Console | None = None) -> None:
        self.app = app
        self.console = console
        self.headers = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        # The console audits its own refusals with its own reasons; the portal's audit of the
        # transport's bare 401/403s must not record them again as something else.
        scope[AUDITED] = True

        status = 0

        async def sending(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                names = {k for k, _ in self.headers}
                kept = [(k, v) for k, v in message.get("headers", ()) if k.lower() not in names]
                message = {**message, "headers": kept + self.headers}
            await send(message)

        await self.app(scope, receive, sending)
        if status >= 400 and self.console is not None and not scope.get(RECORDED):
            # Refused by routing or request parsing before a page said why (405, 404, 413, 400):
            # every refusal under /admin is on record.
            request = Request(scope)
            what = printable(f"{request.method} {request.url.path}")[:200]
            reason = f"HTTP {status}: {what}"
            try:  # a signed-in admin's refusal names them; the refusal is recorded either way
                session = await self.console.session(request)
            except Exception:
                session = None
            principal = session.principal if session is not None else None
            self.console.record("console/reject", "deny", principal, request, reasons=(reason,))


def _endpoint(console: Console, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(console, request)
        except Refused as refused:
            return refused.response
        except Exception as exc:
            logger.exception("console page %s failed", request.url.path)
            console.record("console/error", "error", None, request, reasons=(f"{type(exc).__name__}",))
            return message("Error", "the console could not answer this request", 500)

    return endpoint


def console_app(
    guard: Guard,
    settings: ConsoleSection,
    *,
    audit_source: AuditSource | None = None,
    login: LoginService | None = None,
    clock: Callable[[], float] = time.time,
) -> Starlette:
    """The console of ``guard``: sessions and lockout in its state store (in memory without one);
    ``login`` adds username + password (+ TOTP) sign-in beside the API key."""
    store = guard.store if guard.store is not None else MemoryStore()
    console = Console(
        guard,
        ConsoleSessions(
            store,
            settings.idle_timeout,
            clock,
            max_age=settings.max_age,
            max_sessions=settings.max_sessions_per_admin,
        ),
        admin_roles=tuple(settings.admin_roles),
        audit=audit_source,
        login=login,
        clock=clock,
    )
    lockout = Lockout(store)
    console.lockout = lockout

    async def sign_in(c: Console, request: Request) -> Response:
        return await signin.login(c, request, lockout)

    async def home(c: Console, request: Request) -> Response:
        return RedirectResponse("/admin/overview", status_code=303)

    async def stylesheet(c: Console, request: Request) -> Response:
        return Response(CSS, media_type="text/css")

    routes = [
        Route("/", _endpoint(console, home), methods=["GET"]),
        Route("/login", _endpoint(console, signin.login_page), methods=["GET"]),
        Route("/login", _endpoint(console, sign_in), methods=["POST"]),
        Route("/logout", _endpoint(console, signin.logout), methods=["POST"]),
        Route("/approvals", _endpoint(console, approvals.approvals_page), methods=["GET"]),
        Route("/approvals/{request_id}", _endpoint(console, approvals.decide), methods=["POST"]),
        Route("/audit", _endpoint(console, audit.audit_page), methods=["GET"]),
        Route("/audit/events/{event_id}", _endpoint(console, audit.event_page), methods=["GET"]),
        Route("/audit/export", _endpoint(console, audit.export), methods=["GET"]),
        Route("/audit/verify", _endpoint(console, audit.verify_page), methods=["GET"]),
        Route("/static/console.css", _endpoint(console, stylesheet), methods=["GET"]),
        Route("/overview", _endpoint(console, overview.overview_page), methods=["GET"]),
        Route("/servers", _endpoint(console, servers.servers_page), methods=["GET"]),
        Route("/servers/{name:path}", _endpoint(console, servers.change), methods=["POST"]),
        Route("/pins", _endpoint(console, pins.pins_page), methods=["GET"]),
        Route("/pins", _endpoint(console, pins.decide), methods=["POST"]),
        Route("/users", _endpoint(console, users.users_page), methods=["GET"]),
        Route("/keys", _endpoint(console, users.create_key), methods=["POST"]),
        Route("/keys/{key_id}/revoke", _endpoint(console, users.revoke_key), methods=["POST"]),
        Route("/users/{name}/unlock", _endpoint(console, users.unlock_user), methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    # No trailing-slash redirect built from the Host header: the console's own, relative one.
    app.router.redirect_slashes = False
    app.router.default = fallback(list(routes))
    app.add_middleware(PlainPaths)  # inside SecurityHeaders: its 404s carry the headers, on record
    app.add_middleware(SecurityHeaders, console=console)
    app.state.console = console
    return app


def audit_source(config: GuardConfig) -> AuditSource:
    """Where the console of ``config`` reads the trail (the first file store of ``[guard] audit``)."""
    from ..audit.config import AuditSettings
    from ..audit.sinks import store_path

    path: Path | None = None
    for url in config.guard.audit:
        path = store_path(config.resolve_url(url), config.base_dir)
        if path is not None:
            break
    return AuditSource(path, AuditSettings.model_validate(config.audit), config.base_dir)


def password_login(config: GuardConfig, guard: Guard) -> LoginService | None:
    """The login service of ``[authn.passwords]`` (None without it, or without a state store)."""
    if not config.authn or guard.store is None:
        return None
    from ..authn.config import AuthnSettings, build_login_service

    settings = AuthnSettings.model_validate(config.authn)
    return build_login_service(settings, guard.store, config.base_dir, auditor=guard.auditor)


def console_routes(app: Starlette) -> list[BaseRoute]:
    """The route that serves ``app`` beside the MCP endpoint: every path beginning with ``/admin``."""
    return [ConsoleRoute(app)]
