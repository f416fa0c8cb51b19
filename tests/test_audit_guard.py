"""The audit trail behind a real guarded MCP server: every decision of every session, nothing lost.

These tests drive calls through the SDK client and the guard middleware (not
``AuditLog.record`` directly), so they prove that the integration records one
event per decision and that the pipeline keeps all of them under concurrency.
"""

from __future__ import annotations

import json
import signal
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from mcp_guard import errors
from mcp_guard.audit import AuditSettings, open_auditor, read_anchor, store_rows, verify_rows
from mcp_guard.audit.keys import load_key_file
from mcp_guard.guard import Guard
from mcp_guard.model import Principal

from .helpers import RolePolicy, kill_after_acks, notes_server

ANALYST = Principal("alice", roles=frozenset({"analyst"}))


def verify(base: Path) -> tuple[int, str]:
    keys = load_key_file(base / ".mcp-guard" / "audit.key")
    anchor = read_anchor(base / ".mcp-guard" / "audit.anchor", keys)
    result = verify_rows(store_rows(base / "audit.db"), keys, anchor)
    return result.count, result.message


def stored(base: Path, sql: str = "SELECT record FROM audit_events ORDER BY seq") -> list[dict[str, Any]]:
    with sqlite3.connect(base / "audit.db") as conn:
        return [json.loads(r[0]) for r in conn.execute(sql)]


async def test_10000_calls_from_16_sessions_through_the_guard(tmp_path: Path) -> None:
    auditor = open_auditor(["sqlite:///audit.db"], AuditSettings(), tmp_path)
    guard = Guard(
        policy=RolePolicy({"analyst": {"add"}}),
        auditor=auditor,
        anonymous=ANALYST,
        server="notes",
    )
    server = notes_server()
    guard.protect(server, read_env=False)
    outcomes: Counter[str] = Counter()

    async def session(n: int) -> None:
        async with Client(server, mode="legacy") as client:
            for i in range(625):
                if i % 25 == 0:  # one in 25 is refused by the policy: refusals are decisions too
                    with pytest.raises(MCPError) as info:
                        await client.call_tool("delete_notes", {"query": f"{n}-{i}"})
                    assert info.value.code == errors.ACCESS_DENIED
                    outcomes["deny"] += 1
                else:
                    result = await client.call_tool("add", {"a": n, "b": i})
                    assert result.structured_content == {"result": n + i}
                    outcomes["allow"] += 1

    async with anyio.create_task_group() as tg:
        for n in range(16):
            tg.start_soon(session, n)
    await guard.aclose()  # graceful shutdown: flushes everything still queued

    assert outcomes == {"allow": 9600, "deny": 400}
    count, message = verify(tmp_path)
    assert message == f"ok: {count} events"
    calls = [r for r in stored(tmp_path) if r["method"] == "tools/call"]
    assert len(calls) == 10_000
    assert Counter(r["decision"] for r in calls) == {"allow": 9600, "deny": 400}
    # Each call is recorded once, with its own arguments.
    args = {(r["arguments"]["a"], r["arguments"]["b"]) for r in calls if r["decision"] == "allow"}
    assert args == {(n, i) for n in range(16) for i in range(625) if i % 25}
    refused = {r["arguments"]["query"] for r in calls if r["decision"] == "deny"}
    assert refused == {f"{n}-{i}" for n in range(16) for i in range(0, 625, 25)}
    assert all(r["principal"]["subject"] == "alice" and r["server"] == "notes" for r in calls)
    assert auditor.stats()["dropped"] == 0


#: A guarded server in sync audit mode; prints each call's argument after the response arrived.
CHILD = """
import sys, anyio, pathlib
from mcp import Client
from mcp_guard.audit import open_auditor, AuditSettings
from mcp_guard.guard import Guard
from mcp_guard.model import Principal
from tests.helpers import RolePolicy, notes_server

async def main():
    base = pathlib.Path(sys.argv[1])
    auditor = open_auditor(["sqlite:///audit.db"], AuditSettings(sync=True), base)
    guard = Guard(policy=RolePolicy({"analyst": {"search_notes"}}), auditor=auditor,
                  anonymous=Principal("alice", roles=frozenset({"analyst"})), server="notes")
    server = notes_server()
    guard.protect(server, read_env=False)

    async def worker(w):
        async with Client(server, mode="legacy") as client:
            i = 0
            while True:
                query = f"w{w}-{i}"
                await client.call_tool("search_notes", {"query": query})
                sys.stdout.write(query + "\\n")
                sys.stdout.flush()
                i += 1

    async with anyio.create_task_group() as tg:
        for w in range(8):
            tg.start_soon(worker, w)

anyio.run(main)
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
def test_sigkill_of_a_guarded_server_in_sync_mode_keeps_every_answered_call(tmp_path: Path) -> None:
    acked = kill_after_acks(CHILD, tmp_path, 300)
    calls = stored(tmp_path)
    recorded = {r["arguments"]["query"] for r in calls if r["method"] == "tools/call"}
    missing = set(acked) - recorded
    assert not missing, f"{len(missing)} answered calls have no audit event"
    count, message = verify(tmp_path)
    assert message == f"ok: {count} events" and count == len(calls)
