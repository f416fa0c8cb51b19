"""The result of ``CompiledPolicy.explain``: a per-rule trace of one request and its rendering.

Kept apart from the decision procedure because it is presentation only (the
``mcp-guard policy explain`` output and its JSON form); nothing here affects
a decision.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..model import Decision, Effect

__all__ = ["Explanation", "RuleTrace"]


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
