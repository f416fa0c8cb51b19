"""The flusher's fast path: one encoding of a clean event, no per-string redaction walk.

``fast_record`` builds the record ``redact.redact_record`` would store, applying field rules and the
sensitive-key rule on copies, encodes it once (``canonical.encode_fast``) and asks the prefilter
(``redact.might_need_redaction``) whether any detector could change it; None sends the event down
the full path. ``tests/test_audit_fastpath.py`` checks that both paths store the same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from .canonical import encode_fast
from .detectors import MASK, sensitive_key
from .redact import _MAX_DEPTH, Step, compile_paths, has_sensitive_key, might_need_redaction

if TYPE_CHECKING:
    from ..model import AuditEvent

_PLAIN = frozenset((str, bool, int, type(None)))
_STR = frozenset((str,))
#: Value types of a flat principal or a plain event field (floats are checked one by one).
_PLAIN_OR_LIST = frozenset((str, bool, int, type(None), list))
_PLAIN_OR_FLOAT = frozenset((str, bool, int, type(None), float))


def _flat(principal: Mapping[str, Any]) -> dict[str, Any] | None:
    """``principal`` as a dict when it is flat (string keys; plain scalars or lists of strings),
    tuples as lists (the encoding is the same), else None."""
    out = dict(principal)
    for k, v in out.items():
        if type(k) is not str:
            return None
        t = type(v)
        if t is tuple or t is list:
            if not all(type(x) is str for x in v):
                return None
            if t is tuple:
                out[k] = list(v)
        elif t not in _PLAIN and not (t is float and math.isfinite(v)):
            return None
    return out


def _small(value: Any) -> bool:
    """A float the fast encoder could spell unlike ``repr`` (or NaN, infinite): not plain."""
    return type(value) is float and not (value == 0.0 or 1e-4 <= abs(value) < math.inf)


def _masked(value: Any, steps: tuple[Step, ...], i: int) -> Any:
    """``_mask_path`` without touching ``value``: containers on the path are copied as ``_plain`` would."""
    if i == len(steps):
        return MASK
    kind, arg = steps[i]
    last = i + 1 == len(steps)
    if kind in ("key", "any") and (type(value) is dict or isinstance(value, Mapping)):
        out = dict(value) if type(value) is dict else dict(value.items())
        if not _STR.issuperset(map(type, out)):
            out = {k if type(k) is str else str(k): v for k, v in value.items()}
        if kind == "key":
            if arg in out:
                out[arg] = MASK if last else _masked(out[arg], steps, i + 1)
        else:
            for k in out:
                out[k] = MASK if last else _masked(out[k], steps, i + 1)
        return out
    if kind in ("items", "item", "any") and (type(value) is list or isinstance(value, (list, tuple))):
        items = list(value)
        if kind == "item":
            if isinstance(arg, int) and -len(items) <= arg < len(items):
                items[arg] = MASK if last else _masked(items[arg], steps, i + 1)
        elif last:
            items = [MASK] * len(items)
        else:
            for j in range(len(items)):
                items[j] = _masked(items[j], steps, i + 1)
        return items
    return value


def masked_copy(arguments: Mapping[str, Any], paths: tuple[str, ...]) -> dict[str, Any]:
    """What ``mask_fields`` makes of a plain copy of ``arguments``, sharing the untouched values."""
    try:
        compiled = compile_paths(paths)
    except ConfigError:
        return {"[REDACTED]": "unparsable redact path; all arguments masked"}
    out: Any = arguments
    for steps in compiled:
        out = _masked(out, steps, 0)
    if type(out) is not dict:  # no path reached into the top level
        out = {k if type(k) is str else str(k): v for k, v in arguments.items()}
    return out  # type: ignore[no-any-return]


def _mask_keys(value: Any) -> Any:
    """Copy with the sensitive-key rule of ``jsonable`` applied (nothing else converted)."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            key = k if type(k) is str else str(k)
            out[key] = MASK if v is not None and sensitive_key(key) else _mask_keys(v)
        return out
    if isinstance(value, (list, tuple)):
        return [_mask_keys(v) for v in value]
    return value


