"""How requests reach the console: every path under ``/admin``, and redirects that stay on the site.

A plain ``Mount("/admin")`` matches ``/admin/`` followed by anything but a
newline (its pattern is a regex ``.*``), so ``/admin/%0a`` fell through to the
portal's own 404, without the console's security headers and unaudited. The
console claims every path that starts with ``/admin`` instead (:class:`ConsoleRoute`).

Starlette's trailing-slash redirect builds an absolute URL from the request's
``Host`` header; anyone who can set it chooses where a browser is sent. The
console turns that off and redirects itself, always to a relative ``/admin/...``
path (:func:`fallback`), and answers unknown paths with its own 404 page.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import BaseRoute, Match
from starlette.types import Receive, Scope, Send

from .html import message

#: Where the console is served on the portal's listener.
PREFIX = "/admin"


class ConsoleRoute(BaseRoute):
    """A route of the portal that gives the console every path beginning with :data:`PREFIX`."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] not in ("http", "websocket"):
            return Match.NONE, {}
        root = scope.get("root_path", "")
        path: str = scope["path"]
        if root and path.startswith(root):
            path = path[len(root) :]
        if not path.startswith(PREFIX):
            return Match.NONE, {}
        return Match.FULL, {"root_path": root + PREFIX, "endpoint": self.app}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        from starlette.routing import NoMatchFound

        raise NoMatchFound(name, path_params)


class PlainPaths:
    """ASGI middleware: a path with a control character (``%0a``, ``%1b``...) is no console page.

    Starlette's route patterns end in ``$``, which also matches before a final newline, so
    ``/admin/approvals%0a`` would otherwise be served as ``/admin/approvals``.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and any(ord(c) < 32 or ord(c) == 127 for c in path):
            await message("Not found", "there is no such console page", 404)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def fallback(routes: list[BaseRoute]) -> Any:
    """The console router's answer when no route matched: a relative redirect or a 404 page.

    ``/admin`` goes to the Approvals page; ``/admin/PAGE/`` to ``/admin/PAGE`` when that is a
    page for this method; anything else is the console's 404 (with its headers, and on record).
    """

    async def answer(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # a websocket under /admin: nothing here accepts one, so it is closed
        request = Request(scope)
        here = scope.get("root_path", "")
        path: str = scope["path"]
        rest = path[len(here) :] if path.startswith(here + "/") or path == here else None
        response: Any = message("Not found", "there is no such console page", 404)
        if rest in ("", "/") and request.method in ("GET", "HEAD"):
            response = RedirectResponse(PREFIX + "/overview", status_code=303)
        elif rest is not None and len(rest) > 1 and rest.endswith("/"):
            bare = {**scope, "path": here + rest.rstrip("/")}
            if any(route.matches(bare)[0] is Match.FULL for route in routes):
                query = scope.get("query_string", b"").decode("latin-1")
                target = PREFIX + rest.rstrip("/") + (f"?{query}" if query else "")
                # RedirectResponse percent-encodes what a Location header must not carry.
                response = RedirectResponse(target, status_code=307)
        await response(scope, receive, send)

    return answer
