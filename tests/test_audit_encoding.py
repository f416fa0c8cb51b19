"""The fast JSON encoder writes exactly the canonical text (or refuses exactly where it refuses)."""

from __future__ import annotations

import enum
import math
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcp_guard.audit import canonical, redact_record
from mcp_guard.audit.canonical import encode, encode_fast
from mcp_guard.audit.fastrecord import fast_record
from mcp_guard.model import AuditEvent, Finding, ResultSummary


class Colour(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


class Name(str, enum.Enum):
    ADA = "ada"


class Tagged(dict[str, Any]):
    pass


leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.floats(min_value=-1e-3, max_value=1e-3),
    st.sampled_from([1e-5, 1e-7, -2.5e-9, 1e16, 1.5e300, 5e-324, 10.00001, -0.0, math.inf, math.nan]),
    st.text(),
    st.text(alphabet=st.characters(max_codepoint=0x7F)),
    st.sampled_from(["\x7f", "\u2028", "\ud800", "\U0001f600", "é", "\x1b[31m", '"\\/']),
    st.sampled_from([Colour.RED, Level.HIGH, Name.ADA, uuid.UUID(int=7), b"x", object()]),
)
values = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(st.one_of(st.text(max_size=4), st.integers(), st.booleans()), inner, max_size=4),
        st.dictionaries(st.text(max_size=4), inner, max_size=3).map(Tagged),
    ),
    max_leaves=16,
)


def outcome(fn: Any, value: Any) -> str:
    try:
        return str(fn(value))
    except (TypeError, ValueError) as exc:
        return f"refused: {type(exc).__name__}"
    except RecursionError:
        return "refused: too deep"


@pytest.fixture(params=[True, False], ids=["orjson", "stdlib"])
def fast(request: pytest.FixtureRequest) -> Iterator[bool]:
    if request.param and not canonical.FAST:
        pytest.skip("orjson is not installed")
    saved = canonical.FAST
    canonical.FAST = request.param
    yield request.param
    canonical.FAST = saved


@settings(
    max_examples=3000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(values)
def test_fast_encoder_writes_the_canonical_text(fast: bool, value: Any) -> None:
    assert outcome(encode_fast, value) == outcome(encode, value)


@pytest.mark.parametrize(
    "value",
    [
        {"t": 1.25e-05, "u": 3e-07, "v": 0.0001, "w": 1e16, "x": -0.0},
        {"s": "é\u2028\x7f\x00\x1f\U0001f600"},
        {"nan": math.nan},
        {"inf": [math.inf]},
        {"id": uuid.UUID(int=1)},
        {"e": Colour.RED, "i": Level.HIGH, "n": Name.ADA},
        {"big": 2**64},
        {1: "x", None: "y"},
        {"t": (1, 2)},
        Tagged(a=1),
    ],
)
def test_fast_encoder_matches_on_the_awkward_cases(fast: bool, value: Any) -> None:
    assert outcome(encode_fast, value) == outcome(encode, value)


def test_plain_values_skip_nothing_that_changes_the_text(fast: bool) -> None:
    value = {"a": [1, 2.5, None, True, "x\u00e9\n"], "b": {"c": -0.0, "d": 1e-3, "e": 1e300}}
    assert encode_fast(value, plain=True) == encode(value)


@pytest.mark.parametrize(
    ("arguments", "latency"),
    [
        ({"q": "SELECT 1", "n": None, "tags": ["a", "b"]}, 1.25),
        ({"f": 1e-5, "g": [2.5e-7]}, 0.00002),
        ({"u": uuid.UUID(int=3), "e": Colour.RED}, math.nan),
        ({"s": "é\u2028", "t": (1, 2)}, 0.0),
        ({"nan": math.nan}, 3.0),
    ],
)
def test_the_audit_fast_path_stores_the_same_bytes_with_and_without_orjson(
    arguments: dict[str, Any], latency: float
) -> None:
    if not canonical.FAST:
        pytest.skip("orjson is not installed")
    event = AuditEvent(
        method="tools/call",
        decision="allow",
        principal={"subject": "ada", "roles": ("a", "b"), "level": 2.5e-5},
        target="query",
        arguments=arguments,
        latency_ms=latency,
        result=ResultSummary(size=3, findings=(Finding("r", "low", "x", "m"),)),
    )
    out = []
    for flag in (True, False):
        canonical.FAST = flag
        try:
            out.append(fast_record(event, ()))
        finally:
            canonical.FAST = True
    assert out[0] == out[1]
    if out[0] is not None:
        assert out[0][1] == canonical.canonical(redact_record(event.as_dict(), ()))
