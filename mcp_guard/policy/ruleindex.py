"""The lookup from (server, kind, target) to the matchers that may apply, and the caches in front of it.

Only the matchers of the requested server and the wildcard-server matchers
are scanned; names written literally are found by dictionary lookup and
only glob patterns are matched one by one. Lookups are memoised in
:class:`BoundedCache` maps, which are keyed by what callers send and
therefore bounded in entries and in the characters their keys hold.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Generic, TypeVar

from .matchers import _Matcher

M = TypeVar("M", bound=_Matcher)
K = TypeVar("K", bound=tuple[Any, ...])
V = TypeVar("V")

#: The longest name (server, target, subject, role...) a cache key may hold: longer ones go uncached.
KEY_MAX = 256
#: What one key may hold in all (a key of several names).
KEY_WEIGHT_MAX = 2048
#: What a principal's key may hold (:func:`principal_weight`); a heavier principal is never cached.
PRINCIPAL_WEIGHT_MAX = 16384


def names_weight(*names: str | None) -> int:
    """:func:`key_weight` of a key whose strings are exactly these."""
    total = 0
    for name in names:
        if name is not None:
            if len(name) > KEY_MAX:
                return KEY_WEIGHT_MAX + 1
            total += len(name)
    return total


def principal_weight(subject: str, roles: frozenset[str], groups: frozenset[str], tenant: str | None) -> int:
    """What a principal's key holds: its names' characters, and 64 more per role and group."""
    total = len(subject) + (len(tenant) if tenant else 0) + 64 * (len(roles) + len(groups))
    for name in roles:
        total += len(name)
    for name in groups:
        total += len(name)
    return total


def key_weight(key: Any) -> int:
    """Characters a cache key holds: its strings, and those inside its tuples and frozensets.

    ``KEY_WEIGHT_MAX + 1`` for a key with one name longer than :data:`KEY_MAX`
    (such a key is never cached).
    """
    total = 0
    for part in key:
        if isinstance(part, str):
            if len(part) > KEY_MAX:
                return KEY_WEIGHT_MAX + 1
            total += len(part)
        elif isinstance(part, (tuple, frozenset)):
            for item in part:
                if not isinstance(item, str) or len(item) > KEY_MAX:
                    return KEY_WEIGHT_MAX + 1
                total += len(item) + 64
    return total


class BoundedCache(Generic[K, V]):
    """A memo bounded in entries and in the characters its keys hold, evicting the least recently used.

    Two generations approximate LRU at the cost of one dictionary lookup per
    hit: new and re-used entries go to ``young``; when it holds half the
    budget (``entries // 2`` keys or ``chars // 2`` characters) it becomes
    ``old`` and the previous ``old`` is dropped whole. An entry read from
    ``old`` moves back to ``young``, so whatever was used within the last
    generation survives. A key with a name longer than :data:`KEY_MAX` (or
    heavier than ``key_max``) is never stored; the caller
    evaluates it uncached. ``entries = 0`` stores nothing.

    No lock: threads racing on a write can overfill one generation by an
    entry each, and the next rotation starts from zero again - the bounds
    drift by at most the number of concurrent writers, never accumulate.
    """

    __slots__ = ("chars", "entries", "key_max", "old", "weight", "young")

    def __init__(self, entries: int, chars: int, key_max: int = KEY_WEIGHT_MAX) -> None:
        self.entries = entries
        self.chars = chars
        self.key_max = key_max
        self.young: dict[K, V] = {}
        self.old: dict[K, V] = {}
        self.weight = 0  # characters held by the keys of ``young``

    def get(self, key: K) -> V | None:
        hit = self.young.get(key)
        return hit if hit is not None or not self.old else self.promote(key)

    def promote(self, key: K) -> V | None:
        """The entry of the old generation (moved to the young one), or None."""
        hit = self.old.get(key)
        if hit is not None:
            self.put(key, hit)
        return hit

    def put(self, key: K, value: V, weight: int | None = None) -> None:
        """Store ``value`` unless the key is too heavy; ``weight`` is :func:`key_weight` if known."""
        if weight is None:
            weight = key_weight(key)
        if weight > self.key_max or self.entries <= 0:
            return
        young = self.young
        if len(young) >= (self.entries >> 1 or 1) or self.weight + weight > self.chars >> 1:
            self.old = young
            self.young = young = {}
            self.weight = 0
        young[key] = value
        self.weight += weight  # a key stored again counts twice: an overestimate, never an under-

    def resize(self, entries: int) -> None:
        """Change the entry cap (and drop every entry)."""
        self.entries = entries
        self.young, self.old, self.weight = {}, {}, 0

    def clear(self) -> None:
        self.resize(self.entries)

    def __len__(self) -> int:
        return len(self.young) + len(self.old)

    def __contains__(self, key: object) -> bool:
        return key in self.young or key in self.old

    def __iter__(self) -> Iterator[K]:
        """Every stored key (one re-used from the old generation may come twice)."""
        return iter([*self.young, *self.old])


class _Bucket(Generic[M]):
    __slots__ = ("anykind", "exact", "globbed")

    def __init__(self) -> None:
        self.exact: dict[str, dict[str, list[M]]] = {}
        self.globbed: dict[str, list[M]] = {}
        self.anykind: list[M] = []

    def add(self, item: M) -> None:
        if not item.kinds:
            self.anykind.append(item)
            return
        for kind, names in item.kinds.items():
            by_name = self.exact.setdefault(kind, {})
            for name in names.exact:
                by_name.setdefault(name, []).append(item)
            if names.has_globs:
                self.globbed.setdefault(kind, []).append(item)

    def collect(self, kind: str | None, target: str | None) -> list[M]:
        out = list(self.anykind)
        if kind is not None and target is not None:
            out.extend(self.exact.get(kind, {}).get(target, ()))
            for item in self.globbed.get(kind, ()):
                if item.kinds[kind].match(target):
                    out.append(item)
        return out


class _Index(Generic[M]):
    """server -> kind -> target -> matchers; servers named literally get their own bucket."""

    def __init__(self, items: Iterable[M]) -> None:
        self._by_server: dict[str, _Bucket[M]] = {}
        self._wild: _Bucket[M] = _Bucket()
        for item in items:
            if item.servers is None or item.servers.has_globs:
                self._wild.add(item)
            else:
                for server in item.servers.exact:
                    self._by_server.setdefault(server, _Bucket()).add(item)

    def lookup(self, server: str, kind: str | None, target: str | None) -> tuple[M, ...]:
        found: dict[int, M] = {}
        bucket = self._by_server.get(server)
        if bucket is not None:
            for item in bucket.collect(kind, target):
                found[item.index] = item
        for item in self._wild.collect(kind, target):
            if item.servers is None or item.servers.match(server):
                found[item.index] = item
        return tuple(found[i] for i in sorted(found))
