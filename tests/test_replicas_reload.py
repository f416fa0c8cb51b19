"""Policy reloads and pin approvals reach every replica through the state store.

An explicit reload on one replica (``reload_everywhere``, ``mcp-guard policy
reload``) is published on the store and every replica following it re-reads
its own policy files at once, long before its file poll would; an invalid new
policy keeps the old one in force everywhere. A pin approved through one
replica drops the other replicas' pin cache, so they serve the approved item
within a second instead of after the cache expires. Redis and SQLite stores,
with replicas as separate processes or separate guards with their own
connections.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest
from mcp import Client

from mcp_guard.cli.main import main
from mcp_guard.guard import Guard
from mcp_guard.model import AccessRequest, Principal
from mcp_guard.policy import CompiledPolicy, ReloadingPolicy
from mcp_guard.policy.reloading import RELOAD_CHANNEL
from mcp_guard.protocols import PolicyEngine
from mcp_guard.sanitize.pins import PINS_CHANNEL, PinStore
from mcp_guard.store import MemoryStore

from .helpers import notes_server
from .redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[1]
WHO = Principal("alice", roles=("analyst",))

ADD_ONLY = """
version = 1
default = "deny"
[[rules]]
id = "add"
effect = "allow"
servers = ["notes"]
tools = ["add"]
"""
ADD_AND_SEARCH = (
    ADD_ONLY
    + """
[[rules]]
id = "search"
effect = "allow"
servers = ["notes"]
tools = ["search_notes"]
"""
)
INVALID = ADD_AND_SEARCH.replace('id = "search"\neffect = "allow"', 'id = "search"\neffect = "permit"')


@dataclass(frozen=True)
class Shared:
    """One state store shared by the replicas of a test."""

    url: str
    redis_port: int | None = None
    prefix: str = ""

    async def wait_subscribed(self, channel: str, count: int) -> None:
        """Return once ``count`` subscribers follow ``channel`` (SQLite: once they surely started)."""
        if self.redis_port is None:
            await asyncio.sleep(0.6)  # a SQLite subscription starts at its first poll
            return
        import redis.asyncio as aioredis

        client = aioredis.Redis(host="127.0.0.1", port=self.redis_port)
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                [(_, subscribers)] = await client.pubsub_numsub(self.prefix + "c:" + channel)
                if int(subscribers) >= count:
                    return
                await asyncio.sleep(0.02)
            raise AssertionError(f"{count} subscribers never followed {channel}")
        finally:
            await client.aclose()


@pytest.fixture(params=["redis", "sqlite"])
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> Shared:
    if request.param == "sqlite":
        return Shared(f"sqlite:///{tmp_path / 'shared-state.db'}")
    redis: RedisServer = request.getfixturevalue("redis_server")  # skips without redis-server
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    return Shared(f"{redis.url}?prefix={prefix}", redis.port, prefix)


def write_config(directory: Path, state: str, policy: str = ADD_ONLY, *, inspect_lists: bool = False) -> Path:
    """A replica's own directory: its copy of the policy, its audit trail, the shared store."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "policy.toml").write_text(policy)
    (directory / "guard.toml").write_text(
        "[guard]\n"
        'server = "notes"\n'
        'policy = "policy.toml"\n'
        f'state = "{state}"\n'
        f"inspect_lists = {'true' if inspect_lists else 'false'}\n"
        'audit = ["sqlite:///audit.db"]\n'
        "[audit]\n"
        'key_file = "audit.key"\n'
        '[authn.anonymous]\nsubject = "alice"\nroles = ["analyst"]\n'
    )
    return directory / "guard.toml"


def rewrite(path: Path, text: str) -> None:
    before = path.stat().st_mtime_ns
    path.write_text(text)
    os.utime(path, ns=(before + 10**9, before + 10**9))


def allows(policy: PolicyEngine, tool: str) -> bool:
    decision = policy.decide(WHO, AccessRequest("tools/call", "call", "notes", "tool", tool))
    assert not hasattr(decision, "__await__")
    return bool(decision.allowed)  # type: ignore[union-attr]


def live(guard: Guard) -> ReloadingPolicy:
    """The guard's reloading policy, polling its files only once an hour from now on.

    Only a reload published through the store can then reach it within the test.
    """
    policy = guard.policy
    assert isinstance(policy, ReloadingPolicy) and policy.store is not None
    policy.stop()
    policy.interval = 3600.0
    policy.start()
    return policy


def audit_rows(directory: Path) -> list[dict[str, object]]:
    with sqlite3.connect(directory / "audit.db") as conn:
        return [json.loads(r[0]) for r in conn.execute("SELECT record FROM audit_events ORDER BY seq")]


