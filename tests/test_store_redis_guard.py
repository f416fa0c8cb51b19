"""Whole guard replicas (config, policy ``[[limits]]``, authentication, audit) sharing one real Redis.

Each replica is a separate Python process built with ``Guard.from_config``
from the same ``guard.toml`` and serving calls through the MCP middleware, so
these tests cover the wiring as deployed, not just the store.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mcp_guard.authn.api_keys import create_api_key, revoke_api_key
from mcp_guard.guard import Guard

from .redis_server import RedisServer

pytestmark = pytest.mark.redis
ROOT = Path(__file__).resolve().parents[1]
LIMIT = 40

POLICY = f"""
version = 1
default = "deny"
[[rules]]
id = "notes-add"
effect = "allow"
servers = ["notes"]
tools = ["add"]
[[limits]]
id = "per-user-per-server"
per = ["subject", "server"]
requests = {LIMIT}
window = "1m"
servers = ["notes"]
"""


@pytest.fixture(scope="module")
def server(redis_server: RedisServer) -> RedisServer:
    return redis_server


def write_config(directory: Path, state: str, anonymous: bool) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "policy.toml").write_text(POLICY)
    text = (
        "[guard]\n"
        'server = "notes"\n'
        'policy = "policy.toml"\n'
        f'state = "{state}"\n'
        'audit = ["sqlite:///audit.db"]\n'
        "[audit]\n"
        'key_file = "audit.key"\n'
    )
    if anonymous:
        text += '[authn.anonymous]\nsubject = "alice"\nroles = ["analyst"]\n'
    path = directory / "guard.toml"
    path.write_text(text)
    return path


#: One replica: a guarded in-memory notes server; ``calls`` concurrent tools/call of ``add``,
#: started together on a file barrier (a wall-clock start time was too tight on a loaded machine);
#: prints the outcome counts as JSON.
LOAD_REPLICA = """
import asyncio, json, pathlib, sys
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_guard.guard import Guard
from tests.helpers import notes_server

async def main():
    config, calls, concurrency, barrier = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    guard = Guard.from_config(config)
    server = notes_server()
    guard.protect(server, read_env=False)
    counts = {"allowed": 0, "limited": 0, "other": 0, "retry_after_ok": 0}
    todo = iter(range(calls))
    async with Client(server, mode="legacy") as client:
        async def worker():
            for i in todo:
                try:
                    await client.call_tool("add", {"a": i, "b": 1})
                    counts["allowed"] += 1
                except MCPError as exc:
                    if exc.code == -32029:
                        counts["limited"] += 1
                        retry = (exc.error.data or {}).get("retryAfter")
                        counts["retry_after_ok"] += isinstance(retry, (int, float)) and 0 < retry <= 60
                    else:
                        counts["other"] += 1
                        print(exc.code, exc.error.message, file=sys.stderr)
        await client.list_tools()
        pathlib.Path(barrier, config.replace("/", "_")).touch()
        while len(list(pathlib.Path(barrier).iterdir())) < 2:
            await asyncio.sleep(0.01)
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    await guard.aclose()
    print(json.dumps(counts))

asyncio.run(main())
"""


def audit_rows(directory: Path) -> list[dict[str, object]]:
    with sqlite3.connect(directory / "audit.db") as conn:
        return [json.loads(r[0]) for r in conn.execute("SELECT record FROM audit_events ORDER BY seq")]


def test_two_guard_processes_enforce_one_policy_limit_exactly(server: RedisServer, tmp_path: Path) -> None:
    state = server.url + "?prefix=guards:"
    configs = [write_config(tmp_path / f"replica{i}", state, anonymous=True) for i in range(2)]
    barrier = tmp_path / "ready"
    barrier.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", LOAD_REPLICA, str(cfg), "150", "20", str(barrier)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for cfg in configs
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-3000:]
        results.append(json.loads(out))
    assert sum(r["allowed"] for r in results) == LIMIT, results
    assert sum(r["limited"] for r in results) == 300 - LIMIT, results
    assert sum(r["other"] for r in results) == 0, results
    assert all(r["retry_after_ok"] == r["limited"] for r in results), results
    assert all(r["allowed"] > 0 for r in results), results  # both replicas really shared the load
    # Every limited call is in its replica's audit trail, naming the limit.
    for cfg, counts in zip(configs, results, strict=True):
        calls = [r for r in audit_rows(cfg.parent) if r["method"] == "tools/call"]
        denied = [r for r in calls if r["decision"] == "deny"]
        assert len(denied) == counts["limited"]
        assert all("per-user-per-server" in str(r["reasons"]) for r in denied)
        assert all(r["error_code"] == -32029 for r in denied)
        assert sum(r["decision"] == "allow" for r in calls) == counts["allowed"]


#: A replica that keeps calling with one API key and reports each outcome with a timestamp.
REVOKE_REPLICA = """
import asyncio, sys, time
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_guard.guard import Guard
from tests.helpers import notes_server

