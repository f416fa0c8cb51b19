"""Charging calls to the ``[[budgets]]`` of the policy, in the shared state store.

The policy says which budgets a call is charged to and what it costs
(``CompiledPolicy.budgets_for``); this module only counts. A budget keys its
counter by its id, the subject or tenant of the caller and the start of the
current period, so with a shared store (Redis, or one SQLite file) the budget
holds fleet-wide.

When a call is charged: once, on admission, after everything else that can
refuse it before it runs (the policy, step-up, rate limits, the caller's
confirmation, a person's approval) - *consume on allow*. A call the policy
denies, or that any of those stages refuses, costs nothing. A call that was
admitted stays charged whatever happens next (the handler failing, a
timeout, the caller cancelling): the guard cannot tell whether the tool did
its work, and refunding on failure would let a caller run expensive work
for free by making it fail afterwards. A retry is a new call and is charged
again.

Every budget the call is charged to is counted all or nothing in one atomic
store operation (``spend_many``: one Lua script on Redis, one transaction on
SQLite): a call refused by one budget spends nothing of the others, and two
replicas can never both take the last units. A store without ``spend_many``
(a plugin) is charged with ``incr`` and refunded on refusal or a failure midway: never more than
the limit, but a call racing another near the limit may be refused although
one of them would have fit.

Periods are fixed windows aligned to UTC (a ``"1d"`` budget resets at
midnight UTC, ``"1w"`` on Monday 00:00 UTC). On Redis the window is read from
the Redis server's clock, so replicas agree on it whatever their own clocks
say. Fail closed: a store error raises
:class:`~mcp_guard.errors.GuardUnavailable` and the call is refused.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

import anyio

from .errors import GuardError, GuardUnavailable, RateLimited
from .model import BudgetCharge, BudgetSpec, Decision, Principal
from .protocols import StateStore
from .ratelimit import key_part, subject_key
from .store._common import PERIOD_GRACE, Spend, period_window

__all__ = ["BudgetExhausted", "BudgetUsage", "Budgets"]


class BudgetExhausted(RateLimited):
    """A budget has no room for this call before its period ends.

    The caller learns which budget, how much of it is used, what the call
    costs and when the budget resets (``data``: ``budget``, ``used``,
    ``limit``, ``cost``, ``resetsAt``, ``retryAfter``); the audit event also
    names the subject or tenant it was counted for.
    """

    public_message = "Budget exhausted"

    def __init__(self, reason: str, public: str, *, retry_after: float, data: dict[str, Any]) -> None:
        super().__init__(reason, retry_after=retry_after)
        self.public_message = public
        self.data = {**(self.data or {}), **data}


@dataclass(frozen=True, slots=True)
class BudgetUsage:
    """One budget's state for one caller: units used in the current period, and when it ends."""

    budget: BudgetSpec
    owner: str | None
    cost: int
    used: int
    resets_at: int

    @property
    def remaining(self) -> int:
        return max(self.budget.limit - self.used, 0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "budget": self.budget.id,
            "per": self.budget.per,
            "owner": self.owner,
            "cost": self.cost,
            "used": self.used,
            "limit": self.budget.limit,
            "remaining": self.remaining,
            "resets_at": _iso(self.resets_at),
        }


#: Budgets whose key prefix is kept (policies have few; the bound only guards against churn).
_CACHE_MAX = 4096


@functools.lru_cache(maxsize=256)
def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _owner(spec: BudgetSpec, principal: Principal) -> str | None:
    return (principal.tenant or None) if spec.per == "tenant" else principal.subject


def _owner_key(spec: BudgetSpec, principal: Principal) -> str:
    """The owner's part of a counter key: the tenant, or the subject (see :func:`subject_key`)."""
    if spec.per == "tenant":
        return key_part(principal.tenant or None)  # an empty claim names no tenant either
    return subject_key(principal)