#: Replica B: calls ``search_notes`` every 10 ms and prints each change of outcome with the wall
#: clock; a line on stdin stops it, and it prints its policy's last reload error as JSON.
REPLICA = """
import asyncio, json, sys, time
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_guard.guard import Guard
from tests.helpers import notes_server

async def main():
    guard = Guard.from_config(sys.argv[1])
    policy = guard.policy
    policy.stop()
    policy.interval = 3600.0  # the file poll cannot be what brings the new policy in time
    policy.start()
    server = notes_server()
    guard.protect(server, read_env=False)
    stop = asyncio.ensure_future(asyncio.to_thread(sys.stdin.readline))
    state = None
    async with Client(server, mode="legacy") as client:
        while not stop.done():
            try:
                await client.call_tool("search_notes", {"query": "x"})
                now = "allowed"
            except MCPError as exc:
                now = f"denied:{exc.code}"
            if now != state:
                state = now
                print(now, time.time(), flush=True)
            await asyncio.sleep(0.01)
    error = policy.last_error
    print(json.dumps({"last_error": None if error is None else str(error)}), flush=True)
    await guard.aclose()

asyncio.run(main())
"""


async def test_reload_through_one_replica_reaches_another_process_within_1s(
    shared: Shared, tmp_path: Path
) -> None:
    cfg_a = write_config(tmp_path / "a", shared.url)
    cfg_b = write_config(tmp_path / "b", shared.url)
    proc = subprocess.Popen(
        [sys.executable, "-c", REPLICA, str(cfg_b)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdin is not None
    stdout = proc.stdout
    try:
        async with Guard.from_config(cfg_a) as a:
            policy_a = live(a)
            line = await asyncio.wait_for(asyncio.to_thread(stdout.readline), 60)
            assert line.startswith("denied:-32003 "), line + (proc.stderr.read() if proc.stderr else "")
            await shared.wait_subscribed(RELOAD_CHANNEL, 2)  # A and B follow the channel

            # Both replicas' files change (config management); one explicit reload, through A.
            for replica in ("a", "b"):
                rewrite(tmp_path / replica / "policy.toml", ADD_AND_SEARCH)
            requested = time.time()
            assert await policy_a.reload_everywhere() is True
            assert allows(a.policy, "search_notes")
            line = await asyncio.wait_for(asyncio.to_thread(stdout.readline), 10)
            word, when = line.split()
            assert word == "allowed"
            assert float(when) - requested < 1.0, f"replica B took {float(when) - requested:.2f}s"

            # An invalid new policy: refused on both, the previous one stays in force on both.
            for replica in ("a", "b"):
                rewrite(tmp_path / replica / "policy.toml", INVALID)
            assert await policy_a.reload_everywhere() is False
            assert policy_a.last_error is not None and policy_a.last_error.field == "rules[1].effect"
            assert allows(a.policy, "search_notes")
            await asyncio.sleep(1.0)
            out, err = await asyncio.to_thread(proc.communicate, "stop\n", 30)
        # B never changed its outcome (no "denied" line) and refused the new files itself.
        lines = out.splitlines()
        assert len(lines) == 1, (lines, err[-2000:])
        report = json.loads(lines[0])
        assert report["last_error"] is not None and "rules[1].effect" in report["last_error"]
    finally:
        proc.kill()
        proc.wait(10)
    rows = audit_rows(tmp_path / "b")
    refused = [r for r in rows if r.get("method") == "policy/reload" and r["decision"] == "error"]
    assert refused and "previous policy stays in force" in str(refused[0]["reasons"])


async def test_reload_cli_reaches_running_guards(shared: Shared, tmp_path: Path) -> None:
    cfg_a = write_config(tmp_path / "a", shared.url)
    cfg_b = write_config(tmp_path / "b", shared.url)
    async with Guard.from_config(cfg_a) as a, Guard.from_config(cfg_b) as b:
        policy_a, policy_b = live(a), live(b)
        await shared.wait_subscribed(RELOAD_CHANNEL, 2)
        for replica in ("a", "b"):
            rewrite(tmp_path / replica / "policy.toml", ADD_AND_SEARCH)
        requested = time.monotonic()
        assert await asyncio.to_thread(main, ["policy", "reload", "--config", str(cfg_a)]) == 0
        while not (allows(policy_a, "search_notes") and allows(policy_b, "search_notes")):
            assert time.monotonic() - requested < 1.0, "a replica did not reload within 1 s"
            await asyncio.sleep(0.01)

        # The command validates first: an invalid policy is named and nothing is published.
        for replica in ("a", "b"):
            rewrite(tmp_path / replica / "policy.toml", INVALID)
        assert await asyncio.to_thread(main, ["policy", "reload", "--config", str(cfg_a)]) == 2
        await asyncio.sleep(0.6)
        assert policy_a.last_error is None and policy_b.last_error is None
        # --no-check publishes anyway; each replica refuses and keeps what it has.
        argv = ["policy", "reload", "--config", str(cfg_a), "--no-check"]
        assert await asyncio.to_thread(main, argv) == 0
        deadline = time.monotonic() + 1.0
        while policy_a.last_error is None or policy_b.last_error is None:
            assert time.monotonic() < deadline, "a replica did not try the new files within 1 s"
            await asyncio.sleep(0.01)
        assert allows(policy_a, "search_notes") and allows(policy_b, "search_notes")


async def test_pin_approved_through_one_replica_is_served_by_the_other_within_1s(
    shared: Shared, tmp_path: Path
) -> None:
    cfg_a = write_config(tmp_path / "a", shared.url, ADD_AND_SEARCH, inspect_lists=True)
    cfg_b = write_config(tmp_path / "b", shared.url, ADD_AND_SEARCH, inspect_lists=True)
    async with Guard.from_config(cfg_a) as a, Guard.from_config(cfg_b) as b:
        assert isinstance(a.pins, PinStore) and isinstance(b.pins, PinStore)
        assert a.pins.store is not b.pins.store and b.pins.ttl >= 5.0
        # The approved version of ``add`` is an older one: the server now serves another.
        await a.pins.pin("notes", "tool", [{"name": "add", "description": "Add.", "inputSchema": {}}])
        await shared.wait_subscribed(PINS_CHANNEL, 2)
        server = notes_server()
        b.protect(server, read_env=False)
        async with Client(server, mode="legacy") as client:
            names = {t.name for t in (await client.list_tools()).tools}
            assert "add" not in names and "search_notes" in names  # withheld until approved
            approved = time.monotonic()
            assert await a.pins.approve("notes", "tool", "add") == [("tool", "add")]
            while "add" not in {t.name for t in (await client.list_tools()).tools}:
                assert time.monotonic() - approved < 1.0, "replica B still withholds the approved tool"
                await asyncio.sleep(0.01)


async def test_followers_on_one_memory_store(tmp_path: Path) -> None:
    store = MemoryStore()
    reloaded: dict[str, list[CompiledPolicy]] = {"a": [], "b": []}
    errors: list[object] = []

    def policy(name: str, path: Path) -> ReloadingPolicy:
        path.write_text(ADD_ONLY)
        return ReloadingPolicy(
            path, interval=3600, store=store, on_reload=reloaded[name].append, on_error=errors.append
        )

    base = tmp_path
    a, b = policy("a", base / "a.toml"), policy("b", base / "b.toml")
    pins_a, pins_b = PinStore(store), PinStore(store)
    async with anyio.create_task_group() as tg:
        for follower in (a.run, b.run, pins_a.run, pins_b.run):
            await tg.start(follower)
        await anyio.sleep(0.05)  # the subscriptions start at their first iteration
        rewrite(base / "a.toml", ADD_AND_SEARCH)
        rewrite(base / "b.toml", ADD_AND_SEARCH)
        assert await a.request_reload() is True
        with anyio.fail_after(2):
            while not reloaded["b"]:
                await anyio.sleep(0.01)
        await anyio.sleep(0.05)
        assert len(reloaded["a"]) == 1  # its own message is not a second reload
        assert allows(b, "search_notes") and not errors

        item = {"name": "add", "description": "v1"}
        await pins_a.pin("notes", "tool", [item])
        assert (await pins_b.check("notes", "tool", [item])).allowed == [item]
        assert ("notes", "tool") in pins_b._cache
        await pins_a.pin("notes", "tool", [{"name": "add", "description": "v2"}])
        with anyio.fail_after(2):
            while ("notes", "tool") in pins_b._cache:
                await anyio.sleep(0.01)
        tg.cancel_scope.cancel()


async def test_without_a_store_reload_everywhere_is_local(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(ADD_ONLY)
    policy = ReloadingPolicy(path)
    rewrite(path, ADD_AND_SEARCH)
    assert await policy.reload_everywhere() is True and allows(policy, "search_notes")
    with anyio.move_on_after(0.05) as scope:
        await policy.run()  # nothing to follow: waits until cancelled
    assert scope.cancelled_caught


@pytest.fixture
async def memory_guard(tmp_path: Path) -> AsyncIterator[Guard]:
    async with Guard.from_config(write_config(tmp_path, "memory://")) as guard:
        yield guard


async def test_a_guard_with_a_store_follows_both_channels(memory_guard: Guard) -> None:
    assert memory_guard.store is not None
    await asyncio.sleep(0.05)
    # the memory store shows its subscribers: the policy and the pins follow their channels
    subscribers = memory_guard.store._subscribers  # type: ignore[attr-defined]
    assert subscribers[RELOAD_CHANNEL] and subscribers[PINS_CHANNEL]
