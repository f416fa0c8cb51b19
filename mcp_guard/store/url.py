"""Choose and open a state store from the URL in ``[guard] state``.

``memory://`` keeps state in this process; ``sqlite:///PATH`` is the embedded
default (three slashes then the path: ``sqlite:///.mcp-guard/state.db`` is
relative to ``base_dir``, ``sqlite:////var/lib/x.db`` is absolute);
``redis://[user:password@]host:port/db`` (or ``rediss://`` for TLS) is for
many replicas. Opening is cheap and does no network I/O: a Redis store
connects on first use.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from ..errors import ConfigError
from ..protocols import StateStore
from .memory import MemoryStore

_SQLITE_OPTIONS = {"poll": "poll_interval", "busy_timeout": "busy_timeout", "retention": "retention"}
_REDIS_FLOATS = {"socket_timeout": "socket_timeout", "connect_timeout": "connect_timeout"}
_PREFIX_RE = re.compile(r"^[A-Za-z0-9_.:-]{0,64}$")
_USERINFO_RE = re.compile(r"^([^:/?#]*://)[^/?#]*@")


def _redacted(url: str) -> str:
    """The URL without the credentials of its authority, safe to put in an error message."""
    return _USERINFO_RE.sub(r"\1***@", url)


def _float_options(
    query: str, allowed: dict[str, str], *, field: str, shown: str
) -> tuple[dict[str, float], dict[str, str]]:
    floats: dict[str, float] = {}
    other: dict[str, str] = {}
    for name, raw in parse_qsl(query, keep_blank_values=True, strict_parsing=False):
        if name in allowed:
            try:
                value = float(raw)
            except ValueError:
                raise ConfigError(
                    f"option {name!r} must be a number, got {raw!r} in {shown}", field=field
                ) from None
            if not value > 0 or value == float("inf"):
                raise ConfigError(f"option {name!r} must be a positive number in {shown}", field=field)
            floats[allowed[name]] = value
        else:
            other[name] = raw
    return floats, other


def open_store(url: str, base_dir: Path | None = None, *, field: str = "state") -> StateStore:
    """Return the store ``url`` names; raise :class:`ConfigError` naming ``field`` when it is invalid."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(
            "empty state store URL; use memory://, sqlite:///PATH or redis://HOST:PORT/DB", field=field
        )
    scheme, sep, _ = url.partition("://")
    scheme = scheme.lower()
    if not sep:
        raise ConfigError(
            f"{_redacted(url)!r} is not a URL; use memory://, sqlite:///PATH or redis://HOST:PORT/DB",
            field=field,
        )
    if scheme == "memory":
        if url[len("memory://") :] not in ("", "/"):
            raise ConfigError(f"memory:// takes no path or options, got {url!r}", field=field)
        return MemoryStore()
    if scheme == "sqlite":
        return _open_sqlite(url, base_dir, field)
    if scheme in ("redis", "rediss"):
        return _open_redis(url, field)
    raise ConfigError(
        f"unknown state store scheme {scheme!r} in {_redacted(url)!r}; use memory, sqlite or redis",
        field=field,
    )


def _open_sqlite(url: str, base_dir: Path | None, field: str) -> StateStore:
    from .sqlite import SQLiteStore

    rest = url[len("sqlite://") :]
    if not rest.startswith("/"):
        raise ConfigError(
            f"sqlite URL needs three slashes before the path (sqlite:///PATH), got {url!r}", field=field
        )
    raw_path, _, query = rest[1:].partition("?")
    if not raw_path or raw_path.endswith("/"):
        raise ConfigError(f"sqlite URL names no database file: {url!r}", field=field)
    if "\x00" in raw_path:
        raise ConfigError(f"sqlite path contains a NUL character: {url!r}", field=field)
    options, unknown = _float_options(query, _SQLITE_OPTIONS, field=field, shown=url)
    if unknown:
        raise ConfigError(
            f"unknown sqlite option(s) {', '.join(sorted(unknown))} in {url!r}; known: poll, busy_timeout, "
            "retention",
            field=field,
        )
    path = Path(raw_path).expanduser()
    if not path.is_absolute():
        path = (base_dir if base_dir is not None else Path.cwd()) / path
    try:
        return SQLiteStore(
            path,
            poll_interval=options.get("poll_interval", 0.2),
            busy_timeout=options.get("busy_timeout", 5.0),
            retention=options.get("retention", 600.0),
        )
    except OSError as exc:
        raise ConfigError(
            f"cannot create the state store file {path}: {exc.strerror or exc}", field=field
        ) from None
    except Exception as exc:  # sqlite3.Error and friends: report, never a traceback
        raise ConfigError(f"cannot open sqlite state store {path}: {exc}", field=field) from None


def _open_redis(url: str, field: str) -> StateStore:
    shown = _redacted(url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"invalid redis URL {shown!r}: {exc}", field=field) from None
    if not parts.hostname:
        raise ConfigError(f"redis URL names no host: {shown!r}", field=field)
    if port == 0:
        raise ConfigError(f"redis URL port must be 1-65535: {shown!r}", field=field)
    db = parts.path.lstrip("/")
    if db and (not db.isascii() or not db.isdigit()):
        raise ConfigError(f"redis database must be a number (redis://HOST:PORT/DB), got {db!r}", field=field)
    floats, other = _float_options(parts.query, _REDIS_FLOATS, field=field, shown=shown)
    kwargs: dict[str, Any] = dict(floats)
    max_connections = other.pop("max_connections", None)
    if max_connections is not None:
        if not (max_connections.isascii() and max_connections.isdigit() and int(max_connections) > 0):
            raise ConfigError(
                f"option 'max_connections' must be a positive integer in {shown!r}", field=field
            )
        kwargs["options"] = {"max_connections": int(max_connections)}
    prefix = other.pop("prefix", None)
    if prefix is not None:
        if not _PREFIX_RE.match(prefix):
            raise ConfigError(
                f"redis key prefix must match [A-Za-z0-9_.:-]{{0,64}}, got {prefix!r}", field=field
            )
        kwargs["prefix"] = prefix
    if other:
        raise ConfigError(
            f"unknown redis option(s) {', '.join(sorted(other))} in {shown!r}; known: prefix, "
            "socket_timeout, connect_timeout, max_connections",
            field=field,
        )
    try:
        from .redis import RedisStore
    except ImportError as exc:
        raise ConfigError(
            f"redis state store needs the redis package: pip install 'mcp-guard[redis]' ({exc})", field=field
        ) from None
    clean = urlunsplit(parts._replace(query="", fragment=""))
    return RedisStore(clean, **kwargs)
