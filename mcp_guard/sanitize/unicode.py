"""Characters a human reviewer cannot see but a model reads.

Tag characters, zero-width, format and bidi controls and terminal escapes let a
server show one text to the person approving a tool and another to the model.
Which characters are invisible is derived from Unicode properties at import
(format characters, Default_Ignorable_Code_Point, bidi controls, tags,
variation selectors), not picked by hand. A few have legitimate uses and pass
only there (see :func:`_legit`); every other one is a finding. These checks run
on every text field, so the common case (plain ASCII without ESC) returns after
one ``str.isascii`` call.
"""

from __future__ import annotations

import bisect
import functools
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..model import Severity
from .terminal import cosmetic, same_colours

Ranges = tuple[tuple[int, int], ...]

#: Other_Default_Ignorable_Code_Point, as listed in PropList.txt (``unicodedata`` has no such property).
_OTHER_DEFAULT_IGNORABLE: Ranges = (
    (0x034F, 0x034F),  # Mn  COMBINING GRAPHEME JOINER
    (0x115F, 0x1160),  # Lo  HANGUL CHOSEONG FILLER, HANGUL JUNGSEONG FILLER
    (0x17B4, 0x17B5),  # Mn  KHMER VOWEL INHERENT AQ, AA
    (0x2065, 0x2065),  # Cn  reserved
    (0x3164, 0x3164),  # Lo  HANGUL FILLER
    (0xFFA0, 0xFFA0),  # Lo  HALFWIDTH HANGUL FILLER
    (0xFFF0, 0xFFF8),  # Cn  reserved
    (0xE0000, 0xE0000),  # Cn  reserved
    (0xE0002, 0xE001F),  # Cn  reserved
    (0xE0080, 0xE00FF),  # Cn  reserved
    (0xE01F0, 0xE0FFF),  # Cn  reserved
)
#: Prepended_Concatenation_Mark (PropList.txt): format characters that are visible before a number.
_PREPENDED_CONCATENATION_MARK: Ranges = (
    (0x0600, 0x0605),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
)
#: Format characters DerivedCoreProperties keeps visible: interlinear annotation, Egyptian format controls.
_VISIBLE_FORMAT: Ranges = ((0xFFF9, 0xFFFB), (0x13430, 0x1345F))
_BIDI_CONTROLS: Ranges = ((0x202A, 0x202E), (0x2066, 0x2069), (0x200E, 0x200F), (0x061C, 0x061C))
_TAG_BLOCK: Ranges = ((0xE0000, 0xE007F),)
_SELECTOR_BLOCKS: Ranges = ((0xFE00, 0xFE0F), (0xE0100, 0xE01EF))


def _expand(ranges: Ranges) -> set[str]:
    return {chr(cp) for lo, hi in ranges for cp in range(lo, hi + 1)}


def _derive() -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """(Cf, Variation_Selector, Default_Ignorable_Code_Point), computed once over the whole code space.

    DerivedCoreProperties.txt defines Default_Ignorable_Code_Point as
    Other_Default_Ignorable_Code_Point + Cf + Variation_Selector - White_Space
    - FFF9..FFFB (interlinear annotation) - 13430..1345F (Egyptian format controls)
    - Prepended_Concatenation_Mark. ``unicodedata`` gives the category and
    names; Variation_Selector is exactly the Mn characters named "... VARIATION
    SELECTOR ..." (U+180B-U+180D, U+180F, U+FE00-U+FE0F, U+E0100-U+E01EF), and
    the two PropList properties are the range lists above.
    """
    category, name = unicodedata.category, unicodedata.name
    marks = [c for c in map(chr, range(0x110000)) if category(c) in ("Cf", "Mn")]
    fmt = frozenset(c for c in marks if category(c) == "Cf")
    selectors = frozenset(c for c in marks if "VARIATION SELECTOR" in name(c, "") and category(c) == "Mn")
    visible = _expand(_VISIBLE_FORMAT + _PREPENDED_CONCATENATION_MARK)
    ignorable = frozenset(
        c for c in fmt | selectors | _expand(_OTHER_DEFAULT_IGNORABLE) if not c.isspace() and c not in visible
    )
    return fmt, selectors, ignorable


