"""Immutable value objects that flow through the guard chain.

Everything else in the package depends on this module and it depends on nothing
but the standard library, so plugins can be written and tested without the MCP
SDK. Objects are frozen: a stage can never change what an earlier stage decided,
only produce a new value.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal, TypeVar

Severity = Literal["low", "medium", "high"]
Verdict = Literal["clean", "flag", "block"]
Effect = Literal["allow", "deny"]
#: What an audit record says happened: allowed, refused, or refused because the guard failed.
Outcome = Literal["allow", "deny", "error"]
#: How the exchange ended, beside the decision: ``ok``; ``refused`` by a stage; the handler
#: (inbound) or the upstream server (outbound) answered an error; it timed out; the caller
#: cancelled it (or dropped the response) while it ran; or a guard stage failed.
Status = Literal["ok", "refused", "handler_error", "upstream_error", "timeout", "cancelled", "guard_error"]

#: Target kinds a policy rule can name.
TargetKind = Literal["tool", "prompt", "resource"]

_EMPTY: Mapping[str, Any] = MappingProxyType({})

# Event ids: a random per-process prefix and a counter. Unique across processes
# and restarts (the prefix) and ordered within one process, at a fraction of
# the cost of a uuid4 per event.
_ID_PREFIX = uuid.uuid4().hex[:16]
_ID_COUNTER = itertools.count(1)


def _next_event_id() -> str:
    return f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"


def new_event_id() -> str:
    """A fresh audit event id (the pipeline takes one before a call runs, so flows can name it)."""
    return _next_event_id()


def frozen_map(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """Return a read-only view so a shared principal cannot be mutated by a plugin."""
    if not value:
        return _EMPTY
    if isinstance(value, MappingProxyType):
        return value
    return MappingProxyType(dict(value))


_T = TypeVar("_T")


class _Factory:
    """The default of a field whose value a factory makes per instance (shown as in dataclasses)."""

    def __repr__(self) -> str:
        return "<factory>"


_FACTORY: Any = _Factory()


def quick_init(cls: type[_T]) -> type[_T]:
    """Give a frozen, slotted dataclass an ``__init__`` that stores through its slot descriptors.

    The ``__init__`` a frozen dataclass generates stores every field with
    ``object.__setattr__``, a generic attribute lookup per field; calling each
    slot's own descriptor stores the same value in about half the time. Several
    of these objects are built for every request (an audit event has 28 fields),
    which made construction a tenth of the guard's own work per call. The
    signature, defaults, factories and ``__post_init__`` stay those the dataclass
    declares (generated the way :mod:`dataclasses` generates its own), and
    instances stay frozen: only this ``__init__`` holds the setters.
    """
    namespace: dict[str, Any] = {"_FACTORY": _FACTORY}
    params: list[str] = []
    body: list[str] = []
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if not f.init or f.kw_only:
            raise TypeError(f"quick_init: field {cls.__name__}.{f.name} is not a plain init field")
        name = f.name
        namespace[f"_set_{name}"] = cls.__dict__[name].__set__
        if f.default is not dataclasses.MISSING:
            namespace[f"_default_{name}"] = f.default
            params.append(f"{name}=_default_{name}")
        elif f.default_factory is not dataclasses.MISSING:
            namespace[f"_factory_{name}"] = f.default_factory
            params.append(f"{name}=_FACTORY")
            body.append(f"if {name} is _FACTORY: {name} = _factory_{name}()")
        else:
            params.append(name)
        body.append(f"_set_{name}(self, {name})")
    if hasattr(cls, "__post_init__"):
        body.append("self.__post_init__()")
    source = f"def __init__(self, {', '.join(params)}):\n" + "".join(f"    {line}\n" for line in body)
    exec(source, namespace)  # field names only, as dataclasses itself does
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__annotations__ = dict(cls.__init__.__annotations__)
    init.__module__ = cls.__module__
    setattr(cls, "__init__", init)  # noqa: B010 - mypy cannot follow an assigned __init__
    return cls


@quick_init
@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, as established by an authenticator.

    ``expires_at`` (epoch seconds) bounds how long the guard may cache this
    principal for its credential; ``credential_id`` (API key id, JWT ``jti``)
    is what revocation lists name.
    """

    subject: str
    tenant: str | None = None
    roles: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    scopes: frozenset[str] = frozenset()
    auth_method: str = "none"
    mfa: bool = False
    amr: tuple[str, ...] = ()
    auth_time: datetime | None = None
    ip: str | None = None
    country: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    expires_at: float | None = None
    credential_id: str | None = None
    issuer: str | None = None

    def __post_init__(self) -> None:
        # Values already of the stored type (a ``replace`` of a cached principal) are kept as they are.
        if type(self.roles) is not frozenset:
            object.__setattr__(self, "roles", frozenset(self.roles))
        if type(self.groups) is not frozenset:
            object.__setattr__(self, "groups", frozenset(self.groups))
        if type(self.scopes) is not frozenset:
            object.__setattr__(self, "scopes", frozenset(self.scopes))
        if type(self.amr) is not tuple:
            object.__setattr__(self, "amr", tuple(self.amr))
        if type(self.attributes) is not MappingProxyType:
            object.__setattr__(self, "attributes", frozen_map(self.attributes))

    def with_network(self, ip: str | None, country: str | None = None) -> Principal:
        """Copy carrying the source address of the current request (not cached with the token)."""
        from dataclasses import replace

        return replace(self, ip=ip, country=country if country is not None else self.country)

    def summary(self) -> dict[str, Any]:
        """The fields an audit event keeps about a principal (``country`` only when known: the
        anomaly detectors compare it with the subject's usual ones; ``issuer`` only when there
        is one: a subject name is one person only per issuer, and the detectors and the holds of
        the anomaly monitor must tell two issuers' namesakes apart)."""
        out = {
            "subject": self.subject,
            "tenant": self.tenant,
            "roles": sorted(self.roles),
            "auth_method": self.auth_method,
            "mfa": self.mfa,
        }
        if self.issuer is not None:
            out["issuer"] = self.issuer
        if self.country is not None:
            out["country"] = self.country
        return out


