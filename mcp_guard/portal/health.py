"""``/healthz``, ``/readyz`` and ``/metrics`` beside the portal's MCP endpoint.

``/healthz`` (liveness) answers 200 while the process serves HTTP;
``/readyz`` (readiness) answers 200 when the audit trail takes events and
at least one upstream is up (or none is configured), else 503. Both need no
credential and name no upstream: they say how many are up, down or starting.
``/metrics`` (``[portal] metrics = true``) serves the Prometheus text format
to an authenticated caller (the same credentials as the MCP endpoint), or to
anyone with ``metrics_public = true``; a refused scrape is audited.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..errors import AUTHENTICATION_REQUIRED, GuardError
from ..integrations.sessions import bearer
from ..model import RequestContext
from ..protocols import Credential
from ..telemetry import Telemetry

if TYPE_CHECKING:
    from .state import PortalState as Portal


def health_routes(portal: Portal, *, metrics: bool, metrics_public: bool) -> list[Route]:
    """The routes to add to the portal's Starlette app."""
    routes = [
        Route("/healthz", _healthz, methods=["GET"]),
        Route("/readyz", _readyz(portal), methods=["GET"]),
    ]
    if metrics:
        routes.append(Route("/metrics", _metrics(portal, metrics_public), methods=["GET"]))
    return routes


async def _healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"}, headers={"cache-control": "no-store"})


def _readyz(portal: Portal) -> Any:
    async def readyz(request: Request) -> Response:
        states = Counter(u.state for u in portal.upstreams.values())
        try:
            portal.guard.check_audit()
            audit = "ok"
        except GuardError:
            audit = "failing"
        upstreams = sum(states.values())
        ready = audit == "ok" and (upstreams == 0 or states["up"] > 0)
        body = {
            "status": "ready" if ready else "not ready",
            "audit": audit,
            "upstreams": {s: states[s] for s in ("up", "starting", "down")},
        }
        return JSONResponse(body, status_code=200 if ready else 503, headers={"cache-control": "no-store"})

    return readyz


def _metrics(portal: Portal, public: bool) -> Any:
    from ..telemetry.prometheus import exposition, registry_for

    telemetry = portal.guard.telemetry
    assert telemetry is not None and telemetry.metrics is not None
    registry = registry_for(telemetry.metrics)

    async def metrics(request: Request) -> Response:
        if not public:
            refusal = await _authenticate(portal, request)
            if refusal is not None:
                return refusal
        body, content_type = exposition(registry)
        return Response(body, headers={"content-type": content_type, "cache-control": "no-store"})

    return metrics


async def _authenticate(portal: Portal, request: Request) -> Response | None:
    """None when the caller presented a credential the guard accepts; else a 401, audited."""
    guard = portal.guard
    token = bearer(request.headers)
    ip = request.client.host if request.client else None
    reason = "no credential presented"
    if token is not None:
        try:
            await guard.identify(Credential(token, "http", ip))
            return None
        except GuardError as exc:
            reason = exc.reason
    if guard.telemetry is not None:
        guard.telemetry.refused("http/metrics", "deny")
    guard.record_nowait(
        guard.event(
            "http/metrics",
            "deny",
            principal=None,
            context=RequestContext(time=datetime.now(timezone.utc), transport="http", source_ip=ip),
            reasons=(f"metrics scrape refused: {reason}",),
            error_code=AUTHENTICATION_REQUIRED,
            kind="authn",
            server=guard.server,
        )
    )
    return Response(
        "a credential is required for /metrics\n",
        status_code=401,
        headers={"www-authenticate": 'Bearer realm="mcp-guard metrics"', "content-type": "text/plain"},
    )


def watch_upstreams(portal: Any, telemetry: Telemetry) -> None:
    """``mcp_guard_upstream_up{server}``: 1 while an upstream is up, 0 while it starts or is down."""

    def up() -> dict[tuple[str, ...], float]:
        return {(u.name,): 1.0 if u.state == "up" else 0.0 for u in list(portal.upstreams.values())}

    telemetry.watch("mcp_guard_upstream_up", "1 while the upstream server is up", ("server",), up)
    telemetry.export_gauges()


__all__ = ["health_routes", "watch_upstreams"]
