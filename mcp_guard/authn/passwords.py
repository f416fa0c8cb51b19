"""Password hashing (argon2id, or scrypt from the standard library) and the password policy.

Hashes are self-describing strings, so a users file can mix both and a later
change of default never locks anyone out.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from functools import lru_cache
from importlib import resources

SCRYPT_PREFIX = "$scrypt$"
# scrypt: N=2**15, r=8, p=1 (~32 MiB, tens of ms): the current OWASP-recommended floor.
_SCRYPT_LN, _SCRYPT_R, _SCRYPT_P = 15, 8, 1


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def argon2_available() -> bool:
    try:
        import argon2  # noqa: F401
    except ImportError:
        return False
    return True


def hash_password(password: str, scheme: str | None = None) -> str:
    """Hash with ``argon2id`` (default when argon2-cffi is installed) or ``scrypt``."""
    scheme = scheme or ("argon2id" if argon2_available() else "scrypt")
    if scheme == "argon2id":
        from argon2 import PasswordHasher

        return PasswordHasher().hash(password)
    if scheme == "scrypt":
        salt = secrets.token_bytes(16)
        digest = hashlib.scrypt(
            password.encode(), salt=salt, n=2**_SCRYPT_LN, r=_SCRYPT_R, p=_SCRYPT_P, maxmem=64 * 1024 * 1024
        )
        return f"{SCRYPT_PREFIX}ln={_SCRYPT_LN},r={_SCRYPT_R},p={_SCRYPT_P}${_b64(salt)}${_b64(digest)}"
    raise ValueError(f"unknown password hash scheme {scheme!r}")


def verify_password(encoded: str, password: str) -> bool:
    """True when ``password`` matches; False for a mismatch or an unreadable hash."""
    if encoded.startswith("$argon2"):
        try:
            from argon2 import PasswordHasher
            from argon2.exceptions import Argon2Error, InvalidHashError
        except ImportError:
            return False
        try:
            return PasswordHasher().verify(encoded, password)
        except (Argon2Error, InvalidHashError):
            return False
    if encoded.startswith(SCRYPT_PREFIX):
        try:
            params, salt, expected = encoded[len(SCRYPT_PREFIX) :].split("$")
            fields = dict(item.split("=") for item in params.split(","))
            ln, r, p = int(fields["ln"]), int(fields["r"]), int(fields["p"])
            if not (10 <= ln <= 20 and 1 <= r <= 32 and 1 <= p <= 16):
                return False
            digest = hashlib.scrypt(
                password.encode(), salt=_unb64(salt), n=2**ln, r=r, p=p, maxmem=256 * 1024 * 1024
            )
        except (ValueError, KeyError):
            return False
        return hmac.compare_digest(digest, _unb64(expected))
    return False


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The shipped list of very common passwords (lower-cased)."""
    text = (
        resources.files("mcp_guard")
        .joinpath("data")
        .joinpath("common-passwords.txt")
        .read_text(encoding="utf-8")
    )
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip() and line[0] != "#")


def password_problems(password: str, *, min_length: int = 12, username: str | None = None) -> list[str]:
    """Why a new password is refused (empty list = acceptable). Length over complexity rules."""
    problems = []
    if len(password) < min_length:
        problems.append(f"must be at least {min_length} characters")
    if len(password) > 1024:
        problems.append("must be at most 1024 characters")
    lowered = password.lower()
    if lowered in common_passwords():
        problems.append("is on the list of very common passwords")
    if username and lowered == username.lower():
        problems.append("must not equal the user name")
    if len(set(password)) < 4 and password:
        problems.append("uses too few distinct characters")
    return problems
