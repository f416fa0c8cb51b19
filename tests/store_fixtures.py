"""The ``store`` fixture: one state store per backend (memory, SQLite, a real Redis when installed).

Import ``redis_url`` and ``store`` into a test module to run its tests against every backend.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from mcp_guard.protocols import StateStore
from mcp_guard.store import open_store

from .redis_server import RedisServer, redis_binary

_prefixes = itertools.count()


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str | None]:
    if redis_binary() is None:
        yield None
        return
    with RedisServer() as server:
        yield server.url


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, redis_url: str | None
) -> AsyncIterator[StateStore]:
    if request.param == "memory":
        s: StateStore = open_store("memory://")
    elif request.param == "sqlite":
        s = open_store("sqlite:///state.db?poll=0.02", base_dir=tmp_path)
    else:
        if redis_url is None:
            pytest.skip("redis-server not installed (apt-get install -y redis-server)")
        s = open_store(f"{redis_url}?prefix=t{next(_prefixes)}:")
    yield s
    await s.aclose()
