# Look-alike characters are this module's subject: ruff's ambiguous-character warnings do not apply.
"""Text written in letters that only look Latin: styled alphabets, other scripts, stacked marks.

NFKC folds mathematical bold and fullwidth letters back to ASCII, but not small capitals
(``ᴀ``), negative squared letters (``🅰``), parenthesized letters (NFKC gives ``(a)``), nor
Lisu capitals (U+A4EE), which look exactly like Latin ones; :mod:`.letters` derives the
table that does, from Unicode character names.

A sentence in such letters reads as plain English to a model and as decoration (or nothing)
to a person skimming a definition. One styled word is typography; a run of them is a
sentence someone chose to disguise. Combining marks over every letter (``B̶e̶f̶o̶r̶e̶``) are
the same trick with marks.
"""

from __future__ import annotations

import re
import unicodedata

from ..model import Finding
from .letters import _table
from .names import LOOKALIKES

#: A run of this many disguised words in a row is a disguised sentence.
RUN = 6
#: Styles that are another script, or look-alikes inside a Latin word: never typography.
_SCRIPTS = frozenset({"LISU", "CHEROKEE", "CYRILLIC", "GREEK", "mixed with ASCII"})
#: In a result (which may quote a styled post) a single-style run must be this long.
RESULT_RUN = 8
#: Letters with a mark that does not compose, this many in a field, are a stacked-mark disguise.
MARKED_LETTERS = 8

#: Cyrillic and Greek letters that pass for Latin ones (the name checks' table) count inside a word.
_SCRIPT_LETTERS = frozenset(c for c in LOOKALIKES if c.isalpha() and not c.isascii() and ord(c) < 0x0530)
#: Combining marks of the general-purpose blocks (diacriticals, their extensions and supplement,
#: marks for symbols, half marks): the ones that sit on Latin letters.
_MARK_CLASS = "[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]"
_MARKS = re.compile(_MARK_CLASS)
_MARKED = re.compile(f"(?<=[A-Za-z]){_MARK_CLASS}+")


#: The blocks the fold table and the look-alike scripts come from (a superset: one range check
#: per character in C, where a class of a thousand single characters is a linear scan).
_GATE = re.compile(
    "[\u0250-\u02ff\u0370-\u052f\u13a0-\u13ff\u1d00-\u1dbf\u2070-\u209f\u2100-\u214f"
    "\u2460-\u24ff\ua4d0-\ua4ff\ua720-\ua7ff\uff21-\uff5a\U0001d400-\U0001d7ff\U0001f100-\U0001f1e5"
    "\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]"
)


def fold(text: str) -> str:
    """``text`` with look-alike letters as ASCII, NFKC-normalised, marks stacked on ASCII letters removed."""
    if _GATE.search(text) is not None:
        text = text.translate(_table()[0])
    out = unicodedata.normalize("NFKC", text)
    return _MARKED.sub("", out) if _MARKS.search(out) else out


def _word_letters(word: str) -> str:
    return "".join(c for c in word if c.isalpha() or ord(c) in _table()[0])


def _disguised(word: str, styles: set[str]) -> bool | None:
    """True: the letters are look-alikes of Latin ones (all, or mixed with ASCII letters inside one
    word); False: a real word; None: no letters (digits, punctuation)."""
    letters = _word_letters(word)
    if not letters:
        return None
    fold_map, style = _table()
    odd = [c for c in letters if not c.isascii()]
    if len(letters) < 2 or not odd or any(ord(c) not in fold_map and c not in _SCRIPT_LETTERS for c in odd):
        return False
    styles.update(style.get(c) or unicodedata.name(c, "?").split(" ", 1)[0] for c in odd)
    if len(odd) < len(letters):
        styles.add("mixed with ASCII")
    return True


def styled_findings(text: str, pointer: str, *, result: bool) -> list[Finding]:
    """``unicode.styled-text`` and ``unicode.stacked-marks`` for one field.

    In a definition, :data:`RUN` disguised words that make half the field's words are reported.
    A result may quote a styled post, so there a run of :data:`RESULT_RUN` is needed, or one of
    :data:`RUN` that mixes styles or scripts: a sentence assembled to be read by a model.
    """
    out: list[Finding] = []
    run = best = total = words = 0
    styles: set[str] = set()
    for word in text.split():
        verdict = _disguised(word, styles)
        if verdict is None:
            continue
        words += 1
        if verdict:
            run += 1
            total += 1
            best = max(best, run)
        else:
            run = 0
    if total >= RUN and total * 2 >= words:
        mixed = len(styles) >= 3 or bool(styles & _SCRIPTS)
        if not result or best >= RESULT_RUN or (best >= RUN and mixed):
            message = f"{total} words in look-alike letters ({', '.join(sorted(styles))[:80]})"
            out.append(Finding("unicode.styled-text", "medium", pointer, f"{message}: {fold(text)[:60]!r}"))
    marked = _marked_letters(text)
    if marked >= MARKED_LETTERS:
        out.append(
            Finding("unicode.stacked-marks", "medium", pointer, f"{marked} letters carry overlay marks")
        )
    return out


def _marked_letters(text: str) -> int:
    """ASCII letters followed by a combining mark that NFC does not compose into one letter."""
    if _MARKS.search(text) is None:
        return 0
    return len(_MARKED.findall(unicodedata.normalize("NFC", text)))


def may_be_styled(text: str) -> bool:
    """Cheap gate: a look-alike letter or a general-purpose combining mark somewhere in ``text``."""
    return not text.isascii() and _GATE.search(text) is not None
