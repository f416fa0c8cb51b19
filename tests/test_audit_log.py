"""The pipeline under load and failure: nothing lost, nothing silently dropped, the chain always verifies."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest

from mcp_guard.audit import (
    AuditLog,
    AuditSettings,
    SQLiteSink,
    open_auditor,
    read_anchor,
    store_rows,
    verify_rows,
)
from mcp_guard.audit.keys import KeyRing, load_key_file
from mcp_guard.audit.query import Filters, _sql
from mcp_guard.audit.sinks.sqlite import SCHEMA
from mcp_guard.errors import AuditUnavailable
from mcp_guard.model import AuditEvent

ROOT = Path(__file__).resolve().parents[1]


def event(i: int, subject: str = "alice", **kw: Any) -> AuditEvent:
    return AuditEvent(
        method="tools/call",
        decision="allow",
        session_id=f"s{i % 16}",
        principal={"subject": subject, "roles": ["analyst"]},
        server="db",
        kind="tool",
        target="query",
        arguments={"n": i, "sql": "select 1"},
        **kw,
    )


def check(base: Path, db: Path) -> tuple[int, str]:
    keys = load_key_file(base / ".mcp-guard" / "audit.key")
    anchor = read_anchor(base / ".mcp-guard" / "audit.anchor", keys)
    result = verify_rows(store_rows(db), keys, anchor)
    return result.count, result.message


async def test_16_sessions_10000_calls_then_graceful_shutdown(tmp_path: Path) -> None:
    audit = open_auditor(["sqlite:///audit.db"], AuditSettings(batch_size=500), tmp_path)
    ids: list[str] = []

    async def session(n: int) -> None:
        for i in range(625):
            ev = event(n * 1000 + i)
            ids.append(ev.id)
            audit.record(ev)
            if i % 50 == 0:
                await anyio.sleep(0)

    async with anyio.create_task_group() as tg:
        for n in range(16):
            tg.start_soon(session, n)
    await audit.aclose()
    count, message = check(tmp_path, tmp_path / "audit.db")
    assert (count, message) == (10_000, "ok: 10000 events")
    import sqlite3

    with sqlite3.connect(tmp_path / "audit.db") as conn:
        stored = {r[0] for r in conn.execute("SELECT id FROM audit_events")}
    assert stored == set(ids)


class FlakySink:
    """Wraps a real sink; fails while ``down`` is set."""

    def __init__(self, inner: SQLiteSink) -> None:
        self.inner = inner
        self.down = False
        self.failures = 0

    def write(self, records: Sequence[Mapping[str, Any]]) -> None:
        if self.down:
            self.failures += 1
            raise OSError("disk on fire")
        self.inner.write(records)

    def head(self) -> Any:
        return self.inner.head()

    def close(self) -> None:
        self.inner.close()


def make_log(tmp_path: Path, sink: Any, **kw: Any) -> AuditLog:
    keys = load_key_file(tmp_path / ".mcp-guard" / "audit.key", create=True)
    return AuditLog(
        sink,
        keys,
        anchor_path=tmp_path / ".mcp-guard" / "audit.anchor",
        spill_path=tmp_path / ".mcp-guard" / "spill.jsonl",
        flush_interval=0.005,
        retry_interval=0.02,
        **kw,
    )


def test_sink_failing_mid_run_loses_nothing_after_recovery(tmp_path: Path) -> None:
    sink = FlakySink(SQLiteSink(tmp_path / "audit.db"))
    audit = make_log(tmp_path, sink, on_unavailable="continue", batch_size=100)
    sent = []
    for i in range(3000):
        if i == 1000:
            audit.flush()
            sink.down = True
        if i == 2000:
            sink.down = False
        ev = event(i)
        audit.record(ev)
        sent.append(ev.id)
        if i % 200 == 0:
            time.sleep(0.01)
    audit.close()
    assert sink.failures > 0
    assert audit.stats()["dropped"] == 0
    assert check(tmp_path, tmp_path / "audit.db") == (3000, "ok: 3000 events")
    assert not (tmp_path / ".mcp-guard" / "spill.jsonl").exists()


def test_deny_mode_refuses_while_sinks_are_down_and_recovers(tmp_path: Path) -> None:
    sink = FlakySink(SQLiteSink(tmp_path / "audit.db"))
    audit = make_log(tmp_path, sink)
    audit.record(event(0))
    sink.down = True
    audit.record(event(1))  # accepted: nobody knows yet that the sink is down
    assert audit.flush() is False
    with pytest.raises(AuditUnavailable, match="failing"):
        audit.record(event(2))
    with pytest.raises(AuditUnavailable, match="failing"):
        audit.check_available()
    refusal = AuditEvent(method="tools/call", decision="deny", principal={"subject": "eve"})
    audit.record(refusal)  # refusals are still taken (spilled) during the outage
    sink.down = False
    assert audit.flush() is True
    audit.check_available()
    audit.record(event(3))
    audit.close()
    assert check(tmp_path, tmp_path / "audit.db") == (4, "ok: 4 events")


def test_deny_mode_refuses_when_buffer_full(tmp_path: Path) -> None:
    gate = threading.Event()

    class Slow(FlakySink):
        def write(self, records: Sequence[Mapping[str, Any]]) -> None:
            gate.wait(10)
            super().write(records)

    audit = make_log(tmp_path, Slow(SQLiteSink(tmp_path / "audit.db")), buffer_size=10, batch_size=1)
    audit.record(event(0))
    time.sleep(0.05)  # the flusher is now blocked inside write()
    for i in range(10):
        audit.record(event(i + 1))
    with pytest.raises(AuditUnavailable, match="buffer full"):
        audit.record(event(99))
    gate.set()
    audit.close()
    assert check(tmp_path, tmp_path / "audit.db") == (11, "ok: 11 events")


def test_continue_mode_counts_drops_in_the_trail(tmp_path: Path) -> None:
    gate = threading.Event()

    class Slow(FlakySink):
        def write(self, records: Sequence[Mapping[str, Any]]) -> None:
            gate.wait(10)
            super().write(records)

    audit = make_log(
        tmp_path,
        Slow(SQLiteSink(tmp_path / "audit.db")),
        buffer_size=5,
        batch_size=1,
        on_unavailable="continue",
    )
    audit.record(event(0))
    time.sleep(0.05)
    for i in range(8):
        audit.record(event(i + 1))  # 5 fit, 3 are dropped - and counted
    gate.set()
    audit.close()
    from mcp_guard.audit.query import Filters, query

    lifecycle = query(tmp_path / "audit.db", Filters(method="audit/dropped"))
    assert len(lifecycle) == 1 and "3 audit events dropped" in lifecycle[0]["reasons"][0]
    assert check(tmp_path, tmp_path / "audit.db") == (7, "ok: 7 events")


async def test_sync_mode_is_durable_on_return_and_group_commits(tmp_path: Path) -> None:
    audit = open_auditor(["sqlite:///audit.db"], AuditSettings(sync=True, flush_interval=5), tmp_path)
    assert audit.synchronous
    import sqlite3

    ev = event(1)
    await audit.record_sync(ev)
    with sqlite3.connect(tmp_path / "audit.db") as conn:
        assert conn.execute("SELECT id FROM audit_events").fetchall() == [(ev.id,)]

    async def one(i: int) -> None:
        await audit.record_sync(event(i))

    async with anyio.create_task_group() as tg:
        for i in range(200):
            tg.start_soon(one, i)
    await audit.aclose()
    await audit.aclose()  # idempotent
    assert check(tmp_path, tmp_path / "audit.db") == (201, "ok: 201 events")
    with pytest.raises(AuditUnavailable):
        audit.record(event(0))


async def test_sync_mode_refuses_when_the_sink_is_down(tmp_path: Path) -> None:
    sink = FlakySink(SQLiteSink(tmp_path / "audit.db"))
    audit = make_log(tmp_path, sink, sync=True)
    sink.down = True
    with pytest.raises(AuditUnavailable):
        await audit.record_sync(event(1))
    sink.down = False
    await anyio.sleep(0.05)
    audit.flush()
    await audit.record_sync(event(2))
    await audit.aclose()
    assert check(tmp_path, tmp_path / "audit.db") == (2, "ok: 2 events")


def test_restart_continues_the_chain_and_replays_spill(tmp_path: Path) -> None:
    sink = FlakySink(SQLiteSink(tmp_path / "audit.db"))
    audit = make_log(tmp_path, sink, on_unavailable="continue")
    for i in range(10):
        audit.record(event(i))
    audit.flush()
    sink.down = True
    for i in range(10, 15):
        audit.record(event(i))
    audit.close()  # five events stay in the spill file
    assert (tmp_path / ".mcp-guard" / "spill.jsonl").exists()
    again = make_log(tmp_path, SQLiteSink(tmp_path / "audit.db"))
    for i in range(15, 20):
        again.record(event(i))
    again.close()
    assert check(tmp_path, tmp_path / "audit.db") == (20, "ok: 20 events")


def test_normal_interpreter_exit_flushes_without_close(tmp_path: Path) -> None:
    code = (
        "import pathlib\n"
        "from mcp_guard.audit import open_auditor, AuditSettings\n"
        "from mcp_guard.model import AuditEvent\n"
        f"base = pathlib.Path({str(tmp_path)!r})\n"
        "a = open_auditor(['sqlite:///audit.db'], AuditSettings(flush_interval=30), base)\n"
        "for i in range(500):\n"
        "    a.record(AuditEvent(method='tools/call', decision='deny'))\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=60)
    assert check(tmp_path, tmp_path / "audit.db") == (500, "ok: 500 events")


def test_unserializable_event_is_still_recorded_without_content(tmp_path: Path) -> None:
    class Boom:
        def __repr__(self) -> str:
            raise RuntimeError("no")

    audit = make_log(tmp_path, SQLiteSink(tmp_path / "audit.db"))
    audit.record(AuditEvent(method="tools/call", decision="allow", arguments={"x": Boom()}))
    audit.close()
    from mcp_guard.audit.query import Filters, query

    (rec,) = query(tmp_path / "audit.db", Filters())
    assert rec["arguments"] == "[REDACTED]" and "serialization failed" in rec["reasons"][0]


def test_key_ring_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCP_GUARD_AUDIT_KEY", "old:" + "11" * 32 + ",new:" + "22" * 32)
    audit = open_auditor(["sqlite:///audit.db"], None, tmp_path)
    audit.record(event(1))
    audit.close()
    assert not (tmp_path / ".mcp-guard" / "audit.key").exists()
    keys = AuditSettings().key_ring(tmp_path, create=False)
    assert isinstance(keys, KeyRing) and keys.active.key_id == "new"
    anchor = read_anchor(tmp_path / ".mcp-guard" / "audit.anchor", keys)
    assert verify_rows(store_rows(tmp_path / "audit.db"), keys, anchor).ok


def test_audit_log_is_an_auditor_and_settings_are_validated(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from mcp_guard.errors import ConfigError
    from mcp_guard.protocols import Auditor

    audit = open_auditor(["logging://"], None, tmp_path)
    assert isinstance(audit, Auditor) and not audit.synchronous
    audit.close()
    with pytest.raises(ConfigError, match="at least one audit URL"):
        open_auditor([], None, tmp_path)
    with pytest.raises(ValidationError):
        AuditSettings.model_validate({"on_unavailable": "maybe"})
    resolved = AuditSettings(key_file=Path("keys/k"), spill_file=Path("/abs/spill")).resolve(tmp_path)
    assert resolved.key_file == tmp_path.resolve() / "keys" / "k"
    assert resolved.anchor_file == tmp_path.resolve() / "keys" / "audit.anchor"
    assert resolved.spill_file == Path("/abs/spill")


@pytest.mark.parametrize(
    ("filters", "index"),
    [
        (Filters(tenant="acme"), "audit_events_tenant"),
        (Filters(event_id="0190c3e0-0000-7000-8000-000000000000"), "audit_events_id"),
    ],
)
def test_the_console_s_tenant_and_event_lookups_use_an_index(
    tmp_path: Path, filters: Filters, index: str
) -> None:
    """A tenant admin's pages and an event's detail page must not scan the whole trail."""
    conn = sqlite3.connect(tmp_path / "plan.db")
    conn.executescript(SCHEMA)
    clause, args = _sql(filters)
    plan = " ".join(
        str(row) for row in conn.execute(f"EXPLAIN QUERY PLAN SELECT record FROM audit_events{clause}", args)
    )
    assert index in plan, plan
