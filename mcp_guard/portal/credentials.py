"""The credential broker: per-user (or per-tenant) upstream secrets, encrypted at rest.

An upstream reached through the portal should act with the rights of the
user who called, never with one shared super-token. The admin stores, per
upstream, a set of environment variables (stdio upstreams) and HTTP headers
(URL upstreams) for each subject or tenant::

    mcp-guard servers credentials set github --subject alice --env GITHUB_TOKEN=ghp_...

Setting the first credential of an upstream fixes its *scope* (``subject``
or ``tenant``). From then on the portal serves that upstream only with the
caller's own credentials: a caller without any is refused, and stdio
upstreams run one process per user (pooled, closed after an idle timeout).
The caller's own bearer token is never passed to an upstream.

Values are sealed with AES-GCM (``cryptography``) before they reach the state
store; the associated data binds each ciphertext to its upstream, scope and
owner, so a stored value cannot be moved to another user. The 32-byte key
comes from ``MCP_GUARD_SECRETS_KEY`` (base64 or hex) or a key file (default
``./.mcp-guard/secrets.key``, mode 0600, created on first use).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import AccessDenied, ConfigError, GuardUnavailable
from ..model import Principal
from ..protocols import StateStore
from ..ratelimit import vouched_by

Scope = Literal["subject", "tenant"]
SCOPES: tuple[Scope, ...] = ("subject", "tenant")

KEY_ENV = "MCP_GUARD_SECRETS_KEY"
DEFAULT_KEY_FILE = ".mcp-guard/secrets.key"

_MODE_KEY = "portal:credmode:"
_VALUE_KEY = "portal:cred:"
_VERSION = b"v1"
_NONCE = 12


def _decode_key(text: str, source: str) -> bytes:
    text = text.strip()
    raw: bytes | None = None
    if len(text) == 64:
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raw = None
    if raw is None:
        try:
            raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=False)
        except (binascii.Error, ValueError):
            raw = None
    if raw is None or len(raw) != 32:
        raise ConfigError(f"{source} must hold a 32-byte key (64 hex digits or base64)", field=source)
    return raw


def load_key(
    path: str | Path | None = None, *, env: Mapping[str, str] | None = None, create: bool = True
) -> bytes:
    """The broker's AES-256 key: ``MCP_GUARD_SECRETS_KEY``, else the key file (created 0600 if absent)."""
    environ = os.environ if env is None else env
    if environ.get(KEY_ENV):
        return _decode_key(environ[KEY_ENV], KEY_ENV)
    file = Path(path if path is not None else DEFAULT_KEY_FILE)
    if not file.exists():
        if not create:
            raise ConfigError(f"secrets key file {file} does not exist", field="secrets_key")
        file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_bytes(32).hex() + "\n")
    if file.stat().st_mode & 0o077:
        raise ConfigError(
            f"secrets key file {file} is readable by others (chmod 600 it)", field="secrets_key"
        )
    return _decode_key(file.read_text(), str(file))


class MissingCredentials(AccessDenied):
    """The caller has no secrets stored for an upstream that is served only with each caller's own."""

    public_message = "Access denied: no upstream credentials are stored for you"


