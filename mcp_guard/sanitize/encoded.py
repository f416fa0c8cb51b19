"""Encoded text: finding runs that may be base64, base32, hex, percent-encoded, rot13 or reversed.

:mod:`.injection` rescans whatever these helpers decode. They need nothing
from the detector, so they live apart from it and keep it small.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import contextlib
import html
import re
from urllib.parse import unquote

from .decoders import (
    base85_words,
    extra_candidates,
    looks_encoded,
    padded_words,
    rot13_likely,
    spaced_hex,
    text_of,
)
from .fastre import FastPattern

#: Runs start where the alphabet starts: without the look-behind every position inside a short run
#: is retried (quadratic in the word length); with it, the same matches in one linear pass.
_RUNS = re.compile(r"(?<![A-Za-z0-9+/_=-])[A-Za-z0-9+/_=-]{24,}")
_DECODE_HINTS = (
    "%",
    "rot13",
    "rot-13",
    "caesar",
    "revers",
    "right-to-left",
    "backwards",
    "ckw",
    "l'envers",
    "\u202e",
    "\\x",
    "\\u",
    "&#",
    "逆",
    "倒",
)
#: On lower-cased ASCII text, one RE2 pass answers :func:`_may_be_encoded`: 24 run characters in a
#: row (the start of a run of 24 or more; lower-casing keeps every run where it was) or a hint.
#: (Searching the text as written with ``(?i)`` gives the same answer several times slower.)
_ASCII_SIGNS = FastPattern(
    re.compile(r"[A-Za-z0-9+/_=-]{24}|" + "|".join(re.escape(h) for h in _DECODE_HINTS if h.isascii()))
)
#: The runs of :data:`_RUNS` on ASCII text: RE2's leftmost-longest start is a run's first character.
_LONG_RUN = FastPattern(re.compile(r"[A-Za-z0-9+/_=-]{24,}"))
_HEX_RUN = re.compile(r"[0-9a-fA-F]+")
_B32_RUN = re.compile(r"[A-Z2-7]+")
_PCT = re.compile(r"(?:%[0-9A-Fa-f]{2}[^%\s]{0,3}){6,}")
_ROT_HINT = re.compile(r"rot-?13|caesar", re.IGNORECASE)
_REV_HINT = re.compile(
    r"revers|right-to-left|backwards|r[üu]ckw[äa]rts|[àa] l'envers|al rev[ée]s|逆|倒", re.IGNORECASE
)
_RLO = re.compile("\u202e([^\u202c\n]*)")


def rot_hint(text: str) -> bool:
    """``_ROT_HINT`` matches; ASCII text (the usual case) is answered by substring tests."""
    if text.isascii():
        low = text.lower()
        return ("rot" in low and ("rot13" in low or "rot-13" in low)) or "caesar" in low
    return _ROT_HINT.search(text) is not None


def rev_hint(text: str) -> bool:
    """``_REV_HINT`` matches; on ASCII text its alternatives are these substrings, lower-cased."""
    if text.isascii():
        low = text.lower()
        return any(
            hint in low
            for hint in ("revers", "right-to-left", "backwards", "ruckwarts", "a l'envers", "al reves")
        )
    return _REV_HINT.search(text) is not None


#: Escape sequences written out as text: ``\x49\x67``, ``\u0041``, ``&#73;&#x67;`` (six or more in a row).
_ESCAPES = re.compile(
    r"(?:\\x[0-9a-fA-F]{2}){6,}|(?:\\u[0-9a-fA-F]{4}){6,}|(?:&#(?:[xX][0-9a-fA-F]{1,6}|\d{1,7});\s?){6,}"
)
#: Decoded text longer than this is cut: nested decoding must not grow without bound.
MAX_DECODED = 4096


def _unescape(run: str) -> str:
    if run.startswith("\\x"):
        return bytes.fromhex(run.replace("\\x", "")).decode("utf-8", "replace")
    if run.startswith("\\u"):
        return "".join(chr(int(run[i + 2 : i + 6], 16)) for i in range(0, len(run), 6))
    return html.unescape(run)


def _decoded_candidates(text: str) -> list[tuple[str, str]]:
    """(encoding, decoded text) pairs worth rescanning; binary and short results are dropped.

    One pass finds long runs of encoding alphabets; each run is decoded only
    as the encodings its characters allow (hex digits, base32 upper case,
    base64's mixed case), so ordinary long identifiers cost a few checks.
    """
    out: list[tuple[str, str]] = []
    for run in _runs(text):
        raw = run.rstrip("=")
        if len(raw) < 24:
            continue
        if _HEX_RUN.fullmatch(raw) and len(raw) % 2 == 0:
            out.append(("hex", bytes.fromhex(raw).decode("utf-8", "replace")))
        elif _B32_RUN.fullmatch(raw):
            with contextlib.suppress(binascii.Error, ValueError):
                decoded = base64.b32decode(raw + "=" * (-len(raw) % 8))
                out.append(("base32", decoded.decode("utf-8", "replace")))
        if raw.isalpha() and (raw.islower() or raw.isupper()):
            continue  # a word or an identifier, not base64
        if raw.lower() == raw or raw.upper() == raw:  # runs are ASCII: no upper or no lower case
            continue
        try:
            padded = raw.replace("-", "+").replace("_", "/")
            data = base64.b64decode(padded + "=" * (-len(padded) % 4), validate=True)
        except (binascii.Error, ValueError):
            continue
        out.append(("base64", text_of(data)))
    if "\\x" in text or "\\u" in text or "&#" in text:
        for m in _ESCAPES.finditer(text):
            with contextlib.suppress(ValueError, OverflowError):
                out.append(("escape sequences", _unescape(m.group(0))))
    if "%" in text:
        for m in _PCT.finditer(text):
            plain = unquote(m.group(0))
            if "+" in plain and " " not in plain:  # form encoding writes spaces as "+"
                plain = plain.replace("+", " ")
            out.append(("percent-encoding", plain))
    out.extend(extra_candidates(text))
    if len(out) > 1:  # half base64, half hex: the pieces read together
        out.append(("mixed encodings", " ".join(dec for _, dec in out)))
    if rot_hint(text) or (text.isascii() and rot13_likely(text.lower())):
        out.append(("rot13", codecs.decode(text, "rot13")))
    if rev_hint(text):
        out.append(("reversed", text[::-1]))
    if "\u202e" in text:
        for m in _RLO.finditer(text):
            out.append(("bidi-reversed", m.group(1)[::-1]))
    # A layer that is itself encoded (base64 inside percent encoding) goes on to the next round.
    return [(enc, dec[:MAX_DECODED]) for enc, dec in out[:32] if _readable(dec) or looks_encoded(dec)]


def _runs(text: str) -> list[str]:
    """The maximal runs of :data:`_RUNS`, from RE2 on ASCII text (linear, no look-behind needed)."""
    if not text.isascii():
        return [m.group(0) for m in _RUNS.finditer(text)]
    runs: list[str] = []
    at = _LONG_RUN.search(text)
    while at is not None:
        runs.append(at[2])
        at = _LONG_RUN.search(text, at[1])
    return runs


def _readable(text: str) -> bool:
    if len(text) < 8 or " " not in text.strip():
        return False
    printable = sum(1 for c in text if c.isprintable() or c in "\n\t")
    return printable / len(text) > 0.95 and "\ufffd" not in text


def _may_be_encoded(text: str) -> bool:
    """A run long enough to decode, or a hint that the text is rotated, reversed or percent-encoded.

    A run has no whitespace, so texts whose longest word is short skip the regex (most prose).
    ASCII text (nearly all) is answered by one RE2 pass for the run and every hint together.
    """
    if text.isascii():
        low = text.lower()
        if _ASCII_SIGNS.search(low) is not None:
            return True
        if max(map(len, text.split()), default=0) >= 24 and base85_words(text):
            return True
    else:
        if max(map(len, text.split()), default=0) >= 24 and (
            _RUNS.search(text) is not None or base85_words(text)
        ):
            return True
        low = text.lower()
        if any(hint in low for hint in _DECODE_HINTS):
            return True
    # Hex bytes with spaces (" 20 " is the space), one base64 token per word, rot13 without a hint:
    # one pass for all three first, since most text has none of them.
    if not ("20" in low or "=" in low or " gur " in low or " gb " in low or " naq " in low or " nyy " in low):
        return False
    return spaced_hex(text) or padded_words(text) or rot13_likely(low)
