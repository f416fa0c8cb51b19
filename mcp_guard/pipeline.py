"""The request pipeline: the one place where the order of the guard's stages is written.

``identify -> classify -> admit -> decide -> [call] -> inspect -> record``

Every adapter (the server middleware, the client session wrapper, the portal)
describes its request as an :class:`Exchange` and hands :func:`run` the one
thing only it can do: the call. Whatever happens after that - allowed, refused
by any stage, the handler or the upstream failing, a timeout, the caller
cancelling - produces exactly one audit event. A cancelled exchange is recorded
in a shielded scope with the time it had run, so dropping a response never
makes a call disappear from the trail.

A handler may itself run nested exchanges through the guard (the portal routes
a downstream request to guarded sessions per upstream): :func:`run` with
``delegate=True`` opens a slot that nested runs fill instead of recording, and
the outer run writes the one event for the downstream request.

With ``guard.telemetry`` set, :func:`run` is also where every exchange is
observed (span, counters, latency), under the labels of its audit event.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import anyio
from mcp.shared.exceptions import MCPError
from mcp_types import REQUEST_TIMEOUT
from pydantic import BaseModel

from ._wire import to_wire
from .classify import MethodInfo, classify
from .confirm import AskCaller, Caller
from .errors import AccessDenied, GuardError, GuardUnavailable
from .inflight import Slot
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
    quick_init,
)
from .protocols import Credential
from .telemetry import Ending, Telemetry

if TYPE_CHECKING:
    from .guard import Guard

Direction = Literal["inbound", "outbound"]

#: Fetches a raw list result (``tools/list`` ...) from the server behind an exchange, so an item
#: that was never listed is screened before it is used.
ListLookup = Callable[[str], Awaitable[Any]]

#: What the server behind an exchange declares about one target (``kind``, ``name``): its
#: ``tags`` and ``annotations``, read from the server object in process (no I/O), or None.
Describe = Callable[[str, str], Awaitable["Mapping[str, Any] | None"]]

_RESULT_KIND = {
    "tools/call": "tool_result",
    "prompts/get": "prompt_result",
    "resources/read": "resource_result",
}
_LIST_OF = {
    "tool": ("tools/list",),
    "prompt": ("prompts/list",),
    "resource": ("resources/list", "resources/templates/list"),
}


@dataclass(slots=True)
class Exchange:
    """One request or notification as an adapter sees it, before any stage ran.

    ``inbound``: a client calls this server (the server middleware, the
    portal's front door). ``outbound``: this host calls a server (the client
    wrapper); then the server is the untrusted party and every list and result
    is screened. Give ``principal`` when the caller is already known (a client
    session acts for one principal), else ``credential``.
    """

    method: str
    params: Mapping[str, Any] | None
    server: str
    context: RequestContext
    direction: Direction = "inbound"
    credential: Credential | None = None
    principal: Principal | None = None
    notification: bool = False
    lookup: ListLookup | None = None
    #: Set by a transport whose routing metadata (HTTP headers) disagrees with the body: refused.
    mismatch: str | None = None
    #: Tags and annotations of the target, for policy conditions (``request.tags`` ...).
    describe: Describe | None = None
    #: The user behind the calling session, for a rule's ``confirm`` question (None: nobody to ask).
    caller: Caller | None = None
    #: Set by the confirm stage on 2026-07-28: the params the handler gets (the guard's own
    #: question and state removed). The adapter's call uses them instead of the original.
    forward: Mapping[str, Any] | None = None
    #: The id the audit event of this request will carry (set by :func:`run`; a nested run inside
    #: a delegating one takes the outer id, which is the event that gets written). Flows name it.
    event_id: str | None = None


@quick_init
@dataclass(frozen=True, slots=True)
class Admitted:
    """What the call stage receives: who asks, what they ask, and the decision that let it through."""

    principal: Principal
    request: AccessRequest
    info: MethodInfo
    decision: Decision


Call = Callable[[Admitted], Awaitable[Any]]


@dataclass(slots=True)
class _Trail:
    """What the stages learned so far: the material of the exchange's one audit event."""

    exchange: Exchange
    started: float
    principal: Principal | None = None
    request: AccessRequest | None = None
    decision: Decision | None = None
    summary: ResultSummary | None = None
    nested: list[AuditEvent] = field(default_factory=list)
    open: bool = True
    handed_off: bool = False
    #: How it ended and why, once recorded (for telemetry).
    status: Status | None = None
    error_type: str | None = None
    labels: tuple[str, str, str | None] | None = None
    event_id: str = field(default_factory=new_event_id)
    #: The call's place under the concurrency cap, taken at admission and given back by :func:`_run`.
    slot: Slot | None = None