class SecretBox:
    """AES-GCM sealing with a random 96-bit nonce per value and caller-chosen associated data."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("SecretBox needs a 32-byte key")
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = secrets.token_bytes(_NONCE)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext, aad)

    def open(self, sealed: bytes, aad: bytes) -> bytes:
        if not sealed.startswith(_VERSION) or len(sealed) < len(_VERSION) + _NONCE + 16:
            raise GuardUnavailable("stored credential is malformed")
        nonce = sealed[len(_VERSION) : len(_VERSION) + _NONCE]
        try:
            return self._aead.decrypt(nonce, sealed[len(_VERSION) + _NONCE :], aad)
        except InvalidTag:
            raise GuardUnavailable(
                "stored credential failed authentication (wrong key or tampered)"
            ) from None


@dataclass(frozen=True, slots=True)
class UpstreamCredentials:
    """What one caller's upstream connection gets on top of the server's own ``env`` / ``headers``."""

    scope: Scope
    owner: str
    env: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)

    def fingerprint(self) -> tuple[str, str, tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
        """A pool key: the same owner with rotated secrets gets a fresh upstream connection."""
        return (self.scope, self.owner, tuple(sorted(self.env.items())), tuple(sorted(self.headers.items())))


def _check_names(values: Mapping[str, str], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in values.items():
        if not key or not key.replace("_", "a").replace("-", "a").isalnum():
            raise ConfigError(f"invalid {what} name {key!r}", field=what)
        if "\n" in value or "\r" in value or "\x00" in value:
            raise ConfigError(f"{what} {key!r} holds a line break or NUL", field=what)
        out[key] = value
    return out


def subject_owner(subject: str, issuer: str | None = None) -> str:
    """The owner name under which a person's secrets are stored: the subject, and who vouches for it.

    A subject name is only unique within whoever vouches for it (:func:`~mcp_guard.ratelimit.vouched_by`:
    an identity provider's ``iss``, or ``api-keys/TENANT`` for the keys of a tenant): an admin of
    tenant ``acme`` may create a key for any name, and that key's ``gary`` must not be handed
    another tenant's ``gary``'s upstream secret. Without an issuer the name is the owner, as before.
    """
    return subject if issuer is None else f"{subject} (vouched by {issuer})"


class CredentialBroker:
    """Stores and hands out per-subject or per-tenant upstream secrets (sealed in a :class:`StateStore`).

    ``cache_ttl`` keeps decrypted credentials in memory for a few seconds so a
    call costs no store round trip; a rotation takes effect within that time.
    ``box`` None (no key configured) still knows which upstreams need per-user
    credentials, and refuses their calls instead of falling back to shared ones.
    """

    def __init__(
        self,
        store: StateStore,
        box: SecretBox | None,
        *,
        cache_ttl: float = 5.0,
        declared: Mapping[str, Scope] | None = None,
    ) -> None:
        self.store = store
        self.box = box
        self.cache_ttl = cache_ttl
        #: Scopes the config declares (``[[servers]] credentials = ...``): such an upstream is
        #: per-user before any secret is stored, so a caller without one is refused from the start.
        self.declared = dict(declared or {})
        self._cache: dict[tuple[str, str, str], tuple[float, UpstreamCredentials | None]] = {}
        self._modes: dict[str, tuple[float, Scope | None]] = {}

    @staticmethod
    def _aad(server: str, scope: str, owner: str) -> bytes:
        return json.dumps(["mcp-guard-credential", server, scope, owner]).encode()

    async def scope(self, server: str) -> Scope | None:
        """The scope an upstream's credentials are kept per (None: the upstream uses no broker)."""
        now = time.monotonic()
        cached = self._modes.get(server)
        if cached is not None and now - cached[0] < self.cache_ttl:
            return cached[1]
        raw = await self.store.get(_MODE_KEY + server)
        mode: Scope | None = None
        if raw is not None:
            text = raw.decode()
            if text not in SCOPES:
                raise GuardUnavailable(f"credential scope of {server!r} is unreadable")
            mode = text
        declared = self.declared.get(server)
        if declared is not None:
            if mode is not None and mode != declared:
                raise GuardUnavailable(
                    f"credentials of {server!r} are stored per {mode} but the config declares {declared}"
                )
            mode = declared
        self._modes[server] = (now, mode)
        return mode

    async def set(
        self,
        server: str,
        scope: Scope,
        owner: str,
        *,
        env: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Store (replace) ``owner``'s credentials for ``server``; the first one fixes the scope."""
        if scope not in SCOPES:
            raise ConfigError(f"scope must be one of {', '.join(SCOPES)}", field="scope")
        if not owner:
            raise ConfigError("the credential owner must not be empty", field=scope)
        body = {"env": _check_names(env or {}, "env"), "headers": _check_names(headers or {}, "header")}
        if not body["env"] and not body["headers"]:
            raise ConfigError("give at least one --env or --header value", field="credentials")
        declared = self.declared.get(server)
        if declared is not None and declared != scope:
            raise ConfigError(f"the config keeps credentials of {server!r} per {declared}", field="scope")
        current = await self.scope(server)
        if current is not None and current != scope:
            raise ConfigError(
                f"credentials of {server!r} are kept per {current}; delete them all to switch to {scope}",
                field="scope",
            )
        if await self.store.get(_MODE_KEY + server) is None:
            await self.store.set(_MODE_KEY + server, scope.encode())
        sealed = self._box().seal(json.dumps(body, sort_keys=True).encode(), self._aad(server, scope, owner))
        await self.store.set(f"{_VALUE_KEY}{server}:{scope}:{owner}", sealed)
        self._forget(server)

    async def sealed(self, server: str, scope: Scope, owner: str) -> tuple[bytes | None, bytes | None]:
        """What :meth:`set` would replace, still sealed: the server's scope record and the owner's.

        Kept by a caller that may have to take a :meth:`set` back (:meth:`put_back`) without ever
        opening the secret.
        """
        value = await self.store.get(f"{_VALUE_KEY}{server}:{scope}:{owner}")
        return await self.store.get(_MODE_KEY + server), value

    async def put_back(
        self, server: str, scope: Scope, owner: str, before: tuple[bytes | None, bytes | None]
    ) -> None:
        """Restore what :meth:`sealed` returned: the owner's earlier secret, or none, and the scope."""
        mode, value = before
        key = f"{_VALUE_KEY}{server}:{scope}:{owner}"
        if value is None:
            await self.store.delete(key)
        else:
            await self.store.set(key, value)
        if mode is None and not await self.store.keys(f"{_VALUE_KEY}{server}:"):
            await self.store.delete(_MODE_KEY + server)
        self._forget(server)

    async def delete(self, server: str, owner: str | None = None) -> int:
        """Delete one owner's credentials, or all of an upstream's (and its scope) when ``owner`` is None."""
        scope = await self.scope(server)
        if scope is None:
            return 0
        owners = await self.owners(server)
        gone = [o for o in owners if owner is None or o == owner]
        for o in gone:
            await self.store.delete(f"{_VALUE_KEY}{server}:{scope}:{o}")
        if owner is None or len(gone) == len(owners):
            await self.store.delete(_MODE_KEY + server)
        self._forget(server)
        return len(gone)

    async def owners(self, server: str) -> list[str]:
        """The subjects or tenants that have credentials for ``server`` (never the values)."""
        scope = await self.scope(server)
        if scope is None:
            return []
        prefix = f"{_VALUE_KEY}{server}:{scope}:"
        return sorted(k[len(prefix) :] for k in await self.store.keys(prefix))

    async def names(self, server: str, owner: str) -> dict[str, list[str]]:
        """The env and header *names* stored for one owner (for listings; values stay sealed)."""
        scope = await self.scope(server)
        creds = await self._load(server, scope, owner) if scope is not None else None
        if creds is None:
            return {"env": [], "headers": []}
        return {"env": sorted(creds.env), "headers": sorted(creds.headers)}

    async def for_principal(self, server: str, principal: Principal) -> UpstreamCredentials | None:
        """The caller's credentials for ``server`` (None: none stored, the caller must be refused)."""
        scope = await self.scope(server)
        if scope is None:
            return None
        if scope == "tenant":
            return await self._load(server, scope, principal.tenant) if principal.tenant else None
        if not principal.subject:
            return None
        creds = await self._load(server, scope, subject_owner(principal.subject, vouched_by(principal)))
        if creds is None and principal.issuer is not None:
            # An identity provider names its own users: their secrets may be stored by bare name.
            # A tenant's API key never falls back: its name is whatever that tenant's admin typed.
            creds = await self._load(server, scope, principal.subject)
        return creds

    async def _load(self, server: str, scope: Scope, owner: str) -> UpstreamCredentials | None:
        key = (server, scope, owner)
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is not None and now - cached[0] < self.cache_ttl:
            return cached[1]
        sealed = await self.store.get(f"{_VALUE_KEY}{server}:{scope}:{owner}")
        creds: UpstreamCredentials | None = None
        if sealed is not None:
            body = json.loads(self._box().open(sealed, self._aad(server, scope, owner)))
            creds = UpstreamCredentials(
                scope, owner, dict(body.get("env", {})), dict(body.get("headers", {}))
            )
        self._cache[key] = (now, creds)
        return creds

    def _box(self) -> SecretBox:
        if self.box is None:
            raise GuardUnavailable(f"no secrets key: set {KEY_ENV} or give the key file")
        return self.box

    def _forget(self, server: str) -> None:
        self._modes.pop(server, None)
        for key in [k for k in self._cache if k[0] == server]:
            del self._cache[key]


__all__ = [
    "KEY_ENV",
    "SCOPES",
    "CredentialBroker",
    "MissingCredentials",
    "Scope",
    "SecretBox",
    "UpstreamCredentials",
    "load_key",
]
