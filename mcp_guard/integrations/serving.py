"""One call from a guarded server to streamable HTTP: ``guard.serve_http(mcp, port=8000)``.

It puts together what the HTTP recipe otherwise wires by hand: the guard on
the server (if ``protect`` was not called yet), the SDK's bearer check with the
guard's token verifier (401 + RFC 9728 metadata for clients without a valid
token; left out when the guard admits anonymous callers, who have no token),
DNS-rebinding protection for the bound address, session ownership and caps,
the audit of the SDK's own refusals, body and header read timeouts, the guard's
lifecycle in the app's lifespan, and uvicorn refusing a non-loopback bind
unless ``allow_public_bind=True``. Works for ``MCPServer``, a low-level
``Server`` and ``fastmcp.FastMCP`` (whose HTTP app has no SDK bearer check: a
request without a valid token gets the MCP error ``-32001`` instead of a 401).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from mcp.server.auth.settings import AuthSettings

from .http import (
    AuditHttpRefusals,
    BodyReadTimeout,
    GuardTokenVerifier,
    check_bind,
    header_timeout_protocol,
    loopback_security,
)
from .sessions import DEFAULT_MAX_SESSIONS, DEFAULT_MAX_SESSIONS_PER_PRINCIPAL, guard_sessions

if TYPE_CHECKING:
    from ..guard import Guard


def build_app(
    guard: Guard,
    server: Any,
    *,
    host: str,
    port: int,
    path: str = "/mcp",
    allowed_hosts: Sequence[str] = (),
    public_url: str | None = None,
    max_sessions: int = DEFAULT_MAX_SESSIONS,
    max_sessions_per_principal: int = DEFAULT_MAX_SESSIONS_PER_PRINCIPAL,
    read_timeout: float = 30.0,
) -> Any:
    """The Starlette app :func:`http_server` serves, for a server the guard already protects."""
    lowlevel = getattr(server, "_lowlevel_server", None) or getattr(server, "_mcp_server", None) or server
    security = loopback_security(
        port, [*allowed_hosts, *([host] if host not in ("127.0.0.1", "localhost") else [])]
    )
    if hasattr(server, "streamable_http_app"):
        options: dict[str, Any] = {}
        if guard.resolver.peek(None) is None:  # no anonymous callers: the SDK's standard 401 flow
            base = public_url or f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
            options["token_verifier"] = GuardTokenVerifier(guard)
            options["auth"] = AuthSettings(
                issuer_url=base,
                resource_server_url=f"{base}{path}",
                validate_token_resource=False,  # the guard's authenticators check audiences
            )
        app = lowlevel.streamable_http_app(
            streamable_http_path=path,
            transport_security=security,
            host=host,
            max_sessions=max_sessions,
            **options,
        )
    else:
        app = fastmcp_http_app(server, {"streamable_http_path": path, "transport_security": security})
    guard_sessions(
        app, guard, max_sessions=max_sessions, max_sessions_per_principal=max_sessions_per_principal
    )
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        async with guard, inner(a) as state:  # the audit trail is flushed when the server stops
            yield state

    app.router.lifespan_context = lifespan
    app.add_middleware(BodyReadTimeout, timeout=read_timeout)
    app.add_middleware(AuditHttpRefusals, guard=guard)
    return app


def http_server(
    guard: Guard,
    server: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    allow_public_bind: bool = False,
    log_level: str = "warning",
    read_timeout: float = 30.0,
    **options: Any,
) -> Any:
    """A ``uvicorn.Server`` serving ``server`` guarded on ``host:port``: ``.run()`` or ``await .serve()``."""
    import uvicorn

    check_bind(host, allow_public_bind)
    app = build_app(guard, server, host=host, port=port, read_timeout=read_timeout, **options)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        lifespan="on",
        http=header_timeout_protocol(read_timeout),
        proxy_headers=False,  # the audited address and principal.ip are the connecting peer's
    )
    return uvicorn.Server(config)


def fastmcp_http_app(server: Any, kwargs: dict[str, Any]) -> Any:
    """FastMCP's streamable HTTP app from the SDK-style arguments ``Guard.http_app`` takes."""
    options: dict[str, Any] = {"transport": "http"}
    if "streamable_http_path" in kwargs:
        options["path"] = kwargs.pop("streamable_http_path")
    security = kwargs.pop("transport_security", None)
    host = kwargs.pop("host", "127.0.0.1")
    if security is None and host in LOOPBACK_HOSTS:
        # As the SDK's streamable_http_app does for a loopback host: only loopback Host and
        # Origin headers (FastMCP's own app checks them only when asked to).
        options["host_origin_protection"] = True
    elif security is not None and security.enable_dns_rebinding_protection:
        options["host_origin_protection"] = True
        options["allowed_hosts"] = list(security.allowed_hosts)
        options["allowed_origins"] = list(security.allowed_origins)
    for sdk, own in (("json_response", "json_response"), ("stateless_http", "stateless_http")):
        if sdk in kwargs:
            options[own] = kwargs.pop(sdk)
    unknown = sorted(k for k in kwargs if k != "max_sessions")
    if unknown:
        raise TypeError(f"Guard.http_app(FastMCP): unsupported option(s) {', '.join(unknown)}")
    return server.http_app(**options)


#: Hosts for which ``Guard.http_app`` turns DNS-rebinding protection on by default, as the SDK does.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

__all__ = ["LOOPBACK_HOSTS", "build_app", "fastmcp_http_app", "http_server"]
