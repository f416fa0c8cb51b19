"""Rule coverage: which rules decided requests in an audit trail, and which never did.

A rule that never decides anything is either dead weight or a sign the
traffic is not what its author thought; denials by the default show what
callers try that no rule speaks about. This module only counts: the caller
reads the records (``mcp-guard policy coverage`` uses the audit query API),
so the policy package stays free of audit-store code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from .engine import CompiledPolicy
from .reasons import is_default_denial

__all__ = ["coverage"]

#: How a decision names a shadow rule that would have decided; a refusal joins reasons with "; ".
_SHADOW = re.compile(r"shadow rule (\S+) would (?:allow|deny)")


def _iso(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def coverage(policy: CompiledPolicy, records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Per rule of ``policy`` (file order): decisions it made, by effect, shadow hits, last hit.

    ``never_hit`` lists the ids of rules that neither decided nor (as shadow
    rules) would have decided any record; ``default_denials`` counts requests
    the default denied; ``unknown_rules`` counts decisions by rule ids the
    policy no longer has (the trail is older than the policy).
    """
    stats: dict[str, dict[str, Any]] = {
        r.id: {
            "id": r.id,
            "effect": r.effect,
            "source": r.source,
            "line": r.line,
            "decisions": 0,
            "allow": 0,
            "deny": 0,
            "shadow_hits": 0,
            "last_hit": None,
        }
        for r in policy.rules
    }
    last: dict[str, float] = {}
    unknown: dict[str, int] = {}
    default_denials = 0
    events = 0

    def hit(rule_id: str, t: Any) -> None:
        if isinstance(t, (int, float)) and t > last.get(rule_id, float("-inf")):
            last[rule_id] = float(t)

    for record in records:
        events += 1
        rule, decision, t = record.get("rule"), record.get("decision"), record.get("time")
        reasons = [r for r in record.get("reasons") or () if isinstance(r, str)]
        if isinstance(rule, str):
            entry = stats.get(rule)
            if entry is None:
                unknown[rule] = unknown.get(rule, 0) + 1
            else:
                entry["decisions"] += 1
                if decision in ("allow", "deny"):
                    entry[decision] += 1
                hit(rule, t)
        elif decision == "deny" and is_default_denial(reasons):
            default_denials += 1
        for shadow in {m.group(1) for r in reasons for m in _SHADOW.finditer(r)}:
            if shadow in stats:
                stats[shadow]["shadow_hits"] += 1
                hit(shadow, t)
    for rule_id, t in last.items():
        stats[rule_id]["last_hit"] = _iso(t)
    rules = list(stats.values())
    return {
        "events": events,
        "rules": rules,
        "never_hit": [r["id"] for r in rules if not r["decisions"] and not r["shadow_hits"]],
        "default_denials": default_denials,
        "unknown_rules": dict(sorted(unknown.items())),
    }
