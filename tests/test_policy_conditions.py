"""CEL conditions: load-time checks, the evaluation-error rule, functions, context, parity with cel."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import Any

import cel
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_guard.errors import PolicyError
from mcp_guard.model import AccessRequest, Principal, RequestContext
from mcp_guard.policy import CompiledPolicy, policy_from_dict
from mcp_guard.policy.celeval import EvalError, in_cidr, path_within
from mcp_guard.policy.conditions import Activation, ConditionError, compile_condition, condition_functions

MONDAY_9 = datetime(2026, 3, 2, 9, 30, tzinfo=timezone.utc)  # a Monday


def policy(when: str, effect: str = "allow", **extra: Any) -> CompiledPolicy:
    rule = {"id": "r", "effect": effect, "tools": ["t"], "when": when}
    rules = [rule] if effect == "allow" else [rule, {"id": "base", "effect": "allow", "tools": ["t"]}]
    return policy_from_dict({"rules": rules, **extra})


def decide(
    p: CompiledPolicy, principal: Principal | None = None, at: datetime = MONDAY_9, **arguments: Any
) -> bool:
    principal = principal or Principal("alice")
    request = AccessRequest("tools/call", "call", "s", "tool", "t", arguments, RequestContext(at))
    return p.decide(principal, request).allowed


@pytest.mark.parametrize(
    ("when", "message"),
    [
        ("principal.mfaa", "principal has no field 'mfaa'"),
        ('request.servr == "db"', "request has no field 'servr'"),
        ("context.hours > 3", "context has no field 'hours'"),
        ("principal.mfa + 1 > 0", "no operator '+'"),
        ("principal.subject > 3", "cannot order string and int"),
        ('principal.mfa == "yes"', "cannot compare bool with string"),
        ("user.mfa", "unknown variable 'user'"),
        ("nosuch(1)", "unknown function 'nosuch'"),
        ("in_cidr(principal.ip)", "takes 2 argument"),
        ("principal.subject", "must be bool"),
        ("principal.mfa &&", "syntax error"),
        ("principal.roles.size", "has no field"),
        ("principal.subject.nope", "type string has no field"),
        ("false && principal.mfaa", "no field 'mfaa'"),  # unreachable branches are checked too
        ("", "empty condition"),
    ],
)
def test_load_time_errors_name_rule_field_and_problem(when: str, message: str) -> None:
    with pytest.raises(PolicyError) as info:
        policy(when)
    assert info.value.field == "rules[0].when"
    assert message in str(info.value)


def test_open_maps_follow_the_evaluation_error_rule() -> None:
    allow = policy('request.arguments.table == "orders"')
    assert decide(allow, table="orders")
    assert not decide(allow)  # missing key: an allow never matches
    assert not decide(allow, table=3)  # wrong type: just not equal
    deny = policy('request.arguments.table == "users"', effect="deny")
    assert not decide(deny, table="users")
    assert decide(deny, table="orders")
    assert not decide(deny)  # missing key: a deny always matches
    numeric = policy("request.arguments.limit > 10", effect="deny")
    assert not decide(numeric, limit="many")  # type error in a deny: matches
    assert decide(numeric, limit=5)
    attr = policy("principal.attributes.device.managed")
    assert decide(attr, Principal("a", attributes={"device": {"managed": True}}))
    assert not decide(attr, Principal("a", attributes={"device": {}}))
    assert not decide(attr, Principal("a", attributes={"device": {"managed": "yes"}}))


def test_error_absorption_in_or_and_and() -> None:
    assert decide(policy("request.arguments.x == 1 || principal.subject == 'alice'"))
    assert not decide(policy("request.arguments.x == 1 && principal.subject == 'bob'"))
    assert not decide(policy("request.arguments.x == 1 && principal.subject == 'alice'"))


def test_argument_checks() -> None:
    p = policy(
        'request.arguments.table in ["orders", "items"] && request.arguments.limit >= 1 '
        '&& request.arguments.limit <= 100 && request.arguments.name.matches("^[a-z]+$") '
        '&& path_within(request.arguments.path, "/srv/data")'
    )
    good = {"table": "orders", "limit": 100, "name": "abc", "path": "/srv/data/x/../y.csv"}
    assert decide(p, **good)
    assert not decide(p, **{**good, "table": "users"})
    assert not decide(p, **{**good, "limit": 101})
    assert decide(p, **{**good, "limit": 50.0})  # CEL compares int and double numerically
    assert not decide(p, **{**good, "name": "ABC"})
    assert not decide(p, **{**good, "path": "/srv/data/../etc/passwd"})
    assert not decide(p, **{**good, "path": "/srv/database"})


@pytest.mark.parametrize(
    ("path", "root", "inside"),
    [
        ("/srv/data/a.txt", "/srv/data", True),
        ("/srv/data", "/srv/data", True),
        ("/srv/data/../data2/x", "/srv/data", False),
        ("/srv/data/./a/../../data/b", "/srv/data", True),
        ("/srv/data2", "/srv/data", False),
        ("relative/x", "/srv/data", False),
        ("docs/a", "docs", True),
        ("docs/../../x", "docs", False),
        ("file:///srv/data/a", "/srv/data", True),
        ("file:///srv/data/%2e%2e/etc", "/srv/data", False),
        ("/srv/data\\..\\..\\etc", "/srv/data", False),
        ("/anything", "/", True),
    ],
)
def test_path_within(path: str, root: str, inside: bool) -> None:
    assert path_within(path, root) is inside


def test_path_within_and_in_cidr_reject_bad_input() -> None:
    with pytest.raises(EvalError):
        path_within("/a\x00b", "/a")
    with pytest.raises(EvalError):
        path_within(3, "/a")
    with pytest.raises(EvalError):
        in_cidr("not-an-ip", "10.0.0.0/8")
    with pytest.raises(EvalError):
        in_cidr("10.0.0.1", "10.0.0.0/99")
    assert in_cidr("::ffff:10.1.2.3", "10.0.0.0/8")
    assert not in_cidr("2001:db8::1", "10.0.0.0/8")
    assert in_cidr("2001:db8::1", "2001:db8::/32")


def test_principal_fields() -> None:
    p = policy(
        'in_cidr(principal.ip, "10.0.0.0/8") && principal.country in ["DE", "FR"] && "otp" in principal.amr'
    )
    ok = Principal("a", ip="10.2.3.4", country="DE", amr=("pwd", "otp"))
    assert decide(p, ok)
    assert not decide(p, Principal("a", ip="192.168.0.1", country="DE", amr=("otp",)))
    assert not decide(p, Principal("a", country="DE", amr=("otp",)))  # no ip: error, allow fails
    fresh = policy("principal.mfa && principal.auth_age < 600")
    recent = Principal("a", mfa=True, auth_time=MONDAY_9 - timedelta(minutes=5))
    stale = Principal("a", mfa=True, auth_time=MONDAY_9 - timedelta(hours=2))
    assert decide(fresh, recent) and not decide(fresh, stale)
    assert not decide(fresh, Principal("a", mfa=True))
    roles = policy('"admin" in principal.roles && principal.roles.exists(r, r.startsWith("ad"))')
    assert decide(roles, Principal("a", roles={"admin"}))
    assert not decide(roles, Principal("a", roles={"user"}))


def test_context_time_weekday_and_timezone() -> None:
    hours = "context.hour >= 9 && context.hour < 17 && context.weekday >= 1 && context.weekday <= 5"
    utc = policy(hours)
    assert decide(utc, at=MONDAY_9)
    assert not decide(utc, at=MONDAY_9 + timedelta(days=5))  # Saturday
    assert not decide(utc, at=MONDAY_9.replace(hour=20))
    tokyo = policy(hours + ' && context.timezone == "Asia/Tokyo"', timezone="Asia/Tokyo")
    assert not decide(tokyo, at=MONDAY_9)  # 18:30 in Tokyo
    assert decide(tokyo, at=MONDAY_9.replace(hour=1))  # 10:00 in Tokyo
    stamp = policy('context.time < timestamp("2026-06-01T00:00:00Z")')
    assert decide(stamp) and not decide(stamp, at=datetime(2026, 7, 1, tzinfo=timezone.utc))


def test_constructs_outside_the_closure_compiler_are_refused_at_load() -> None:
    # formerly they ran on the cel package, a second engine with other semantics
    functions = condition_functions()
    for when in ("2u > 1u && principal.mfa", "request.arguments.n == 1u"):
        with pytest.raises(ConditionError, match="not supported in policy conditions"):
            compile_condition(when, functions)
    act = Activation(Principal("a", mfa=True), AccessRequest("m", "call", "s", "tool", "t"), frozenset())
    assert compile_condition("principal.mfa", functions)(act) is True


def test_condition_must_be_bool_at_run_time() -> None:
    c = compile_condition("request.arguments.flag", condition_functions())
    act = Activation(
        Principal("a"), AccessRequest("m", "call", "s", "tool", "t", {"flag": "yes"}), frozenset()
    )
    with pytest.raises(EvalError):
        c(act)
    with pytest.raises(ConditionError):
        compile_condition("1 + 1", condition_functions())


# --- parity with the cel package on generated expressions -------------------------------------

ARGS = {"a": 3, "b": -7, "c": 2.5, "s": "abc", "t": "", "flag": True, "xs": [1, 2, 3], "m": {"k": "v"}}

ints = st.sampled_from(
    ["0", "1", "-2", "7", "9223372036854775807", "request.arguments.a", "request.arguments.b"]
)
doubles = st.sampled_from(["1.5", "-0.5", "request.arguments.c"])
strings = st.sampled_from(['"abc"', '""', '"b"', "request.arguments.s", "request.arguments.t"])
anything = st.sampled_from(
    ["request.arguments.missing", "request.arguments.m", "request.arguments.xs", "null"]
)


def _num(depth: int) -> st.SearchStrategy[str]:
    if depth <= 0:
        return st.one_of(ints, doubles)
    sub = _num(depth - 1)
    return st.one_of(
        ints,
        doubles,
        st.tuples(sub, st.sampled_from(["+", "-", "*", "/", "%"]), sub).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        ),
    )


def _bool(depth: int) -> st.SearchStrategy[str]:
    leaves = st.one_of(
        st.sampled_from(["true", "false", "request.arguments.flag", "request.arguments.missing"]),
        st.tuples(_num(1), st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), _num(1)).map(" ".join),
        st.tuples(strings, st.sampled_from(["==", "!=", "<", ">="]), strings).map(" ".join),
        st.tuples(strings, st.sampled_from([".startsWith", ".endsWith", ".contains"]), strings).map(
            lambda t: f"{t[0]}{t[1]}({t[2]})"
        ),
        st.tuples(_num(0), st.just("in"), st.sampled_from(["[1, 2, 3]", "request.arguments.xs", "[]"])).map(
            " ".join
        ),
        st.tuples(anything, st.sampled_from(["==", "!="]), st.one_of(anything, ints, strings)).map(" ".join),
        st.sampled_from(
            ['"k" in request.arguments.m', "has(request.arguments.m.k)", "size(request.arguments.s) == 3"]
        ),
    )
    if depth <= 0:
        return leaves
    sub = _bool(depth - 1)
    return st.one_of(
        leaves,
        st.tuples(sub, st.sampled_from(["&&", "||"]), sub).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        sub.map(lambda s: f"!({s})"),
        st.tuples(sub, sub, sub).map(lambda t: f"({t[0]} ? {t[1]} : {t[2]})"),
    )


def _outcome(fn: Any) -> Any:
    try:
        value = fn()
    except Exception:
        return "error"
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return value


@settings(max_examples=400, deadline=None)
@given(_bool(2))
def test_closures_agree_with_cel(expression: str) -> None:
    try:
        condition = compile_condition(expression, condition_functions())
    except ConditionError:
        return  # statically ill-typed: rejected at load, nothing to compare
    act = Activation(Principal("a"), AccessRequest("m", "call", "s", "tool", "t", ARGS), frozenset())
    ours = _outcome(lambda: condition.fn(act))
    theirs = _outcome(lambda: cel.evaluate(expression, {"request": {"arguments": ARGS}}))
    assert ours == theirs, expression


def test_regex_patterns_must_be_valid_literals() -> None:
    with pytest.raises(PolicyError, match="string literal"):
        policy("request.arguments.name.matches(request.arguments.pattern)")
    with pytest.raises(PolicyError, match="invalid regular expression"):
        policy('request.arguments.name.matches("(unclosed")')
    assert decide(policy('request.arguments.name.matches("^a")'), name="abc")
    with pytest.raises(PolicyError, match=r"text\.matches"):  # the cel package has no global matches()
        policy('matches(request.arguments.name, "^a")')


@pytest.mark.parametrize(
    ("when", "hint"),
    [
        ('request.arguments.q.startswith("x")', "did you mean 'startsWith'?"),
        ('"abc".endswidth("c")', "did you mean 'endsWith'?"),
        ("sizee(principal.roles) > 0", "did you mean 'size'?"),
        ("principl.mfa", "did you mean 'principal'?"),
        ("requests.arguments.q == 'x'", "did you mean 'request'?"),
    ],
)
def test_unknown_names_in_when_suggest_the_known_one(when: str, hint: str) -> None:
    with pytest.raises(PolicyError) as info:
        policy_from_dict(
            {"version": 1, "rules": [{"id": "a", "effect": "allow", "tools": ["t"], "when": when}]}
        )
    assert hint in str(info.value), str(info.value)
