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
from typing import TYPE_CHECKING, Any

import re2

from ..errors import ConfigError
from . import detectors
from .detectors import MASK

if TYPE_CHECKING:
    pass

#: One step of a compiled path: a key name, ``*`` (any key), or ``[*]`` / ``[N]`` for list items.
Step = tuple[str, str | int | None]
_TOKEN = re.compile(
    r"""\s*(?:\.?\s*(?P<name>[^.\[\]"'\s]+)|\[\s*(?P<index>\*|\d+)\s*\]|\[\s*(?P<q>["'])(?P<quoted>.*?)(?P=q)\s*\])"""
)

_MAX_DEPTH = 64
#: Containers nested deeper than this are shown as ``"[TOO DEEP]"`` (approvers are told so).
MAX_DEPTH = _MAX_DEPTH


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


# -- fast path ---------------------------------------------------------------------------------------
#
# Most events hold no secret. For those, the whole event is encoded once and one set of cheap
# tests over that text decides that no rule above could change anything; the record is then
# stored as encoded, without the per-string walk. The tests form a *superset* of every rule:
# each pattern of ``detectors`` and of the shared ``sanitize.redact`` module, and the
# sensitive-key rule, reduced to a necessary condition written against the JSON encoding of a
# string (``ensure_ascii``: quotes and backslashes escaped, whitespace, controls and every
# non-ASCII character as escapes). Whenever a test fires the event takes the full path above,
# so a false alarm only costs time. ``tests/test_audit_fastpath.py`` checks the superset
# property with generated strings and that both paths store the same bytes.

#: Encoded JSON whitespace: a space, ``\t \n \r \f``, or a ``\uXXXX`` escape.
_WS = r"(?: |\\[tnrf]|\\u[0-9a-f]{4})"
#: Provider formats with a fixed shape, one regex per leading literal (``-``, ``_``, ``A``): the
#: engine finds a literal prefix quickly, while a set of first characters is checked slowly at
#: every position. The part before the literal is checked by a look-behind.
_DASHED = re.compile(
    r"-(?:----BEGIN|(?:(?<=glpat-)|(?<=gldt-)|(?<=glrt-)|(?<=glptt-)|(?<=glft-)|(?<=glsoat-)"
    r"|(?<=glcbt-)|(?<=glimt-)|(?<=glagent-)|(?<=sk-)|(?<=xox[abposre]-))[A-Za-z0-9_-]{10})"
)
_UNDERSCORED = re.compile(
    r"_(?:(?<=gh[pousr]_)[A-Za-z0-9]{30}|(?<=github_)pat_[A-Za-z0-9_]{22}"
    r"|(?<=[sr]k_)live_[A-Za-z0-9]{16}|(?<=npm_)[A-Za-z0-9]{36})"
)
_CLOUD = re.compile(r"A(?:(?:KIA|SIA|BIA|CCA|GPA|IDA|ROA|IPA|NPA|NVA)[A-Z0-9]{16}|Iza[0-9A-Za-z_-]{35})")
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.eyJ")
#: ``scheme://user:password@``; user and password are runs of encoded characters of one string.
_URLCRED = re.compile(r'://(?:[^\s:/@"\\]|\\.)+:(?:[^\s/@"\\]|\\.)+@')
#: Over the lowercased text: ``bearer``/``basic`` and whitespace (the token's length is not checked).
_BEARER = re.compile(r"(?:bearer|basic)" + _WS)
#: Fixed prefixes of the shared module's provider tokens, webhook secrets and signed URLs.
_PROVIDER_HINTS = (
    "whsec_", "hf_", "pypi-AgE", "SG.", "shp", "dop_v1_", "hvs.", "sq0", "PMAK-", "lin_api_", "dapi",
    ":AA", "AGE-SECRET-KEY-1", "ya29.", "glc_", "xapp-",
)  # fmt: skip
_HEX_KEY = re.compile(r"(?:AC|SK|key-)[a-f0-9]{32}")
_SIGNED = re.compile(r"(?:sig|Signature)=")
#: The four non-ASCII characters case-insensitive patterns match as ASCII letters (K, s, i).
_FOLDS = re.compile(r"\\u(?:013[01]|017f|212a)")
#: ``:`` that is not the separator after an object key (``":`` with an unescaped quote).
_COLON = re.compile(r':(?<![^\\]":)')
_EQUALS = re.compile("=")
#: Read backwards from a separator (lowercased, reversed): whitespace and an optional quote...
_SEP_PAD = re.compile(r"(?: |[tnrf]\\|[0-9a-f]{4}u\\)*(?:\"\\|')?")
#: ...then, reversed, a secret-sounding word (the key=value, password-parameter and
#: generic-secret rules, plural ``s`` included).
_KEYWORD = re.compile(
    r"s?(?:drowssap|dwssap|esarhpssap|ssap|dwp|terces|nekot|laitnederc"
    r"|yek[_-]?(?:ipa|ssecca|terces|etavirp|htua)|di[_-]?noisses)"
)
#: The shared detectors' passwords in prose ("my password is ...", "senha é ...", "root / ...",
#: ``sanitize/credentials.py``): a stem of each password word, and the words before ``/``.
#: Canonical JSON spells a non-ASCII letter as its escape: "парол" is tested by its first three
#: letters, either case.
_PROSE_SOURCE = (
    # the word, then what may follow it there: a space, an escape (\t, \u2192...), ``:``, ``=``,
    # ``->`` (a key's closing quote may not: the sensitive-key mask takes those)
    r"(?:passw|pwd|passcode|kennwort|contrase|mot de passe|senha|wachtwoord)[a-z]*(?: |\\|[:=-])"
    r"|\\u04(?:1f|3f)\\u04(?:10|30)\\u04(?:20|40)"
    r"|(?:admin|root|login|user)(?: |\\[tnrf]|\\u[0-9a-f]{4})*/"
)
_PROSE = re.compile(_PROSE_SOURCE)
_WINDOW = 96
_PAD_MAX = 64
#: Over the *reversed* arguments text, both starting at a key's ``":``: a key that was a bool or
#: None (spelled ``true``/``false``/``null``; the walk would spell it ``True``/``None``), or a key
#: ending (``_``/``-`` anywhere) in a sensitive suffix whose value is neither ``null`` nor the mask.
_ARG_KEYS = re.compile(
    r':(?:"(?:eurt|eslaf|llun)"'
    r'|(?<![,}]llun:)(?<![,}]"\]DETCADER\[":)"[_-]*(?i:'
    + "|".join("[_-]*".join(reversed(s)) for s in detectors._SENSITIVE_SUFFIXES)
    + "))"
)


