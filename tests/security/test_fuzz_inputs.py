"""Hypothesis fuzzing of every parser that takes outside input.

Properties: no exception other than the documented error type, and every run of the
pipeline leaves exactly one audit event that the audit trail can encode. A stage that
fails unexpectedly is turned into ``GuardUnavailable`` by the pipeline (fail closed), so a
``guard_error`` outcome here - where no plugin is built to fail - is a hidden crash too.
"""

from __future__ import annotations

import contextlib
import json
import re
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio
import hypothesis
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp.shared.exceptions import MCPError
from starlette.datastructures import Headers

from mcp_guard.audit.canonical import canonical
from mcp_guard.audit.fastrecord import fast_record
from mcp_guard.audit.redact import redact_record
from mcp_guard.authn.sources import credential_from_authorization
from mcp_guard.classify import NOTIFICATIONS, REQUESTS, classify
from mcp_guard.cli.main import main
from mcp_guard.cli.scan import parse_input
from mcp_guard.config import load_config
from mcp_guard.errors import AuthenticationError, ConfigError, GuardError, PolicyError
from mcp_guard.guard import Guard
from mcp_guard.integrations.server import GuardMiddleware
from mcp_guard.integrations.sessions import bearer
from mcp_guard.model import AuditEvent, Principal, RequestContext
from mcp_guard.pipeline import Admitted, Exchange
from mcp_guard.policy import load_policy_text, policy_from_dict
from mcp_guard.sanitize import KINDS, DefaultSanitizer

from ..helpers import ListAuditor

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---------------------------------------------------------------------- JSON strategies
_text = st.text(max_size=40)  # every code point hypothesis has: non-ASCII, controls, surrogates excluded
# JSON-RPC arrives through pydantic-core, which refuses integers of more than 4299 digits.
_huge_int = st.integers(min_value=0, max_value=4299).map(lambda n: -(10**n) + 1 if n % 2 else 10**n - 1)
_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    _huge_int,
    st.floats(allow_nan=False, allow_infinity=False),
    _text,
)


def _json(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    return st.recursive(
        _scalar,
        lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_text, inner, max_size=4)),
        max_leaves=max_leaves,
    )


@st.composite
def _deep(draw: st.DrawFn) -> Any:
    """A value nested up to ~60 levels of dicts and lists."""
    value = draw(_scalar)
    for wrap in draw(st.lists(st.booleans(), max_size=60)):
        value = {draw(st.sampled_from(["a", "arguments", "x", "\u00e9"])): value} if wrap else [value]
    return value


json_values = st.one_of(_json(), _deep())
json_objects = st.dictionaries(_text, json_values, max_size=5)

_KNOWN_METHODS = st.sampled_from(sorted(REQUESTS) + sorted(NOTIFICATIONS))
METHODS = st.integers(0, 7).flatmap(lambda n: _text if n == 0 else _KNOWN_METHODS)


@st.composite
def _params(draw: st.DrawFn) -> dict[str, Any] | None:
    """Params shaped like the real ones often enough to reach the deeper stages."""
    if draw(st.integers(0, 9)) == 0:
        return None
    params: dict[str, Any] = draw(json_objects)
    known = st.sampled_from(["calc_add", "files", "notes", "x"])
    name = st.one_of(known, known, known, json_values)
    for key, value in (
        ("name", name),
        ("uri", st.one_of(st.sampled_from(["file:///srv/a", "db://t"]), json_values)),
        ("arguments", st.one_of(json_objects, _deep(), json_values)),
        (
            "ref",
            st.one_of(
                st.fixed_dictionaries(
                    {"type": st.sampled_from(["ref/prompt", "ref/resource", "x"]), "name": name, "uri": name}
                ),
                json_values,
            ),
        ),
        ("argument", st.one_of(st.fixed_dictionaries({"name": name, "value": json_values}), json_values)),
        (
            "notifications",
            st.one_of(
                st.fixed_dictionaries(
                    {"resourceSubscriptions": st.one_of(st.lists(_text, max_size=3), json_values)}
                ),
                json_values,
            ),
        ),
        ("_meta", json_values),
    ):
        if draw(st.integers(0, 3)) < (3 if key in ("name", "uri", "arguments") else 1):
            params[key] = draw(value)
    return params


