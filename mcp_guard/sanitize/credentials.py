"""Credentials that have no provider format: Docker ``auth`` values, passwords in prose, short
values assigned to secret-named keys.

The format patterns in :mod:`.redact` find tokens by their shape; these three are found by what
surrounds them instead. A Docker ``auth`` is base64 of ``user:password`` (decoded to be sure,
also inside a Kubernetes ``.dockerconfigjson``); a password in prose sits right after "password
is" / "pwd:" / "admin /" and must look like one (lower case, a digit, and an upper-case letter or
a symbol, no long word inside), so policy text ("the password is rotated every 90 days") never
matches; a value assigned in a config file (``SMTP_PASS=kettle42``, ``$db_pass = '...'``) needs a
key that ends in a secret word, a letter and a digit, and no placeholder look. Each returns the
span to mask.
"""

from __future__ import annotations

import base64
import binascii
import json
import re

#: ``"auth": "<base64>"`` in a Docker config.
_DOCKER_AUTH = re.compile(r"[\"']auth[\"']\s*:\s*[\"']([A-Za-z0-9+/]{8,}={0,2})[\"']")
#: A Kubernetes ``.dockerconfigjson`` value: base64 of a whole Docker config.
_DOCKER_CONFIG = re.compile(r"dockerconfigjson[\"']?\s*[:=]\s*[\"']?([A-Za-z0-9+/]{16,}={0,2})")
_PASSWORD_WORDS = (
    r"password|passwd|passcode|passphrase|pwd|contraseña|contrasena|mot de passe|passwort|kennwort|senha"
    r"|wachtwoord|парол[ьея]"
)
#: "password [for the box] is|was|set to|: TOKEN" and "admin / TOKEN" (not a path's ``/admin/x``).
_PROSE = re.compile(
    rf"(?i)\b(?:{_PASSWORD_WORDS})\b(?:[ \t][^\n.:=@/]{{0,40}}?)??"
    r"(?:\s(?:is|was|are|be|to|remains|now|es|est|ist|é|era)\s*:?|[:=]|->|→)"
    r"\s*[`\"'«“]?(?P<tok>[^\s`\"'»”,;()\[\]]{8,64})"
    r"|(?<![/\\])(?i:\b(?:admin|administrator|root|login|user(?:name)?))\s*/\s*(?P<slash>[^\s`\"'»”,;()\[\]]{8,64})"
)
#: ``KEY = value`` at a line start (shell, .env, YAML, PHP, INI), the key ending in a secret word.
_ASSIGN = re.compile(
    r"(?im)^[ \t]*(?:export[ \t]+|\$|define\(\s*['\"])?(?P<key>[a-z_][\w.-]{0,40}?(?: \w+)?)"
    r"['\"]?[ \t]*(?:=>|[:=]|,)"
    r"[ \t]*(?P<q>['\"]?)(?P<val>[^\s'\";,#]{6,200})(?P=q)[ \t]*[;,)]*[ \t]*$"
)
_SECRET_SUFFIX = re.compile(
    r"(?:^|[_. -]|(?<=[a-z])(?=[A-Z]))(?i:pass|password|passwd|pwd|secret|token|api[_ ]?key|app[_ ]?key"
    r"|auth[_ ]?key|secret[_ ]?key|private[_ ]?key|access[_ ]?key|master[_ ]?key|signing[_ ]?key)$"
)
_PLACEHOLDER = re.compile(
    r"example|xxx|your[_-]|placeholder|dummy|change_?me|redacted|sample|fake|test|<|^\$|\$\{|\{|\*\*|\.\.\."
    r"|^(?:none|null|nil|empty|true|false|required|optional|string|undefined|password\w*|secret\w*)$|(.)\1{4,}",
    re.IGNORECASE,
)
#: A dictionary word inside a token ("sha256-hashed"): six letters, lower case after the first.
_WORD_RUN = re.compile(r"[A-Za-z][a-z]{5,}")
#: A column that holds secrets, in a table header (CSV, TSV, a ``|`` table).
_SECRET_COLUMN = re.compile(
    r"(?i)^(?:\w+[_ ])?(?:password|passwd|pwd|secret|token|api[_ ]?key|secret[_ ]?key)s?$"
)
#: A Netscape ``cookies.txt`` line: domain, flag, path, secure, expiry, name, value.
_COOKIE = re.compile(
    r"(?m)^#?(?:HttpOnly_)?\.?[\w.-]+\t(?:TRUE|FALSE)\t\S*\t(?:TRUE|FALSE)\t\d+\t[^\t\n]+\t([^\t\n]{16,})$"
)
_GATE = re.compile(
    r"auth|dockerconfig|passw|pwd|pass\b|secret|token|key|contrase|mot de passe|senha|парол|admin|root", re.I
)


