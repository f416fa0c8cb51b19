"""Build a :class:`Guard` from a validated :class:`GuardConfig`.

Kept apart from the config models so that reading a config never imports
the heavier plugin modules, and so that users who assemble a guard by hand
can read this file as the reference wiring.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from .config import GuardConfig
from .limits import SizeLimits
from .protocols import Auditor


class _Assembled(Protocol):
    """What the wiring below needs of the guard it builds (the guard class is passed in, not imported)."""

    auditor: Auditor | None
    pins: Any
    approvals: Any
    config_source: str | None

    def on_close(self, closer: Any) -> None: ...

    def run_in_background(self, run: Any) -> None: ...


G = TypeVar("G", bound=_Assembled)


def log_policy_warnings(policy: Any) -> None:
    """Log a loaded policy's warnings (misspelt-looking role names) on ``mcp_guard.policy``."""
    for warning in getattr(policy, "warnings", ()):
        logging.getLogger("mcp_guard.policy").warning("policy warning: %s", warning)


def assemble(config: GuardConfig, guard_class: Callable[..., G], **overrides: Any) -> G:
    """Wire store, policy, authentication, sanitizers and audit as the config says.

    ``overrides`` replace individual :class:`Guard` arguments (tests pass an
    in-memory store or auditor this way). Two more are not Guard arguments:
    ``functions`` (condition functions for the configured policy files, added to
    ``[guard] policy_functions``) and ``extra_sanitizers`` (run after the
    sanitizers, which ``sanitizers=`` replaces and which default to the built-in one).
    """
    from .approvals.notify import LoggingNotifier
    from .audit import open_auditor
    from .audit.config import AuditSettings
    from .authn import build_authentication
    from .authn.config import AuthnSettings
    from .policy import audit_reloads, load_policy
    from .policy.functionrefs import import_functions
    from .policy.reloading import ReloadingPolicy
    from .ratelimit import RateLimiter
    from .sanitize import DefaultSanitizer
    from .sanitize.pins import PinStore
    from .store import open_store

    g = config.guard
    store = overrides.pop("store", None) or open_store(g.state, base_dir=config.base_dir)
    policy = overrides.pop("policy", None)
    named = import_functions(g.policy_functions, config.base_dir, "guard.policy_functions")
    functions = {**named, **(overrides.pop("functions", None) or {})} or None
    if policy is None and g.policy_paths():
        paths = [config.resolve(p) for p in g.policy_paths()]
        # Validate now: a bad policy must stop start-up with its location; likely typos are logged.
        log_policy_warnings(load_policy(*paths, functions=functions))
        # Polls its files and follows reloads requested on any replica.
        policy = ReloadingPolicy(paths, interval=g.policy_poll, store=store, functions=functions)
    authn = AuthnSettings.model_validate(config.authn) if config.authn else AuthnSettings()
    resolver = overrides.pop("resolver", None) or build_authentication(authn, store, config.base_dir)
    auditor = overrides.pop("auditor", None)
    if auditor is None:
        audit_settings = AuditSettings.model_validate(config.audit) if config.audit else None
        auditor = open_auditor([config.resolve_url(u) for u in g.audit], audit_settings, config.base_dir)
    sanitizers = overrides.pop("sanitizers", None)
    if sanitizers is None:
        sanitizers = [DefaultSanitizer()]
    # Adding a sanitizer must not silently drop the built-in one: ``extra_sanitizers`` keeps it.
    sanitizers = [*sanitizers, *overrides.pop("extra_sanitizers", ())]
    limits = SizeLimits(
        max_params_bytes=g.max_params_bytes,
        max_arguments_bytes=g.max_arguments_bytes,
        max_result_bytes=g.max_result_bytes,
    )
    step_ups = None
    if authn.passwords is not None and authn.passwords.step_up_url is not None:
        from .authn.stepup import StepUps

        step_ups = StepUps(store, authn.passwords.step_up_url)
    kwargs: dict[str, Any] = {
        "step_ups": step_ups,
        "policy": policy,
        "resolver": resolver,
        "auditor": auditor,
        "sanitizers": sanitizers,
        "store": store,
        "rate_limiter": RateLimiter(store),
        "server": g.server,
        "mode": g.mode,
        "size_limits": limits,
        "inspect_lists": bool(g.inspect_lists),
        "inspect_results": bool(g.inspect_results),
        "sanitize": config.sanitize.to_config(),
        "pins": PinStore(store) if config.sanitize.pin or config.sanitize.servers else None,
        "max_in_flight_per_caller": config.portal.max_in_flight_per_caller,
    }
    if g.opentelemetry and "telemetry" not in overrides:
        kwargs["telemetry"] = _opentelemetry()
    kwargs.update(overrides)
    guard = guard_class(**kwargs)
    if "approvals" not in overrides:
        guard.approvals.max_pending = g.max_pending_approvals
    if config.source.endswith(".toml"):
        guard.config_source = str(config.base_dir / Path(config.source).name)
        for notifier in guard.approvals.notifiers:
            if isinstance(notifier, LoggingNotifier) and notifier.config is None:
                notifier.config = guard.config_source  # the hint's command reads this guard's store
    if isinstance(policy, ReloadingPolicy):
        if guard.auditor is not None:
            audit_reloads(policy, guard.auditor)  # a refused reload is on record, not only in a log
        policy.start()
        guard.on_close(policy.stop)
        if policy.store is not None:
            guard.run_in_background(policy.run)  # `policy reload` on any replica reaches this one
    if isinstance(guard.pins, PinStore):
        guard.run_in_background(guard.pins.run)  # approvals elsewhere drop this replica's cache
    return guard


def _opentelemetry() -> Any:
    """``[guard] opentelemetry = true``: spans and metrics through the global OpenTelemetry providers."""
    from .errors import ConfigError
    from .telemetry import Telemetry

    try:
        return Telemetry(traces=True, otel_metrics=True)
    except ImportError:
        raise ConfigError(
            "opentelemetry = true needs OpenTelemetry: pip install 'mcp-guard[otel]'",
            field="guard.opentelemetry",
        ) from None
