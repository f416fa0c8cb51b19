"""Reading policy files (TOML, JSON, YAML), validating them and compiling the result.

Every failure is a :class:`~mcp_guard.errors.PolicyError` naming the file,
the line when it can be found, and the field path (``rules[2].when``).
Several files merge: rules and limits keep file order (first file first),
role definitions are united, and top-level settings must agree.
"""

from __future__ import annotations

import difflib
import json
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from .._toml import ConfigErrors, known_fields
from ..errors import PolicyError
from ..model import BudgetSpec, LimitSpec, Obligation
from .budgets import CompiledBudget
from .conditions import ConditionError, compile_condition, condition_functions
from .engine import CompiledPolicy, Rule, _Matcher, _TenantTag
from .flows import FlowSpec, Labeler, LabelTag, annotation_condition
from .globs import nfc
from .locate import Locator, json_lines, toml_lines, yaml_lines
from .rolecheck import role_warnings
from .schema import PolicyDocument

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SELECTOR_FIELDS = (
    "subjects",
    "roles",
    "groups",
    "tenants",
    "servers",
    "tools",
    "prompts",
    "resources",
    "actions",
)

__all__ = [
    "FORMATS",
    "compile_documents",
    "load_policy",
    "load_policy_text",
    "parse_document",
    "parse_source",
    "policy_from_dict",
]

FORMATS = {".toml": "toml", ".json": "json", ".yaml": "yaml", ".yml": "yaml"}
Functions = Mapping[str, Callable[..., Any]]


def format_path(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


class _Source:
    """One parsed file: its data, its name and how to find lines in it."""

    def __init__(self, data: Any, name: str, locator: Locator) -> None:
        self.data = data
        self.name = name
        self.locator = locator

    def error(self, message: str, loc: Sequence[Any] = ()) -> PolicyError:
        return PolicyError(
            message, file=self.name, line=self.locator.line(tuple(loc)), field=format_path(loc) or None
        )


def parse_source(text: str, fmt: str, source: str) -> _Source:
    """Parse a TOML, JSON or YAML document, keeping its line map; syntax errors name the line."""
    if fmt == "toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            line = None
            msg = str(exc)
            if "(at line " in msg:
                try:
                    line = int(msg.rsplit("(at line ", 1)[1].split(",", 1)[0])
                except ValueError:
                    line = None
                msg = msg.rsplit(" (at line", 1)[0]
            raise PolicyError(f"invalid TOML: {msg}", file=source, line=line) from None
        return _Source(data, source, toml_lines(text))
    if fmt == "json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PolicyError(
                f"invalid JSON: {exc.msg} (column {exc.colno})", file=source, line=exc.lineno
            ) from None
        return _Source(data, source, json_lines(text))
    if fmt == "yaml":
        try:
            import yaml
        except ImportError:
            raise PolicyError(
                "YAML policies need PyYAML: pip install 'mcp-guard[yaml]' (or use TOML or JSON)", file=source
            ) from None
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else None
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise PolicyError(f"invalid YAML: {problem}", file=source, line=line) from None
        return _Source(data if data is not None else {}, source, yaml_lines(node))
    raise PolicyError(f"unknown policy format {fmt!r}: use toml, json or yaml", file=source)


def _validate(src: _Source) -> PolicyDocument:
    if not isinstance(src.data, dict):
        raise src.error("a policy document must be a table/object at the top level")
    try:
        return PolicyDocument.model_validate(src.data)
    except ValidationError as exc:
        problems: list[PolicyError] = []
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if isinstance(p, (str, int)))
            if err["type"] == "extra_forbidden" and loc and isinstance(loc[-1], str):
                known = known_fields(PolicyDocument, loc[:-1])
                close = difflib.get_close_matches(loc[-1], known, n=1, cutoff=0.6)
                hint = f" (did you mean `{close[0]}`?)" if close else ""
                message = f"unknown field {loc[-1]!r}{hint}"
            elif err["type"] == "missing":
                message = "required field is missing"
            else:
                message = err["msg"].removeprefix("Value error, ") + suggest_value(err)
            problems.append(src.error(message, loc))
        if len(problems) == 1:
            raise problems[0] from None
        problems.sort(key=lambda e: e.line if e.line is not None else 1 << 30)  # file order
        raise PolicyErrors(problems) from None


