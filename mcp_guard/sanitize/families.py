# ruff: noqa: RUF001
"""The family patterns, compiled for speed, and the search for them within one unit of text.

:mod:`.patterns` holds the sources as written; this module turns them into the
fast, lower-cased regexes the detector runs and collects the first match of
each family in a sentence or container. It is separate from :mod:`.injection`
so the detector module stays small; :mod:`.gate` and :mod:`.scoring` use
:data:`_ALL` without importing the detector.
"""

from __future__ import annotations

import re

from .patterns import ACCESS_VERB, FAMILIES, NEGATED, PRIVATE_PATH

_SOURCES = {"private": PRIVATE_PATH} | {name: pattern for name, (_, pattern) in FAMILIES.items()}
_SOURCES["access"] = ACCESS_VERB
_ALL = frozenset(_SOURCES)


def _lower_pattern(pattern: str) -> str:
    """Lower-case the literals of a pattern (escapes like ``\\S`` stay) so it can run without IGNORECASE.

    Matching lower-cased text with a lower-cased pattern is several times faster
    in ``re`` than case-insensitive matching, and this runs on every text field.
    """
    return re.sub(r"(?<!\\)[A-Z]", lambda m: m.group(0).lower(), pattern)


def _top_level_branches(pattern: str) -> list[str]:
    """Split a pattern at its top-level ``|`` (outside groups and character classes)."""
    parts: list[str] = []
    depth = start = i = 0
    in_class = False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "|" and depth == 0:
            parts.append(pattern[start:i])
            start = i + 1
        i += 1
    parts.append(pattern[start:])
    return parts


def _factor_boundaries(pattern: str) -> str:
    """Hoist the leading ``\\b`` of branches into one group.

    ``re`` then tests the word boundary once per position instead of once per
    branch, and inside the group each branch starts with a literal it can
    reject in one step: four to eight times faster on ordinary prose.
    """
    branches = _top_level_branches(pattern)
    bounded = [b[2:] for b in branches if b.startswith("\\b")]
    rest = [b for b in branches if not b.startswith("\\b")]
    head = ["\\b(?:" + "|".join(bounded) + ")"] if bounded else []
    return "|".join(head + rest)


_COMPILED = {
    name: re.compile(_factor_boundaries(_lower_pattern(pattern)), re.MULTILINE)
    for name, pattern in _SOURCES.items()
}


def _collect(segment: str, fams: frozenset[str] | set[str]) -> dict[str, str]:
    """Family -> first matching text (lower-cased) within one sentence or container."""
    found: dict[str, str] = {}
    for name, pattern in _COMPILED.items():
        if name in fams:
            for m in pattern.finditer(segment):
                if name in ("private", "access") and _negated(segment, m.start()):
                    continue
                if name in _PROHIBITABLE and _prohibited(segment, m.start()):
                    continue  # "never run rm -rf without asking" is a safety rule, not an order
                if name in _QUOTABLE and _quoted(segment, m.start()):
                    continue  # a scanner or a news result quoting "ignore previous instructions" reports it
                found[name] = m.group(0).strip()[:80]
                break
    return found


_PROHIBITABLE = frozenset({"destructive", "dangerous", "no_confirm"})
_PROHIBITION = re.compile(
    r"\b(?:never|do\s+not|don'?t|must\s+not|should\s+not|shouldn'?t|cannot|can'?t|not\s+allowed\s+to|"
    r"no\s+longer|nie(?:mals)?|jamais|nunca|絶対に|不要|절대)\b"
)


def _prohibited(text: str, start: int) -> bool:
    """A prohibition earlier in the same clause (no ``,;:`` in between) governs the match."""
    window = text[max(0, start - 50) : start]
    cut = max(window.rfind(","), window.rfind(";"), window.rfind(":"))
    return _PROHIBITION.search(window[cut + 1 :]) is not None


_QUOTABLE = frozenset({"override", "access", "secrecy"})
#: Quotation marks of other languages (guillemets, CJK corner brackets, German low-high quotes).
_OTHER_QUOTES = (("«", "»"), ("「", "」"), ("『", "』"), ("„", "“"))
_OPEN_SINGLE = re.compile(r"(?:^|(?<=[\s(\[:]))['‘]")
_CLOSE_SINGLE = re.compile(r"['’](?=[\s.,;:)\]!?]|$)")


def _quoted(text: str, start: int) -> bool:
    """The match sits inside a quotation opened earlier in the unit and not yet closed."""
    before = text[:start]
    if before.count('"') % 2 == 1 or before.count("“") > before.count("”"):
        return True
    if not before.isascii() and any(before.count(a) > before.count(b) for a, b in _OTHER_QUOTES):
        return True
    opened = None
    for m in _OPEN_SINGLE.finditer(before):
        opened = m.end()
    return opened is not None and _CLOSE_SINGLE.search(before, opened) is None


def _negated(text: str, start: int) -> bool:
    window = text[max(0, start - 30) : start]
    return NEGATED.search(window) is not None