def _keyword_before(low: str, pattern: re.Pattern[str]) -> bool:
    for m in pattern.finditer(low):
        end = m.start()
        window = low[max(0, end - _WINDOW) : end][::-1]
        pad = _SEP_PAD.match(window)
        stop = pad.end() if pad is not None else 0
        if stop > _PAD_MAX or _KEYWORD.match(window, stop) is not None:
            return True
    return False


#: One linear pass ahead of the tests below, so that an ordinary event costs one scan instead of
#: eight: a looser union of their necessary conditions (case-insensitive, no look-behinds), so
#: whatever one of them finds, this finds too. Keywords count only where a separator follows, as
#: the keyword rule requires; a long run of padding counts anywhere (that rule fires on it).
_ANY_OPTIONS = re2.Options()
_ANY_OPTIONS.case_sensitive = False
_ANY_OPTIONS.never_capture = True
_ANY_SOURCE = "|".join(
    (
        "-----BEGIN",
        "gl(?:pat|dt|rt|ptt|ft|soat|cbt|imt|agent)-",
        "sk-",
        "xox",
        "gh[pousr]_",
        "github_pat_",
        "k_live_",
        "npm_",
        "A(?:KIA|SIA|BIA|CCA|GPA|IDA|ROA|IPA|NPA|NVA|Iza)",
        "eyJ",
        "://",
        r"\\u(?:013[01]|017f|212a)",
        "(?:bearer|basic)" + _WS,
        "whsec_|discord|hf_|pypi-age|sg\\.|shp|dop_v1_|hvs\\.|sq0|pmak-|lin_api_|dapi|:aa|age-secret-key-1",
        "ya29\\.|glc_|xapp-|(?:ac|sk|key-)[a-f0-9]{32}|(?:sig|signature)=|accountkey=|sharedaccesskey=",
        "login(?s:.*)password",
        _PROSE_SOURCE,
        "(?:pass(?:word|wd|phrase)?|pwd|secret|token|credential|(?:api|access|secret|private|auth)[_-]?key|session[_-]?id)"
        r"""s?(?:\\"|')?""" + _WS + "*[:=]",
        _WS + "{10}",
    )
)
_ANY = re2._re2.RE2(_ANY_SOURCE.encode(), _ANY_OPTIONS)
_any_match = _ANY.Match  # RE2 itself: the ``re2`` module's Python wrapper costs more than the scan
_UNANCHORED = re2._re2.RE2.Anchor.UNANCHORED


