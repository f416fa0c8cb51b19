"""Compiled ``[[labels]]`` and ``[[flows]]``: which labels a target carries, which flows it takes part in.

Labels are computed from the server and the target's name alone (the same
glob matching as rules), so they are the same on every path - the in-process
server, the portal, ``policy check`` and impact analysis - and are cached per
target. What a flow remembers (the earlier call) lives in the state store and
is handled by :mod:`mcp_guard.flowstate`; this module only says, for one
target, which flows could refuse it and which it arms.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from ..model import Obligation
from .conditions import Activation, Condition
from .globs import NameSet
from .ruleindex import BoundedCache, names_weight

#: Entries and key characters each cache keeps (as the engine's caches).
_ENTRIES = 16384
_CHARS = 1 << 20

__all__ = ["FlowPlan", "FlowSpec", "LabelTag", "Labeler", "annotation_condition"]

Scope = Literal["session", "subject", "tenant"]
FlowEffect = Literal["deny", "confirm", "approval"]


class LabelTag:
    """One ``[[labels]]`` entry: its selectors compiled, and the labels it gives."""

    __slots__ = ("kinds", "labels", "servers")

    def __init__(
        self, labels: Sequence[str], servers: Sequence[str] | None, kinds: Mapping[str, Sequence[str] | None]
    ) -> None:
        self.labels = frozenset(labels)
        self.servers = NameSet(servers) if servers is not None else None
        self.kinds = {k: NameSet(v) for k, v in kinds.items() if v is not None}

    def matches(self, server: str, kind: str | None, target: str | None) -> bool:
        if self.servers is not None and not self.servers.match(server):
            return False
        if not self.kinds:
            return True  # servers only: every target of those servers
        return kind is not None and kind in self.kinds and self.kinds[kind].match(target)


@dataclass(frozen=True, slots=True)
class FlowSpec:
    """A ``[[flows]]`` entry as the guard applies it."""

    id: str
    after: frozenset[str]
    deny: frozenset[str]
    scope: Scope
    window: float
    effect: FlowEffect = "deny"
    #: What a triggered ``confirm`` / ``approval`` flow adds to the call's decision.
    obligation: Obligation | None = None
    source: str = "<string>"
    line: int | None = None


@dataclass(frozen=True, slots=True)
class FlowPlan:
    """For one target: its labels, the flows that may refuse it, and the flows an allowed call arms."""

    labels: frozenset[str]
    checks: tuple[FlowSpec, ...]
    arms: tuple[FlowSpec, ...]

    def __bool__(self) -> bool:
        return bool(self.checks or self.arms)


_EMPTY_PLAN = FlowPlan(frozenset(), (), ())


class Labeler:
    """Labels and flow plans per (server, kind, target), cached (bounded like the engine's caches)."""

    def __init__(self, tags: Sequence[LabelTag], flows: Sequence[FlowSpec]) -> None:
        self.tags = tuple(tags)
        self.flows = tuple(flows)
        self._labels: BoundedCache[tuple[str, str | None, str | None], frozenset[str]] = BoundedCache(
            _ENTRIES, _CHARS
        )
        self._plans: BoundedCache[tuple[str, str | None, str | None], FlowPlan] = BoundedCache(
            _ENTRIES, _CHARS
        )

    def labels_of(self, server: str, kind: str | None, target: str | None) -> frozenset[str]:
        """Every label the ``[[labels]]`` entries give this target (names NFC-normalised by the caller)."""
        if not self.tags:
            return frozenset()
        key = (server, kind, target)
        found = self._labels.get(key)
        if found is None:
            out: set[str] = set()
            for tag in self.tags:
                if tag.matches(server, kind, target):
                    out |= tag.labels
            found = frozenset(out)
            self._labels.put(key, found, names_weight(server, kind, target))
        return found

    def plan(self, server: str, kind: str | None, target: str | None) -> FlowPlan:
        """The flows this target takes part in (empty when the policy has none)."""
        if not self.flows:
            return _EMPTY_PLAN
        key = (server, kind, target)
        found = self._plans.get(key)
        if found is None:
            labels = self.labels_of(server, kind, target)
            checks = tuple(f for f in self.flows if not f.deny.isdisjoint(labels))
            arms = tuple(f for f in self.flows if not f.after.isdisjoint(labels))
            found = FlowPlan(labels, checks, arms)
            self._plans.put(key, found, names_weight(server, kind, target))
        return found


def annotation_condition(required: Mapping[str, object], when: Condition | None) -> Condition:
    """A rule's ``annotations = {...}`` as a condition, ahead of its ``when`` (both must hold).

    Annotations are what the server declares about a tool, so they are read at
    use time like ``when`` (lists ignore them, as they ignore an allow's
    ``when``). A value matches only with its own JSON type (``true`` is not
    ``1``); an annotation the target does not declare does not match.
    """
    items = tuple(required.items())
    shown = ", ".join(f"{k} = {_toml(v)}" for k, v in items)
    source = f"annotations = {{ {shown} }}" + (f" && ({when.source})" if when is not None else "")

    def fn(act: Activation) -> bool:
        have = act.r.annotations
        for key, value in items:
            got = have.get(key, _MISSING)
            if type(got) is not type(value) or got != value:
                return False
        return True if when is None else when(act)

    return Condition(source, fn)


_MISSING = object()


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if not isinstance(value, str) else '"' + value.replace('"', '\\"') + '"'
