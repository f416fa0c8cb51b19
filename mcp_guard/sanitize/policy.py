"""What to do with a verdict: per-server actions for lists and results.

The sanitizer only judges; this module applies a :class:`SanitizePolicy` to a
wire-format result (camelCase dict, as ``call_next`` returns it). It never
raises on hostile input: a sanitizer that fails, or a result of the wrong
shape, withholds rather than passes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from ..errors import ConfigError
from ..model import Finding, ScanResult
from ..protocols import Sanitizer

#: Kind of item -> key of the list result that carries it.
LIST_KEYS = {
    "tool": "tools",
    "prompt": "prompts",
    "resource": "resources",
    "resource_template": "resourceTemplates",
}


class SanitizePolicy(BaseModel):
    """Actions for one server.

    ``on_block``: ``withhold`` removes blocked items from lists and refuses
    blocked results; ``report`` lets them through with findings. ``on_flag``:
    ``pass`` (audit only), ``strip`` (pass the rewritten item: invisible
    characters removed, secrets masked) or ``withhold``. ``shadow`` reports
    everything and changes nothing. ``redact_results`` masks secrets in
    results whatever the verdict. ``approve_new``: after a server's first
    approval, ``auto`` pins new items on sight, ``require`` withholds them
    until ``mcp-guard pins approve``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    on_block: Literal["withhold", "report"] = "withhold"
    on_flag: Literal["pass", "strip", "withhold"] = "pass"
    shadow: bool = False
    redact_results: bool = True
    scan_results: bool = True
    pin: bool = True
    approve_new: Literal["auto", "require"] = "auto"


class SanitizeConfig(BaseModel):
    """``[sanitize]`` of a guard config: a default policy and per-server overrides."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default: SanitizePolicy = SanitizePolicy()
    servers: dict[str, SanitizePolicy] = {}

    def for_server(self, server: str) -> SanitizePolicy:
        return self.servers.get(server, self.default)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, file: str | None = None) -> SanitizeConfig:
        """Validate a parsed ``[sanitize]`` table; errors name the file and the field."""
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            first = exc.errors()[0]
            path = ".".join(str(p) for p in ("sanitize", *first["loc"]))
            raise ConfigError(first["msg"], file=file, field=path) from None


@dataclass(frozen=True, slots=True)
class ListOutcome:
    """A filtered list result; ``findings`` maps item name (or URI) to what was found."""

    result: dict[str, Any]
    findings: dict[str, tuple[Finding, ...]] = field(default_factory=dict)
    withheld: tuple[str, ...] = ()

    @property
    def all_findings(self) -> tuple[Finding, ...]:
        return tuple(f for fs in self.findings.values() for f in fs)


@dataclass(frozen=True, slots=True)
class ResultOutcome:
    """A possibly rewritten call result; ``refused`` means the guard must answer with an error instead."""

    result: Any
    findings: tuple[Finding, ...] = ()
    refused: bool = False


def item_label(item: Any, index: int) -> str:
    """How findings and audit events name an item: its name, else URI, else its position."""
    if isinstance(item, Mapping):
        for key in ("name", "uri", "uriTemplate"):
            value = item.get(key)
            if isinstance(value, str):
                return value
    return f"#{index}"


def _scan_all(sanitizer: Sanitizer, kind: str, items: Sequence[Any]) -> list[ScanResult]:
    scan_items = getattr(sanitizer, "scan_items", None)
    results = scan_items(kind, items) if callable(scan_items) else [sanitizer.scan(kind, i) for i in items]
    if len(results) != len(items):
        raise ValueError("sanitizer returned a different number of results than items")
    return list(results)


def _error(message: str) -> tuple[Finding, ...]:
    return (Finding("sanitizer.error", "high", "/", message),)


def apply_to_list(
    sanitizer: Sanitizer, policy: SanitizePolicy, kind: str, result: Mapping[str, Any]
) -> ListOutcome:
    """Scan the items of a ``tools/list``-style result and keep what the policy allows."""
    key = LIST_KEYS.get(kind)
    if key is None:
        raise ValueError(f"not a list kind: {kind!r}")
    items = result.get(key) if isinstance(result, Mapping) else None
    base = dict(result) if isinstance(result, Mapping) else {}
    if not isinstance(items, list):
        base[key] = []
        return ListOutcome(base, {"#list": _error(f"{key} is not a list")}, ("#list",))
    try:
        scans = _scan_all(sanitizer, kind, items)
    except Exception as exc:  # a failing sanitizer withholds everything
        base[key] = [] if not policy.shadow else list(items)
        labels = tuple(item_label(i, n) for n, i in enumerate(items))
        return ListOutcome(base, {"#list": _error(f"scan failed: {exc}")}, () if policy.shadow else labels)
    kept: list[Any] = []
    findings: dict[str, tuple[Finding, ...]] = {}
    withheld: list[str] = []
    for index, (item, scan) in enumerate(zip(items, scans, strict=True)):
        label = item_label(item, index)
        if scan.findings:
            findings[label] = tuple(scan.findings)
        action = verdict_action(policy, scan)
        if action == "withhold":
            withheld.append(label)
        elif action == "rewrite":
            kept.append(scan.item)
        else:
            kept.append(item)
    base[key] = kept
    return ListOutcome(base, findings, tuple(withheld))


def apply_to_result(sanitizer: Sanitizer, policy: SanitizePolicy, kind: str, result: Any) -> ResultOutcome:
    """Scan one call/get/read result; refuse or rewrite it as the policy says."""
    if not policy.scan_results:
        return ResultOutcome(result)
    try:
        if not isinstance(result, Mapping):
            raise TypeError(f"{kind} is not a JSON object")
        scan = sanitizer.scan(kind, result)
    except Exception as exc:
        return ResultOutcome(result, _error(f"scan failed: {exc}"), refused=not policy.shadow)
    action = verdict_action(policy, scan)
    if action == "withhold":
        return ResultOutcome(result, scan.findings, refused=True)
    if scan.item is not None and not policy.shadow and (action == "rewrite" or policy.redact_results):
        return ResultOutcome(scan.item, scan.findings)
    return ResultOutcome(result, scan.findings)


def verdict_action(policy: SanitizePolicy, scan: ScanResult) -> Literal["keep", "rewrite", "withhold"]:
    """What ``policy`` does with one scanned item: keep it, pass its rewritten form, or withhold it."""
    if policy.shadow:
        return "keep"
    verdict = scan.verdict
    if verdict == "block":
        return "withhold" if policy.on_block == "withhold" else "keep"
    if verdict == "flag":
        if policy.on_flag == "withhold":
            return "withhold"
        if policy.on_flag == "strip" and scan.item is not None:
            return "rewrite"
    return "keep"