@quick_init
@dataclass(frozen=True, slots=True)
class RequestContext:
    """Facts about the transport and time of one request, not about the caller."""

    time: datetime
    transport: str = "memory"
    session_id: str | None = None
    request_id: str | int | None = None
    protocol_version: str | None = None
    client_name: str | None = None
    client_version: str | None = None
    source_ip: str | None = None


@quick_init
@dataclass(frozen=True, slots=True)
class AccessRequest:
    """A classified MCP message: what the principal is trying to do, and to what.

    ``action`` is one of ``call``, ``get``, ``read``, ``subscribe``,
    ``complete``, ``list``, ``session`` (initialize/ping/cancel and other
    protocol housekeeping), ``log`` or ``notify``. ``kind`` and ``target``
    are set when the action aims at one tool, prompt or resource.
    ``tags`` and ``annotations`` describe that target as its server declares
    it (FastMCP tags, MCP tool annotations such as ``readOnlyHint``), when the
    integration can tell; policy conditions read them as ``request.tags`` and
    ``request.annotations``.
    """

    method: str
    action: str
    server: str
    kind: TargetKind | None = None
    target: str | None = None
    arguments: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    context: RequestContext | None = None
    tags: frozenset[str] = frozenset()
    annotations: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)

    def __post_init__(self) -> None:
        # A read-only view is kept as it is (frozen_map would return it); anything else is copied.
        if type(self.arguments) is not MappingProxyType:
            object.__setattr__(self, "arguments", frozen_map(self.arguments))
        if type(self.tags) is not frozenset:
            object.__setattr__(self, "tags", frozenset(self.tags))
        if type(self.annotations) is not MappingProxyType:
            object.__setattr__(self, "annotations", frozen_map(self.annotations))


