"""Find and mask secrets in text and JSON values.

Used on tool results before they reach the model and on arguments before they
reach the audit trail. Patterns are anchored on formats with a fixed shape
(provider prefixes, PEM armour, JWT segments); the generic ``key=value`` rule
demands a secret-sounding key *and* a high-entropy value, and documented
placeholders (``EXAMPLE``, ``XXXX``, ``<token>``) are left alone.
"""

from __future__ import annotations

import base64
import math
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .credentials import credential_spans

_PATTERNS: tuple[tuple[str, re.Pattern[str], int], ...] = (
    (
        "private-key",
        re.compile(
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?(?:-----END "
            r"(?:[A-Z0-9]+ )*PRIVATE KEY"
            r"(?: BLOCK)?-----|$)"
        ),
        0,
    ),
    ("aws-access-key-id", re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|ANPA)[0-9A-Z]{16}\b"), 0),
    (
        "aws-secret-access-key",
        re.compile(
            r"(?i)aws_?secret_?(?:access_?)?key[\"']?\s*[:=]\s*[\"']?([A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])"
        ),
        1,
    ),
    ("github-token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{60,255})\b"), 0),
    ("gitlab-token", re.compile(r"\bgl(?:pat|dt|rt|ptt|ft|soat|cbt|imt|agent)-[A-Za-z0-9_\-]{20,}"), 0),
    ("slack-token", re.compile(r"\bxox[abposre]-[A-Za-z0-9-]{10,}"), 0),
    ("slack-webhook", re.compile(r"https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9/_-]{20,}"), 0),
    ("stripe-key", re.compile(r"\b(?:sk|rk)_live_[0-9a-zA-Z]{20,}"), 0),
    ("google-api-key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"), 0),
    ("openai-key", re.compile(r"\bsk-(?:proj-|ant-(?:api\d\d-)?)?[A-Za-z0-9_-]{32,}"), 0),
    ("npm-token", re.compile(r"\bnpm_[A-Za-z0-9]{36}\b"), 0),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}"), 0),
    (
        "connection-string-password",
        re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]{1,20}://[^\s:/@\"']{0,64}:([^\s@/\"']{3,128})@[\w.-]+"),
        1,
    ),
    # A key in a URL's user part with no password: Sentry DSNs, basic-auth tokens.
    ("url-credential", re.compile(r"\bhttps?://([A-Za-z0-9_-]{20,128})@[\w.-]+"), 1),
    ("webhook-secret", re.compile(r"\bwhsec_[A-Za-z0-9+/=]{20,}"), 0),
    ("discord-webhook", re.compile(r"https://(?:\w+\.)?discord(?:app)?\.com/api/webhooks/\d+/[\w-]{30,}"), 0),
    # Provider tokens with a fixed prefix and shape.
    (
        "provider-token",
        re.compile(
            r"\b(?:hf_[A-Za-z0-9]{30,}|pypi-AgE[A-Za-z0-9_-]{50,}|SG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}|"
            r"shp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}|dop_v1_[a-f0-9]{64}|hvs\.[A-Za-z0-9_-]{24,}|"
            r"sq0(?:atp|csp)-[A-Za-z0-9_-]{22,}|PMAK-[a-f0-9]{24}-[a-f0-9]{34}|lin_api_[A-Za-z0-9]{40}|"
            r"dapi[a-f0-9]{32}|\d{8,10}:AA[A-Za-z0-9_-]{33}|AGE-SECRET-KEY-1[A-Z0-9]{58}|(?:AC|SK)[a-f0-9]{32}|"
            r"key-[a-f0-9]{32}|ya29\.[0-9A-Za-z_-]{30,}|glc_[A-Za-z0-9+/]{32,}|xapp-[0-9]-[A-Za-z0-9-]{20,})\b"
        ),
        0,
    ),
    ("bearer-token", re.compile(r"(?i)\b(?:bearer|basic)\s+([A-Za-z0-9_\-.=+/]{20,})"), 1),
    ("azure-key", re.compile(r"(?i)(?:AccountKey|SharedAccessKey)=([A-Za-z0-9+/=]{30,})"), 1),
    ("signed-url", re.compile(r"[?&](?:sig|X-Amz-Signature|Signature)=([A-Za-z0-9%+/=_-]{30,})"), 1),
    # .netrc: "machine host login name password value".
    ("netrc-password", re.compile(r"(?i)\blogin\s+\S+\s+password\s+([^\s\"']{6,128})"), 1),
    (
        "password-parameter",
        re.compile(r"(?i)[?&;\s](?:password|passwd|pwd|pass)=([^&;\s\"']{4,})"),
        1,
    ),
    (
        "generic-secret",
        re.compile(
            r"(?i)[\"']?\b[\w.-]*(?:secret|token|passw(?:or)?d|api[_-]?key|access[_-]?key|auth[_-]?key|"
            r"private[_-]?key|credential)s?\b[\"']?\s*[:=]\s*[\"']?([A-Za-z0-9/+_\-.~!@#$%^&*=]{12,200})"
        ),
        1,
    ),
)
_PLACEHOLDER = re.compile(
    r"example|xxxx|your[_-]|placeholder|dummy|changeme|redacted|sample|<|\$\{|\{\{|\*\*\*|\.\.\.|test_?key"
    r"|(.)\1{5,}",
    re.I,
)
_PLACEHOLDER_WORDS = ("password", "passwd", "secret", "pass", "pwd", "changeme", "change-me")
#: Names of JSON keys whose string value is a secret when it looks like one.
_SECRET_KEY = re.compile(
    r"(?i)(?:secret|token|passw(?:or)?d|api[_-]?key|access[_-]?key|auth[_-]?key|private[_-]?key|credential)s?$"
)
#: Necessary conditions for the patterns above, checked with plain substring tests (cheap on every field).
_CASED_HINTS = (
    "-----BEGIN", "AKIA", "ASIA", "ABIA", "ACCA", "AGPA", "AIDA", "AROA", "ANPA",
    "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_",
    "glpat-", "gldt-", "glrt-", "glptt-", "glft-", "glsoat-", "glcbt-", "glimt-", "glagent-", "xox",
    "hooks.slack", "_live_", "AIza", "sk-", "npm_", "eyJ", "whsec_", "discord",
    "hf_", "pypi-", "SG.", "shp", "dop_v1_", "hvs.", "sq0", "PMAK-", "lin_api_", "dapi", ":AA", "AGE-SECRET",
    "AC", "SK", "key-", "ya29.", "glc_", "xapp-", "AccountKey", "SharedAccessKey", "ig=", "Signature=",
    "\tTRUE\t", "\tFALSE\t",
)  # fmt: skip
_LOWER_HINTS = (
    "secret",
    "token",
    "passw",
    "pwd",
    "pass",
    "key",
    "credential",
    "://",
    "login",
    "bearer",
    "basic ",
    "auth",
    "dockerconfigjson",
    "contrase",
    "mot de passe",
    "senha",
    "парол",
    "admin",
    "root",
)


