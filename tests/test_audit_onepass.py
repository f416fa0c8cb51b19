"""The one-call encoding of plain events: the same record and bytes as the full redactor, same trail.

``fastrecord._one_pass`` handles events whose fixed fields are plain; these tests generate such
events (and near misses: odd floats, enums, non-ASCII, sensitive keys) and compare the stored
record and its bytes with ``redact_record`` and with the general fast path, then check that a
trail written through it verifies and reads back as the same values.
"""

from __future__ import annotations

import enum
import json
import math
import sqlite3
import uuid
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcp_guard.audit import (
    AuditLog,
    SQLiteSink,
    canonical,
    detectors,
    read_anchor,
    redact_record,
    store_rows,
    verify_rows,
)
from mcp_guard.audit import fastrecord as fr
from mcp_guard.audit.canonical import encode
from mcp_guard.audit.keys import AuditKey, KeyRing
from mcp_guard.audit.redact import has_sensitive_key, has_sensitive_key_bytes
from mcp_guard.model import AuditEvent, ResultSummary

KEYS = KeyRing([AuditKey("t", b"k" * 32)])

pytestmark = pytest.mark.skipif(not canonical.FAST, reason="orjson is not installed")


class Colour(enum.Enum):
    RED = "red"


#: Plain strings (ASCII escaping included) and, rarely, ones that trip the prefilter or the key rule.
plain_words = st.one_of(
    st.text(max_size=8),
    st.sampled_from(["query", "tools/call", "é", "\u2028", "\x7f", "\U0001f600", "null", "[REDACTED]"]),
)
tricky = st.sampled_from(
    ["password", "api_key", "AKIAIOSFODNN7EXAMPLE", "ghp_" + "a1B2" * 9, "Bearer abcdefghijklmnop",
     "x=1&token=abcdef"]
)  # fmt: skip
words = st.one_of(*([plain_words] * 9), tricky)
keys = st.one_of(words, st.sampled_from(["password", "Pass_Word", "x-api-key", "session_id", "note"]))
leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.sampled_from([1e-5, 2.5e-7, 1e16, -0.0, 0.0001, math.nan, math.inf, 10.00001]),
    words,
    st.sampled_from([Colour.RED, uuid.UUID(int=5), b"x"]),
)
json_value = st.recursive(
    leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(inner, max_size=2).map(tuple),
        st.dictionaries(keys, inner, max_size=3),
    ),
    max_leaves=12,
)
optional_words = st.one_of(st.none(), words)
paths = st.sampled_from(["password", "a.b", "items[*]", "*", "x["])
times = st.one_of(st.floats(min_value=1e9, max_value=2e9), st.sampled_from([0.0, 1e-5, 1.5, math.nan]))


@st.composite
def plain_events(draw: st.DrawFn) -> AuditEvent:
    principal = draw(
        st.one_of(
            st.none(),
            st.fixed_dictionaries(
                {
                    "subject": words,
                    "tenant": optional_words,
                    "roles": st.lists(words, max_size=3),
                    "mfa": st.booleans(),
                }
            ),
            st.fixed_dictionaries({"subject": words, "roles": st.lists(words, max_size=2).map(tuple)}).map(
                MappingProxyType
            ),
            st.fixed_dictionaries({"subject": words, "level": st.floats(allow_nan=False)}),
        )
    )
    result = draw(
        st.one_of(
            st.none(),
            st.builds(
                ResultSummary,
                size=st.integers(0, 10**6),
                is_error=st.booleans(),
                items=st.one_of(st.none(), st.integers(0, 500)),
                withheld=st.integers(0, 3),
                hidden=st.integers(0, 3),
            ),
        )
    )
    return AuditEvent(
        method=draw(words),
        decision=draw(st.sampled_from(["allow", "deny", "error"])),
        time=draw(times),
        session_id=draw(optional_words),
        request_id=draw(st.one_of(st.none(), st.integers(-(2**40), 2**40), words)),
        principal=principal,
        source_ip=draw(optional_words),
        transport=draw(optional_words),
        client_name=draw(optional_words),
        server=draw(optional_words),
        kind=draw(st.sampled_from([None, "tool", "resource"])),
        target=draw(optional_words),
        rule=draw(optional_words),
        reasons=tuple(draw(st.lists(words, max_size=2))),
        shadow=draw(st.booleans()),
        arguments=draw(st.one_of(st.none(), st.dictionaries(keys, json_value, max_size=4))),
        redact_fields=tuple(
            draw(st.lists(st.sampled_from(["password", "a.b", "items[*]", "*", "x["]), max_size=2))
        ),
        result=result,
        error_code=draw(st.one_of(st.none(), st.integers(-33000, 0))),
        latency_ms=draw(st.one_of(st.none(), times)),
        outcome=draw(st.sampled_from([None, "ok", "refused"])),
    )


def _lists(value: Any) -> Any:
    """Tuples as lists: both encode the same, and the general path keeps a tuple it was given."""
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_lists(v) for v in value]
    return value


