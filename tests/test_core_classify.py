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
