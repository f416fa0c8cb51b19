"""Ed25519-signed checkpoints: a public-key attestation of the chain head at a point in time.

The HMAC anchor proves nothing to someone without the HMAC key, and whoever
holds that key could rewrite history and re-anchor it. A checkpoint is signed
with a separate Ed25519 key (which can live with another team) and checked
with only the public key; appended to a file shipped off the host, the
checkpoints pin history even against an administrator who has the HMAC key.
"""

from __future__ import annotations

import base64
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..errors import ConfigError
from .canonical import canonical

_CONTEXT = b"mcp-guard/audit-checkpoint\0"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    seq: int
    mac: str
    first: str
    time: float


def generate_signing_key(path: Path) -> Path:
    """Write a new private key (PEM, 0600) and its public key beside it (``.pub``); returns the latter."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    pub = path.with_name(path.name + ".pub")
    pub.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return pub


def _load(path: Path, private: bool) -> Ed25519PrivateKey | Ed25519PublicKey:
    try:
        data = path.read_bytes()
        key = (
            serialization.load_pem_private_key(data, password=None)
            if private
            else serialization.load_pem_public_key(data)
        )
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"cannot load Ed25519 key: {exc}", file=str(path)) from None
    if not isinstance(key, Ed25519PrivateKey if private else Ed25519PublicKey):
        raise ConfigError("not an Ed25519 key", file=str(path))
    return key


def sign_checkpoint(out: Path, signing_key: Path, seq: int, mac: str, first: str) -> Checkpoint:
    """Append a signed checkpoint line to ``out``."""
    key = _load(signing_key, private=True)
    assert isinstance(key, Ed25519PrivateKey)
    now = time.time()
    text = canonical({"v": 1, "seq": seq, "mac": mac, "first": first, "time": now})
    sig = base64.b64encode(key.sign(_CONTEXT + text.encode())).decode()
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a", encoding="ascii") as fh:
        fh.write(f'{text[:-1]},"sig":"{sig}"}}\n')
        fh.flush()
        os.fsync(fh.fileno())
    return Checkpoint(seq, mac, first, now)


class CheckpointError(Exception):
    """A checkpoint line is malformed or its signature does not verify."""


def load_checkpoints(path: Path, public_key: Path) -> list[Checkpoint]:
    """Every checkpoint in the file, each signature checked; CheckpointError names the bad line."""
    key = _load(public_key, private=False)
    assert isinstance(key, Ed25519PublicKey)
    out: list[Checkpoint] = []
    try:
        lines = path.read_text(encoding="ascii").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"cannot read checkpoints {path}: {exc}") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        marker = line.rfind(',"sig":"')
        try:
            data = json.loads(line)
            sig = base64.b64decode(data["sig"], validate=True)
            key.verify(sig, _CONTEXT + (line[:marker] + "}").encode())
            out.append(
                Checkpoint(int(data["seq"]), str(data["mac"]), str(data["first"]), float(data["time"]))
            )
        except InvalidSignature:
            raise CheckpointError(f"{path}:{n}: checkpoint signature does not verify") from None
        except (ValueError, KeyError, TypeError):
            raise CheckpointError(f"{path}:{n}: malformed checkpoint") from None
    return out
