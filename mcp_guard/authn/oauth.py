"""What the HTTP integration needs from ``[authn.oauth]``: the SDK's ``AuthSettings``.

The SDK answers a request without a bearer token with 401 before any token
verifier or MCP middleware runs; :class:`~mcp_guard.integrations.http.AuditHttpRefusals`
(or :meth:`Guard.http_app`) puts those refusals on the audit trail.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mcp.server.auth.settings import AuthSettings

    from .config import OAuthConfig

__all__ = ["auth_settings"]


def auth_settings(cfg: OAuthConfig) -> AuthSettings:
    """The SDK settings for ``[authn.oauth]``: RFC 9728 metadata and required scopes."""
    from mcp.server.auth.settings import AuthSettings

    return AuthSettings(
        issuer_url=cfg.issuer_url,
        resource_server_url=cfg.resource_server_url,
        required_scopes=list(cfg.required_scopes) or None,
        service_documentation_url=cfg.service_documentation_url,
        # Audience and issuer are checked by the guard's authenticators, per configured issuer.
        validate_token_resource=False,
    )
