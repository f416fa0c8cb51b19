"""Small policy engines: an allow-list for the quick start, and a chain of engines.

``ChainedPolicy`` is how a custom engine (an external PDP, a risk score, a
ticket check) is added next to the built-in one: every member must allow, the
first deny wins, an item is listed only if every member lists it. Members may
be synchronous or asynchronous; ``decide`` returns a plain
:class:`~mcp_guard.model.Decision` while every member answered synchronously
and an awaitable as soon as one member returns an awaitable, so callers
(the guard does) must accept both, as the ``PolicyEngine`` protocol says.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Iterable, Sequence
from typing import Any

from ..model import AccessRequest, BudgetCharge, Decision, LimitSpec, Principal
from ..protocols import PolicyEngine
from .engine import CompiledPolicy, merge_obligations
from .flows import FlowPlan, FlowSpec
from .loader import policy_from_dict

__all__ = ["AllowListPolicy", "ChainedPolicy"]

log = logging.getLogger(__name__)


class AllowListPolicy:
    """Allow exactly the named tool, prompt and resource globs to every authenticated principal.

    Everything else is denied and hidden. It is a one-rule compiled policy, so
    matching (globs, NFC, ``*`` across ``/``) is the same as in policy files.
    """

    def __init__(
        self,
        tools: Iterable[str] = (),
        prompts: Iterable[str] = (),
        resources: Iterable[str] = (),
        servers: Iterable[str] | None = None,
    ) -> None:
        rule: dict[str, Any] = {"id": "allow-list", "effect": "allow"}
        for key, values in (("tools", tools), ("prompts", prompts), ("resources", resources)):
            names = list(values)
            if names:
                rule[key] = names
        if servers is not None:
            rule["servers"] = list(servers)
        named_kind = any(k in rule for k in ("tools", "prompts", "resources"))
        self.policy: CompiledPolicy = policy_from_dict(
            {"rules": [rule] if named_kind else []}, "<allow-list>"
        )
        self.version = self.policy.version

    @property
    def reads_target_attributes(self) -> bool:
        """Whether the compiled rule reads target tags or annotations (an allow-list never does)."""
        return self.policy.reads_target_attributes

    def decide(self, principal: Principal, request: AccessRequest) -> Decision:
        return self.policy.decide(principal, request)

    def visible(self, principal: Principal, server: str, kind: str, name: str) -> bool:
        return self.policy.visible(principal, server, kind, name)

    def limits_for(self, principal: Principal, request: AccessRequest) -> tuple[LimitSpec, ...]:
        return ()


def _combine(decisions: Sequence[Decision]) -> Decision:
    for d in decisions:
        if not d.allowed:
            return d
    first = decisions[0]
    shadow = any(d.shadow for d in decisions)
    would = all((d.would_allow if d.shadow else d.allowed) for d in decisions) if shadow else None
    reasons = tuple(r for d in decisions for r in d.reasons)
    return Decision(
        True,
        first.rule,
        reasons,
        merge_obligations(o for d in decisions for o in d.obligations),
        shadow=shadow,
        would_allow=would,
    )


def _failed(engine: object, exc: BaseException) -> Decision:
    log.exception("policy engine %r failed", engine)
    return Decision(
        False, None, (f"policy engine {type(engine).__name__} failed: {type(exc).__name__}: {exc}",)
    )


class ChainedPolicy:
    """Every engine must allow; the first deny (in chain order) is the decision.

    An engine that raises denies. Obligations of all allowing engines are
    merged; a shadow decision from any member makes the result shadow.
    """

    def __init__(self, engines: Iterable[PolicyEngine]) -> None:
        self.engines: tuple[PolicyEngine, ...] = tuple(engines)
        if not self.engines:
            raise ValueError("ChainedPolicy needs at least one engine")

    @property
    def version(self) -> tuple[Any, ...]:
        """Changes when any member's version changes (a reloaded policy), so list memos expire."""
        return tuple(getattr(e, "version", None) for e in self.engines)

    def decide(self, principal: Principal, request: AccessRequest) -> Decision | Awaitable[Decision]:
        done: list[Decision] = []
        for i, engine in enumerate(self.engines):
            try:
                result = engine.decide(principal, request)
            except Exception as exc:
                return _failed(engine, exc)
            if inspect.isawaitable(result):
                return self._finish(principal, request, done, result, i)
            if not result.allowed:
                return result
            done.append(result)
        return _combine(done)

    async def _finish(
        self,
        principal: Principal,
        request: AccessRequest,
        done: list[Decision],
        pending: Awaitable[Decision],
        index: int,
    ) -> Decision:
        try:
            result = await pending
        except Exception as exc:
            return _failed(self.engines[index], exc)
        if not result.allowed:
            return result
        done.append(result)
        for engine in self.engines[index + 1 :]:
            try:
                out = engine.decide(principal, request)
                decision = await out if inspect.isawaitable(out) else out
            except Exception as exc:
                return _failed(engine, exc)
            if not decision.allowed:
                return decision
            done.append(decision)
        return _combine(done)

    def visible(self, principal: Principal, server: str, kind: str, name: str) -> bool:
        try:
            return all(e.visible(principal, server, kind, name) for e in self.engines)
        except Exception:
            log.exception("policy visibility check failed")
            return False

    def limits_for(self, principal: Principal, request: AccessRequest) -> tuple[LimitSpec, ...]:
        out: list[LimitSpec] = []
        for engine in self.engines:
            fn = getattr(engine, "limits_for", None)
            if fn is not None:
                out.extend(s for s in fn(principal, request) if s not in out)
        return tuple(out)

    def budgets_for(self, principal: Principal, request: AccessRequest) -> tuple[BudgetCharge, ...]:
        """Every member's budgets: each member's policy charges the call (same id twice: once)."""
        out: dict[str, BudgetCharge] = {}
        for engine in self.engines:
            fn = getattr(engine, "budgets_for", None)
            if fn is not None:
                for charge in fn(principal, request):
                    out.setdefault(charge.budget.id, charge)
        return tuple(out.values())

    def flow_plan(self, request: AccessRequest) -> FlowPlan:
        """The ``[[flows]]`` of every engine that has some, joined."""
        labels: set[str] = set()
        checks: list[FlowSpec] = []
        arms: list[FlowSpec] = []
        for engine in self.engines:
            fn = getattr(engine, "flow_plan", None)
            if fn is not None:
                plan = fn(request)
                labels |= plan.labels
                checks.extend(f for f in plan.checks if f not in checks)
                arms.extend(f for f in plan.arms if f not in arms)
        return FlowPlan(frozenset(labels), tuple(checks), tuple(arms))