def _spans(chars: Iterable[str]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for cp in sorted(map(ord, chars)):
        if out and out[-1][1] == cp - 1:
            out[-1] = (out[-1][0], cp)
        else:
            out.append((cp, cp))
    return out


def _char_class(chars: Iterable[str]) -> str:
    return "[" + "".join(f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in _spans(chars)) + "]"


class _Tables:
    """The derived sets and the pattern built from them: computed on first use, not at import.

    Walking the code space costs about 0.2 s; ASCII-only text never needs it, and a CLI that
    only prints its help should not pay it.
    """

    def __init__(self) -> None:
        #: General category Cf; Variation_Selector; Default_Ignorable_Code_Point.
        self.format, self.variation_selectors, self.default_ignorable = _derive()
        #: Everything reported unless used legitimately (the named blocks are already inside).
        self.invisible: frozenset[str] = (
            self.format
            | self.default_ignorable
            | frozenset(_expand(_BIDI_CONTROLS + _TAG_BLOCK + _SELECTOR_BLOCKS))
        )
        self.pattern = re.compile(_char_class(self.invisible))


@functools.cache
def _tables() -> _Tables:
    return _Tables()


def __getattr__(name: str) -> frozenset[str]:
    """``FORMAT``, ``VARIATION_SELECTORS``, ``DEFAULT_IGNORABLE`` and ``INVISIBLE``, derived lazily."""
    if name in ("FORMAT", "VARIATION_SELECTORS", "DEFAULT_IGNORABLE", "INVISIBLE"):
        value: frozenset[str] = getattr(_tables(), name.lower())
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: Unicode tag block: invisible copies of ASCII, the classic "ASCII smuggling" channel.
_TAG = re.compile("[\U000e0000-\U000e007f]+")
#: A flag tag sequence (UTS #51): black flag, a CLDR subdivision id in tag letters/digits, cancel tag.
_FLAG = re.compile(
    "\U0001f3f4((?:[\U000e0061-\U000e007a]{2}|[\U000e0030-\U000e0039]{3})"
    "[\U000e0030-\U000e0039\U000e0061-\U000e007a]{1,4}\U000e007f)"
)
#: Fillers that look like spaces or nothing in most fonts.
_FILLERS = re.compile("[\u3164\u115f\u1160\uffa0\u2800]")
_FILLER_SET = frozenset("\u3164\u115f\u1160\uffa0")
_BIDI_MARKS = frozenset("\u200e\u200f\u061c")
#: C0/C1 controls other than tab, newline and carriage return.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1a\x1c-\x1f\x7f\x80-\x9f]")
#: The ASCII characters :func:`has_suspect_chars` looks for: ``_CONTROL``'s, ESC (0x1b) and CR (0x0d).
_ASCII_SUSPECT = re.compile("[\x00-\x08\x0b-\x1f\x7f]")
_BARE_CR = re.compile("\r(?!\n)")
#: ANSI / ECMA-48: CSI, OSC, DCS/SOS/PM/APC strings and two-byte escapes.
_ANSI = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"
    r"|\x1b[@-Z\\-_]"
    r"|\x9b[0-?]*[ -/]*[@-~]"
)
_SGR = re.compile(r"\x1b\[([0-9;]*)m")
#: Letters of right-to-left scripts (the format characters inside these blocks are not letters).
_RTL_LETTER = re.compile(
    _char_class(
        c
        for lo, hi in (
            (0x0590, 0x08FF),
            (0xFB1D, 0xFDFF),
            (0xFE70, 0xFEFC),
            (0x10800, 0x10FFF),
            (0x1E800, 0x1EFFF),
        )
        for c in map(chr, range(lo, hi + 1))
        if unicodedata.category(c).startswith("L")
    )
)


def _table(ranges: Ranges) -> tuple[list[int], list[int]]:
    return [lo for lo, _ in ranges], [hi for _, hi in ranges]


