"""Where credentials come from: the HTTP ``Authorization`` header, or ``MCP_GUARD_TOKEN`` for stdio."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from ..errors import AuthenticationError
from ..protocols import Credential

TOKEN_ENV = "MCP_GUARD_TOKEN"


def credential_from_authorization(header: str | Sequence[str] | None, ip: str | None = None) -> Credential:
    """``Bearer <token>`` (scheme case-insensitive) -> credential; no header -> no credential.

    Any other scheme, or ``Bearer`` without a value, raises
    :class:`AuthenticationError`: a credential was presented, so it must be
    refused rather than treated as anonymous - and it is never passed on to
    an authenticator (introspection would forward a Basic password). Pass every
    ``Authorization`` value the request carried (``headers.getlist(...)``): more
    than one, or two folded into one (``Bearer a, Bearer b``), is refused too.
    """
    values = [header] if header is None or isinstance(header, str) else list(header)
    values = [v for v in values if v is not None and v.strip()]
    if not values:
        return Credential(None, source="http", ip=ip)
    if len(values) > 1:
        raise AuthenticationError(f"Authorization header given {len(values)} times")
    scheme, _, value = values[0].strip().partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer":
        raise AuthenticationError(f"unsupported authorization scheme {scheme[:20]!r}")
    if not value:
        raise AuthenticationError("empty bearer token")
    if any(c in value for c in " \t,"):
        raise AuthenticationError("malformed bearer token")
    return Credential(value, source="http", ip=ip)


def credential_from_env(env: Mapping[str, str] | None = None, name: str = TOKEN_ENV) -> Credential:
    """The stdio server's credential, read once at start from ``MCP_GUARD_TOKEN``."""
    value = (os.environ if env is None else env).get(name, "").strip()
    return Credential(value or None, source="stdio")
