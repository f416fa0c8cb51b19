"""``policy check`` / ``policy explain`` with a request ``history``: flows tested offline.

The earlier calls are replayed, oldest first, through the same flow stage a
guard runs (:class:`~mcp_guard.flowstate.FlowTracker`) over an in-memory store
whose clock is each call's own time, so windows expire exactly as they would.
An earlier call the policy (or a flow) refuses arms nothing; one it allows
arms its flows under the id ``history[i]``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import anyio

from ..errors import AccessDenied
from ..flowstate import FlowRefused, FlowTracker
from ..model import AccessRequest, Decision, Principal
from ..store.memory import MemoryStore


def _epoch(request: AccessRequest) -> float:
    assert request.context is not None
    return request.context.time.timestamp()


def replay(
    policy: Any, history: list[tuple[Principal, AccessRequest]], principal: Principal, request: AccessRequest
) -> tuple[Decision, dict[str, Any] | None, list[dict[str, Any]]]:
    """The request's decision after ``history``, its flow record (if a flow acted), and its flow state."""
    now = [0.0]
    tracker = FlowTracker(MemoryStore(clock=lambda: now[0]))

    async def run() -> tuple[Decision, dict[str, Any] | None, list[dict[str, Any]]]:
        for i, (who, past) in enumerate(history):
            now[0] = _epoch(past)
            decision = policy.decide(who, past)
            plan = policy.flow_plan(past)
            if not decision.allowed or not plan:
                continue
            try:
                await tracker.check(who, past, plan, decision)
            except AccessDenied:
                continue
            await tracker.arm(who, past, plan, f"history[{i}]")
        now[0] = _epoch(request)
        decision = policy.decide(principal, request)
        plan = policy.flow_plan(request)
        state = await tracker.marks(principal, request, plan) if plan else []
        if not decision.allowed or not plan:
            return decision, None, state
        try:
            held = await tracker.check(principal, request, plan, decision)
        except FlowRefused as refused:
            flow = dict(refused.decision.flow) if refused.decision is not None else None
            denied = replace(decision, allowed=False, reasons=(refused.reason,))
            return denied, flow, state
        return held, dict(held.flow) if held.flow is not None else None, state

    return anyio.run(run)


def render_state(state: list[dict[str, Any]]) -> str:
    """The flow section of ``policy explain``."""
    if not state:
        return "flows: none apply to this target"
    lines = ["flows:"]
    for entry in state:
        role = " and ".join(entry["role"])
        mark = entry["mark"]
        seen = "no earlier call in the window"
        if mark:
            where = f"{mark.get('server')}/{mark.get('target')}"
            seen = f"earlier call {mark.get('event')} ({where}, {mark.get('label')})"
        lines.append(
            f"  - {entry['flow']} ({entry['effect']}, scope {entry['scope']}): {role} this target; {seen}"
        )
    return "\n".join(lines)
