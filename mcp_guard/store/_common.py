"""Checks shared by the built-in stores."""

from __future__ import annotations

from collections.abc import Sequence


def check_distinct(hits: Sequence[tuple[str, int, float]]) -> None:
    """Refuse a key listed twice in one ``hit_many``: counting it once or twice would both be wrong."""
    if len({key for key, _, _ in hits}) != len(hits):
        raise ValueError("hit_many: the same counter key is listed twice")


#: Budget periods are fixed windows aligned to this instant, Monday 1970-01-05 00:00 UTC: a day
#: starts at midnight UTC, an hour on the hour, a week on Monday (the Unix epoch was a Thursday).
PERIOD_ANCHOR = 345_600

#: How long a budget counter outlives its window, so a reading just after the rollover still
#: finds the last window's figure and a slow clock never sees its window vanish early.
PERIOD_GRACE = 60

#: One charge against a budget counter: key, cost, limit, period (whole seconds).
Spend = tuple[str, int, int, int]


def period_window(now: float, period: int) -> tuple[int, int]:
    """Start and end (Unix seconds) of the fixed window of ``period`` seconds holding ``now``."""
    start = PERIOD_ANCHOR + int((now - PERIOD_ANCHOR) // period) * period
    return start, start + period


def check_spends(items: Sequence[Spend]) -> None:
    """Refuse a counter listed twice or a malformed charge (a negative cost would refund)."""
    if len({key for key, _, _, _ in items}) != len(items):
        raise ValueError("spend_many: the same budget key is listed twice")
    for key, cost, limit, period in items:
        if cost < 0 or limit < 0 or period < 1:
            raise ValueError(
                f"spend_many: invalid charge for {key!r}: cost {cost}, limit {limit}, period {period}s"
            )
