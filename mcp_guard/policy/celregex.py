"""``matches()`` patterns: RE2, linear time, with the meaning the ``cel`` package gives them.

CEL's ``matches`` is an unanchored RE2 search. Python's ``re`` is neither: ``$``
also matches before a final newline (``"orders\\n"`` would pass ``^[a-z]+$``) and
it backtracks, so a caller's argument could make a policy pattern take
exponential time. Patterns are compiled once, at load, by RE2 (``google-re2``);
the search runs in time linear in the argument.

The ``cel`` package (the reference evaluator) uses Rust's ``regex`` crate, which
agrees with RE2 except for the Perl classes: there ``\\d``, ``\\w``, ``\\s`` and
``\\b`` are Unicode-aware, in RE2 they are ASCII. ``\\d`` / ``\\D`` are translated
to ``\\p{Nd}`` / ``\\P{Nd}`` (exactly Rust's meaning); ``\\w``, ``\\W``, ``\\s``,
``\\S``, ``\\b``, ``\\B`` are refused with a suggestion, as is anything either
engine rejects (back-references, look-around, ``\\Q...\\E``, ``(?x)``...).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

from re2 import Options, _re2

__all__ = ["PatternError", "compile_pattern"]

_UNANCHORED = _re2.RE2.Anchor.UNANCHORED
_TRANSLATED = {"d": r"\p{Nd}", "D": r"\P{Nd}"}
_REFUSED = {
    "w": "[A-Za-z0-9_] or \\pL",
    "W": "[^A-Za-z0-9_]",
    "s": "[ \\t\\r\\n]",
    "S": "[^ \\t\\r\\n]",
    "b": "explicit anchors or classes",
    "B": "explicit anchors or classes",
    "Q": "escaped characters",
    "E": "escaped characters",
    "C": ".",
}


class PatternError(ValueError):
    """A ``matches()`` pattern is refused at load."""


def _refuse(what: str, instead: str) -> PatternError:
    return PatternError(
        f"{what} is not allowed in a condition pattern (its meaning differs between CEL engines); "
        f"use {instead}"
    )


def _translate(pattern: str) -> str:
    """``pattern`` for RE2, refusing syntax that RE2 and Rust's ``regex`` both accept but read differently."""
    out: list[str] = []
    i, n = 0, len(pattern)
    in_class = class_start = False
    while i < n:
        ch = pattern[i]
        if ch == "\\" and i + 1 < n:
            nxt = pattern[i + 1]
            if nxt in _TRANSLATED:
                out.append(_TRANSLATED[nxt])
            elif nxt in _REFUSED:
                raise _refuse(f"\\{nxt}", _REFUSED[nxt])
            elif nxt in "<>":
                raise _refuse(f"\\{nxt}", f"\\x{{{ord(nxt):02X}}} for the character")
            else:
                out.append(pattern[i : i + 2])
            class_start = False
            i += 2
            continue
        if in_class:
            if ch == "[" and pattern.startswith("[:", i):
                close = pattern.find(":]", i + 2)
                if close < 0:
                    raise _refuse("an unterminated [: in a class", "\\[ for the character")
                out.append(pattern[i : close + 2])
                i = close + 2
                continue
            if ch == "[":
                raise _refuse("a nested class", "\\[ for the character")
            if pattern[i : i + 2] in ("&&", "--", "~~"):
                raise _refuse(f"{pattern[i : i + 2]!r} in a class", "a single character or an escape")
            if ch == "]" and not class_start:
                in_class = False
            class_start = False
            out.append(ch)
            i += 1
            continue
        if ch == "[":
            in_class, class_start = True, True
            out.append(ch)
            i += 1
            if pattern.startswith("^", i):
                out.append("^")
                i += 1
            continue
        if ch == "{" and pattern.startswith("{,", i):
            raise _refuse("{,n}", "{0,n}")
        out.append(ch)
        i += 1
    return "".join(out)


def _reference_accepts(pattern: str) -> str | None:
    """The ``cel`` package's complaint about ``pattern``, or None."""
    import cel

    try:
        cel.evaluate("s.matches(p)", {"s": "", "p": pattern})
    except Exception as exc:
        text = str(exc).splitlines()
        return text[0] if text else type(exc).__name__
    return None


@lru_cache(maxsize=512)
def compile_pattern(pattern: str) -> Callable[[str], bool]:
    """A search function for ``pattern``; raise :class:`PatternError` if it is refused."""
    options = Options()
    options.never_capture = True
    options.log_errors = False
    regexp = _re2.RE2(_translate(pattern).encode("utf-8"), options)
    if not regexp.ok():
        raise PatternError(f"invalid regular expression {pattern!r}: {regexp.error().decode()}")
    complaint = _reference_accepts(pattern)
    if complaint is not None:
        raise PatternError(f"invalid regular expression {pattern!r}: {complaint}")
    match = regexp.Match

    def search(text: str) -> bool:
        data = text.encode("utf-8")
        return bool(match(_UNANCHORED, data, 0, len(data))[0][0] >= 0)

    return search
