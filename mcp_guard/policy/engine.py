"""The compiled policy: an index from server and target to candidate rules, and the decision procedure.

A decision looks up the candidates for ``(server, kind, target)`` (cached
after the first request for that target; only the rules of that server and
the wildcard-server rules are ever scanned), then checks actions, principal
selectors and conditions of those candidates alone. Semantics are the
contract of DESIGN.md section 3: deny overrides allow, default deny, the
reported rule is the first matching rule of the winning effect in file order,
conditions that fail to evaluate never satisfy an allow and always satisfy a
deny, and list visibility ignores conditions of allows but honours
unconditional denies.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any, Generic, Literal, TypeVar

from ..model import AccessRequest, Decision, Effect, LimitSpec, Obligation, Principal
from .conditions import Activation, Condition
from .globs import NameSet, nfc

__all__ = ["USE_ACTION", "CompiledPolicy", "Explanation", "Rule", "RuleTrace"]

log = logging.getLogger(__name__)

#: The action a list item stands for: an item is listed iff the principal may do this with it.
USE_ACTION = {"tool": "call", "prompt": "get", "resource": "read", "resource_template": "read"}
_CACHE_MAX = 65536
_VERSIONS = itertools.count(1)
_SERIALS = itertools.count(1)


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


def _names(values: Sequence[str] | None) -> NameSet | None:
    return None if values is None else NameSet(values)


class _Matcher:
    """The compiled selectors of a rule or limit."""

    __slots__ = (
        "actions",
        "allowed",
        "condition",
        "cross_tenant",
        "denied",
        "deny",
        "groups",
        "id",
        "index",
        "kinds",
        "obligations",
        "roles",
        "servers",
        "shadow",
        "subjects",
        "tenants",
    )

    def __init__(
        self,
        index: int,
        ident: str,
        selectors: Mapping[str, Sequence[str] | None],
        *,
        deny: bool = False,
        shadow: bool = False,
        condition: Condition | None = None,
        obligations: tuple[Obligation, ...] = (),
        cross_tenant: bool = False,
    ) -> None:
        self.index = index
        self.id = ident
        self.subjects = _names(selectors.get("subjects"))
        self.roles = _names(selectors.get("roles"))
        self.groups = _names(selectors.get("groups"))
        self.tenants = _names(selectors.get("tenants"))
        self.servers = _names(selectors.get("servers"))
        self.kinds: dict[str, NameSet] = {}
        for kind, key in (("tool", "tools"), ("prompt", "prompts"), ("resource", "resources")):
            patterns = selectors.get(key)
            if patterns is not None:
                self.kinds[kind] = NameSet(patterns)
        actions = selectors.get("actions")
        self.actions = frozenset(actions) if actions is not None else None
        self.deny = deny
        self.shadow = shadow
        self.condition = condition
        self.obligations = obligations
        self.cross_tenant = cross_tenant
        # the common outcomes, built once: "denied by X" / "allowed by X" with nothing else to say
        self.denied = Decision(False, ident, (f"denied by rule {ident}",))
        self.allowed = Decision(True, ident, (f"allowed by rule {ident}",), merge_obligations(obligations))

    def principal_ok(
        self, subject: str, roles: frozenset[str], groups: frozenset[str], tenant: str | None
    ) -> bool:
        return (
            (self.subjects is None or self.subjects.match(subject))
            and (self.roles is None or self.roles.match_any(roles))
            and (self.groups is None or self.groups.match_any(groups))
            and (self.tenants is None or self.tenants.match(tenant))
        )

    def why_not(
        self, server: str, kind: str | None, target: str | None, action: str, view: _PrincipalView
    ) -> str | None:
        """Why this matcher does not apply (None when it does, conditions aside)."""
        if self.servers is not None and not self.servers.match(server):
            return f"server {server!r} not in servers {list(self.servers.patterns)}"
        if self.kinds:
            if kind is None or kind not in self.kinds:
                named = "/".join(k + "s" for k in self.kinds)
                return f"names only {named}, request targets {kind or 'nothing'}"
            if not self.kinds[kind].match(target):
                return f"{kind} {target!r} not in {kind}s {list(self.kinds[kind].patterns)}"
        if self.actions is not None and action not in self.actions:
            return f"action {action!r} not in actions {sorted(self.actions)}"
        if self.subjects is not None and not self.subjects.match(view.subject):
            return f"subject {view.subject!r} not in subjects {list(self.subjects.patterns)}"
        if self.roles is not None and not self.roles.match_any(view.roles):
            return f"roles {sorted(view.roles)} (with inherited) not in roles {list(self.roles.patterns)}"
        if self.groups is not None and not self.groups.match_any(view.groups):
            return f"groups {sorted(view.groups)} not in groups {list(self.groups.patterns)}"
        if self.tenants is not None and not self.tenants.match(view.tenant):
            return f"tenant {view.tenant!r} not in tenants {list(self.tenants.patterns)}"
        return None


M = TypeVar("M", bound=_Matcher)


class _Bucket(Generic[M]):
    __slots__ = ("anykind", "exact", "globbed")

    def __init__(self) -> None:
        self.exact: dict[str, dict[str, list[M]]] = {}
        self.globbed: dict[str, list[M]] = {}
        self.anykind: list[M] = []

    def add(self, item: M) -> None:
        if not item.kinds:
            self.anykind.append(item)
            return
        for kind, names in item.kinds.items():
            by_name = self.exact.setdefault(kind, {})
            for name in names.exact:
                by_name.setdefault(name, []).append(item)
            if names.has_globs:
                self.globbed.setdefault(kind, []).append(item)

    def collect(self, kind: str | None, target: str | None) -> list[M]:
        out = list(self.anykind)
        if kind is not None and target is not None:
            out.extend(self.exact.get(kind, {}).get(target, ()))
            for item in self.globbed.get(kind, ()):
                if item.kinds[kind].match(target):
                    out.append(item)
        return out


class _Index(Generic[M]):
    """server -> kind -> target -> matchers; servers named literally get their own bucket."""

    def __init__(self, items: Iterable[M]) -> None:
        self._by_server: dict[str, _Bucket[M]] = {}
        self._wild: _Bucket[M] = _Bucket()
        for item in items:
            if item.servers is None or item.servers.has_globs:
                self._wild.add(item)
            else:
                for server in item.servers.exact:
                    self._by_server.setdefault(server, _Bucket()).add(item)

    def lookup(self, server: str, kind: str | None, target: str | None) -> tuple[M, ...]:
        found: dict[int, M] = {}
        bucket = self._by_server.get(server)
        if bucket is not None:
            for item in bucket.collect(kind, target):
                found[item.index] = item
        for item in self._wild.collect(kind, target):
            if item.servers is None or item.servers.match(server):
                found[item.index] = item
        return tuple(found[i] for i in sorted(found))


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


@dataclass(frozen=True, slots=True, eq=False)
class _PrincipalView:
    """What rules can see of a principal; ``serial`` keys the memos of one policy."""

    subject: str
    roles: frozenset[str]
    groups: frozenset[str]
    tenant: str | None
    serial: int = field(default_factory=lambda: next(_SERIALS))


@dataclass(frozen=True, slots=True)
class RuleTrace:
    """One line of an explanation: a rule, and why it matched or not."""

    rule: str
    effect: Effect
    matched: bool
    reason: str
    shadow: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "effect": self.effect,
            "matched": self.matched,
            "reason": self.reason,
            "shadow": self.shadow,
        }


@dataclass(frozen=True, slots=True)
class Explanation:
    """Every rule of the policy considered for one request, with the resulting decision."""

    decision: Decision
    traces: tuple[RuleTrace, ...]
    visible: bool | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, Any]:
        d = self.decision
        return {
            "decision": d.effect,
            "rule": d.rule,
            "reasons": list(d.reasons),
            "shadow": d.shadow,
            "would_allow": d.would_allow,
            "obligations": [{"kind": o.kind, "params": _plain(o.params)} for o in d.obligations],
            "visible": self.visible,
            "notes": list(self.notes),
            "rules": [t.as_dict() for t in self.traces],
        }

    def render(self) -> str:
        d = self.decision
        lines = [f"decision: {d.effect}" + (f" (rule {d.rule})" if d.rule else " (default)")]
        if d.shadow:
            lines.append(f"shadow: not enforced; enforcement would {'allow' if d.would_allow else 'deny'}")
        lines.extend(f"reason: {r}" for r in d.reasons)
        for o in d.obligations:
            lines.append(f"obligation: {o.kind} {_plain(o.params)}")
        if self.visible is not None:
            lines.append(f"listed: {'yes' if self.visible else 'no'}")
        lines.extend(f"note: {n}" for n in self.notes)
        lines.append("rules:")
        for t in self.traces:
            mark = "MATCH" if t.matched else "-    "
            flag = " [shadow]" if t.shadow else ""
            lines.append(f"  {mark} {t.effect:<5} {t.rule}{flag}: {t.reason}")
        return "\n".join(lines)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def merge_obligations(obligations: Iterable[Obligation]) -> tuple[Obligation, ...]:
    """Union of redacted fields, the strictest step-up, other kinds kept as given."""
    fields: list[str] = []
    max_age: float | None = None
    others: list[Obligation] = []
    for o in obligations:
        if o.kind == "redact":
            for f in o.params.get("fields", ()):
                if f not in fields:
                    fields.append(f)
        elif o.kind == "step_up":
            age = float(o.params["max_age"])
            max_age = age if max_age is None else min(max_age, age)
        elif o not in others:
            others.append(o)
    out: list[Obligation] = []
    if fields:
        out.append(Obligation("redact", {"fields": tuple(fields)}))
    if max_age is not None:
        out.append(Obligation("step_up", {"max_age": max_age}))
    return (*out, *others)


_DEFAULT_ALLOW = Decision(True, None, ("no rule matched; default allow",))
_DEFAULT_DENY = Decision(False, None, ("no rule matched; default deny",))


class _TenantTag:
    __slots__ = ("kinds", "servers", "tenant")

    def __init__(self, tenant: str, servers: Sequence[str], kinds: Mapping[str, Sequence[str]]) -> None:
        self.tenant = tenant
        self.servers = NameSet(servers) if servers else None
        self.kinds = {k: NameSet(v) for k, v in kinds.items() if v}


class CompiledPolicy:
    """A loaded, validated policy; implements :class:`~mcp_guard.protocols.PolicyEngine`.

    Immutable after construction and safe to share across threads and tasks:
    the only mutable state is a pair of lookup caches whose entries are
    computed from immutable data (a race costs a recomputation, never a wrong
    answer).
    """

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
    ) -> None:
        self.rules: tuple[Rule, ...] = tuple(rules)
        self.limits: tuple[LimitSpec, ...] = tuple(limits)
        self.default: Literal["allow", "deny"] = default
        self.mode: Literal["enforce", "shadow"] = mode
        self.sources = sources
        #: Unique per compiled policy: caches keyed by it (the guard's list memo) expire on reload.
        self.version: int = next(_VERSIONS)
        self._matchers = tuple(matchers)
        self._index: _Index[_Matcher] = _Index(matchers)
        self._limit_specs = {m.index: spec for m, spec in zip(limit_matchers, limits, strict=True)}
        self._limit_index: _Index[_Matcher] = _Index(limit_matchers)
        self._ancestors = dict(role_ancestors or {})
        self._members = dict(role_members or {})
        self._tenant_tags = tuple(tenant_tags)
        self._tz = tz
        self._cands: dict[tuple[str, str | None, str | None], _Candidates] = {}
        self._limit_cache: dict[tuple[str, str | None, str | None], tuple[_Matcher, ...]] = {}
        self._views: dict[tuple[Any, ...], _PrincipalView] = {}
        #: Decisions that evaluated no condition depend only on the principal's view, the target and
        #: the action, so they are memoised (bounded). ``memo_size = 0`` turns this off.
        self.memo_size = _CACHE_MAX
        self._memo: dict[tuple[Any, ...], Decision] = {}
        self._seen: dict[tuple[Any, ...], bool] = {}

    def __repr__(self) -> str:
        return f"<CompiledPolicy {len(self.rules)} rules, {len(self.limits)} limits, mode={self.mode}>"

    # --- shared lookups ---------------------------------------------------------------------------

    def _candidates(self, raw_server: str, kind: str | None, raw_target: str | None) -> _Candidates:
        """Candidates for the names as given (cached under them; normalised only on a miss)."""
        key = (raw_server, kind, raw_target)
        hit = self._cands.get(key)
        if hit is not None:
            return hit
        server = nfc(raw_server)
        target = nfc(raw_target) if raw_target is not None else None
        found = self._index.lookup(server, kind, target)
        cands = _Candidates(
            tuple(m for m in found if m.deny),
            tuple(m for m in found if not m.deny),
            self._owner(server, kind, target),
            server,
            target,
            tuple(m for m in found if m.deny and m.condition is None and not m.shadow),
            tuple(m for m in found if not m.deny and not m.shadow),
        )
        if len(self._cands) >= _CACHE_MAX:
            self._cands.clear()
        self._cands[key] = cands
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
        hit = self._views.get(key)
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
        view = _PrincipalView(subject, frozenset(roles), groups, p.tenant)
        if len(self._views) >= _CACHE_MAX:
            self._views.clear()
        self._views[key] = view
        return view

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

    def _decide(self, principal: Principal, request: AccessRequest) -> Decision:
        view = self._view(principal)
        action = request.action
        memo_key = (view.serial, request.server, request.kind, request.target, action)
        memo = self._memo.get(memo_key)
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
                    if not m.condition(act):
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
                        if not m.condition(act):
                            continue
                    except Exception as exc:
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
        elif allow is not None:
            if notes or len(obligations) != len(allow.obligations):
                reasons = (allow.allowed.reasons[0], *notes)
                enforced = Decision(True, allow.id, reasons, merge_obligations(obligations))
            else:
                enforced = allow.allowed
        elif self.default == "allow" and not foreign:
            enforced = Decision(True, None, (_DEFAULT_ALLOW.reasons[0], *notes)) if notes else _DEFAULT_ALLOW
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
        if key is not None and self.memo_size:
            if len(self._memo) >= self.memo_size:
                self._memo.clear()
            self._memo[key] = decision
        return decision

    def visible(self, principal: Principal, server: str, kind: str, name: str) -> bool:
        """Whether the item belongs in this principal's list (DESIGN.md: visibility)."""
        if self.mode == "shadow":
            return True
        view = self._view(principal)
        key = (view.serial, server, kind, name)
        seen = self._seen.get(key)
        if seen is None:
            seen = self._visible(view, server, kind, name)
            if self.memo_size:
                if len(self._seen) >= self.memo_size:
                    self._seen.clear()
                self._seen[key] = seen
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
            if len(self._limit_cache) >= _CACHE_MAX:
                self._limit_cache.clear()
            self._limit_cache[key] = found
        if not found:
            return ()
        view = self._view(principal)
        return tuple(
            self._limit_specs[m.index]
            for m in found
            if (m.actions is None or request.action in m.actions)
            and m.principal_ok(view.subject, view.roles, view.groups, view.tenant)
        )

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
        for rule, m in zip(self.rules, self._matchers, strict=True):
            reason = m.why_not(server, request.kind, target, request.action, view)
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
        visible: bool | None = None
        if request.kind is not None and request.target is not None:
            list_kind = request.kind
            visible = self.visible(principal, request.server, list_kind, request.target)
        return Explanation(decision, tuple(traces), visible, tuple(notes))
