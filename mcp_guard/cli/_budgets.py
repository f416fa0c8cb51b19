"""The budgets section of ``mcp-guard policy explain``: which budgets charge a request, and their state.

Without ``--state`` it says which ``[[budgets]]`` would charge the request
and what the call would cost; with a state store URL it also reads how much
of each is used in the current period (nothing is charged), and whether this
call would still fit. It only reads: a SQLite store that is not there is an
error rather than a new, empty store whose "0 used" would look like an answer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..model import AccessRequest, BudgetCharge, Principal


def require_existing_store(state: str) -> None:
    """Refuse a ``sqlite:///`` URL whose file does not exist, before anything opens (and so creates) it.

    A relative path is read from the current directory, not from a config
    file's, which is the usual way to point at the wrong (empty) place.
    """
    scheme, sep, rest = state.partition("://")
    if not sep or scheme.lower() != "sqlite" or not rest.startswith("/"):
        return  # other schemes, and malformed URLs, which open_store reports
    raw = rest[1:].partition("?")[0]
    if not raw:
        return
    path = Path(raw).expanduser()
    if not path.is_absolute():
        path = Path.cwd() / path
    if not path.is_file():
        raise ConfigError(
            f"no state store at {path}: nothing is created here, the store is only read; a relative path "
            "is read from the current directory, while the guard reads [guard] state relative to its "
            "config file",
            field="--state",
        )


def budget_report(
    policy: Any, principal: Principal, request: AccessRequest, state: str | None
) -> list[dict[str, Any]]:
    """One entry per budget of ``policy``: applies or not and why, cost, and usage when ``state`` is given."""
    if state is not None:
        require_existing_store(state)
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
            entry["fits"] = u.used + u.cost <= u.budget.limit  # the guard's own test before it charges

    anyio.run(read)
    return report


def render_budgets(report: list[dict[str, Any]]) -> str:
    lines = ["budgets:"]
    for b in report:
        mark = "CHARGE" if b["applies"] else "-     "
        line = f"  {mark} {b['budget']}: cost {b['cost']} of {b['limit']} per {b['period']}s per {b['per']}"
        if "used" in b:
            line += f"; {b['owner']!s} used {b['used']}/{b['limit']}, resets {b['resets_at']}"
            if not b.get("fits", True):
                line += f"; this call (cost {b['cost']}) would be refused: only {b['remaining']} left"
        lines.append(f"{line} ({b['reason']})")
    return "\n".join(lines)