_SLOT: ContextVar[_Trail | None] = ContextVar("mcp_guard_pipeline_slot", default=None)


def run(guard: Guard, exchange: Exchange, call: Call, *, delegate: bool = False) -> Coroutine[Any, Any, Any]:
    """Run ``exchange`` through every stage of ``guard``; ``call`` is the transport's own step.

    Refusals raise :class:`~mcp.shared.exceptions.MCPError` with the stage's
    public code and message; an ``MCPError`` from ``call`` passes through
    unchanged. With ``delegate`` the decision, the inspection and the
    event's details are left to nested runs inside ``call``.

    Returns the coroutine to await (no coroutine of its own wraps it: every
    request passes here, and each frame is work on the request path).
    """
    telemetry = guard.telemetry
    if telemetry is None:
        return _run(guard, _begin(exchange), call, delegate)
    return _observed(guard, telemetry, exchange, call, delegate)


def _begin(exchange: Exchange) -> _Trail:
    trail = _Trail(exchange, time.perf_counter())
    outer = _SLOT.get()
    exchange.event_id = outer.event_id if outer is not None and outer.open else trail.event_id
    return trail


async def _observed(
    guard: Guard, telemetry: Telemetry, exchange: Exchange, call: Call, delegate: bool
) -> Any:
    """:func:`run` with telemetry: the one place every exchange is observed, refusals included."""
    trail = _begin(exchange)
    handle = telemetry.begin(
        exchange.method, exchange.params, exchange.direction, exchange.server, exchange.context
    )
    try:
        return await _run(guard, trail, call, delegate)
    finally:
        # The labels of the exchange's audit event, so the figures and the trail agree.
        status = trail.status or "cancelled"
        decision, outcome, rule = trail.labels or (_outcome(trail, status), status, None)
        ending = Ending(
            exchange.method, exchange.direction, decision, outcome, rule, _decided(trail), trail.error_type
        )
        telemetry.end(handle, ending)


async def _run(guard: Guard, trail: _Trail, call: Call, delegate: bool) -> Any:
    try:
        try:
            admitted = await _admit(guard, trail, delegate)
        except AskCaller as asked:
            # The answer is a question for the caller (2026-07-28): recorded, then returned as the result.
            await _finish(guard, trail, asked)
            return asked.result
        except BaseException as exc:
            raise await _finish(guard, trail, exc) from None
        token = _SLOT.set(trail) if delegate else None
        try:
            result = await call(admitted)
        except BaseException as exc:
            raise await _finish(guard, trail, exc) from None
        finally:
            if token is not None:
                _SLOT.reset(token)
        if not delegate:
            try:
                if admitted.info.list_key is None:  # a result, not a list: no await needed
                    result = _inspect_result(guard, trail, admitted, result)
                else:
                    result = await _inspect_list(guard, trail, admitted, result)
            except Exception as exc:
                # A plugin failing on the result is the guard failing, never the handler: fail closed.
                why = f"inspection failed: {exc!r}"
                stage = exc if isinstance(exc, GuardError) else GuardUnavailable(why)
                raise await _finish(guard, trail, stage) from None
            except BaseException as exc:
                raise await _finish(guard, trail, exc) from None
        unrecorded = await _finish(guard, trail, None)
        if unrecorded is not _NO_ERROR:
            raise unrecorded  # the event could not be recorded: no audit, no access
        return result
    finally:
        # However the exchange ended (refused, failed, cancelled, timed out): its slot goes back once.
        if trail.slot is not None:
            trail.slot.release()


# ---------------------------------------------------------------------- for delegating handlers
def route(server: str, target: str | None = None) -> None:
    """Name the upstream (and its own target name) a delegated request went to, for its event."""
    trail = _SLOT.get()
    if trail is not None and trail.open and trail.request is not None:
        trail.request = replace(trail.request, server=server, target=target or trail.request.target)


def hand_off() -> None:
    """This request continues a call that records itself (a parked multi-round call): no event here."""
    trail = _SLOT.get()
    if trail is not None and trail.open:
        trail.handed_off = True


def recorded_elsewhere() -> None:
    """This request ends with a failure the parked call it continued records itself: no event here.

    Unless the call's event is nested in this very request (it ended in its
    first round): then this request records it, once, as usual.
    """
    trail = _SLOT.get()
    if trail is not None and trail.open and trail.handed_off and not trail.nested:
        trail.open = False


