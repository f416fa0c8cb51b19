"""The request format of ``mcp-guard policy check`` and of policy test cases.

A request names the principal, the MCP method (``tools/call`` ...) or the
short action (``call`` ...), the server, the target, arguments and a time;
it becomes the same :class:`~mcp_guard.model.Principal` and
:class:`~mcp_guard.model.AccessRequest` the guard would build.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, ValidationError, field_validator

from ..errors import PolicyError
from ..model import AccessRequest, Decision, Principal, RequestContext, TargetKind
from .engine import CompiledPolicy
from .loader import format_path, parse_source, suggest_value
from .locate import Locator, json_lines
from .outcome import Outcome, OutcomeEffect, effective_outcome

__all__ = [
    "METHOD_ACTIONS",
    "Case",
    "CaseResult",
    "history_from_data",
    "load_cases",
    "outcome_of",
    "parse_request",
    "parse_request_with_history",
    "request_from_data",
    "run_cases",
]

#: MCP method -> (action, kind). ``completion/complete`` takes its kind from the target.
METHOD_ACTIONS: dict[str, tuple[str, TargetKind | None]] = {
    "tools/call": ("call", "tool"),
    "prompts/get": ("get", "prompt"),
    "resources/read": ("read", "resource"),
    "resources/subscribe": ("subscribe", "resource"),
    "resources/unsubscribe": ("subscribe", "resource"),
    "completion/complete": ("complete", None),
}
_SHORT: dict[str, TargetKind | None] = {
    "call": "tool",
    "get": "prompt",
    "read": "resource",
    "subscribe": "resource",
    "complete": None,
}
_METHOD_OF = {
    "call": "tools/call",
    "get": "prompts/get",
    "read": "resources/read",
    "subscribe": "resources/subscribe",
}


class _PrincipalIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    subject: StrictStr = Field(min_length=1)
    roles: list[StrictStr] = Field(default_factory=list)
    groups: list[StrictStr] = Field(default_factory=list)
    scopes: list[StrictStr] = Field(default_factory=list)
    tenant: StrictStr | None = None
    mfa: StrictBool = False
    amr: list[StrictStr] = Field(default_factory=list)
    auth_method: StrictStr = "none"
    auth_time: datetime | None = None
    ip: StrictStr | None = None
    country: StrictStr | None = None
    issuer: StrictStr | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)

    @field_validator("auth_time")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("needs a time zone (RFC 3339, e.g. 2026-01-01T09:00:00Z)")
        return value


class _RequestIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    principal: _PrincipalIn
    action: StrictStr
    server: StrictStr = Field(min_length=1)
    target: StrictStr | None = None
    kind: Literal["tool", "prompt", "resource"] | None = None
    arguments: dict[str, Any] = Field(default_factory=dict)
    tags: list[StrictStr] = Field(default_factory=list)
    annotations: dict[str, Any] = Field(default_factory=dict)
    time: datetime | None = None
    #: Earlier calls, oldest first, for testing ``[[flows]]`` offline (read by :func:`parse_history`).
    history: list[Any] = Field(default_factory=list)

    @field_validator("time")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("needs a time zone (RFC 3339, e.g. 2026-01-01T09:00:00Z)")
        return value


def request_from_data(
    data: Any, source: str = "<request>", locator: Locator | None = None, prefix: tuple[Any, ...] = ()
) -> tuple[Principal, AccessRequest]:
    """Validate request data; errors name ``source``, the line and the field."""
    loc_of = locator or Locator()

    def error(message: str, loc: Sequence[Any]) -> PolicyError:
        full = (*prefix, *loc)
        return PolicyError(message, file=source, line=loc_of.line(full), field=format_path(full) or None)

    if not isinstance(data, Mapping):
        raise error("a request must be a JSON object", ())
    try:
        req = _RequestIn.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        msg = "required field is missing" if first["type"] == "missing" else first["msg"]
        raise error(msg.removeprefix("Value error, "), first["loc"]) from None
    if req.action in METHOD_ACTIONS:
        action, kind = METHOD_ACTIONS[req.action]
        method = req.action
    elif req.action in _SHORT:
        action, kind = req.action, _SHORT[req.action]
        method = _METHOD_OF.get(action, "completion/complete")
    else:
        known = ", ".join([*METHOD_ACTIONS, *_SHORT])
        raise error(f"unknown action {req.action!r} (use one of {known})", ("action",))
    if req.kind is not None:
        if kind is not None and req.kind != kind:
            raise error(f"kind {req.kind!r} does not fit action {req.action!r}", ("kind",))
        kind = req.kind
    if req.target is None:
        raise error(f"{req.action!r} needs a target (tool or prompt name, or resource URI)", ("target",))
    if kind is None:  # completion/complete: a prompt name or a resource URI
        kind = "resource" if "://" in req.target else "prompt"
    p = req.principal
    principal = Principal(
        subject=p.subject,
        tenant=p.tenant,
        roles=frozenset(p.roles),
        groups=frozenset(p.groups),
        scopes=frozenset(p.scopes),
        auth_method=p.auth_method,
        mfa=p.mfa,
        amr=tuple(p.amr),
        auth_time=p.auth_time,
        ip=p.ip,
        country=p.country,
        attributes=p.attributes,
        issuer=p.issuer,
    )
    context = RequestContext(time=req.time or datetime.now(timezone.utc), transport="cli")
    request = AccessRequest(
        method,
        action,
        req.server,
        kind,
        req.target,
        req.arguments,
        context,
        tags=frozenset(req.tags),
        annotations=req.annotations,
    )
    return principal, request


History = list[tuple[Principal, AccessRequest]]


def parse_request_with_history(text: str, source: str) -> tuple[Principal, AccessRequest, History]:
    """A request and its ``history``: earlier calls (oldest first) that flows remember.

    Each entry has the request's format; ``principal`` defaults to the
    request's, ``time`` to the request's time. Times must not go backwards
    and must not pass the request's own.
    """
    principal, request = parse_request(text, source)
    return principal, request, history_from_data(json.loads(text), request, source, json_lines(text))


def history_from_data(
    data: Any, request: AccessRequest, source: str, locator: Locator, prefix: tuple[Any, ...] = ()
) -> History:
    """The ``history`` of request ``data`` (already parsed into ``request``); errors name file, line, field.

    Shared by ``policy check``/``explain`` (a JSON request file) and ``policy
    test`` (a case's ``request`` table), so a flow is tested the same way in both.
    """
    entries = data.get("history") if isinstance(data, Mapping) else None
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise PolicyError(
            "history must be a list of earlier calls",
            file=source,
            line=locator.line((*prefix, "history")),
            field=format_path((*prefix, "history")),
        )
    assert request.context is not None
    now = request.context.time
    history: History = []
    previous: datetime | None = None
    for i, entry in enumerate(entries):
        loc = (*prefix, "history", i)
        if isinstance(entry, Mapping):
            entry = {"principal": data.get("principal"), **entry}
            if "time" not in entry:
                entry["time"] = now.isoformat()
        past = request_from_data(entry, source, locator, loc)
        when = past[1].context.time if past[1].context is not None else now
        if when > now or (previous is not None and when < previous):
            raise PolicyError(
                "history entries are earlier calls, oldest first: this time is "
                + ("after the request's" if when > now else "before the previous entry's"),
                file=source,
                line=locator.line((*loc, "time")) or locator.line(loc),
                field=format_path((*loc, "time")),
            )
        previous = when
        history.append(past)
    return history


def parse_request(text: str, source: str) -> tuple[Principal, AccessRequest]:
    """Parse a request JSON document (``policy check --request``)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PolicyError(
            f"invalid JSON: {exc.msg} (column {exc.colno})", file=source, line=exc.lineno
        ) from None
    return request_from_data(data, source, json_lines(text))


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    principal: Principal
    request: AccessRequest
    #: The effective outcome expected (:mod:`.outcome`): allow, deny, confirm or approval.
    expect: OutcomeEffect | None
    rule: str | bool | None  # False: not checked; None: the default (no rule)
    visible: bool | None
    where: str
    #: Earlier calls replayed through the flows before deciding (``request.history``).
    history: tuple[tuple[Principal, AccessRequest], ...] = ()


@dataclass(frozen=True, slots=True)
class CaseResult:
    case: Case
    passed: bool
    detail: str


class _CaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    expect: OutcomeEffect | None = None
    rule: StrictStr | None = None
    visible: StrictBool | None = None
    request: dict[str, Any]


class _CasesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cases: list[_CaseIn] = Field(min_length=1)


def load_cases(text: str, fmt: str, source: str) -> list[Case]:
    """Parse a test-case file; ``rule = ""`` expects the default decision (no rule)."""
    src = parse_source(text, fmt, source)
    if not isinstance(src.data, dict):
        raise src.error("a case file must be a table/object with a 'cases' list")
    try:
        spec = _CasesIn.model_validate(src.data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(first["loc"])
        msg = f"unknown field {loc[-1]!r}" if first["type"] == "extra_forbidden" else first["msg"]
        msg += suggest_value(first)
        raise src.error(msg, loc) from None
    cases: list[Case] = []
    for i, c in enumerate(spec.cases):
        if c.expect is None and c.visible is None:
            need = "a case needs 'expect' (allow/deny/confirm/approval) or 'visible' (true/false)"
            raise src.error(need, ("cases", i))
        prefix = ("cases", i, "request")
        principal, request = request_from_data(c.request, src.name, src.locator, prefix)
        history = tuple(history_from_data(c.request, request, src.name, src.locator, prefix))
        line = src.locator.line(("cases", i))
        rule: str | bool | None = False if c.rule is None else (c.rule or None)
        name = c.name or f"case {i + 1}"
        where = f"{src.name}:{line or '?'}"
        cases.append(Case(name, principal, request, c.expect, rule, c.visible, where, history))
    return cases


def outcome_of(principal: Principal, request: AccessRequest, decision: Decision) -> Outcome:
    """What the guard does with ``decision`` for this request, "now" being the request's time."""
    now = request.context.time if request.context is not None else datetime.now(timezone.utc)
    return effective_outcome(principal, decision, now)


def run_cases(
    policy: CompiledPolicy, cases: Sequence[Case], decide: Callable[[Case], Decision] | None = None
) -> list[CaseResult]:
    """Run each case; ``decide`` (when given) replaces ``policy.decide``, e.g. to replay a case's history.

    ``expect`` is compared with the effective outcome (a ``step_up`` the principal does not
    meet denies, ``confirm`` and ``approval`` hold), as the guard would answer the call.
    """
    results: list[CaseResult] = []
    for case in cases:
        problems: list[str] = []
        decision = decide(case) if decide is not None else policy.decide(case.principal, case.request)
        outcome = outcome_of(case.principal, case.request, decision)
        if case.expect is not None and outcome.effect != case.expect:
            why = f" ({outcome.reasons[0]})" if outcome.obligation and outcome.reasons else ""
            problems.append(f"expected {case.expect}, got {outcome.effect}{why}")
        if case.rule is not False and decision.rule != case.rule:
            problems.append(f"expected rule {case.rule or '(default)'}, got {decision.rule or '(default)'}")
        if case.visible is not None and case.request.kind is not None and case.request.target is not None:
            seen = policy.visible(case.principal, case.request.server, case.request.kind, case.request.target)
            if seen != case.visible:
                problems.append(
                    f"expected {'listed' if case.visible else 'hidden'}, got {'listed' if seen else 'hidden'}"
                )
        by = f"; {outcome.obligation}" if outcome.obligation else ""
        got = f"{outcome.effect} (rule {decision.rule or 'default'}{by})"
        detail = "; ".join(problems) + f" [{'; '.join(outcome.reasons)}]" if problems else got
        results.append(CaseResult(case, not problems, detail))
    return results
