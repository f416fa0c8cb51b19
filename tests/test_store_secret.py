"""One sealing key for every replica, created once."""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mcp_guard.errors import GuardUnavailable
from mcp_guard.protocols import RateDecision
from mcp_guard.store import MemoryStore, SQLiteStore, shared_secret


async def test_same_key_for_concurrent_callers_and_new_stores(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    stores = [SQLiteStore(path) for _ in range(4)]
    keys = await asyncio.gather(*(shared_secret(s, "request-state") for s in stores))
    assert len(set(keys)) == 1 and len(keys[0]) == 32
    later = SQLiteStore(path)
    assert await shared_secret(later, "request-state") == keys[0]
    assert await shared_secret(later, "audit", 48) != keys[0]
    for s in [*stores, later]:
        await s.aclose()


async def test_wrong_length_is_refused() -> None:
    store = MemoryStore()
    await store.set("secret:k", b"short")
    with pytest.raises(GuardUnavailable, match="5 bytes"):
        await shared_secret(store, "k")


async def test_too_small_is_rejected() -> None:
    with pytest.raises(ValueError):
        await shared_secret(MemoryStore(), "k", 8)


class ProtocolOnlyStore:
    """A user store with just the protocol (no set_if_absent): the claim counter path."""

    def __init__(self) -> None:
        self.inner = MemoryStore()

    async def hit(self, key: str, limit: int, window: float) -> RateDecision:
        return await self.inner.hit(key, limit, window)

    async def get(self, key: str) -> bytes | None:
        await asyncio.sleep(0)  # let other callers interleave
        return await self.inner.get(key)

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        await asyncio.sleep(0.01)
        await self.inner.set(key, value, ttl)

    async def delete(self, key: str) -> None:
        await self.inner.delete(key)

    async def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        return await self.inner.incr(key, amount, ttl)

    async def sadd(self, key: str, member: str) -> None:
        await self.inner.sadd(key, member)

    async def srem(self, key: str, member: str) -> None:
        await self.inner.srem(key, member)

    async def sismember(self, key: str, member: str) -> bool:
        return await self.inner.sismember(key, member)

    async def smembers(self, key: str) -> builtins.set[str]:
        return await self.inner.smembers(key)

    async def publish(self, channel: str, message: str) -> None:
        await self.inner.publish(channel, message)

    def subscribe(self, channel: str) -> AsyncIterator[str]:
        return self.inner.subscribe(channel)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_protocol_only_store_still_agrees_on_one_key() -> None:
    store = ProtocolOnlyStore()
    keys = await asyncio.gather(*(shared_secret(store, "seal") for _ in range(10)))
    assert len(set(keys)) == 1


async def test_shared_key_lets_one_replica_open_request_state_sealed_by_another(tmp_path: Path) -> None:
    """The wiring docs/deployment.md shows: the SDK's request-state codec keyed by ``shared_secret``."""
    from mcp.server.request_state import InvalidRequestState, RequestStateSecurity

    path = tmp_path / "state.db"
    replicas = [SQLiteStore(path), SQLiteStore(path)]
    keys = [await shared_secret(s, "request-state") for s in replicas]
    first, second = (RequestStateSecurity(keys=[k], audience="notes") for k in keys)
    token = first.codec.seal(b'{"step": 2}')
    assert second.codec.unseal(token) == b'{"step": 2}'
    # A replica that made up its own key (the SDK default) cannot open it.
    with pytest.raises(InvalidRequestState):
        RequestStateSecurity.ephemeral().codec.unseal(token)
    for s in replicas:
        await s.aclose()


async def test_guards_sharing_a_store_build_one_request_state_key(tmp_path: Path) -> None:
    from mcp_guard import Guard

    path = tmp_path / "state.db"
    stores = [SQLiteStore(path), SQLiteStore(path)]
    first, second = [await Guard(store=s, server="notes").request_state_security() for s in stores]
    assert first.audience == second.audience == "notes"
    assert second.codec.unseal(first.codec.seal(b"state")) == b"state"
    for s in stores:
        await s.aclose()
