"""SIGKILL during load in sync mode: every acknowledged call has its event, and the chain verifies."""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path

import pytest

from mcp_guard.audit import read_anchor, store_rows, verify_rows
from mcp_guard.audit.keys import load_key_file

from .helpers import kill_after_acks

CHILD = """
import sys, anyio, pathlib
from mcp_guard.audit import open_auditor, AuditSettings
from mcp_guard.model import AuditEvent

async def main():
    audit = open_auditor(["sqlite:///audit.db"], AuditSettings(sync=True), pathlib.Path(sys.argv[1]))
    async def worker(w):
        i = 0
        while True:
            ev = AuditEvent(method="tools/call", decision="allow", principal={"subject": f"u{w}"},
                            arguments={"i": i, "text": "x" * 200})
            await audit.record_sync(ev)
            sys.stdout.write(ev.id + "\\n")
            sys.stdout.flush()
            i += 1
    async with anyio.create_task_group() as tg:
        for w in range(8):
            tg.start_soon(worker, w)

anyio.run(main)
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
@pytest.mark.parametrize("acks_before_kill", [1, 400])
def test_sigkill_in_sync_mode_loses_no_acknowledged_event(tmp_path: Path, acks_before_kill: int) -> None:
    acked = kill_after_acks(CHILD, tmp_path, acks_before_kill)
    with sqlite3.connect(tmp_path / "audit.db") as conn:
        stored = {r[0] for r in conn.execute("SELECT id FROM audit_events")}
    assert set(acked) <= stored
    keys = load_key_file(tmp_path / ".mcp-guard" / "audit.key")
    anchor = read_anchor(tmp_path / ".mcp-guard" / "audit.anchor", keys)
    result = verify_rows(store_rows(tmp_path / "audit.db"), keys, anchor)
    assert result.ok, result.message
    assert result.count == len(stored) >= len(acked)
