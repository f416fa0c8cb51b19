"""Wiring the live anomaly monitor into ``mcp-guard serve`` from ``[anomalies]``.

Only a config with an ``[anomalies]`` table (and ``live = true``, its default) gets a monitor.
The monitor observes the guard's audit pipeline, sends findings to the log and the configured
webhooks, and with ``action = "lock"`` holds the subject (or, for refused credentials from one
address, that address) in the shared lockout for ``lock_for`` seconds: every replica then
refuses it at authentication (a notice on the state store's channel makes each stop trusting its
credential cache meanwhile), and so does the login endpoint.
"""

from __future__ import annotations

import difflib
import functools
import logging
import time
from collections.abc import Sequence
from importlib.metadata import entry_points
from typing import Any

import anyio

from ..audit.anomaly import AnomalySettings, Finding
from ..audit.anomaly.alerts import LoggingAlertSink, WebhookAlertSink
from ..audit.anomaly.monitor import Lock, Monitor
from ..audit.sinks import store_path
from ..authn.chain import AuthenticatorChain
from ..authn.lockout import Lockout
from ..config import GuardConfig
from ..errors import ConfigError
from ..protocols import AlertSink, StateStore

log = logging.getLogger("mcp_guard.anomalies")


#: Entry-point group of alert sink plugins: each names a class or function that, called without
#: arguments, returns an :class:`~mcp_guard.protocols.AlertSink`.
ENTRY_POINT_GROUP = "mcp_guard.alert_sinks"


def plugin_sink(name: str) -> AlertSink:
    """The installed alert sink plugin ``name`` (``[anomalies] sinks``), built."""
    found = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    if name not in found:
        close = difflib.get_close_matches(name, found, n=1)
        hint = (
            f"; did you mean {close[0]!r}?"
            if close
            else f" (installed: {', '.join(sorted(found)) or 'none'})"
        )
        raise ConfigError(f"no alert sink plugin {name!r}{hint}", field="anomalies.sinks")
    try:
        sink = found[name].load()()
    except Exception as exc:
        raise ConfigError(
            f"alert sink plugin {name!r} failed to load: {exc}", field="anomalies.sinks"
        ) from None
    if not isinstance(sink, AlertSink):
        raise ConfigError(
            f"alert sink plugin {name!r} has no async alert(finding) method", field="anomalies.sinks"
        )
    return sink


#: Channel on which a replica that holds someone tells the others to stop trusting their caches.
HOLDS_CHANNEL = "mcp-guard:anomaly-holds"


async def follow_holds(store: StateStore, chain: AuthenticatorChain, retry: float = 1.0) -> None:
    """Until cancelled: on each hold made on any replica, make ``chain`` check every credential
    (its cache knows nothing of holds) until that hold ends."""
    while True:
        try:
            async for message in store.subscribe(HOLDS_CHANNEL):
                try:
                    chain.held(float(message))
                except ValueError:
                    log.warning("ignoring a malformed hold notice %r", message[:100])
        except Exception as exc:
            log.warning("hold notices unavailable, retrying: %s", exc)
        await anyio.sleep(retry)


def start_monitor(guard: Any, config: GuardConfig, sinks: Sequence[AlertSink] = ()) -> Monitor | None:
    """Attach a monitor to ``guard`` as ``[anomalies]`` says; ``sinks`` are plugin alert sinks."""
    if not config.anomalies:
        return None
    settings = AnomalySettings.model_validate(config.anomalies)
    if not settings.live:
        return None
    observers = getattr(guard.auditor, "observers", None)
    if not isinstance(observers, list):
        raise ConfigError(
            "live anomaly detection needs the built-in audit pipeline ([guard] audit URLs); "
            "set live = false to use `mcp-guard audit anomalies` only",
            field="anomalies.live",
        )
    history = None
    for url in config.guard.audit:
        history = store_path(config.resolve_url(url), config.base_dir)
        if history is not None:
            break
    lock: Lock | None = None
    if settings.action == "lock":
        if guard.store is None:
            raise ConfigError("action = 'lock' needs a state store ([guard] state)", field="anomalies.action")
        lockout = Lockout(guard.store)
        chain = guard.resolver if isinstance(guard.resolver, AuthenticatorChain) else None
        if chain is not None:
            chain.holds = lockout

        async def hold(finding: Finding) -> Sequence[str]:
            # Refused credentials from one address: that address (the subject is unknown or a
            # victim). Anything else: the subject who did it.
            by_source = finding.kind == "auth-failures" and finding.subject is None
            account = None if by_source else finding.subject
            source = finding.source_ip if by_source else None
            scopes = await lockout.hold(account, source, settings.lock_for)
            if scopes:
                until = time.time() + settings.lock_for
                if chain is not None:
                    chain.held(until)
                try:
                    await guard.store.publish(HOLDS_CHANNEL, repr(until))
                except Exception as exc:  # the hold stands; other replicas see it on cache misses
                    log.warning("could not tell other replicas of a hold: %s", exc)
            return scopes

        lock = hold
        if chain is not None:
            guard.run_in_background(functools.partial(follow_holds, guard.store, chain))
    monitor = Monitor(
        settings,
        sinks=[
            LoggingAlertSink(),
            *(WebhookAlertSink(w) for w in settings.webhooks),
            *(plugin_sink(name) for name in settings.sinks),
            *sinks,
        ],
        auditor=guard.auditor,
        lock=lock,
        history=history,
    )
    observers.append(monitor.observe)
    guard.run_in_background(monitor.run)
    return monitor
