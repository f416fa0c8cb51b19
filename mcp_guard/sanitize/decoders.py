"""Decoders for the encodings :mod:`.encoded` does not try on its own.

An attacker who knows that base64 gets decoded picks the next encoding:
base85, zlib-compressed base64, hex bytes written with spaces, one base64
token per word, ``+`` for spaces in form encoding, rot13 without a hint, or
several of them nested. Each decoder here is cheap to rule out (a substring
or a character test first) and capped in size: a decoded text is cut at
:data:`MAX_DECODED` characters and a compressed stream is inflated to that
many bytes at most, so nothing grows without bound.

:func:`extra_candidates` is what :mod:`.encoded` adds to its own list;
:func:`looks_encoded` lets an intermediate layer (base64 text hidden in
percent encoding) through to the next round of decoding; :func:`hidden_prose`
finds sentences hidden in an encoding inside a definition, where nobody
honest puts them.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import re
import zlib
from collections.abc import Callable

#: Decoded text is cut at this length (also the inflate limit of a compressed stream).
MAX_DECODED = 4096
#: Runs longer than this are not decoded at all (a data URL, an embedded file).
MAX_RUN = 16384
#: Hex bytes separated by spaces or colons: ``49 67 6e 6f`` (twelve or more).
_SPACED_HEX = re.compile(r"(?<![0-9A-Za-z])(?:[0-9a-fA-F]{2}[ :]){11,}[0-9a-fA-F]{2}(?![0-9A-Za-z])")
#: Short base64 tokens in a row, each padded or a multiple of four long: ``dGhl aW52b2ljZQ==``.
_WORD_B64 = re.compile(r"(?<!\S)(?:[A-Za-z0-9+/]{2,}={0,2}[ \t]+){3,}[A-Za-z0-9+/]{2,}={0,2}(?!\S)")
_LONG_WORD = re.compile(r"(?<!\S)\S{24,}")
#: Words wholly in the base85 alphabet (RFC 1924 / Python ``b85``) or in base64's.
_B85_ONLY = re.compile(r"[0-9A-Za-z!#$%&()*+\-;<=>?@^_`{|}~]+")
_B64_ONLY = re.compile(r"[0-9A-Za-z+/=_-]+")
#: A whole word of 24 or more base85 characters.
_B85_WORD = re.compile(r"(?<!\S)[0-9A-Za-z!#$%&()*+\-;<=>?@^_`{|}~]{24,}(?!\S)")
_PARTS = re.compile(r"://|[=?&]")
_PADDED_WORD = re.compile(r"[A-Za-z0-9+/]{2,}={1,2}(?=\s|$)")
#: Common English words after rot13 ("the", "and", "to", "of", "with", "your", "all", "into", "for", ...).
_ROT_WORDS = tuple(
    f" {w} "
    for w in ("gur", "naq", "gb", "bs", "jvgu", "lbhe", "nyy", "vagb", "sbe", "sebz", "lbh", "guvf", "gung")
)
#: Common English function words: a decoded text with two of them reads as English.
_ENGLISH = frozenset(
    [
        "the",
        "and",
        "to",
        "of",
        "a",
        "in",
        "is",
        "it",
        "you",
        "your",
        "for",
        "with",
        "on",
        "from",
        "all",
        "this",
        "that",
        "be",
        "as",
        "by",
        "or",
        "then",
        "before",
        "after",
        "into",
        "any",
        "every",
        "its",
        "their",
        "them",
        "when",
        "not",
    ]
)
#: zlib and gzip stream headers.
_ZLIB_HEADS = (b"\x78\x01", b"\x78\x5e", b"\x78\x9c", b"\x78\xda", b"\x1f\x8b")


def text_of(data: bytes) -> str:
    """Bytes as text, inflated first when they are a zlib or gzip stream (capped)."""
    if data[:2] in _ZLIB_HEADS:
        with contextlib.suppress(zlib.error):
            inflater = zlib.decompressobj(47)  # 32 + 15: zlib or gzip header, detected
            data = inflater.decompress(data, MAX_DECODED)
    return data[:MAX_DECODED].decode("utf-8", "replace")


def b64_bytes(run: str) -> bytes | None:
    """Standard or URL-safe base64, padded or not; ``None`` if ``run`` is not base64."""
    padded = run.replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(padded + "=" * (-len(padded) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def _b85(word: str) -> list[str]:
    out: list[str] = []
    body = word[2:-2] if word.startswith("<~") and word.endswith("~>") else word
    decoders: tuple[Callable[[str], bytes], ...] = (base64.b85decode, base64.a85decode)
    for decode in decoders:
        with contextlib.suppress(ValueError):
            out.append(text_of(decode(body)))
    return out


def base85_words(text: str) -> bool:
    """A word of 24 or more base85 characters, or Ascii85 between ``<~`` and ``~>``."""
    if "<~" in text and "~>" in text:
        return True
    return _B85_WORD.search(text) is not None


def spaced_hex(text: str) -> bool:
    """Hex bytes written with separators; ``20`` (a space) is in any encoded sentence."""
    if "20 " not in text and "20:" not in text:
        return False
    return text.count("20 ") + text.count("20:") >= 3 and _SPACED_HEX.search(text) is not None


def padded_words(text: str) -> bool:
    """Two or more words ending in base64 padding (``dGhl aW52b2ljZQ== dG8=``), not ``a == b``."""
    if "=" not in text or ("= " not in text and "=\n" not in text and not text.endswith("=")):
        return False
    return len(_PADDED_WORD.findall(text)) >= 2


def rot13_likely(low: str) -> bool:
    """Lower-cased text with two or more common English words written in rot13."""
    if " gur " not in low and " gb " not in low and " naq " not in low and " nyy " not in low:
        # "the", "to", "and", "all": nearly any sentence of some length has one
        return False
    return sum(1 for word in _ROT_WORDS if word in low) >= 2


def extra_candidates(text: str) -> list[tuple[str, str]]:
    """(encoding, decoded text) pairs beyond what :mod:`.encoded` finds."""
    out: list[tuple[str, str]] = []
    # Long words matter here only as ``key=value``, ``scheme://payload`` or base85: the rest
    # (identifiers, paths, plain base64) is decoded by :mod:`.encoded` already.
    valued = "=" in text or "://" in text or "<~" in text or base85_words(text)
    for match in _LONG_WORD.finditer(text) if valued else ():
        word = match.group(0)
        if len(word) > MAX_RUN:
            continue
        # ``key=base64`` and ``data://base64``: the value (a URL whose part after "://" has a dot
        # is a host and a path, not a payload).
        url = "://" in word and "." not in word.split("://", 1)[1]
        if url or "=" in word.rstrip("="):
            for value in _PARTS.split(word.rstrip("=")):
                data = b64_bytes(value) if len(value) >= 24 else None
                if data is not None:
                    out.append(("base64", text_of(data)))
        if (word.startswith("<~") and word.endswith("~>")) or (
            _B85_ONLY.fullmatch(word) is not None and _B64_ONLY.fullmatch(word) is None
        ):
            out.extend(("base85", decoded) for decoded in _b85(word))
    if spaced_hex(text):
        for m in _SPACED_HEX.finditer(text):
            digits = m.group(0).replace(" ", "").replace(":", "")
            out.append(("hex", bytes.fromhex(digits).decode("utf-8", "replace")))
    if padded_words(text):
        for m in _WORD_B64.finditer(text):
            words = [b64_bytes(w) for w in m.group(0).split()]
            if all(w is not None for w in words):
                out.append(("base64 per word", " ".join(w.decode("utf-8", "replace") for w in words if w)))
    return out


def looks_encoded(text: str) -> bool:
    """A decoded layer that is itself an encoded run: worth one more round of decoding."""
    if len(text) < 24 or not text.isprintable():
        return False
    longest = max(map(len, text.split()), default=0)
    if longest >= 24 or text.count("%") >= 6 or text.count("\\") >= 6 or text.count("&#") >= 6:
        return True
    return text.isascii() and rot13_likely(text.lower())


def english_prose(text: str) -> bool:
    """Five or more words, most alphabetic, two English function words: a sentence, not a token or JSON."""
    words = text.split()
    if len(words) < 5:
        return False
    bare = [w.strip(".,:;!?'\"()").lower() for w in words]
    alpha = sum(1 for w in bare if w.isalpha())
    return alpha >= 5 and alpha * 4 >= len(words) * 3 and len(_ENGLISH.intersection(bare)) >= 2