def fast_record(event: AuditEvent, fields: tuple[str, ...]) -> tuple[dict[str, Any], str] | None:
    """``(record, canonical text)`` equal to ``redact_record(event.as_dict(), fields)`` and its
    encoding, when the cheap tests show no detector can fire; None when the full path must run.

    Field rules and the sensitive-key rule are applied here (on copies); only events where a
    detector might match, or that hold values the walk would convert, go the slow way (as do
    the rare events of calls that needed an approval: their record has one more field).
    """
    if event.approval is not None or event.confirmation is not None or event.flow is not None:
        return None
    args: Any = event.arguments
    if args is not None and isinstance(args, Mapping):
        if fields:
            args = masked_copy(args, fields)
        elif type(args) is not dict:
            args = dict(args.items())
    res = event.result
    principal = event.principal
    if principal is not None:
        principal = _flat(principal)
        if principal is None:
            return None
    record: dict[str, Any] = {
        "id": event.id,
        "time": event.time,
        "event": event.event,
        "session_id": event.session_id,
        "request_id": event.request_id,
        "principal": principal,
        "source_ip": event.source_ip,
        "transport": event.transport,
        "client_name": event.client_name,
        "client_version": event.client_version,
        "method": event.method,
        "direction": event.direction,
        "server": event.server,
        "kind": event.kind,
        "target": event.target,
        "decision": event.decision,
        "rule": event.rule,
        "reasons": list(event.reasons),
        "shadow": event.shadow,
    }
    tail: dict[str, Any] = {
        "result": None
        if res is None
        else {
            "size": res.size,
            "is_error": res.is_error,
            "items": res.items,
            "withheld": res.withheld,
            "hidden": res.hidden,
            "findings": [f.as_dict() for f in res.findings],
        },
        "error_code": event.error_code,
        "latency_ms": event.latency_ms,
        "outcome": event.outcome,
    }
    # Values of exact plain types need no round-trip check in the fast encoder: checked with
    # ``issuperset(map(type, ...))`` (a loop in C); only the float fields are looked at one by one.
    plain = (
        (res is None or not res.findings)
        and (principal is None or _PLAIN_OR_LIST.issuperset(map(type, principal.values())))
        and _PLAIN.issuperset(map(type, event.reasons))
        and _PLAIN_OR_FLOAT.issuperset(map(type, (event.time, event.latency_ms)))
        and not (_small(event.time) or _small(event.latency_ms))
        and _PLAIN.issuperset(map(type, (
            event.id, event.event, event.session_id, event.request_id, event.source_ip,
            event.transport, event.client_name, event.client_version, event.method, event.direction,
            event.server, event.kind, event.target, event.decision, event.rule, event.shadow,
            event.error_code, event.outcome,
            *((res.size, res.is_error, res.items, res.withheld, res.hidden) if res is not None else ()),
        )))
    )  # fmt: skip
    try:
        head_text, tail_text = encode_fast(record, plain)[:-1], encode_fast(tail, plain)[1:]
        args_text = encode_fast(args)
    except (TypeError, ValueError, RecursionError):
        return None  # values the walk turns into placeholders
    text = f'{head_text},"arguments":{args_text},{tail_text}'
    # Nesting the walk would cut (principal is flat and result has a fixed shape).
    if args_text.count("{") + args_text.count("[") > _MAX_DEPTH or might_need_redaction(text):
        return None
    if has_sensitive_key(args_text):
        if '"true":' in args_text or '"false":' in args_text or '"null":' in args_text:
            return None  # perhaps a bool or None key, which the walk spells "True" / "None"
        # Masking only removes strings (and adds the mask, which no detector matches), so the
        # test above still holds for the result.
        args = _mask_keys(args)
        text = f'{head_text},"arguments":{encode_fast(args)},{tail_text}'
    record["arguments"] = args
    record.update(tail)
    return record, text
