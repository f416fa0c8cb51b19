"""``guard.toml``: the one configuration file of a guarded server and of the portal.

Models are strict (unknown keys are errors: a typo in a security setting must
not be silently ignored) and every error names the file, line and field.
Relative paths are relative to the config file, so a config directory can be
moved as a whole.
"""

from __future__ import annotations

import contextlib
import ipaddress
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ._toml import locate, read_file, validation_error
from .errors import ConfigError
from .sanitize.policy import SanitizeConfig, SanitizePolicy

DEFAULT_STATE = "sqlite:///.mcp-guard/state.db"
DEFAULT_AUDIT = "sqlite:///.mcp-guard/audit.db"


class _Strict(BaseModel):
    #: ``strict``: no coercion of scalars (``port = "8790"`` is an error, not 8790); an integer is
    #: still accepted where a float is expected.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class GuardSection(_Strict):
    mode: Literal["enforce", "shadow"] = "enforce"
    server: str | None = None
    policy: str | list[str] | None = None
    #: Seconds between checks of the policy files for changes (0 = only explicit reloads).
    policy_poll: float = Field(2.0, ge=0)
    #: Condition functions the policy calls, as ``module:attr`` (modules found next to guard.toml first).
    policy_functions: list[str] = Field(default_factory=list)
    state: str = DEFAULT_STATE
    audit: list[str] = Field(default_factory=lambda: [DEFAULT_AUDIT])
    inspect_lists: bool | None = None
    inspect_results: bool | None = None
    max_params_bytes: int | None = 4 * 1024 * 1024
    max_arguments_bytes: int | None = 1024 * 1024
    max_result_bytes: int | None = 16 * 1024 * 1024
    #: Pending approval requests one caller may have at once (a new one past it is refused).
    max_pending_approvals: int = Field(20, ge=1)
    #: A span per request and request metrics through OpenTelemetry's global providers
    #: (extra ``otel``; ``docs/observability.md``).
    opentelemetry: bool = False

    def policy_paths(self) -> list[str]:
        if self.policy is None:
            return []
        return [self.policy] if isinstance(self.policy, str) else list(self.policy)


