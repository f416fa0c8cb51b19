"""HTTP glue: the SDK ``TokenVerifier`` adapter, loopback bind checks and Host allow-lists.

With the adapter, the SDK keeps doing what clients expect of an MCP server over
HTTP (401 with ``WWW-Authenticate`` and RFC 9728 metadata, 403 on missing
scopes) while the guard decides who the caller is. Refusals at this layer
happen before any MCP method runs, so they are audited here.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.transport_security import TransportSecuritySettings

from ..errors import ACCESS_DENIED, AUTHENTICATION_REQUIRED, ConfigError, GuardError
from ..model import RequestContext
from ..protocols import Credential

if TYPE_CHECKING:
    from ..authn.config import OAuthConfig
    from ..guard import Guard

logger = logging.getLogger("mcp_guard.http")


class GuardTokenVerifier:
    """An SDK ``TokenVerifier`` backed by the guard's authenticators and principal cache."""

    def __init__(self, guard: Guard) -> None:
        self.guard = guard

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            principal = await self.guard.identify(Credential(token, "http"))
        except GuardError as exc:
            self.guard.record_nowait(
                self.guard.event(
                    "http/authenticate",
                    "deny" if exc.code != -32050 else "error",
                    principal=None,
                    reasons=(exc.reason,),
                    error_code=exc.code,
                    kind="authn",
                    server=self.guard.server,
                )
            )
            return None
        claims: dict[str, Any] = {"roles": sorted(principal.roles), "auth_method": principal.auth_method}
        if principal.tenant:
            claims["tenant"] = principal.tenant
        if principal.issuer:
            claims["iss"] = principal.issuer
        return AccessToken(
            token=token,
            client_id=principal.subject,
            scopes=sorted(principal.scopes),
            expires_at=int(principal.expires_at) if principal.expires_at is not None else None,
            subject=principal.subject,
            claims=claims,
        )


class AuditHttpRefusals:
    """ASGI middleware that audits the refusals the SDK sends before any MCP method runs.

    Its auth layer's 401 and 403, and its transport's 400 for a POST (on
    2026-07-28 routing headers that disagree with the body are refused there,
    before the guard's middleware could see them).

    With ``MCPServer(token_verifier=guard.token_verifier(), auth=...)`` the
    SDK answers a request without credentials with 401, and one whose token
    lacks a required scope with 403, without ever reaching the guard's
    middleware. An invalid token is already audited by the verifier; this
    records the other two, so every refused caller leaves a trace. Wrap the
    app the SDK builds: ``AuditHttpRefusals(mcp.streamable_http_app(), guard)``
    (:meth:`Guard.http_app` does exactly that).
    """

    def __init__(self, app: Any, guard: Guard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        status = 0

        async def watch(message: Any) -> None:
            nonlocal status
            if message.get("type") == "http.response.start":
                status = int(message.get("status", 0))
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            if status in (401, 403) or (status == 400 and scope.get("method") == "POST"):
                self._record(scope, status)

    def _record(self, scope: Any, status: int) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}
        presented = bool(headers.get("authorization", "").strip())
        if status == 401 and presented:
            return  # the token verifier refused it and audited why
        client = scope.get("client")
        if status == 400:
            # The SDK's transport refused the request before any MCP method ran: routing headers
            # that disagree with the body (2026-07-28), Mcp-Param headers that contradict the
            # arguments, a malformed envelope. Refused already; recorded here.
            routing = ", ".join(
                f"{name}: {headers[name]!r}" for name in ("mcp-method", "mcp-name") if name in headers
            )
            reason = "rejected by the transport before the guard (HTTP 400)" + (
                f"; {routing}" if routing else ""
            )
        else:
            reason = (
                "no credential presented (HTTP 401)"
                if status == 401
                else "credential lacks a required scope (insufficient_scope, HTTP 403)"
            )
        self.guard.record_nowait(
            self.guard.event(
                "http/reject" if status == 400 else "http/authenticate",
                "deny",
                principal=None,
                context=RequestContext(
                    time=datetime.now(timezone.utc),
                    transport="http",
                    session_id=headers.get("mcp-session-id"),
                    source_ip=client[0] if client else None,
                ),
                reasons=(reason, f"{scope.get('method', '?')} {scope.get('path', '?')}"),
                error_code=AUTHENTICATION_REQUIRED if status == 401 else ACCESS_DENIED,
                kind="transport" if status == 400 else "authn",
                server=self.guard.server,
            )
        )


def is_loopback(host: str) -> bool:
    """True for loopback literals and for names that resolve only to loopback addresses."""
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def check_bind(host: str, allow_public_bind: bool) -> None:
    """Refuse to listen beyond loopback unless the operator said so explicitly."""
    if not allow_public_bind and not is_loopback(host):
        raise ConfigError(
            f"refusing to bind {host!r}: not a loopback address; "
            "set allow_public_bind = true to expose the server",
            field="listen.host",
        )


def loopback_security(port: int, extra_hosts: list[str] | None = None) -> TransportSecuritySettings:
    """DNS-rebinding protection that accepts only loopback Host and Origin headers for ``port``."""
    hosts = [f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "127.0.0.1", "localhost"]
    hosts += list(extra_hosts or [])
    origins = [f"http://{h}" for h in hosts] + [f"https://{h}" for h in hosts]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
    )


def auth_settings(cfg: OAuthConfig) -> AuthSettings:
    """The SDK settings for ``[authn.oauth]``: RFC 9728 metadata and required scopes.

    The SDK answers a request without a bearer token with 401 before any token
    verifier or MCP middleware runs; :class:`AuditHttpRefusals` (or
    ``Guard.http_app``) puts those refusals on the audit trail.
    """
    return AuthSettings(
        issuer_url=cfg.issuer_url,
        resource_server_url=cfg.resource_server_url,
        required_scopes=list(cfg.required_scopes) or None,
        service_documentation_url=cfg.service_documentation_url,
        # Audience and issuer are checked by the guard's authenticators, per configured issuer.
        validate_token_resource=False,
    )