def suggest_value(err: Any) -> str:
    """`` (did you mean 'session'?)`` for a misspelt value of a field that takes one of a few words."""
    given, expected = err.get("input"), (err.get("ctx") or {}).get("expected")
    if err["type"] != "literal_error" or not isinstance(given, str) or not isinstance(expected, str):
        return ""
    close = difflib.get_close_matches(given, re.findall(r"'([^']*)'", expected), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class PolicyErrors(ConfigErrors, PolicyError):
    """Every problem of one policy file, one ``FILE:LINE: FIELD: message`` line each."""


def parse_document(text: str, fmt: str = "toml", source: str = "<string>") -> tuple[PolicyDocument, _Source]:
    src = parse_source(text, fmt, source)
    return _validate(src), src


def _role_graph(
    docs: Sequence[tuple[PolicyDocument, _Source]],
) -> tuple[dict[str, frozenset[str]], dict[str, tuple[frozenset[str], frozenset[str]]]]:
    inherits: dict[str, list[str]] = {}
    where: dict[str, tuple[_Source, str]] = {}
    subjects: dict[str, set[str]] = {}
    groups: dict[str, set[str]] = {}
    for doc, src in docs:
        for name, role in doc.roles.items():
            key = nfc(name)
            where.setdefault(key, (src, name))
            inherits.setdefault(key, []).extend(nfc(r) for r in role.inherits)
            subjects.setdefault(key, set()).update(nfc(s) for s in role.subjects)
            groups.setdefault(key, set()).update(nfc(g) for g in role.groups)
    ancestors: dict[str, frozenset[str]] = {}

    def visit(role: str, path: list[str]) -> frozenset[str]:
        if role in ancestors:
            return ancestors[role]
        if role in path:
            cycle = [*path[path.index(role) :], role]
            src, name = where[path[-1]]
            raise src.error(f"role inheritance cycle: {' -> '.join(cycle)}", ("roles", name, "inherits"))
        result = {role}
        for parent in inherits.get(role, ()):
            result |= visit(parent, [*path, role])
        ancestors[role] = frozenset(result)
        return ancestors[role]

    for role_name in inherits:
        visit(role_name, [])
    members = {
        role: (frozenset(subjects[role]), frozenset(groups[role]))
        for role in inherits
        if subjects[role] or groups[role]
    }
    return ancestors, members


def _settings(docs: Sequence[tuple[PolicyDocument, _Source]]) -> dict[str, Any]:
    chosen: dict[str, tuple[Any, str]] = {}
    for doc, src in docs:
        for name in ("default", "mode", "timezone"):
            if name not in doc.model_fields_set:
                continue
            value = getattr(doc, name)
            if name in chosen and chosen[name][0] != value:
                raise src.error(
                    f"{name} = {value!r} conflicts with {chosen[name][0]!r} in {chosen[name][1]}", (name,)
                )
            chosen[name] = (value, src.name)
    return {name: value for name, (value, _) in chosen.items()}


def compile_documents(
    docs: Sequence[tuple[PolicyDocument, _Source]], functions: Functions | None = None
) -> CompiledPolicy:
    """Merge validated documents (in order) and compile them into one :class:`CompiledPolicy`."""
    funcs = condition_functions(functions)
    settings = _settings(docs)
    ancestors, members = _role_graph(docs)
    rules: list[Rule] = []
    matchers: list[_Matcher] = []
    seen: dict[str, str] = {}
    limits: list[LimitSpec] = []
    limit_matchers: list[_Matcher] = []
    seen_limits: dict[str, str] = {}
    budgets: list[CompiledBudget] = []
    seen_budgets: dict[str, str] = {}
    server_tenant: dict[str, tuple[str, str]] = {}
    tags: list[_TenantTag] = []
    label_refs: list[tuple[_Source, tuple[Any, ...], Sequence[str]]] = []
    for doc, src in docs:
        for i, spec in enumerate(doc.rules):
            loc = ("rules", i)
            line = src.locator.line(loc)
            if spec.id in seen:
                raise src.error(
                    f"duplicate rule id {spec.id!r} (first defined at {seen[spec.id]})", (*loc, "id")
                )
            seen[spec.id] = f"{src.name}:{line}" if line else src.name
            condition = None
            if spec.when is not None:
                try:
                    condition = compile_condition(spec.when, funcs)
                except ConditionError as exc:
                    raise src.error(f"invalid condition: {exc}", (*loc, "when")) from None
            if spec.annotations is not None:
                condition = annotation_condition(spec.annotations, condition)
            obligations: list[Obligation] = []
            if spec.redact:
                obligations.append(Obligation("redact", {"fields": tuple(spec.redact)}))
            if spec.step_up is not None:
                obligations.append(Obligation("step_up", {"max_age": spec.step_up}))
            if spec.confirm is not None:
                obligations.append(Obligation("confirm", {"message": spec.confirm}))
            if spec.approval is not None:
                a = spec.approval
                params = {
                    "approvers": tuple(a.approvers),
                    "timeout": a.timeout,
                    "wait": a.wait,
                    "rules": (spec.id,),
                }
                obligations.append(Obligation("approval", params))
            selectors = {name: getattr(spec, name) for name in SELECTOR_FIELDS}
            if spec.labels is not None:
                label_refs.append((src, (*loc, "labels"), spec.labels))
            rules.append(
                Rule(
                    id=spec.id,
                    effect=spec.effect,
                    source=src.name,
                    line=line,
                    **{k: tuple(v) if v is not None else None for k, v in selectors.items()},
                    when=spec.when,
                    shadow=spec.shadow,
                    cross_tenant=spec.cross_tenant,
                    obligations=tuple(obligations),
                    description=spec.description,
                    labels=tuple(spec.labels) if spec.labels is not None else None,
                    annotations=spec.annotations,
                )
            )
            matchers.append(
                _Matcher(
                    len(matchers),
                    spec.id,
                    {**selectors, "labels": spec.labels},
                    deny=spec.effect == "deny",
                    shadow=spec.shadow,
                    condition=condition,
                    obligations=tuple(obligations),
                    cross_tenant=spec.cross_tenant,
                )
            )
        for i, lim in enumerate(doc.limits):
            loc = ("limits", i)
            if lim.id in seen_limits:
                raise src.error(
                    f"duplicate limit id {lim.id!r} (first in {seen_limits[lim.id]})", (*loc, "id")
                )
            seen_limits[lim.id] = src.name
            selectors = {name: getattr(lim, name) for name in SELECTOR_FIELDS}
            limits.append(
                LimitSpec(
                    id=lim.id,
                    requests=lim.requests,
                    window=lim.window,
                    per=tuple(lim.per),
                    **{k: tuple(v) if v is not None else () for k, v in selectors.items()},
                )
            )
            limit_matchers.append(_Matcher(len(limit_matchers), lim.id, selectors))
        for i, bud in enumerate(doc.budgets):
            loc = ("budgets", i)
            if bud.id in seen_budgets:
                raise src.error(
                    f"duplicate budget id {bud.id!r} (first in {seen_budgets[bud.id]})", (*loc, "id")
                )
            seen_budgets[bud.id] = src.name
            budget = BudgetSpec(bud.id, bud.limit, bud.period, bud.per, tuple(bud.cost.items()), src.name)
            selectors = {name: getattr(bud, name) for name in SELECTOR_FIELDS}
            budgets.append(CompiledBudget(budget, len(budgets), selectors))
        for name, server in doc.servers.items():
            if server.tenant is None:
                continue
            previous = server_tenant.get(name)
            if previous is not None and previous[0] != server.tenant:
                raise src.error(
                    f"server {name!r} is tagged with tenant {server.tenant!r} here"
                    f" and {previous[0]!r} in {previous[1]}",
                    ("servers", name, "tenant"),
                )
            server_tenant[name] = (server.tenant, src.name)
        for tenant, spec_t in doc.tenants.items():
            tags.append(
                _TenantTag(
                    tenant,
                    spec_t.servers,
                    {"tool": spec_t.tools, "prompt": spec_t.prompts, "resource": spec_t.resources},
                )
            )
    for name, (tenant, _) in server_tenant.items():
        tags.insert(0, _TenantTag(tenant, [name], {}))
    labeler = _labeler(docs, label_refs)
    tz_name = settings.get("timezone")
    policy = CompiledPolicy(
        rules=rules,
        matchers=matchers,
        limits=limits,
        limit_matchers=limit_matchers,
        role_ancestors=ancestors,
        role_members=members,
        tenant_tags=tags,
        default=settings.get("default", "deny"),
        mode=settings.get("mode", "enforce"),
        tz=ZoneInfo(tz_name) if tz_name else None,
        sources=tuple(src.name for _, src in docs),
        budgets=budgets,
        labeler=labeler,
    )
    policy.warnings = role_warnings(docs)
    return policy


def _labeler(
    docs: Sequence[tuple[PolicyDocument, _Source]],
    label_refs: list[tuple[_Source, tuple[Any, ...], Sequence[str]]],
) -> Labeler:
    """Compile ``[[labels]]`` and ``[[flows]]``; a label used but never given is a load error."""
    tags: list[LabelTag] = []
    declared: set[str] = set()
    for doc, _ in docs:
        for entry in doc.labels:
            kinds = {"tool": entry.tools, "prompt": entry.prompts, "resource": entry.resources}
            tags.append(LabelTag([nfc(n) for n in entry.labels], entry.servers, kinds))
            declared.update(entry.labels)
    flows: list[FlowSpec] = []
    seen: dict[str, str] = {}
    for doc, src in docs:
        for i, flow in enumerate(doc.flows):
            loc = ("flows", i)
            if flow.id in seen:
                raise src.error(f"duplicate flow id {flow.id!r} (first in {seen[flow.id]})", (*loc, "id"))
            seen[flow.id] = src.name
            label_refs.append((src, (*loc, "after"), flow.after))
            label_refs.append((src, (*loc, "deny"), flow.deny))
            obligation = None
            if flow.effect == "confirm":
                message = (
                    flow.message or f"This call is held by flow {flow.id} (it follows earlier data). Run it?"
                )
                obligation = Obligation("confirm", {"message": message})
            elif flow.approval is not None:
                a = flow.approval
                params = {
                    "approvers": tuple(a.approvers),
                    "timeout": a.timeout,
                    "wait": a.wait,
                    "rules": (flow.id,),
                }
                obligation = Obligation("approval", params)
            flows.append(
                FlowSpec(
                    flow.id,
                    frozenset(nfc(n) for n in flow.after),
                    frozenset(nfc(n) for n in flow.deny),
                    flow.scope,
                    flow.window,
                    flow.effect,
                    obligation,
                    src.name,
                    src.locator.line(loc),
                )
            )
    unknown: list[PolicyError] = []  # every misspelt label at once, not one per run
    for src, loc, names in label_refs:
        for j, name in enumerate(names):
            if name not in declared:
                close = difflib.get_close_matches(name, sorted(declared), n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                known = f"; declared: {', '.join(sorted(declared))}" if declared and not close else ""
                unknown.append(
                    src.error(f"unknown label {name!r}{hint}: no [[labels]] entry gives it{known}", (*loc, j))
                )
    if len(unknown) == 1:
        raise unknown[0]
    if unknown:
        raise PolicyErrors(unknown)
    return Labeler(tags, flows)


def _read(path: str | Path) -> tuple[str, str, str]:
    p = Path(path)
    fmt = FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise PolicyError(
            f"cannot tell the format from the extension {p.suffix!r}: use .toml, .json, .yaml", file=str(p)
        )
    return read_text_file(p, "policy file"), fmt, str(p)


def read_text_file(path: str | Path, what: str) -> str:
    """The UTF-8 text of ``path``; a :class:`PolicyError` naming the file (as given) and ``what`` it is."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"cannot read {what}: {exc.strerror or exc}", file=str(path)) from None
    except UnicodeDecodeError:
        raise PolicyError(f"{what} is not valid UTF-8", file=str(path)) from None


def load_policy(*paths: str | Path, functions: Functions | None = None) -> CompiledPolicy:
    """Load, validate and compile one or more policy files (merged in the order given)."""
    if not paths:
        raise PolicyError("no policy file given")
    docs = [parse_document(*_read(path)) for path in paths]
    return compile_documents(docs, functions)


def load_policy_text(
    text: str, fmt: str = "toml", source: str = "<string>", functions: Functions | None = None
) -> CompiledPolicy:
    """Compile a policy given as text (``fmt``: toml, json or yaml)."""
    return compile_documents([parse_document(text, fmt, source)], functions)


def policy_from_dict(
    data: Mapping[str, Any], source: str = "<dict>", functions: Functions | None = None
) -> CompiledPolicy:
    """Compile a policy already parsed into plain data (for embedding code and tests)."""
    src = _Source(dict(data), source, Locator())
    return compile_documents([(_validate(src), src)], functions)