@quick_init
@dataclass(frozen=True, slots=True)
class Obligation:
    """Something an allow decision requires of later stages.

    Built-in kinds: ``redact`` (``fields``: argument paths to mask in audit)
    and ``step_up`` (``max_age``: seconds since an MFA authentication).
    """

    kind: str
    params: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", frozen_map(self.params))


@quick_init
@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of policy evaluation, explainable by rule id.

    ``shadow`` marks a decision that was evaluated but not enforced (global
    shadow mode, or a deciding rule in shadow); ``would_allow`` then records
    what enforcement would have done.
    """

    allowed: bool
    rule: str | None = None
    reasons: tuple[str, ...] = ()
    obligations: tuple[Obligation, ...] = ()
    shadow: bool = False
    would_allow: bool | None = None
    retry_after: float | None = None
    #: The approval request that let this call run (or refused it), as its audit fields.
    approval: Mapping[str, Any] | None = None
    #: The caller's answer to the rule's ``confirm`` question, as its audit fields.
    confirmation: Mapping[str, Any] | None = None
    #: The ``[[flows]]`` rule that refused (or held) the call and the earlier call behind it.
    flow: Mapping[str, Any] | None = None

    @property
    def effect(self) -> Effect:
        return "allow" if self.allowed else "deny"

    @classmethod
    def allow(cls, rule: str | None = None, *reasons: str) -> Decision:
        return cls(True, rule, tuple(reasons))

    @classmethod
    def deny(cls, rule: str | None = None, *reasons: str) -> Decision:
        return cls(False, rule, tuple(reasons))


@quick_init
@dataclass(frozen=True, slots=True)
class Finding:
    """One thing a sanitizer noticed in a field of an item (JSON Pointer path)."""

    rule: str
    severity: Severity
    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"rule": self.rule, "severity": self.severity, "field": self.field, "message": self.message}


def verdict_of(findings: tuple[Finding, ...] | list[Finding]) -> Verdict:
    """``block`` if any finding is high severity, ``flag`` for weaker ones, else ``clean``."""
    if not findings:
        return "clean"
    if any(f.severity == "high" for f in findings):
        return "block"
    return "flag"


@quick_init
@dataclass(frozen=True, slots=True)
class ScanResult:
    """What a sanitizer returns: findings, and optionally a rewritten item (stripped, redacted)."""

    findings: tuple[Finding, ...] = ()
    item: Any = None

    @property
    def verdict(self) -> Verdict:
        return verdict_of(self.findings)


@quick_init
@dataclass(frozen=True, slots=True)
class ResultSummary:
    """What the audit trail keeps about a response: its size and shape, never its content."""

    size: int = 0
    is_error: bool = False
    items: int | None = None
    #: Items a sanitizer verdict or a changed/unapproved pin kept from everyone.
    withheld: int = 0
    findings: tuple[Finding, ...] = ()
    #: Items of a list the policy hides from this caller (not a verdict on the item).
    hidden: int = 0
    #: Why each hidden item is hidden (``"name: rule X"`` / ``"name: default deny"``): the event's reason.
    hidden_why: tuple[str, ...] = ()


#: The record kinds the trail holds: ``request`` (an MCP message), ``notification``, ``authn``
#: (a credential refused before any MCP method ran), ``lifecycle`` (sessions), ``console`` and
#: ``admin`` (actions in the admin console and by admin commands), ``anomaly`` (a detector's finding).
EVENT_KINDS = ("request", "notification", "authn", "lifecycle", "console", "admin", "anomaly")


@quick_init
@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One record per decision. Serialization, redaction and chaining happen in the audit pipeline.

    ``decision`` is ``allow``, ``deny`` or ``error`` (the guard failed and
    denied); ``event`` names the kind of record (one of :data:`EVENT_KINDS`).
    """

    method: str
    decision: Outcome
    event: str = "request"
    id: str = field(default_factory=lambda: _next_event_id())
    time: float = field(default_factory=time.time)
    session_id: str | None = None
    request_id: str | int | None = None
    principal: Mapping[str, Any] | None = None
    source_ip: str | None = None
    transport: str | None = None
    client_name: str | None = None
    client_version: str | None = None
    server: str | None = None
    kind: str | None = None
    target: str | None = None
    rule: str | None = None
    reasons: tuple[str, ...] = ()
    shadow: bool = False
    arguments: Mapping[str, Any] | None = None
    redact_fields: tuple[str, ...] = ()
    result: ResultSummary | None = None
    error_code: int | None = None
    latency_ms: float | None = None
    direction: Literal["inbound", "outbound"] = "inbound"
    outcome: Status | None = None
    #: Approval request behind the call: id, status, requested_by, decided_by, arguments_sha256.
    approval: Mapping[str, Any] | None = None
    #: The caller's confirmation: by (subject), answer, arguments_sha256.
    confirmation: Mapping[str, Any] | None = None
    #: The flow rule behind a refusal or a hold: id, effect, scope, after_event, after_label ...
    flow: Mapping[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (arguments are not yet redacted; the pipeline does that)."""
        result = None
        if self.result is not None:
            result = {
                "size": self.result.size,
                "is_error": self.result.is_error,
                "items": self.result.items,
                "withheld": self.result.withheld,
                "hidden": self.result.hidden,
                "findings": [f.as_dict() for f in self.result.findings],
            }
        record = {
            "id": self.id,
            "time": self.time,
            "event": self.event,
            "session_id": self.session_id,
            "request_id": self.request_id,
            "principal": dict(self.principal) if self.principal is not None else None,
            "source_ip": self.source_ip,
            "transport": self.transport,
            "client_name": self.client_name,
            "client_version": self.client_version,
            "method": self.method,
            "direction": self.direction,
            "server": self.server,
            "kind": self.kind,
            "target": self.target,
            "decision": self.decision,
            "rule": self.rule,
            "reasons": list(self.reasons),
            "shadow": self.shadow,
            "arguments": _plain(self.arguments) if self.arguments is not None else None,
            "result": result,
            "error_code": self.error_code,
            "latency_ms": self.latency_ms,
            "outcome": self.outcome,
        }
        if self.approval is not None:  # only on events of calls that needed a person's decision
            record["approval"] = _plain(self.approval)
        if self.confirmation is not None:
            record["confirmation"] = _plain(self.confirmation)
        if self.flow is not None:
            record["flow"] = _plain(self.flow)
        return record


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class LimitSpec:
    """A ``[[limits]]`` entry of the policy: at most ``requests`` per ``window`` seconds.

    ``per`` names the dimensions the counter is keyed by (``subject``,
    ``tenant``, ``server``, ``target``); the selector fields filter which
    requests count, with the same matching as policy rules.
    """

    id: str
    requests: int
    window: float
    per: tuple[str, ...] = ("subject",)
    subjects: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    tenants: tuple[str, ...] = ()
    servers: tuple[str, ...] = ()
    tools: tuple[str, ...] = ()
    prompts: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class BudgetSpec:
    """A ``[[budgets]]`` entry of the policy: at most ``limit`` units per ``period`` seconds.

    Counted per ``subject`` or per ``tenant`` in fixed windows aligned to UTC
    (``docs/policy.md``). ``cost`` maps target globs to units, first match in
    file order; a target no glob matches costs 1.
    """

    id: str
    limit: int
    period: int
    per: Literal["subject", "tenant"] = "subject"
    cost: tuple[tuple[str, int], ...] = ()
    source: str = ""


@dataclass(frozen=True, slots=True)
class BudgetCharge:
    """What one request costs against one budget (``cost`` may be 0: free, still shown)."""

    budget: BudgetSpec
    cost: int
