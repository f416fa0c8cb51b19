"""Starlette routes for the login endpoint and our public JWKS, to mount next to ``/mcp``."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..errors import AuditUnavailable, AuthenticationError, RateLimited
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
        source = request.client.host if request.client else None
        data: Any = None

        async def refuse(status: int, reason: str, description: str) -> Response:
            # Refused before the credential check: still counted by the lockout and audited.
            username = data.get("username") if isinstance(data, dict) else None
            await service.refuse(username, source, f"malformed login request ({reason})")
            return _error(status, "invalid_request", description)

        if "application/json" not in request.headers.get("content-type", ""):
            return await refuse(415, "not JSON", "send application/json")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                return await refuse(413, "body too large", "request body too large")
        try:
            data = json.loads(bytes(body))
        except (ValueError, RecursionError):  # RecursionError: deeply nested arrays/objects
            return await refuse(400, "body is not JSON", "body is not JSON")
        if not isinstance(data, dict):
            return await refuse(400, "not a JSON object", "expected a JSON object")
        username, password, code = data.get("username"), data.get("password"), data.get("totp")
        if (
            not isinstance(username, str)
            or not isinstance(password, str)
            or not isinstance(code, (str, type(None)))
        ):
            return await refuse(400, "wrong field types", "username and password (strings) are required")
        try:
            token = await service.login(username, password, code, source=source)
        except RateLimited as exc:
            retry = max(1, round(exc.retry_after or 1))
            return _error(
                429, "temporarily_unavailable", "too many failed attempts", {"Retry-After": str(retry)}
            )
        except AuthenticationError:
            return _error(401, "invalid_grant", INVALID)
        except AuditUnavailable:  # the login could not be put on record: no token was handed out
            return _error(503, "temporarily_unavailable", "login unavailable: try again later")
        except Exception:  # a server fault (store, key issuance), audited by the service: fail closed
            return _error(500, "server_error", "login unavailable")
        return JSONResponse(token.as_dict(), headers=_NO_STORE)

    async def jwks(request: Request) -> Response:
        service.issuer.load()
        return JSONResponse(service.issuer.jwks(), headers={"Cache-Control": "public, max-age=300"})

    return [Route(path, login, methods=["POST"]), Route(jwks_path, jwks, methods=["GET"])]