def might_contain_secret(text: str) -> bool:
    """Cheap gate for :func:`find_secrets` (false positives fine, false negatives not)."""
    if any(h in text for h in _CASED_HINTS):
        return True
    low = text.lower()
    return any(h in low for h in _LOWER_HINTS)


@dataclass(frozen=True, slots=True)
class SecretMatch:
    """Where a secret sits in a string; ``start``/``end`` delimit the part that gets masked."""

    kind: str
    start: int
    end: int


def _entropy(value: str) -> float:
    counts = Counter(value)
    total = len(value)
    return -sum(n / total * math.log2(n / total) for n in counts.values())


def _plausible(kind: str, value: str) -> bool:
    if _PLACEHOLDER.search(value):
        return False
    if kind == "generic-secret":
        if value.startswith("eyJ") and _sample_jwt(value):
            return False  # the jwt.io sample under a "token:" label is still the sample
        classes = sum(
            (
                any(c.islower() for c in value),
                any(c.isupper() for c in value),
                any(c.isdigit() for c in value),
            )
        )
        return _entropy(value) >= 3.3 and classes >= 2
    if kind in ("password-parameter", "connection-string-password", "netrc-password"):
        low = value.lower()
        if any(word in low for word in _PLACEHOLDER_WORDS) or (value.isalpha() and value.isupper()):
            return False  # "USER:PASSWORD@", "Password=myPassword": a format, not a secret
        return not value.startswith(("$", "%", "{", "<"))
    if kind in ("url-credential", "bearer-token", "signed-url"):
        return _entropy(value) >= 3.5
    if kind == "jwt":
        return not _sample_jwt(value)
    return True


