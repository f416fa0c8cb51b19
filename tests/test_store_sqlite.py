"""The SQLite store shared by several processes: one limit, one file, exact."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from mcp_guard.errors import GuardUnavailable
from mcp_guard.store import SQLiteStore, open_store

from .redis_server import run_replicas


def test_two_processes_share_one_limit_exactly(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/fleet/state.db"  # absolute path: four slashes
    results = run_replicas(url, replicas=2, calls=120, concurrency=8, limit=50)
    assert sum(r["allowed"] for r in results) == 50
    assert sum(r["denied"] for r in results) == 190
    assert sum(r["error"] for r in results) == 0


async def test_change_in_one_process_reaches_another(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = SQLiteStore(path, poll_interval=0.05)
    script = f"""
import asyncio, time
from mcp_guard.store import SQLiteStore
async def main():
    store = SQLiteStore({str(path)!r}, poll_interval=0.05)
    async def listen():
        async for message in store.subscribe("revocations"):
            return message
    task = asyncio.create_task(listen())
    await asyncio.sleep(0.3)
    print("ready", flush=True)
    message = await asyncio.wait_for(task, 10)
    print(message, await store.sismember("revoked", "jti-9"), flush=True)
asyncio.run(main())
"""
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        await store.sadd("revoked", "jti-9")
        await store.publish("revocations", "jti-9")
        sent = time.monotonic()
        line = await asyncio.to_thread(proc.stdout.readline)
        assert time.monotonic() - sent < 1.0
        assert line.split() == ["jti-9", "True"]
    finally:
        proc.wait(10)
        await store.aclose()


async def test_waits_for_a_lock_held_elsewhere_without_blocking_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = SQLiteStore(path)
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.3, lambda: other.execute("COMMIT"))
    release.start()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    tick_task = asyncio.create_task(ticker())
    began = time.monotonic()
    decision = await store.hit("k", 1, 10)
    waited = time.monotonic() - began
    tick_task.cancel()
    release.join()
    other.close()
    await store.aclose()
    assert decision.allowed
    assert waited >= 0.25
    assert ticks >= 10  # the loop kept running while the write waited in a thread


async def test_a_lock_held_too_long_fails_closed(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = open_store(f"sqlite:///{path}?busy_timeout=0.2")
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        try:
            await store.hit("k", 5, 10)
        except GuardUnavailable as exc:
            assert "state store unavailable" in str(exc)
        else:
            raise AssertionError("a store that cannot write must refuse")
    finally:
        other.execute("ROLLBACK")
        other.close()
        await store.aclose()


async def test_closed_store_refuses(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    await store.aclose()
    await store.aclose()
    try:
        await store.get("x")
    except GuardUnavailable:
        pass
    else:
        raise AssertionError("closed store answered")


async def test_state_survives_reopening(tmp_path: Path) -> None:
    store = open_store("sqlite:///.mcp-guard/state.db", base_dir=tmp_path)
    await store.sadd("revoked", "k1")
    await store.set("pin", b"sha", ttl=100)
    await store.aclose()
    assert (tmp_path / ".mcp-guard" / "state.db").exists()
    again = open_store("sqlite:///.mcp-guard/state.db", base_dir=tmp_path)
    assert await again.sismember("revoked", "k1")
    assert await again.get("pin") == b"sha"
    await again.aclose()


async def test_expired_rows_are_purged(tmp_path: Path) -> None:
    clock = [100.0]
    store = SQLiteStore(tmp_path / "s.db", clock=lambda: clock[0])
    for i in range(50):
        await store.hit(f"k{i}", 5, 1.0)
        await store.set(f"v{i}", b"x", ttl=1.0)
    await store.hit("live", 5, 100.0)
    await store.hit("trimmed", 5, 1.0)
    clock[0] += 5
    await store.hit("trimmed", 5, 1.0)  # trims its own old entry
    clock[0] += 5
    for _ in range(2100):  # crosses the purge period
        await store.sadd("s", "m")
    conn = sqlite3.connect(tmp_path / "s.db")
    try:
        assert conn.execute("SELECT key FROM hits").fetchall() == [("live",)]
        assert conn.execute("SELECT key, n FROM hitcount").fetchall() == [("live", 1)]
        assert conn.execute("SELECT count(*) FROM kv").fetchone()[0] == 0
    finally:
        conn.close()
    assert (await store.hit("k0", 5, 1.0)).count == 1
    assert (await store.hit("live", 5, 100.0)).count == 2
    await store.aclose()


async def test_new_database_files_are_owner_only(tmp_path: Path) -> None:
    store = open_store("sqlite:///private/state.db", base_dir=tmp_path)
    await store.set("secret:x", b"k" * 32)
    for name in ("state.db", "state.db-wal", "state.db-shm"):
        mode = (tmp_path / "private" / name).stat().st_mode & 0o777
        assert mode == 0o600, (name, oct(mode))
    assert (tmp_path / "private").stat().st_mode & 0o777 == 0o700
    await store.aclose()
