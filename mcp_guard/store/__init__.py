"""State stores: where counters, revocations, pins and approvals live.

Each implements :class:`~mcp_guard.protocols.StateStore`; :func:`open_store`
picks one from a URL. Beyond the protocol, the built-in stores share these
optional operations (look them up with ``getattr`` to stay compatible with
protocol-only stores):

- ``hit_many(hits) -> list[RateDecision]``: several limits, all or nothing;
- ``set_if_absent(key, value, ttl=None) -> bool``;
- ``take(key) -> bytes | None``: get and delete at once (one-time tokens);
- ``keys(prefix="") -> list[str]``: list key-value and set keys.

``SQLiteStore`` and ``RedisStore`` are imported lazily so that the optional
``redis`` package is only needed by those who use it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .memory import MemoryStore
from .secret import shared_secret
from .url import open_store

if TYPE_CHECKING:
    from .redis import RedisStore as RedisStore
    from .sqlite import SQLiteStore

__all__ = ["MemoryStore", "SQLiteStore", "open_store", "shared_secret"]  # RedisStore: lazy, needs the extra


def __getattr__(name: str) -> Any:
    if name == "SQLiteStore":
        from .sqlite import SQLiteStore

        return SQLiteStore
    if name == "RedisStore":
        from .redis import RedisStore as RedisStore

        return RedisStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
