"""A policy that follows its files: reload on change, keep the old policy when the new one is bad.

Files are polled (``stat`` of each file every ``interval`` seconds) in a
background thread, or checked when :meth:`ReloadingPolicy.reload` is called;
the request path only reads one attribute. A reload that fails validation is
logged and reported to ``on_error`` (the guard wires that to its audit trail)
and the policy in force stays in force: the guard is never left without one.

With a state ``store``, an explicit reload reaches every replica:
:meth:`ReloadingPolicy.reload_everywhere` (or ``mcp-guard policy reload``)
publishes on :data:`RELOAD_CHANNEL`, and every ReloadingPolicy whose
:meth:`~ReloadingPolicy.run` follows that channel on the same store re-reads
its own files at once. A lost message only means the file poll picks the
change up instead.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import anyio
import anyio.abc
import anyio.to_thread

from ..errors import PolicyError
from ..model import AccessRequest, AuditEvent, BudgetCharge, Decision, LimitSpec, Principal
from ..protocols import Auditor, StateStore
from .engine import CompiledPolicy, Explanation
from .flows import FlowPlan
from .loader import load_policy

__all__ = ["RELOAD_CHANNEL", "ReloadingPolicy", "audit_reloads", "publish_reload"]

log = logging.getLogger(__name__)

#: The state-store channel that asks every replica to re-read its policy files.
RELOAD_CHANNEL = "policy:reload"


async def publish_reload(store: StateStore, origin: str = "cli", channel: str = RELOAD_CHANNEL) -> None:
    """Ask every :class:`ReloadingPolicy` following ``store`` to re-read its files now.

    ``origin`` names the sender; a policy ignores its own messages (it has
    already reloaded when it sent one).
    """
    await store.publish(channel, origin)


Stamp = tuple[tuple[int, int, int], ...]


class ReloadingPolicy:
    """A :class:`~mcp_guard.protocols.PolicyEngine` delegating to the current compiled policy.

    The first load happens in the constructor and raises :class:`PolicyError`
    if the files are invalid (there is no older policy to fall back on).
    ``on_error(exc)`` and ``on_reload(policy)`` are called from whichever
    thread noticed the change; keep them short.

    ``store`` (a :class:`~mcp_guard.protocols.StateStore`) enables reloads
    requested by other replicas: :meth:`run` follows ``channel`` until
    cancelled, and :meth:`reload_everywhere` reloads here and publishes.
    """

    def __init__(
        self,
        paths: str | Path | Iterable[str | Path],
        interval: float = 2.0,
        on_error: Callable[[PolicyError], Any] | None = None,
        on_reload: Callable[[CompiledPolicy], Any] | None = None,
        functions: Mapping[str, Callable[..., Any]] | None = None,
        store: StateStore | None = None,
        channel: str = RELOAD_CHANNEL,
        retry_interval: float = 2.0,
    ) -> None:
        self.paths: tuple[Path, ...] = (
            (Path(paths),) if isinstance(paths, (str, Path)) else tuple(Path(p) for p in paths)
        )
        self.interval = interval
        self.on_error = on_error
        self.on_reload = on_reload
        self.functions = functions
        self.store = store
        self.channel = channel
        #: Seconds to wait before following the channel again after the subscription broke.
        self.retry_interval = retry_interval
        #: Identifies this instance's own messages on the channel.
        self.origin = uuid.uuid4().hex
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stamp = self._stat()
        self.current: CompiledPolicy = load_policy(*self.paths, functions=functions)
        self.last_error: PolicyError | None = None

    def _stat(self) -> Stamp:
        out = []
        for p in self.paths:
            try:
                st = os.stat(p)
                out.append((st.st_mtime_ns, st.st_size, st.st_ino))
            except OSError:
                out.append((-1, -1, -1))
        return tuple(out)

    def reload(self, force: bool = True) -> bool:
        """Load the files again (only if they changed, unless ``force``); True if a new policy took over."""
        with self._lock:
            stamp = self._stat()
            if not force and stamp == self._stamp:
                return False
            self._stamp = stamp
            try:
                policy = load_policy(*self.paths, functions=self.functions)
            except PolicyError as exc:
                self.last_error = exc
                log.error("policy reload failed, keeping the policy in force: %s", exc)
                self._notify(self.on_error, exc)
                return False
            except Exception as exc:  # anything unexpected is still not allowed to drop the policy
                error = PolicyError(f"unexpected error while reloading: {type(exc).__name__}: {exc}")
                self.last_error = error
                log.exception("policy reload failed, keeping the policy in force")
                self._notify(self.on_error, error)
                return False
            self.current = policy
            self.last_error = None
        log.info("policy reloaded from %s", ", ".join(map(str, self.paths)))
        for warning in policy.warnings:
            log.warning("policy warning: %s", warning)
        self._notify(self.on_reload, policy)
        return True

    @staticmethod
    def _notify(callback: Callable[[Any], Any] | None, value: Any) -> None:
        if callback is None:
            return
        try:
            callback(value)
        except Exception:
            log.exception("policy reload callback failed")

    def start(self) -> ReloadingPolicy:
        """Start polling the files in a daemon thread (idempotent; ``interval`` 0 = no polling)."""
        if self.interval <= 0:
            return self
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="mcp-guard-policy-reload", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(1.0, self.interval * 2))
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.reload(force=False)
            except Exception:  # pragma: no cover - reload already catches everything
                log.exception("policy reload poll failed")

    # --- reloads requested through the state store ---------------------------------------------

    async def reload_everywhere(self) -> bool:
        """Reload here (forced) and ask every replica following the store to do the same.

        Returns whether a new policy took over *here*; each replica keeps its
        old policy and reports the error if its files are invalid. Without a
        store this is a local reload. A publish that fails raises (the local
        reload has happened; other replicas still pick changes up by polling).
        """
        changed = await anyio.to_thread.run_sync(self.reload)
        if self.store is not None:
            await publish_reload(self.store, self.origin, self.channel)
        return changed

    request_reload = reload_everywhere

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Follow the reload channel until cancelled: every message re-reads the files at once.

        When the subscription breaks (store down), the files are checked for a
        change and the channel is followed again after ``retry_interval``; the
        file poll covers what was published in the gap.
        """
        task_status.started()
        if self.store is None:
            await anyio.sleep(math.inf)
            return
        while True:
            try:
                async for origin in self.store.subscribe(self.channel):
                    if origin == self.origin:
                        continue  # sent by this instance, which reloaded before publishing
                    log.info("policy reload requested through the state store by %s", origin or "?")
                    await anyio.to_thread.run_sync(self.reload)
            except Exception:
                log.warning("policy reload subscription failed; relying on file polling", exc_info=True)
            await anyio.sleep(self.retry_interval)
            try:
                await anyio.to_thread.run_sync(lambda: self.reload(force=False))
            except Exception:  # pragma: no cover - reload already catches everything
                log.exception("policy reload check failed")

    def __enter__(self) -> ReloadingPolicy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- PolicyEngine, delegated ------------------------------------------------------------------

    @property
    def mode(self) -> str:
        return self.current.mode

    @property
    def version(self) -> int:
        return self.current.version

    @property
    def rules(self) -> tuple[Any, ...]:
        return self.current.rules

    @property
    def reads_target_attributes(self) -> bool:
        return self.current.reads_target_attributes

    def decide(self, principal: Principal, request: AccessRequest) -> Decision:
        return self.current.decide(principal, request)

    def visible(self, principal: Principal, server: str, kind: str, name: str) -> bool:
        return self.current.visible(principal, server, kind, name)

    def effective_roles(self, principal: Principal) -> frozenset[str]:
        """The principal's roles with inheritance and memberships, as the current policy grants them."""
        return self.current.effective_roles(principal)

    def limits_for(self, principal: Principal, request: AccessRequest) -> tuple[LimitSpec, ...]:
        return self.current.limits_for(principal, request)

    def budgets_for(self, principal: Principal, request: AccessRequest) -> tuple[BudgetCharge, ...]:
        return self.current.budgets_for(principal, request)

    def explain(self, principal: Principal, request: AccessRequest) -> Explanation:
        return self.current.explain(principal, request)

    def flow_plan(self, request: AccessRequest) -> FlowPlan:
        return self.current.flow_plan(request)

    def hiding_rule(self, principal: Principal, server: str, kind: str, name: str) -> str:
        return self.current.hiding_rule(principal, server, kind, name)


def audit_reloads(policy: ReloadingPolicy, auditor: Auditor) -> ReloadingPolicy:
    """Record every reload in ``auditor``: a ``lifecycle`` event ``policy/reload``, ``allow`` when
    a new policy took over, ``error`` (with the file, line and field) when it was refused and the
    old policy stays in force. Callbacks already set are kept and still called."""
    previous_error, previous_reload = policy.on_error, policy.on_reload

    def record(decision: Literal["allow", "error"], reasons: tuple[str, ...]) -> None:
        auditor.record(
            AuditEvent(method="policy/reload", decision=decision, event="lifecycle", reasons=reasons)
        )

    def on_error(exc: PolicyError) -> None:
        record("error", (f"policy reload refused, the previous policy stays in force: {exc}",))
        if previous_error is not None:
            previous_error(exc)

    def on_reload(new: CompiledPolicy) -> None:
        record("allow", (f"policy reloaded: {len(new.rules)} rules from {', '.join(new.sources)}",))
        if previous_reload is not None:
            previous_reload(new)

    policy.on_error = on_error
    policy.on_reload = on_reload
    return policy
