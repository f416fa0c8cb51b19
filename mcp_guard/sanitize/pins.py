"""Pinning: the rug-pull defence.

A tool approved today can change tomorrow: same name, new description that
now asks for ``~/.ssh/id_rsa``. On a server's first approval every item's
canonical JSON (sorted keys, no whitespace, UTF-8) is hashed with SHA-256 and
stored per server in the state store. Afterwards an item whose hash differs
is withheld and its new version kept as *pending* until an operator approves
it (``mcp-guard pins approve``), who can first read a per-field diff. New
items are pinned on sight or wait for approval, as the policy says.

Approved hashes are cached in memory for ``ttl`` seconds, so checking a list
costs hashing plus dictionary lookups, not a store round trip per item. An
approval (:meth:`PinStore.approve`, :meth:`PinStore.pin`) is published on
:data:`PINS_CHANNEL` with the server's name; every PinStore whose
:meth:`PinStore.run` follows the same store drops its cache for that server at
once. A lost message only means the cache expires as it would anyway.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import logging
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

import anyio
import anyio.abc

from ..protocols import StateStore
from .policy import item_label

PinStatus = Literal["pinned", "changed", "new"]

#: The state-store channel on which approvals are announced (message: the server's name).
PINS_CHANNEL = "pins:approved"

log = logging.getLogger(__name__)


def canonical_json(item: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: two equal JSON values always give the same bytes."""
    return json.dumps(item, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def item_hash(item: Any) -> str:
    return hashlib.sha256(canonical_json(item)).hexdigest()


@dataclass(frozen=True, slots=True)
class PinCheck:
    """Outcome of checking one list against the pins: what may be shown and why the rest may not."""

    allowed: list[Any]
    unchanged: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    new: tuple[str, ...] = ()
    pending: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    first_use: bool = False

    @property
    def withheld(self) -> tuple[str, ...]:
        """Names held back: changed items, and new items that wait for approval."""
        return self.changed + self.pending


@dataclass(frozen=True, slots=True)
class PinEntry:
    server: str
    kind: str
    name: str
    status: PinStatus
    hash: str | None
    pending_hash: str | None = None


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One differing leaf between the approved and the pending version (JSON Pointer path)."""

    path: str
    old: Any = None
    new: Any = None
    change: Literal["added", "removed", "changed"] = "changed"


@dataclass
class _Cached:
    loaded_at: float
    hashes: dict[str, str] = field(default_factory=dict)
    pending: dict[str, str] = field(default_factory=dict)
    initialized: bool = False


def _k(*parts: str) -> str:
    return "pins:" + ":".join(quote(p, safe="") for p in parts)


class PinStore:
    """Pins per server in a :class:`~mcp_guard.protocols.StateStore` (memory, SQLite or Redis)."""

    def __init__(
        self,
        store: StateStore,
        *,
        ttl: float = 5.0,
        clock: Any = time.monotonic,
        channel: str = PINS_CHANNEL,
        retry_interval: float = 2.0,
    ) -> None:
        self.store = store
        self.ttl = ttl
        self.channel = channel
        #: Seconds to wait before following the channel again after the subscription broke.
        self.retry_interval = retry_interval
        self._clock = clock
        self._cache: dict[tuple[str, str], _Cached] = {}

    # -- change notification -------------------------------------------------------------------
    def forget(self, server: str | None = None) -> None:
        """Drop the cached pins of ``server`` (every server when None); the next check re-reads them."""
        if server is None:
            self._cache.clear()
            return
        for key in [k for k in self._cache if k[0] == server]:
            self._cache.pop(key, None)

    async def _announce(self, server: str) -> None:
        try:
            await self.store.publish(self.channel, server)
        except Exception:  # the approval is stored; other replicas see it when their cache expires
            log.warning(
                "could not announce the approval for %r; other replicas see it within %ss",
                server,
                self.ttl,
                exc_info=True,
            )

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Follow approvals made elsewhere until cancelled, dropping the cache of each named server.

        When the subscription breaks the whole cache is dropped and the
        channel is followed again after ``retry_interval``.
        """
        task_status.started()
        if self.ttl <= 0:  # nothing is cached, nothing to drop
            await anyio.sleep(math.inf)
        while True:
            try:
                async for server in self.store.subscribe(self.channel):
                    self.forget(server)
            except Exception:
                log.warning("pin approval subscription failed; relying on cache expiry", exc_info=True)
            self.forget()
            await anyio.sleep(self.retry_interval)

    # -- reading -------------------------------------------------------------------------------
    async def _load(self, server: str, kind: str) -> _Cached:
        cached = self._cache.get((server, kind))
        if cached is not None and self._clock() - cached.loaded_at < self.ttl:
            return cached
        fresh = _Cached(self._clock())
        fresh.initialized = await self.store.get(_k(server, "initialized")) is not None
        fresh.hashes = await self._hashes(server, kind, "index", "approved")
        fresh.pending = await self._hashes(server, kind, "pending", "pending")
        self._cache[(server, kind)] = fresh
        return fresh

    async def _hashes(self, server: str, kind: str, members: str, bucket: str) -> dict[str, str]:
        """Item name -> hash of the ``kind`` items listed in set ``members``, read from ``bucket``."""
        out: dict[str, str] = {}
        for member in await self.store.smembers(_k(server, members)):
            member_kind, _, name = member.partition(":")
            if member_kind != kind:
                continue
            raw = await self.store.get(_k(server, bucket, kind, name))
            if raw is not None:
                out[name] = json.loads(raw)["hash"]
        return out

    async def _record(self, bucket: str, server: str, kind: str, name: str, item: Any, digest: str) -> None:
        body = {"hash": digest, "item": item, "at": time.time()}
        await self.store.set(_k(server, bucket, kind, name), canonical_json(body))
        await self.store.sadd(_k(server, "index" if bucket == "approved" else "pending"), f"{kind}:{name}")
        await self.store.sadd("pins:servers", server)

    async def _read(self, bucket: str, server: str, kind: str, name: str) -> dict[str, Any] | None:
        raw = await self.store.get(_k(server, bucket, kind, name))
        return json.loads(raw) if raw is not None else None

    # -- the hot path --------------------------------------------------------------------------
    async def check(
        self,
        server: str,
        kind: str,
        items: Sequence[Any],
        *,
        approve_new: Literal["auto", "require"] = "auto",
        trust_first_use: bool = True,
    ) -> PinCheck:
        """Compare a list with the pins; pin on first use; withhold what changed.

        ``trust_first_use=False`` treats a server nobody approved yet like any
        other: every item waits (``servers approve`` flow for servers added at
        run time).
        """
        cached = await self._load(server, kind)
        labels = [item_label(item, i) for i, item in enumerate(items)]
        digests = [item_hash(item) for item in items]
        if not cached.initialized and trust_first_use:
            for label, item, digest in zip(labels, items, digests, strict=True):
                await self._record("approved", server, kind, label, item, digest)
                cached.hashes[label] = digest
            await self.store.set(_k(server, "initialized"), b"1")
            cached.initialized = True
            return PinCheck(list(items), unchanged=tuple(labels), first_use=True)
        allowed: list[Any] = []
        unchanged: list[str] = []
        changed: list[str] = []
        new: list[str] = []
        pending: list[str] = []
        for label, item, digest in zip(labels, items, digests, strict=True):
            approved = cached.hashes.get(label)
            if approved == digest:
                allowed.append(item)
                unchanged.append(label)
                continue
            if approved is None and cached.initialized and approve_new == "auto":
                await self._record("approved", server, kind, label, item, digest)
                cached.hashes[label] = digest
                allowed.append(item)
                new.append(label)
                continue
            (changed if approved is not None else pending).append(label)
            if cached.pending.get(label) != digest:
                await self._record("pending", server, kind, label, item, digest)
                cached.pending[label] = digest
        present = set(labels)
        removed = tuple(sorted(n for n in cached.hashes if n not in present))
        return PinCheck(allowed, tuple(unchanged), tuple(changed), tuple(new), tuple(pending), removed)

    # -- operator actions ----------------------------------------------------------------------
    async def pin(self, server: str, kind: str, items: Iterable[Any]) -> list[str]:
        """Approve these exact items now (the admin's act, e.g. ``servers approve``)."""
        names = []
        for index, item in enumerate(items):
            label = item_label(item, index)
            await self._record("approved", server, kind, label, item, item_hash(item))
            await self._drop_pending(server, kind, label)
            names.append(label)
        await self.store.set(_k(server, "initialized"), b"1")
        self._cache.pop((server, kind), None)
        await self._announce(server)
        return names

    async def approve(
        self, server: str, kind: str | None = None, name: str | None = None, *, digest: str | None = None
    ) -> list[tuple[str, str]]:
        """Approve pending versions (all of a server, one kind, or one item); returns what was approved.

        With ``digest``, only a pending version of that hash is approved: the one a reviewer saw.
        """
        done: list[tuple[str, str]] = []
        for member in sorted(await self.store.smembers(_k(server, "pending"))):
            member_kind, _, member_name = member.partition(":")
            if (kind is not None and member_kind != kind) or (name is not None and member_name != name):
                continue
            body = await self._read("pending", server, member_kind, member_name)
            if digest is not None and (body is None or body["hash"] != digest):
                continue
            if body is not None:
                await self._record("approved", server, member_kind, member_name, body["item"], body["hash"])
            await self._drop_pending(server, member_kind, member_name)
            self._cache.pop((server, member_kind), None)
            done.append((member_kind, member_name))
        if done:
            await self.store.set(_k(server, "initialized"), b"1")
            await self._announce(server)
        return done

    async def _drop_pending(self, server: str, kind: str, name: str) -> None:
        await self.store.delete(_k(server, "pending", kind, name))
        await self.store.srem(_k(server, "pending"), f"{kind}:{name}")

    async def servers(self) -> builtins.list[str]:
        return sorted(await self.store.smembers("pins:servers"))

    async def list(self, server: str | None = None) -> builtins.list[PinEntry]:
        """Every pinned or pending item, with its status, for one server or all."""
        out: builtins.list[PinEntry] = []
        for srv in [server] if server is not None else await self.servers():
            approved = {m.partition(":")[::2] for m in await self.store.smembers(_k(srv, "index"))}
            waiting = {m.partition(":")[::2] for m in await self.store.smembers(_k(srv, "pending"))}
            for kind, name in sorted(approved | waiting):
                pinned = await self._read("approved", srv, kind, name) if (kind, name) in approved else None
                pend = await self._read("pending", srv, kind, name) if (kind, name) in waiting else None
                status: PinStatus = "pinned" if pend is None else ("changed" if pinned is not None else "new")
                out.append(
                    PinEntry(
                        srv,
                        kind,
                        name,
                        status,
                        pinned["hash"] if pinned else None,
                        pend["hash"] if pend else None,
                    )
                )
        return out

    async def versions(self, server: str, kind: str, name: str) -> tuple[Any, Any]:
        """The approved and the pending definition of an item (None where there is none)."""
        pinned = await self._read("approved", server, kind, name)
        pend = await self._read("pending", server, kind, name)
        return (pinned["item"] if pinned else None), (pend["item"] if pend else None)

    async def diff(self, server: str, kind: str, name: str) -> builtins.list[FieldChange] | None:
        """Per-field differences between the approved and the pending version; None if nothing is pending."""
        pend = await self._read("pending", server, kind, name)
        if pend is None:
            return None
        pinned = await self._read("approved", server, kind, name)
        if pinned is None:
            return [FieldChange("", None, pend["item"], "added")]
        return diff_items(pinned["item"], pend["item"])


def diff_items(old: Any, new: Any, path: str = "") -> list[FieldChange]:
    """Leaf-level differences between two JSON values, as JSON Pointer paths."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        out: list[FieldChange] = []
        for key in sorted(set(old) | set(new), key=str):
            child = f"{path}/{str(key).replace('~', '~0').replace('/', '~1')}"
            if key not in old:
                out.append(FieldChange(child, None, new[key], "added"))
            elif key not in new:
                out.append(FieldChange(child, old[key], None, "removed"))
            else:
                out.extend(diff_items(old[key], new[key], child))
        return out
    if isinstance(old, list) and isinstance(new, list):
        out = []
        for index in range(max(len(old), len(new))):
            child = f"{path}/{index}"
            if index >= len(old):
                out.append(FieldChange(child, None, new[index], "added"))
            elif index >= len(new):
                out.append(FieldChange(child, old[index], None, "removed"))
            else:
                out.extend(diff_items(old[index], new[index], child))
        return out
    if old != new or type(old) is not type(new):
        return [FieldChange(path or "/", old, new, "changed")]
    return []
