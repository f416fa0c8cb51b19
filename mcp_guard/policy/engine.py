"""The compiled policy: candidate rules per server and target, and the decision procedure.

A decision looks up the candidates for ``(server, kind, target)`` (cached
after the first request for that target; only the rules of that server and
the wildcard-server rules are ever scanned), then checks actions, principal
selectors and conditions of those candidates alone. Semantics are the
contract of DESIGN.md section 3: deny overrides allow, default deny, the
reported rule is the first matching rule of the winning effect in file order,
conditions that fail to evaluate never satisfy an allow and always satisfy a
deny, and list visibility ignores conditions of allows but honours
unconditional denies. Selectors live in :mod:`.matchers`, the target index in
:mod:`.ruleindex`, explanations in :mod:`.explanation`.

Every cache here is keyed by what callers send (target names, principals), so
each is a :class:`~.ruleindex.BoundedCache`: least recently used entries go
(two generations) past :data:`CACHE_ENTRIES` entries or :data:`CACHE_KEY_CHARS`
characters of keys, and a name longer than :data:`~.ruleindex.KEY_MAX` is
decided uncached. A hit costs one dictionary lookup, as before the bounds.
The caches only memoise: a decision never depends on what they hold.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any, Literal

from ..model import AccessRequest, BudgetCharge, Decision, Effect, LimitSpec, Obligation, Principal
from .budgets import BudgetTrace, CompiledBudget, budget_traces, select_budgets
from .conditions import Activation
from .explanation import Explanation, RuleTrace
from .flows import FlowPlan, Labeler
from .globs import is_glob, nfc
from .matchers import _Matcher as _Matcher
from .matchers import _PrincipalView
from .matchers import _TenantTag as _TenantTag
from .obligations import merge_obligations as merge_obligations
from .reasons import DEFAULT_ALLOW_REASON, DEFAULT_DENY_REASON, unmet_reason
from .ruleindex import KEY_MAX, PRINCIPAL_WEIGHT_MAX, BoundedCache, _Index, names_weight, principal_weight

__all__ = ["USE_ACTION", "CompiledPolicy", "Explanation", "Rule", "RuleTrace"]

log = logging.getLogger(__name__)

#: The action a list item stands for: an item is listed iff the principal may do this with it.
USE_ACTION = {"tool": "call", "prompt": "get", "resource": "read", "resource_template": "read"}
#: Entries each cache of a compiled policy keeps (the decision memo: ``memo_size``).
CACHE_ENTRIES = 16384
#: Characters the keys of one cache may hold in all: at most ~1 MiB of names per cache.
CACHE_KEY_CHARS = 1 << 20
#: Distinct candidate lists kept (targets matched by the same rules share one).
_SPLITS_MAX = 1024
_VERSIONS = itertools.count(1)


@dataclass(frozen=True, slots=True)
class Rule:
    """A rule as written (selectors ``None`` when omitted), with where it came from."""

    id: str
    effect: Effect
    source: str = "<string>"
    line: int | None = None
    subjects: tuple[str, ...] | None = None
    roles: tuple[str, ...] | None = None
    groups: tuple[str, ...] | None = None
    tenants: tuple[str, ...] | None = None
    servers: tuple[str, ...] | None = None
    tools: tuple[str, ...] | None = None
    prompts: tuple[str, ...] | None = None
    resources: tuple[str, ...] | None = None
    actions: tuple[str, ...] | None = None
    when: str | None = None
    shadow: bool = False
    cross_tenant: bool = False
    obligations: tuple[Obligation, ...] = ()
    description: str | None = None
    labels: tuple[str, ...] | None = None
    annotations: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class _Candidates:
    """Rules that may apply to one (server, kind, target), in file order, split for each use."""

    denies: tuple[_Matcher, ...]
    allows: tuple[_Matcher, ...]
    owner: str | None
    server: str  # NFC-normalised names
    target: str | None
    hiding: tuple[_Matcher, ...] = ()  # enforced unconditional denies: hide an item from lists
    listing: tuple[_Matcher, ...] = ()  # enforced allows: list an item


_DEFAULT_ALLOW = Decision(True, None, (DEFAULT_ALLOW_REASON,))
_DEFAULT_DENY = Decision(False, None, (DEFAULT_DENY_REASON,))


class CompiledPolicy:
    """A loaded, validated policy; implements :class:`~mcp_guard.protocols.PolicyEngine`.

    Immutable after construction and safe to share across threads and tasks:
    the only mutable state is the bounded lookup caches, whose entries are
    computed from immutable data (a race costs a recomputation, never a wrong
    answer).
    """

    #: Load-time warnings (``FILE:LINE: FIELD: message``): likely typos that are not errors.
    warnings: tuple[str, ...] = ()

    def __init__(
        self,
        *,
        rules: Sequence[Rule],
        matchers: Sequence[_Matcher],
        limits: Sequence[LimitSpec] = (),
        limit_matchers: Sequence[_Matcher] = (),
        role_ancestors: Mapping[str, frozenset[str]] | None = None,
        role_members: Mapping[str, tuple[frozenset[str], frozenset[str]]] | None = None,
        tenant_tags: Sequence[_TenantTag] = (),
        default: Literal["allow", "deny"] = "deny",
        mode: Literal["enforce", "shadow"] = "enforce",
        tz: tzinfo | None = None,
        sources: tuple[str, ...] = (),
        budgets: Sequence[CompiledBudget] = (),
        labeler: Labeler | None = None,
    ) -> None:
        self.rules: tuple[Rule, ...] = tuple(rules)
        self.limits: tuple[LimitSpec, ...] = tuple(limits)
        self.budgets: tuple[CompiledBudget, ...] = tuple(budgets)
        self.default: Literal["allow", "deny"] = default
        self.mode: Literal["enforce", "shadow"] = mode
        self.sources = sources
        #: Unique per compiled policy: caches keyed by it (the guard's list memo) expire on reload.
        self.version: int = next(_VERSIONS)
        self._matchers = tuple(matchers)
        #: ``[[labels]]`` and ``[[flows]]``: static labels per target, and the flows they take part in.
        self.labeler = labeler if labeler is not None else Labeler((), ())
        self._labelled = any(m.labels is not None for m in matchers)
        #: A condition may read ``request.tags`` / ``request.annotations``: only then does the guard
        #: look them up (conservatively, by name: a false positive costs a lookup, never a decision).
        self.reads_target_attributes = any(
            m.condition is not None and ("tags" in m.condition.source or "annotations" in m.condition.source)
            for m in (*matchers, *limit_matchers)
        )
        self._index: _Index[_Matcher] = _Index(matchers)
        self._limit_specs = {m.index: spec for m, spec in zip(limit_matchers, limits, strict=True)}
        self._limit_index: _Index[_Matcher] = _Index(limit_matchers)
        self._ancestors = dict(role_ancestors or {})
        self._members = dict(role_members or {})
        self._tenant_tags = tuple(tenant_tags)
        self._tz = tz
        self._cands: BoundedCache[tuple[str, str | None, str | None], _Candidates] = BoundedCache(
            CACHE_ENTRIES, CACHE_KEY_CHARS
        )
        self._splits: BoundedCache[tuple[_Matcher, ...], tuple[tuple[_Matcher, ...], ...]] = BoundedCache(
            _SPLITS_MAX, CACHE_KEY_CHARS
        )
        self._limit_cache: BoundedCache[tuple[str, str | None, str | None], tuple[_Matcher, ...]] = (
            BoundedCache(CACHE_ENTRIES, CACHE_KEY_CHARS)
        )
        self._views: BoundedCache[tuple[Any, ...], _PrincipalView] = BoundedCache(
            CACHE_ENTRIES, CACHE_KEY_CHARS, PRINCIPAL_WEIGHT_MAX
        )
        #: Decisions that evaluated no condition depend only on the principal's view, the target and
        #: the action, so they are memoised (bounded). ``memo_size = 0`` turns this off.
        self._memo: BoundedCache[tuple[Any, ...], Decision] = BoundedCache(CACHE_ENTRIES, CACHE_KEY_CHARS)
        self._seen: BoundedCache[tuple[Any, ...], bool] = BoundedCache(CACHE_ENTRIES, CACHE_KEY_CHARS)

    def __repr__(self) -> str:
        return f"<CompiledPolicy {len(self.rules)} rules, {len(self.limits)} limits, mode={self.mode}>"

    @property
    def memo_size(self) -> int:
        """Entries of the decision and visibility memos (``0``: no memo)."""
        return self._memo.entries

    @memo_size.setter
    def memo_size(self, size: int) -> None:
        self._memo.resize(size)
        self._seen.resize(size)

    # --- shared lookups ---------------------------------------------------------------------------

    def _candidates(self, raw_server: str, kind: str | None, raw_target: str | None) -> _Candidates:
        """Candidates for the names as given (cached under them; normalised only on a miss)."""
        key = (raw_server, kind, raw_target)
        cache = self._cands
        hit = cache.young.get(key)
        if hit is None and cache.old:
            hit = cache.promote(key)
        if hit is not None:
            return hit
        server = nfc(raw_server)
        target = nfc(raw_target) if raw_target is not None else None
        found = self._index.lookup(server, kind, target)
        if self._labelled:
            # ``labels = [...]`` rules apply only to targets that carry one of their labels.
            have = self.labeler.labels_of(server, kind, target)
            found = tuple(m for m in found if m.labels is None or not m.labels.isdisjoint(have))
        # Targets matched by the same rules share one set of tuples: an entry costs its key.
        split = self._splits.get(found)
        if split is None:
            split = (
                tuple(m for m in found if m.deny),
                tuple(m for m in found if not m.deny),
                tuple(m for m in found if m.deny and m.condition is None and not m.shadow),
                tuple(m for m in found if not m.deny and not m.shadow),
            )
            self._splits.put(found, split, 0)
        denies, allows, hiding, listing = split
        cands = _Candidates(
            denies, allows, self._owner(server, kind, target), server, target, hiding, listing
        )
        size = len(raw_target) if raw_target is not None else 0
        if size <= KEY_MAX and len(raw_server) <= KEY_MAX:  # longer names are never cached
            cache.put(key, cands, size + len(raw_server) + (len(kind) if kind else 0))
        return cands

    def _owner(self, server: str, kind: str | None, target: str | None) -> str | None:
        for tag in self._tenant_tags:
            if tag.servers is not None and tag.servers.match(server):
                return tag.tenant
            if kind is not None and kind in tag.kinds and tag.kinds[kind].match(target):
                return tag.tenant
        return None

    def _view(self, p: Principal) -> _PrincipalView:
        key = (
            (p.subject, p.roles, p.groups, p.tenant)
            if self._members
            else (p.roles, p.groups, p.subject, p.tenant)
        )
        cache = self._views
        hit = cache.young.get(key)
        if hit is None and cache.old:
            hit = cache.promote(key)
        if hit is not None:
            return hit
        subject = nfc(p.subject)
        groups = frozenset(nfc(g) for g in p.groups)
        direct = {nfc(r) for r in p.roles}
        for role, (subjects, member_groups) in self._members.items():
            if subject in subjects or not member_groups.isdisjoint(groups):
                direct.add(role)
        roles: set[str] = set()
        for role in direct:
            roles |= self._ancestors.get(role, frozenset((role,)))
        weight = principal_weight(p.subject, p.roles, p.groups, p.tenant)
        if weight > PRINCIPAL_WEIGHT_MAX:
            # Too large to keep: serial 0 tells the memos not to store decisions for this view.
            return _PrincipalView(subject, frozenset(roles), groups, p.tenant, serial=0)
        view = _PrincipalView(subject, frozenset(roles), groups, p.tenant)
        cache.put(key, view, weight)
        return view

    @property
    def flows(self) -> tuple[Any, ...]:
        """The ``[[flows]]`` of the policy, in file order."""
        return self.labeler.flows

    def labels_of(self, server: str, kind: str | None, target: str | None) -> frozenset[str]:
        """The ``[[labels]]`` a target carries (static: from its server and name alone)."""
        return self.labeler.labels_of(nfc(server), kind, nfc(target) if target is not None else None)

    def flow_plan(self, request: AccessRequest) -> FlowPlan:
        """Which ``[[flows]]`` may refuse this request and which an allowed one arms."""
        target = request.target
        return self.labeler.plan(
            nfc(request.server), request.kind, nfc(target) if target is not None else None
        )

    def effective_roles(self, principal: Principal) -> frozenset[str]:
        """The principal's roles with everything they inherit (and roles granted by membership)."""
        return self._view(principal).roles

    # --- PolicyEngine -----------------------------------------------------------------------------

    def decide(self, principal: Principal, request: AccessRequest) -> Decision:
        """Decide one request; never raises (an internal failure is a deny naming the failure)."""
        try:
            return self._decide(principal, request)
        except Exception as exc:
            log.exception("policy evaluation failed")
            return Decision(False, None, (f"policy evaluation failed: {type(exc).__name__}: {exc}",))

    def decide_assuming(
        self, principal: Principal, request: AccessRequest, assume: Callable[[Rule], bool]
    ) -> Decision:
        """Decide as :meth:`decide` does, but each ``when`` condition reached answers ``assume(rule)``.

        Impact analysis (:mod:`.impact`) needs to know whether a decision hangs
        on a condition without a real request to evaluate it against: it calls
        this with every combination of answers for the conditions the engine
        actually reaches, so the analysis runs the one decision procedure
        instead of a copy of it. An answer stands for the condition's outcome,
        an evaluation error included (an error counts as true for a deny and
        false for an allow).
        """
        try:
            return self._decide(principal, request, lambda m: assume(self.rules[m.index]))
        except Exception as exc:
            log.exception("policy evaluation failed")
            return Decision(False, None, (f"policy evaluation failed: {type(exc).__name__}: {exc}",))

    def target_class(self, server: str, kind: str | None, target: str | None) -> Hashable:
        """A key shared by targets the rules cannot tell apart (same candidate rules, same tenant).

        Two targets with one class get the same decision from every principal
        for every action, except through a ``when`` condition that reads the
        target; impact analysis, which answers conditions by assumption, asks
        the engine once per class instead of once per target.
        """
        cands = self._candidates(server, kind, target)
        return (cands.denies, cands.allows, cands.owner)

    def role_names(self) -> tuple[str, ...]:
        """Every role the policy names: in rule selectors (not globs) and in ``[roles]``, sorted."""
        named: set[str] = set()
        for rule in self.rules:
            named.update(nfc(r) for r in rule.roles or () if not is_glob(r))
        for role, ancestors in self._ancestors.items():
            named.add(role)
            named.update(ancestors)
        return tuple(sorted(named))

    def _decide(
        self, principal: Principal, request: AccessRequest, assume: Callable[[_Matcher], bool] | None = None
    ) -> Decision:
        view = self._view(principal)
        action = request.action
        memo_key = (view.serial, request.server, request.kind, request.target, action)
        cache = self._memo
        memo = cache.young.get(memo_key)
        if memo is None and cache.old:
            memo = cache.promote(memo_key)
        if memo is not None:
            return memo
        cands = self._candidates(request.server, request.kind, request.target)
        server, target = cands.server, cands.target
        subject, roles, groups, tenant = view.subject, view.roles, view.groups, view.tenant
        act: Activation | None = None
        notes: list[str] = []
        shadow_deny: _Matcher | None = None
        deny: _Matcher | None = None
        for m in cands.denies:
            if (m.actions is not None and action not in m.actions) or not m.principal_ok(
                subject, roles, groups, tenant
            ):
                continue
            if m.condition is not None:
                if act is None:
                    act = Activation(principal, request, roles, self._tz, server, target)
                try:
                    if not (m.condition(act) if assume is None else assume(m)):
                        continue
                except Exception as exc:
                    notes.append(f"rule {m.id}: condition could not be evaluated ({exc}); a deny matches")
            if m.shadow:
                if shadow_deny is None:
                    shadow_deny = m
            else:
                deny = m
                break
        if deny is not None and shadow_deny is None and self.mode == "enforce":
            decision = Decision(False, deny.id, (deny.denied.reasons[0], *notes)) if notes else deny.denied
            return self._remember(memo_key if act is None else None, decision)

        foreign = cands.owner is not None and tenant != cands.owner
        allow: _Matcher | None = None
        shadow_allow: _Matcher | None = None
        obligations: list[Obligation] = []
        unmet: list[str] = []  # allow rules that applied to caller and target but whose `when` was false
        broken: _Matcher | None = None  # an allow rule with obligations whose condition raised
        if deny is None:
            for m in cands.allows:
                if allow is not None and not m.obligations:
                    continue
                if (
                    (foreign and not m.cross_tenant)
                    or (m.actions is not None and action not in m.actions)
                    or not m.principal_ok(subject, roles, groups, tenant)
                ):
                    continue
                if m.condition is not None:
                    if act is None:
                        act = Activation(principal, request, roles, self._tz, server, target)
                    try:
                        if not (m.condition(act) if assume is None else assume(m)):
                            unmet.append(m.id)
                            continue
                    except Exception as exc:
                        if m.obligations and not m.shadow and broken is None:
                            # Its obligations (approval, confirm, step-up, redaction) must not be
                            # skipped because an argument has an unexpected type: refuse instead.
                            broken = m
                            kinds = ", ".join(sorted({o.kind for o in m.obligations}))
                            notes.append(
                                f"rule {m.id}: condition could not be evaluated ({exc}); the request is"
                                f" refused rather than run without its {kinds}"
                            )
                            continue
                        notes.append(
                            f"rule {m.id}: condition could not be evaluated ({exc}); an allow never matches"
                        )
                        continue
                if m.shadow:
                    if shadow_allow is None and allow is None:
                        shadow_allow = m
                    continue
                if allow is None:
                    allow = m
                obligations.extend(m.obligations)

        if foreign and deny is None and allow is None:
            notes.append(f"tenant isolation: {request.kind or 'server'} belongs to tenant {cands.owner!r}")
        if deny is not None:
            enforced = Decision(False, deny.id, (deny.denied.reasons[0], *notes)) if notes else deny.denied
        elif broken is not None:
            enforced = Decision(False, broken.id, tuple(notes))
        elif allow is not None:
            if notes or len(obligations) != len(allow.obligations):
                reasons = (allow.allowed.reasons[0], *notes)
                enforced = Decision(True, allow.id, reasons, merge_obligations(obligations))
            else:
                enforced = allow.allowed
        elif self.default == "allow" and not foreign:
            enforced = Decision(True, None, (_DEFAULT_ALLOW.reasons[0], *notes)) if notes else _DEFAULT_ALLOW
        elif unmet:
            enforced = Decision(False, None, (unmet_reason(unmet, self.default, foreign), *notes))
        else:
            enforced = Decision(False, None, (_DEFAULT_DENY.reasons[0], *notes)) if notes else _DEFAULT_DENY

        would: _Matcher | None = shadow_deny or (None if deny is not None else shadow_allow)
        if would is not None:
            verb = "deny" if would.deny else "allow"
            enforced = Decision(
                enforced.allowed,
                enforced.rule,
                (*enforced.reasons, f"shadow rule {would.id} would {verb}"),
                enforced.obligations,
                shadow=True,
                would_allow=not would.deny,
            )
        if self.mode == "shadow":
            would_allow = enforced.allowed if not enforced.shadow else enforced.would_allow
            enforced = Decision(
                True,
                enforced.rule,
                (*enforced.reasons, "shadow mode: nothing is enforced"),
                enforced.obligations,
                shadow=True,
                would_allow=would_allow,
            )
        return self._remember(memo_key if act is None else None, enforced)

    def _remember(self, key: tuple[Any, ...] | None, decision: Decision) -> Decision:
        if key is not None and key[0] and self._memo.entries:  # serial 0: a principal too large to cache
            _, server, kind, target, action = key
            size = len(target) if target is not None else 0
            if size <= KEY_MAX and len(server) <= KEY_MAX:  # longer names are never cached
                self._memo.put(key, decision, size + len(server) + len(action) + (len(kind) if kind else 0))
        return decision

    def visible(self, principal: Principal, server: str, kind: str, name: str) -> bool:
        """Whether the item belongs in this principal's list (DESIGN.md: visibility)."""
        if self.mode == "shadow":
            return True
        view = self._view(principal)
        key = (view.serial, server, kind, name)
        cache = self._seen
        seen = cache.young.get(key)
        if seen is None and cache.old:
            seen = cache.promote(key)
        if seen is None:
            seen = self._visible(view, server, kind, name)
            if view.serial and cache.entries:  # serial 0: a principal too large to cache
                cache.put(key, seen, names_weight(server, kind, name))
        return seen

    def _visible(self, view: _PrincipalView, server: str, kind: str, name: str) -> bool:
        try:
            action = USE_ACTION.get(kind)
            if action is None:
                return False
            cands = self._candidates(server, "resource" if kind == "resource_template" else kind, name)
            subject, roles, groups, tenant = view.subject, view.roles, view.groups, view.tenant
            for m in cands.hiding:
                if (m.actions is None or action in m.actions) and m.principal_ok(
                    subject, roles, groups, tenant
                ):
                    return False
            foreign = cands.owner is not None and tenant != cands.owner
            for m in cands.listing:
                if (
                    (not foreign or m.cross_tenant)
                    and (m.actions is None or action in m.actions)
                    and m.principal_ok(subject, roles, groups, tenant)
                ):
                    return True
            return self.default == "allow" and not foreign
        except Exception:
            log.exception("policy visibility check failed")
            return False

    def hiding_rule(self, principal: Principal, server: str, kind: str, name: str) -> str:
        """Why :meth:`visible` hides an item: ``rule X`` (an unconditional deny), tenant isolation
        or the default deny. Only for the audit trail's reasons; it decides nothing."""
        view = self._view(principal)
        action = USE_ACTION.get(kind)
        cands = self._candidates(server, "resource" if kind == "resource_template" else kind, name)
        for m in cands.hiding:
            if (action is None or m.actions is None or action in m.actions) and m.principal_ok(
                view.subject, view.roles, view.groups, view.tenant
            ):
                return f"rule {m.id}"
        if cands.owner is not None and view.tenant != cands.owner:
            return f"tenant isolation ({kind} of tenant {cands.owner!r})"
        return "no rule lists it; default deny" if self.default == "deny" else "default"

    def limits_for(self, principal: Principal, request: AccessRequest) -> tuple[LimitSpec, ...]:
        """The ``[[limits]]`` that count this request, with the same matching as rules."""
        if not self._limit_specs:
            return ()
        server = nfc(request.server)
        target = nfc(request.target) if request.target is not None else None
        key = (server, request.kind, target)
        found = self._limit_cache.get(key)
        if found is None:
            found = self._limit_index.lookup(server, request.kind, target)
            self._limit_cache.put(key, found, names_weight(server, request.kind, target))
        if not found:
            return ()
        view = self._view(principal)
        return tuple(
            self._limit_specs[m.index]
            for m in found
            if (m.actions is None or request.action in m.actions)
            and m.principal_ok(view.subject, view.roles, view.groups, view.tenant)
        )

    def budgets_for(self, principal: Principal, request: AccessRequest) -> tuple[BudgetCharge, ...]:
        """The ``[[budgets]]`` that charge this request and its cost to each (:mod:`.budgets`)."""
        return select_budgets(self.budgets, self._view(principal), request) if self.budgets else ()

    def explain_budgets(self, principal: Principal, request: AccessRequest) -> tuple[BudgetTrace, ...]:
        """Every budget with whether it charges this request and why (``policy explain``)."""
        return budget_traces(self.budgets, self._view(principal), request)

    def explain(self, principal: Principal, request: AccessRequest) -> Explanation:
        """Every rule in file order with why it matched or not, and the decision ``decide`` gives."""
        decision = self.decide(principal, request)
        server = nfc(request.server)
        target = nfc(request.target) if request.target is not None else None
        view = self._view(principal)
        cands = self._candidates(server, request.kind, target)
        foreign = cands.owner is not None and view.tenant != cands.owner
        act = Activation(principal, request, view.roles, self._tz, server, target)
        traces: list[RuleTrace] = []
        labels = self.labeler.labels_of(server, request.kind, target)
        for rule, m in zip(self.rules, self._matchers, strict=True):
            reason = m.why_not(server, request.kind, target, request.action, view, labels)
            matched = False
            if reason is None and foreign and not m.deny and not m.cross_tenant:
                reason = (
                    f"tenant isolation: target belongs to tenant {cands.owner!r} (rule is not cross_tenant)"
                )
            if reason is None:
                if m.condition is None:
                    matched, reason = True, "all selectors match"
                else:
                    try:
                        matched = m.condition(act)
                        reason = f"condition is {'true' if matched else 'false'}"
                    except Exception as exc:
                        matched = m.deny
                        reason = f"condition could not be evaluated ({exc}): " + (
                            "counts as a match for a deny" if m.deny else "never matches an allow"
                        )
            traces.append(RuleTrace(rule.id, rule.effect, matched, reason, m.shadow))
        notes: list[str] = []
        if cands.owner is not None:
            notes.append(f"target belongs to tenant {cands.owner!r}")
        if labels:
            notes.append(f"target labels: {', '.join(sorted(labels))}")
        visible: bool | None = None
        if request.kind is not None and request.target is not None:
            list_kind = request.kind
            visible = self.visible(principal, request.server, list_kind, request.target)
        return Explanation(decision, tuple(traces), visible, tuple(notes))