async def settle(guard: Guard, *reasons: str) -> None:
    """Record the delegated request now, before the handler returns (a listen stream stays open)."""
    trail = _SLOT.get()
    if trail is None or not trail.open:
        return
    trail.open = False
    event = _event(guard, replace(trail, nested=[]), "ok", None, None)
    # What nested runs decided on the way (a listen's subscriptions) stays on the record.
    decided = tuple(f"{e.kind} {e.target!r} on {e.server!r} allowed by rule {e.rule}" for e in trail.nested)
    await guard.record(replace(event, reasons=(*(reasons or event.reasons), *decided)))


# ---------------------------------------------------------------------- stages before the call
async def _admit(guard: Guard, trail: _Trail, delegate: bool) -> Admitted:
    ex = trail.exchange
    principal = ex.principal
    if principal is None:
        credential = ex.credential or _NONE
        # A cached principal is taken without the resolver's coroutines; anything else verifies.
        principal = guard.identified(credential)
        if principal is None:
            principal = await guard.identify(credential)
    trail.principal = principal
    request, info = classify(ex.method, ex.params, ex.server, ex.context, notification=ex.notification)
    trail.request = request
    if ex.describe is not None and request.kind is not None and request.target is not None and _reads(guard):
        request = trail.request = await _described(ex.describe, request)
    if ex.mismatch is not None:
        raise AccessDenied(ex.mismatch)
    guard.check_params(ex.params, request)
    # A delegating handler's nested runs screen under the upstream's own names; nothing
    # screened, nothing to check (and no coroutine to run).
    if not delegate and guard.screens(ex.server, ex.direction):
        await _check_screened(guard, ex, request)
    if not delegate and not ex.notification and not info.housekeeping and request.action != "listen":
        # Before the decision, so a call past the cap spends no rate limit, budget or approval.
        # A delegating run takes none: its nested runs each take one on their own upstream.
        trail.slot = guard.in_flight.acquire(principal, ex.server)
    if delegate and not info.housekeeping:
        decision = _DELEGATED
    else:
        decision = await guard.authorize(principal, request, info, exchange=ex)
    trail.decision = decision
    guard.check_audit()
    return Admitted(principal, request, info, decision)


def _reads(guard: Guard) -> bool:
    """Whether the policy may read ``request.tags`` / ``request.annotations`` (a plugin: assume so)."""
    return bool(getattr(guard.policy, "reads_target_attributes", True))


async def _described(describe: Describe, request: AccessRequest) -> AccessRequest:
    """The request with its target's declared tags and annotations (a failure fails closed)."""
    assert request.kind is not None and request.target is not None
    try:
        found = await describe(request.kind, request.target)
    except Exception as exc:
        raise GuardUnavailable(f"describing {request.kind} {request.target!r} failed: {exc!r}") from exc
    if not found:
        return request
    tags = found.get("tags") or ()
    annotations = found.get("annotations") or {}
    return replace(request, tags=frozenset(str(t) for t in tags), annotations=annotations)


_NONE = Credential(None, "none")
_DELEGATED = Decision(True, None, ("decided by the handler",))


async def _check_screened(guard: Guard, ex: Exchange, request: AccessRequest) -> None:
    """Refuse an item a list screening withheld; screen a never-listed one first when possible."""
    if request.action == "listen":
        targets = [("resource", str(uri)) for uri in request.arguments.get("uris") or ()]
    elif request.kind is not None and request.target is not None:
        targets = [(request.kind, request.target)]
    else:
        return
    lookup = ex.lookup
    for kind, target in targets:
        state = guard.withheld.state(ex.server, kind, target)
        for method in _LIST_OF.get(kind, ()) if state is None and lookup is not None else ():
            assert lookup is not None
            info = classify(method, {}, ex.server)[1]
            listed = await lookup(method)
            await guard.screen_list(None, ex.server, info, to_wire(listed), ex.direction)
            state = guard.withheld.state(ex.server, kind, target)
            if state is not None:
                break
        if state:
            why = guard.withheld.reason(ex.server, kind, target)
            raise AccessDenied(f"{kind} {target!r} is withheld: {why}")


# ---------------------------------------------------------------------- stages after the call
async def _inspect_list(guard: Guard, trail: _Trail, admitted: Admitted, result: Any) -> Any:
    """Filter a list and screen its items before the caller (the model) sees them."""
    ex, info = trail.exchange, admitted.info
    if result is None or not (type(result) is dict or isinstance(result, (Mapping, BaseModel))):
        return result
    data = to_wire(result)
    out, trail.summary = await guard.screen_list(admitted.principal, ex.server, info, data, ex.direction)
    return _same_type(result, data, out)


