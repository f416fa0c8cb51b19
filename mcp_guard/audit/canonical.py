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
from collections.abc import Mapping
from typing import Any

# No circular check: records are trees built by ``redact.jsonable`` (a cycle ends in RecursionError).
_ENCODER = json.JSONEncoder(
    sort_keys=False, separators=(",", ":"), ensure_ascii=True, allow_nan=False, check_circular=False
)

#: Printable form of characters that could forge lines or mislead on a terminal.
_UNSAFE = {c: f"\\u{c:04x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))}
_UNSAFE.update({c: f"\\u{c:04x}" for c in (0x2028, 0x2029, 0x200E, 0x200F, 0x061C)})
_UNSAFE.update({c: f"\\u{c:04x}" for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))})


def canonical(record: Mapping[str, Any]) -> str:
    """Compact JSON text of a record (must already be JSON-safe: see ``redact.jsonable``)."""
    return _ENCODER.encode(record)


def printable(text: str) -> str:
    """Escape control, line-separator and bidi characters for human-readable output."""
    return text.translate(_UNSAFE)
