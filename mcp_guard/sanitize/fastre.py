"""A ``re`` pattern that runs on RE2 for ASCII text: the same first match, found in linear time.

The technique scorer's signal patterns open with alternations that Python's ``re`` retries at
every position (``\\b[a-z]+_(?:token|key)``, ``(?:\\w+\\s+)?model``), so one search costs tens of
microseconds on a sentence; RE2 runs them as an automaton. The two engines agree on ASCII text
for these patterns: RE2 picks the leftmost match with Perl's preference order, and on ASCII
``\\b`` and ``\\w`` mean the same in both. ``\\s`` differs only on vertical tab and the
``\\x1c``-``\\x1f`` separators, which the scanner removes with the other control characters
before any pattern runs. Text with other characters, and patterns RE2 cannot run (look-around,
back-references, flags), go to ``re`` as written, so the answer never depends on the engine.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import re2
from re2 import Options, _re2

_UNANCHORED = _re2.RE2.Anchor.UNANCHORED
_OPTIONS = Options()
_OPTIONS.never_capture = True  # only the whole match is read
_OPTIONS.log_errors = False


class FastPattern:
    """``search`` answers ``(start, end, matched text)`` or None, from RE2 when it can."""

    __slots__ = ("_match", "pattern")

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self.pattern = pattern
        self._match = None
        if pattern.flags & ~re.UNICODE == 0 and "(?<" not in pattern.pattern and "$" not in pattern.pattern:
            compiled = _re2.RE2(pattern.pattern.encode("utf-8"), _OPTIONS)
            if compiled.ok():
                self._match = compiled.Match

    def search(self, text: str, start: int = 0) -> tuple[int, int, str] | None:
        if self._match is not None and text.isascii():
            data = text.encode("ascii")
            (begin, end), *_ = self._match(_UNANCHORED, data, start, len(data))
            return None if begin < 0 else (begin, end, text[begin:end])
        m = self.pattern.search(text, start)
        return None if m is None else (m.start(), m.end(), m.group(0))


class Literals:
    """Which of a fixed list of substrings occur in a text, in one RE2 pass (``RE2::Set``).

    A loop of ``literal in text`` scans the text once per literal; the set scans it once for all
    of them. Used for the hint and marker lists of the scanner. Text outside ASCII (where UTF-8
    and code points differ in length, and lone surrogates cannot be encoded) is answered by the
    plain loop, so the answer is the loop's in every case.
    """

    __slots__ = ("_match", "literals")

    def __init__(self, literals: Iterable[str]) -> None:
        self.literals = tuple(literals)
        matcher = _re2.Set(_UNANCHORED, _OPTIONS)
        for literal in self.literals:
            if matcher.Add(re2.escape(literal).encode("utf-8")) < 0:
                raise ValueError(f"RE2 cannot match the literal {literal!r}")
        if not matcher.Compile():
            raise ValueError("RE2 could not compile the literal set")
        self._match = matcher.Match

    def found(self, text: str) -> list[str]:
        """The literals that occur in ``text``, in the order they were given."""
        if text.isascii():
            return [self.literals[i] for i in sorted(self._match(text.encode("ascii")))]
        return [literal for literal in self.literals if literal in text]

    def any_in(self, text: str) -> bool:
        """Whether any literal occurs in ``text``."""
        if text.isascii():
            return bool(self._match(text.encode("ascii")))
        return any(literal in text for literal in self.literals)
