"""The fast lane's request kernel: the SDK's own, minus what does nothing for a lane request.

The lane runs each request through :class:`mcp.server.runner.ServerRunner`, so
validation, middleware, handlers and result shaping are the SDK's. One of its
costs buys nothing on the lane, and :class:`LaneKernel` leaves it out: an
OpenTelemetry span nobody records. The SDK opens a server span per request in
its own middleware. Without a tracer provider (none set in code, none named by
``OTEL_PYTHON_TRACER_PROVIDER``) that span records nothing, and for a request
without ``_meta`` it carries exactly the ambient trace context the handlers
would see without it, so nothing downstream (a trace context an SDK client
session passes upstream) can tell the difference. Only then is the middleware
skipped; once a provider is installed, or for a request that carries ``_meta``
(a ``traceparent`` there becomes the span's parent), the whole chain runs. The
guard's own telemetry is in its pipeline and always runs.

Every other middleware - the session bookkeeping and the guard's, so the same
pipeline, decisions, sanitizers, limits, budgets, flows, approvals and audit
events - runs in its place in the chain.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mcp.server._otel import OpenTelemetryMiddleware
from mcp.server.connection import Connection
from mcp.server.runner import ServerRunner
from opentelemetry.trace import ProxyTracerProvider, get_tracer_provider


class _Untraced:
    """The portal's SDK server as the runner sees it, without the OpenTelemetry middleware.

    Everything but ``middleware`` is the server's own, read at use: handlers,
    cache hints and server info stay the server's.
    """

    def __init__(self, server: Any) -> None:
        self._server = server

    @property
    def middleware(self) -> Sequence[Any]:
        return [m for m in self._server.middleware if not isinstance(m, OpenTelemetryMiddleware)]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._server, name)


def untraced(params: Any) -> bool:
    """True when the SDK's server span would be a no-op that changes nothing for this request."""
    if isinstance(params, dict) and "_meta" in params:
        return False
    return isinstance(get_tracer_provider(), ProxyTracerProvider)


class LaneKernel:
    """The runner of a lane request; see the module docstring."""

    def __init__(self, server: Any, lifespan_state: Any) -> None:
        self._server = server
        self._untraced = _Untraced(server)
        self._lifespan_state = lifespan_state

    def runner(self, connection: Connection, params: Any) -> ServerRunner[Any]:
        """The runner for a request with ``params`` on ``connection``: without the span when it is a no-op."""
        server: Any = self._untraced if untraced(params) else self._server
        return ServerRunner(server, connection, self._lifespan_state)


__all__ = ["LaneKernel", "untraced"]