def _inspect_result(guard: Guard, trail: _Trail, admitted: Admitted, result: Any) -> Any:
    """Size-check and scan a call, get or read result (synchronous: it does no I/O)."""
    ex = trail.exchange
    if result is None or not (type(result) is dict or isinstance(result, (Mapping, BaseModel))):
        return result
    kind = _RESULT_KIND.get(ex.method)
    if kind is None or _result_type(result) == "input_required":
        # A question back to the caller: its requests are screened when they are put to the caller.
        return result
    data = to_wire(result)
    enabled = True if ex.direction == "outbound" else None
    out, trail.summary = guard.inspect_result(kind, data, enabled=enabled, server=ex.server)
    return _same_type(result, data, out)


def _result_type(result: Any) -> Any:
    if type(result) is dict or isinstance(result, Mapping):
        return result.get("resultType", "complete")
    return getattr(result, "result_type", "complete")


def _same_type(original: Any, data: Mapping[str, Any], out: Mapping[str, Any]) -> Any:
    """Hand back the adapter's own type; re-validate a model only when inspection changed it."""
    if isinstance(original, BaseModel):
        return original if out is data or out == data else type(original).model_validate(out)
    return out


# ---------------------------------------------------------------------- record
async def _finish(guard: Guard, trail: _Trail, exc: BaseException | None) -> BaseException:
    """Record the exchange's one event; return what the adapter's caller should see raised."""
    if not trail.open:
        # Already recorded (settle): a stream that ends later adds nothing to the trail.
        if isinstance(exc, GuardError):
            return MCPError(exc.code, exc.public_message, exc.data)
        return exc if exc is not None else _NO_ERROR
    trail.open = False
    status, raised, error = _classify_end(trail, exc)
    trail.status = status
    if error is not None:
        trail.error_type = str(error.code)
    elif exc is not None:
        trail.error_type = str(exc.code) if isinstance(exc, MCPError) else type(exc).__name__
    if trail.handed_off and status in ("ok", "cancelled") and not trail.nested:
        return raised  # a parked call records itself when it ends (a cancelled round cancels it)
    event = _event(guard, trail, status, error, exc)
    trail.labels = (event.decision, event.outcome or status, event.rule)
    outer = _SLOT.get()
    if outer is not None and outer.open and outer is not trail:
        outer.nested.append(event)  # the delegating run records the downstream request once
        return raised
    if exc is None or status in ("ok", "handler_error", "upstream_error"):
        try:
            if not guard.enqueue(event):  # the usual case: an enqueue, without a coroutine around it
                await guard.record(event)
        except GuardError as failure:
            # No audit, no access: the result is withheld rather than delivered unrecorded.
            guard.record_nowait(
                replace(event, decision="error", outcome="guard_error", reasons=(failure.reason,))
            )
            return MCPError(failure.code, failure.public_message, failure.data)
    elif status in ("cancelled", "timeout"):
        with anyio.CancelScope(shield=True):
            try:
                await guard.record(event)
            except GuardError:
                guard.record_nowait(event)
    else:
        guard.record_nowait(event)
    return raised


def _classify_end(
    trail: _Trail, exc: BaseException | None
) -> tuple[Status, BaseException, GuardError | None]:
    """The exchange's status, the exception to raise, and the guard error behind a refusal."""
    if exc is None:
        return "ok", _NO_ERROR, None
    if isinstance(exc, GuardError):
        status: Status = "guard_error" if isinstance(exc, GuardUnavailable) else "refused"
        if exc.decision is not None and trail.decision is None:
            trail.decision = exc.decision
        return status, MCPError(exc.code, exc.public_message, exc.data), exc
    if not isinstance(exc, Exception) or isinstance(exc, anyio.get_cancelled_exc_class()):
        return "cancelled", exc, None
    if isinstance(exc, TimeoutError) or _sdk_timeout(exc):
        return "timeout", exc, None
    if trail.decision is None:
        # A stage before the call failed in a way no stage anticipated: fail closed.
        guard_error = GuardUnavailable(f"{type(exc).__name__}: {exc}")
        return "guard_error", MCPError(guard_error.code, guard_error.public_message), guard_error
    return ("handler_error" if trail.exchange.direction == "inbound" else "upstream_error"), exc, None


_NO_ERROR = RuntimeError("no error")


def _sdk_timeout(exc: BaseException) -> bool:
    """The SDK's own request timeout; its code (-32001) alone would also match a peer's auth refusal."""
    if not isinstance(exc, MCPError) or exc.code != REQUEST_TIMEOUT:
        return False
    return "timed out" in exc.error.message.lower()


