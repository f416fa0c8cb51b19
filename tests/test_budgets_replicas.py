"""Two guard processes sharing one real Redis charge one policy budget exactly.

Each replica is a separate Python process built with ``Guard.from_config``
from its own ``guard.toml`` (same policy, same Redis), serving concurrent
calls through the MCP middleware; together they must admit exactly what the
budget holds, and every refusal must be on record naming the budget.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from .redis_server import RedisServer

pytestmark = pytest.mark.redis
ROOT = Path(__file__).resolve().parents[1]
LIMIT = 151  # units: searches cost 3, adds 1

POLICY = f"""
version = 1
default = "deny"
[[rules]]
id = "notes"
effect = "allow"
servers = ["notes"]
tools = ["add", "search_notes"]
[[budgets]]
id = "daily-cost"
per = "tenant"
period = "1d"
limit = {LIMIT}
servers = ["notes"]
cost = {{ "search_*" = 3 }}
"""


def write_config(directory: Path, state: str, subject: str) -> Path:
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
        f'[authn.anonymous]\nsubject = "{subject}"\ntenant = "acme"\n'
    )
    path = directory / "guard.toml"
    path.write_text(text)
    return path


#: One replica: ``calls`` concurrent calls alternating search (3 units) and add (1 unit),
#: started together once both replicas are connected; prints the units admitted and the refusals as JSON.
REPLICA = """
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
    counts = {"units": 0, "allowed": 0, "refused": 0, "other": 0, "named": 0}
    todo = iter(range(calls))
    async with Client(server, mode="legacy") as client:
        async def worker():
            for i in todo:
                search = i % 2 == 0
                try:
                    if search:
                        await client.call_tool("search_notes", {"query": "q"})
                    else:
                        await client.call_tool("add", {"a": i, "b": 1})
                    counts["units"] += 3 if search else 1
                    counts["allowed"] += 1
                except MCPError as exc:
                    if exc.code == -32029:
                        counts["refused"] += 1
                        data = exc.error.data or {}
                        named = data.get("budget") == "daily-cost" and data.get("limit") == LIMIT_VALUE
                        counts["named"] += named
                    else:
                        counts["other"] += 1
                        print(exc.code, exc.error.message, file=sys.stderr)
        await client.list_tools()
        # Start together: each replica says it is ready, then waits for the other.
        pathlib.Path(barrier, config.replace("/", "_")).touch()
        while len(list(pathlib.Path(barrier).iterdir())) < 2:
            await asyncio.sleep(0.01)
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    await guard.aclose()
    print(json.dumps(counts))

asyncio.run(main())
""".replace("LIMIT_VALUE", str(LIMIT))


def audit_rows(directory: Path) -> list[dict[str, object]]:
    with sqlite3.connect(directory / "audit.db") as conn:
        return [json.loads(r[0]) for r in conn.execute("SELECT record FROM audit_events ORDER BY seq")]


def test_two_guard_processes_never_overspend_one_tenant_budget(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    state = redis_server.url + "?prefix=budgets:"
    configs = [write_config(tmp_path / f"replica{i}", state, f"user{i}") for i in range(2)]
    barrier = tmp_path / "ready"
    barrier.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", REPLICA, str(cfg), "150", "15", str(barrier)],
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
    units = sum(r["units"] for r in results)
    # 300 calls want 600 units; only 151 exist. Whatever the interleaving, no unit is spent twice,
    # and no add (1 unit) is refused while a unit is left: the budget ends between 149 and 151.
    assert LIMIT - 2 <= units <= LIMIT, results
    assert sum(r["other"] for r in results) == 0, results
    assert all(r["named"] == r["refused"] for r in results), results
    assert all(r["allowed"] > 0 for r in results), results  # both replicas really shared the budget
    for cfg, counts in zip(configs, results, strict=True):
        calls = [r for r in audit_rows(cfg.parent) if r["method"] == "tools/call"]
        denied = [r for r in calls if r["decision"] == "deny"]
        assert len(denied) == counts["refused"]
        assert all("budget 'daily-cost' exhausted" in str(r["reasons"]) for r in denied)
        assert all("tenant=acme" in str(r["reasons"]) for r in denied)
        assert all(r["error_code"] == -32029 for r in denied)
