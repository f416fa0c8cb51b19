"""Choosing a store from ``[guard] state``: good URLs open, bad ones name the field and the mistake."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_guard.errors import ConfigError
from mcp_guard.store import MemoryStore, RedisStore, SQLiteStore, open_store


def test_memory() -> None:
    assert isinstance(open_store("memory://"), MemoryStore)


async def test_sqlite_relative_to_base_dir_creates_parents(tmp_path: Path) -> None:
    store = open_store("sqlite:///.mcp-guard/state.db", base_dir=tmp_path)
    assert isinstance(store, SQLiteStore)
    assert store.path == tmp_path / ".mcp-guard" / "state.db"
    assert store.path.exists()
    await store.aclose()


async def test_sqlite_relative_to_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///sub/s.db")
    assert isinstance(store, SQLiteStore)
    assert store.path == tmp_path / "sub" / "s.db"
    await store.aclose()


async def test_sqlite_absolute_and_options(tmp_path: Path) -> None:
    store = open_store(
        f"sqlite:///{tmp_path}/abs.db?poll=0.05&busy_timeout=1&retention=60", base_dir=Path("/nope")
    )
    assert isinstance(store, SQLiteStore)
    assert store.path == tmp_path / "abs.db"
    assert store.poll_interval == 0.05
    await store.aclose()


def test_redis_urls_open_without_connecting() -> None:
    assert isinstance(open_store("redis://127.0.0.1:1/0"), RedisStore)
    assert isinstance(
        open_store(
            "redis://user:pw@cache.internal:6380/3?prefix=prod:&socket_timeout=0.5&max_connections=50"
        ),
        RedisStore,
    )
    assert isinstance(open_store("rediss://cache.internal"), RedisStore)


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("", "empty"),
        ("state.db", "not a URL"),
        ("postgres://db/x", "unknown state store scheme"),
        ("memory://x", "takes no path"),
        ("sqlite://state.db", "three slashes"),
        ("sqlite:///", "names no database file"),
        ("sqlite:///dir/", "names no database file"),
        ("sqlite:///s.db?poll=fast", "must be a number"),
        ("sqlite:///s.db?poll=0", "positive"),
        ("sqlite:///s.db?pool=1", "unknown sqlite option"),
        ("redis://:6379/0", "no host"),
        ("redis://h:99999/0", "invalid redis URL"),
        ("redis://h:6379/zero", "database must be a number"),
        ("redis://h:6379/0?prefix=a b", "key prefix"),
        ("redis://h:6379/0?db=1", "unknown redis option"),
        ("redis://h:6379/0?socket_timeout=-1", "positive"),
        ("redis://h:6379/0?max_connections=0", "positive integer"),
    ],
)
def test_bad_urls_name_field_and_problem(url: str, fragment: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        open_store(url, base_dir=tmp_path, field="guard.state")
    assert info.value.field == "guard.state"
    assert fragment in str(info.value)
    assert str(info.value).startswith("guard.state: ")


def test_password_never_appears_in_errors() -> None:
    with pytest.raises(ConfigError) as info:
        open_store("redis://admin:hunter2@h:6379/0?bogus=1")
    assert "hunter2" not in str(info.value)


def test_unwritable_sqlite_location_is_a_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ConfigError, match="state"):
        open_store("sqlite:///file/sub/state.db", base_dir=tmp_path)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=40),
        st.builds(
            lambda s, rest: s + rest,
            st.sampled_from(["memory://", "redis://", "rediss://", "foo://"]),
            st.text(max_size=30),
        ),
    )
)
def test_any_string_opens_a_store_or_raises_config_error(url: str) -> None:
    """Never a traceback of another kind (sqlite URLs are left out: they would create files)."""
    try:
        store = open_store(url)
    except ConfigError:
        return
    assert isinstance(store, (MemoryStore, RedisStore))


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=30).filter(lambda s: not s.startswith(("/", "~")) and ".." not in s))
def test_any_sqlite_url_opens_or_raises_config_error(
    tmp_path_factory: pytest.TempPathFactory, rest: str
) -> None:
    base = tmp_path_factory.mktemp("u")
    try:
        store = open_store("sqlite:///" + rest, base_dir=base)
    except ConfigError:
        return
    assert isinstance(store, SQLiteStore)
    import asyncio

    asyncio.run(store.aclose())
