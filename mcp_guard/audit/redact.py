"""Masking of what must never reach an audit sink.

Two layers: field rules (argument paths named by policy ``redact``
obligations, e.g. ``password``, ``creds.token``, ``items[*].secret``) mask a
whole value; then secret detectors run over every string of the record, and
values under keys such as ``password`` are masked whatever they look like.
Non-JSON values (bytes, NaN, arbitrary objects) are turned into safe
placeholders here so serialization can never fail after an event was accepted.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import ConfigError
from . import detectors
from .detectors import MASK

#: One step of a compiled path: a key name, ``*`` (any key), or ``[*]`` / ``[N]`` for list items.
Step = tuple[str, str | int | None]
_TOKEN = re.compile(
    r"""\s*(?:\.?\s*(?P<name>[^.\[\]"'\s]+)|\[\s*(?P<index>\*|\d+)\s*\]|\[\s*(?P<q>["'])(?P<quoted>.*?)(?P=q)\s*\])"""
)

_MAX_DEPTH = 64


def parse_path(path: str) -> tuple[Step, ...]:
    """Compile ``a.b[*].c`` / ``a["x.y"][0]`` (optionally prefixed ``$.``); raise ConfigError when invalid."""
    text = path.strip()
    if text.startswith("$"):
        text = text[1:]
    steps: list[Step] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise ConfigError(f"invalid redact path {path!r} at offset {pos}", field="redact.fields")
        if m.group("name") is not None:
            name = m.group("name")
            steps.append(("any", None) if name == "*" else ("key", name))
        elif m.group("index") is not None:
            idx = m.group("index")
            steps.append(("items", None) if idx == "*" else ("item", int(idx)))
        else:
            steps.append(("key", m.group("quoted")))
        pos = m.end()
    if not steps:
        raise ConfigError(f"empty redact path {path!r}", field="redact.fields")
    return tuple(steps)


@functools.lru_cache(maxsize=1024)
def compile_paths(paths: tuple[str, ...]) -> tuple[tuple[Step, ...], ...]:
    """Cached: the same obligation paths recur on every call to the same tool."""
    return tuple(parse_path(p) for p in paths)


def _mask_path(value: Any, steps: tuple[Step, ...], i: int) -> Any:
    if i == len(steps):
        return MASK
    kind, arg = steps[i]
    if kind in ("key", "any") and isinstance(value, dict):
        if kind == "key":
            if arg in value:
                value[arg] = _mask_path(value[arg], steps, i + 1)
        else:
            for k in list(value):
                value[k] = _mask_path(value[k], steps, i + 1)
    elif kind in ("items", "item", "any") and isinstance(value, list):
        if kind == "item":
            if isinstance(arg, int) and -len(value) <= arg < len(value):
                value[arg] = _mask_path(value[arg], steps, i + 1)
        else:
            for j in range(len(value)):
                value[j] = _mask_path(value[j], steps, i + 1)
    return value


def mask_fields(arguments: dict[str, Any], paths: tuple[str, ...]) -> dict[str, Any]:
    """Mask the values at ``paths`` in place; an unparsable path masks everything (fail closed)."""
    try:
        compiled = compile_paths(paths)
    except ConfigError:
        return {"[REDACTED]": "unparsable redact path; all arguments masked"}
    for steps in compiled:
        _mask_path(arguments, steps, 0)
    return arguments


def jsonable(value: Any, strings: list[str], mask_keys: bool = True, depth: int = 0) -> Any:
    """Plain JSON-safe copy of ``value``; every string is appended to ``strings`` for the detectors.

    With ``mask_keys`` the values under sensitive keys (``password``, ``api_key``...) are masked.
    Exact-type checks come first: this walk runs over every event and ABC checks are slow.
    """
    t = type(value)
    if t is str:
        strings.append(value)
        return value
    if value is None or t is bool or t is int:
        return value
    if depth >= _MAX_DEPTH:
        return "[TOO DEEP]"
    if t is dict or isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            key = k if type(k) is str else str(k)
            strings.append(key)
            if mask_keys and v is not None and detectors.sensitive_key(key):
                out[key] = MASK
            else:
                out[key] = jsonable(v, strings, mask_keys, depth + 1)
        return out
    if t is list or t is tuple:
        return [jsonable(v, strings, mask_keys, depth + 1) for v in value]
    if isinstance(value, str):
        return jsonable(str(value), strings)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else repr(float(value))
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, (list, tuple)):
        return [jsonable(v, strings, mask_keys, depth + 1) for v in value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"[{len(value)} bytes]"
    text = repr(value)[:200]
    strings.append(text)
    return text


def _apply(value: Any, fn: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, dict):
        return {fn(k): _apply(v, fn) for k, v in value.items()}
    if isinstance(value, list):
        return [_apply(v, fn) for v in value]
    return value


_external: Callable[[Any], Any] | bool | None = False
_external_gate: Callable[[str], bool] | None = None


def _sanitizer_redactor() -> Callable[[Any], Any] | None:
    """The sanitizer's ``redact_secrets`` if that module exists (looked up once).

    Its cheap necessary-condition test ``might_contain_secret``, when present, is kept too so
    the sanitizer's regexes only run over the strings that could hold a secret.
    """
    global _external, _external_gate
    if _external is False:
        try:
            from ..sanitize import redact as shared  # type: ignore[attr-defined, unused-ignore]

            _external = shared.redact_secrets
            gate = getattr(shared, "might_contain_secret", None)
            _external_gate = gate if callable(gate) else None
        except Exception:
            _external = None
    return _external if callable(_external) else None


def _external_text(external: Callable[[Any], Any], text: str) -> str:
    try:
        out = external(text)
    except Exception:
        # Our own detectors still run; an error in the shared module must not stop the event.
        return text
    return out if isinstance(out, str) else text


def _may_hold_secret(text: str) -> bool:
    gate = _external_gate
    if gate is None:
        return True
    try:
        return bool(gate(text))
    except Exception:
        return True  # a broken gate must never hide a string from the detectors


def _shared_rewrites(external: Callable[[Any], Any], strings: list[str]) -> dict[str, str]:
    """``{original: masked}`` for every string the shared detectors change.

    Only the strings that pass the sanitizer's cheap gate are scanned, one by one (as they are
    masked), never the whole record at once; short clean strings are remembered.
    """
    out: dict[str, str] = {}
    clean = _CLEAN
    for text in strings:
        if text in out or text in clean:
            continue
        if _may_hold_secret(text):
            masked = _external_text(external, text)
            if masked != text:
                out[text] = masked
                continue
        if len(text) <= _CLEAN_MAX_LEN:
            if len(clean) >= _CLEAN_MAX:
                clean.clear()
            clean[text] = None
    return out


#: Short strings the shared detectors found nothing in (method names, roles, ``api_key``...):
#: they recur in every event, so they are scanned once. Strings that held a secret are never kept.
_CLEAN: dict[str, None] = {}
_CLEAN_MAX = 8192
_CLEAN_MAX_LEN = 64


def _detect(out: Any, strings: list[str], shared: bool) -> Any:
    """Mask secrets in every string of ``out``, testing the joined text once before touching anything."""
    if not strings:
        return out
    blob = "\n".join(strings)
    hits = detectors.find(blob)
    external = _sanitizer_redactor() if shared else None
    rewrites = _shared_rewrites(external, strings) if external is not None else {}
    if not hits and not rewrites:
        return out

    def fix(text: str) -> str:
        text = rewrites.get(text, text)
        return detectors.redact_text(text, hits) if hits else text

    return _apply(out, fix)


def scrub(value: Any, shared: bool = True) -> Any:
    """JSON-safe copy of an argument value with sensitive keys and detected secrets masked."""
    strings: list[str] = []
    return _detect(jsonable(value, strings), strings, shared)


def redact_record(record: dict[str, Any], fields: tuple[str, ...], shared: bool = True) -> dict[str, Any]:
    """Redact an ``AuditEvent.as_dict()``: field rules on arguments, then secrets everywhere.

    Sensitive-key masking applies inside ``arguments`` only (the record's own
    ``session_id`` is not a secret); the detectors run over every string.
    ``shared`` also applies ``mcp_guard.sanitize.redact.redact_secrets`` when
    that module is installed (our built-in detectors always run).
    """
    args = record.get("arguments")
    if fields and isinstance(args, dict):
        record["arguments"] = mask_fields(args, fields)
    strings: list[str] = []
    out = {key: jsonable(value, strings, key == "arguments") for key, value in record.items()}
    cleaned = _detect(out, strings, shared)
    assert isinstance(cleaned, dict)
    return cleaned
