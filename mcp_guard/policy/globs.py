"""Glob matching for policy selectors: ``*``, ``?``, ``[...]``; case-sensitive; NFC-normalised.

Patterns are translated once into one regular expression per selector; names
without metacharacters go into a frozenset so the common case is a hash
lookup. ``*`` spans ``/`` (resource URIs are matched whole).
"""

from __future__ import annotations

import fnmatch
import re
import unicodedata
from collections.abc import Iterable

__all__ = ["NameSet", "is_glob", "nfc", "translate"]


def nfc(name: str) -> str:
    return name if name.isascii() else unicodedata.normalize("NFC", name)


def is_glob(pattern: str) -> bool:
    return any(ch in pattern for ch in "*?[")


def translate(pattern: str) -> str:
    """Regex for one glob, exactly as :func:`fnmatch.fnmatchcase` reads it (ranges, ``[!...]``, escapes)."""
    return fnmatch.translate(pattern)


class NameSet:
    """A compiled list of glob patterns; ``match`` one name or ``match_any`` of several."""

    __slots__ = ("exact", "patterns", "regex")

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = tuple(nfc(p) for p in patterns)
        self.exact = frozenset(p for p in self.patterns if not is_glob(p))
        globs = [translate(p) for p in self.patterns if is_glob(p)]
        self.regex = re.compile("|".join(f"(?:{g})" for g in globs)) if globs else None

    def match(self, name: str | None) -> bool:
        if name is None:
            return False
        return name in self.exact or (self.regex is not None and self.regex.fullmatch(name) is not None)

    def match_any(self, names: frozenset[str]) -> bool:
        if not self.exact.isdisjoint(names):
            return True
        regex = self.regex
        return regex is not None and any(regex.fullmatch(name) is not None for name in names)

    @property
    def has_globs(self) -> bool:
        return self.regex is not None

    def __repr__(self) -> str:
        return f"NameSet({list(self.patterns)!r})"
