"""The value objects' ``__init__`` (``model.quick_init``) builds what the dataclass declares.

The guard builds several of these per request, so their ``__init__`` stores
through slot descriptors instead of the generic ``object.__setattr__``; these
tests hold it to the dataclass contract: same signature, defaults, factories
per instance, ``__post_init__`` normalisation, frozen instances.
"""

from __future__ import annotations

import dataclasses
import inspect
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcp_guard.model import (
    AccessRequest,
    AuditEvent,
    Decision,
    Finding,
    Obligation,
    Principal,
    RequestContext,
    ResultSummary,
    ScanResult,
    quick_init,
)
from mcp_guard.pipeline import Admitted

CLASSES = (
    Principal,
    RequestContext,
    AccessRequest,
    Obligation,
    Decision,
    Finding,
    ScanResult,
    ResultSummary,
    AuditEvent,
    Admitted,
)

values = st.one_of(
    st.none(), st.booleans(), st.integers(), st.text(max_size=5), st.tuples(st.text(max_size=3))
)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_signature_follows_the_declared_fields(cls: type[Any]) -> None:
    params = list(inspect.signature(cls).parameters.values())
    fields = dataclasses.fields(cls)
    assert [p.name for p in params] == [f.name for f in fields]
    for p, f in zip(params, fields, strict=True):
        assert p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
        if f.default is not dataclasses.MISSING:
            assert p.default is f.default
        elif f.default_factory is not dataclasses.MISSING:
            assert repr(p.default) == "<factory>"
        else:
            assert p.default is inspect.Parameter.empty


@given(data=st.data())
def test_fields_hold_what_was_passed_and_defaults_otherwise(data: st.DataObject) -> None:
    fields = dataclasses.fields(AuditEvent)
    chosen = data.draw(st.sets(st.sampled_from([f.name for f in fields[2:]])))
    kwargs = {name: data.draw(values) for name in chosen}
    event = AuditEvent("tools/call", "allow", **kwargs)
    assert event.method == "tools/call" and event.decision == "allow"
    for f in fields[2:]:
        got = getattr(event, f.name)
        if f.name in kwargs:
            assert got is kwargs[f.name]
        elif f.default is not dataclasses.MISSING:
            assert got == f.default
    if "id" not in kwargs:
        assert isinstance(event.id, str) and event.id != AuditEvent("m", "deny").id  # a factory per instance
    if "time" not in kwargs:
        assert isinstance(event.time, float)
    assert dataclasses.replace(event) == event


@given(
    args=st.dictionaries(st.text(max_size=4), st.integers(), max_size=4),
    tags=st.sets(st.text(max_size=4), max_size=3),
    positional=st.booleans(),
)
def test_post_init_still_normalises(args: dict[str, int], tags: set[str], positional: bool) -> None:
    if positional:
        request = AccessRequest("tools/call", "call", "s", "tool", "t", args, None, tags)  # type: ignore[arg-type]
    else:
        request = AccessRequest("tools/call", "call", "s", kind="tool", target="t", arguments=args, tags=tags)  # type: ignore[arg-type]
    assert isinstance(request.arguments, MappingProxyType) and dict(request.arguments) == args
    assert type(request.tags) is frozenset and request.tags == tags
    args["added later"] = 1
    assert "added later" not in request.arguments  # a copy, not a view of the caller's dict
    same = dataclasses.replace(request)
    assert same == request and same.arguments is request.arguments  # already read-only: kept


def test_principal_post_init_converts_and_keeps() -> None:
    p = Principal("alice", roles={"a", "b"}, amr=["pwd"], attributes={"x": 1})  # type: ignore[arg-type]
    assert p.roles == frozenset({"a", "b"}) and type(p.roles) is frozenset
    assert p.amr == ("pwd",) and isinstance(p.attributes, MappingProxyType)
    q = p.with_network("10.0.0.1")
    assert q.roles is p.roles and q.attributes is p.attributes and q.ip == "10.0.0.1"


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_instances_stay_frozen(cls: type[Any]) -> None:
    required = [
        f
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    obj = cls(*(None for _ in required)) if cls is not AccessRequest else AccessRequest("m", "a", "s")
    first = dataclasses.fields(cls)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(obj, first, "changed")


def test_refuses_fields_it_cannot_generate() -> None:
    @dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
    class KeywordOnly:
        a: int = 0

    with pytest.raises(TypeError, match="not a plain init field"):
        quick_init(KeywordOnly)


def test_decisions_compare_as_before() -> None:
    assert Decision(True, "r", ("why",)) == Decision.allow("r", "why")
    assert hash(Obligation("redact", {"fields": ("a",)}).kind) == hash("redact")
    assert Decision(False).effect == "deny"


def test_guard_event_puts_every_field_in_its_place() -> None:
    """``Guard.event`` passes the event's fields by position: each must land in its own field."""
    from datetime import datetime, timezone

    from mcp_guard.guard import Guard

    ctx = RequestContext(
        datetime.now(timezone.utc), "http", "sess", 7, "2025-11-25", "cli", "1.2", "10.0.0.9"
    )
    request = AccessRequest("tools/call", "call", "srv", "tool", "echo", {"a": 1}, ctx)
    verdict = Decision(
        True,
        "rule-1",
        ("because",),
        (Obligation("redact", {"fields": ("a",)}),),
        shadow=True,
        approval={"id": "ap"},
        confirmation={"by": "bob"},
        flow={"id": "fl"},
    )
    summary = ResultSummary(size=3)
    principal = Principal("alice", roles=frozenset({"r"}), ip="10.9.9.9")
    event = Guard.event(
        "tools/call",
        "allow",
        principal=principal,
        request=request,
        verdict=verdict,
        error_code=-1,
        result=summary,
        started=0.0,
        kind="notification",
        direction="outbound",
        status="ok",
        event_id="ev-1",
    )
    expected = {
        "method": "tools/call",
        "decision": "allow",
        "event": "notification",
        "id": "ev-1",
        "session_id": "sess",
        "request_id": 7,
        "principal": principal.summary(),
        "source_ip": "10.0.0.9",
        "transport": "http",
        "client_name": "cli",
        "client_version": "1.2",
        "server": "srv",
        "kind": "tool",
        "target": "echo",
        "rule": "rule-1",
        "reasons": ("because",),
        "shadow": True,
        "arguments": {"a": 1},
        "redact_fields": ("a",),
        "result": summary,
        "error_code": -1,
        "direction": "outbound",
        "outcome": "ok",
        "approval": {"id": "ap"},
        "confirmation": {"by": "bob"},
        "flow": {"id": "fl"},
    }
    assert set(expected) | {"time", "latency_ms"} == {f.name for f in dataclasses.fields(AuditEvent)}
    for name, value in expected.items():
        assert getattr(event, name) == value, name
    assert isinstance(event.time, float) and isinstance(event.latency_ms, float)
    bare = Guard.event("authenticate", "deny", principal=principal, server="other", reasons=("r",))
    assert (bare.server, bare.source_ip, bare.kind, bare.arguments, bare.rule) == (
        "other",
        "10.9.9.9",
        None,
        None,
        None,
    )
    assert bare.reasons == ("r",) and bare.event == "request" and bare.latency_ms is None
