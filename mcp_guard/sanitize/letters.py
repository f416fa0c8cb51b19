# Look-alike characters are this module's subject: ruff's ambiguous-character warnings do not apply.
# ruff: noqa: RUF001
"""Letters that only look Latin, mapped back to the Latin letter they imitate.

NFKC folds mathematical bold and fullwidth letters back to ASCII, but not small capitals,
negative squared letters, parenthesized letters (NFKC gives ``(a)``), modifier letters such
as U+02CD (a low macron that passes for ``_``), nor Lisu and Cherokee capitals. The table is
derived from Unicode character names at first use (every letter-like symbol named "...
LATIN ... LETTER X", "MATHEMATICAL ... X", "MODIFIER LETTER SMALL X"), plus the Lisu and
Cherokee letters Unicode's confusables list maps to Latin, which no name reveals. Name
skeletons (:mod:`.names`) and styled-text folding (:mod:`.lookalike`) share it.
"""

from __future__ import annotations

import functools
import re
import unicodedata

#: Lisu capitals and Cherokee letters that Unicode's confusables (UTS #39) map to Latin letters.
_SCRIPT_LOOKALIKES = {
    "ꓐ": "B",
    "ꓑ": "P",
    "ꓓ": "D",
    "ꓔ": "T",
    "ꓖ": "G",
    "ꓗ": "K",
    "ꓙ": "J",
    "ꓚ": "C",
    "ꓜ": "Z",
    "ꓝ": "F",
    "ꓟ": "M",
    "ꓠ": "N",
    "ꓡ": "L",
    "ꓢ": "S",
    "ꓣ": "R",
    "ꓦ": "V",
    "ꓧ": "H",
    "ꓫ": "X",
    "ꓬ": "Y",
    "ꓪ": "W",
    "ꓮ": "A",
    "ꓰ": "E",
    "ꓲ": "I",
    "ꓳ": "O",
    "ꓴ": "U",
    "Ꭺ": "A",
    "Ᏼ": "B",
    "Ꮯ": "C",
    "Ꭰ": "D",
    "Ꭼ": "E",
    "Ꮐ": "G",
    "Ꮋ": "H",
    "Ꭻ": "J",
    "Ꮶ": "K",
    "Ꮮ": "L",
    "Ꮇ": "M",
    "Ꮲ": "P",
    "Ꮢ": "R",
    "Ꮪ": "S",
    "Ꮤ": "T",
    "Ꮩ": "V",
    "Ꮃ": "W",
    "Ꮓ": "Z",
    "ˍ": "_",
}
_NAMED = re.compile(
    r"^(?:(?P<style>MATHEMATICAL [A-Z- ]+?|SCRIPT|BLACK-LETTER|DOUBLE-STRUCK(?: ITALIC)?"
    r"|(?:NEGATIVE )?(?:SQUARED|CIRCLED)|PARENTHESIZED|FULLWIDTH)"
    r" (?:LATIN )?(?P<case1>CAPITAL|SMALL) (?:LETTER )?(?P<l1>[A-Z])"
    r"|LATIN LETTER SMALL CAPITAL (?P<l2>[A-Z])"
    r"|MODIFIER LETTER (?P<case3>CAPITAL|SMALL) (?P<l3>[A-Z])"
    r"|(?:SUPERSCRIPT|SUBSCRIPT) LATIN SMALL LETTER (?P<l4>[A-Z])"
    r"|LATIN SUBSCRIPT SMALL LETTER (?P<l5>[A-Z]))$"
)
#: The blocks that hold letter-like Latin look-alikes (the names are read only here, for speed):
#: IPA and spacing modifiers, phonetic extensions, super/subscripts, letterlike and enclosed
#: alphanumerics, Latin Extended-D, fullwidth forms, mathematical alphanumerics, enclosed
#: alphanumeric supplement (regional indicators excluded: they pair into flags).
_BLOCKS = (
    (0x0250, 0x02FF),
    (0x1D00, 0x1DBF),
    (0x2070, 0x209F),
    (0x2100, 0x24FF),
    (0xA720, 0xA7FF),
    (0xFF00, 0xFFEF),
    (0x1D400, 0x1D7FF),
    (0x1F100, 0x1F1E5),
)


@functools.cache
def _table() -> tuple[dict[int, str], dict[str, str]]:
    """(str.translate table to ASCII letters, each character's style), from Unicode names."""
    fold: dict[int, str] = {}
    style: dict[str, str] = {}
    for cp in (cp for lo, hi in _BLOCKS for cp in range(lo, hi + 1)):
        ch = chr(cp)
        if unicodedata.category(ch)[0] not in "LS":
            continue
        m = _NAMED.match(unicodedata.name(ch, ""))
        if m is None:
            continue
        letter = next(g for g in (m["l1"], m["l2"], m["l3"], m["l4"], m["l5"]) if g)
        small = m["case1"] == "SMALL" or m["case3"] == "SMALL" or bool(m["l2"] or m["l4"] or m["l5"])
        fold[cp] = letter.lower() if small else letter
        style[ch] = m["style"] or unicodedata.name(ch).rsplit(" ", 1)[0]
    for ch, latin in _SCRIPT_LOOKALIKES.items():
        fold[ord(ch)] = latin
        style[ch] = unicodedata.name(ch).split(" ", 1)[0]
    return fold, style


def letter_table() -> dict[int, str]:
    """The ``str.translate`` table from look-alike letters to ASCII (for name skeletons too)."""
    return _table()[0]
