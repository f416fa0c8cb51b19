"""Characters a human reviewer cannot see but a model reads.

Tag characters, zero-width and bidi controls and terminal escapes let a server
show one text to the person approving a tool and another to the model. These
checks run on every text field, so the common case (plain ASCII without ESC)
returns after one ``str.isascii`` call.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from ..model import Severity

#: Unicode tag block: invisible copies of ASCII, the classic "ASCII smuggling" channel.
_TAG = re.compile("[\U000e0000-\U000e007f]+")
#: Variation selectors supplement: 256 invisible selectors that can carry one byte each.
_VS_SUPPLEMENT = re.compile("[\U000e0100-\U000e01ef]")
#: Embedding and override controls (Trojan Source); never needed in tool metadata.
_BIDI_OVERRIDE = re.compile("[\u202a-\u202e]")
_BIDI_ISOLATE = re.compile("[\u2066-\u2069]")
_BIDI_MARK = re.compile("[\u200e\u200f\u061c]")
#: Zero-width and other format characters that render as nothing.
_ZERO_WIDTH = "\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\ufeff\u00ad\u180e\u034f"
_ZW_ANY = re.compile(f"[{_ZERO_WIDTH}]")
_ZW_RUN = re.compile(f"[{_ZERO_WIDTH}]{{6,}}")
_ZW_IN_WORD = re.compile(f"(?<=[^\\W\\d_])[{_ZERO_WIDTH}]+(?=[^\\W\\d_])")
#: Fillers that look like spaces or nothing in most fonts.
_FILLERS = re.compile("[\u3164\u115f\u1160\uffa0\u2800]")
#: C0/C1 controls other than tab, newline and carriage return.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1a\x1c-\x1f\x7f\x80-\x9f]")
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
_RTL_LETTER = re.compile("[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufefc]")
_EMOJI_CONTEXT = re.compile("[\u200d\ufe0f]")

_STRIP = re.compile(
    f"[\U000e0000-\U000e007f\U000e0100-\U000e01ef\u202a-\u202e\u2066-\u2069{_ZERO_WIDTH}"
    "\u3164\u115f\u1160\uffa0]"
)


@dataclass(frozen=True, slots=True)
class Hit:
    """One invisible-text observation inside a single string."""

    rule: str
    severity: Severity
    message: str


def has_suspect_chars(text: str) -> bool:
    """Cheap gate: only strings with non-ASCII or control characters need the full check."""
    if text.isascii():
        return "\x1b" in text or _CONTROL.search(text) is not None or "\r" in text
    return True


def decode_tags(text: str) -> str:
    """The ASCII text hidden in tag characters (what the model sees and the human does not)."""
    return "".join(chr(ord(c) - 0xE0000) for c in text if 0xE0020 <= ord(c) <= 0xE007E)


def _is_emoji(ch: str) -> bool:
    return unicodedata.category(ch) == "So" or 0x1F000 <= ord(ch) <= 0x1FAFF


def _legit_joiner(text: str, index: int) -> bool:
    """ZWJ/ZWNJ between emoji, or inside scripts that need them (Arabic, Indic), is ordinary text."""
    before = text[index - 1] if index > 0 else ""
    after = text[index + 1] if index + 1 < len(text) else ""
    if before and (_is_emoji(before) or before == "\ufe0f"):
        return True
    if after and _is_emoji(after):
        return True
    for ch in (before, after):
        if ch and ord(ch) >= 0x0600 and unicodedata.category(ch).startswith("L") and not ch.isascii():
            name = unicodedata.name(ch, "")
            if not name.startswith(("LATIN", "CYRILLIC", "GREEK")):
                return True
    return False


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
        if fg & bg or ({"7"} <= fg and bg) or ("7" in fg and "47" in params):
            return "high", "ANSI foreground equals background: text hidden from a human reader"
    return "medium", "ANSI colour codes in text sent to the model"


def scan_invisible(text: str, *, terminal_output: bool = False) -> list[Hit]:
    """Report invisible or control characters; strings without any return immediately.

    ``terminal_output`` is for results: command output legitimately carries
    colour codes and progress-bar carriage returns, so only the escapes that
    hide or rewrite text are reported there.
    """
    if not has_suspect_chars(text):
        return []
    hits: list[Hit] = []
    if "\x1b" in text or "\x9b" in text:
        severity, message = _ansi_severity(text)
        if not (terminal_output and severity == "medium"):
            hits.append(Hit("unicode.ansi-escape", severity, message))
    if not text.isascii():
        if _TAG.search(text):
            hidden = decode_tags(text)
            shown = hidden[:60] + ("..." if len(hidden) > 60 else "")
            hits.append(
                Hit("unicode.tag-chars", "high", f"invisible Unicode tag characters encode: {shown!r}")
            )
        if _VS_SUPPLEMENT.search(text):
            hits.append(
                Hit("unicode.variation-selectors", "high", "invisible variation selectors carry data")
            )
        if _BIDI_OVERRIDE.search(text):
            hits.append(
                Hit("unicode.bidi-override", "high", "bidi embedding/override reorders displayed text")
            )
        has_rtl = _RTL_LETTER.search(text) is not None
        if _BIDI_ISOLATE.search(text):
            if has_rtl:
                hits.append(Hit("unicode.bidi-isolate", "low", "bidi isolate controls"))
            else:
                hits.append(
                    Hit("unicode.bidi-isolate", "high", "bidi isolate controls around left-to-right text")
                )
        if _BIDI_MARK.search(text) and not has_rtl:
            hits.append(Hit("unicode.bidi-mark", "medium", "directional marks in text without RTL script"))
        if _ZW_RUN.search(text):
            hits.append(
                Hit("unicode.zero-width-run", "high", "run of zero-width characters (hidden encoding)")
            )
        else:
            splits = [m for m in _ZW_IN_WORD.finditer(text) if not _legit_joiner(text, m.start())]
            if len(splits) >= 2:
                hits.append(
                    Hit(
                        "unicode.zero-width-split",
                        "high",
                        f"{len(splits)} words split by invisible characters",
                    )
                )
            elif splits:
                hits.append(Hit("unicode.zero-width-split", "medium", "word split by an invisible character"))
            elif _ZW_ANY.search(text):
                lone = [
                    i
                    for i, c in enumerate(text)
                    if c in _ZERO_WIDTH and c != "\u00ad" and not _legit_joiner(text, i)
                ]
                if lone:
                    hits.append(Hit("unicode.zero-width", "low", "zero-width character"))
        if _FILLERS.search(text):
            hits.append(Hit("unicode.filler", "medium", "blank filler character"))
    if _CONTROL.search(text):
        hits.append(Hit("unicode.control", "medium", "control character"))
    if _BARE_CR.search(text) and not terminal_output:
        hits.append(
            Hit("unicode.carriage-return", "medium", "bare carriage return can overwrite a displayed line")
        )
    return hits


def strip_invisible(text: str) -> str:
    """Remove what :func:`scan_invisible` complains about, keeping legitimate emoji joiners."""
    if not has_suspect_chars(text):
        return text
    out = _ANSI.sub("", text)
    if not out.isascii():
        if "\u200d" in out or "\u200c" in out:
            kept = []
            for i, ch in enumerate(out):
                if (
                    ch in "\u200d\u200c" and _legit_joiner(out, i) and not _ZW_RUN.search(out)
                ) or _STRIP.match(ch) is None:
                    kept.append(ch)
            out = "".join(kept)
        else:
            out = _STRIP.sub("", out)
        if _RTL_LETTER.search(out) is None:
            out = _BIDI_MARK.sub("", out)
    out = _CONTROL.sub("", out)
    return _BARE_CR.sub("\n", out)


def visible_text(text: str) -> str:
    """The text with invisible characters removed and hidden tag text appended, for content rescans."""
    if not has_suspect_chars(text):
        return text
    extra = decode_tags(text) if not text.isascii() and _TAG.search(text) else ""
    base = strip_invisible(text)
    return f"{base}\n{extra}" if extra else base