#: Scripts whose shaping needs ZWJ/ZWNJ (cursive joining, Indic conjuncts; Unicode ch. 23.2):
#: Arabic (Persian, Urdu), Syriac, Thaana, N'Ko, Mandaic; the Indic scripts of South and
#: South-East Asia; Tibetan, Myanmar, Khmer, Mongolian; their SMP relatives; Adlam.
_JOINING = _table(
    (
        (0x0600, 0x08FF),  # Arabic, Syriac, Thaana, N'Ko, Samaritan, Mandaic, Arabic Extended
        (0x0900, 0x0DFF),  # Devanagari .. Sinhala
        (0x0F00, 0x109F),  # Tibetan, Myanmar
        (0x1700, 0x18AF),  # Philippine scripts, Khmer, Mongolian
        (0x1900, 0x1AAF),  # Limbu, Tai Le, New Tai Lue, Buginese, Tai Tham
        (0x1B00, 0x1C4F),  # Balinese, Sundanese, Batak, Lepcha
        (0xA800, 0xA8FF),  # Syloti Nagri, Phags-pa, Saurashtra, Devanagari Extended
        (0xA980, 0xAAFF),  # Javanese, Myanmar Extended, Cham, Tai Viet
        (0xABC0, 0xABFF),  # Meetei Mayek
        (0xFB50, 0xFDFF),  # Arabic Presentation Forms-A
        (0xFE70, 0xFEFC),  # Arabic Presentation Forms-B
        (0x10A00, 0x10FFF),  # Kharoshthi, Manichaean, Sogdian, Hanifi Rohingya, ...
        (0x11000, 0x11DFF),  # Brahmi and the Brahmic scripts of the SMP
        (0x1E900, 0x1E95F),  # Adlam
    )
)
#: Scripts written without spaces, where ZWSP marks word boundaries for line breaking.
_NO_SPACE = _table(
    (
        (0x0E00, 0x0FFF),  # Thai, Lao, Tibetan
        (0x1000, 0x109F),  # Myanmar
        (0x1780, 0x17FF),  # Khmer
        (0x1950, 0x19DF),  # Tai Le, New Tai Lue
        (0x1A20, 0x1AAF),  # Tai Tham
        (0x1B00, 0x1B7F),  # Balinese
        (0x2E80, 0x2FDF),  # CJK radicals
        (0x3040, 0x30FF),  # Hiragana, Katakana
        (0x3100, 0x312F),  # Bopomofo
        (0x3400, 0x4DBF),  # CJK Extension A
        (0x4E00, 0x9FFF),  # CJK Unified Ideographs
        (0xA980, 0xA9FF),  # Javanese, Myanmar Extended-B
        (0xAA60, 0xAA7F),  # Myanmar Extended-A
        (0xF900, 0xFAFF),  # CJK Compatibility Ideographs
        (0xFF66, 0xFF9F),  # Halfwidth Katakana
        (0x20000, 0x3FFFF),  # CJK Extensions B..
    )
)
#: Format characters that belong to one script: legitimate next to a character of that block.
_SCRIPT_BOUND: tuple[tuple[int, int, int, int], ...] = (
    (0x17B4, 0x17B5, 0x1780, 0x17FF),  # Khmer inherent vowels
    (0x180B, 0x180F, 0x1800, 0x18AF),  # Mongolian free variation selectors, vowel separator
    (0x13430, 0x1345F, 0x13000, 0x1345F),  # Egyptian hieroglyph format controls
    (0x1BCA0, 0x1BCA3, 0x1BC00, 0x1BC9F),  # Duployan shorthand format controls
    (0x1D173, 0x1D17A, 0x1D100, 0x1D1FF),  # musical symbol beams, ties, slurs, phrases
)
_KEYCAP_BASES = frozenset("0123456789#*")


@dataclass(frozen=True, slots=True)
class Hit:
    """One invisible-text observation inside a single string."""

    rule: str
    severity: Severity
    message: str


def has_suspect_chars(text: str) -> bool:
    """Cheap gate: only strings with non-ASCII or control characters need the full check."""
    if text.isascii():  # one search: ``_CONTROL``'s ASCII part, ESC and CR
        return _ASCII_SUSPECT.search(text) is not None
    return True


