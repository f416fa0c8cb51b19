"""The policy file format as pydantic models (contract: DESIGN.md section 3).

Unknown keys are errors (a misspelt ``tool =`` must not silently grant
nothing or everything), and so are empty selector lists: an omitted selector
matches anything, an empty one would match nothing, and a policy author who
writes ``roles = []`` almost certainly meant neither.
"""

from __future__ import annotations

import re
import string
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ..classify import canonical_uri
from ..errors import AccessDenied

__all__ = [
    "ACTIONS",
    "ANNOTATION_TYPES",
    "KIND_ACTIONS",
    "ApprovalModel",
    "BudgetModel",
    "FlowModel",
    "LabelModel",
    "LimitModel",
    "PolicyDocument",
    "RoleModel",
    "RuleModel",
    "ServerModel",
    "TenantModel",
    "parse_window",
]

#: Actions a rule can name, and the target kinds each applies to.
KIND_ACTIONS: dict[str, frozenset[str]] = {
    "tool": frozenset({"call"}),
    "prompt": frozenset({"get", "complete"}),
    "resource": frozenset({"read", "subscribe", "complete"}),
}
ACTIONS = ("call", "get", "read", "subscribe", "complete")
Action = Literal["call", "get", "read", "subscribe", "complete"]
Dimension = Literal["subject", "tenant", "server", "target"]

_WINDOW = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
_ID = re.compile(r"^[A-Za-z0-9_.:@/-]+$")


