"""The size bound of the request path: the same text as ``json.dumps``, without its per-call setup."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_guard.errors import PayloadTooLarge
from mcp_guard.limits import check_size, json_size, json_size_bound

values = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(), st.text(), st.sampled_from([b"x", object])
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=4), st.integers()), inner, max_size=4),
    ),
    max_leaves=16,
)


@settings(max_examples=1000, deadline=None)
@given(values)
def test_bound_is_the_length_of_the_ascii_encoding_and_never_below_the_exact_size(value: Any) -> None:
    text = json.dumps(value, separators=(",", ":"), default=str)
    assert json_size_bound(value) == len(text)
    assert json_size_bound(value) >= json_size(value)


def test_circular_values_are_refused_as_oversized() -> None:
    value: list[Any] = []
    value.append(value)
    with pytest.raises(PayloadTooLarge):
        check_size(value, 100, "request params")


def test_the_exact_size_decides_near_the_limit() -> None:
    value = {"t": "é" * 10}  # 68 bytes escaped, 28 in UTF-8
    assert json_size_bound(value) == 68
    assert check_size(value, 30, "arguments") == 28
    with pytest.raises(PayloadTooLarge):
        check_size(value, 25, "arguments")
