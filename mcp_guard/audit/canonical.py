"""The one JSON encoding the audit trail uses, for MACs and for line-oriented sinks.

Compact separators, keys in the record's own order (the MAC covers the exact
stored bytes, so verifiers never re-encode and no key sorting is needed).
``ensure_ascii`` turns
every control character, line separator (U+2028/U+2029, NEL) and bidi control
into a ``\\uXXXX`` escape, so nothing an argument contains can start a new log
line or repaint a terminal.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

try:  # optional (the ``fast`` extra): the same text several times faster
    import orjson as _orjson
except ImportError:  # pragma: no cover - exercised by forcing ``FAST = False`` in tests
    _orjson = None  # type: ignore[assignment]

try:  # the C scanner behind ``json``; absent on some interpreters
    from json.encoder import c_make_encoder as _c_make_encoder  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    _c_make_encoder = None

# No circular check: records are trees built by ``redact.jsonable`` (a cycle ends in RecursionError).
_ENCODER = json.JSONEncoder(
    sort_keys=False, separators=(",", ":"), ensure_ascii=True, allow_nan=False, check_circular=False
)

#: Printable form of characters that could forge lines or mislead on a terminal.
_UNSAFE = {c: f"\\u{c:04x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))}
_UNSAFE.update({c: f"\\u{c:04x}" for c in (0x2028, 0x2029, 0x200E, 0x200F, 0x061C)})
_UNSAFE.update({c: f"\\u{c:04x}" for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))})


def _not_json(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _direct() -> Callable[[Any], str]:
    """``_ENCODER.encode`` without its per-call setup: the C encoder built once, same output."""
    if _c_make_encoder is None:  # pragma: no cover
        return _ENCODER.encode
    try:
        c_encode = _c_make_encoder(
            None, _not_json, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, False
        )
        probe = {"a": [1, 2.5, None, True, '\u2028\n"x\u00e9'], "b": {"c": -0.0}}
        if c_encode(probe, 0)[0] != _ENCODER.encode(probe):  # pragma: no cover
            return _ENCODER.encode
    except Exception:  # pragma: no cover - another interpreter's signature
        return _ENCODER.encode

    def encode(value: Any) -> str:
        return c_encode(value, 0)[0]  # type: ignore[no-any-return]

    return encode


#: ``encode(value)``: the canonical JSON text of any JSON value; TypeError/ValueError on
#: anything else (bytes, NaN, arbitrary objects).
encode = _direct()
#: The canonical JSON form of one string (quotes included).
encode_string: Callable[[str], str] = json.encoder.encode_basestring_ascii


def canonical(record: Mapping[str, Any]) -> str:
    """Compact JSON text of a record (must already be JSON-safe: see ``redact.jsonable``)."""
    return encode(record)


def printable(text: str) -> str:
    """Escape control, line-separator and bidi characters for human-readable output."""
    return text.translate(_UNSAFE)


# -- fast encoder ------------------------------------------------------------------------------------
#
# ``orjson`` writes the same JSON as the encoder above except in four places, each handled here so
# that ``encode_fast`` returns exactly ``encode``'s text (or fails like it):
# - it writes non-ASCII characters and DEL raw: they can only occur inside strings, so they are
#   escaped afterwards the way ``ensure_ascii`` does (surrogate pairs above U+FFFF);
# - it spells floats below 1e-4 differently (``0.00001``, ``1e-7``): spellings ``repr`` never uses, so
#   their presence sends the value to the standard encoder;
# - NaN and infinities become ``null``, and a few non-JSON types (``UUID``, plain ``Enum`` members)
#   are written instead of refused: parsing the output back and comparing it with the input
#   catches both (unless the caller vouches that the value holds none);
# - everything else it does not take (big integers, non-string keys, subclasses, lone surrogates,
#   very deep nesting) raises, and the standard encoder then decides.

#: Whether ``encode_fast`` uses orjson (tests switch it off to check the fallback).
FAST = _orjson is not None
_OPTIONS = 0
if _orjson is not None:
    _OPTIONS = (
        _orjson.OPT_PASSTHROUGH_SUBCLASS
        | _orjson.OPT_PASSTHROUGH_DATETIME
        | _orjson.OPT_PASSTHROUGH_DATACLASS
    )
_NOT_ASCII = re.compile("[^\x00-\x7e]")
_DIGITS = frozenset(b"0123456789")


def _odd_float(out: bytes) -> bool:
    """Whether ``out`` may hold a float spelled ``0.0000...`` or ``De-D`` (one exponent digit).

    Substring tests first (``e-`` is common in text: ``streamable-http``), then the neighbours of
    each hit; a hit inside a string only costs the slower encoder.
    """
    if b"e-" in out:
        for m in _E_MINUS.finditer(out):
            if m.start() and out[m.start() - 1] in _DIGITS:
                return True
    if b"0.0000" in out:
        for m in _ZEROS.finditer(out):
            if not m.start() or out[m.start() - 1] not in _DIGITS:
                return True
    return False


_E_MINUS = re.compile(rb"e-[0-9](?![0-9])")
_ZEROS = re.compile(rb"0\.0000")


def _escape(m: re.Match[str]) -> str:
    c = ord(m.group())
    if c < 0x10000:
        return f"\\u{c:04x}"
    c -= 0x10000
    return f"\\u{0xD800 | (c >> 10):04x}\\u{0xDC00 | (c & 0x3FF):04x}"


def encode_fast(value: Any, plain: bool = False) -> str:
    """``encode(value)``, computed with orjson when it is installed.

    ``plain``: the caller guarantees ``value`` holds only str/int/bool/None, floats that are zero
    or finite with a magnitude of at least 1e-4, and lists and str-keyed dicts of those, which skips
    the float-spelling and round-trip checks.
    """
    if not FAST:
        return encode(value)
    try:
        out: bytes = _orjson.dumps(value, _not_json, _OPTIONS)
    except (TypeError, ValueError):  # orjson.JSONEncodeError is a TypeError
        return encode(value)
    if not plain and (_odd_float(out) or _orjson.loads(out) != value):
        return encode(value)
    text = out.decode()
    if not text.isascii() or "\x7f" in text:
        text = _NOT_ASCII.sub(_escape, text)
    return text