def _looks_secret(token: str) -> bool:
    """A password typed by a person: lower case, a digit, and upper case or a symbol; no word inside."""
    if (
        _PLACEHOLDER.search(token)
        or token.startswith(("~", ".", "%", "http"))
        or "/" in token
        or "@" in token
    ):
        return False
    lower = any(c.islower() for c in token)
    digit = any(c.isdigit() for c in token)
    other = any(c.isupper() for c in token) or any(not c.isalnum() for c in token)
    return lower and digit and other and _WORD_RUN.search(token) is None


def _user_password(encoded: str) -> bool:
    """``encoded`` is base64 of ``user:password`` with a real-looking password."""
    try:
        decoded = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return False
    user, sep, password = decoded.partition(":")
    if not sep or not user or len(password) < 4 or not decoded.isprintable():
        return False
    if any(c.isspace() for c in decoded) or _PLACEHOLDER.search(password):
        return False
    return not (password.isalpha() and password.lower() in ("pass", "passw", "pw"))


def _docker_config(encoded: str) -> bool:
    """``encoded`` is base64 of a Docker config that holds an ``auth`` with a password."""
    try:
        decoded = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True).decode("utf-8")
        json.loads(decoded)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return False
    return any(_user_password(m.group(1)) for m in _DOCKER_AUTH.finditer(decoded))


def credential_spans(text: str, key: str | None) -> list[tuple[str, int, int]]:
    """``(kind, start, end)`` for each credential in ``text``; ``key`` is the JSON key it is the
    value of, if any (``{"auth": "<base64>"}``)."""
    out: list[tuple[str, int, int]] = []
    value = text.strip()
    if key is not None and value and " " not in value:
        low = key.lower()
        if (low == "auth" and _user_password(value)) or ("dockerconfigjson" in low and _docker_config(value)):
            start = text.index(value)
            return [("docker-auth", start, start + len(value))]
    if "\t" in text and ("TRUE" in text or "FALSE" in text):
        out.extend(("cookie", *m.span(1)) for m in _COOKIE.finditer(text) if _mixed(m.group(1)))
    if _GATE.search(text) is None:
        return out
    if "auth" in text:
        out.extend(
            ("docker-auth", *m.span(1)) for m in _DOCKER_AUTH.finditer(text) if _user_password(m.group(1))
        )
    if "dockerconfigjson" in text:
        out.extend(
            ("docker-auth", *m.span(1)) for m in _DOCKER_CONFIG.finditer(text) if _docker_config(m.group(1))
        )
    for m in _PROSE.finditer(text):
        group = "tok" if m.group("tok") else "slash"
        token = m.group(group).rstrip(".,!?:")
        if _looks_secret(token):
            start = m.start(group)
            out.append(("prose-password", start, start + len(token)))
    if "=" in text or ":" in text:
        for m in _ASSIGN.finditer(text):
            val = m.group("val")
            if not _SECRET_SUFFIX.search(m.group("key")) or _PLACEHOLDER.search(val):
                continue
            if val.startswith(("/", "~", ".", "%", "http")) or "://" in val:
                continue
            if _mixed(val):
                out.append(("assigned-secret", *m.span("val")))
    if "\n" in text:
        out.extend(_table_spans(text))
    return out


def _mixed(value: str) -> bool:
    """Letters and digits, or both cases and a symbol: not a word, a number or a flag."""
    letters = any(c.isalpha() for c in value)
    if letters and any(c.isdigit() for c in value):
        return True
    cases = any(c.islower() for c in value) and any(c.isupper() for c in value)
    return cases and any(not c.isalnum() for c in value)


def _table_spans(text: str) -> list[tuple[str, int, int]]:
    """Cells under a secret-named column of a CSV, TSV or ``|`` table (a password manager export,
    a query over an ``api_key`` column)."""
    out: list[tuple[str, int, int]] = []
    columns: list[int] = []
    sep = ""
    offset = 0
    for line in text.split("\n"):
        start = offset
        offset += len(line) + 1
        if not columns:
            sep = next((c for c in ("|", "\t", ",") if line.count(c) >= 1), "")
            if sep:
                names = [cell.strip() for cell in line.split(sep)]
                columns = [i for i, name in enumerate(names) if _SECRET_COLUMN.match(name)]
            continue
        cells = line.split(sep)
        if len(cells) < 2:
            columns = []
            continue
        position = start
        for index, cell in enumerate(cells):
            value = cell.strip()
            if index in columns and len(value) >= 6 and _mixed(value) and not _PLACEHOLDER.search(value):
                begin = position + cell.index(value)
                out.append(("table-secret", begin, begin + len(value)))
            position += len(cell) + len(sep)
    return out
