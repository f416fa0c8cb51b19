"""The ``[authn]`` table of the guard config, and how it becomes an :class:`AuthenticatorChain`.

Models reject unknown keys, so a misspelt option is an error rather than a
silently ignored safety setting. Relative paths resolve against the directory
of the config file (``base_dir``).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from ..errors import ConfigError
from ..model import Principal
from ..protocols import Auditor, Authenticator, StateStore
from ._util import parse_duration
from .api_keys import ApiKeyAuthenticator, ConfiguredKey
from .chain import MAX_CREDENTIAL_BYTES, AuthenticatorChain
from .claims import DEFAULT_MFA_AMR, ClaimMapping
from .fetch import FetchPolicy, SafeFetcher
from .introspection import IntrospectionAuthenticator
from .jwks import KeySet, KeySource, RemoteKeys, StaticKeys, check_algorithms, load_jwks_file
from .jwt_auth import JWTAuthenticator
from .revocation import RevocationList

if TYPE_CHECKING:
    from .issuer import TokenIssuer
    from .login import LoginService

Duration = Annotated[float, BeforeValidator(parse_duration)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ApiKeyConfig(_Model):
    """``[[authn.api_keys]]``: a key known by its SHA-256 (hex) digest."""

    subject: str = Field(min_length=1)
    key_sha256: str
    id: str | None = None
    roles: list[str] = []
    groups: list[str] = []
    scopes: list[str] = []
    tenant: str | None = None
    expires_at: float | None = None

    @field_validator("key_sha256")
    @classmethod
    def _hex(cls, value: str) -> str:
        if not re.fullmatch(r"[0-9a-fA-F]{64}", value):
            raise ValueError("must be 64 hex digits (sha256 of the key)")
        return value.lower()


class _Claims(_Model):
    subject_claim: str = "sub"
    roles_claim: str | None = "roles"
    groups_claim: str | None = "groups"
    tenant_claim: str | None = None
    scopes_claim: str | None = "scope"
    amr_claim: str = "amr"
    mfa_amr_values: list[str] = sorted(DEFAULT_MFA_AMR)
    mfa_acr_values: list[str] = []
    attribute_claims: dict[str, str] = {}

    def mapping(self) -> ClaimMapping:
        return ClaimMapping(
            subject=self.subject_claim,
            roles=self.roles_claim,
            groups=self.groups_claim,
            tenant=self.tenant_claim,
            scopes=self.scopes_claim,
            amr=self.amr_claim,
            mfa_amr=frozenset(self.mfa_amr_values),
            mfa_acr=frozenset(self.mfa_acr_values),
            attributes=dict(self.attribute_claims),
        )


class _Network(_Model):
    allow_insecure_loopback: bool = False
    allow_private_addresses: bool = False
    fetch_timeout: Duration = 5.0
    max_response_bytes: int = Field(default=512 * 1024, gt=0)

    def fetcher(self) -> SafeFetcher:
        return SafeFetcher(
            FetchPolicy(
                allow_insecure_loopback=self.allow_insecure_loopback,
                allow_private_addresses=self.allow_private_addresses,
                timeout=self.fetch_timeout,
                max_bytes=self.max_response_bytes,
            )
        )


class JWTConfig(_Claims, _Network):
    """``[[authn.jwt]]``: one trusted issuer. Exactly one of jwks_file, jwks_url, discovery."""

    issuer: str = Field(min_length=1)
    audience: str | list[str]
    algorithms: list[str]
    jwks_file: str | None = None
    jwks_url: str | None = None
    discovery: bool = False
    leeway: Duration = 30.0
    required_claims: list[str] = []
    max_token_bytes: int = Field(default=16 * 1024, gt=0, le=64 * 1024)
    jwks_cache_ttl: Duration = 600.0
    jwks_min_refetch: Duration = 30.0
    jwks_max_stale: Duration = 3600.0

    @field_validator("algorithms")
    @classmethod
    def _algs(cls, value: list[str]) -> list[str]:
        return list(check_algorithms(value))

    @field_validator("audience")
    @classmethod
    def _aud(cls, value: str | list[str]) -> str | list[str]:
        if not value or (isinstance(value, list) and not all(value)):
            raise ValueError("audience must not be empty")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> JWTConfig:
        given = [n for n, v in (("jwks_file", self.jwks_file), ("jwks_url", self.jwks_url)) if v]
        if self.discovery:
            given.append("discovery")
        if len(given) != 1:
            raise ValueError("set exactly one of jwks_file, jwks_url or discovery = true")
        return self


class IntrospectionConfig(_Claims, _Network):
    """``[[authn.introspection]]``: RFC 7662 endpoint and our client credentials."""

    endpoint: str
    client_id: str = Field(min_length=1)
    client_secret: str | None = None
    client_secret_env: str | None = None
    client_auth: Literal["client_secret_basic", "client_secret_post"] = "client_secret_basic"
    audience: str | list[str] | None = None
    issuer: str | None = None
    cache_ttl: Duration = 60.0

    @model_validator(mode="after")
    def _secret(self) -> IntrospectionConfig:
        if (self.client_secret is None) == (self.client_secret_env is None):
            raise ValueError("set exactly one of client_secret or client_secret_env")
        return self

    def secret(self) -> str:
        if self.client_secret is not None:
            return self.client_secret
        assert self.client_secret_env is not None
        value = os.environ.get(self.client_secret_env)
        if not value:
            raise ConfigError(
                f"environment variable {self.client_secret_env} is not set", field="client_secret_env"
            )
        return value


class AnonymousConfig(_Model):
    subject: str = "anonymous"
    roles: list[str] = []
    groups: list[str] = []
    tenant: str | None = None


class OAuthConfig(_Model):
    """``[authn.oauth]``: what the HTTP integration advertises (RFC 9728)."""

    issuer_url: str
    resource_server_url: str
    required_scopes: list[str] = []
    service_documentation_url: str | None = None


class LockoutConfig(_Model):
    max_failures: int = Field(default=5, ge=1)
    source_max_failures: int = Field(default=20, ge=1)
    account_max_failures: int = Field(default=50, ge=1)
    window: Duration = 900.0
    base_lock: Duration = 30.0
    max_lock: Duration = 3600.0
    account_max_lock: Duration = 300.0
    known_source_memory: Duration = 30 * 86400.0


class PasswordsConfig(_Model):
    """``[authn.passwords]``: local users (login endpoint and ``mcp-guard login``)."""

    users_file: str = "users.json"
    require_totp: bool = True
    min_length: int = Field(default=12, ge=8)
    hash: Literal["argon2id", "scrypt"] | None = None
    lockout: LockoutConfig = LockoutConfig()
    #: Public URL of the step-up page the portal serves (its path is where it is mounted): a
    #: rule's ``step_up`` then sends callers there instead of only refusing.
    step_up_url: str | None = None

    @field_validator("step_up_url")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/]+/", value):
            raise ValueError(
                "an absolute http(s) URL with a path, e.g. 'https://guard.example/login/step-up'"
            )
        return value


class IssuerConfig(_Model):
    """``[authn.issuer]``: the tokens we issue after a login."""

    keys_dir: str = ".mcp-guard/issuer-keys"
    issuer: str = "mcp-guard"
    audience: str = "mcp-guard"
    ttl: Duration = Field(default=900.0)
    scopes: list[str] = []

    @field_validator("ttl")
    @classmethod
    def _ttl(cls, value: float) -> float:
        if not 30 <= value <= 86400:
            raise ValueError("ttl must be between 30s and 24h")
        return value


class AuthnSettings(_Model):
    """The whole ``[authn]`` table."""

    api_keys: list[ApiKeyConfig] = []
    stored_api_keys: bool = True
    jwt: list[JWTConfig] = []
    introspection: list[IntrospectionConfig] = []
    anonymous: AnonymousConfig | None = None
    oauth: OAuthConfig | None = None
    passwords: PasswordsConfig | None = None
    issuer: IssuerConfig | None = None
    cache_size: int = Field(default=10_000, ge=0)
    cache_max_ttl: Duration = 300.0
    revocation_refresh: Duration = 2.0
    max_credential_bytes: int = Field(default=MAX_CREDENTIAL_BYTES, gt=0, le=64 * 1024)


def resolve_path(base_dir: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base_dir / path


def _jwt(cfg: JWTConfig, index: int, base_dir: Path) -> JWTAuthenticator:
    keys: KeySource
    if cfg.jwks_file:
        path = resolve_path(base_dir, cfg.jwks_file)
        try:
            keyset = KeySet(load_jwks_file(path), cfg.algorithms)
        except ValueError as exc:
            raise ConfigError(str(exc), file=str(path)) from None
        if not len(keyset):
            raise ConfigError(
                f"no key usable with {', '.join(cfg.algorithms)}",
                file=str(path),
                field=f"authn.jwt[{index}].jwks_file",
            )
        keys = StaticKeys(keyset)
    else:
        fetcher = cfg.fetcher()
        keys = RemoteKeys(
            cfg.jwks_url,
            cfg.algorithms,
            fetcher,
            discovery_issuer=cfg.issuer if cfg.discovery else None,
            cache_ttl=cfg.jwks_cache_ttl,
            min_refetch_interval=cfg.jwks_min_refetch,
            max_stale=cfg.jwks_max_stale,
        )
    return JWTAuthenticator(
        cfg.issuer,
        cfg.audience,
        cfg.algorithms,
        keys,
        claims=cfg.mapping(),
        leeway=cfg.leeway,
        required_claims=cfg.required_claims,
        max_token_bytes=cfg.max_token_bytes,
    )


def build_authentication(
    settings: AuthnSettings, store: StateStore, base_dir: Path, *, auditor: Auditor | None = None
) -> AuthenticatorChain:
    """Order: API keys, our issued tokens, JWT issuers, introspection (DESIGN section 3)."""
    authenticators: list[Authenticator] = []
    configured = [
        ConfiguredKey(
            sha256=k.key_sha256,
            subject=k.subject,
            roles=tuple(k.roles),
            groups=tuple(k.groups),
            scopes=tuple(k.scopes),
            tenant=k.tenant,
            expires_at=k.expires_at,
            id=k.id,
        )
        for k in settings.api_keys
    ]
    if configured or settings.stored_api_keys:
        authenticators.append(ApiKeyAuthenticator(configured, store if settings.stored_api_keys else None))
    issuer_cfg = issuer_settings(settings)
    if issuer_cfg is not None:
        authenticators.append(build_issuer(issuer_cfg, base_dir).authenticator())
    for index, cfg in enumerate(settings.jwt):
        authenticators.append(_jwt(cfg, index, base_dir))
    for cfg_i in settings.introspection:
        authenticators.append(
            IntrospectionAuthenticator(
                cfg_i.endpoint,
                cfg_i.client_id,
                cfg_i.secret(),
                fetcher=cfg_i.fetcher(),
                client_auth=cfg_i.client_auth,
                claims=cfg_i.mapping(),
                audience=cfg_i.audience,
                issuer=cfg_i.issuer,
                cache_ttl=cfg_i.cache_ttl,
            )
        )
    anonymous = None
    if settings.anonymous is not None:
        a = settings.anonymous
        anonymous = Principal(
            subject=a.subject,
            roles=frozenset(a.roles),
            groups=frozenset(a.groups),
            tenant=a.tenant,
            auth_method="anonymous",
        )
    return AuthenticatorChain(
        authenticators,
        anonymous,
        cache_size=settings.cache_size,
        max_ttl=settings.cache_max_ttl,
        revocations=RevocationList(store, refresh_interval=settings.revocation_refresh),
        auditor=auditor,
        max_credential_bytes=settings.max_credential_bytes,
    )


def issuer_settings(settings: AuthnSettings) -> IssuerConfig | None:
    """The ``[authn.issuer]`` in force: the table, else its defaults when ``[authn.passwords]`` is
    configured (logins issue tokens, so the guard must accept them), else None (no issued tokens)."""
    if settings.issuer is not None:
        return settings.issuer
    return IssuerConfig() if settings.passwords is not None else None


def build_issuer(cfg: IssuerConfig, base_dir: Path) -> TokenIssuer:
    from .issuer import TokenIssuer

    return TokenIssuer(
        resolve_path(base_dir, cfg.keys_dir),
        issuer=cfg.issuer,
        audience=cfg.audience,
        ttl=cfg.ttl,
        scopes=cfg.scopes,
    )


def build_login_service(
    settings: AuthnSettings, store: StateStore, base_dir: Path, *, auditor: Auditor | None = None
) -> LoginService | None:
    """The :class:`~mcp_guard.authn.login.LoginService` for ``[authn.passwords]`` + ``[authn.issuer]``
    (its defaults when the table is absent, as :func:`build_authentication` accepts them),
    or None when passwords are not configured."""
    from .lockout import Lockout, LockoutPolicy
    from .login import LoginService
    from .users import UsersFile

    issuer_cfg = issuer_settings(settings)
    if settings.passwords is None or issuer_cfg is None:
        return None
    p = settings.passwords
    policy = LockoutPolicy(**p.lockout.model_dump())
    return LoginService(
        UsersFile(resolve_path(base_dir, p.users_file)),
        build_issuer(issuer_cfg, base_dir),
        Lockout(store, policy),
        store,
        require_totp=p.require_totp,
        auditor=auditor,
        hash_scheme=p.hash,
    )


# -- reading a guard config file for the CLI -------------------------------------------------------


def _toml_line(text: str, path: tuple[str | int, ...]) -> int | None:
    """Best-effort line of a field in TOML text (first occurrence of its last key)."""
    for part in reversed(path):
        if isinstance(part, str):
            pattern = re.compile(
                rf"^\s*\"?{re.escape(part)}\"?\s*=|^\s*\[+\s*[\w.]*\b{re.escape(part)}\s*\]+", re.M
            )
            match = pattern.search(text)
            if match:
                return text.count("\n", 0, match.start()) + 1
    return None


def validation_to_config_error(
    exc: ValidationError, file: str, text: str, prefix: str = "authn"
) -> ConfigError:
    first = exc.errors()[0]
    loc = tuple(first["loc"])
    field = ".".join([prefix, *(f"[{p}]" if isinstance(p, int) else str(p) for p in loc)]).replace(".[", "[")
    return ConfigError(first["msg"], file=file, line=_toml_line(text, loc), field=field)


def load_config_file(path: Path) -> tuple[AuthnSettings, str, Path]:
    """Read ``[authn]`` and ``[guard] state`` of a guard config: (settings, state URL, base dir)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", file=str(path)) from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None)
        raise ConfigError(f"invalid TOML: {exc}", file=str(path), line=line) from None
    guard = document.get("guard", {})
    state = guard.get("state", "sqlite:///.mcp-guard/state.db") if isinstance(guard, dict) else None
    if not isinstance(state, str):
        raise ConfigError("must be a string URL", file=str(path), field="guard.state")
    try:
        settings = AuthnSettings.model_validate(document.get("authn", {}))
    except ValidationError as exc:
        raise validation_to_config_error(exc, str(path), text) from None
    return settings, state, path.resolve().parent
