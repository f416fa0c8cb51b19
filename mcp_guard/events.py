"""The audit event of one exchange, built from what the stages learned about it.

One function, called for every request, refusal and transport error, so it is
kept cheap: an event is built once per call on the request path (see
``docs/benchmarks.md``, "Guard work per call").
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Literal

from .model import (
    AccessRequest,
    AuditEvent,
    Decision,
    Outcome,
    Principal,
    RequestContext,
    ResultSummary,
    Status,
    new_event_id,
)


def audit_event(
    method: str,
    decision: Outcome,
    *,
    principal: Principal | None,
    request: AccessRequest | None = None,
    context: RequestContext | None = None,
    verdict: Decision | None = None,
    reasons: Sequence[str] = (),
    error_code: int | None = None,
    result: ResultSummary | None = None,
    started: float | None = None,
    kind: str = "request",
    direction: Literal["inbound", "outbound"] = "inbound",
    server: str | None = None,
    status: Status | None = None,
    event_id: str | None = None,
) -> AuditEvent:
    ctx = context or (request.context if request is not None else None)
    ident = event_id if event_id is not None else new_event_id()
    redact: tuple[str, ...] = ()
    rule = approval = confirmation = flow = None
    shadow = False
    if verdict is not None:
        for ob in verdict.obligations:
            if ob.kind == "redact":
                redact += tuple(str(f) for f in ob.params.get("fields", ()))
        rule, shadow = verdict.rule, verdict.shadow
        approval, confirmation, flow = verdict.approval, verdict.confirmation, verdict.flow
        reasons = tuple(reasons) or verdict.reasons
    else:
        reasons = tuple(reasons)
    session_id: str | None = None
    request_id: str | int | None = None
    transport = client_name = client_version = source_ip = None
    if ctx is not None:
        session_id, request_id, transport = ctx.session_id, ctx.request_id, ctx.transport
        client_name, client_version, source_ip = ctx.client_name, ctx.client_version, ctx.source_ip
    if not source_ip:
        source_ip = principal.ip if principal is not None else None
    if request is not None:
        server, target_kind, target = request.server, request.kind, request.target
        arguments = request.arguments or None
    else:
        target_kind = target = arguments = None
    latency = round((time.perf_counter() - started) * 1000, 3) if started is not None else None
    # Positional, in the order of AuditEvent's fields: a tenth of the cost of 28 keywords on the
    # request path (tests/test_model_init.py checks that every field lands where it belongs).
    return AuditEvent(
        method,
        decision,
        kind,
        ident,
        time.time(),
        session_id,
        request_id,
        principal.summary() if principal is not None else None,
        source_ip,
        transport,
        client_name,
        client_version,
        server,
        target_kind,
        target,
        rule,
        reasons,
        shadow,
        arguments,
        redact,
        result,
        error_code,
        latency,
        direction,
        status,
        approval,
        confirmation,
        flow,
    )