def _event(
    guard: Guard, trail: _Trail, status: Status, error: GuardError | None, exc: BaseException | None
) -> AuditEvent:
    ex = trail.exchange
    decision = trail.decision
    if error is not None and error.decision is not None:
        decision = error.decision  # a refused allow keeps its rule and redactions in the audit
    outcome = _outcome(trail, status)
    reasons: tuple[str, ...] = (error.reason,) if error is not None else ()
    code = error.code if error is not None else None
    # An admitted call that ends badly keeps what its admission said (a budget's use after the charge).
    kept = decision.reasons if decision is not None and decision is not _DELEGATED else ()
    if status == "cancelled":
        reasons = ("cancelled by the caller while it ran", *kept)
    elif error is None and exc is not None:
        who = "handler" if ex.direction == "inbound" else "server"
        reasons = (f"{who} raised {type(exc).__name__}: {exc}", *kept)
        code = exc.code if isinstance(exc, MCPError) else None
    summary = trail.summary
    if summary is None and status in ("handler_error", "upstream_error"):
        summary = ResultSummary(is_error=True)
    if summary is not None and summary.hidden_why and not reasons and decision is not None:
        # A list says which items the policy hid and by which rule, next to the decision's reason.
        reasons = (*decision.reasons, _hidden_reason(summary))
    own = guard.event(
        ex.method,
        outcome,
        principal=trail.principal,
        request=trail.request,
        context=ex.context,
        verdict=decision if decision is not _DELEGATED else None,
        reasons=reasons,
        error_code=code,
        result=summary,
        started=trail.started,
        kind="notification" if ex.notification else "request",
        direction=ex.direction,
        server=ex.server,
        status=status,
        event_id=trail.event_id,
    )
    nested = _merged(trail.nested)
    if nested is None or error is not None:
        return own
    if status == "handler_error" and nested.outcome not in (None, "ok"):
        status = nested.outcome  # the error came from the nested run, which knows what it was
    # The nested run decided (upstream name, its own target name, rule): the event is the
    # downstream request's, with its own identity, timing and outcome.
    return replace(
        nested,
        id=own.id,
        time=own.time,
        event=own.event,
        method=own.method,
        direction=own.direction,
        latency_ms=own.latency_ms,
        outcome=status,
        reasons=nested.reasons or own.reasons,
    )


def _decided(trail: _Trail) -> bool:
    """The policy decided this exchange (a targeted request, not housekeeping, a list or a delegation)."""
    request = trail.request
    if trail.decision is None or request is None:
        return False
    if request.kind is None or request.target is None or request.action == "list":
        return False
    # A delegated request is decided by its nested runs (counted there) unless refused before them.
    return trail.decision is not _DELEGATED or trail.status == "refused"


def _outcome(trail: _Trail, status: Status) -> Outcome:
    """The event's decision: ``allow`` whatever the handler did, ``deny`` or ``error`` for refusals."""
    if status in ("cancelled", "timeout") and trail.decision is None:
        return "deny"  # it ended before any decision: it never ran
    return "error" if status == "guard_error" else "deny" if status == "refused" else "allow"


def _merged(nested: list[AuditEvent]) -> AuditEvent | None:
    """Nested runs' events as one: a single one as is, several (a portal list) summed up."""
    if len(nested) <= 1:
        return nested[0] if nested else None
    refused = next((e for e in nested if e.decision != "allow"), None)
    if refused is not None:
        return refused
    items = withheld = hidden = 0
    findings: list[Any] = []
    why: list[str] = []
    for event in nested:
        if event.result is not None:
            items += event.result.items or 0
            withheld += event.result.withheld
            hidden += event.result.hidden
            findings.extend(event.result.findings)
            why.extend(event.result.hidden_why)
    return replace(
        nested[0],
        server=None,
        target=None,
        kind=None,
        rule=None,
        arguments=None,
        reasons=(f"{len(nested)} upstream(s)",)
        + ((f"{hidden} item(s) hidden by policy: " + "; ".join(why),) if why else ()),
        result=ResultSummary(
            items=items, withheld=withheld, findings=tuple(findings), hidden=hidden, hidden_why=tuple(why)
        ),
    )


def _hidden_reason(summary: ResultSummary) -> str:
    return f"{summary.hidden} item(s) hidden by policy: " + "; ".join(summary.hidden_why)


__all__ = [
    "Admitted",
    "Call",
    "Describe",
    "Direction",
    "Exchange",
    "ListLookup",
    "hand_off",
    "route",
    "run",
    "settle",
]