_SAMPLE_CLAIMS = re.compile(r'"(?:John|Jane) Doe"|\bsample\b|\bdummy\b|placeholder', re.IGNORECASE)


def _sample_jwt(token: str) -> bool:
    """A token whose claims are documentation placeholders: jwt.io's "John Doe" sample, or claims
    that say sample, dummy or placeholder. Printed in every tutorial, never a secret. (An
    ``example.com`` address is not enough: fakes and real tokens of test tenants use it too.)"""
    parts = token.split(".")
    if len(parts) < 2:
        return False
    try:
        claims = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return False
    return _SAMPLE_CLAIMS.search(claims) is not None


def find_secrets(text: str, key: str | None = None) -> list[SecretMatch]:
    """Secrets found in ``text``, in order, non-overlapping.

    ``key`` is the JSON key the text is the value of (``{"secret": "whsec_..."}``): a bare
    high-entropy value under a secret-sounding key is a secret though the text names no key.
    """
    if not text:
        return []
    if key and _SECRET_KEY.search(key) and " " not in text.strip() and 12 <= len(text.strip()) <= 200:
        value = text.strip()
        if _plausible("generic-secret", value):
            start = text.index(value)
            return [SecretMatch("generic-secret", start, start + len(value))]
    found: list[SecretMatch] = []
    taken: list[tuple[int, int]] = []
    if key is not None and (key.lower() == "auth" or "dockerconfigjson" in key.lower()):
        found = [SecretMatch(kind, start, end) for kind, start, end in credential_spans(text, key)]
        if found:
            return found
    if not might_contain_secret(text):
        return []
    for kind, pattern, group in _PATTERNS:
        for m in pattern.finditer(text):
            start, end = m.span(group)
            value = m.group(group)
            if not _plausible(kind, value if kind != "private-key" else "k"):
                continue
            if any(s < end and start < e for s, e in taken):
                continue
            taken.append((start, end))
            found.append(SecretMatch(kind, start, end))
    for kind, start, end in credential_spans(text, None):
        if text.startswith("eyJ", start) and _sample_jwt(text[start:end]):
            continue
        if not any(s < end and start < e for s, e in taken):
            taken.append((start, end))
            found.append(SecretMatch(kind, start, end))
    found.sort(key=lambda s: s.start)
    return found


def redact_text(text: str, matches: list[SecretMatch] | None = None) -> str:
    """``text`` with each secret replaced by ``[REDACTED:<kind>]``."""
    matches = find_secrets(text) if matches is None else matches
    if not matches:
        return text
    parts: list[str] = []
    last = 0
    for m in matches:
        parts.append(text[last : m.start])
        parts.append(f"[REDACTED:{m.kind}]")
        last = m.end
    parts.append(text[last:])
    return "".join(parts)


def redact_secrets(value: Any) -> Any:
    """Copy of a str or JSON value with secrets masked in every string (keys included); other values pass."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {redact_text(k) if isinstance(k, str) else k: redact_secrets(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_secrets(v) for v in value]
    return value