@st.composite
def _results(draw: st.DrawFn) -> Any:
    """What the call step returns: wire-shaped results with arbitrary contents, or anything."""
    item = st.fixed_dictionaries(
        {"name": st.one_of(_text, json_values)},
        optional={"description": _text, "uri": _text, "inputSchema": json_objects, "title": json_values},
    )
    return draw(
        st.one_of(
            st.none(),
            json_objects,
            st.fixed_dictionaries(
                {
                    "content": st.lists(
                        st.fixed_dictionaries({"type": st.just("text"), "text": _text}), max_size=3
                    )
                },
                optional={"structuredContent": json_objects, "isError": st.booleans()},
            ),
            st.fixed_dictionaries(
                {"tools": st.lists(st.one_of(item, json_values), max_size=4)},
                optional={"nextCursor": json_values},
            ),
            st.fixed_dictionaries({"prompts": st.lists(item, max_size=3)}),
            st.fixed_dictionaries({"resources": st.lists(st.one_of(item, json_objects), max_size=3)}),
            st.fixed_dictionaries({"contents": st.lists(json_objects, max_size=2)}),
        )
    )


# ---------------------------------------------------------------------- the pipeline
POLICY = """
version = 1
[roles.analyst]

[[rules]]
id = "calc"
effect = "allow"
roles = ["analyst"]
tools = ["calc_*"]
redact = ["card.number", "a", "x.y"]

[[rules]]
id = "args"
effect = "allow"
roles = ["analyst"]
tools = ["*"]
prompts = ["*"]
resources = ["*"]
when = 'request.arguments.a == 1 || size(request.arguments) < 3'

[[rules]]
id = "paths"
effect = "deny"
tools = ["files"]
when = 'path_within(request.arguments.path, "/srv") == false'
"""

ALICE = Principal("alice", roles=frozenset({"analyst"}))


def _guard(auditor: ListAuditor) -> Guard:
    return Guard(
        policy=load_policy_text(POLICY),
        auditor=auditor,
        sanitizers=[DefaultSanitizer()],
        server="fuzz",
        inspect_lists=True,
        inspect_results=True,
    )


_UNEXPECTED = re.compile(
    r"^(inspection failed: |policy evaluation failed: |rate limiting failed: |audit failed: )?"
    r"[A-Za-z_.]*(Error|Exception)\b"
)


def _encodable(event: AuditEvent) -> str:
    """The audit trail's own serialization of the event (what ``AuditLog._link`` does)."""
    fast = fast_record(event, event.redact_fields)
    if fast is not None:
        return fast[1]
    return canonical(redact_record(event.as_dict(), event.redact_fields))


def _run_once(method: str, params: Any, result: Any, notification: bool, outbound: bool) -> AuditEvent:
    """One exchange through a real guard; returns its one audit event after checking it."""
    auditor = ListAuditor()
    guard = _guard(auditor)
    context = RequestContext(time=datetime.now(timezone.utc), transport="fuzz", request_id=1)
    exchange = Exchange(
        method,
        params,
        "fuzz",
        context,
        direction="outbound" if outbound else "inbound",
        principal=ALICE,
        notification=notification,
    )

    async def call(admitted: Admitted) -> Any:
        assert isinstance(admitted, Admitted)
        return result

    async def go() -> None:
        with contextlib.suppress(MCPError):
            await guard.run(exchange, call)

    anyio.run(go)
    assert len(auditor.events) == 1, auditor.events
    event = auditor.events[0]
    # A deliberate fail-closed refusal (a malformed list result) is fine; an exception a stage did
    # not anticipate, wrapped into GuardUnavailable by the pipeline, is a crash.
    assert not (event.outcome == "guard_error" and _UNEXPECTED.match(event.reasons[0])), event.reasons
    _encodable(event)
    known = event.method if event.method in REQUESTS or event.method in NOTIFICATIONS else "?"
    hypothesis.event(f"{event.outcome} {event.decision} {known}")
    return event


