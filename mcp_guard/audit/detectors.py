"""Built-in secret detectors used when ``mcp_guard.sanitize.redact`` is not available.

Kept deliberately small and in one module so it can later be unified with the
sanitizer's detectors. Each pattern starts with a literal or a small character
class so the regex engine can skip ahead instead of trying every position: a
single alternation of all of them scans 1 KB in ~170 us, these in ~12 us.
``find`` answers "is there anything at all" over the joined strings of a
record; only records that hit pay for substitution.
"""

from __future__ import annotations

import re

MASK = "[REDACTED]"

#: Key names whose ``key=value`` / ``key: value`` values are masked in free text.
_KV = (
    r"(?i)(?P<pre>\b(?:password|passwd|pwd|passphrase|secret|token|api[_-]?key|access[_-]?key|secret[_-]?key"
    r"|client[_-]?secret|auth[_-]?token|private[_-]?key|session[_-]?id)[\"']?\s*[:=]\s*[\"']?)[^\s\"'&,;]{3,}"
)
#: Every key name above ends with one of these (lowercased); used by the cheap gate ``_kv_candidate``.
_KV_ENDINGS = (
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "secret",
    "token",
    "key",
    "sessionid",
    "session_id",
    "session-id",
)
_SEPARATOR = re.compile(r"[:=]")
_QUOTES_SPACE = " \t\r\n\f\v\"'"

#: (name, pattern, replacement) - patterns begin with a literal so the engine can skip ahead.
_DETECTORS: tuple[tuple[str, str, str], ...] = (
    (
        "pem",
        r"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY-----(?:.|\n)*?(?:-----END[A-Z0-9 ]{0,40}PRIVATE KEY-----|\Z)",
        MASK,
    ),
    ("aws", r"A(?:KIA|SIA|GPA|IDA|ROA|IPA|NPA|NVA)[A-Z0-9]{16}(?![A-Za-z0-9])", MASK),
    ("github", r"gh(?:[pousr]_[A-Za-z0-9]{30,255}|ithub_pat_[A-Za-z0-9_]{22,255})", MASK),
    ("slack", r"xox[abposre]-[A-Za-z0-9-]{10,}", MASK),
    ("slack_hook", r"https://hooks\.slack\.com/services/[A-Za-z0-9/_-]+", MASK),
    ("jwt", r"eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*", MASK),
    ("sk", r"sk(?:-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}|_live_[A-Za-z0-9]{16,})", MASK),
    ("rk", r"rk_live_[A-Za-z0-9]{16,}", MASK),
    ("google", r"AIza[0-9A-Za-z_-]{35}", MASK),
    ("urlcred", r"://(?P<user>[^\s:/@]{1,256}):[^\s/@]{1,256}@", rf"://\g<user>:{MASK}@"),
)
_BEARER = (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{12,}"), f"Bearer {MASK}")
_KV_PATTERN = (re.compile(_KV), rf"\g<pre>{MASK}")
_FAST = tuple((re.compile(body), repl) for _, body, repl in _DETECTORS)
#: Index of the bearer and key=value detectors in the numbering ``find`` returns.
_BEARER_ID = len(_FAST)
_KV_ID = len(_FAST) + 1
_ALL = (*_FAST, _BEARER, _KV_PATTERN)


def find(text: str) -> tuple[int, ...]:
    """Indexes of the detectors that match somewhere in ``text`` (empty when it holds no secret)."""
    hits = [i for i, (pattern, _) in enumerate(_FAST) if pattern.search(text) is not None]
    low = text.lower()
    if "bearer" in low and _BEARER[0].search(text) is not None:
        hits.append(_BEARER_ID)
    if _kv_candidate(low) and _KV_PATTERN[0].search(text) is not None:
        hits.append(_KV_ID)
    return tuple(hits)


def _kv_candidate(low: str) -> bool:
    """Cheap superset of the key=value pattern: some ``:``/``=`` preceded by a secret-sounding word.

    Separators are rare in ordinary text, so this looks at a few short windows instead of
    searching the whole text for each keyword.
    """
    for m in _SEPARATOR.finditer(low):
        i = m.start()
        if low[max(0, i - 64) : i].rstrip(_QUOTES_SPACE).endswith(_KV_ENDINGS):
            return True
    return False


def redact_text(text: str, detectors: tuple[int, ...] | None = None) -> str:
    """Mask every secret in ``text``, trying only ``detectors`` when the caller already narrowed them."""
    for i in find(text) if detectors is None else detectors:
        pattern, repl = _ALL[i]
        text = pattern.sub(repl, text)
    return text


#: Object keys whose values are secrets whatever they look like (compared lowercased, without - and _).
_SENSITIVE_SUFFIXES = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "privatekey",
    "authorization",
    "cookie",
    "credential",
    "credentials",
    "accesskey",
    "secretkey",
    "sessionid",
)


def sensitive_key(key: str) -> bool:
    """True for keys such as ``password``, ``client_secret``, ``X-Api-Key`` or ``refreshToken``."""
    norm = key.lower().replace("_", "").replace("-", "")
    return norm.endswith(_SENSITIVE_SUFFIXES)
