"""Size limits for what crosses the guard.

Oversized messages are refused with a clear error instead of being cut:
a truncated tool result or argument is a silent change of meaning.
"""

from __future__ import annotations

import json
from collections.abc import Callable
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
    """Exact size in bytes of the compact UTF-8 JSON encoding."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode())


def _ascii_encoder() -> Callable[[Any], str]:
    """``json.dumps(value, separators=(",", ":"), default=str)`` with the C encoder built once.

    ``json.dumps`` with any non-default argument builds a new encoder on every call, which cost
    more than the encoding of a typical request. Same text; circular values fail with
    RecursionError instead of ValueError (both refuse the value as oversized).
    """

    def slow(value: Any) -> str:
        return json.dumps(value, separators=(",", ":"), default=str)

    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - an interpreter without the C scanner
        return slow
    try:
        c_encode = make(None, str, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, True)
        probe = {"a": [1, 2.5, None, True, '\u2028\n"x\u00e9', float("nan")], "b": {1: -0.0, "c": object}}
        if "".join(c_encode(probe, 0)) != slow(probe):  # pragma: no cover
            return slow
    except Exception:  # pragma: no cover - another interpreter's signature
        return slow

    def encode(value: Any) -> str:
        return "".join(c_encode(value, 0))

    return encode


_encode_ascii = _ascii_encoder()


def json_size_bound(value: Any) -> int:
    """A cheap upper bound of :func:`json_size`.

    The ASCII-escaped encoding is the C encoder's fastest path, and an escape
    (6 or 12 characters) is never shorter than the UTF-8 bytes it stands for,
    so this never under-counts; the exact size is computed only near a limit.
    """
    return len(_encode_ascii(value))


def check_size(value: Any, limit: int | None, what: str) -> int:
    """Return the encoded size of ``value`` (an upper bound when far below ``limit``).

    Raise :class:`PayloadTooLarge` when the exact size exceeds ``limit``.
    """
    try:
        size = json_size_bound(value)
    except (ValueError, RecursionError) as exc:
        # Values JSON cannot encode (an integer past Python's digit limit, nesting past the
        # recursion limit) are refused as oversized, not as a failure of the guard.
        raise PayloadTooLarge(f"{what} cannot be encoded as JSON: {exc}") from None
    if limit is None or size <= limit:
        return size
    size = json_size(value)
    if size > limit:
        raise PayloadTooLarge(f"{what} is {size} bytes, above the limit of {limit}")
    return size
