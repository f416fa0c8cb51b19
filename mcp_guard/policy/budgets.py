"""The ``[[budgets]]`` of a policy: which budgets a request is charged to, and how much.

A budget selects requests exactly as a rule or a limit does (principal
selectors, servers, target globs, actions; no ``when``), so an author reads
the three the same way. Its ``cost`` table maps target globs to units: the
first glob that matches the target's name, in the order written, prices the
call; a target no glob matches costs 1. Counting lives in
:mod:`mcp_guard.budgets`; nothing here touches state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..model import AccessRequest, BudgetCharge, BudgetSpec
from .globs import NameSet, nfc
from .matchers import _Matcher, _PrincipalView

__all__ = ["DEFAULT_COST", "BudgetTrace", "CompiledBudget", "budget_traces", "select_budgets"]

#: What a call costs when no glob of the budget's ``cost`` table names its target.
DEFAULT_COST = 1


class CompiledBudget:
    """A budget with its selectors and cost globs compiled once at load."""

    __slots__ = ("costs", "matcher", "spec")

    def __init__(self, spec: BudgetSpec, index: int, selectors: Mapping[str, Sequence[str] | None]) -> None:
        self.spec = spec
        self.matcher = _Matcher(index, spec.id, selectors)
        self.costs = tuple((NameSet([pattern]), units) for pattern, units in spec.cost)

    def cost_of(self, target: str | None) -> int:
        """Units one call to ``target`` costs: the first matching glob's, else :data:`DEFAULT_COST`."""
        name = nfc(target) if target is not None else None
        for names, units in self.costs:
            if names.match(name):
                return units
        return DEFAULT_COST

    def why_not(self, view: _PrincipalView, request: AccessRequest) -> str | None:
        """Why this budget does not charge ``request`` (None when it does)."""
        server = nfc(request.server)
        target = nfc(request.target) if request.target is not None else None
        return self.matcher.why_not(server, request.kind, target, request.action, view)


def select_budgets(
    budgets: Sequence[CompiledBudget], view: _PrincipalView, request: AccessRequest
) -> tuple[BudgetCharge, ...]:
    """The budgets that charge ``request``, in file order, with what it costs each."""
    return tuple(
        BudgetCharge(b.spec, b.cost_of(request.target)) for b in budgets if b.why_not(view, request) is None
    )


@dataclass(frozen=True, slots=True)
class BudgetTrace:
    """One budget considered for a request (``mcp-guard policy explain``)."""

    budget: BudgetSpec
    applies: bool
    reason: str
    cost: int

    def as_dict(self) -> dict[str, Any]:
        b = self.budget
        return {
            "budget": b.id,
            "applies": self.applies,
            "reason": self.reason,
            "cost": self.cost,
            "limit": b.limit,
            "period": b.period,
            "per": b.per,
        }


def budget_traces(
    budgets: Sequence[CompiledBudget], view: _PrincipalView, request: AccessRequest
) -> tuple[BudgetTrace, ...]:
    """Every budget with whether it charges ``request``, why, and what the call would cost."""
    out: list[BudgetTrace] = []
    for b in budgets:
        why = b.why_not(view, request)
        out.append(BudgetTrace(b.spec, why is None, why or "all selectors match", b.cost_of(request.target)))
    return tuple(out)