@FUZZ
@given(
    method=METHODS,
    params=_params(),
    result=_results(),
    notification=st.sampled_from([False, False, False, True]),
    outbound=st.booleans(),
)
def test_pipeline_returns_or_refuses_with_one_audit_event(
    method: str, params: dict[str, Any] | None, result: Any, notification: bool, outbound: bool
) -> None:
    _run_once(method, params, result, method in NOTIFICATIONS or notification, outbound)


_TARGETED = {
    "tools/call": "name",
    "prompts/get": "name",
    "resources/read": "uri",
    "resources/subscribe": "uri",
}


@FUZZ
@given(
    method=st.sampled_from(sorted(_TARGETED)),
    target=st.one_of(st.sampled_from(["calc_add", "files", "file:///srv/a"]), _text.filter(bool)),
    arguments=st.one_of(
        json_objects, st.dictionaries(st.sampled_from(["a", "path", "card", "x"]), json_values)
    ),
    result=_results(),
    outbound=st.booleans(),
)
def test_pipeline_targeted_calls_with_arbitrary_arguments(
    method: str, target: str, arguments: dict[str, Any], result: Any, outbound: bool
) -> None:
    """Well-formed targeted requests, so arbitrary arguments reach the policy, redaction and audit."""
    _run_once(method, {_TARGETED[method]: target, "arguments": arguments}, result, False, outbound)


@FAST
@given(method=METHODS, params=st.one_of(_params(), json_values), notification=st.booleans())
def test_classify_raises_only_guard_errors(method: str, params: Any, notification: bool) -> None:
    try:
        request, info = classify(method, params, "fuzz", notification=notification)
    except GuardError:
        return
    assert request.method == method
    assert info.action


# ---------------------------------------------------------------------- headers
_header_text = st.text(st.characters(min_codepoint=0, max_codepoint=0xFF), max_size=40)
_auth_values = st.one_of(
    _header_text,
    st.builds(
        lambda s, t: f"{s} {t}", st.sampled_from(["Bearer", "bearer", "BEARER", "Basic", ""]), _header_text
    ),
)


@FAST
@given(values=st.lists(_auth_values, max_size=3), ip=st.one_of(st.none(), _text))
def test_authorization_header_parsers(values: list[str], ip: str | None) -> None:
    raw = [(b"authorization", v.encode("latin-1")) for v in values]
    headers = Headers(raw=raw)
    token = bearer(headers)
    assert token is None or isinstance(token, str)
    for header in (values, values[0] if values else None):
        try:
            credential = credential_from_authorization(header, ip)
        except AuthenticationError:
            continue
        assert credential.token is None or (credential.token and " " not in credential.token)


@FAST
@given(
    method=METHODS,
    params=_params(),
    extra=st.lists(
        st.tuples(
            st.sampled_from(["mcp-method", "mcp-name", "mcp-session-id", "authorization", "x-other"]),
            st.one_of(_header_text, st.builds(lambda s: f"=?base64?{s}?=", _header_text)),
        ),
        max_size=5,
    ),
)
def test_server_middleware_header_handling(
    method: str, params: dict[str, Any] | None, extra: list[tuple[str, str]]
) -> None:
    """The middleware's own reading of a request: context, credential and routing-header check."""
    middleware = GuardMiddleware(Guard(server="fuzz"), read_env=False)
    headers = Headers(raw=[(k.encode(), v.encode("latin-1")) for k, v in extra])
    ctx = SimpleNamespace(
        request=SimpleNamespace(headers=headers, client=SimpleNamespace(host="127.0.0.1")),
        method=method,
        params=params,
        request_id=1,
        protocol_version=None,
        session=None,
    )

    async def call_next(_: Any) -> Any:  # never reached: _exchange only describes the request
        raise AssertionError("called")

    exchange = middleware._exchange(ctx, call_next)  # type: ignore[arg-type]
    assert exchange.mismatch is None or isinstance(exchange.mismatch, str)
    assert exchange.credential is not None