async def main():
    guard = Guard.from_config(sys.argv[1])
    server = notes_server()
    guard.protect(server, credential=sys.argv[2], read_env=False)
    async with Client(server, mode="legacy") as client:
        ok = 0
        while True:
            try:
                await client.call_tool("add", {"a": 1, "b": 2})
                ok += 1
                if ok == 5:
                    print("ready", flush=True)
            except MCPError as exc:
                print("refused", exc.code, time.time(), flush=True)
                break
            await asyncio.sleep(0.01)
    await guard.aclose()

asyncio.run(main())
"""


async def test_key_revoked_through_one_replica_is_refused_by_the_other_within_1s(
    server: RedisServer, tmp_path: Path
) -> None:
    state = server.url + "?prefix=revoke:"
    cfg = write_config(tmp_path / "b", state, anonymous=False)
    mine = Guard.from_config(write_config(tmp_path / "a", state, anonymous=False))
    assert mine.store is not None
    key, record = await create_api_key(mine.store, "alice", roles=["analyst"])
    proc = subprocess.Popen(
        [sys.executable, "-c", REVOKE_REPLICA, str(cfg), key],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 60)
        assert line == "ready\n", proc.stderr.read() if proc.stderr else line
        revoked_at = time.time()
        assert await revoke_api_key(mine.store, record.id, mine.resolver.revocations)  # type: ignore[attr-defined]
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 10)
        word, code, when = line.split()
        assert (word, int(code)) == ("refused", -32001)
        assert float(when) - revoked_at < 1.0
        await asyncio.to_thread(proc.wait, 30)  # it closes its guard: the audit trail is flushed
    finally:
        proc.kill()
        proc.wait(10)
        await mine.aclose()
    # The refusal is in the other replica's audit trail, with the reason.
    refused = [r for r in audit_rows(tmp_path / "b") if r["decision"] == "deny"]
    assert any("revoked" in str(r["reasons"]) for r in refused), refused


#: A replica that checks the login lockout of alice from one address until it is locked.
LOCKOUT_REPLICA = """
import asyncio, sys, time
from mcp_guard.authn.lockout import Lockout
from mcp_guard.errors import RateLimited
from mcp_guard.store import open_store

async def main():
    lockout = Lockout(open_store(sys.argv[1]))
    await lockout.check("alice", "10.0.0.7")
    print("ready", flush=True)
    while True:
        try:
            await lockout.check("alice", "10.0.0.7")
        except RateLimited as exc:
            print("locked", exc.retry_after, time.time(), flush=True)
            break
        await asyncio.sleep(0.01)
    await lockout.store.aclose()

asyncio.run(main())
"""


async def test_lockout_earned_on_one_replica_holds_on_the_other_within_1s(server: RedisServer) -> None:
    from mcp_guard.authn.lockout import Lockout
    from mcp_guard.store import open_store

    url = server.url + "?prefix=lockout:"
    proc = subprocess.Popen(
        [sys.executable, "-c", LOCKOUT_REPLICA, url], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    store = open_store(url)
    try:
        assert proc.stdout is not None
        assert await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 30) == "ready\n"
        lockout = Lockout(store)
        for _ in range(lockout.policy.max_failures):
            await lockout.failure("alice", "10.0.0.7")
        locked_at = time.time()
        word, retry, when = (await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 10)).split()
        assert word == "locked" and float(retry) > 0
        assert float(when) - locked_at < 1.0
    finally:
        proc.kill()
        proc.wait(10)
        await store.aclose()
