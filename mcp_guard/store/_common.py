"""Checks shared by the built-in stores."""

from __future__ import annotations

from collections.abc import Sequence


def check_distinct(hits: Sequence[tuple[str, int, float]]) -> None:
    """Refuse a key listed twice in one ``hit_many``: counting it once or twice would both be wrong."""
    if len({key for key, _, _ in hits}) != len(hits):
        raise ValueError("hit_many: the same counter key is listed twice")
