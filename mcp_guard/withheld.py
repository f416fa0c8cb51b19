"""Which items a list screening withheld, per server: the call-time half of every list verdict.

A tool whose description the sanitizers blocked, or whose definition changed
since it was pinned, disappears from lists; this record makes sure it cannot be
used by name either, on every path (in-process, through the client wrapper,
through the portal). It holds verdicts about definitions, never about
principals: what the policy hides from one caller is decided per call.
"""

from __future__ import annotations

from collections.abc import Iterable


def _target_kind(kind: str) -> str:
    return "resource" if kind == "resource_template" else kind


class WithheldItems:
    """The latest screening verdict of each item a server listed (thread- and task-safe by replacement)."""

    def __init__(self) -> None:
        self._by_server: dict[str, dict[tuple[str, str], bool]] = {}

    def update(self, server: str, kind: str, listed: Iterable[str], withheld: Iterable[str]) -> None:
        """Record one screening of ``server``'s ``kind`` list: ``withheld`` of the ``listed`` names."""
        target = _target_kind(kind)
        current = dict(self._by_server.get(server, {}))
        for name in listed:
            current[(target, name)] = False
        for name in withheld:
            current[(target, name)] = True
        self._by_server[server] = current

    def state(self, server: str, kind: str, name: str) -> bool | None:
        """True: withheld; False: served; None: never screened."""
        return self._by_server.get(server, {}).get((_target_kind(kind), name))

    def names(self, server: str) -> list[tuple[str, str]]:
        """The ``(kind, name)`` pairs currently withheld on ``server``."""
        return sorted(k for k, v in self._by_server.get(server, {}).items() if v)
