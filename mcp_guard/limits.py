"""Size limits for what crosses the guard.

Oversized messages are refused with a clear error instead of being cut:
a truncated tool result or argument is a silent change of meaning.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .errors import PayloadTooLarge


@dataclass(frozen=True, slots=True)
class SizeLimits:
    """Maxima in bytes of the compact JSON encoding. ``None`` disables a check."""

    max_params_bytes: int | None = 4 * 1024 * 1024
    max_arguments_bytes: int | None = 1024 * 1024
    max_result_bytes: int | None = 16 * 1024 * 1024


def json_size(value: Any) -> int:
    """Size of the compact JSON encoding (what goes over the wire, give or take the envelope)."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode())


def check_size(value: Any, limit: int | None, what: str) -> int:
    """Return the encoded size of ``value``; raise :class:`PayloadTooLarge` beyond ``limit``."""
    size = json_size(value)
    if limit is not None and size > limit:
        raise PayloadTooLarge(f"{what} is {size} bytes, above the limit of {limit}")
    return size