class ListenSection(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(8787, ge=0, le=65535)
    path: str = "/mcp"
    allow_public_bind: bool = False
    allowed_hosts: list[str] = Field(default_factory=list)
    tls_certfile: str | None = None
    tls_keyfile: str | None = None
    #: Reverse proxies (IP addresses or CIDR networks) whose ``X-Forwarded-For`` and
    #: ``X-Forwarded-Proto`` are believed. Empty (the default): never, so the audited source
    #: address and the policy's ``principal.ip`` are always the connecting peer's.
    trusted_proxies: list[str] = Field(default_factory=list)
    #: Seconds an idle keep-alive connection stays open between requests.
    keep_alive_timeout: int = Field(5, ge=1)
    #: Seconds a client has to send a request's headers (from connecting or from the previous
    #: response) and, from then, its whole body; a slower connection is closed (slowloris).
    read_timeout: float = Field(30.0, gt=0)
    #: Open 2025-11-25 sessions in total; only authenticated callers open one.
    max_sessions: int = Field(1000, ge=1)
    #: Open 2025-11-25 sessions per principal (per source address for anonymous callers).
    max_sessions_per_principal: int = Field(32, ge=1)
    #: The HTTP/1.1 parser that serves requests: ``httptools`` (C, the ``fast`` extra), ``h11``,
    #: or ``auto`` (httptools when installed). Same timeouts and answers with either.
    http_parser: Literal["auto", "httptools", "h11"] = "auto"

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_networks(cls, value: list[str]) -> list[str]:
        out: list[str] = []
        for item in value:
            try:
                net = ipaddress.ip_network(item.strip(), strict=False)
            except ValueError:
                raise ValueError(
                    f"{item!r} is not an IP address or CIDR network (a wildcard is not accepted: "
                    "name the proxies)"
                ) from None
            # One spelling per entry, as uvicorn parses it (it would take "10.0.0.1/8" as a name).
            out.append(str(net.network_address) if net.num_addresses == 1 else str(net))
        return out

    def server_options(self) -> dict[str, Any]:
        """The uvicorn settings these keys stand for.

        Forwarded headers are honoured only from ``trusted_proxies``: uvicorn's own
        default believes them from any loopback peer, which lets a local caller choose
        the address that policy and audit see.
        """
        return {
            "proxy_headers": bool(self.trusted_proxies),
            "forwarded_allow_ips": ",".join(self.trusted_proxies),
            "timeout_keep_alive": self.keep_alive_timeout,
        }


class UpstreamSection(_Strict):
    """One ``[[servers]]`` entry: an upstream MCP server behind the portal."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    prefix: str | None = None
    timeout: float = Field(30.0, gt=0)
    #: ``subject`` / ``tenant``: serve this upstream only with the caller's own stored secrets
    #: (``mcp-guard servers credentials set``), never with a shared connection.
    credentials: Literal["shared", "subject", "tenant"] = "shared"
    #: Give each caller a private upstream session, so the upstream can call back (sampling,
    #: elicitation, roots) to exactly that caller at any time. Without it, what the upstream
    #: asks during a call on the shared session still reaches that call's caller when the
    #: portal can tell whose call it is, and is refused otherwise.
    callbacks: bool = False

    @model_validator(mode="after")
    def _one_transport(self) -> UpstreamSection:
        if (self.command is None) == (self.url is None):
            raise ValueError(
                "give exactly one of `command` (stdio upstream) or `url` (streamable HTTP upstream)"
            )
        return self

    @property
    def effective_prefix(self) -> str:
        return f"{self.name}__" if self.prefix is None else self.prefix


class PortalSection(_Strict):
    """``[portal]``: settings of ``mcp-guard serve`` beyond ``[listen]`` and ``[[servers]]``."""

    #: AES-256 key file sealing per-user upstream credentials (created by
    #: ``mcp-guard servers credentials set``); ``MCP_GUARD_SECRETS_KEY`` overrides it.
    secrets_key_file: str = ".mcp-guard/secrets.key"
    #: Ed25519 key file signing every request to URL upstreams (lockdown); unset = no lockdown.
    lockdown_key_file: str | None = None
    #: Hosts URL upstreams registered at run time may point at (SSRF guard).
    allowed_upstream_hosts: list[str] = Field(default_factory=lambda: ["127.0.0.1", "localhost", "::1"])
    page_size: int = Field(100, ge=1)
    #: Seconds an idle per-user upstream session (a stdio process) is kept.
    private_idle: float = Field(300.0, gt=0)
    #: Caller sessions (for stdio: processes) per upstream: per subject or tenant, and in all.
    private_per_principal: int = Field(4, ge=1)
    private_max: int = Field(64, ge=1)
    #: Serve Prometheus metrics on ``/metrics`` (extra ``metrics``); ``/healthz`` and ``/readyz``
    #: are always served.
    metrics: bool = False
    #: ``/metrics`` without a credential (e.g. scraped only from inside a private network).
    metrics_public: bool = False
    #: Forward tool calls, prompts, resource reads and completions to URL upstreams as plain
    #: JSON-RPC POSTs instead of through an SDK client session (docs/portal.md).
    forward: bool = True
    #: Answer eligible requests on known 2025-11-25 sessions in the HTTP request's own task, outside
    #: the SDK's session transport (the "fast lane", docs/portal.md); everything else is unchanged.
    fast_lane: bool = True
    #: Calls one caller may have running on one upstream at once, in this process; past it a call
    #: is refused as rate-limited, so one caller cannot fill an upstream's connection pool. 0: off.
    max_in_flight_per_caller: int = Field(32, ge=0)


class ConsoleSection(_Strict):
    """``[console]``: the administrator's web pages at ``/admin`` of ``mcp-guard serve`` (docs/console.md)."""

    #: Serve the console on the portal's listener; off, every ``/admin`` path is a 404.
    enabled: bool = True
    #: Roles (after the policy's role inheritance) whose API key signs in; anyone else gets 403.
    admin_roles: list[str] = Field(default_factory=lambda: ["admin"], min_length=1)
    #: Seconds a console session lives without a request; then the administrator signs in again.
    idle_timeout: float = Field(900.0, gt=0)
    max_age: float = Field(43200.0, gt=0)
    #: Console sessions one administrator may have open at once; a new sign-in ends the oldest.
    max_sessions_per_admin: int = Field(5, ge=1)


class SanitizeSection(SanitizePolicy):
    """``[sanitize]``: the default verdict actions, and ``[sanitize.servers.NAME]`` overrides.

    A server's table only names what differs; the rest comes from the
    top-level keys, so ``[sanitize.servers.legacy] on_flag = "strip"`` keeps
    the default ``on_block``.
    """

    servers: dict[str, SanitizePolicy] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _inherit(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("servers"), dict):
            return data
        base = {k: v for k, v in data.items() if k != "servers"}
        servers = {
            name: {**base, **table} if isinstance(table, dict) else table
            for name, table in data["servers"].items()
        }
        return {**data, "servers": servers}

    def to_config(self) -> SanitizeConfig:
        default = SanitizePolicy.model_validate(self.model_dump(exclude={"servers"}))
        return SanitizeConfig(default=default, servers=dict(self.servers))


class GuardConfig(_Strict):
    guard: GuardSection = Field(default_factory=lambda: GuardSection())
    authn: dict[str, Any] = Field(default_factory=dict)
    audit: dict[str, Any] = Field(default_factory=dict)
    listen: ListenSection = Field(default_factory=lambda: ListenSection())
    servers: list[UpstreamSection] = Field(default_factory=list)
    sanitize: SanitizeSection = Field(default_factory=lambda: SanitizeSection())
    portal: PortalSection = Field(default_factory=lambda: PortalSection())
    console: ConsoleSection = Field(default_factory=lambda: ConsoleSection())
    #: Anomaly detection over the audit trail (``mcp_guard.audit.anomaly.AnomalySettings``).
    anomalies: dict[str, Any] = Field(default_factory=dict)

    #: Directory relative paths resolve against (set by :func:`load_config`).
    base_dir: Path = Field(default_factory=Path.cwd, exclude=True)
    source: str = Field("<config>", exclude=True)

    @field_validator("servers")
    @classmethod
    def _unique_names(cls, servers: list[UpstreamSection]) -> list[UpstreamSection]:
        seen: set[str] = set()
        for s in servers:
            if s.name in seen:
                raise ValueError(f"duplicate server name {s.name!r}")
            seen.add(s.name)
        return servers

    def resolve(self, path: str) -> Path:
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    def resolve_url(self, url: str) -> str:
        """Make ``sqlite:///rel`` and ``jsonl:///rel`` URLs relative to the config file's directory."""
        for scheme in ("sqlite:///", "jsonl:///"):
            if url.startswith(scheme):
                rest = url[len(scheme) :]
                if not rest.startswith("/"):
                    return scheme + str(self.base_dir / rest)
        return url


def load_config(path: str | Path) -> GuardConfig:
    """Read and validate a guard config file; raise :class:`ConfigError` with file/line/field."""
    p = Path(path)
    text, data = read_file(p)
    try:
        config = GuardConfig.model_validate({**data, "base_dir": p.resolve().parent, "source": str(p)})
    except ValidationError as exc:
        raise validation_error(exc, str(p), text, model=GuardConfig) from None
    check_sections(config, text)
    return config


def check_sections(config: GuardConfig, text: str | None = None) -> None:
    """Validate ``[authn]``, ``[audit]`` and ``[anomalies]`` with their own models, so a mistake
    there is reported at load time with its file, line and field instead of failing later during
    assembly."""
    from .audit.anomaly.settings import AnomalySettings
    from .audit.config import AuditSettings
    from .authn.config import AuthnSettings

    for name, model in (("authn", AuthnSettings), ("audit", AuditSettings), ("anomalies", AnomalySettings)):
        table = getattr(config, name)
        if not table:
            continue
        try:
            model.model_validate(table)
        except ValidationError as exc:
            raise validation_error(exc, config.source, text, prefix=(name,), model=model) from None


def check_policy_files(config: GuardConfig) -> None:
    """Load the ``[guard] policy`` files as the guard would at start-up.

    A file that does not exist is reported at the guard.toml line naming it; an invalid policy
    with its own file, line and field (:class:`~mcp_guard.errors.PolicyError`).
    """
    paths = [config.resolve(p) for p in config.guard.policy_paths()]
    if not paths:
        return
    for raw, path in zip(config.guard.policy_paths(), paths, strict=True):
        if not path.is_file():
            line = None
            if config.source.endswith(".toml"):
                with contextlib.suppress(OSError):
                    line = locate(Path(config.source).read_text(encoding="utf-8"), ("guard", "policy"))
            raise ConfigError(
                f"policy file {raw!r} does not exist (looked for {path})",
                file=config.source,
                line=line,
                field="guard.policy",
            )
    from .policy import load_policy
    from .policy.functionrefs import import_functions

    functions = import_functions(config.guard.policy_functions, config.base_dir, "guard.policy_functions")
    load_policy(*paths, functions=functions or None)


def config_from_dict(
    data: dict[str, Any], base_dir: Path | None = None, source: str = "<dict>"
) -> GuardConfig:
    try:
        config = GuardConfig.model_validate({**data, "base_dir": base_dir or Path.cwd(), "source": source})
    except ValidationError as exc:
        raise validation_error(exc, source, None, model=GuardConfig) from None
    check_sections(config)
    return config


__all__ = [
    "DEFAULT_AUDIT",
    "DEFAULT_STATE",
    "ConfigError",
    "ConsoleSection",
    "GuardConfig",
    "GuardSection",
    "ListenSection",
    "PortalSection",
    "SanitizeSection",
    "UpstreamSection",
    "check_policy_files",
    "config_from_dict",
    "load_config",
]
