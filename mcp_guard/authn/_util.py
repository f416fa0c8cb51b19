"""Small shared helpers of the authentication package: durations, digests, claim lookup."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0, None: 1.0}


def parse_duration(value: str | float | int) -> float:
    """Seconds from ``30``, ``"90s"``, ``"15m"``, ``"1h"``, ``"30d"``; raises ValueError otherwise.

    Config files and CLI flags share this so an operator writes durations one way everywhere.
    """
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 15m, 1h or 30d")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = _DURATION.match(value)
        if match is None:
            raise ValueError(f"invalid duration {value!r} (expected e.g. 30s, 15m, 1h, 30d)")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds < 0:
        raise ValueError("duration must not be negative")
    return seconds


def token_digest(token: str) -> bytes:
    """The cache and lookup key of a credential: we never keep the credential itself."""
    return hashlib.sha256(token.encode("utf-8")).digest()


def claim(claims: Mapping[str, Any], path: str) -> Any:
    """Look up ``path`` in a claim set: an exact key first (namespaced URL claims contain dots),
    then a dotted walk (``realm_access.roles``). Missing -> None."""
    if path in claims:
        return claims[path]
    node: Any = claims
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def string_set(value: Any, what: str) -> frozenset[str]:
    """A claim holding names: a list of strings or one space-separated string.

    Anything else is an error rather than silently ignored: a group that vanished
    could let a caller slip past a deny rule that names it.
    """
    if value is None:
        return frozenset()
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return frozenset(value)
    raise ValueError(f"claim {what!r} must be a string or a list of strings")