def decode_tags(text: str) -> str:
    """The ASCII text hidden in tag characters (what the model sees and the human does not)."""
    return "".join(chr(ord(c) - 0xE0000) for c in text if 0xE0020 <= ord(c) <= 0xE007E)


def _in(table: tuple[list[int], list[int]], ch: str) -> bool:
    cp = ord(ch)
    i = bisect.bisect_right(table[0], cp) - 1
    return i >= 0 and cp <= table[1][i]


def _letterish(ch: str) -> bool:
    """A visible letter or combining mark (Indic joiners follow a virama, a mark)."""
    return bool(ch) and ch not in _tables().invisible and unicodedata.category(ch)[0] in "LM"


def _in_script(ch: str, table: tuple[list[int], list[int]]) -> bool:
    return _letterish(ch) and _in(table, ch)


def _boundary(ch: str) -> bool:
    """Start or end of text, space, punctuation or digit: not part of a word."""
    return not ch or not (_letterish(ch) or ch in _tables().invisible)


def _script_context(before: str, after: str, table: tuple[list[int], list[int]]) -> bool:
    """A letter of a script in ``table`` on one side; the same, or a word boundary, on the other."""
    a, b = _in_script(before, table), _in_script(after, table)
    return (a and (b or _boundary(after))) or (b and _boundary(before))


def _is_emoji(ch: str) -> bool:
    return bool(ch) and (unicodedata.category(ch) == "So" or 0x1F000 <= ord(ch) <= 0x1FAFF)


def _presentation_base(before: str, after: str) -> bool:
    """VS15/VS16 select text or emoji presentation of a symbol, or of a keycap base before U+20E3."""
    if not before or before in _tables().invisible:
        return False
    if before.isascii():
        return before in _KEYCAP_BASES and after == "\u20e3"
    return unicodedata.category(before)[0] in "SP" or 0x2100 <= ord(before) <= 0x214F  # letterlike, U+2139


def _legit(text: str, i: int, flags: set[int], rtl: bool) -> bool:
    """Whether the invisible character at ``text[i]`` is in one of its legitimate uses.

    ZWJ between emoji; ZWJ/ZWNJ next to letters of a script that needs them;
    ZWSP in scripts written without spaces; soft hyphen between letters; tag
    characters of a flag sequence; VS15/VS16 after a symbol; bidi marks in text
    with right-to-left letters; script-bound format characters next to their
    script. Nothing else.
    """
    ch = text[i]
    before = text[i - 1] if i else ""
    after = text[i + 1] if i + 1 < len(text) else ""
    if ch == "\u200d":
        emoji = _is_emoji(after) and (_is_emoji(before) or before == "\ufe0f")
        return emoji or _script_context(before, after, _JOINING)
    if ch == "\u200c":
        return _script_context(before, after, _JOINING)
    if ch == "\u200b":
        return _script_context(before, after, _NO_SPACE)
    if ch == "\u00ad":
        return _letterish(before) and _letterish(after)
    if ch in "\ufe0e\ufe0f":
        return _presentation_base(before, after)
    if ch in _BIDI_MARKS:
        return rtl
    cp = ord(ch)
    if 0xE0000 <= cp <= 0xE007F:
        return i in flags
    for lo, hi, block_lo, block_hi in _SCRIPT_BOUND:
        if lo <= cp <= hi:
            return any(
                c and c not in _tables().invisible and block_lo <= ord(c) <= block_hi for c in (before, after)
            )
    return False


def _typographic(text: str, i: int) -> bool:
    """A byte-order mark opening the text (a CSV export for Excel), or a word joiner that keeps a
    number, a version or a hyphenated code on one line (next to a digit or punctuation, never
    between two letters, where it would split a word for a filter and not for a model)."""
    ch = text[i]
    if ch == "\ufeff":
        return i == 0
    if ch == "\u2060":
        sides = (text[i - 1] if i else "", text[i + 1] if i + 1 < len(text) else "")
        return any(c.isdigit() or (c and unicodedata.category(c)[0] in "PS") for c in sides)
    return False


