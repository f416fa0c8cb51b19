"""Serving the portal over streamable HTTP, and the settings ``mcp-guard serve`` builds it from.

The HTTP app wraps the SDK's with the portal's lifespan (the upstreams run
while the app does) and with the audit of the SDK's own refusals; ``serve``
runs it under uvicorn, refusing public binds unless the config allows them.
The helpers below turn a ``guard.toml`` into the portal's arguments: resolved
upstream specs, the credential broker, the lockdown signer, the SDK auth
wiring.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import GuardConfig, UpstreamSection
from ..errors import ConfigError
from ..guard import Guard
from ..integrations.http import (
    AuditHttpRefusals,
    BodyReadTimeout,
    auth_settings,
    check_bind,
    header_timeout_protocol,
    loopback_security,
)
from ..integrations.sessions import guard_sessions
from ..telemetry import Telemetry
from .credentials import KEY_ENV, CredentialBroker, SecretBox, load_key
from .fastlane import install_fast_lane
from .health import health_routes
from .lockdown import PortalSigner
from .registry import Registry
from .state import PortalState
from .upstream import own_interpreter


class ServingMixin(PortalState):
    """Serve the portal on streamable HTTP; its lifespan runs the upstreams."""

    if TYPE_CHECKING:
        # Supplied by :class:`~.portal.Portal` (starting and stopping the upstreams).
        async def __aenter__(self) -> Any: ...

        async def __aexit__(self, *exc: object) -> None: ...

    def streamable_http_app(self, *, port: int | None = None, **kwargs: Any) -> Any:
        """A Starlette app serving the portal on ``[listen] path``; its lifespan runs the upstreams.

        ``max_sessions`` / ``max_sessions_per_principal`` cap open 2025-11-25
        sessions (see :mod:`mcp_guard.integrations.sessions`).
        """
        listen = self.listen
        security = loopback_security(port if port is not None else listen.port, list(listen.allowed_hosts))
        # Caps on open 2025-11-25 sessions: ``[listen]`` unless the caller overrides them.
        caps = {
            "max_sessions": kwargs.pop("max_sessions", listen.max_sessions),
            "max_sessions_per_principal": kwargs.pop(
                "max_sessions_per_principal", listen.max_sessions_per_principal
            ),
        }
        options = {**self.http_options, **kwargs}
        # Liveness and readiness always, /metrics when configured: beside the MCP endpoint.
        health = health_routes(self, metrics=self.metrics_endpoint, metrics_public=self.metrics_public)
        options["custom_starlette_routes"] = [*options.get("custom_starlette_routes", ()), *health]
        if self.console is not None:
            from ..console import console_routes

            options["custom_starlette_routes"] += console_routes(self.console)
        app = self.server.streamable_http_app(
            streamable_http_path=listen.path,
            transport_security=options.pop("transport_security", security),
            host=listen.host,
            max_sessions=caps["max_sessions"],
            **options,
        )
        # Only authenticated callers open sessions, and only their owner uses one.
        gate = guard_sessions(app, self.guard, **caps)
        if self.fast_lane:
            self.lane = install_fast_lane(gate, self.server)
        inner = app.router.lifespan_context

        @asynccontextmanager
        async def lifespan(a: Any) -> AsyncIterator[None]:
            async with self, inner(a):
                yield

        app.router.lifespan_context = lifespan
        app.add_middleware(BodyReadTimeout, timeout=listen.read_timeout)  # inside the audit: 408s recorded
        app.add_middleware(AuditHttpRefusals, guard=self.guard)  # the SDK's own 401/403s are audited too
        return app

    async def serve(self, host: str | None = None, port: int | None = None, **app_kwargs: Any) -> None:
        """Run the portal on streamable HTTP until cancelled (refusing public binds unless allowed)."""
        import uvicorn

        listen = self.listen
        host = host or listen.host
        port = listen.port if port is None else port
        check_bind(host, listen.allow_public_bind)
        tls: dict[str, Any] = {}
        if listen.tls_certfile:
            tls = {"ssl_certfile": listen.tls_certfile, "ssl_keyfile": listen.tls_keyfile}
        config = uvicorn.Config(
            self.streamable_http_app(port=port),
            host=host,
            port=port,
            log_level="warning",
            lifespan="on",
            # X-Forwarded-* only from [listen] trusted_proxies; idle and slow peers are closed.
            http=header_timeout_protocol(listen.read_timeout, listen.http_parser),
            **listen.server_options(),
            **tls,
        )
        await uvicorn.Server(config).serve()


def portal_arguments(
    config: GuardConfig,
    *,
    secrets_key: str | Path | None = None,
    lockdown_key: str | Path | None = None,
    **overrides: Any,
) -> tuple[Guard, list[UpstreamSection], dict[str, Any]]:
    """The guard, upstream specs and keyword arguments of the portal ``config`` describes.

    See :meth:`~.portal.Portal.from_guard_config`; ``overrides`` go to the guard,
    except those naming a portal argument.
    """
    portal_kw = {k: overrides.pop(k) for k in list(overrides) if k in _PORTAL_KW}
    if config.portal.metrics:
        _check_metrics_extra()
        if not config.guard.opentelemetry:  # with it, the guard's telemetry keeps the metrics too
            overrides.setdefault("telemetry", Telemetry())
    guard = Guard.from_config(config, **overrides)
    servers = [resolve_spec(config, s) for s in config.servers]
    settings = config.portal
    registry = portal_kw.pop("registry", None)
    if registry is None and guard.store is not None:
        registry = Registry(guard.store)
    declared = {s.name: s.credentials for s in config.servers if s.credentials != "shared"}
    if "credentials" not in portal_kw and guard.store is not None:
        key_file = Path(secrets_key) if secrets_key is not None else config.resolve(settings.secrets_key_file)
        box = None
        if os.environ.get(KEY_ENV) or key_file.exists():
            box = SecretBox(load_key(key_file, create=False))
        portal_kw["credentials"] = CredentialBroker(guard.store, box, declared=declared)
    elif declared and "credentials" not in portal_kw:
        raise ConfigError("per-user upstream credentials need a state store", field="servers.credentials")
    lockdown_file = lockdown_key if lockdown_key is not None else settings.lockdown_key_file
    if lockdown_file is not None and "lockdown" not in portal_kw:
        portal_kw["lockdown"] = PortalSigner.from_file(config.resolve(str(lockdown_file)))
    portal_kw.setdefault("callbacks", [s.name for s in config.servers if s.callbacks])
    portal_kw.setdefault("allowed_upstream_hosts", settings.allowed_upstream_hosts)
    portal_kw.setdefault("page_size", settings.page_size)
    portal_kw.setdefault("private_idle", settings.private_idle)
    portal_kw.setdefault("private_per_principal", settings.private_per_principal)
    portal_kw.setdefault("private_max", settings.private_max)
    portal_kw.setdefault("forward", settings.forward)
    portal_kw.setdefault("fast_lane", settings.fast_lane)
    listen = config.listen
    tls = {
        k: str(config.resolve(v))
        for k, v in (("tls_certfile", listen.tls_certfile), ("tls_keyfile", listen.tls_keyfile))
        if v
    }
    portal_kw["name"] = config.guard.server or "mcp-guard-portal"
    portal_kw["listen"] = listen.model_copy(update=tls) if tls else listen
    portal_kw["registry"] = registry
    return guard, servers, portal_kw


def _check_metrics_extra() -> None:
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        raise ConfigError(
            "metrics = true needs prometheus-client: pip install 'mcp-guard[metrics]'", field="portal.metrics"
        ) from None


def resolve_spec(config: GuardConfig, spec: UpstreamSection) -> UpstreamSection:
    """Resolve ``cwd`` against the config file; ``command = "python"`` means the portal's own interpreter.

    The interpreter rule lets a config ship Python upstreams that run with the
    packages the portal was installed with, wherever its virtualenv lives.
    """
    update: dict[str, Any] = {}
    if spec.cwd is not None:
        update["cwd"] = str(config.resolve(spec.cwd))
    spec = own_interpreter(spec)
    return spec.model_copy(update=update) if update else spec


def http_auth(config: GuardConfig, guard: Guard) -> dict[str, Any]:
    """The SDK auth wiring ``[authn]`` asks for.

    With ``[authn.oauth]`` (and no anonymous access, which needs the guard to
    read the header itself) the SDK's own bearer check runs with the guard's
    verifier, so clients get the standard 401 + RFC 9728 metadata flow. With
    ``[authn.passwords]`` the login endpoint and the issuer's JWKS are served
    beside the MCP endpoint.
    """
    if not config.authn:
        return {}
    from ..authn.config import AuthnSettings, build_login_service

    settings = AuthnSettings.model_validate(config.authn)
    out: dict[str, Any] = {}
    if settings.oauth is not None and settings.anonymous is None:
        out["token_verifier"] = guard.token_verifier()
        out["auth"] = auth_settings(settings.oauth)
    if settings.passwords is not None and guard.store is not None:
        service = build_login_service(settings, guard.store, config.base_dir, auditor=guard.auditor)
        if service is not None:
            from ..authn import login_routes

            routes = login_routes(service)
            step_ups = getattr(guard, "step_ups", None)
            if step_ups is not None:
                from urllib.parse import urlsplit

                from ..authn.stepup import step_up_routes

                routes += step_up_routes(service, step_ups, path=urlsplit(step_ups.url).path)
            out["custom_starlette_routes"] = routes
    return out


_PORTAL_KW = frozenset(
    {
        "page_size",
        "ping_interval",
        "backoff",
        "pool",
        "callbacks",
        "private_idle",
        "private_per_principal",
        "private_max",
        "start_timeout",
        "registry",
        "registry_poll",
        "allowed_upstream_hosts",
        "errlog",
        "credentials",
        "lockdown",
        "forward",
        "fast_lane",
    }
)
