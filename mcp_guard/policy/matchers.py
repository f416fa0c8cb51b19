"""Compiled rule selectors, and what those selectors can see of a principal and a target.

A :class:`_Matcher` is the load-time form of a rule's (or a limit's)
selectors: name sets built once, with its ready-made allow/deny decisions.
It lives apart from :mod:`.engine` so the loader, the target index and the
decision procedure can all share it without depending on one another.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..model import Decision, Obligation
from .conditions import Condition
from .globs import NameSet
from .obligations import merge_obligations

_SERIALS = itertools.count(1)


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
        "labels",
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
        labels = selectors.get("labels")
        #: ``labels = [...]``: only targets carrying one of these ``[[labels]]`` (None: any target).
        self.labels = frozenset(labels) if labels is not None else None
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
        self,
        server: str,
        kind: str | None,
        target: str | None,
        action: str,
        view: _PrincipalView,
        labels: frozenset[str] = frozenset(),
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
        if self.labels is not None and self.labels.isdisjoint(labels):
            return f"target labels {sorted(labels)} not in labels {sorted(self.labels)}"
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


@dataclass(frozen=True, slots=True, eq=False)
class _PrincipalView:
    """What rules can see of a principal; ``serial`` keys the memos of one policy."""

    subject: str
    roles: frozenset[str]
    groups: frozenset[str]
    tenant: str | None
    serial: int = field(default_factory=lambda: next(_SERIALS))


class _TenantTag:
    __slots__ = ("kinds", "servers", "tenant")

    def __init__(self, tenant: str, servers: Sequence[str], kinds: Mapping[str, Sequence[str]]) -> None:
        self.tenant = tenant
        self.servers = NameSet(servers) if servers else None
        self.kinds = {k: NameSet(v) for k, v in kinds.items() if v}