def _balanced_bidi(text: str) -> bool:
    """Every isolate (LRI/RLI/FSI) closed by a PDI and every embedding (LRE/RLE) by a PDF, and no
    override: how RTL text keeps numbers and Latin names in order, not how it reorders them."""
    if "\u202d" in text or "\u202e" in text:
        return False
    opened = sum(text.count(c) for c in "\u2066\u2067\u2068")
    embedded = text.count("\u202a") + text.count("\u202b")
    return opened == text.count("\u2069") and embedded == text.count("\u202c")


def _misused(text: str) -> list[int]:
    """Indexes of the invisible characters in ``text`` that are not in a legitimate use."""
    found = [m.start() for m in _tables().pattern.finditer(text)]
    if not found:
        return []
    flags: set[int] = set()
    if "\U0001f3f4" in text:
        flags = {i for m in _FLAG.finditer(text) for i in range(m.start(1), m.end())}
    rtl = _RTL_LETTER.search(text) is not None
    bad = [i for i in found if not _legit(text, i, flags, rtl) and not _typographic(text, i)]
    if bad and rtl and _balanced_bidi(text):
        bad = [
            i for i in bad if not 0x202A <= ord(text[i]) <= 0x202C and not 0x2066 <= ord(text[i]) <= 0x2069
        ]
    if bad and "\u00ad" in text:
        # A text that already hides something gets no benefit of the doubt for soft hyphens,
        # the one legitimate use that sits inside Latin words ("De<SHY>lete the au<WJ>dit logs").
        return sorted({*bad, *(i for i in found if text[i] == "\u00ad")})
    return bad


def _ansi_severity(text: str) -> tuple[Severity, str]:
    """Colour codes are noise; cursor movement, erasing, OSC and concealment rewrite what a human sees."""
    stripped = _SGR.sub("", text)
    if "\x1b" in stripped or "\x9b" in stripped:
        return "high", "terminal escape sequence that moves the cursor, erases or writes outside the text"
    for match in _SGR.finditer(text):
        params = [p for p in match.group(1).split(";") if p]
        if "8" in params:
            return "high", "ANSI conceal attribute hides text from a human reader"
        fg = {p[-1] for p in params if len(p) == 2 and p[0] == "3" and p[1] != "8"}
        bg = {p[-1] for p in params if len(p) == 2 and p[0] == "4" and p[1] != "8"}
        if fg & bg or ({"7"} <= fg and bg) or ("7" in fg and "47" in params) or same_colours(params):
            return "high", "ANSI foreground equals background: text hidden from a human reader"
    return "medium", "ANSI colour codes in text sent to the model"


def _zero_width_hits(text: str, positions: Sequence[int]) -> list[Hit]:
    """Runs, in-word splits and lone characters among the misused zero-width and format characters."""
    if not positions:
        return []
    runs: list[tuple[int, int]] = []
    for i in positions:
        if runs and runs[-1][1] == i - 1:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    if any(end - start >= 5 for start, end in runs):
        return [Hit("unicode.zero-width-run", "high", "run of zero-width characters (hidden encoding)")]
    splits = [
        (start, end)
        for start, end in runs
        if start > 0 and end + 1 < len(text) and _letterish(text[start - 1]) and _letterish(text[end + 1])
    ]
    if len(splits) >= 2:
        return [Hit("unicode.zero-width-split", "high", f"{len(splits)} words split by invisible characters")]
    if splits:
        return [Hit("unicode.zero-width-split", "medium", "word split by an invisible character")]
    return [Hit("unicode.zero-width", "low", "zero-width character")]


def _ideographic_variant(text: str, i: int) -> bool:
    """One selector right after a CJK ideograph: an ideographic variation sequence (a glyph choice
    in names like 葛󠄀城), not data; data needs selectors in a row or after other characters."""
    if i == 0 or (i + 1 < len(text) and 0xE0100 <= ord(text[i + 1]) <= 0xE01EF):
        return False
    cp = ord(text[i - 1])
    return 0x3400 <= cp <= 0x9FFF or 0xF900 <= cp <= 0xFAFF or 0x20000 <= cp <= 0x3FFFF


