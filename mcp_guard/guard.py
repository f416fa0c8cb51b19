"""The guard: one object that holds the plugins and runs the chain.

``identify -> admit -> classify -> decide -> inspect-in -> [call] -> inspect-out -> record``

The order of the stages is written once, in :mod:`mcp_guard.pipeline`;
:meth:`Guard.run` is its entry point, and the integrations (server middleware,
client wrapper, portal) only translate their transport into an
:class:`~mcp_guard.pipeline.Exchange`. The stage methods here are the steps the
pipeline calls. A ``Guard`` holds no per-session state: share one across
sessions, tasks and threads.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import sys
from collections import OrderedDict
from collections.abc import Awaitable, Coroutine, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from . import pipeline, review, stepping
from .approvals import ApprovalBook
from .assembly import assemble
from .authn.chain import AuthenticatorChain
from .authn.stepup import StepUps
from .budgets import Budgets
from .classify import MethodInfo
from .config import GuardConfig, load_config
from .confirm import Confirmations
from .errors import AccessDenied, AuditUnavailable, GuardError, GuardUnavailable
from .events import audit_event
from .flowstate import FlowTracker, plan_for
from .inflight import DEFAULT_MAX_IN_FLIGHT, InFlight
from .limits import SizeLimits, check_size, json_size
from .model import (
    AccessRequest,
    AuditEvent,
    Decision,
    Principal,
    ScanResult,
)
from .policy.outcome import step_up_shortfalls
from .protocols import (
    Auditor,
    Authenticator,
    Credential,
    PolicyEngine,
    PrincipalResolver,
    Sanitizer,
    ServerIntegration,
    StateStore,
)
from .protocols import RateLimiter as RateLimiterProtocol
from .screening import Screening
from .store.memory import MemoryStore
from .store.secret import shared_secret
from .telemetry import Telemetry
from .upkeep import Upkeep
from .withheld import WithheldItems

if TYPE_CHECKING:
    from mcp.server.auth.provider import TokenVerifier
    from mcp.server.lowlevel import Server
    from mcp.server.mcpserver import MCPServer
    from starlette.applications import Starlette

    #: What ``protect`` accepts and hands back: the SDK's high-level or low-level server.
    ServerT = TypeVar("ServerT", bound="MCPServer | Server[Any]")

    from .sanitize.pins import PinStore
    from .sanitize.policy import SanitizeConfig

logger = logging.getLogger("mcp_guard")

Mode = Literal["enforce", "shadow"]

_HOUSEKEEPING = Decision(True, None, ("protocol housekeeping",))
_LIST = Decision(True, None, ("list: items filtered per principal",))


class DenyAllPolicy:
    """The policy of a guard that was given none: nothing is allowed, nothing is visible."""

    def decide(self, principal: Principal, request: AccessRequest) -> Decision:
        return Decision.deny(None, "no policy configured")

    def visible(self, principal: Principal, server: str, kind: str, name: str) -> bool:
        return False


class Guard(Screening):
    """Composes authenticators, a policy engine, sanitizers, an auditor and a state store.

    Every stage failure becomes a :class:`~mcp_guard.errors.GuardError`
    (an exception in a plugin becomes :class:`GuardUnavailable`), so the
    integrations only have to turn one exception type into an MCP error.
    """

    def __init__(
        self,
        *,
        policy: PolicyEngine | None = None,
        authenticators: Sequence[Authenticator] = (),
        anonymous: Principal | None = None,
        resolver: PrincipalResolver | None = None,
        auditor: Auditor | None = None,
        sanitizers: Sequence[Sanitizer] = (),
        store: StateStore | None = None,
        rate_limiter: RateLimiterProtocol | None = None,
        server: str | None = None,
        mode: Mode = "enforce",
        size_limits: SizeLimits | None = None,
        inspect_lists: bool = False,
        inspect_results: bool = False,
        visibility_cache_size: int = 4096,
        sanitize: SanitizeConfig | None = None,
        pins: PinStore | None = None,
        telemetry: Telemetry | None = None,
        approvals: ApprovalBook | None = None,
        step_ups: StepUps | None = None,
        max_in_flight_per_caller: int = DEFAULT_MAX_IN_FLIGHT,
    ) -> None:
        self.policy: PolicyEngine = policy if policy is not None else DenyAllPolicy()
        if resolver is None:
            resolver = AuthenticatorChain(authenticators, anonymous)
        self.resolver: PrincipalResolver = resolver
        self.auditor = auditor
        self.sanitizers = tuple(sanitizers)
        self.store = store
        self.rate_limiter = rate_limiter
        self.server = server
        self.mode: Mode = mode
        self.size_limits = size_limits or SizeLimits()
        self.inspect_lists = inspect_lists
        self.inspect_results = inspect_results
        if sanitize is None:
            from .sanitize.policy import SanitizeConfig

            sanitize = SanitizeConfig()
        #: Per-server actions on sanitizer verdicts (withhold, report, strip, shadow, pinning).
        self.sanitize = sanitize
        #: Rug-pull defence: item hashes approved per server (``None``: no pinning).
        self.pins = pins
        #: Approval requests (policy ``approval`` obligations), in the state store so any replica
        #: and ``mcp-guard approvals`` see them; without a store, in this process only.
        backing: StateStore = store if store is not None else MemoryStore()
        self.approvals = approvals if approvals is not None else ApprovalBook(backing)
        #: Step-up at call time (``[authn.passwords] step_up_url``): None refuses a missing MFA.
        self.step_ups = step_ups
        #: The ``confirm`` stage: its signed 2026-07-28 state uses a key shared through the store.
        self.confirmations = Confirmations(backing)
        #: The policy's ``[[budgets]]``, counted in the store so every replica charges one total.
        self.budgets = Budgets(backing)
        #: ``[[flows]]``: what each caller did earlier, as marks in the state store.
        self.flows = FlowTracker(backing)
        #: Calls each caller has running per server, capped (``[portal] max_in_flight_per_caller``).
        self.in_flight = InFlight(max_in_flight_per_caller)
        #: Items a list screening withheld, per server: refused at call time on every path.
        self.withheld = WithheldItems()
        #: Metrics and traces of every exchange (``docs/observability.md``); None: none at all.
        self.telemetry = telemetry
        if telemetry is not None:
            if auditor is not None:
                telemetry.watch_audit(auditor)
            telemetry.export_gauges()
        self._visibility: OrderedDict[tuple[Any, ...], dict[str, bool]] = OrderedDict()
        self._visibility_cache_size = visibility_cache_size
        self._scan_cache: OrderedDict[tuple[str, str], ScanResult] = OrderedDict()
        self._closers: list[Any] = []
        self._upkeep = Upkeep()
        run = getattr(self.resolver, "run", None)
        if run is not None:
            self._upkeep.add(run, "guard background upkeep stopped; revocations now apply when caches expire")

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_config(cls, config: str | Path | GuardConfig, **overrides: Any) -> Guard:
        """Build a guard from a ``guard.toml`` path or a loaded config (``docs/configuration.md``).

        ``overrides`` replace individual constructor arguments (tests pass an
        in-memory store or auditor this way); ``functions`` adds condition functions
        for the configured policy and ``extra_sanitizers`` adds sanitizers after the
        configured ones, where ``sanitizers`` replaces them (see :func:`~.assembly.assemble`).
        """
        loaded = config if isinstance(config, GuardConfig) else load_config(config)
        return assemble(loaded, cls, **overrides)

    # ------------------------------------------------------------------ identify
    async def identify(self, credential: Credential) -> Principal:
        """Resolve a credential; any failure is an :class:`AuthenticationError` or ``GuardUnavailable``."""
        try:
            principal = await self.resolver.resolve(credential)
        except GuardError:
            raise
        except Exception as exc:
            raise GuardUnavailable(f"authentication failed: {exc!r}") from exc
        if credential.ip is not None and principal.ip != credential.ip:
            principal = principal.with_network(credential.ip)
        return principal

    def identified(self, credential: Credential) -> Principal | None:
        """What :meth:`identify` returns when it needs no await (a cached principal), else None.

        The built-in chain answers a cache hit synchronously; every other case (a miss, a
        hold to check, a plugin resolver, any failure) returns None and goes through
        :meth:`identify`, so refusals and their audit stay in one place.
        """
        resolver = self.resolver
        if type(resolver) is not AuthenticatorChain:
            return None
        try:
            principal = resolver.hit(credential)
        except Exception:
            return None
        if principal is not None and credential.ip is not None and principal.ip != credential.ip:
            principal = principal.with_network(credential.ip)
        return principal

    # ------------------------------------------------------------------ decide
    async def authorize(
        self,
        principal: Principal,
        request: AccessRequest,
        info: MethodInfo,
        *,
        tick: review.WaitTick | None = None,
        exchange: pipeline.Exchange | None = None,
    ) -> Decision:
        """Decide one classified request; raise a :class:`GuardError` to refuse it.

        After the policy: step-up, rate limits, the caller's confirmation (asked through
        ``exchange.caller``; the params the handler then gets are left in
        ``exchange.forward``), then a person's approval (``tick`` runs while the call waits).
        """
        if info.housekeeping:
            return _HOUSEKEEPING
        if request.action == "list":
            return _LIST
        if request.action == "listen":
            return await self._authorize_listen(principal, request, exchange)
        # The policy's answer without a coroutine of its own when it is a Decision (most are).
        result = self._policy_decide(principal, request)
        if type(result) is Decision and self.mode == "enforce":
            decision = result
        else:
            decision = await self._settle(result)
        if not decision.allowed:
            raise AccessDenied("; ".join(decision.reasons) or "denied by policy", decision=decision)
        try:
            plan = plan_for(self.policy, request)
            if plan is not None:
                decision = await self.flows.check(
                    principal, request, plan, decision, enforce=self.mode == "enforce"
                )
            # Stages with nothing to do are not entered: most calls carry no obligation and many
            # guards have no rate limiter, and each skipped stage is one coroutine less per call.
            if decision.obligations:
                await self._step_up(principal, decision, exchange)
            if self.rate_limiter is not None:
                await self._admit_rate(principal, request)
            if decision.obligations:
                await self.budgets.precheck(self.policy, principal, request, decision)
            for obligation in decision.obligations:
                if obligation.kind == "confirm":
                    caller = exchange.caller if exchange is not None else None
                    params = exchange.params if exchange is not None else None
                    decision, forward = await self.confirmations.confirm(
                        principal, request, decision, obligation, caller, params
                    )
                    if exchange is not None:
                        exchange.forward = forward
            for obligation in decision.obligations:
                if obligation.kind == "approval":
                    decision = await review.approve_call(
                        self.approvals, principal, request, decision, obligation, tick or _progress(exchange)
                    )
            # Last, so a call any earlier stage refuses (or asks about first) costs nothing; that
            # includes the audit check the pipeline makes next (no audit, no access, no charge).
            self.check_audit()
            decision = await self.budgets.admit(self.policy, principal, request, decision)
            if plan is not None and plan.arms:
                event_id = exchange.event_id if exchange is not None else None
                await self.flows.arm(principal, request, plan, event_id or "unknown")
        except GuardError as exc:
            if exc.decision is not None:
                raise
            exc.decision = decision  # a refused allow keeps its rule and redactions in the audit
            raise
        return decision

    async def decide(self, principal: Principal, request: AccessRequest) -> Decision:
        """The policy's decision with the guard's shadow mode applied; never raises for a deny."""
        return await self._decide(principal, request)

    async def _decide(self, principal: Principal, request: AccessRequest) -> Decision:
        return await self._settle(self._policy_decide(principal, request))

    def _policy_decide(self, principal: Principal, request: AccessRequest) -> Any:
        """The policy's answer (a Decision or an awaitable of one); a failing plugin fails closed."""
        try:
            return self.policy.decide(principal, request)
        except GuardError:
            raise
        except Exception as exc:
            raise GuardUnavailable(f"policy evaluation failed: {exc!r}") from exc

    async def _settle(self, result: Any) -> Decision:
        """The policy's answer awaited if need be, checked, with the guard's shadow mode applied."""
        try:
            # A Decision first: ``isawaitable`` is an ABC check, the slow part of a memoised decision.
            decision = result if type(result) is Decision or not inspect.isawaitable(result) else await result
        except GuardError:
            raise
        except Exception as exc:
            raise GuardUnavailable(f"policy evaluation failed: {exc!r}") from exc
        if not isinstance(decision, Decision):
            raise GuardUnavailable(f"policy returned {type(decision).__name__}, not a Decision")
        if self.mode == "shadow" and not decision.allowed:
            return replace(decision, allowed=True, shadow=True, would_allow=False)
        return decision

    async def _authorize_listen(
        self, principal: Principal, request: AccessRequest, exchange: pipeline.Exchange | None
    ) -> Decision:
        uris = request.arguments.get("uris") or []
        armed = []
        for uri in uris:
            sub = AccessRequest(
                "resources/subscribe", "subscribe", request.server, "resource", uri, {}, request.context
            )
            decision = await self._decide(principal, sub)
            if not decision.allowed:
                raise AccessDenied(f"subscription to {uri!r} denied: " + "; ".join(decision.reasons))
            plan = plan_for(self.policy, sub)
            if plan is not None:
                held = await self.flows.check(principal, sub, plan, decision, enforce=self.mode == "enforce")
                if held.flow is not None and not held.shadow:  # a stream has nobody to confirm or approve
                    raise AccessDenied(
                        f"subscription to {uri!r} held by flow {held.flow['id']}", decision=held
                    )
                armed.append((sub, plan))
        event_id = exchange.event_id if exchange is not None else None
        for sub, plan in armed:
            await self.flows.arm(principal, sub, plan, event_id or "unknown")
        return Decision(True, None, (f"{len(uris)} resource subscription(s) allowed",))

    async def _step_up(
        self, principal: Principal, decision: Decision, exchange: pipeline.Exchange | None
    ) -> None:
        """A ``step_up`` rule needs an MFA within ``max_age``: from the credential, or asked for.

        Which obligations the credential does not meet is :func:`step_up_shortfalls`, the same
        reading ``mcp-guard policy check`` and ``test`` make offline.
        """
        for _, max_age, why in step_up_shortfalls(principal, decision, datetime.now(timezone.utc)):
            if self.step_ups is None:
                raise AccessDenied(why)
            await stepping.step_up(self.step_ups, principal, max_age, why, exchange)

    async def _admit_rate(self, principal: Principal, request: AccessRequest) -> None:
        if self.rate_limiter is None:
            return
        limits_for = getattr(self.policy, "limits_for", None)
        if limits_for is None:
            return
        try:
            limits = limits_for(principal, request)
            if limits:
                await self.rate_limiter.check(principal, request, limits)
        except GuardError:
            raise
        except Exception as exc:
            raise GuardUnavailable(f"rate limiting failed: {exc!r}") from exc

    # ------------------------------------------------------------------ inspect-in
    def check_params(self, params: Mapping[str, Any] | None, request: AccessRequest) -> int:
        """Refuse oversized params or arguments; return the params size for the audit record."""
        if not params:
            return 0
        size = check_size(params, self.size_limits.max_params_bytes, "request params")
        limit = self.size_limits.max_arguments_bytes
        # Arguments are part of params: only measure them when params alone could exceed their limit.
        if request.arguments and limit is not None and size > limit:
            check_size(dict(request.arguments), limit, "arguments")
        return size

    # ------------------------------------------------------------------ record
    def check_audit(self) -> None:
        """Refuse up front when the audit trail cannot take events (no audit, no access)."""
        if self.auditor is None:
            return
        check = getattr(self.auditor, "check_available", None)
        if check is not None:
            try:
                check()
            except GuardError:
                raise
            except Exception as exc:
                raise AuditUnavailable(f"audit unavailable: {exc!r}") from exc

    async def record(self, event: AuditEvent) -> None:
        """Hand an event to the auditor (enqueue, or durable commit in sync mode)."""
        if self.auditor is None:
            return
        try:
            if self.auditor.synchronous:
                await self.auditor.record_sync(event)
            else:
                self.auditor.record(event)
        except GuardError:
            raise
        except Exception as exc:
            raise AuditUnavailable(f"audit failed: {exc!r}") from exc

    def enqueue(self, event: AuditEvent) -> bool:
        """:meth:`record` without a coroutine, for an auditor that only enqueues.

        Returns False, having done nothing, when the auditor is synchronous: then await
        :meth:`record`. Every request passes here, so the usual case costs no coroutine.
        """
        auditor = self.auditor
        if auditor is None:
            return True
        try:
            if auditor.synchronous:
                return False
            auditor.record(event)
        except GuardError:
            raise
        except Exception as exc:
            raise AuditUnavailable(f"audit failed: {exc!r}") from exc
        return True

    def record_nowait(self, event: AuditEvent) -> None:
        """Best effort for events about refusals: the refusal stands whatever happens here."""
        if self.auditor is None:
            return
        try:
            self.auditor.record(event)
        except Exception:
            # Never log the event itself: its arguments are not redacted yet.
            logger.exception(
                "audit event %s (%s %s) for a refused request could not be recorded",
                event.id,
                event.method,
                event.decision,
            )

    #: The audit event of one exchange (:func:`mcp_guard.events.audit_event`).
    event = staticmethod(audit_event)

    # ------------------------------------------------------------------ the pipeline
    def run(
        self, exchange: pipeline.Exchange, call: pipeline.Call, *, delegate: bool = False
    ) -> Coroutine[Any, Any, Any]:
        """Run one request through every stage (see :mod:`mcp_guard.pipeline`); the adapters' one entry.

        Await the result. It is the pipeline's own coroutine, not one wrapping it: a frame less
        on every request.
        """
        return pipeline.run(self, exchange, call, delegate=delegate)

    # ------------------------------------------------------------------ integrations
    def protect(self, server: ServerT, **options: Any) -> ServerT:
        """Install this guard on an ``MCPServer`` or low-level ``Server``; returns the server.

        The SDK adapter lives in :mod:`mcp_guard.integrations.server`, which
        registers itself when ``mcp_guard`` is imported: the core never imports it.
        """
        protected: ServerT = _integration().protect(self, server, **options)
        return protected

    def http_app(self, server: MCPServer | Server[Any], **kwargs: Any) -> Starlette:
        """``server.streamable_http_app(**kwargs)`` with the SDK's own 401/403 refusals audited too."""
        app: Starlette = _integration().http_app(self, server, **kwargs)
        return app

    def serve_http(self, server: Any, host: str = "127.0.0.1", port: int = 8000, **options: Any) -> None:
        """Serve ``server`` guarded over streamable HTTP until interrupted: the HTTP ``mcp.run()``.

        Installs the guard if ``protect`` was not called, the guard's token
        verifier (HTTP 401 for a missing or invalid token), DNS-rebinding
        protection, session caps and the audit of transport refusals; refuses a
        non-loopback ``host`` unless ``allow_public_bind=True``; flushes the audit
        trail on exit. Options: ``path`` (``/mcp``), ``allowed_hosts``,
        ``public_url``, ``allow_public_bind``, ``max_sessions``,
        ``max_sessions_per_principal``, ``read_timeout``, ``log_level``.
        """
        served = self.http_server(server, host, port, **options)
        path = options.get("path", "/mcp")
        shown = f"[{host}]" if ":" in host else host
        # Like ``mcp-guard serve``: say where it listens (stderr; uvicorn's own lines are at warning).
        print(f"mcp-guard: serving on http://{shown}:{port}{path} (Ctrl-C to stop)", file=sys.stderr)
        served.run()

    def http_server(self, server: Any, host: str = "127.0.0.1", port: int = 8000, **options: Any) -> Any:
        """The ``uvicorn.Server`` :meth:`serve_http` runs, for async hosts: ``await ....serve()``."""
        return _integration().http_server(self, server, host=host, port=port, **options)

    async def request_state_security(self, *, audience: str | None = None, ttl: float = 600.0) -> Any:
        """An SDK ``RequestStateSecurity`` whose sealing key every replica shares through the store.

        On 2026-07-28 a multi-round-trip follow-up may land on any replica; with
        the SDK's default ephemeral key only the replica that sealed the state
        could open it. Pass the result as ``MCPServer(request_state_security=...)``.
        Without a state store the key is process-local, as the SDK's default.
        """
        key = await shared_secret(self.store, "request-state") if self.store is not None else None
        return _integration().request_state_security(key, audience or self.server, ttl)

    def token_verifier(self) -> TokenVerifier:
        """An SDK ``TokenVerifier`` that authenticates bearer tokens through this guard."""
        verifier: TokenVerifier = _integration().token_verifier(self)
        return verifier

    def ensure_background(self) -> None:
        """Start background upkeep (revocation following, key refresh) on first use.

        Hosts that manage lifecycles use ``async with guard:`` instead (any
        anyio backend); this lazy start covers servers run with ``mcp.run()``,
        where the guard has no other hook, and needs asyncio (see :mod:`.upkeep`).
        """
        self._upkeep.start_lazily()

    def run_in_background(self, run: Any) -> None:
        """Run the coroutine function ``run()`` with the background upkeep until the guard closes.

        Used for followers of the state store (policy reloads, pin approvals).
        Registered before the upkeep started, it starts with it; afterwards, at once.
        """
        self._upkeep.add(run)

    async def __aenter__(self) -> Guard:
        await self._upkeep.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def on_close(self, closer: Any) -> None:
        """Register something to close with the guard (stores, pollers)."""
        self._closers.append(closer)

    async def aclose(self) -> None:
        """Flush the audit trail and release stores. Safe to call twice."""
        await self._upkeep.aclose()
        if self.auditor is not None:
            await self.auditor.aclose()
        for closer in reversed(self._closers):
            result = closer()
            if isinstance(result, Awaitable):
                await result
        self._closers.clear()
        if self.store is not None:
            await self.store.aclose()


def _progress(exchange: pipeline.Exchange | None) -> review.WaitTick | None:
    """Progress notifications to the caller while its call waits for an approval (when it asked)."""
    send = getattr(exchange.caller, "progress", None) if exchange is not None else None
    if send is None:
        return None

    async def tick(request: Any, waited: float) -> None:
        await send(waited, f"waiting for approval {request.id} (approvers: {', '.join(request.approvers)})")

    return tick


def result_size(value: Any) -> int:
    return json_size(value)


_INTEGRATION: ServerIntegration | None = None


def register_integration(integration: ServerIntegration) -> None:
    """Called by :mod:`mcp_guard.integrations.server` on import; the arrow points up, never down."""
    global _INTEGRATION
    _INTEGRATION = integration


def _integration() -> ServerIntegration:
    if _INTEGRATION is None:
        # ``import mcp_guard`` is lazy (a cheap command line): the adapter loads on first use.
        importlib.import_module("mcp_guard.integrations.server")
    if _INTEGRATION is None:
        raise RuntimeError("mcp_guard.integrations.server did not register the mcp integration")
    return _INTEGRATION
