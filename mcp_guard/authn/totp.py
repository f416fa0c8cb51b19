"""Time-based one-time passwords (RFC 6238, the parameters every authenticator app uses).

Only HMAC from the standard library is used. Replay prevention lives in the
login service, which records each accepted time step in the state store.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
import time
from urllib.parse import quote, urlencode

DIGITS = 6
PERIOD = 30


def new_secret() -> str:
    """A 160-bit secret in unpadded base32, as apps expect."""
    return base64.b32encode(secrets.token_bytes(20)).decode().rstrip("=")


def _key(secret: str) -> bytes:
    cleaned = secret.replace(" ", "").upper()
    return base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))


def code_at(secret: str, step: int) -> str:
    mac = hmac.new(_key(secret), struct.pack(">Q", step), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**DIGITS).zfill(DIGITS)


def current_step(now: float | None = None) -> int:
    return int((time.time() if now is None else now) // PERIOD)


def match_step(secret: str, code: str, *, now: float | None = None, window: int = 1) -> int | None:
    """The time step ``code`` belongs to (within +-``window`` steps of now), or None.

    Every candidate is compared, so timing does not reveal which step matched. Only ASCII
    digits count: ``str.isdigit`` alone accepts "١٢٣٤٥٦" or fullwidth digits, on which
    ``hmac.compare_digest`` raises instead of answering.
    """
    if not (isinstance(code, str) and len(code) == DIGITS and code.isascii() and code.isdigit()):
        return None
    step = current_step(now)
    found = None
    for candidate in range(step - window, step + window + 1):
        if hmac.compare_digest(code_at(secret, candidate), code):
            found = candidate
    return found


def provisioning_uri(secret: str, account: str, issuer: str = "mcp-guard") -> str:
    """``otpauth://`` URI for QR codes / manual entry in an authenticator app."""
    query = urlencode({"secret": secret, "issuer": issuer, "digits": DIGITS, "period": PERIOD})
    return f"otpauth://totp/{quote(issuer)}:{quote(account)}?{query}"
