"""The budgets section of ``mcp-guard policy explain``: which budgets charge a request, and their state.

Without ``--state`` it says which ``[[budgets]]`` would charge the request
and what the call would cost; with a state store URL it also reads how much
of each is used in the current period (nothing is charged).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..model import AccessRequest, BudgetCharge, Principal


def budget_report(
    policy: Any, principal: Principal, request: AccessRequest, state: str | None
) -> list[dict[str, Any]]:
    """One entry per budget of ``policy``: applies or not and why, cost, and usage when ``state`` is given."""
    explain = getattr(policy, "explain_budgets", None)
    if explain is None:
        return []
    traces = explain(principal, request)
    report = [t.as_dict() for t in traces]
    applying = [(entry, BudgetCharge(t.budget, t.cost)) for entry, t in zip(report, traces) if t.applies]  # noqa: B905
    if state is None or not applying:
        return report
    import anyio

    from ..budgets import Budgets
    from ..store import open_store

    async def read() -> None:
        store = open_store(state, base_dir=Path.cwd(), field="--state")
        try:
            usage = await Budgets(store).usage(principal, [charge for _, charge in applying])
        finally:
            await store.aclose()
        for (entry, _), u in zip(applying, usage):  # noqa: B905 - one usage per charge
            entry.update(u.as_dict())

    anyio.run(read)
    return report


def render_budgets(report: list[dict[str, Any]]) -> str:
    lines = ["budgets:"]
    for b in report:
        mark = "CHARGE" if b["applies"] else "-     "
        line = f"  {mark} {b['budget']}: cost {b['cost']} of {b['limit']} per {b['period']}s per {b['per']}"
        if "used" in b:
            line += f"; {b['owner']!s} used {b['used']}/{b['limit']}, resets {b['resets_at']}"
        lines.append(f"{line} ({b['reason']})")
    return "\n".join(lines)