def parse_window(value: Any) -> float:
    """``"30s"``, ``"1m"``, ``"2h"``, ``"1d"``, ``"500ms"`` or a number of seconds; must be positive."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like '30s', '5m', '1h'")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and (m := _WINDOW.match(value)):
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    else:
        raise ValueError(
            f"invalid duration {value!r}: use a number of seconds or e.g. '30s', '5m', '1h', '1d'"
        )
    if seconds <= 0:
        raise ValueError("duration must be positive")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_window)]
Name = Annotated[str, Field(min_length=1)]


def _nonempty(value: list[str] | None) -> list[str] | None:
    if value is not None and len(value) == 0:
        raise ValueError("an empty list matches nothing; omit the field to match anything")
    return value


def _canonical_resources(value: list[str] | None) -> list[str] | None:
    """Resource patterns must be spelled as requests are matched (see ``classify.canonical_uri``)."""
    for pattern in value or ():
        try:
            canonical = canonical_uri(pattern)
        except AccessDenied as exc:
            raise ValueError(
                f"resource pattern {pattern!r} never matches: such a request is always refused ({exc.reason})"
            ) from None
        if canonical != pattern:
            raise ValueError(
                f"resource pattern {pattern!r} never matches: URIs are matched in canonical form"
                f" (did you mean {canonical!r}?)"
            )
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class _Selectors(_Model):
    subjects: list[Name] | None = None
    roles: list[Name] | None = None
    groups: list[Name] | None = None
    tenants: list[Name] | None = None
    servers: list[Name] | None = None
    tools: list[Name] | None = None
    prompts: list[Name] | None = None
    resources: list[Name] | None = None
    actions: list[Action] | None = None

    _check_nonempty = field_validator(
        "subjects", "roles", "groups", "tenants", "servers", "tools", "prompts", "resources", "actions"
    )(_nonempty)
    _check_resources = field_validator("resources")(_canonical_resources)

    def kinds(self) -> dict[str, list[str]]:
        named = {"tool": self.tools, "prompt": self.prompts, "resource": self.resources}
        return {k: v for k, v in named.items() if v is not None}

    @model_validator(mode="after")
    def _actions_fit_kinds(self) -> _Selectors:
        kinds = self.kinds()
        if self.actions is not None and kinds:
            usable = set().union(*(KIND_ACTIONS[k] for k in kinds))
            for action in self.actions:
                if action not in usable:
                    names = "/".join(k + "s" for k in kinds)
                    raise ValueError(f"action {action!r} never applies to {names} (it would never match)")
        return self


_PLACEHOLDER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*$")


def check_confirm(value: str) -> str:
    """A confirm message may name arguments as ``{path}``; anything else in braces is a typo.

    Checked at load so a message never fails (or leaks ``{...}`` syntax) at call time.
    """
    if not value.strip():
        raise ValueError("an empty confirmation message tells the user nothing")
    try:
        parts = list(string.Formatter().parse(value))
    except ValueError as exc:
        raise ValueError(f"invalid message: {exc} (write {{{{ and }}}} for literal braces)") from None
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if not _PLACEHOLDER.match(name) or spec or conversion:
            raise ValueError(
                f"placeholder {{{name}{'!' + conversion if conversion else ''}{':' + spec if spec else ''}}}"
                " must name an argument, like {amount} or {to.account}"
            )
    return value


Message = Annotated[str, BeforeValidator(lambda v: check_confirm(v) if isinstance(v, str) else v)]


class ApprovalModel(_Model):
    """``approval = { approvers = [...], timeout = "10m", wait = "30s" }`` on an allow rule."""

    approvers: list[Name]
    timeout: Duration = 600.0
    wait: Annotated[float, BeforeValidator(lambda v: 0.0 if v in (0, "0", "0s") else parse_window(v))] = 0.0

    _check_nonempty = field_validator("approvers")(_nonempty)

    @model_validator(mode="after")
    def _wait_within_timeout(self) -> ApprovalModel:
        if self.wait > self.timeout:
            raise ValueError("'wait' is longer than 'timeout': the request would expire while the call waits")
        return self


class RuleModel(_Selectors):
    id: Name
    effect: Literal["allow", "deny"]
    description: str | None = None
    shadow: bool = False
    when: str | None = None
    redact: list[Name] | None = None
    step_up: Duration | None = None
    confirm: Message | None = None
    approval: ApprovalModel | None = None
    cross_tenant: bool = False
    #: Matches targets carrying any of these ``[[labels]]``.
    labels: list[Name] | None = None
    #: Matches targets whose (pinned) MCP tool annotations hold these values, checked at use time.
    annotations: dict[str, Any] | None = None

    _check_labels = field_validator("labels")(_nonempty)

    @field_validator("annotations", mode="before")
    @classmethod
    def _annotations(cls, value: Any) -> Any:
        return check_annotations(value)

    @field_validator("id")
    @classmethod
    def _id_chars(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError("rule ids use letters, digits and _ . : @ / - only")
        return value

    @model_validator(mode="after")
    def _allow_only(self) -> RuleModel:
        if self.effect == "deny":
            for name in ("redact", "step_up", "confirm", "approval"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name!r} is an obligation of allow rules; a deny rule cannot carry it")
            if self.cross_tenant:
                raise ValueError("'cross_tenant' only makes sense on allow rules")
        if self.annotations is not None and self.tools is None and (self.prompts or self.resources):
            raise ValueError(
                "'annotations' are MCP tool annotations: this rule names no tools (it would never match)"
            )
        return self


class LimitModel(_Selectors):
    id: Name
    per: list[Dimension] = Field(default_factory=lambda: list[Dimension](["subject"]))
    requests: int = Field(gt=0)
    window: Duration
    description: str | None = None

    @field_validator("per")
    @classmethod
    def _per(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("name at least one of subject, tenant, server, target")
        if len(set(value)) != len(value):
            raise ValueError("duplicate dimension")
        return value


_PERIOD = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w)\s*$")
_PERIOD_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_period(value: Any) -> int:
    """A budget period in whole seconds: ``"1h"``, ``"1d"``, ``"1w"`` or a number of seconds."""
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    elif isinstance(value, str) and (m := _PERIOD.match(value)):
        seconds = int(m.group(1)) * _PERIOD_UNITS[m.group(2)]
    else:
        raise ValueError(f"invalid period {value!r}: use whole seconds or e.g. '1h', '1d', '1w'")
    if seconds <= 0:
        raise ValueError("period must be positive")
    return seconds


class BudgetModel(_Selectors):
    """``[[budgets]]``: units per subject or tenant per fixed period (``mcp_guard.budgets``)."""

    id: Name
    per: Literal["subject", "tenant"] = "subject"
    period: Annotated[int, BeforeValidator(parse_period)]
    limit: int = Field(gt=0)
    cost: dict[Name, Annotated[int, Field(ge=0)]] = Field(default_factory=dict)
    description: str | None = None

    @field_validator("cost")
    @classmethod
    def _costs_fit(cls, value: dict[str, int], info: ValidationInfo) -> dict[str, int]:
        limit = info.data.get("limit")
        for pattern, units in value.items():
            if isinstance(limit, int) and units > limit:
                raise ValueError(f"{pattern!r} = {units} exceeds limit = {limit}: such calls never run")
        return value


class RoleModel(_Model):
    inherits: list[Name] = Field(default_factory=list)
    subjects: list[Name] = Field(default_factory=list)
    groups: list[Name] = Field(default_factory=list)
    description: str | None = None


class ServerModel(_Model):
    tenant: Name | None = None
    description: str | None = None


class TenantModel(_Model):
    servers: list[Name] = Field(default_factory=list)
    tools: list[Name] = Field(default_factory=list)
    prompts: list[Name] = Field(default_factory=list)
    resources: list[Name] = Field(default_factory=list)
    description: str | None = None

    _check_resources = field_validator("resources")(_canonical_resources)


# ---- [[labels]] and [[flows]]: labels are static per target; flows remember what a caller did.
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")

#: The MCP tool annotations a rule can match, with the JSON type each holds.
ANNOTATION_TYPES: dict[str, type] = {
    "readOnlyHint": bool,
    "destructiveHint": bool,
    "idempotentHint": bool,
    "openWorldHint": bool,
    "title": str,
}


def _label_names(value: Any) -> Any:
    if isinstance(value, list):
        for name in value:
            if isinstance(name, str) and not _LABEL.match(name):
                raise ValueError(
                    f"label {name!r}: labels are plain names (letters, digits, _ . : -), never globs"
                )
        if not value:
            raise ValueError("an empty list matches nothing; omit the field to match anything")
    return value


LabelNames = Annotated[list[Annotated[str, Field(min_length=1)]], BeforeValidator(_label_names)]


def check_annotations(value: Any) -> Any:
    """``annotations = { readOnlyHint = true }``: known MCP annotation names with values of their type."""
    if not isinstance(value, dict):
        return value
    if not value:
        raise ValueError("an empty table matches anything; omit the field instead")
    import difflib

    for key, item in value.items():
        expected = ANNOTATION_TYPES.get(key)
        if expected is None:
            close = difflib.get_close_matches(str(key), list(ANNOTATION_TYPES), n=1, cutoff=0.6)
            hint = f" (did you mean `{close[0]}`?)" if close else ""
            raise ValueError(f"unknown tool annotation {key!r}{hint}; known: {', '.join(ANNOTATION_TYPES)}")
        if type(item) is not expected:
            raise ValueError(f"annotation {key!r} holds a {expected.__name__}, not {type(item).__name__}")
    return value


class LabelModel(_Model):
    """``[[labels]]``: these labels for every target its selectors (servers, tools, ...) match."""

    servers: list[Annotated[str, Field(min_length=1)]] | None = None
    tools: list[Annotated[str, Field(min_length=1)]] | None = None
    prompts: list[Annotated[str, Field(min_length=1)]] | None = None
    resources: list[Annotated[str, Field(min_length=1)]] | None = None
    labels: LabelNames
    description: str | None = None

    _check_nonempty = field_validator("servers", "tools", "prompts", "resources")(_nonempty)

    @model_validator(mode="after")
    def _something(self) -> LabelModel:
        if self.servers is None and self.tools is None and self.prompts is None and self.resources is None:
            raise ValueError(
                "name servers, tools, prompts or resources: a label on everything tells nothing apart"
            )
        return self


class FlowModel(_Model):
    """``[[flows]]``: after an allowed call labelled ``after``, calls labelled ``deny`` are refused."""

    id: Annotated[str, Field(min_length=1)]
    after: LabelNames
    deny: LabelNames
    scope: Literal["session", "subject", "tenant"] = "subject"
    window: Duration
    effect: Literal["deny", "confirm", "approval"] = "deny"
    #: The question put to the caller with ``effect = "confirm"`` (``{argument}`` placeholders).
    message: Message | None = None
    #: Who decides with ``effect = "approval"``: the same table as a rule's ``approval``.
    approval: ApprovalModel | None = None
    description: str | None = None

    @field_validator("id")
    @classmethod
    def _id_chars(cls, value: str) -> str:
        if not re.match(r"^[A-Za-z0-9_.:@/-]+$", value):
            raise ValueError("flow ids use letters, digits and _ . : @ / - only")
        return value

    @model_validator(mode="after")
    def _effect_fields(self) -> FlowModel:
        if self.effect == "approval" and self.approval is None:
            raise ValueError("effect = 'approval' needs approval = { approvers = [...] }")
        if self.effect != "approval" and self.approval is not None:
            raise ValueError("'approval' only applies with effect = 'approval'")
        if self.effect != "confirm" and self.message is not None:
            raise ValueError("'message' is the question of effect = 'confirm'")
        return self


class PolicyDocument(_Model):
    version: Literal[1] = 1
    default: Literal["deny", "allow"] = "deny"
    mode: Literal["enforce", "shadow"] = "enforce"
    timezone: str | None = None
    description: str | None = None
    roles: dict[Name, RoleModel] = Field(default_factory=dict)
    servers: dict[Name, ServerModel] = Field(default_factory=dict)
    tenants: dict[Name, TenantModel] = Field(default_factory=dict)
    rules: list[RuleModel] = Field(default_factory=list)
    limits: list[LimitModel] = Field(default_factory=list)
    budgets: list[BudgetModel] = Field(default_factory=list)
    labels: list[LabelModel] = Field(default_factory=list)
    flows: list[FlowModel] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(
                    f"unknown time zone {value!r} (use an IANA name like 'Europe/Paris')"
                ) from None
        return value
