"""Revocation of credentials by id (API key id, JWT ``jti``) across processes.

The authoritative list is a set in the state store. Each process keeps an
in-memory copy so the cached-principal path checks revocation without I/O; the
copy follows the store through pub-sub (immediate where the backend delivers
messages) and a periodic full reload (the propagation bound when it does not).
"""

from __future__ import annotations

import logging
import math

import anyio

from ..protocols import StateStore

REVOKED_SET = "authn:revoked"
REVOKED_CHANNEL = "authn:revocations"

log = logging.getLogger(__name__)


class RevocationList:
    """Revoked credential ids, mirrored in memory.

    ``refresh_interval`` (seconds) is the longest a revocation made by another
    process can take to reach this one when pub-sub does not deliver.
    """

    def __init__(self, store: StateStore | None, *, refresh_interval: float = 2.0) -> None:
        self.store = store
        self.refresh_interval = refresh_interval
        self.ids: frozenset[str] = frozenset()

    def __contains__(self, credential_id: str) -> bool:
        return credential_id in self.ids

    async def revoke(self, credential_id: str) -> None:
        """Revoke now: this process at once, others on their next message or reload."""
        self.ids = self.ids | {credential_id}
        if self.store is not None:
            await self.store.sadd(REVOKED_SET, credential_id)
            await self.store.publish(REVOKED_CHANNEL, credential_id)

    async def is_revoked(self, credential_id: str) -> bool:
        """Authoritative check against the store (used on the uncached path only)."""
        if credential_id in self.ids:
            return True
        if self.store is None:
            return False
        if await self.store.sismember(REVOKED_SET, credential_id):
            self.ids = self.ids | {credential_id}
            return True
        return False

    async def reload(self) -> None:
        if self.store is not None:
            self.ids = frozenset(await self.store.smembers(REVOKED_SET))

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Keep the copy current until cancelled; reports started after the first load."""
        await self.reload()
        task_status.started()
        if self.store is None:
            await anyio.sleep(math.inf)
            return
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._follow)
            while True:
                await anyio.sleep(self.refresh_interval)
                try:
                    await self.reload()
                except Exception:  # keep the last good copy; the next reload retries
                    log.warning("revocation list reload failed", exc_info=True)

    async def _follow(self) -> None:
        assert self.store is not None
        while True:
            try:
                async for credential_id in self.store.subscribe(REVOKED_CHANNEL):
                    self.ids = self.ids | {credential_id}
            except Exception:
                log.warning("revocation subscription failed; relying on periodic reload", exc_info=True)
            await anyio.sleep(self.refresh_interval)
