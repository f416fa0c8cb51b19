"""The lookup from (server, kind, target) to the matchers that may apply, in file order.

Only the matchers of the requested server and the wildcard-server matchers
are scanned; names written literally are found by dictionary lookup and
only glob patterns are matched one by one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Generic, TypeVar

from .matchers import _Matcher

M = TypeVar("M", bound=_Matcher)


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
