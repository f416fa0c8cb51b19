"""Authentication: credentials in, :class:`~mcp_guard.model.Principal` out.

Each authenticator implements :class:`~mcp_guard.protocols.Authenticator`
(``async authenticate(credential) -> Principal | None``): None means "not my
kind of credential", :class:`~mcp_guard.errors.AuthenticationError` means
"mine, but invalid". The built-ins below are ordinary implementations;
:class:`FunctionAuthenticator` makes a plain async function one.
:class:`AuthenticatorChain` chains them, caches verified principals and enforces
revocation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .api_keys import ApiKeyAuthenticator, ApiKeyRecord, create_api_key, list_api_keys, revoke_api_key
from .chain import AuthenticatorChain
from .claims import ClaimMapping
from .config import AuthnSettings, build_authentication, build_login_service, load_config_file
from .fetch import FetchError, FetchPolicy, SafeFetcher
from .introspection import IntrospectionAuthenticator
from .issuer import IssuedToken, IssuedTokenAuthenticator, TokenIssuer
from .jwks import KeySet, RemoteKeys, StaticKeys
from .jwt_auth import JWTAuthenticator
from .lockout import Lockout, LockoutPolicy
from .login import LoginService
from .revocation import RevocationList
from .simple import AnonymousAuthenticator, FunctionAuthenticator, StaticAuthenticator
from .sources import TOKEN_ENV, credential_from_authorization, credential_from_env

if TYPE_CHECKING:
    from starlette.routing import Route

#: The login service is the password authenticator: it turns password + TOTP into an issued token.
PasswordAuthenticator = LoginService


def login_routes(service: LoginService) -> list[Route]:
    """Starlette routes (``POST /login``, ``GET /.well-known/jwks.json``); imports Starlette lazily."""
    from .routes import login_routes as _routes

    return _routes(service)


__all__ = [
    "TOKEN_ENV",
    "AnonymousAuthenticator",
    "ApiKeyAuthenticator",
    "ApiKeyRecord",
    "AuthenticatorChain",
    "AuthnSettings",
    "ClaimMapping",
    "FetchError",
    "FetchPolicy",
    "FunctionAuthenticator",
    "IntrospectionAuthenticator",
    "IssuedToken",
    "IssuedTokenAuthenticator",
    "JWTAuthenticator",
    "KeySet",
    "Lockout",
    "LockoutPolicy",
    "LoginService",
    "PasswordAuthenticator",
    "RemoteKeys",
    "RevocationList",
    "SafeFetcher",
    "StaticAuthenticator",
    "StaticKeys",
    "TokenIssuer",
    "build_authentication",
    "build_login_service",
    "create_api_key",
    "credential_from_authorization",
    "credential_from_env",
    "list_api_keys",
    "load_config_file",
    "login_routes",
    "revoke_api_key",
]
