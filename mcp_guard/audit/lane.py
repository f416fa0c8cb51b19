"""The flusher's cheapest lane: work per *distinct* value, not per event.

Most of an audit record repeats from one event to the next: the principal, the client, the
server, tool, decision, rule and reasons. ``lane_record`` keeps, per distinct combination of those
fields, their stored bytes (already ``ensure_ascii``-escaped) and the prefilter's verdict on them,
so a typical event only encodes, checks and scans what varies: its id, time, request, arguments
and result. The stored bytes are exactly those of ``fastrecord._one_pass`` (and so of the full
redactor); ``tests/test_audit_lane.py`` compares them over generated events.

The cached fields enter the record as one ``orjson.Fragment`` standing for the members from
``principal`` to ``shadow``: orjson copies a fragment's bytes verbatim, so the record is still one
``dumps`` call. A cache entry is only made from values of exact plain types; a later event reuses
it when its fields are *equal* and of those exact types (``"allow"`` equals a ``str`` subclass
member, so equality alone would not do).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from . import canonical
from .canonical import _OPTIONS, _not_json, _odd_float
from .chain import ChainedRecord
from .detectors import MASK, sensitive_key
from .redact import (
    _MAX_DEPTH,
    _UNANCHORED,
    _any_match,
    _detailed,
    _either_match,
    _keys_match,
    might_need_redaction_ascii,
)

try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - the lane is only used when orjson is installed
    _orjson = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from ..model import AuditEvent

#: ``lane_record``'s answer when the event needs ``fastrecord``'s general checks.
GENERAL: Any = object()

_NONE = type(None)
_STR = frozenset((str,))
_PLAIN = frozenset((str, bool, int, _NONE))
_PLAIN_OR_LIST = frozenset((str, bool, int, _NONE, list))
#: Exact types of the cache key's members: principal bytes, plain scalars, the reasons tuple. No
#: two of these compare equal across types (``int`` is left out: ``1 == True``).
_KEY_TYPES = frozenset((bytes, str, bool, _NONE, tuple))
#: Exact types of the per-event scalars (floats are checked apart).
_VAR_TYPES = frozenset((str, int, bool, _NONE, float))
_INF = float("inf")
_PRINCIPAL = b',"principal":'
_ARGS_GAP = len(b',"arguments":')
#: Bounded: a flood of distinct principals or reasons costs a rebuild, never unbounded memory.
_MAX_ENTRIES = 4096


class _Mid:
    """The cached members ``principal`` .. ``shadow`` of one combination."""

    __slots__ = ("fields", "fragment", "principal", "size")

    def __init__(self, fields: dict[str, Any], data: bytes) -> None:
        self.fields = fields
        self.principal = fields["principal"]
        self.fragment = _orjson.Fragment(data)
        self.size = len(data)


#: key -> the members, or None when they may hold a secret (such events take the full path).
_mids: dict[tuple[Any, ...], _Mid | None] = {}


def _plain_principal(principal: dict[str, Any]) -> bool:
    """Whether a principal is flat and plain: string keys, plain scalars or lists of strings."""
    values = principal.values()
    if not _PLAIN.issuperset(map(type, values)):
        if not _PLAIN_OR_LIST.issuperset(map(type, values)):
            return False
        for v in values:
            if type(v) is list and not _STR.issuperset(map(type, v)):
                return False
    return _STR.issuperset(map(type, principal))


def mask_keys(value: Any) -> Any:
    """Copy with the sensitive-key rule of ``jsonable`` applied (nothing else converted)."""
    t = type(value)
    if t is str or t is int or t is bool or t is float or value is None:
        return value  # exact types first: ABC checks cost more than the rest of the walk
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            key = k if type(k) is str else str(k)
            out[key] = MASK if v is not None and sensitive_key(key) else mask_keys(v)
        return out
    if isinstance(value, (list, tuple)):
        return [mask_keys(v) for v in value]
    return value


def _ascii(out: bytes) -> bytes:
    """orjson's UTF-8 output with the escapes of ``ensure_ascii`` (see ``canonical.encode_fast``)."""
    if out.isascii() and b"\x7f" not in out:
        return out
    return canonical._NOT_ASCII.sub(canonical._escape, out.decode()).encode()


