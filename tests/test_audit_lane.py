"""The per-distinct-value lane: cached members must never stand in for values that differ.

``lane.lane_record`` reuses the stored bytes of the principal .. shadow members for every event
whose members are equal and of exact plain types. These tests draw events from a small pool of
such members (so entries are reused) mixed with look-alikes that compare equal to a cached value
but encode differently on the full path (``str`` enums, ``1`` for ``True``, enum members and
UUIDs inside the principal), and compare record and bytes with the full redactor.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcp_guard.audit import canonical, lane, redact_record
from mcp_guard.audit import fastrecord as fr
from mcp_guard.model import AuditEvent, ResultSummary

from .test_audit_onepass import _lists

pytestmark = pytest.mark.skipif(not canonical.FAST, reason="orjson is not installed")


class Decision(str, enum.Enum):
    ALLOW = "allow"


class Colour(enum.Enum):
    RED = "red"


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    lane._mids.clear()
    yield
    lane._mids.clear()


def _check(event: AuditEvent) -> tuple[dict[str, Any], str] | None:
    fast = fr.fast_record(event, event.redact_fields)
    if fast is None:
        return None
    record, text = fast
    slow = redact_record(event.as_dict(), event.redact_fields, True)
    assert _lists(record) == slow
    assert text == canonical.canonical(slow)
    return fast


principals = st.sampled_from(
    [
        None,
        {"subject": "ada", "tenant": "acme", "roles": ["analyst"], "auth_method": "api_key", "mfa": True},
        {"subject": "bob", "tenant": "acme", "roles": ["analyst", "admin"], "mfa": False},
        {"subject": "ada", "tenant": "acme", "roles": [Colour.RED], "mfa": True},
        {"subject": "ada", "tenant": "acme", "roles": ["red"], "mfa": True},
        {"subject": "ada", "tenant": "acme", "roles": [uuid.UUID(int=3)], "mfa": True},
        {"subject": "ada", "tenant": "acme", "roles": ["00000000-0000-0000-0000-000000000003"], "mfa": True},
        {"subject": "ada", "tenant": "acme", "roles": ["analyst"], "mfa": 1},
        {"subject": "eve", "tenant": "acme", "roles": ["analyst"], "note": "ghp_" + "a1B2" * 9},
    ]
)
decisions = st.sampled_from(["allow", "deny", Decision.ALLOW])
reasons = st.sampled_from([(), ("matched rule r",), ("matched rule r", "second"), (Decision.ALLOW,)])
clients = st.sampled_from([None, "claude-code", "Bearer abcdefghijklmnopqrstu", "é"])


@st.composite
def pooled_events(draw: st.DrawFn) -> AuditEvent:
    return AuditEvent(
        method=draw(st.sampled_from(["tools/call", "resources/read"])),
        decision=draw(decisions),
        session_id=draw(st.sampled_from([None, "s1", "0" * 32])),
        request_id=draw(st.one_of(st.none(), st.integers(0, 5), st.sampled_from(["r1", "token=abc"]))),
        principal=draw(principals),
        source_ip=draw(st.sampled_from([None, "10.1.2.3"])),
        transport="streamable-http",
        client_name=draw(clients),
        server=draw(st.sampled_from(["db", None])),
        kind="tool",
        target=draw(st.sampled_from(["query", "drop"])),
        rule=draw(st.sampled_from([None, "r"])),
        reasons=draw(reasons),
        shadow=draw(st.sampled_from([False, True, 1, 0])),  # type: ignore[arg-type]
        arguments=draw(
            st.one_of(
                st.none(),
                st.fixed_dictionaries(
                    {
                        "sql": st.sampled_from(["SELECT 1", "SELECT 'é'", "AKIAIOSFODNN7EXAMPLE"]),
                        "password": st.sampled_from([None, "hunter2"]),
                        "options": st.fixed_dictionaries({"tags": st.lists(st.sampled_from(["a", "b"]))}),
                    }
                ),
            )
        ),
        redact_fields=draw(st.sampled_from([(), ("options.tags[*]",)])),
        result=draw(st.sampled_from([None, ResultSummary(size=10, items=2)])),
        latency_ms=draw(st.sampled_from([None, 1.25, 0.0])),
    )


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(pooled_events(), min_size=1, max_size=12))
def test_reused_members_store_what_the_full_redactor_stores(events: list[AuditEvent]) -> None:
    for event in events:
        _check(event)


def test_lookalikes_of_a_cached_value_are_not_served_from_the_cache() -> None:
    def event(**changes: Any) -> AuditEvent:
        fields: dict[str, Any] = {
            "method": "tools/call",
            "decision": "allow",
            "principal": {"subject": "ada", "roles": ["red"], "mfa": True},
            "target": "query",
            "reasons": ("matched",),
            "arguments": {"q": "x"},
        }
        fields.update(changes)
        return AuditEvent(**fields)

    assert _check(event()) is not None
    assert len(lane._mids) == 1
    for lookalike in (
        event(decision=Decision.ALLOW),
        event(reasons=(Decision.ALLOW,)),
        event(shadow=0),
        event(principal={"subject": "ada", "roles": [Colour.RED], "mfa": True}),
    ):
        assert lane.lane_record(lookalike, lookalike.arguments) is lane.GENERAL
        _check(lookalike)
    # ``1`` encodes unlike ``True``: a key (and an entry) of its own.
    other = event(principal={"subject": "ada", "roles": ["red"], "mfa": 1})
    out = lane.lane_record(other, other.arguments)
    assert out is not None and out is not lane.GENERAL and '"mfa":1' in out[1]
    assert _check(other) is not None and len(lane._mids) == 2


def test_members_that_may_hold_a_secret_send_every_such_event_to_the_full_path() -> None:
    event = AuditEvent(
        method="tools/call", decision="allow", client_name="Bearer abcdefghijklmnopqrstu", arguments={"q": 1}
    )
    assert lane.lane_record(event, event.arguments) is None
    assert list(lane._mids.values()) == [None]
    assert lane.lane_record(event, event.arguments) is None
    assert _check(event) is None


def test_the_cache_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lane, "_MAX_ENTRIES", 8)
    for i in range(50):
        _check(AuditEvent(method="m", decision="allow", principal={"subject": f"u{i}"}, arguments={}))
        assert len(lane._mids) <= 8


def test_records_do_not_share_containers_with_the_cache() -> None:
    event = AuditEvent(
        method="m",
        decision="allow",
        principal={"subject": "ada", "roles": ["r"]},
        reasons=("x",),
        arguments={},
    )
    first = _check(event)
    assert first is not None
    first[0]["principal"]["subject"] = "mallory"
    first[0]["reasons"].append("forged")
    second = _check(event)
    assert second is not None and second[0]["principal"]["subject"] == "ada" and second[0]["reasons"] == ["x"]
