"""Information-flow rules at call time: what a caller did earlier, kept in the state store.

A ``[[flows]]`` entry says: once a call carrying one of the ``after`` labels
was allowed, calls carrying one of the ``deny`` labels are refused (or must
be confirmed or approved) for ``window`` seconds. The policy knows which
flows a target takes part in (:meth:`CompiledPolicy.flow_plan`); this stage
keeps the memory:

- **arm**: when a call with an ``after`` label is allowed (after every
  obligation passed, before it runs), the flow's mark for the caller's scope is
  written with a time to live of ``window``: the audit event id of that call,
  its label, server, target and time. A later call of the same kind refreshes
  it, so the window counts from the latest one.
- **check**: a call with a ``deny`` label reads the marks of its flows; one
  that is present refuses the call, naming the flow and the earlier call.

Marks live in the shared state store (memory, SQLite, Redis): every replica
sharing the store sees the same marks, and expiry is the store's own TTL. A
store error refuses the call (fail closed) and is audited like any guard
failure. Scopes: ``subject`` (subject and tenant), ``tenant`` (every
principal of the tenant; a principal without one falls back to ``subject``)
and ``session`` (the caller's protocol session; 2026-07-28 has none, so it
falls back to ``subject``, as does any transport without a session id; such a
call counts for the whole subject both ways, see :func:`scope_keys`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from .errors import AccessDenied, GuardError, GuardUnavailable
from .model import AccessRequest, Decision, Principal
from .policy.flows import FlowPlan, FlowSpec
from .policy.obligations import merge_obligations
from .protocols import StateStore
from .ratelimit import key_part, subject_key

__all__ = ["FlowRefused", "FlowTracker", "Mark", "ScopeKeys", "scope_key", "scope_keys"]

#: Namespace of flow marks in the state store.
PREFIX = "flow:"

Mark = Mapping[str, Any]

#: The first protocol version without sessions (versions are dates, so they compare as strings).
SESSIONLESS = "2026-07-28"


class FlowRefused(AccessDenied):
    """A ``[[flows]]`` rule refused the call: the caller is told which flow and which earlier call.

    The earlier call is the caller's own, and the flow is what they must ask an
    administrator about, so both are in the public message (``data.flow``,
    ``data.afterEvent``); the audit event has the rest.
    """

    def __init__(self, reason: str, flow: str, after_event: str, *, decision: Any = None) -> None:
        super().__init__(reason, data={"flow": flow, "afterEvent": after_event}, decision=decision)
        self.public_message = (
            f"Access denied: flow {flow} refuses this call after your earlier call {after_event}"
        )


@dataclass(frozen=True, slots=True)
class ScopeKeys:
    """Where a flow's marks live for one caller: the keys a check reads and an arm writes."""

    scope: str
    reads: tuple[str, ...]
    writes: tuple[str, ...]


def scope_keys(flow: FlowSpec, principal: Principal, request: AccessRequest) -> ScopeKeys:
    """The store keys of ``flow``'s marks for this caller, and the scope actually used.

    ``session`` scope needs care where sessions and sessionless calls mix (a 2025
    session and a 2026-07-28 client of the same subject, a transport without a
    session id): a call without a session cannot be tied to any one session, so
    it counts for the whole subject. Its arm is seen by every session of the
    subject (the ``sessionless`` key) and its check sees the arms of every
    session (the ``subject`` key, which session arms also write). Otherwise a
    caller could fetch in one era and send in the other.
    """
    tenant = principal.tenant
    scope: str = flow.scope
    ctx = request.context
    session = ctx.session_id if ctx is not None else None
    if ctx is not None and (ctx.protocol_version or "") >= SESSIONLESS:
        session = None  # what a transport calls a session there is one connection per request
    if scope == "tenant" and not tenant:
        scope = "subject"  # nobody to share it with (an empty claim names no tenant either)
    person = subject_key(principal)  # one person across tenants, two across issuers
    subject = _key(flow, ["subject", person])
    if scope == "tenant":
        # The tenant's members share its marks, and the person's own follow them to any other
        # tenant a token may name (or none): a tenant flow widens a mark, it never narrows it.
        key = _key(flow, ["tenant", tenant])
        return ScopeKeys(scope, (key, subject), (key, subject))
    if scope == "subject":
        return ScopeKeys(scope, (subject,), (subject,))
    sessionless = _key(flow, ["sessionless", person])
    if not session:
        # 2026-07-28 (and sessionless transports): no session to remember, the subject is
        return ScopeKeys("subject", (subject,), (subject, sessionless))
    own = _key(flow, ["session", person, session])
    return ScopeKeys(scope, (own, sessionless), (own, subject))


def scope_key(flow: FlowSpec, principal: Principal, request: AccessRequest) -> tuple[str, str]:
    """The first key a check of ``flow`` reads for this caller, and the scope actually used."""
    keys = scope_keys(flow, principal, request)
    return keys.reads[0], keys.scope


def _key(flow: FlowSpec, parts: list[str | None]) -> str:
    # JSON keeps the parts apart whatever they contain; hashing keeps the key short.
    digest = hashlib.sha256(json.dumps(parts, ensure_ascii=True).encode()).hexdigest()[:40]
    return f"{PREFIX}{key_part(flow.id)}:{digest}"


def _when(request: AccessRequest) -> float:
    ctx = request.context
    return ctx.time.timestamp() if ctx is not None else datetime.now().timestamp()