def might_need_redaction(text: str) -> bool:
    """False only when no detector (built-in or shared) could change any string encoded in ``text``.

    ``text`` is canonical JSON (see ``canonical``): each test is a necessary condition of some
    detector, written against how ``ensure_ascii`` encodes the characters that detector reads.
    """
    data = text.encode()
    return _any_match(_UNANCHORED, data, 0, len(data))[0][0] >= 0 and _detailed(text)


def might_need_redaction_ascii(data: bytes) -> bool:
    """``might_need_redaction`` of canonical JSON already encoded (ASCII bytes): no copy to scan."""
    return _any_match(_UNANCHORED, data, 0, len(data))[0][0] >= 0 and _detailed(data.decode("ascii"))


def _detailed(text: str) -> bool:
    if _DASHED.search(text) is not None or _UNDERSCORED.search(text) is not None:
        return True
    if _CLOUD.search(text) is not None:
        return True
    if "eyJ" in text and _JWT.search(text) is not None:
        return True
    if "://" in text and ("hooks.slack.com/" in text or "@" in text or "discord" in text):
        return True  # a URL with a user part (a password or a bare key) or a webhook
    if any(hint in text for hint in _PROVIDER_HINTS) or _HEX_KEY.search(text) is not None:
        return True
    if "=" in text and _SIGNED.search(text) is not None:
        return True
    if "\\" in text and _FOLDS.search(text) is not None:
        return True
    low = text.lower()
    if ("bearer" in low or "basic" in low) and _BEARER.search(low) is not None:
        return True
    if "accountkey=" in low or "sharedaccesskey=" in low:
        return True
    if _PROSE.search(low) is not None:
        return True  # a password in a sentence; the shared detector reads the words around it
    login = low.find("login")
    if login >= 0 and low.find("password", login) >= 0:
        return True  # a .netrc line: "login NAME password VALUE"
    if _keyword_before(low, _COLON):
        return True
    return "=" in low and _keyword_before(low, _EQUALS)


def has_sensitive_key(args_text: str) -> bool:
    """True when the encoded arguments hold a non-null value under a key like ``password``
    (or a key the walk would spell differently)."""
    return ":" in args_text and _ARG_KEYS.search(args_text[::-1]) is not None


def _not_starting(literal: str) -> str:
    """RE2 for a position where ``literal`` does not begin (RE2 has no look-ahead)."""
    out = ""
    for c in reversed(literal):
        esc = re.escape(c)
        out = f"[^{esc}]" if not out else f"(?:[^{esc}]|{esc}{out})"
    return out


#: ``has_sensitive_key`` read forwards in one RE2 pass over the arguments' JSON bytes (encoded
#: ``ensure_ascii`` or as raw UTF-8: a multi-byte character never holds ``"``, ``:`` or a letter).
#: A key ends at ``":`` whose quote is not escaped, so the suffix letters right before it are the
#: key's own; its value is neither ``null`` (the only JSON value starting with ``n``) nor the mask.
_ARG_KEYS_SOURCE = (
    r'(?-i:"(?:true|false|null)":)|(?:'
    + "|".join("[_-]*".join(re.escape(c) for c in s) for s in detectors._SENSITIVE_SUFFIXES)
    + r')[_-]*":(?:[^n"]|"'
    + _not_starting(MASK + '"')
    + ")"
)
_ARG_KEYS_FORWARD = re2._re2.RE2(_ARG_KEYS_SOURCE.encode(), _ANY_OPTIONS)
_keys_match = _ARG_KEYS_FORWARD.Match
#: Both of the above in one pass, over the arguments and what follows them: most events match
#: neither, and only a match needs the two scans apart.
_EITHER = re2._re2.RE2(f"(?:{_ANY_SOURCE})|(?:{_ARG_KEYS_SOURCE})".encode(), _ANY_OPTIONS)
_either_match = _EITHER.Match


def has_sensitive_key_bytes(args: bytes) -> bool:
    """``has_sensitive_key`` over the arguments' JSON bytes (escaped or raw UTF-8): one forward pass."""
    return bool(_keys_match(_UNANCHORED, args, 0, len(args))[0][0] >= 0)