def _invisible_hits(text: str) -> list[Hit]:
    hits: list[Hit] = []
    bad = _misused(text)
    tags: list[int] = []
    supplement = overrides = isolates = marks = False
    other: list[int] = []
    for i in bad:
        cp = ord(text[i])
        if 0xE0000 <= cp <= 0xE007F:
            tags.append(i)
        elif 0xE0100 <= cp <= 0xE01EF:
            supplement = supplement or not _ideographic_variant(text, i)
        elif 0x202A <= cp <= 0x202E:
            overrides = True
        elif 0x2066 <= cp <= 0x2069:
            isolates = True
        elif text[i] in _BIDI_MARKS:
            marks = True
        elif text[i] not in _FILLER_SET:
            other.append(i)
    if tags:
        hidden = decode_tags("".join(text[i] for i in tags))
        shown = hidden[:60] + ("..." if len(hidden) > 60 else "")
        hits.append(Hit("unicode.tag-chars", "high", f"invisible Unicode tag characters encode: {shown!r}"))
    if supplement:
        hits.append(Hit("unicode.variation-selectors", "high", "invisible variation selectors carry data"))
    if overrides:
        hits.append(Hit("unicode.bidi-override", "high", "bidi embedding/override reorders displayed text"))
    if isolates:
        if _RTL_LETTER.search(text):
            hits.append(Hit("unicode.bidi-isolate", "low", "bidi isolate controls"))
        else:
            hits.append(
                Hit("unicode.bidi-isolate", "high", "bidi isolate controls around left-to-right text")
            )
    if marks:
        hits.append(Hit("unicode.bidi-mark", "medium", "directional marks in text without RTL script"))
    hits.extend(_zero_width_hits(text, other))
    if _FILLERS.search(text):
        hits.append(Hit("unicode.filler", "medium", "blank filler character"))
    return hits


def scan_invisible(text: str, *, terminal_output: bool = False) -> list[Hit]:
    """Report invisible or control characters; strings without any return immediately.

    ``terminal_output`` is for results: command output legitimately carries
    colour codes and progress-bar carriage returns, so only the escapes that
    hide or rewrite text are reported there.
    """
    if not has_suspect_chars(text):
        return []
    if terminal_output:  # links, titles, status redraws and overstrike hide nothing
        text = cosmetic(text)
    hits: list[Hit] = []
    if "\x1b" in text or "\x9b" in text:
        severity, message = _ansi_severity(text)
        if not (terminal_output and severity == "medium"):
            hits.append(Hit("unicode.ansi-escape", severity, message))
    if not text.isascii():
        hits.extend(_invisible_hits(text))
    if _CONTROL.search(text):
        hits.append(Hit("unicode.control", "medium", "control character"))
    if _BARE_CR.search(text) and not terminal_output:
        hits.append(
            Hit("unicode.carriage-return", "medium", "bare carriage return can overwrite a displayed line")
        )
    return hits


def _drop(text: str, positions: Sequence[int]) -> str:
    if not positions:
        return text
    parts: list[str] = []
    start = 0
    for i in positions:
        parts.append(text[start:i])
        start = i + 1
    parts.append(text[start:])
    return "".join(parts)


def strip_invisible(text: str) -> str:
    """Remove what :func:`scan_invisible` complains about, keeping the legitimate uses intact."""
    if not has_suspect_chars(text):
        return text
    out = _ANSI.sub("", text)
    if not out.isascii():
        out = _drop(out, _misused(out))
    out = _CONTROL.sub("", out)
    return _BARE_CR.sub("\n", out)


def visible_text(text: str) -> str:
    """What the injection patterns read: every invisible character removed, hidden tag text appended.

    Legitimate joiners, soft hyphens and selectors go too (they change no
    letter), so a soft hyphen or a joiner inside "Ig<?>nore" hides nothing.
    """
    if not has_suspect_chars(text):
        return text
    out = _ANSI.sub("", text)
    extra = ""
    if not out.isascii():
        extra = " ".join(filter(None, (decode_tags(m.group()) for m in _TAG.finditer(out))))
        out = _tables().pattern.sub("", out)
    out = _BARE_CR.sub("\n", _CONTROL.sub("", out))
    return f"{out}\n{extra}" if extra else out