class FlowTracker:
    """Checks and arms ``[[flows]]`` for one guard, through its state store."""

    def __init__(self, store: StateStore) -> None:
        self.store = store

    async def check(
        self,
        principal: Principal,
        request: AccessRequest,
        plan: FlowPlan,
        decision: Decision,
        *,
        enforce: bool = True,
    ) -> Decision:
        """Refuse (``deny`` flows) or add obligations (``confirm`` / ``approval``) for marks present."""
        if not plan.checks:
            return decision
        hits: list[tuple[FlowSpec, Mark, str]] = []
        for flow in plan.checks:
            keys = scope_keys(flow, principal, request)
            mark = await self._latest(keys.reads, flow)
            if mark is not None:
                hits.append((flow, mark, keys.scope))
        if not hits:
            return decision
        refusing = next(((f, m, s) for f, m, s in hits if f.effect == "deny"), None)
        flow, mark, scope = refusing or hits[0]
        record = _record(flow, mark, scope, plan)
        reason = _reason(flow, mark, request)
        if refusing is not None:
            refused = replace(decision, flow=record)
            if not enforce:
                return replace(
                    refused, reasons=(*decision.reasons, f"shadow: {reason}"), shadow=True, would_allow=False
                )
            raise FlowRefused(reason, flow.id, str(mark.get("event")), decision=refused)
        extra = [f.obligation for f, _, _ in hits if f.obligation is not None]
        return replace(
            decision,
            reasons=(*decision.reasons, reason.replace("refused", "held", 1)),
            obligations=merge_obligations([*decision.obligations, *extra]),
            flow=record,
        )

    async def arm(self, principal: Principal, request: AccessRequest, plan: FlowPlan, event_id: str) -> None:
        """Remember an allowed call for every flow whose ``after`` labels it carries."""
        for flow in plan.arms:
            keys = scope_keys(flow, principal, request)
            label = sorted(flow.after & plan.labels)[0]
            mark = {
                "event": event_id,
                "label": label,
                "server": request.server,
                "kind": request.kind,
                "target": request.target,
                "at": _when(request),
            }
            try:
                for key in keys.writes:
                    await self.store.set(key, json.dumps(mark).encode(), ttl=flow.window)
            except GuardError:
                raise
            except Exception as exc:
                raise GuardUnavailable(f"flow {flow.id}: state store failed: {exc!r}") from exc

    async def marks(
        self, principal: Principal, request: AccessRequest, plan: FlowPlan
    ) -> list[dict[str, Any]]:
        """Every flow of the target with the caller's mark (or None): for ``policy explain``."""
        out: list[dict[str, Any]] = []
        for flow in dict.fromkeys((*plan.checks, *plan.arms)):
            keys = scope_keys(flow, principal, request)
            mark = await self._latest(keys.reads, flow)
            scope = keys.scope
            role = [r for r, fs in (("refuses", plan.checks), ("arms", plan.arms)) if flow in fs]
            out.append({"flow": flow.id, "effect": flow.effect, "scope": scope, "role": role, "mark": mark})
        return out

    async def _latest(self, keys: tuple[str, ...], flow: FlowSpec) -> Mark | None:
        """The most recent of the marks under ``keys`` (None: no earlier call in the window)."""
        found: Mark | None = None
        for key in keys:
            mark = await self._read(key, flow)
            if mark is not None and (found is None or _at(mark) > _at(found)):
                found = mark
        return found

    async def _read(self, key: str, flow: FlowSpec) -> Mark | None:
        try:
            raw = await self.store.get(key)
        except GuardError:
            raise
        except Exception as exc:
            raise GuardUnavailable(f"flow {flow.id}: state store failed: {exc!r}") from exc
        if raw is None:
            return None
        try:
            mark = json.loads(raw)
        except ValueError:
            mark = None
        if not isinstance(mark, dict):
            # An unreadable mark still means an earlier call happened: refuse rather than forget it.
            return {
                "event": "unknown",
                "label": "?",
                "server": None,
                "kind": None,
                "target": None,
                "at": None,
            }
        return mark


def _at(mark: Mark) -> float:
    at = mark.get("at")
    return float(at) if isinstance(at, (int, float)) else float("inf")  # unreadable: keep it


def _record(flow: FlowSpec, mark: Mark, scope: str, plan: FlowPlan) -> dict[str, Any]:
    """The audit event's ``flow`` field."""
    return {
        "id": flow.id,
        "effect": flow.effect,
        "scope": scope,
        "labels": sorted(flow.deny & plan.labels),
        "after_event": mark.get("event"),
        "after_label": mark.get("label"),
        "after_server": mark.get("server"),
        "after_target": mark.get("target"),
        "after_time": mark.get("at"),
    }


def _reason(flow: FlowSpec, mark: Mark, request: AccessRequest) -> str:
    ago = ""
    at = mark.get("at")
    if isinstance(at, (int, float)):
        ago = f", {max(0, round(_when(request) - at))}s ago"
    earlier = f"{mark.get('server')}/{mark.get('target')}"
    return (
        f"refused by flow {flow.id}: {mark.get('label')} call {mark.get('event')} ({earlier}{ago})"
        f" within {flow.window:g}s"
    )


def plan_for(policy: Any, request: AccessRequest) -> FlowPlan | None:
    """The policy's flow plan for a request (None: the engine has no flows, or none apply)."""
    flow_plan = getattr(policy, "flow_plan", None)
    if flow_plan is None or request.kind is None or request.target is None:
        return None
    try:
        plan = flow_plan(request)
    except Exception as exc:
        raise GuardUnavailable(f"flow lookup failed: {exc!r}") from exc
    return plan if isinstance(plan, FlowPlan) and plan else None