class Budgets:
    """Charges calls to policy budgets in a :class:`~mcp_guard.protocols.StateStore`.

    ``clock`` gives Unix seconds (tests pass a fake one; the Redis store uses
    its server's clock instead). Safe to share across sessions and tasks.
    """

    def __init__(
        self, store: StateStore, *, clock: Callable[[], float] = time.time, namespace: str = "bg:"
    ) -> None:
        self.store = store
        self.clock = clock
        #: Seconds one charge may take in the store before the call is refused (``TimeoutError``).
        self.store_deadline = 10.0
        self._namespace = namespace
        self._prefixes: dict[BudgetSpec, str] = {}
        spend = getattr(store, "spend_many", None)
        self._spend_many = spend if callable(spend) else None

    def key(self, spec: BudgetSpec, principal: Principal) -> str:
        """The counter key (without the period) a principal's calls are charged to.

        A principal without a tenant shares one ``tenant=~`` counter per
        budget rather than escaping it; a subject is counted per issuer.
        """
        prefix = self._prefixes.get(spec)
        if prefix is None:
            if len(self._prefixes) >= _CACHE_MAX:
                self._prefixes.clear()
            prefix = self._prefixes[spec] = f"{self._namespace}{key_part(spec.id)}:{spec.per}="
        return prefix + _owner_key(spec, principal)

    async def admit(self, policy: Any, principal: Principal, request: Any, decision: Decision) -> Decision:
        """Charge an allowed call to its budgets; the decision gains one reason per budget.

        Raise :class:`BudgetExhausted` when any budget lacks room (nothing is
        charged then) and ``GuardUnavailable`` when the policy or the store fails.
        """
        budgets_for = getattr(policy, "budgets_for", None)
        if budgets_for is None:
            return decision
        try:
            # A free call (cost 0) always fits and changes nothing: no store round trip for it.
            charges = [c for c in budgets_for(principal, request) if c.cost > 0]
            if not charges:
                return decision
            usage = await self.charge(principal, charges)
        except GuardError:
            raise
        except Exception as exc:
            raise GuardUnavailable(f"budget accounting failed: {type(exc).__name__}: {exc}") from exc
        noted = tuple(
            f"budget {u.budget.id!r}: {u.used}/{u.budget.limit} used after this call (cost {u.cost}),"
            f" resets {_iso(u.resets_at)}"
            for u in usage
        )
        return replace(decision, reasons=(*decision.reasons, *noted))

    async def precheck(self, policy: Any, principal: Principal, request: Any, decision: Decision) -> None:
        """Before a person is asked (``confirm``, ``approval``): refuse now a call that cannot fit.

        Reads only; the charge still happens at admission. Without it an approver
        could approve a call the budget then refuses, spending a single-use approval.
        """
        if not any(o.kind in ("confirm", "approval") for o in decision.obligations):
            return
        budgets_for = getattr(policy, "budgets_for", None)
        if budgets_for is None:
            return
        try:
            charges: Sequence[BudgetCharge] = budgets_for(principal, request)
            usage = await self.usage(principal, charges) if charges else []
        except GuardError:
            raise
        except Exception as exc:
            raise GuardUnavailable(f"budget accounting failed: {type(exc).__name__}: {exc}") from exc
        if any(u.used + u.cost > u.budget.limit for u in usage):
            raise self._refusal(usage, self.clock())

    async def charge(self, principal: Principal, charges: Sequence[BudgetCharge]) -> list[BudgetUsage]:
        """Charge every budget or none; return the usage after the charge."""
        now = self.clock()
        items = [(self.key(c.budget, principal), c.cost, c.budget.limit, c.budget.period) for c in charges]
        # Shielded: a caller cancelling once the store has the charge must not leave a charged call
        # recorded as never admitted; the cancellation lands right after, with the charge on record.
        # Bounded, so a store that hangs cannot hold a cancelled call forever (it fails closed).
        with anyio.fail_after(self.store_deadline, shield=True):
            admitted, rows = await self._spend(items, now)
        if len(rows) != len(items):
            raise GuardUnavailable("budget accounting failed: store returned a wrong number of counters")
        usage = [
            BudgetUsage(c.budget, _owner(c.budget, principal), c.cost, used, end)
            for c, (used, end) in zip(charges, rows)  # noqa: B905 - checked above
        ]
        if not admitted:
            raise self._refusal(usage, now)
        return usage

    async def usage(self, principal: Principal, charges: Sequence[BudgetCharge]) -> list[BudgetUsage]:
        """Read the current period's usage of each budget without charging anything."""
        items = [(self.key(c.budget, principal), 0, c.budget.limit, c.budget.period) for c in charges]
        try:
            _, rows = await self._spend(items, self.clock())
        except GuardError:
            raise
        except Exception as exc:
            raise GuardUnavailable(f"budget accounting failed: {type(exc).__name__}: {exc}") from exc
        return [
            BudgetUsage(c.budget, _owner(c.budget, principal), c.cost, used, end)
            for c, (used, end) in zip(charges, rows)  # noqa: B905 - one row per item
        ]

    @staticmethod
    def _refusal(usage: Sequence[BudgetUsage], now: float) -> BudgetExhausted:
        short = [u for u in usage if u.used + u.cost > u.budget.limit]
        first = short[0]
        detail = "; ".join(
            f"budget {u.budget.id!r} exhausted: {u.used}/{u.budget.limit} used per {u.budget.period}s,"
            f" this call costs {u.cost} ({u.budget.per}={u.owner}), resets {_iso(u.resets_at)}"
            for u in short
        )
        resets = max(u.resets_at for u in short)
        public = (
            f"Budget {first.budget.id!r} exhausted: {first.used}/{first.budget.limit} units used,"
            f" this call costs {first.cost}; it resets at {_iso(first.resets_at)}"
        )
        data = {
            "budget": first.budget.id,
            "used": first.used,
            "limit": first.budget.limit,
            "cost": first.cost,
            "resetsAt": _iso(first.resets_at),
        }
        return BudgetExhausted(detail, public, retry_after=max(resets - now, 0.0), data=data)

    async def _spend(self, items: list[Spend], now: float) -> tuple[bool, list[tuple[int, int]]]:
        if self._spend_many is not None:
            admitted, rows = await self._spend_many(items, now)
            return bool(admitted), [(int(used), int(end)) for used, end in rows]
        return await self._spend_by_incr(items, now)

    async def _spend_by_incr(self, items: list[Spend], now: float) -> tuple[bool, list[tuple[int, int]]]:
        """For a store with only the protocol: increment, and take back everything on a refusal."""
        rows: list[tuple[int, int]] = []
        taken: list[tuple[int, str, int]] = []
        admitted = True
        try:
            for key, cost, limit, period in items:
                start, end = period_window(now, period)
                name = f"{key}@{start}"
                if cost == 0 or not admitted:
                    raw = await self.store.get(name)
                    rows.append((int(raw) if raw is not None else 0, end))
                    continue
                used = await self.store.incr(name, cost, end - now + PERIOD_GRACE)
                taken.append((len(rows), name, cost))
                rows.append((used, end))
                if used > limit:
                    admitted = False
        except BaseException:
            # The call is refused (fail closed), so it keeps nothing of what it took so far.
            await self._give_back(taken)
            raise
        if not admitted:
            await self._give_back(taken)
            for index, _, cost in taken:
                rows[index] = (rows[index][0] - cost, rows[index][1])
        return admitted, rows

    async def _give_back(self, taken: Sequence[tuple[int, str, int]]) -> None:
        for _, name, cost in taken:
            await self.store.incr(name, -cost)
