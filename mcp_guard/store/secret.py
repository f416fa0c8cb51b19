"""A random key every replica agrees on, created once through the shared store.

Used for the key that seals multi-round-trip request state (a follow-up may
land on any replica) and, where configured, audit and issuer keys. Whoever
can read the store can read these keys: protect it like a key file.
"""

from __future__ import annotations

import secrets

import anyio

from ..errors import GuardUnavailable
from ..protocols import StateStore

_KEY_PREFIX = "secret:"


async def shared_secret(store: StateStore, name: str, nbytes: int = 32) -> bytes:
    """Return the key called ``name``, generating ``nbytes`` random bytes on first use.

    Creation is set-if-absent, so replicas that start together all end up with
    the winner's key. Stores without ``set_if_absent`` fall back to a claim
    counter (``incr``): the first claimant writes, the others wait for it.
    A stored key of the wrong length is refused rather than silently replaced.
    """
    if not name or nbytes < 16:
        raise ValueError("shared_secret needs a name and at least 16 bytes")
    key = _KEY_PREFIX + name
    value = await store.get(key)
    if value is None:
        fresh = secrets.token_bytes(nbytes)
        set_if_absent = getattr(store, "set_if_absent", None)
        if set_if_absent is not None:
            await set_if_absent(key, fresh)
        elif await store.incr(key + ":claim") == 1:
            await store.set(key, fresh)
        value = await _await_value(store, key)
    if len(value) != nbytes:
        raise GuardUnavailable(
            f"shared secret {name!r} in the state store has {len(value)} bytes, expected {nbytes}"
        )
    return value


async def _await_value(store: StateStore, key: str) -> bytes:
    for _ in range(100):
        value = await store.get(key)
        if value is not None:
            return value
        await anyio.sleep(0.05)
    raise GuardUnavailable(f"shared secret {key!r} was claimed but never written to the state store")
