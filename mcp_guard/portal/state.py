"""What every part of the portal shares: its settings and its run-time state.

The portal is one object composed of parts, each in its own module (upstream
supervision, per-caller sessions, request handlers, subscriptions, HTTP
serving). They all read and write the same attributes - the live upstreams,
the routing catalog, the private sessions, the subscription table - so those
are set up here, in the one constructor, where every part's type checker sees
them. Methods one part calls on a part that builds on it are declared here
too, for the type checker only.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any, TextIO

import anyio
from anyio.abc import TaskGroup
from mcp.server.lowlevel import Server
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler

from ..config import ListenSection, UpstreamSection
from ..guard import Guard
from ..integrations.server import GuardMiddleware
from .callbacks import PrivateSession
from .catalog import LIST_KEYS, Catalog
from .credentials import CredentialBroker
from .lockdown import PortalSigner
from .registry import Registry
from .relay import RoundRelay, new_replica_id
from .rounds import Rounds
from .routing import ServedLists
from .subscriptions import SubscriptionTable
from .upstream import Upstream, check_upstream_url


class PortalState:
    """The settings and state of a :class:`~.portal.Portal`, shared by all its parts."""

    def __init__(
        self,
        guard: Guard,
        servers: Sequence[UpstreamSection] = (),
        *,
        name: str = "mcp-guard-portal",
        listen: ListenSection | None = None,
        page_size: int = 100,
        ping_interval: float = 5.0,
        backoff: tuple[float, float] = (0.25, 30.0),
        pool: int = 4,
        callbacks: Sequence[str] = (),
        private_idle: float = 300.0,
        private_per_principal: int = 4,
        private_max: int = 64,
        start_timeout: float = 15.0,
        registry: Registry | None = None,
        registry_poll: float = 5.0,
        allowed_upstream_hosts: Sequence[str] = ("127.0.0.1", "localhost", "::1"),
        errlog: TextIO | None = None,
        credentials: CredentialBroker | None = None,
        lockdown: PortalSigner | None = None,
        forward: bool = True,
        fast_lane: bool = True,
    ) -> None:
        self.guard = guard
        self.credentials = credentials
        self.lockdown = lockdown
        self.listen = listen or ListenSection()
        #: Serve eligible requests on the fast lane (see :mod:`.fastlane`); the lane once installed.
        self.fast_lane = fast_lane
        self.lane: Any = None
        self.page_size = page_size
        self.start_timeout = start_timeout
        self.registry = registry
        self.registry_poll = registry_poll
        self.allowed_upstream_hosts = frozenset(h.lower() for h in allowed_upstream_hosts)
        self._upstream_kw: dict[str, Any] = {
            "ping_interval": ping_interval,
            "backoff": backoff,
            "errlog": errlog,
            "pool": pool,
            "lockdown": lockdown,
            "guard": guard,
            "forward": forward,
        }
        self._configured: dict[str, UpstreamSection] = {}
        for spec in servers:
            if spec.url is not None:
                check_upstream_url(spec.url, field=f"servers.{spec.name}.url")
            self._configured[spec.name] = spec
        self.callbacks = frozenset(callbacks)
        self.private_idle = private_idle
        #: Caps of the upstream sessions (stdio: processes) opened for callers, per upstream.
        self.private_per_principal = private_per_principal
        self.private_max = private_max
        self._private: list[tuple[weakref.ref[Any], str, PrivateSession]] = []
        self._pooled: dict[tuple[Any, ...], PrivateSession] = {}
        self._pool_locks: dict[tuple[Any, ...], anyio.Lock] = {}
        self._levels: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
        #: Names this process in the handles of its parked calls (see :mod:`.relay`).
        self.replica = new_replica_id()
        self._rounds = Rounds(self.replica)
        # Any 2026-07-28 call may be parked (its upstream may ask the caller something).
        self._relay = RoundRelay(guard.store, self.replica, self._rounds) if guard.store is not None else None
        self.upstreams: dict[str, Upstream] = {}
        self._served: dict[str, ServedLists] = {}
        self._catalog = Catalog()
        self._reverse: dict[str, dict[tuple[str, str], str]] = {k: {} for k in LIST_KEYS}
        self._sessions: weakref.WeakSet[Any] = weakref.WeakSet()
        self._subs = SubscriptionTable()
        self._listens: dict[InMemorySubscriptionBus, ListenHandler] = {}
        #: 2025-11-25 connections whose teardown already drops their subscriptions.
        self._closing: weakref.WeakSet[Any] = weakref.WeakSet()
        #: The shared session each upstream's subscriptions were made on (a new one: re-subscribe).
        self._subscribed_on: dict[str, Any] = {}
        self._tg: TaskGroup | None = None
        self._stack: AsyncExitStack | None = None
        self._scopes: dict[str, anyio.CancelScope] = {}
        #: Extra ``streamable_http_app`` arguments: the SDK's auth (401 + RFC 9728) and login routes
        #: when the config has ``[authn.oauth]`` / ``[authn.passwords]``.
        self.http_options: dict[str, Any] = {}
        self._screened: dict[str, tuple[int, tuple[tuple[str, str, str], ...]]] = {}
        #: ``/metrics`` beside the MCP endpoint (``[portal] metrics``), and whether it needs no credential.
        self.metrics_endpoint = False
        self.metrics_public = False
        #: The admin console (a Starlette app) served at ``/admin`` beside the MCP endpoint, or None.
        self.console: Any = None
        #: The live anomaly monitor (``[anomalies]``), or None.
        self.anomalies: Any = None
        self.middleware = GuardMiddleware(guard, server=name, read_env=False, delegate=True)
        self.server = self._build_server(name)
        if guard.telemetry is not None:
            from .health import watch_upstreams

            watch_upstreams(self, guard.telemetry)

    if TYPE_CHECKING:

        def _build_server(self, name: str) -> Server[Any]: ...


def connection_of(ctx: Any) -> Any:
    """The downstream connection behind a request (long-lived on 2025-11-25; the session is per request).

    The SDK exposes it only as the session's private ``_connection``; kept in
    this one helper so an SDK change touches one line.
    """
    return getattr(ctx.session, "_connection", None)


def is_legacy(ctx: Any) -> bool:
    return bool(ctx.protocol_version) and str(ctx.protocol_version) < "2026"
