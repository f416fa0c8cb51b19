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
from collections.abc import Callable, Mapping
from typing import Any

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
