"""CEL value semantics for compiled conditions: equality, ordering, arithmetic, conversions.

These are the runtime operations the closures of :mod:`.celeval` call:
no implicit conversions, heterogeneous numeric equality, truncating integer
division and 64-bit overflow errors. Every failure is an :class:`EvalError`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

__all__ = ["EvalError", "cel_eq", "parse_duration", "parse_timestamp"]

_INT_MIN = -(2**63)
_INT_MAX = 2**63 - 1
_NoneType = type(None)


class EvalError(Exception):
    """A condition could not be evaluated (missing key, wrong type, overflow)."""


# --- value semantics -----------------------------------------------------------------------------


def _is_num(v: Any) -> bool:
    return (type(v) is int or type(v) is float) and type(v) is not bool


def cel_eq(a: Any, b: Any) -> bool:
    ta, tb = type(a), type(b)
    if ta is tb and (ta is str or ta is int or ta is float or ta is bool or ta is _NoneType):
        return bool(a == b)
    if ta is bool or tb is bool or a is None or b is None:
        return False
    if _is_num(a) and _is_num(b):
        return bool(a == b)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(cel_eq(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return len(a) == len(b) and all(k in b and cel_eq(v, b[k]) for k, v in a.items())
    if ta is tb and ta in (bytes, datetime, timedelta):
        return bool(a == b)
    return False


def _order(a: Any, b: Any) -> int:
    if (_is_num(a) and _is_num(b)) or (
        type(a) is type(b) and type(a) in (str, bool, bytes, datetime, timedelta)
    ):
        return -1 if a < b else (1 if a > b else 0)
    raise EvalError(f"cannot order {type(a).__name__} and {type(b).__name__}")


def _check_int(v: int) -> int:
    if v < _INT_MIN or v > _INT_MAX:
        raise EvalError("integer overflow")
    return v


def _add(a: Any, b: Any) -> Any:
    ta, tb = type(a), type(b)
    if ta is tb:
        if ta is int:
            return _check_int(a + b)
        if ta in (float, str, bytes, timedelta):
            return a + b
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return [*a, *b]
    if isinstance(a, datetime) and tb is timedelta:
        return a + b
    if ta is timedelta and isinstance(b, datetime):
        return b + a
    raise EvalError(f"no '+' for {ta.__name__} and {tb.__name__}")


def _sub(a: Any, b: Any) -> Any:
    ta, tb = type(a), type(b)
    if ta is tb and ta is int:
        return _check_int(a - b)
    if ta is tb and ta in (float, timedelta):
        return a - b
    if isinstance(a, datetime) and (isinstance(b, datetime) or tb is timedelta):
        return a - b
    raise EvalError(f"no '-' for {ta.__name__} and {tb.__name__}")


def _mul(a: Any, b: Any) -> Any:
    ta, tb = type(a), type(b)
    if ta is tb and ta is int:
        return _check_int(a * b)
    if ta is tb and ta is float:
        return a * b
    raise EvalError(f"no '*' for {ta.__name__} and {tb.__name__}")


def _div(a: Any, b: Any) -> Any:
    ta, tb = type(a), type(b)
    if ta is tb and ta is int:
        if b == 0:
            raise EvalError("division by zero")
        q = abs(a) // abs(b)
        return _check_int(q if (a < 0) == (b < 0) else -q)
    if ta is tb and ta is float:
        if b == 0.0:
            return math.nan if a == 0.0 or math.isnan(a) else math.copysign(math.inf, a) * math.copysign(1, b)
        return a / b
    raise EvalError(f"no '/' for {ta.__name__} and {tb.__name__}")


def _mod(a: Any, b: Any) -> Any:
    if type(a) is int and type(b) is int:
        if b == 0:
            raise EvalError("modulus by zero")
        r = abs(a) % abs(b)
        return -r if a < 0 else r
    raise EvalError(f"no '%' for {type(a).__name__} and {type(b).__name__}")


def _contains(container: Any, item: Any) -> bool:
    if isinstance(container, (frozenset, set)):
        return type(item) is str and item in container
    if isinstance(container, Mapping):
        if type(item) is str:
            return item in container
        if type(item) not in (int, bool):
            raise EvalError(f"a {type(item).__name__} cannot be a map key")
        return any(cel_eq(k, item) for k in container)
    if isinstance(container, (list, tuple)):
        return any(cel_eq(x, item) for x in container)
    raise EvalError(f"'in' needs a list or map, not {type(container).__name__}")


def _size(v: Any) -> int:
    if type(v) is str:
        # the cel package counts UTF-8 bytes (the CEL spec says code points): one semantics, its own
        try:
            return len(v.encode("utf-8"))
        except UnicodeEncodeError:
            raise EvalError("size() of a string that is not valid Unicode") from None
    if isinstance(v, (bytes, list, tuple, Mapping)):
        return len(v)
    raise EvalError(f"size() of {type(v).__name__}")


def _bool(v: Any) -> bool:
    if type(v) is bool:
        return v
    raise EvalError(f"expected bool, got {type(v).__name__}")


_DURATION = re.compile(r"([0-9]*\.?[0-9]+)(h|ms|us|µs|ns|m|s)")
_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def parse_duration(text: str) -> timedelta:
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    pos, total = 0, 0.0
    for m in _DURATION.finditer(body):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT[m.group(2)]
        pos = m.end()
    if pos != len(body) or not body:
        raise EvalError(f"invalid duration {text!r}")
    return timedelta(seconds=sign * total)


def parse_timestamp(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise EvalError(f"invalid timestamp {text!r}") from None
    if value.tzinfo is None:
        raise EvalError(f"timestamp {text!r} has no time zone")
    return value


_INT_TEXT = re.compile(r"[+-]?[0-9]+", re.ASCII)
_DOUBLE_TEXT = re.compile(
    r"[+-]?(?:(?i:inf|infinity|nan)|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)", re.ASCII
)


def _format_double(v: float) -> str:
    """A double as the cel package prints it: shortest round-trip digits, never an exponent."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    text = format(Decimal(repr(v)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _to_int(v: Any) -> int:
    if type(v) is int:
        return v
    if type(v) is float:
        if math.isnan(v) or math.isinf(v):
            raise EvalError("int() of a non-finite double")
        return _check_int(int(v))
    if type(v) is str:
        if _INT_TEXT.fullmatch(v) is None:  # Python's int() also takes spaces, "_" and non-ASCII digits
            raise EvalError(f"int() of {v!r}")
        return _check_int(int(v, 10))
    if isinstance(v, datetime):
        return int(v.timestamp())
    raise EvalError(f"int() of {type(v).__name__}")


