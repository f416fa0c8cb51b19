"""RateLimiter: counter keys per dimension, several limits at once, clear refusals, fail closed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_guard import errors
from mcp_guard.errors import GuardUnavailable, RateLimited
from mcp_guard.model import AccessRequest, LimitSpec, Principal
from mcp_guard.protocols import RateDecision
from mcp_guard.ratelimit import RateLimiter, key_part
from mcp_guard.store import MemoryStore, SQLiteStore

ALICE = Principal(subject="alice", tenant="acme")
BOB = Principal(subject="bob", tenant="acme")


def call(server: str = "db", tool: str = "query") -> AccessRequest:
    return AccessRequest(method="tools/call", action="call", server=server, kind="tool", target=tool)


async def admitted(
    limiter: RateLimiter, principal: Principal, request: AccessRequest, limits: list[LimitSpec], n: int
) -> int:
    ok = 0
    for _ in range(n):
        try:
            await limiter.check(principal, request, limits)
            ok += 1
        except RateLimited:
            pass
    return ok


async def test_per_subject_and_server() -> None:
    limiter = RateLimiter(MemoryStore())
    spec = LimitSpec(id="u-s", requests=3, window=60, per=("subject", "server"))
    assert await admitted(limiter, ALICE, call("db"), [spec], 5) == 3
    assert await admitted(limiter, ALICE, call("files"), [spec], 5) == 3  # other server, own budget
    assert await admitted(limiter, BOB, call("db"), [spec], 5) == 3  # other subject, own budget


async def test_per_tenant_is_shared_by_its_members() -> None:
    limiter = RateLimiter(MemoryStore())
    spec = LimitSpec(id="tenant", requests=4, window=60, per=("tenant",))
    assert await admitted(limiter, ALICE, call(), [spec], 3) == 3
    assert await admitted(limiter, BOB, call(), [spec], 3) == 1
    other = Principal(subject="carol", tenant="globex")
    assert await admitted(limiter, other, call(), [spec], 3) == 3


async def test_per_target_and_missing_values_share_one_counter() -> None:
    limiter = RateLimiter(MemoryStore())
    spec = LimitSpec(id="t", requests=2, window=60, per=("subject", "target"))
    assert await admitted(limiter, ALICE, call(tool="a"), [spec], 3) == 2
    assert await admitted(limiter, ALICE, call(tool="b"), [spec], 3) == 2
    listing = AccessRequest(method="tools/list", action="list", server="db")
    assert await admitted(limiter, ALICE, listing, [spec], 3) == 2
    nobody = Principal(subject="x")
    tenant_spec = LimitSpec(id="tn", requests=1, window=60, per=("tenant",))
    assert await admitted(limiter, nobody, call(), [tenant_spec], 1) == 1
    assert (
        await admitted(limiter, Principal(subject="y"), call(), [tenant_spec], 1) == 0
    )  # no tenant: one bucket


async def test_refusal_carries_retry_after_and_reason() -> None:
    limiter = RateLimiter(MemoryStore())
    spec = LimitSpec(id="per-user-per-server", requests=1, window=30, per=("subject", "server"))
    await limiter.check(ALICE, call(), [spec])
    with pytest.raises(RateLimited) as info:
        await limiter.check(ALICE, call(), [spec])
    exc = info.value
    assert exc.code == errors.RATE_LIMITED
    assert exc.retry_after is not None and 29 < exc.retry_after <= 30
    assert exc.data == {"retryAfter": round(exc.retry_after, 3)}
    assert "per-user-per-server" in exc.reason and "subject=alice" in exc.reason and "server=db" in exc.reason
    assert exc.public_message == "Rate limit exceeded"  # nothing about the policy reaches the caller


async def test_a_refused_call_spends_no_budget_of_other_limits(tmp_path: Path) -> None:
    for store in (MemoryStore(), SQLiteStore(tmp_path / "s.db")):
        limiter = RateLimiter(store)
        wide = LimitSpec(id="wide", requests=10, window=60, per=("subject",))
        narrow = LimitSpec(id="narrow", requests=2, window=60, per=("subject", "target"))
        assert await admitted(limiter, ALICE, call(tool="hot"), [wide, narrow], 6) == 2
        # four refusals by "narrow" left "wide" with 8 of 10
        assert await admitted(limiter, ALICE, call(tool="cold"), [wide], 20) == 8
        await store.aclose()


async def test_retry_after_is_the_longest_of_the_exhausted_limits() -> None:
    limiter = RateLimiter(MemoryStore())
    short = LimitSpec(id="short", requests=1, window=5)
    long = LimitSpec(id="long", requests=1, window=100)
    await limiter.check(ALICE, call(), [short, long])
    with pytest.raises(RateLimited) as info:
        await limiter.check(ALICE, call(), [short, long])
    assert info.value.retry_after is not None and info.value.retry_after > 90
    assert "'short'" in info.value.reason and "'long'" in info.value.reason


async def test_no_limits_is_a_no_op() -> None:
    class Exploding(MemoryStore):
        async def hit(self, key: str, limit: int, window: float) -> RateDecision:
            raise AssertionError("store touched")

    await RateLimiter(Exploding()).check(ALICE, call(), [])


class BrokenStore(MemoryStore):
    async def hit(self, key: str, limit: int, window: float) -> RateDecision:
        raise ConnectionError("socket closed")

    async def hit_many(self, hits: object) -> list[RateDecision]:
        raise OSError("disk gone")


async def test_store_failure_fails_closed() -> None:
    limiter = RateLimiter(BrokenStore())
    with pytest.raises(GuardUnavailable, match="socket closed"):
        await limiter.check(ALICE, call(), [LimitSpec("a", 5, 60)])
    with pytest.raises(GuardUnavailable, match="disk gone"):
        await limiter.check(ALICE, call(), [LimitSpec("a", 5, 60), LimitSpec("b", 5, 60)])


@pytest.mark.parametrize(
    "spec",
    [
        LimitSpec("neg", -1, 60),
        LimitSpec("zero-window", 5, 0),
        LimitSpec("inf-window", 5, float("inf")),
        LimitSpec("dim", 5, 60, per=("subject", "ip")),
    ],
)
async def test_malformed_limits_fail_closed(spec: LimitSpec) -> None:
    with pytest.raises(GuardUnavailable, match=spec.id):
        await RateLimiter(MemoryStore()).check(ALICE, call(), [spec])


async def test_zero_requests_blocks_everything() -> None:
    limiter = RateLimiter(MemoryStore())
    assert await admitted(limiter, ALICE, call(), [LimitSpec("off", 0, 60)], 3) == 0


class HitOnlyStore(MemoryStore):
    """A user store without hit_many: limits are counted one by one."""

    hit_many = None  # type: ignore[assignment]


async def test_protocol_only_store_counts_sequentially_and_stops_at_the_first_refusal() -> None:
    store = HitOnlyStore()
    limiter = RateLimiter(store)
    first = LimitSpec(id="first", requests=1, window=60)
    second = LimitSpec(id="second", requests=5, window=60)
    await limiter.check(ALICE, call(), [first, second])
    with pytest.raises(RateLimited, match="first"):
        await limiter.check(ALICE, call(), [first, second])
    # the refusal by "first" did not reach "second": 4 of 5 left
    assert await admitted(limiter, ALICE, call(), [second], 10) == 4


async def test_concurrent_checks_are_exact() -> None:
    limiter = RateLimiter(MemoryStore())
    spec = LimitSpec(id="c", requests=25, window=60, per=("subject", "server"))
    results = await asyncio.gather(
        *(limiter.check(ALICE, call(), [spec]) for _ in range(100)), return_exceptions=True
    )
    assert sum(r is None for r in results) == 25
    assert all(isinstance(r, RateLimited) for r in results if r is not None)


def test_keys_are_readable_for_plain_values() -> None:
    limiter = RateLimiter(MemoryStore())
    spec = LimitSpec(id="per-user-per-server", requests=1, window=60, per=("subject", "server", "target"))
    assert limiter.keys_for(ALICE, call(), [spec]) == [
        "rl:per-user-per-server:subject=alice:server=db:target=tool/query"
    ]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80), st.text(max_size=80))
def test_key_parts_are_injective_and_separator_free(a: str, b: str) -> None:
    pa, pb = key_part(a), key_part(b)
    if pa != a:
        assert pa.startswith("#") and len(pa) == 41  # hashed form, which no plain value can take
    assert ":" not in pa
    if a != b:
        assert pa != pb
    assert key_part(None) not in (pa, pb)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(min_size=0, max_size=20), min_size=2, max_size=2))
def test_distinct_subject_server_pairs_get_distinct_keys(values: list[str]) -> None:
    subject, server = values
    limiter = RateLimiter(MemoryStore())
    spec = LimitSpec(id="x", requests=1, window=60, per=("subject", "server"))
    k1 = limiter.keys_for(Principal(subject=subject), call(server=server), [spec])[0]
    k2 = limiter.keys_for(Principal(subject=subject + ":server=" + server), call(server=""), [spec])[0]
    assert k1 != k2  # a crafted subject cannot collide with another principal's counter


async def test_two_limits_with_one_id_fail_closed() -> None:
    twins = [LimitSpec("same", 5, 60), LimitSpec("same", 1, 60)]
    with pytest.raises(GuardUnavailable, match="twice"):
        await RateLimiter(MemoryStore()).check(ALICE, call(), twins)
