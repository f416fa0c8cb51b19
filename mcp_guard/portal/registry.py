"""The server registry: upstreams registered at run time and the admin's approvals, in the state store.

Servers written in ``guard.toml`` are approved by being listed there; servers
added with ``mcp-guard servers add`` wait as ``pending`` until an admin runs
``mcp-guard servers approve``. ``revoke`` stops serving any server, including
a configured one; ``remove`` deletes only servers registered at run time, so it
can never lift a revocation. Every replica sharing the store sees the same registry; a
change is published on a channel so running portals pick it up at once, and
they re-read it periodically in case a message was missed.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import anyio
from pydantic import ValidationError

from ..config import UpstreamSection
from ..errors import ConfigError
from ..protocols import StateStore

Status = Literal["pending", "approved", "revoked"]

NAMES_KEY = "portal:servers"
ENTRY_KEY = "portal:server:"
CHANNEL = "portal:servers"


@dataclass(frozen=True, slots=True)
class Entry:
    """One registered server: its ``[[servers]]``-shaped spec (empty for a configured server) and status."""

    name: str
    status: Status
    definition: dict[str, Any] = field(default_factory=dict)
    changed_at: float = 0.0
    changed_by: str | None = None

    def spec(self) -> UpstreamSection:
        try:
            return UpstreamSection.model_validate({**self.definition, "name": self.name})
        except ValidationError as exc:
            raise ConfigError(str(exc.errors()[0].get("msg")), field=f"servers.{self.name}") from None


class Registry:
    """Reads and writes registry entries in a :class:`StateStore`."""

    def __init__(self, store: StateStore) -> None:
        self.store = store

    async def entries(self) -> list[Entry]:
        out: list[Entry] = []
        for name in sorted(await self.store.smembers(NAMES_KEY)):
            entry = await self.get(name)
            if entry is not None:
                out.append(entry)
        return out

    async def get(self, name: str) -> Entry | None:
        raw = await self.store.get(ENTRY_KEY + name)
        if raw is None:
            return None
        data = json.loads(raw)
        return Entry(
            name=name,
            status=data["status"],
            definition=dict(data.get("definition") or {}),
            changed_at=float(data.get("changed_at", 0.0)),
            changed_by=data.get("changed_by"),
        )

    async def _put(self, entry: Entry) -> None:
        await self.store.set(ENTRY_KEY + entry.name, json.dumps(asdict(entry), sort_keys=True).encode())
        await self.store.sadd(NAMES_KEY, entry.name)
        await self.store.publish(CHANNEL, entry.name)

    async def add(self, definition: dict[str, Any], *, by: str | None = None) -> Entry:
        """Register a server as ``pending``; its definition is validated like a ``[[servers]]`` entry."""
        try:
            spec = UpstreamSection.model_validate(definition)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err.get("loc", ()))
            raise ConfigError(str(err.get("msg")), field=f"servers.{loc}" if loc else "servers") from None
        existing = await self.get(spec.name)
        if existing is not None and existing.definition:
            raise ConfigError(f"server {spec.name!r} is already registered", field="servers.name")
        body = spec.model_dump(exclude_defaults=True, exclude={"name"})
        entry = Entry(spec.name, "pending", body, time.time(), by)
        await self._put(entry)
        return entry

    async def set_status(self, name: str, status: Status, *, by: str | None = None) -> Entry:
        """Approve or revoke a registered server (or revoke/re-approve a configured one by name)."""
        existing = await self.get(name)
        entry = Entry(name, status, existing.definition if existing else {}, time.time(), by)
        await self._put(entry)
        return entry

    async def restore(self, name: str, entry: Entry | None) -> None:
        """Put back an entry as it was read before a change (``None``: there was none).

        For a change that must not stand, such as an approval the audit trail could not record.
        """
        if entry is not None:
            await self._put(entry)
            return
        await self.store.delete(ENTRY_KEY + name)
        await self.store.srem(NAMES_KEY, name)
        await self.store.publish(CHANNEL, name)

    async def remove(self, name: str, *, configured: bool = False) -> bool:
        """Delete a server registered with :meth:`add`; False when there is no entry of that name.

        Removing never un-revokes: a configured server (``configured``, or an entry that holds
        only the status of a configured server) is refused, since deleting its entry would serve
        it again. Such a server can only be revoked (or re-approved) here.
        """
        existing = await self.get(name)
        if configured or (existing is not None and not existing.definition):
            where = (
                "is in the config file"
                if configured
                else "is not a registered server (its entry holds a configured server's status)"
            )
            raise ConfigError(
                f"server {name!r} {where}: it cannot be removed, only revoked "
                f"(`mcp-guard servers revoke {name}`); to drop a configured server, delete it from the file"
            )
        if existing is None:
            return False
        await self.store.delete(ENTRY_KEY + name)
        await self.store.srem(NAMES_KEY, name)
        await self.store.publish(CHANNEL, name)
        return True

    async def wait_change(self, timeout: float) -> None:
        """Return on a published change or after ``timeout`` seconds, whichever comes first."""
        with anyio.move_on_after(timeout):
            try:
                async for _ in self.store.subscribe(CHANNEL):
                    return
            except Exception:
                await anyio.sleep(timeout)


__all__ = ["CHANNEL", "Entry", "Registry", "Status"]
