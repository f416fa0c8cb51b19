"""Impact analysis: who may use an item, and what a policy change grants or revokes.

Nothing here knows the policy semantics. Each answer is the real engine's
decision (:meth:`~.engine.CompiledPolicy.decide_assuming`) for a synthetic
principal per role (the role alone: no groups, no tenant, no MFA, an empty
subject) and the item's use action (``call`` a tool, ``get`` a prompt,
``read`` a resource). A ``when`` condition cannot be evaluated without a real
request, so the engine is asked once per combination of answers to the
conditions it actually reaches (identical condition texts share one answer):
access is *conditional* when some combination allows and another denies.

Reviewers read these answers as "what this policy file does", so the result
is what the engine enforces: a policy in shadow mode enforces nothing and
allows everything; a rule with ``shadow = true`` decides nothing. The
obligations an allow carries (``approval``, ``confirm``, ``step_up``,
``redact``) are part of the access: a policy change that adds or removes one
is a change.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

from ..errors import PolicyError
from ..model import AccessRequest, Obligation, Principal, TargetKind
from .engine import USE_ACTION, CompiledPolicy, Rule

__all__ = [
    "KINDS",
    "MAX_COMBINATIONS",
    "Access",
    "Change",
    "Item",
    "access",
    "describe_obligations",
    "diff",
    "parse_inventory",
    "render_diff_markdown",
    "role_principal",
    "who_can",
]

#: Item kinds of an inventory, in the order results sort them.
KINDS = ("tool", "prompt", "resource")
_PLURAL = {"tools": "tool", "prompts": "prompt", "resources": "resource"}
_METHOD = {"tool": "tools/call", "prompt": "prompts/get", "resource": "resources/read"}
#: Condition combinations tried for one (role, item) before the analysis gives up (an error, not a guess).
MAX_COMBINATIONS = 4096

ChangeKind = Literal[
    "granted",
    "revoked",
    "now-conditional",
    "now-unconditional",
    "obligation-removed",
    "obligation-added",
    "obligation-changed",
]
_CHANGE_ORDER: tuple[ChangeKind, ...] = get_args(ChangeKind)


@dataclass(frozen=True, slots=True, order=True)
class Item:
    """One tool, prompt or resource (URI) of one server."""

    server: str
    kind: str
    name: str


@dataclass(frozen=True, slots=True)
class Access:
    """What one role may do with one item: ``rule`` is the allowing rule (or, when denied, the
    denying one; ``None`` for the default), ``conditional`` whether a condition decides it,
    ``obligations`` what the allows ask of the call (:func:`describe_obligations`, sorted)."""

    allowed: bool
    rule: str | None
    conditional: bool = False
    obligations: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Change:
    """One role's access to one item that differs between two policies.

    ``conditional`` says whether the access granted (or, for ``revoked``, the
    access taken away) hung on a condition; the JSON contract leaves it out.
    ``removed`` / ``added``: obligations the access kept loses or gains.
    """

    role: str
    item: Item
    change: ChangeKind
    old_rule: str | None
    new_rule: str | None
    conditional: bool = False
    removed: tuple[str, ...] = ()
    added: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "role": self.role,
            "server": self.item.server,
            "kind": self.item.kind,
            "name": self.item.name,
            "change": self.change,
            "old_rule": self.old_rule,
            "new_rule": self.new_rule,
        }
        if self.removed:
            out["obligations_removed"] = list(self.removed)
        if self.added:
            out["obligations_added"] = list(self.added)
        return out

    @property
    def obligation_note(self) -> str:
        """``loses approval by admin; gains confirm`` (empty when no obligation changed)."""
        parts = [f"loses {o}" for o in self.removed] + [f"gains {o}" for o in self.added]
        return "; ".join(parts)


def describe_obligations(obligations: Iterable[Obligation]) -> set[str]:
    """Obligations as comparable phrases: what a reviewer must notice when one goes or comes.

    ``approval by lead and security`` (who must approve), ``confirm``, ``step_up 600s``,
    one ``redact FIELD`` per field; another kind by its name. An approval's timeouts and
    a question's wording are not access and are left out.
    """
    out: set[str] = set()
    for o in obligations:
        if o.kind == "approval":
            groups = o.params.get("all_of") or (tuple(o.params.get("approvers", ())),)
            out.add("approval by " + " and ".join("/".join(g) for g in groups))
        elif o.kind == "step_up":
            out.add(f"step_up {float(o.params.get('max_age', 0)):.0f}s")
        elif o.kind == "redact":
            out.update(f"redact {f}" for f in o.params.get("fields", ()))
        else:
            out.add(o.kind)
    return out


def role_principal(role: str) -> Principal:
    """The principal an analysis asks about: holding ``role`` and nothing else."""
    return Principal(subject="", roles=frozenset((role,)))


def _request(item: Item) -> AccessRequest:
    kind = cast(TargetKind, item.kind)  # Item.kind is one of KINDS: parse_inventory and the CLI see to it
    return AccessRequest(_METHOD[item.kind], USE_ACTION[item.kind], item.server, kind, item.name)


def access(policy: CompiledPolicy, principal: Principal, item: Item) -> Access:
    """The engine's answer for ``principal`` using ``item``, over every outcome of the conditions.

    Exploration: run with every newly reached condition answering true, then
    for each of those conditions in turn, again with it false (the earlier
    ones true). Each run is one distinct path through the conditions, so the
    runs are exactly the leaves of the decision tree. Every run is explored, so
    the obligations of every allowing run count; past :data:`MAX_COMBINATIONS`
    runs an answer already conditional is kept (with the obligations seen so
    far), any other is refused.
    """
    request = _request(item)
    pending: list[dict[str, bool]] = [{}]
    allowed_by: Access | None = None
    denied_by: Access | None = None
    step_up = False
    obligations: set[str] = set()
    floor: tuple[str | None] | None = None
    runs = 0
    while pending:
        fixed = pending.pop()
        reached: list[str] = []

        def answer(rule: Rule, fixed: dict[str, bool] = fixed, reached: list[str] = reached) -> bool:
            key = rule.when or ""
            if key in fixed:
                return fixed[key]
            if key not in reached:
                reached.append(key)
            return True

        decision = policy.decide_assuming(principal, request, answer)
        runs += 1
        if not reached and not any(fixed.values()):
            floor = (decision.rule,)  # the run where no condition holds: what grants regardless
        if decision.allowed:
            allowed_by = allowed_by or Access(True, decision.rule)
            # step-up: the guard refuses the call unless the principal's MFA is recent enough
            step_up = step_up or any(ob.kind == "step_up" for ob in decision.obligations)
            obligations |= describe_obligations(decision.obligations)
        else:
            denied_by = denied_by or Access(False, decision.rule)
        if allowed_by is not None and denied_by is not None and runs >= MAX_COMBINATIONS:
            break  # conditional either way: only the obligations of unexplored runs stay unknown
        if runs >= MAX_COMBINATIONS and pending + reached:
            # Refuse rather than guess: an untried combination could allow (or deny) after all.
            raise PolicyError(
                f"{item.kind} {item.name!r} on server {item.server!r} for roles {sorted(principal.roles)}:"
                f" more than {MAX_COMBINATIONS} combinations of when conditions to try; split the rules"
                " that apply to it"
            )
        branch = dict(fixed)
        later: list[dict[str, bool]] = []
        for key in reached:
            later.append({**branch, key: False})
            branch[key] = True
        pending.extend(reversed(later))
    if allowed_by is not None and denied_by is not None:
        return Access(True, allowed_by.rule, True, tuple(sorted(obligations)))
    if allowed_by is not None:
        # Allowed on every path: name the rule that allows with no condition holding (an
        # unconditional grant), not one whose condition happens to be reached first.
        rule = floor[0] if floor is not None else allowed_by.rule
        return Access(True, rule, step_up, tuple(sorted(obligations)))
    assert denied_by is not None
    return denied_by


def _access_by_class(
    policy: CompiledPolicy, principal: Principal, item: Item, known: dict[Hashable, Access]
) -> Access:
    """:func:`access`, asked once per target class (targets the rules cannot tell apart)."""
    key = (item.kind, policy.target_class(item.server, item.kind, item.name))
    found = known.get(key)
    if found is None:
        found = known[key] = access(policy, principal, item)
    return found


def who_can(policy: CompiledPolicy, item: Item, roles: Sequence[str] | None = None) -> dict[str, Any]:
    """``{"allowed": [{role, rule, conditional}], "denied_by": [{role, rule}]}`` over the policy's roles.

    An allowed entry has ``obligations`` when its allows carry any; the result has ``flows``
    (``{flow, effect, role}``, role ``refuses`` or ``arms``) when ``[[flows]]`` involve the item.
    """
    allowed: list[dict[str, Any]] = []
    denied: list[dict[str, Any]] = []
    for role in policy.role_names() if roles is None else roles:
        got = access(policy, role_principal(role), item)
        if got.allowed:
            entry: dict[str, Any] = {"role": role, "rule": got.rule, "conditional": got.conditional}
            if got.obligations:
                entry["obligations"] = list(got.obligations)
            allowed.append(entry)
        else:
            denied.append({"role": role, "rule": got.rule})
    result: dict[str, Any] = {"allowed": allowed, "denied_by": denied}
    plan = policy.flow_plan(_request(item))
    flows = [{"flow": f.id, "effect": f.effect, "role": "refuses"} for f in plan.checks]
    flows += [{"flow": f.id, "effect": f.effect, "role": "arms"} for f in plan.arms]
    if flows:
        result["flows"] = flows
    return result


def _change(old: Access, new: Access) -> ChangeKind | None:
    if old.allowed != new.allowed:
        return "granted" if new.allowed else "revoked"
    if not new.allowed:
        return None
    if old.conditional != new.conditional:
        return "now-conditional" if new.conditional else "now-unconditional"
    removed, added = set(old.obligations) - set(new.obligations), set(new.obligations) - set(old.obligations)
    if removed and added:
        return "obligation-changed"
    return "obligation-removed" if removed else ("obligation-added" if added else None)


def diff(old: CompiledPolicy, new: CompiledPolicy, items: Iterable[Item]) -> list[Change]:
    """Every (role, item) whose access differs, sorted by role, server, kind, name.

    Roles are those either policy names. ``granted`` and ``revoked`` count
    conditional access as access; ``now-conditional`` / ``now-unconditional``
    mark access kept whose dependence on a condition changed; ``obligation-removed``
    / ``-added`` / ``-changed`` access kept whose obligations changed (every change
    of access kept also lists the obligations it loses and gains). A change of the
    deciding rule alone is not a change of access.
    """
    inventory = sorted(set(items), key=lambda i: (i.server, KINDS.index(i.kind), i.name))
    changes: list[Change] = []
    for role in sorted(set(old.role_names()) | set(new.role_names())):
        principal = role_principal(role)
        old_by_class: dict[Hashable, Access] = {}
        new_by_class: dict[Hashable, Access] = {}
        for item in inventory:
            before = _access_by_class(old, principal, item, old_by_class)
            after = _access_by_class(new, principal, item, new_by_class)
            kind = _change(before, after)
            if kind is not None:
                cond = before.conditional if kind == "revoked" else after.conditional
                removed: tuple[str, ...] = ()
                added: tuple[str, ...] = ()
                if before.allowed and after.allowed:
                    removed = tuple(o for o in before.obligations if o not in after.obligations)
                    added = tuple(o for o in after.obligations if o not in before.obligations)
                changes.append(Change(role, item, kind, before.rule, after.rule, cond, removed, added))
    return changes


def _field(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse_inventory(text: str, source: str = "<inventory>") -> list[Item]:
    """Items of ``{"servers": {NAME: {"tools": [...], "prompts": [...], "resources": [...]}}}``.

    An entry is a name (a URI for resources) or an object as a ``*/list``
    result holds it (``name``; ``uri`` or ``uriTemplate`` for resources), so a
    saved list result can be pasted in as it is.
    """
    try:
        data = json.loads(text)
    except ValueError as exc:
        line = getattr(exc, "lineno", None)
        raise PolicyError(f"not valid JSON: {getattr(exc, 'msg', exc)}", file=source, line=line) from None
    if not isinstance(data, dict) or set(data) != {"servers"} or not isinstance(data["servers"], dict):
        extra = sorted(set(data) - {"servers"}) if isinstance(data, dict) else []
        hint = f" (unknown key {extra[0]!r})" if extra else ""
        raise PolicyError(
            'expected an object {"servers": {"NAME": {"tools": [...], "prompts": [...],'
            f' "resources": [...]}}}}{hint}',
            file=source,
        )
    items: list[Item] = []
    for server, lists in data["servers"].items():
        if not isinstance(lists, dict):
            raise PolicyError(
                "expected an object of tools/prompts/resources", file=source, field=f"servers.{server}"
            )
        for key, entries in lists.items():
            loc: list[str | int] = ["servers", server, key]
            if key not in _PLURAL:
                from difflib import get_close_matches

                near = get_close_matches(key, list(_PLURAL), 1)
                hint = f" (did you mean {near[0]!r}?)" if near else " (use tools, prompts, resources)"
                raise PolicyError(f"unknown key {key!r}{hint}", file=source, field=_field(loc))
            if not isinstance(entries, list):
                raise PolicyError("expected a list", file=source, field=_field(loc))
            kind = _PLURAL[key]
            for i, entry in enumerate(entries):
                items.append(Item(server, kind, _entry_name(entry, kind, source, [*loc, i])))
    return items


def _entry_name(entry: Any, kind: str, source: str, loc: Sequence[str | int]) -> str:
    name: Any = entry
    if isinstance(entry, Mapping):
        keys = ("uri", "uriTemplate") if kind == "resource" else ("name",)
        name = next((entry[k] for k in keys if k in entry), None)
        if name is None:
            raise PolicyError(
                f"an object entry needs {' or '.join(map(repr, keys))}", file=source, field=_field(loc)
            )
    if not isinstance(name, str) or not name:
        raise PolicyError("expected a non-empty name", file=source, field=_field(loc))
    return name


def render_diff_markdown(changes: Sequence[Change], title: str = "Policy impact") -> str:
    """A Markdown summary for a pull request: counts per change, then one table row per change."""
    lines = [f"### {title}", ""]
    if not changes:
        lines.append("No role gains or loses access to any inventory item.")
        return "\n".join(lines) + "\n"
    counts = {kind: sum(1 for c in changes if c.change == kind) for kind in _CHANGE_ORDER}
    lines.append(", ".join(f"**{n}** {kind}" for kind, n in counts.items() if n))
    lines += [
        "",
        "| role | server | kind | name | change | old rule | new rule |",
        "|---|---|---|---|---|---|---|",
    ]

    def cell(value: str | None) -> str:
        if value is None:
            return "(default)"
        return "`" + " ".join(value.split()).replace("|", "\\|").replace("`", "'") + "`"

    for c in changes:
        change = (
            f"{c.change} (conditional)" if c.conditional and c.change in ("granted", "revoked") else c.change
        )
        if c.obligation_note:
            change += f": {c.obligation_note}"
        row = (cell(c.role), cell(c.item.server), c.item.kind, cell(c.item.name), change)
        lines.append("| " + " | ".join((*row, cell(c.old_rule), cell(c.new_rule))) + " |")
    return "\n".join(lines) + "\n"
