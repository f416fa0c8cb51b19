"""Caches keyed by caller input stay bounded in entries and bytes, and never change a decision.

A caller chooses the names it asks for: tool names, prompt names, resource
URIs. Every memo keyed by them (the policy's candidate, decision, visibility
and limit caches, the guard's per-principal visibility dicts) must hold a
bounded number of entries of bounded size, whatever the caller sends: a
name longer than the key limit is decided uncached, and the caches evict
their least recently used entries past their caps.
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Iterator
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_guard.guard import Guard
from mcp_guard.model import AccessRequest, Principal
from mcp_guard.policy import CompiledPolicy, policy_from_dict
from mcp_guard.policy import engine as engine_module

from ..test_policy_properties import policies

ALICE = Principal("alice", roles=frozenset({"dev"}))

POLICY = {
    "default": "deny",
    "roles": {"dev": {}},
    "limits": [{"id": "calls", "requests": 10, "window": "1m", "tools": ["run_*"]}],
    "rules": [
        {"id": "read", "effect": "allow", "roles": ["dev"], "tools": ["read_*", "list"]},
        {"id": "no-admin", "effect": "deny", "tools": ["admin_*"]},
        {"id": "docs", "effect": "allow", "roles": ["dev"], "resources": ["docs://*"]},
        {
            "id": "office",
            "effect": "allow",
            "roles": ["dev"],
            "tools": ["run_*"],
            "when": "request.arguments.n < 10",
        },
    ],
}

KEY_MAX = 256  # the brief's limit: longer names are decided uncached


def compiled() -> CompiledPolicy:
    return policy_from_dict(POLICY)


def caches(policy: CompiledPolicy) -> dict[str, Any]:
    """Every cache of a compiled policy whose keys hold caller-chosen names."""
    return {name: getattr(policy, name) for name in ("_cands", "_memo", "_seen", "_limit_cache", "_views")}


def key_strings(key: Any) -> Iterator[str]:
    if isinstance(key, str):
        yield key
    elif isinstance(key, (tuple, frozenset)):
        for part in key:
            yield from key_strings(part)


def retained_key_chars(policy: CompiledPolicy) -> int:
    return sum(len(s) for cache in caches(policy).values() for key in cache for s in key_strings(key))


def exercise(policy: CompiledPolicy, name: str) -> None:
    """Every lookup a caller's name reaches: decide (tool, resource), list visibility, limits, explain."""
    call = AccessRequest("tools/call", "call", "srv", "tool", name, arguments={"n": 1})
    read = AccessRequest("resources/read", "read", "srv", "resource", "docs://" + name)
    policy.decide(ALICE, call)
    policy.decide(ALICE, read)
    policy.visible(ALICE, "srv", "tool", name)
    policy.limits_for(ALICE, call)


def test_huge_names_are_never_kept_by_the_policy_caches() -> None:
    policy = compiled()
    exercise(policy, "read_notes")  # warm: the rules' own state is allocated before measuring
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(24):
            name = f"admin_{i}_" + "x" * (256 * 1024)  # denied: the shape of the reported attack
            exercise(policy, name)
            policy.explain(ALICE, AccessRequest("tools/call", "call", "srv", "tool", name))
            exercise(policy, f"read_{i}_" + "y" * (256 * 1024))
            del name
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # 48 names of 256 KiB went through; nothing of them may stay behind.
    assert grown < 256 * 1024, f"policy caches retained {grown} bytes"
    assert retained_key_chars(policy) < 4 * KEY_MAX
    for cache in caches(policy).values():
        for key in cache:
            assert all(len(s) <= KEY_MAX for s in key_strings(key))


def test_a_huge_name_is_decided_exactly_as_a_short_one() -> None:
    policy = compiled()
    for prefix, allowed in (("read_", True), ("admin_", False), ("other_", False)):
        name = prefix + "z" * 100_000
        for _ in range(2):
            d = policy.decide(ALICE, AccessRequest("tools/call", "call", "srv", "tool", name))
            assert d.allowed is allowed
            assert policy.visible(ALICE, "srv", "tool", name) is allowed


def test_many_short_names_keep_entries_and_bytes_capped() -> None:
    policy = compiled()
    for i in range(40_000):
        exercise(policy, f"read_{i:06d}_" + "n" * 180)
    for name, cache in caches(policy).items():
        assert len(cache) <= engine_module.CACHE_ENTRIES, name
        chars = sum(len(s) for key in cache for s in key_strings(key))
        assert chars <= engine_module.CACHE_KEY_CHARS, (name, chars)
    # All five together: well under what 40 000 names of 190 characters would take.
    assert retained_key_chars(policy) <= 5 * engine_module.CACHE_KEY_CHARS


def test_least_recently_used_entries_go_first() -> None:
    policy = compiled()
    hot = AccessRequest("tools/call", "call", "srv", "tool", "read_hot")
    policy.decide(ALICE, hot)
    view = policy._view(ALICE)
    hot_key = (view.serial, "srv", "tool", "read_hot", "call")
    for i in range(3 * engine_module.CACHE_ENTRIES):
        policy.decide(ALICE, AccessRequest("tools/call", "call", "srv", "tool", f"read_{i}"))
        if i % 1000 == 0:
            policy.decide(ALICE, hot)  # used now and then: never the oldest entry
    assert hot_key in policy._memo
    assert len(policy._memo) <= engine_module.CACHE_ENTRIES


