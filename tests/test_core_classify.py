"""Classification of MCP methods: every known method mapped, the rest refused, no crash on any params."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcp_guard.classify import NOTIFICATIONS, REQUESTS, classify
from mcp_guard.errors import AccessDenied, GuardError, MethodNotAllowed

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@pytest.mark.parametrize(
    ("method", "params", "action", "kind", "target"),
    [
        ("tools/call", {"name": "q", "arguments": {"a": 1}}, "call", "tool", "q"),
        ("prompts/get", {"name": "p"}, "get", "prompt", "p"),
        ("resources/read", {"uri": "file:///x"}, "read", "resource", "file:///x"),
        ("resources/subscribe", {"uri": "file:///x"}, "subscribe", "resource", "file:///x"),
        ("resources/unsubscribe", {"uri": "file:///x"}, "subscribe", "resource", "file:///x"),
        (
            "completion/complete",
            {"ref": {"type": "ref/prompt", "name": "p"}, "argument": {"name": "a", "value": "v"}},
            "complete",
            "prompt",
            "p",
        ),
        (
            "completion/complete",
            {"ref": {"type": "ref/resource", "uri": "t://{x}"}, "argument": {"name": "x", "value": ""}},
            "complete",
            "resource",
            "t://{x}",
        ),
        ("tools/list", {}, "list", None, None),
        ("server/discover", {}, "session", None, None),
        ("initialize", {}, "session", None, None),
        ("logging/setLevel", {"level": "info"}, "log", None, None),
    ],
)
def test_known_methods(
    method: str, params: dict[str, Any], action: str, kind: str | None, target: str | None
) -> None:
    req, _ = classify(method, params, "srv")
    assert (req.action, req.kind, req.target, req.server) == (action, kind, target, "srv")


def test_every_spec_method_is_classified() -> None:
    from mcp_types import methods

    assert set(REQUESTS) >= methods.SPEC_CLIENT_METHODS
    assert methods.SPEC_CLIENT_NOTIFICATION_METHODS <= NOTIFICATIONS


def test_listen_collects_uris() -> None:
    req, _ = classify(
        "subscriptions/listen", {"notifications": {"resourceSubscriptions": ["a://1", "b://2"]}}, "s"
    )
    assert req.arguments["uris"] == ("a://1", "b://2") or list(req.arguments["uris"]) == ["a://1", "b://2"]


@given(st.text(max_size=30).filter(lambda m: m not in REQUESTS))
def test_unknown_methods_refused(method: str) -> None:
    with pytest.raises(MethodNotAllowed):
        classify(method, {}, "s")


@given(st.text(max_size=30).filter(lambda m: m not in NOTIFICATIONS))
def test_unknown_notifications_refused(method: str) -> None:
    with pytest.raises(MethodNotAllowed):
        classify(method, {}, "s", notification=True)


@given(
    st.sampled_from(sorted(REQUESTS)),
    st.one_of(st.none(), st.dictionaries(st.text(max_size=10), json_values)),
)
def test_any_params_classify_or_refuse_cleanly(method: str, params: dict[str, Any] | None) -> None:
    with contextlib.suppress(GuardError):
        classify(method, params, "s")


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("tools/call", {}),
        ("tools/call", {"name": 3}),
        ("tools/call", {"name": "x", "arguments": [1]}),
        ("resources/read", {"uri": ""}),
        ("completion/complete", {"ref": {"type": "ref/other"}}),
        ("subscriptions/listen", {"notifications": {"resourceSubscriptions": "x"}}),
    ],
)
def test_malformed_targets_refused(method: str, params: dict[str, Any]) -> None:
    with pytest.raises(AccessDenied):
        classify(method, params, "s")


# ---------------------------------------------------------------------- resource URIs as the policy sees them
UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"


@pytest.mark.parametrize(
    ("uri", "seen"),
    [
        ("hr://users/%63eo/salary", "hr://users/ceo/salary"),
        ("hr://users/%63%65%6F/salary", "hr://users/ceo/salary"),
        ("notes://note/%31", "notes://note/1"),
        ("x://a/%7e%2D%5F%2e", "x://a/~-_."),
        ("x://a/b%3a%40c", "x://a/b%3A%40c"),  # reserved stays encoded, in upper case
        ("HR://USERS/ceo/Salary", "hr://users/ceo/Salary"),  # scheme and host only
        ("x://Alice@HOST:80/P", "x://Alice@host:80/P"),
        ("file:///Srv/%44ata", "file:///Srv/Data"),
        ("urn:ISBN:%30", "urn:ISBN:0"),
        ("hr://users/jos%C3%A9/x", "hr://users/jos\u00e9/x"),  # UTF-8 escapes read as the character
        ("hr://users/jos%c3%a9%3F/x", "hr://users/jos\u00e9%3F/x"),
    ],
)
def test_resource_uri_normalised_for_policy(uri: str, seen: str) -> None:
    for method, params in (
        ("resources/read", {"uri": uri}),
        ("resources/subscribe", {"uri": uri}),
        ("completion/complete", {"ref": {"type": "ref/resource", "uri": uri}}),
    ):
        assert classify(method, params, "s")[0].target == seen
    listen = {"notifications": {"resourceSubscriptions": [uri]}}
    assert classify("subscriptions/listen", listen, "s")[0].arguments["uris"] == [seen]


@pytest.mark.parametrize(
    "uri",
    [
        "hr://users/ceo%2Fsalary",  # a server decoding the parameter sees a '/'
        "hr://users/ceo%2fsalary",
        "hr://users/ceo%5Csalary",
        "hr://users/%2563eo/salary",  # nested encoding: a second decode gives 'ceo'
        "hr://users/ceo%00",
        "hr://users/%G3eo",
        "hr://users/ceo%6",
        "hr://users/jos%C3",  # not UTF-8
        "hr://users/%FF",
        "hr://users/%C3%28",
        "hr://users/x/../ceo/salary",
        "hr://users/x/%2E%2E/ceo/salary",
        "hr://users/./ceo",
        "file:///srv/data/..",
    ],
)
def test_ambiguous_resource_uris_refused(uri: str) -> None:
    with pytest.raises(AccessDenied, match="URI"):
        classify("resources/read", {"uri": uri}, "s")


_deny_ceo = None


def _hr_policy() -> Any:
    global _deny_ceo
    if _deny_ceo is None:
        from mcp_guard.policy import policy_from_dict

        _deny_ceo = policy_from_dict(
            {
                "rules": [
                    {"id": "read-hr", "effect": "allow", "resources": ["hr://users/*"]},
                    {"id": "no-ceo", "effect": "deny", "resources": ["hr://users/ceo/*", "hr://users/*~x*"]},
                ]
            }
        )
    return _deny_ceo


def _decision(uri: str) -> bool | None:
    from mcp_guard.model import Principal

    try:
        request = classify("resources/read", {"uri": uri}, "s")[0]
    except AccessDenied:
        return None
    return bool(_hr_policy().decide(Principal("eve"), request).allowed)


@given(
    st.sampled_from(
        ["hr://users/ceo/salary", "hr://users/bob/salary", "hr://users/a~x.b/c", "hr://users/Ceo"]
    )
    | st.text(UNRESERVED, min_size=1, max_size=12).map(lambda s: f"hr://users/{s}/salary"),
    st.data(),
)
def test_encoding_unreserved_characters_never_changes_the_decision(uri: str, data: st.DataObject) -> None:
    original = _decision(uri)
    spots = [i for i, ch in enumerate(uri) if ch in UNRESERVED]
    chosen = data.draw(st.sets(st.sampled_from(spots), max_size=len(spots)))
    lower = data.draw(st.booleans())
    encoded = "".join(
        (f"%{ord(ch):02x}" if lower else f"%{ord(ch):02X}") if i in chosen else ch for i, ch in enumerate(uri)
    )
    assert _decision(encoded) == original