def _to_double(v: Any) -> float:
    if type(v) in (int, float):
        return float(v)
    if type(v) is str:
        if _DOUBLE_TEXT.fullmatch(v) is None:
            raise EvalError(f"double() of {v!r}")
        return float(v)
    raise EvalError(f"double() of {type(v).__name__}")


def _to_string(v: Any) -> str:
    if type(v) is str:
        return v
    if type(v) is int:
        return str(v)
    if type(v) is float:
        return _format_double(v)
    if type(v) is bytes:
        return v.decode("utf-8")
    if isinstance(v, datetime):
        return v.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    raise EvalError(f"string() of {type(v).__name__}")


def _to_timestamp(v: Any) -> datetime:
    if isinstance(v, datetime):
        return v
    if type(v) is str:
        return parse_timestamp(v)
    if type(v) is int:
        return datetime.fromtimestamp(v, timezone.utc)
    raise EvalError(f"timestamp() of {type(v).__name__}")


def _to_duration(v: Any) -> timedelta:
    if isinstance(v, timedelta):
        return v
    if type(v) is str:
        return parse_duration(v)
    raise EvalError(f"duration() of {type(v).__name__}")


_CONVERSIONS: dict[str, Callable[[Any], Any]] = {
    "int": _to_int,
    "double": _to_double,
    "string": _to_string,
    "timestamp": _to_timestamp,
    "duration": _to_duration,
    "dyn": lambda v: v,
}


def _str_method(name: str) -> Callable[[Any, Any], bool]:
    def method(recv: Any, arg: Any) -> bool:
        if type(recv) is not str or type(arg) is not str:
            raise EvalError(f"{name}() needs strings")
        if name == "startsWith":
            return recv.startswith(arg)
        if name == "endsWith":
            return recv.endswith(arg)
        return arg in recv

    return method