def test_memo_off_still_decides() -> None:
    policy = compiled()
    policy.memo_size = 0
    request = AccessRequest("tools/call", "call", "srv", "tool", "read_x")
    assert policy.decide(ALICE, request).allowed and policy.decide(ALICE, request).allowed
    assert len(policy._memo) == 0 and policy.visible(ALICE, "srv", "tool", "read_x")
    assert len(policy._seen) == 0


def test_principals_with_huge_claims_are_not_cached() -> None:
    policy = compiled()
    big = Principal("b" * 10_000, roles=frozenset({"dev"}), groups=frozenset(f"g{i}" for i in range(5000)))
    request = AccessRequest("tools/call", "call", "srv", "tool", "read_x")
    for _ in range(3):
        assert policy.decide(big, request).allowed
        assert policy.visible(big, "srv", "tool", "read_x")
    assert retained_key_chars(policy) < 4 * KEY_MAX


# ------------------------------------------------------------------------------------ decisions unchanged

NAMES = st.one_of(
    st.sampled_from(["a", "ab", "b", "x/y"]),
    st.builds(lambda c, n: c * n, st.sampled_from(["a", "b", "x/"]), st.integers(200, 320)),
)


@st.composite
def requests(draw: Any) -> tuple[Principal, AccessRequest]:
    roles = frozenset(draw(st.lists(st.sampled_from(["r0", "r1", "r2", "r3"]), max_size=2)))
    kind = draw(st.sampled_from(["tool", "prompt", "resource"]))
    action = {"tool": "call", "prompt": "get", "resource": "read"}[kind]
    server = draw(st.sampled_from(["s0", "s1"]))
    return Principal("p", roles=roles), AccessRequest("m", action, server, kind, draw(NAMES))


@settings(max_examples=150, deadline=None)
@given(policies(), st.lists(requests(), min_size=1, max_size=12))
def test_cached_decisions_equal_uncached_evaluation(data: dict[str, Any], reqs: list[Any]) -> None:
    cached = policy_from_dict(data)
    for cache in caches(cached).values():  # tiny caps: evictions on nearly every request
        cache.entries = 2
    for principal, request in reqs * 2:
        fresh = policy_from_dict(data)
        fresh.memo_size = 0
        expected = fresh.decide(principal, request)
        got = cached.decide(principal, request)
        assert (got.allowed, got.rule, got.reasons, got.obligations) == (
            expected.allowed,
            expected.rule,
            expected.reasons,
            expected.obligations,
        )
        assert request.target is not None
        assert cached.visible(principal, request.server, request.kind, request.target) == fresh.visible(
            principal, request.server, request.kind, request.target
        )


# ------------------------------------------------------------------------------------ the guard's cache


class CountingPolicy:
    """Visible iff the name starts with ``ok``; counts the questions it gets."""

    def __init__(self) -> None:
        self.asked = 0

    def decide(self, principal: Principal, request: AccessRequest) -> Any:
        raise AssertionError("not used")

    def visible(self, principal: Principal, server: str, kind: str, name: str) -> bool:
        self.asked += 1
        return name.startswith("ok")


def guard_caches(guard: Guard) -> tuple[int, int]:
    """(entries, characters of names) in the guard's visibility cache."""
    dicts = list(guard._visibility.values())
    return sum(len(d) for d in dicts), sum(len(n) for d in dicts for n in d)


def test_guard_visibility_never_keeps_huge_names() -> None:
    policy = CountingPolicy()
    guard = Guard(policy=policy)
    for i in range(50):
        name = f"ok{i}" + "q" * 100_000
        assert guard.visible(ALICE, "srv", "tool", name)
        assert guard.visible(ALICE, "srv", "tool", name)
    assert policy.asked == 100  # decided uncached each time
    assert guard_caches(guard)[1] == 0


def test_guard_visibility_dicts_are_capped_per_principal_and_in_total() -> None:
    from mcp_guard import screening

    policy = CountingPolicy()
    guard = Guard(policy=policy)
    principals = [Principal(f"user{p}") for p in range(12)]
    for who in principals:
        for i in range(screening.VISIBILITY_NAMES + 500):
            guard.visible(who, "srv", "tool", f"ok{i}" + "n" * 200)
    for names in guard._visibility.values():
        assert len(names) <= screening.VISIBILITY_NAMES
    entries, chars = guard_caches(guard)
    assert entries <= screening.VISIBILITY_TOTAL
    assert chars <= screening.VISIBILITY_TOTAL * KEY_MAX
    # Still a cache: a name asked twice in a row is answered once.
    asked = policy.asked
    guard.visible(principals[0], "srv", "tool", "ok-again")
    guard.visible(principals[0], "srv", "tool", "ok-again")
    assert policy.asked == asked + 1


GUARD_RULES = {
    "default": "deny",
    "rules": [
        {"id": "a", "effect": "allow", "roles": ["r1"], "tools": ["a*"]},
        {"id": "x", "effect": "deny", "subjects": ["u2"], "tools": ["x/*"]},
        {"id": "any", "effect": "allow", "subjects": ["u2", "u3"]},
    ],
}


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), NAMES), min_size=1, max_size=40))
def test_guard_visibility_answers_equal_the_policy(asks: list[tuple[int, str]]) -> None:
    guard = Guard(policy=policy_from_dict(GUARD_RULES))
    for who, name in asks * 2:
        principal = Principal(f"u{who}", roles=frozenset({f"r{who}"}))
        fresh = policy_from_dict(GUARD_RULES)
        fresh.memo_size = 0
        assert guard.visible(principal, "srv", "tool", name) == fresh.visible(principal, "srv", "tool", name)
