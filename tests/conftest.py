"""Fixtures shared by several test modules."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .browser_util import browser_page, chromium  # noqa: F401 - a real browser for the console's page tests
from .redis_server import RedisServer, require_redis_server
from .store_fixtures import redis_url, store  # noqa: F401 - shared by the store and approval tests


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    """A real redis-server for the module's tests; they skip, saying why, where none is installed."""
    binary = require_redis_server()
    with RedisServer(binary) as srv:
        yield srv