def middle_fields(event: AuditEvent, principal: Any) -> dict[str, Any]:
    """The record's fields from the principal to ``shadow``, in the stored order.

    The fields that repeat across events; every encoder of a record builds them here, so the
    stored order cannot drift between them.
    """
    return {
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


def _build(event: AuditEvent, principal: dict[str, Any] | None, key: tuple[Any, ...]) -> Any:
    """The cache entry for ``key`` (None: the members could hold a secret; ``GENERAL``: they are
    not plain, and nothing is cached)."""
    if principal is not None and not _plain_principal(principal):
        return GENERAL
    fields = middle_fields(event, None if principal is None else dict(principal))
    # The members as they appear inside the record: its encoding without the braces.
    data = _ascii(_orjson.dumps(fields, None, _OPTIONS))
    entry = None if might_need_redaction_ascii(data) else _Mid(fields, data[len(b'{"principal":') : -1])
    if len(_mids) >= _MAX_ENTRIES:
        _mids.clear()
    _mids[key] = entry
    return entry


def lane_record(event: AuditEvent, args: Any) -> tuple[ChainedRecord, str] | None:
    """``(record, canonical text)`` as ``fastrecord._one_pass`` makes it, None for the full path,
    or ``GENERAL`` when ``fastrecord``'s general checks must decide.

    ``args`` are the arguments after field rules (a plain dict, or None). Written flat, with few
    calls: every step here runs once per audit event.
    """
    reasons = event.reasons
    principal = event.principal
    dumps = _orjson.dumps
    try:
        # The principal's bytes stand for it in the key; on a hit it must also *equal* the
        # entry's (an enum member or a UUID encodes like a string but is unequal to it), and
        # subclasses (a ``str`` enum) make orjson refuse (``OPT_PASSTHROUGH_SUBCLASS``).
        if principal is not None and type(principal) is not dict:
            principal = dict(principal)
        pkey = None if principal is None else dumps(principal, _not_json, _OPTIONS)
        key = (
            pkey, event.source_ip, event.transport, event.client_name,
            event.client_version, event.method, event.direction, event.server, event.kind,
            event.target, event.decision, event.rule, reasons, event.shadow,
        )  # fmt: skip
        mid = _mids.get(key, GENERAL)
    except (TypeError, ValueError):  # not plain, or unhashable
        return GENERAL  # type: ignore[no-any-return]
    ident, when, kind = event.id, event.time, event.event
    session, request = event.session_id, event.request_id
    code, latency, outcome, res = event.error_code, event.latency_ms, event.outcome, event.result
    if not (
        _KEY_TYPES.issuperset(map(type, key))
        and type(reasons) is tuple
        and _STR.issuperset(map(type, reasons))
        and _VAR_TYPES.issuperset(map(type, (ident, when, kind, session, request, code, latency, outcome)))
    ):
        return GENERAL  # type: ignore[no-any-return]
    # A float the fast encoder could spell unlike ``repr`` (below 1e-4, or not finite).
    if (type(when) is float and not (when == 0.0 or 1e-4 <= abs(when) < _INF)) or (
        type(latency) is float and not (latency == 0.0 or 1e-4 <= abs(latency) < _INF)
    ):
        return GENERAL  # type: ignore[no-any-return]
    result: dict[str, Any] | None
    if res is None:
        result = None
    else:
        result = {
            "size": res.size,
            "is_error": res.is_error,
            "items": res.items,
            "withheld": res.withheld,
            "hidden": res.hidden,
        }
        if res.findings or not _PLAIN.issuperset(map(type, result.values())):
            return GENERAL  # type: ignore[no-any-return]
        result["findings"] = []
    if mid is GENERAL:
        mid = _build(event, principal, key)
        if mid is GENERAL:
            return GENERAL  # type: ignore[no-any-return]
    if mid is None:
        return None
    if mid.principal != principal:
        return GENERAL  # type: ignore[no-any-return]
    try:
        encoded = dumps(args, _not_json, _OPTIONS)
    except (TypeError, ValueError):
        return GENERAL  # type: ignore[no-any-return]
    if args is not None and (_odd_float(encoded) or _orjson.loads(encoded) != args):
        return GENERAL  # type: ignore[no-any-return]
    if encoded.count(b"{") + encoded.count(b"[") > _MAX_DEPTH:
        return None  # nesting the walk would cut
    if not encoded.isascii() or b"\x7f" in encoded:
        encoded = _ascii(encoded)
    record = {
        "id": ident, "time": when, "event": kind, "session_id": session, "request_id": request,
        "principal": mid.fragment, "arguments": _orjson.Fragment(encoded), "result": result,
        "error_code": code, "latency_ms": latency, "outcome": outcome,
    }  # fmt: skip
    try:
        data = dumps(record, None, _OPTIONS)
    except (TypeError, ValueError):  # an integer beyond 64 bits
        return GENERAL  # type: ignore[no-any-return]
    if not data.isascii() or b"\x7f" in data:
        data = _ascii(data)
    # Scan what varies: the fields before the cached members, then the arguments and what follows
    # (for the prefilter and the sensitive-key test at once; only a hit needs them apart).
    head = data.find(_PRINCIPAL)
    start = head + len(_PRINCIPAL) + mid.size + _ARGS_GAP
    end = len(data)
    if _any_match(_UNANCHORED, data, 0, head)[0][0] >= 0 and _detailed(data[:head].decode("ascii")):
        return None
    if _either_match(_UNANCHORED, data, start, end)[0][0] >= 0:
        if _any_match(_UNANCHORED, data, start, end)[0][0] >= 0 and _detailed(data[start:].decode("ascii")):
            return None
        if _keys_match(_UNANCHORED, data, start, start + len(encoded))[0][0] >= 0:
            if b'"true":' in encoded or b'"false":' in encoded or b'"null":' in encoded:
                return None  # perhaps a bool or None key, which the walk spells "True" / "None"
            # Masking only removes strings (and adds the mask, which no detector matches), so the
            # prefilter's answer still holds for the result.
            args = mask_keys(args)
            record["arguments"] = _orjson.Fragment(_ascii(dumps(args, None, _OPTIONS)))
            data = _ascii(dumps(record, None, _OPTIONS))
    out = ChainedRecord(
        {
            "id": ident, "time": when, "event": kind, "session_id": session, "request_id": request,
            **mid.fields,
            # Copies of the cached containers: records never share them with the cache.
            "principal": None if principal is None else dict(principal),
            "reasons": list(reasons),
            "arguments": args, "result": result, "error_code": code, "latency_ms": latency,
            "outcome": outcome,
        }
    )  # fmt: skip
    return out, data.decode("ascii")
