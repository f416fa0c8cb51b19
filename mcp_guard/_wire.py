"""The JSON form of MCP values as they travel (camelCase keys, no nulls), in one place."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def to_wire(value: Any) -> dict[str, Any]:
    """A pydantic MCP model as its wire dict; a mapping already in wire form is copied."""
    if type(value) is dict or isinstance(value, Mapping):
        return dict(value)
    data: dict[str, Any] = value.model_dump(by_alias=True, mode="json", exclude_none=True)
    return data
