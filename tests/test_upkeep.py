"""The guard's background jobs run on anyio: ``async with guard:`` works under asyncio and trio."""

from __future__ import annotations

import anyio
import pytest

from mcp_guard.guard import Guard
from mcp_guard.model import Principal
from mcp_guard.protocols import Credential


class FollowingResolver:
    """A resolver with background upkeep (like revocation following) that reports its life."""

    def __init__(self) -> None:
        self.started = 0
        self.stopped = 0

    async def resolve(self, credential: Credential) -> Principal:
        return Principal("u")

    def peek(self, token: str | None) -> Principal | None:
        return None

    async def run(self) -> None:
        self.started += 1
        try:
            await anyio.sleep_forever()
        finally:
            self.stopped += 1


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_upkeep_runs_inside_async_with_on_every_backend(backend: str) -> None:
    resolver = FollowingResolver()
    follower = FollowingResolver()

    async def main() -> None:
        guard = Guard(resolver=resolver)  # type: ignore[arg-type]
        async with guard:
            guard.run_in_background(follower.run)  # registered while running: starts at once
            await anyio.sleep(0.05)
            assert resolver.started == 1 and follower.started == 1
        assert resolver.stopped == 1 and follower.stopped == 1

    anyio.run(main, backend=backend)


def test_lazy_start_runs_on_asyncio_and_stops_with_the_guard() -> None:
    resolver = FollowingResolver()

    async def main() -> None:
        guard = Guard(resolver=resolver)  # type: ignore[arg-type]
        guard.ensure_background()
        guard.ensure_background()  # idempotent
        await anyio.sleep(0.05)
        assert resolver.started == 1
        await guard.aclose()
        await anyio.sleep(0.05)
        assert resolver.stopped == 1

    anyio.run(main, backend="asyncio")


def test_lazy_start_under_trio_waits_for_async_with() -> None:
    resolver = FollowingResolver()

    async def main() -> None:
        guard = Guard(resolver=resolver)  # type: ignore[arg-type]
        guard.ensure_background()
        await anyio.sleep(0.05)
        assert resolver.started == 0
        await guard.aclose()

    anyio.run(main, backend="trio")
