"""The subscription table's counting: the upstream is unsubscribed exactly when nobody is left."""

from __future__ import annotations

import gc
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from mcp_guard.portal.subscriptions import SubscriptionTable

CHANNELS = [("feed",), ("feed", "subject", "alice"), ("other",)]
URIS = ["a://1", "a://2"]
ops = st.lists(
    st.tuples(
        st.sampled_from(["add", "remove", "drop"]),
        st.sampled_from(CHANNELS),
        st.sampled_from(URIS),
        st.integers(0, 3),
    ),
    max_size=40,
)


async def _nothing(uri: str) -> None:
    return None


@given(ops)
def test_remove_and_drop_report_exactly_the_keys_that_became_empty(steps: list[Any]) -> None:
    table = SubscriptionTable()
    model: dict[tuple[Any, str], set[int]] = {}
    for op, channel, uri, token in steps:
        if op == "add":
            table.add(channel, uri, token, _nothing)
            model.setdefault((channel, uri), set()).add(token)
        elif op == "remove":
            held = model.get((channel, uri), set())
            emptied = table.remove(channel, uri, token)
            was_there = token in held
            held.discard(token)
            assert emptied == (was_there and not held)
        else:
            emptied_keys = set(table.drop(token))
            expected = set()
            for key, held in model.items():
                if token in held:
                    held.discard(token)
                    if not held:
                        expected.add(key)
            assert emptied_keys == expected
        for ch in CHANNELS:
            assert table.holds(ch) == any(k[0] == ch and v for k, v in model.items())
            assert table.uris(ch) == sorted(u for (c, u), v in model.items() if c == ch and v)


async def test_a_vanished_connection_is_pruned_and_lost_channels_end_their_streams() -> None:
    class Connection:
        pass

    table = SubscriptionTable()
    delivered: list[str] = []
    ended: list[str] = []

    async def deliver(uri: str) -> None:
        delivered.append(uri)

    conn = Connection()
    table.add(("feed",), "a://1", id(conn), deliver, connection=conn)
    table.add(("feed",), "a://1", "stream", deliver, on_lost=lambda: ended.append("stream"))
    assert await table.deliver(("feed",), "a://1") == 2
    del conn
    gc.collect()
    assert table.prune() == []  # the listen stream still holds the key
    assert await table.deliver(("feed",), "a://1") == 1
    assert table.lose(("feed",)) == 1 and ended == ["stream"]
    assert not table.holds(("feed",)) and await table.deliver(("feed",), "a://1") == 0
