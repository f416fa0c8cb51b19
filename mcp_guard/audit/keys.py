"""HMAC keys for the audit chain: a key ring read from config, environment or a local key file.

Key file format (``audit.key``, mode 0600): one key per line, ``KEY_ID SECRET``
or just ``SECRET``; ``#`` starts a comment. SECRET is hex (at least 32 hex
digits) or ``base64:...``. The **last** key signs new events; earlier keys
stay to verify older events, which is how rotation works. A key without an id
gets its fingerprint as id, so ids never reveal key material. The environment
variable takes the same keys separated by commas.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError

MIN_KEY_BYTES = 16


@dataclass(frozen=True, slots=True)
class AuditKey:
    key_id: str
    secret: bytes

    def __repr__(self) -> str:  # never print key material
        return f"AuditKey({self.key_id!r})"


def fingerprint(secret: bytes) -> str:
    return "k" + hashlib.sha256(b"mcp-guard/audit-key-id\0" + secret).hexdigest()[:12]


class KeyRing:
    """Keys by id; the last one is active. MACs are hex HMAC-SHA256."""

    def __init__(self, keys: Sequence[AuditKey], source: str = "") -> None:
        if not keys:
            raise ConfigError("no audit key found", file=source or None)
        self.source = source
        self._keys = {k.key_id: k.secret for k in keys}
        self.active = keys[-1]

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def mac(self, data: bytes, key_id: str | None = None) -> str | None:
        """HMAC of ``data`` with the named key (active key by default); None for an unknown id."""
        secret = self.active.secret if key_id is None else self._keys.get(key_id)
        if secret is None:
            return None
        return hmac.digest(secret, data, "sha256").hex()


def parse_secret(text: str, where: str) -> bytes:
    text = text.strip()
    try:
        raw = base64.b64decode(text[7:], validate=True) if text.startswith("base64:") else bytes.fromhex(text)
    except (ValueError, binascii.Error):
        raise ConfigError("audit key is neither hex nor base64:...", file=where) from None
    if len(raw) < MIN_KEY_BYTES:
        raise ConfigError(f"audit key shorter than {MIN_KEY_BYTES} bytes", file=where)
    return raw


def _parse_entry(entry: str, where: str) -> AuditKey:
    parts = entry.split(None, 1) if " " in entry.strip() or "\t" in entry.strip() else entry.split(":", 1)
    if len(parts) == 2 and not parts[0].startswith("base64"):
        key_id, secret_text = parts[0].strip(), parts[1]
        secret = parse_secret(secret_text, where)
        if not key_id or not key_id.isprintable() or len(key_id) > 64:
            raise ConfigError("invalid audit key id", file=where)
        return AuditKey(key_id, secret)
    secret = parse_secret(entry, where)
    return AuditKey(fingerprint(secret), secret)


def parse_key_file(text: str, path: str) -> KeyRing:
    keys: list[AuditKey] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if line:
            try:
                keys.append(_parse_entry(line, path))
            except ConfigError as exc:
                raise ConfigError(exc.detail, file=path, line=lineno) from None
    return KeyRing(keys, path)


def parse_key_spec(spec: str, source: str) -> KeyRing:
    """Keys from an environment variable or inline config: ``[ID:]SECRET[,[ID:]SECRET...]``."""
    return KeyRing([_parse_entry(e.strip(), source) for e in spec.split(",") if e.strip()], source)


def new_key_line() -> str:
    secret = secrets.token_bytes(32)
    return f"{fingerprint(secret)} {secret.hex()}\n"


def _write_new_key(path: Path, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | mode, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("# mcp-guard audit HMAC keys: last line signs, earlier lines verify\n")
        fh.write(new_key_line())
        fh.flush()
        os.fsync(fh.fileno())


def load_key_file(path: Path, create: bool = False) -> KeyRing:
    """Read the key file; with ``create``, make it (0600, directory 0700) when it does not exist yet."""
    if create and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Written in full under a private name, then linked into place: a process that loses the
        # race (several guards starting with one config) never reads a half-written key file.
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            _write_new_key(tmp, os.O_TRUNC)
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass  # another process won the race; read theirs
            except OSError:  # no hard links here: create in place
                _write_new_key(path, os.O_EXCL)
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("audit key file not found", file=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read audit key file: {exc.strerror}", file=str(path)) from None
    return parse_key_file(text, str(path))


def rotate_key_file(path: Path) -> str:
    """Append a new active key (older keys stay for verification); returns the new key id."""
    ring = load_key_file(path, create=True)
    line = new_key_line()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    with os.fdopen(fd, "a") as fh:
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())
    del ring
    return line.split()[0]
