"""The flusher's fast path: one encoding of a clean event, no per-string redaction walk.

``fast_record`` builds the record ``redact.redact_record`` would store, applying field rules and the
sensitive-key rule on copies, encodes it once (``canonical.encode_fast``) and asks the prefilter
(``redact.might_need_redaction``) whether any detector could change it; None sends the event down
the full path. ``tests/test_audit_fastpath.py`` checks that both paths store the same bytes.

Most events hold only plain values in their fixed fields (checked by type, in C loops); with
``orjson`` installed those are encoded in one call, the arguments embedded as a pre-checked
``orjson.Fragment``, and the prefilter and sensitive-key tests run over the bytes as they come.
Before any of that, ``lane.lane_record`` serves the typical event from per-value caches of its
repeated fields; ``_one_pass`` and the general path below decide what it declines.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from . import canonical
from .canonical import encode_fast
from .chain import ChainedRecord
from .detectors import MASK
from .lane import GENERAL, lane_record, mask_keys, middle_fields
from .redact import (
    _MAX_DEPTH,
    Step,
    compile_paths,
    has_sensitive_key,
    has_sensitive_key_bytes,
    might_need_redaction,
    might_need_redaction_ascii,
)

try:  # the ``fast`` extra; without it the general path below encodes with the standard encoder
    import orjson as _orjson
except ImportError:  # pragma: no cover
    _orjson = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from ..model import AuditEvent, ResultSummary

_PLAIN = frozenset((str, bool, int, type(None)))
_STR = frozenset((str,))
#: Value types of a flat principal or a plain event field (floats are checked one by one).
_PLAIN_OR_LIST = frozenset((str, bool, int, type(None), list))
_PLAIN_OR_FLOAT = frozenset((str, bool, int, type(None), float))


def _flat(principal: Mapping[str, Any]) -> dict[str, Any] | None:
    """``principal`` as a dict when it is flat (string keys; plain scalars or lists of strings),
    tuples as lists (the encoding is the same), else None."""
    out = dict(principal)
    if _STR.issuperset(map(type, out)):  # the common shapes, checked in C loops
        types = set(map(type, out.values()))
        if types <= _PLAIN:
            return out
        lists = [v for v in out.values() if type(v) is list]
        if types <= _PLAIN_OR_LIST and all(_STR.issuperset(map(type, v)) for v in lists):
            return out
    for k, v in out.items():
        if type(k) is not str:
            return None
        t = type(v)
        if t is tuple or t is list:
            if not _STR.issuperset(map(type, v)):
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


def _head(event: AuditEvent, principal: Any) -> dict[str, Any]:
    """The record's fixed fields, in the stored order (both encoders start with them)."""
    head = {
        "id": event.id,
        "time": event.time,
        "event": event.event,
        "session_id": event.session_id,
        "request_id": event.request_id,
    }
    head.update(middle_fields(event, principal))
    return head


def _tail(event: AuditEvent, res: Any, findings: list[Any]) -> dict[str, Any]:
    """The record's fields after the arguments, in the stored order (both encoders end with them)."""
    return {
        "result": None
        if res is None
        else {
            "size": res.size,
            "is_error": res.is_error,
            "items": res.items,
            "withheld": res.withheld,
            "hidden": res.hidden,
            "findings": findings,
        },
        "error_code": event.error_code,
        "latency_ms": event.latency_ms,
        "outcome": event.outcome,
    }


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
    if args is not None and (type(args) is dict or isinstance(args, Mapping)):
        if fields:
            args = masked_copy(args, fields)
        elif type(args) is not dict:
            args = dict(args.items())
    if canonical.FAST and _orjson is not None:
        laned = lane_record(event, args)
        if laned is not GENERAL:
            return laned
    res = event.result
    principal = event.principal
    if principal is not None:
        principal = _flat(principal)
        if principal is None:
            return None
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
    if not plain and not _PLAIN_OR_FLOAT.issuperset(map(type, (
        event.id, event.event, event.session_id, event.request_id, event.source_ip, event.transport,
        event.client_name, event.client_version, event.method, event.direction, event.server,
        event.kind, event.target, event.decision, event.rule, event.shadow, event.error_code,
        event.outcome, event.time, event.latency_ms, *event.reasons,
    ))):  # fmt: skip
        return None  # a subclass (a ``str`` enum): the walk spells it with ``str()``, encoders by value
    if plain and canonical.FAST and _orjson is not None:
        done = _one_pass(event, args, principal, res)
        if done is not _GENERAL:
            return done
    record = _head(event, principal)
    tail = _tail(event, res, [f.as_dict() for f in res.findings] if res is not None else [])
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
        args = mask_keys(args)
        text = f'{head_text},"arguments":{encode_fast(args)},{tail_text}'
    record["arguments"] = args
    record.update(tail)
    return record, text


#: ``_one_pass``'s answer when the arguments need the general path's encoder checks.
_GENERAL: Any = object()
_NOT_ASCII = canonical._NOT_ASCII


def _ascii(out: bytes) -> bytes:
    """orjson's UTF-8 output with the escapes of ``ensure_ascii`` (see ``canonical.encode_fast``)."""
    if out.isascii() and b"\x7f" not in out:
        return out
    return _NOT_ASCII.sub(canonical._escape, out.decode()).encode()


def _one_pass(
    event: AuditEvent, args: Any, principal: dict[str, Any] | None, res: ResultSummary | None
) -> tuple[dict[str, Any], str] | None:
    """``fast_record`` for an event whose fixed fields are plain, in one orjson call.

    The arguments are encoded and checked first (float spellings, a round trip that catches NaN,
    enums, UUIDs and the like), then embedded as a ``Fragment``, so the rest of the record needs
    no check. Returns ``_GENERAL`` when the arguments need the general path's encoder.
    """
    dumps = _orjson.dumps
    options = canonical._OPTIONS
    try:
        encoded = dumps(args, canonical._not_json, options)
    except (TypeError, ValueError):
        return _GENERAL  # type: ignore[no-any-return]
    if args is not None and (canonical._odd_float(encoded) or _orjson.loads(encoded) != args):
        return _GENERAL  # type: ignore[no-any-return]
    if encoded.count(b"{") + encoded.count(b"[") > _MAX_DEPTH:
        return None  # nesting the walk would cut
    record = _head(event, principal)
    record["arguments"] = _orjson.Fragment(encoded)
    record |= _tail(event, res, [])
    try:
        data = _ascii(dumps(record, None, options))
    except (TypeError, ValueError):  # pragma: no cover - plain fields always encode
        return _GENERAL  # type: ignore[no-any-return]
    if might_need_redaction_ascii(data):
        return None
    if has_sensitive_key_bytes(encoded):
        if b'"true":' in encoded or b'"false":' in encoded or b'"null":' in encoded:
            return None  # perhaps a bool or None key, which the walk spells "True" / "None"
        # Masking only removes strings (and adds the mask, which no detector matches), so the
        # prefilter's answer still holds for the result.
        args = mask_keys(args)
        record["arguments"] = _orjson.Fragment(dumps(args, None, options))
        data = _ascii(dumps(record, None, options))
    record["arguments"] = args
    return ChainedRecord(record), data.decode("ascii")