def _general(event: AuditEvent) -> Any:
    saved = fr._orjson
    fr._orjson = None  # type: ignore[assignment]
    try:
        return fr.fast_record(event, event.redact_fields)
    finally:
        fr._orjson = saved


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plain_events())
def test_one_call_encoding_stores_what_the_full_redactor_stores(event: AuditEvent) -> None:
    fast = fr.fast_record(event, event.redact_fields)
    if fast is None:
        return
    record, text = fast
    slow = redact_record(event.as_dict(), event.redact_fields, True)
    assert _lists(record) == slow
    assert text == canonical.canonical(slow)
    assert json.loads(text) == json.loads(canonical.canonical(slow))
    general = _general(event)
    if general is not None:  # the general path may decline what the one call takes (and back)
        assert (_lists(general[0]), general[1]) == (_lists(record), text)
    canonical.FAST = False  # without orjson (the ``fast`` extra not installed)
    try:
        stdlib = fr.fast_record(event, event.redact_fields)
    finally:
        canonical.FAST = True
    if stdlib is not None:
        assert (_lists(stdlib[0]), stdlib[1]) == (_lists(record), text)


def test_plain_events_take_the_one_call_path(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    original = fr.lane_record

    def spy(*args: Any) -> Any:
        out = original(*args)
        calls.append(out)
        return out

    monkeypatch.setattr(fr, "lane_record", spy)
    event = AuditEvent(
        method="tools/call",
        decision="allow",
        principal={"subject": "ada", "roles": ["analyst"], "mfa": True},
        target="query",
        arguments={"q": "SELECT 1 -- é", "password": "hunter2", "opts": {"n": 2, "tags": ["a"]}},
        redact_fields=("opts.tags[*]",),
        result=ResultSummary(size=10, items=2),
        latency_ms=1.25,
    )
    fast = fr.fast_record(event, event.redact_fields)
    assert fast is not None and len(calls) == 1 and calls[0] is not fr.GENERAL
    record, text = fast
    assert record["arguments"] == {
        "q": "SELECT 1 -- é",
        "password": "[REDACTED]",
        "opts": {"n": 2, "tags": ["[REDACTED]"]},
    }
    assert "hunter2" not in text and "\\u00e9" in text and text.isascii()
    assert text == canonical.canonical(redact_record(event.as_dict(), event.redact_fields))


@pytest.mark.parametrize(
    "arguments",
    [
        {"f": 1e-5},
        {"n": math.nan},
        {"c": Colour.RED},
        {"u": uuid.UUID(int=1)},
        {"t": (1, 2)},
        {True: "x"},
        {"b": b"x"},
    ],
)
def test_arguments_the_one_call_cannot_vouch_for_go_to_the_general_path(arguments: dict[Any, Any]) -> None:
    event = AuditEvent(method="m", decision="allow", arguments=arguments)
    fast = fr.fast_record(event, ())
    if fast is not None:
        assert fast[1] == canonical.canonical(redact_record(event.as_dict(), ()))


@settings(max_examples=2000, deadline=None)
@given(keys, st.one_of(st.none(), st.text(max_size=5), st.integers(), st.just(detectors.MASK), st.just([1])))
def test_forward_sensitive_key_scan_agrees_with_the_reversed_one(key: str, value: Any) -> None:
    text = encode({"outer": [{key: value}], "k": 1})
    assert has_sensitive_key_bytes(text.encode()) == has_sensitive_key(text), (key, value)
    if value is not None and value != detectors.MASK and detectors.sensitive_key(key):
        assert has_sensitive_key_bytes(text.encode())


def test_a_trail_written_through_the_one_call_verifies_and_reads_back(tmp_path: Path) -> None:
    events = [
        AuditEvent(
            method="tools/call",
            decision="allow" if i % 3 else "deny",
            session_id=f"s{i % 4}",
            principal={"subject": f"u{i % 5}", "tenant": "acme", "roles": ["r"], "mfa": bool(i % 2)},
            target="query",
            reasons=("matched rule r",),
            arguments={"q": f"SELECT {i} é", "password": "p" if i % 4 == 0 else None, "ratio": i / 7},
            redact_fields=("q",) if i % 5 == 0 else (),
            result=ResultSummary(size=i, items=i % 3),
            latency_ms=0.5 + i,
        )
        for i in range(60)
    ]
    stored = []
    for fast in (True, False):
        db, anchor = tmp_path / f"{fast}.db", tmp_path / f"{fast}.anchor"
        audit = AuditLog(SQLiteSink(db), KEYS, anchor_path=anchor, flush_interval=60)
        audit.fast_path = fast
        for ev in events:
            audit.record(ev)
        audit.close()
        assert verify_rows(store_rows(db), KEYS, read_anchor(anchor, KEYS)).ok
        conn = sqlite3.connect(db)
        try:
            stored.append([r for (r,) in conn.execute("SELECT record FROM audit_events ORDER BY seq")])
        finally:
            conn.close()
    assert stored[0] == stored[1]  # same events, same key: the very same signed lines
    assert [json.loads(r) for r in stored[0]] == [json.loads(r) for r in stored[1]]
    assert not any('"password":"p"' in r for r in stored[0])
