"""The ``[audit]`` table of the guard config, and a minimal reader for ``--config FILE``.

The guard's full config model composes :class:`AuditSettings`; the CLI only
needs ``[guard] audit`` and ``[audit]``, so it reads those two itself.
Relative paths are resolved against the config file's directory (or the
current directory for embedded defaults) by :meth:`AuditSettings.resolve`.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from ..errors import ConfigError
from .keys import KeyRing, load_key_file, parse_key_spec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_DIR = ".mcp-guard"
DEFAULT_URL = f"sqlite:///{DEFAULT_DIR}/audit.db"
DEFAULT_KEY_ENV = "MCP_GUARD_AUDIT_KEY"


class AuditSettings(BaseModel):
    """Options of the audit pipeline (``[audit]`` in guard.toml); every field has a safe default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Inline keys (``[ID:]HEX[,...]``); prefer ``key_file`` or the environment.
    key: SecretStr | None = None
    #: Key ring file; default ``.mcp-guard/audit.key``, created (0600) on first use.
    key_file: Path | None = None
    #: Environment variable holding keys when neither ``key`` nor ``key_file`` is set.
    key_env: str = DEFAULT_KEY_ENV
    #: Where the chain head is pinned; default ``audit.anchor`` beside the key file.
    anchor_file: Path | None = None
    #: ``deny``: no audit, no access (buffer full or sinks down refuse requests). ``continue``: keep serving.
    on_unavailable: Literal["deny", "continue"] = "deny"
    #: Commit each event before the response (``record_sync``); zero loss even on SIGKILL.
    sync: bool = False
    buffer_size: int = Field(default=100_000, ge=1)
    batch_size: int = Field(default=1000, ge=1, le=100_000)
    #: Seconds between background flushes.
    flush_interval: float = Field(default=0.05, gt=0, le=60)
    #: Seconds between attempts to deliver spilled events to failing sinks.
    retry_interval: float = Field(default=1.0, gt=0, le=3600)
    #: Local JSONL file that holds chained events while sinks fail; default ``.mcp-guard/audit.spill.jsonl``.
    spill_file: Path | None = None
    #: Argument paths masked in every event (in addition to policy ``redact`` obligations).
    redact_fields: tuple[str, ...] = ()
    #: Also run the sanitizer's secret detectors (``mcp_guard.sanitize.redact``) when installed;
    #: the audit trail's own detectors always run.
    shared_detectors: bool = True

    def resolve(self, base_dir: Path) -> AuditSettings:
        """A copy with every path absolute (relative ones taken from ``base_dir``) and defaults filled in."""
        base = base_dir.resolve()
        key_file = _abs(self.key_file, base) if self.key_file else base / DEFAULT_DIR / "audit.key"
        anchor = _abs(self.anchor_file, base) if self.anchor_file else key_file.parent / "audit.anchor"
        spill = _abs(self.spill_file, base) if self.spill_file else base / DEFAULT_DIR / "audit.spill.jsonl"
        return self.model_copy(update={"key_file": key_file, "anchor_file": anchor, "spill_file": spill})

    def key_ring(self, base_dir: Path, create: bool) -> KeyRing:
        """Keys from inline config, an explicit key file, the environment, or the default file, in order."""
        resolved = self.resolve(base_dir)
        if self.key is not None:
            return parse_key_spec(self.key.get_secret_value(), "[audit] key")
        assert resolved.key_file is not None
        if self.key_file is None:
            env = os.environ.get(self.key_env)
            if env:
                return parse_key_spec(env, f"${self.key_env}")
        return load_key_file(resolved.key_file, create=create)


def _abs(path: Path, base: Path) -> Path:
    path = path.expanduser()
    return path if path.is_absolute() else base / path


@dataclass(frozen=True, slots=True)
class AuditConfig:
    """What the audit CLI needs from a guard config file."""

    urls: list[str]
    settings: AuditSettings
    base_dir: Path


def _line_of(text: str, table: str, key: str) -> int | None:
    in_table = False
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line.startswith("["):
            in_table = line.strip("[] ") == table
        elif in_table and line.split("=", 1)[0].strip() == key:
            return n
    return None


def load_audit_config(path: Path | None) -> AuditConfig:
    """``[guard] audit`` and ``[audit]`` of a guard config (embedded defaults when ``path`` is None)."""
    if path is None:
        return AuditConfig([DEFAULT_URL], AuditSettings(), Path.cwd())
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config: {exc.strerror}", file=where) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"\(at line (\d+)", str(exc))
        line = getattr(exc, "lineno", None) or (int(found.group(1)) if found else None)
        raise ConfigError(str(exc).split(" (at line")[0], file=where, line=line) from None
    guard = data.get("guard", {})
    if not isinstance(guard, dict):
        raise ConfigError("must be a table", file=where, field="guard")
    urls: Any = guard.get("audit", [DEFAULT_URL])
    if isinstance(urls, str):
        urls = [urls]
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        raise ConfigError(
            "must be a list of URLs", file=where, line=_line_of(text, "guard", "audit"), field="guard.audit"
        )
    raw: Any = data.get("audit", {})
    if not isinstance(raw, dict):
        raise ConfigError("must be a table", file=where, field="audit")
    try:
        settings = AuditSettings.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [str(p) for p in err["loc"]]
        raise ConfigError(
            err["msg"],
            file=where,
            line=_line_of(text, "audit", loc[0]) if loc else None,
            field=".".join(["audit", *loc]),
        ) from None
    return AuditConfig(list(urls), settings, path.resolve().parent)
