"""API keys: long random secrets of which only a SHA-256 hash is ever stored.

A key reads ``mcpg_<id>_<secret>``. The id locates the record in the state
store without scanning; the secret carries 256 bits of entropy, so a plain
SHA-256 (not a slow password hash) is the right digest, compared in constant
time. Keys listed in the config by ``key_sha256`` need no id: they are found by
their digest in a dict built at start.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import AuthenticationError
from ..model import Principal
from ..protocols import Credential, StateStore
from .revocation import RevocationList

PREFIX = "mcpg_"
RECORD_KEY = "authn:apikey:"
USED_KEY = "authn:apikey-used:"
INDEX_KEY = "authn:apikeys"
_ID = re.compile(r"^[0-9a-f]{12}$")
#: last-used time is written at most this often per key.
LAST_USED_EVERY = 60.0


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """What the store keeps about a key (never the key)."""

    id: str
    sha256: str
    subject: str
    roles: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    tenant: str | None = None
    created_at: float = field(default_factory=time.time)
    expires_at: float | None = None
    revoked_at: float | None = None
    description: str = ""

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> ApiKeyRecord:
        data: dict[str, Any] = json.loads(raw)
        for name in ("roles", "groups", "scopes"):
            data[name] = tuple(data.get(name) or ())
        return cls(**data)

    def principal(self) -> Principal:
        return Principal(
            subject=self.subject,
            tenant=self.tenant,
            roles=frozenset(self.roles),
            groups=frozenset(self.groups),
            scopes=frozenset(self.scopes),
            auth_method="api_key",
            expires_at=self.expires_at,
            credential_id=self.id,
        )


def new_key() -> tuple[str, str]:
    """A fresh ``(key_id, key)``."""
    key_id = secrets.token_hex(6)
    return key_id, f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


def sha256_hex(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


async def create_api_key(
    store: StateStore,
    subject: str,
    *,
    roles: Iterable[str] = (),
    groups: Iterable[str] = (),
    scopes: Iterable[str] = (),
    tenant: str | None = None,
    expires_in: float | None = None,
    description: str = "",
    clock: Callable[[], float] = time.time,
) -> tuple[str, ApiKeyRecord]:
    """Create and store a key; the returned key string exists nowhere else - show it once."""
    if not subject:
        raise ValueError("subject must not be empty")
    key_id, key = new_key()
    now = clock()
    record = ApiKeyRecord(
        id=key_id,
        sha256=sha256_hex(key),
        subject=subject,
        roles=tuple(sorted(set(roles))),
        groups=tuple(sorted(set(groups))),
        scopes=tuple(sorted(set(scopes))),
        tenant=tenant,
        created_at=now,
        expires_at=now + expires_in if expires_in is not None else None,
        description=description,
    )
    await store.set(RECORD_KEY + key_id, record.to_json())
    await store.sadd(INDEX_KEY, key_id)
    return key, record


async def revoke_api_key(
    store: StateStore,
    key_id: str,
    revocations: RevocationList | None = None,
    *,
    clock: Callable[[], float] = time.time,
) -> bool:
    """Mark a key revoked and publish it so open sessions drop it; False if there is no such key."""
    raw = await store.get(RECORD_KEY + key_id)
    if raw is None:
        return False
    record = ApiKeyRecord.from_json(raw)
    if record.revoked_at is None:
        from dataclasses import replace

        await store.set(RECORD_KEY + key_id, replace(record, revoked_at=clock()).to_json())
    await (revocations or RevocationList(store)).revoke(key_id)
    return True


async def list_api_keys(store: StateStore) -> list[tuple[ApiKeyRecord, float | None]]:
    """Every stored key with its last-used time, oldest first."""
    out: list[tuple[ApiKeyRecord, float | None]] = []
    for key_id in await store.smembers(INDEX_KEY):
        raw = await store.get(RECORD_KEY + key_id)
        if raw is None:
            continue
        used = await store.get(USED_KEY + key_id)
        out.append((ApiKeyRecord.from_json(raw), float(used) if used else None))
    out.sort(key=lambda item: item[0].created_at)
    return out


@dataclass(frozen=True, slots=True)
class ConfiguredKey:
    """A key declared in the config file by its digest."""

    sha256: str
    subject: str
    roles: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    tenant: str | None = None
    expires_at: float | None = None
    id: str | None = None


class ApiKeyAuthenticator:
    """Recognises configured keys (by digest) and stored keys (``mcpg_`` prefix, by id).

    A credential that is neither is "not mine". A ``mcpg_`` credential whose
    record is missing, revoked, expired or whose digest differs is refused.
    """

    def __init__(
        self,
        configured: Iterable[ConfiguredKey] = (),
        store: StateStore | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self._store = store
        self._by_digest: dict[bytes, Principal] = {}
        for entry in configured:
            digest = bytes.fromhex(entry.sha256)
            self._by_digest[digest] = Principal(
                subject=entry.subject,
                tenant=entry.tenant,
                roles=frozenset(entry.roles),
                groups=frozenset(entry.groups),
                scopes=frozenset(entry.scopes),
                auth_method="api_key",
                expires_at=entry.expires_at,
                credential_id=entry.id or f"cfg-{entry.sha256[:12]}",
            )
        self._last_used: dict[str, float] = {}

    async def holder(self, credential_id: str) -> Principal | None:
        """The principal of the live key ``credential_id`` names, or None: not one of this
        authenticator's keys (any more), revoked or expired. Cheap (a dict scan, or one store read),
        so a long-lived session can ask again whether the key it was opened with still stands."""
        now = self._clock()
        for principal in self._by_digest.values():
            if principal.credential_id == credential_id:
                alive = principal.expires_at is None or principal.expires_at > now
                return principal if alive else None
        if self._store is None or not _ID.match(credential_id):
            return None
        raw = await self._store.get(RECORD_KEY + credential_id)
        if raw is None:
            return None
        record = ApiKeyRecord.from_json(raw)
        if record.revoked_at is not None or (record.expires_at is not None and record.expires_at <= now):
            return None
        return record.principal()

    async def authenticate(self, credential: Credential) -> Principal | None:
        token = credential.token
        if not token:
            return None
        digest = hashlib.sha256(token.encode("utf-8")).digest()
        principal = self._by_digest.get(digest)
        if principal is not None:
            if principal.expires_at is not None and principal.expires_at <= self._clock():
                raise AuthenticationError("API key expired")
            return principal
        if not token.startswith(PREFIX) or self._store is None:
            return None
        key_id, sep, _ = token[len(PREFIX) :].partition("_")
        if not sep or not _ID.match(key_id):
            raise AuthenticationError("malformed API key")
        raw = await self._store.get(RECORD_KEY + key_id)
        if raw is None:
            raise AuthenticationError(f"unknown API key {key_id}")
        record = ApiKeyRecord.from_json(raw)
        if not hmac.compare_digest(bytes.fromhex(record.sha256), digest):
            raise AuthenticationError(f"API key {key_id} does not match")
        now = self._clock()
        refusal = None
        if record.revoked_at is not None:
            refusal = AuthenticationError(f"API key {key_id} is revoked")
        elif record.expires_at is not None and record.expires_at <= now:
            refusal = AuthenticationError(f"API key {key_id} expired")
        if refusal is not None:  # the secret matched: the key's owner presented it, or it leaked
            refusal.owner = record.principal()
            raise refusal
        if now - self._last_used.get(key_id, 0.0) >= LAST_USED_EVERY:
            self._last_used[key_id] = now
            await self._store.set(USED_KEY + key_id, repr(now).encode())
        return record.principal()
