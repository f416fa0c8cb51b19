"""Starlette routes for the login endpoint and our public JWKS, to mount next to ``/mcp``."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..errors import AuthenticationError, RateLimited
from .login import INVALID, LoginService

MAX_BODY = 8 * 1024
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _error(status: int, error: str, description: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=status,
        headers={**_NO_STORE, **(headers or {})},
    )


def login_routes(
    service: LoginService, *, path: str = "/login", jwks_path: str = "/.well-known/jwks.json"
) -> list[Route]:
    """``POST {path}`` with JSON ``{username, password, totp}`` -> ``{access_token, token_type,
    expires_in}``; ``GET {jwks_path}`` -> the issuer's public keys."""

    async def login(request: Request) -> Response:
        if "application/json" not in request.headers.get("content-type", ""):
            return _error(415, "invalid_request", "send application/json")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                return _error(413, "invalid_request", "request body too large")
        try:
            data: Any = json.loads(bytes(body))
        except ValueError:
            return _error(400, "invalid_request", "body is not JSON")
        if not isinstance(data, dict):
            return _error(400, "invalid_request", "expected a JSON object")
        username, password, code = data.get("username"), data.get("password"), data.get("totp")
        if (
            not isinstance(username, str)
            or not isinstance(password, str)
            or not isinstance(code, (str, type(None)))
        ):
            return _error(400, "invalid_request", "username and password (strings) are required")
        source = request.client.host if request.client else None
        try:
            token = await service.login(username, password, code, source=source)
        except RateLimited as exc:
            retry = max(1, round(exc.retry_after or 1))
            return _error(
                429, "temporarily_unavailable", "too many failed attempts", {"Retry-After": str(retry)}
            )
        except AuthenticationError:
            return _error(401, "invalid_grant", INVALID)
        except Exception:  # fail closed, and never leak internals
            return _error(500, "server_error", "login unavailable")
        return JSONResponse(token.as_dict(), headers=_NO_STORE)

    async def jwks(request: Request) -> Response:
        service.issuer.load()
        return JSONResponse(service.issuer.jwks(), headers={"Cache-Control": "public, max-age=300"})

    return [Route(path, login, methods=["POST"]), Route(jwks_path, jwks, methods=["GET"])]