# ---------------------------------------------------------------------- policy files
def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value if v is not None) + "]"
    if isinstance(value, dict):
        return (
            "{"
            + ", ".join(
                f"{_toml_value(str(k))} = {_toml_value(v)}" for k, v in value.items() if v is not None
            )
            + "}"
        )
    raise TypeError(value)


def to_toml(doc: dict[str, Any]) -> str:
    """TOML for any JSON-like document (None dropped; no big ints or non-finite floats)."""
    lines = []
    for key, value in doc.items():
        if value is None:
            continue
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for table in value:  # arrays of tables, as people write them
                lines.append(f"[[{_toml_value(key)}]]")
                lines.extend(
                    f"{_toml_value(str(k))} = {_toml_value(v)}" for k, v in table.items() if v is not None
                )
            continue
        lines.insert(0, f"{_toml_value(key)} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


_toml_scalar = st.one_of(
    st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False, allow_infinity=False), _text
)
_toml_json = st.recursive(
    _toml_scalar,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_text, inner, max_size=3)),
    max_leaves=8,
)
_names = st.lists(
    st.one_of(st.sampled_from(["a", "b*", "db", "file:///x/*", "analyst", ""]), _text), max_size=3
)
_wrong = st.one_of(_toml_json, _names)


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The right kind of value most of the time; a wrong type or anything else otherwise."""
    return st.one_of(strategy, strategy, _wrong)


_CEL = st.one_of(
    st.sampled_from(
        [
            "principal.mfa",
            'request.arguments.table != "users"',
            "principal.mfaa",
            "principal.mfa + 1",
            'request.arguments.ref.matches("^[0-9a-f]{40}$")',
            "request.arguments.ref.matches(request.arguments.x)",
            'in_cidr(principal.ip, "10.0.0.0/8")',
            'path_within(request.arguments.path, "/srv")',
            'timestamp("2026-01-01T00:00:00Z") < context.time',
            "context.hour >= 8 && context.hour <",
            "size(request.arguments) > 99999999999999999999999",
            '"a" in ["a", "b"]',
            "request.arguments.exists(k, k == 1)",
            '"(" .matches("(")',
        ]
    ),
    _text,
)
_selectors = {
    "subjects": _maybe(_names),
    "roles": _maybe(_names),
    "groups": _maybe(_names),
    "tenants": _maybe(_names),
    "servers": _maybe(_names),
    "tools": _maybe(_names),
    "prompts": _maybe(_names),
    "resources": _maybe(_names),
    "actions": _maybe(
        st.lists(st.sampled_from(["call", "get", "read", "subscribe", "complete", "list", "x"]), max_size=3)
    ),
}
_duration = st.one_of(
    st.sampled_from(["30s", "15m", "2h", "1d", "0", "-1s", "5x", "1e309s"]),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
)
_rule = st.fixed_dictionaries(
    {
        "id": _maybe(st.sampled_from(["r1", "r2", "a.b:c@d/e-f", "bad id!"])),
        "effect": _maybe(st.sampled_from(["allow", "deny", "maybe"])),
    },
    optional={
        **_selectors,
        "when": _maybe(_CEL),
        "redact": _maybe(
            st.lists(st.sampled_from(["card.number", "a[0]", "x.*", "", "[", "a..b"]), max_size=3)
        ),
        "step_up": _maybe(_duration),
        "shadow": _maybe(st.booleans()),
        "cross_tenant": _maybe(st.booleans()),
        "description": _maybe(_text),
        "unknown_key": _toml_json,
    },
)
_limit = st.fixed_dictionaries(
    {"id": _maybe(st.just("l1")), "requests": _maybe(st.integers(-2, 10**6)), "window": _maybe(_duration)},
    optional={
        **_selectors,
        "per": _maybe(st.lists(st.sampled_from(["subject", "tenant", "server", "target", "x"]), max_size=3)),
    },
)
_role = st.fixed_dictionaries(
    {},
    optional={
        "inherits": _maybe(_names),
        "subjects": _maybe(_names),
        "groups": _maybe(_names),
        "typo": _toml_json,
    },
)
_policy_doc = st.fixed_dictionaries(
    {},
    optional={
        "version": _maybe(st.sampled_from([1, 2])),
        "default": _maybe(st.sampled_from(["deny", "allow", "x"])),
        "mode": _maybe(st.sampled_from(["enforce", "shadow"])),
        "timezone": _maybe(st.sampled_from(["Europe/Paris", "UTC", "Mars/Base", "", "../../etc/passwd"])),
        "roles": _maybe(
            st.dictionaries(
                st.sampled_from(["analyst", "viewer", "admin", ""]), st.one_of(_role, _wrong), max_size=3
            )
        ),
        "servers": _maybe(
            st.dictionaries(
                st.sampled_from(["db", "x"]),
                st.one_of(st.fixed_dictionaries({}, optional={"tenant": _maybe(_text)}), _wrong),
                max_size=2,
            )
        ),
        "tenants": _maybe(
            st.dictionaries(
                st.sampled_from(["acme", "t"]),
                st.one_of(
                    st.fixed_dictionaries({}, optional={"servers": _maybe(_names), "tools": _maybe(_names)}),
                    _wrong,
                ),
                max_size=2,
            )
        ),
        "rules": _maybe(st.lists(st.one_of(_rule, _rule, _wrong), max_size=4)),
        "limits": _maybe(st.lists(st.one_of(_limit, _wrong), max_size=2)),
        "extra": _toml_json,
    },
)


#: Errors about the document as a whole, which have no field or line to name.
_WHOLE_DOCUMENT = ("at end of document", "at the top level")


def _policy_error_names_where(exc: ConfigError) -> None:
    assert isinstance(exc, PolicyError | ConfigError)
    where = exc.field is not None or exc.line is not None or any(w in exc.detail for w in _WHOLE_DOCUMENT)
    assert where, str(exc)


@FUZZ
@given(doc=_policy_doc, fmt=st.sampled_from(["toml", "json", "dict"]))
def test_generated_policies_fail_only_with_policy_errors(doc: dict[str, Any], fmt: str) -> None:
    try:
        if fmt == "dict":
            policy_from_dict(doc)
        else:
            load_policy_text(to_toml(doc) if fmt == "toml" else json.dumps(doc), fmt)
    except ConfigError as exc:
        _policy_error_names_where(exc)


@FAST
@given(
    text=st.one_of(st.text(max_size=200), st.builds(to_toml, st.dictionaries(_text, _toml_json, max_size=4))),
    fmt=st.sampled_from(["toml", "json"]),
)
def test_arbitrary_policy_text_fails_only_with_policy_errors(text: str, fmt: str) -> None:
    try:
        load_policy_text(text, fmt)
    except ConfigError as exc:
        _policy_error_names_where(exc)


# ---------------------------------------------------------------------- guard.toml
_config_doc = st.fixed_dictionaries(
    {},
    optional={
        "guard": _maybe(
            st.fixed_dictionaries(
                {},
                optional={
                    "mode": _maybe(st.sampled_from(["enforce", "shadow"])),
                    "server": _maybe(_text),
                    "policy": _maybe(st.sampled_from(["policy.toml", "a/b.json"])),
                    "policy_poll": _maybe(st.floats(-1, 10)),
                    "state": _maybe(st.sampled_from(["memory://", "sqlite:///s.db", "redis://x", "bogus"])),
                    "audit": _maybe(
                        st.lists(st.sampled_from(["jsonl://a.jsonl", "sqlite:///a.db", "x"]), max_size=2)
                    ),
                    "max_params_bytes": _maybe(st.integers(-5, 2**40)),
                    "inspect_lists": _maybe(st.booleans()),
                    "typo": _toml_json,
                },
            )
        ),
        "listen": _maybe(
            st.fixed_dictionaries(
                {},
                optional={
                    "host": _maybe(_text),
                    "port": _maybe(st.integers(-1, 70000)),
                    "trusted_proxies": _maybe(
                        st.lists(st.sampled_from(["10.0.0.0/8", "::1", "*", "x", "300.1.1.1"]), max_size=2)
                    ),
                    "read_timeout": _maybe(st.floats(-1, 100)),
                    "max_sessions": _maybe(st.integers(-1, 10)),
                },
            )
        ),
        "servers": _maybe(
            st.lists(
                st.fixed_dictionaries(
                    {"name": _maybe(st.sampled_from(["db", "db", "-x", ""]))},
                    optional={
                        "command": _maybe(_text),
                        "url": _maybe(st.sampled_from(["http://x/mcp", "ftp://", ""])),
                        "timeout": _maybe(st.floats(-1, 100)),
                        "credentials": _maybe(st.sampled_from(["shared", "subject", "x"])),
                        "env": _maybe(st.dictionaries(_text, _text, max_size=2)),
                    },
                ),
                max_size=3,
            )
        ),
        "sanitize": _maybe(
            st.fixed_dictionaries(
                {},
                optional={
                    "on_flag": _maybe(st.sampled_from(["pass", "strip", "x"])),
                    "servers": _maybe(
                        st.dictionaries(
                            st.sampled_from(["legacy", "x"]),
                            st.one_of(
                                st.fixed_dictionaries(
                                    {}, optional={"on_block": _maybe(st.sampled_from(["report", "y"]))}
                                ),
                                _wrong,
                            ),
                            max_size=2,
                        )
                    ),
                },
            )
        ),
        "authn": _maybe(
            st.fixed_dictionaries(
                {},
                optional={
                    "api_keys": _maybe(
                        st.lists(
                            st.fixed_dictionaries(
                                {},
                                optional={
                                    "subject": _maybe(_text),
                                    "sha256": _maybe(_text),
                                    "roles": _maybe(_names),
                                },
                            ),
                            max_size=2,
                        )
                    ),
                    "jwt": _maybe(
                        st.lists(
                            st.fixed_dictionaries(
                                {},
                                optional={
                                    "issuer": _maybe(_text),
                                    "jwks_url": _maybe(_text),
                                    "leeway": _maybe(_duration),
                                },
                            ),
                            max_size=2,
                        )
                    ),
                    "anonymous": _maybe(st.fixed_dictionaries({}, optional={"subject": _maybe(_text)})),
                    "passwords": _maybe(
                        st.fixed_dictionaries(
                            {},
                            optional={
                                "min_length": _maybe(st.integers(0, 20)),
                                "lockout": _maybe(
                                    st.fixed_dictionaries({}, optional={"window": _maybe(_duration)})
                                ),
                            },
                        )
                    ),
                },
            )
        ),
        "audit": _maybe(
            st.fixed_dictionaries(
                {},
                optional={
                    "on_unavailable": _maybe(st.sampled_from(["deny", "continue", "x"])),
                    "batch_size": _maybe(st.integers(-1, 10**6)),
                    "redact_fields": _maybe(st.lists(st.sampled_from(["a.b", "[", ""]), max_size=2)),
                    "key_file": _maybe(_text),
                },
            )
        ),
        "portal": _maybe(
            st.fixed_dictionaries(
                {},
                optional={"page_size": _maybe(st.integers(-1, 10)), "allowed_upstream_hosts": _maybe(_names)},
            )
        ),
        "nonsense": _toml_json,
    },
)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@FUZZ
@given(
    content=st.one_of(
        st.builds(lambda d: to_toml(d).encode(), _config_doc),
        st.builds(lambda d: json.dumps(d).encode(), _config_doc),
        st.text(max_size=200).map(str.encode),
        st.binary(max_size=60),
    ),
    suffix=st.sampled_from([".toml", ".json"]),
)
def test_guard_toml_fails_only_with_config_error(
    tmp_path_factory: pytest.TempPathFactory, content: bytes, suffix: str
) -> None:
    path = tmp_path_factory.mktemp("cfg") / f"guard{suffix}"
    path.write_bytes(content)
    try:
        load_config(path)
    except ConfigError as exc:
        assert str(path) in str(exc)


def test_guard_toml_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "guard.toml"
    path.write_bytes(b"\x80")
    with pytest.raises(ConfigError):
        load_config(path)


# ---------------------------------------------------------------------- scan input
_record = st.one_of(
    st.fixed_dictionaries(
        {
            "kind": st.one_of(st.sampled_from(sorted(KINDS)), json_values),
            "item": st.one_of(json_objects, json_values),
        },
        optional={"id": json_values},
    ),
    json_values,
)
_scan_text = st.one_of(
    st.lists(_record, max_size=4).map(lambda rs: "\n".join(json.dumps(r, ensure_ascii=False) for r in rs)),
    st.builds(
        lambda key, items, wrap: json.dumps(
            {"jsonrpc": "2.0", "id": 1, "result": {key: items}} if wrap else {key: items}
        ),
        st.sampled_from(["tools", "prompts", "resources", "resourceTemplates", "x"]),
        st.one_of(st.lists(st.one_of(json_objects, json_values), max_size=4), json_values),
        st.booleans(),
    ),
    st.text(max_size=200),
)


@FUZZ
@given(text=_scan_text, as_json=st.booleans())
def test_scan_input_fails_only_with_the_bad_input_error(
    tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str], text: str, as_json: bool
) -> None:
    try:
        parse_input(text, "in.jsonl")
    except ConfigError:
        expected_bad = True
    else:
        expected_bad = False
    path = tmp_path_factory.mktemp("scan") / "in.jsonl"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    code = main(["scan", str(path), *(["--json"] if as_json else [])])
    out = capsys.readouterr().out
    assert code == (2 if expected_bad else code) and code in (0, 1, 2)
    if code == 2:
        assert expected_bad
    elif as_json:
        for line in out.splitlines():
            json.loads(line)


@FUZZ
@given(
    kind=st.one_of(st.sampled_from(sorted(KINDS)), _text),
    items=st.lists(st.one_of(json_objects, _results()), max_size=4),
)
def test_sanitizer_scan_never_raises(kind: str, items: list[Any]) -> None:
    items = [i for i in items if isinstance(i, dict)]
    sanitizer = DefaultSanitizer()
    for item in items:
        result = sanitizer.scan(kind, item)
        assert all(f.rule != "sanitizer.error" for f in result.findings), result.findings
    results = sanitizer.scan_items(kind, items)
    assert len(results) == len(items)
    assert all(f.rule != "sanitizer.error" for r in results for f in r.findings)


def test_params_json_cannot_encode_are_refused_as_too_large() -> None:
    """Found by fuzzing: an integer past Python's digit limit made the size check raise ValueError."""

    class Events:
        synchronous = False

        def __init__(self) -> None:
            self.events: list[AuditEvent] = []

        def record(self, event: AuditEvent) -> None:
            self.events.append(event)

        async def record_sync(self, event: AuditEvent) -> None:
            self.record(event)

        async def aclose(self) -> None:
            pass

    auditor = Events()
    guard = Guard(auditor=auditor, server="s")
    context = RequestContext(time=datetime.now(timezone.utc), transport="custom")
    exchange = Exchange("ping", {"x": 10**5000}, "s", context, principal=Principal("p"))

    async def call(_: Admitted) -> dict[str, Any]:
        return {}

    async def main_() -> None:
        with pytest.raises(MCPError) as refused:
            await guard.run(exchange, call)
        assert refused.value.error.code == -32013

    anyio.run(main_)
    [event] = auditor.events
    assert (event.decision, event.outcome) == ("deny", "refused")
