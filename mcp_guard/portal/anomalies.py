"""Wiring the live anomaly monitor into ``mcp-guard serve`` from ``[anomalies]``.

Only a config with an ``[anomalies]`` table (and ``live = true``, its default) gets a monitor.
The monitor observes the guard's audit pipeline, sends findings to the log and the configured
webhooks, and with ``action = "lock"`` holds the person (or, for refused credentials from one
address, that address) in the shared lockout for ``lock_for`` seconds: every replica then
refuses it at authentication (a notice on the state store's channel makes each stop trusting its
credential cache meanwhile), and so does the login endpoint.
"""

from __future__ import annotations

import difflib
import functools
import ipaddress
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
from ..ratelimit import person_key

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


def hold_targets(finding: Finding, proxies: Sequence[str]) -> tuple[str | None, str | None]:
    """What ``action = "lock"`` holds for ``finding``: (account, source address), either may be None.

    Refused credentials name an account anyone can type, from anywhere: holding that account
    would let a stranger lock out any user, an admin too, at will. So they hold only the one
    source address they all came from (a burst against one account is left to the login
    lockout, whose account-wide lock is short and spares the user's known addresses). Any
    other finding holds the authenticated person who caused it: the subject per issuer or tenant
    key book (:func:`~mcp_guard.ratelimit.person_key`, as the authenticator chain checks it), so
    a key an admin of one tenant names after another tenant's person, or after the global
    administrator, holds only itself when it misbehaves. A loopback address, or one of
    ``proxies`` (``[listen] trusted_proxies``), is never held: behind a reverse proxy every
    caller has that address, and holding it would lock everyone out.
    """
    if finding.kind != "auth-failures":
        if finding.subject is None:
            return None, None
        return person_key(finding.subject, finding.vouched_by), None
    source = finding.source_ip
    if finding.subject is not None or source is None or _shared_address(source, proxies):
        return None, None
    return None, source


def _shared_address(source: str, proxies: Sequence[str]) -> bool:
    try:
        ip = ipaddress.ip_address(source.split("%")[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback or ip.is_unspecified:
        return True
    for proxy in proxies:
        try:
            net = ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            continue
        if ip.version == net.version and ip in net:
            return True
    return False


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

        proxies = list(config.listen.trusted_proxies)

        async def hold(finding: Finding) -> Sequence[str]:
            account, source = hold_targets(finding, proxies)
            if account is None and source is None:
                return ()
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
