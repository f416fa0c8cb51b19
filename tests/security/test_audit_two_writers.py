"""Several guard processes with one config share one SQLite audit store (docs/configuration.md).

Two real processes append concurrently: neither refuses a call (-32050), the chain stays one linear
chain that ``audit verify`` accepts with every event, and the anchor still catches removal of the
newest events. A spill file that cannot be written as it stands (written by a writer whose sequence
numbers another writer has since used) is reported by ``verify`` and re-chained, automatically on
start and by ``mcp-guard audit spill replay``.
"""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mcp_guard.audit import AuditSettings, load_audit_config, open_auditor
from mcp_guard.audit.chain import Chainer
from mcp_guard.audit.spill import Spill
from mcp_guard.cli.main import main
from mcp_guard.model import AuditEvent

CONFIG = """
[guard]
audit = ["sqlite:///.mcp-guard/audit.db"]

[audit]
flush_interval = 0.002
batch_size = 20
retry_interval = 0.05
sync = {sync}
"""

CHILD = """
import sys, time, pathlib, anyio
from mcp_guard.audit import load_audit_config, open_auditor
from mcp_guard.errors import AuditUnavailable
from mcp_guard.model import AuditEvent

config, n, name = pathlib.Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
cfg = load_audit_config(config)
audit = open_auditor(cfg.urls, cfg.settings, cfg.base_dir)
go = config.parent / "go"
while not go.exists():
    time.sleep(0.001)
refused = []

async def run():
    for i in range(n):
        ev = AuditEvent(method="tools/call", decision="allow", principal={"subject": name},
                        arguments={"i": i, "text": "x" * 100})
        try:
            audit.check_available()
            if audit.synchronous:
                await audit.record_sync(ev)
            else:
                audit.record(ev)
        except AuditUnavailable as exc:
            refused.append(str(exc))
        if i % 7 == 0:
            await anyio.sleep(0.001)

anyio.run(run)
audit.close()
print(len(refused), refused[:1], audit.stats(), flush=True)
sys.exit(1 if refused else 0)
"""


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out + out.err


def _config(tmp_path: Path, sync: bool = False) -> Path:
    config = tmp_path / "guard.toml"
    config.write_text(CONFIG.format(sync="true" if sync else "false"))
    return config


@pytest.mark.parametrize("sync", [False, True], ids=["batched", "sync"])
def test_two_processes_share_one_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sync: bool
) -> None:
    n = 150 if sync else 400
    config = _config(tmp_path, sync)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(config), str(n), name],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    time.sleep(0.5)  # both have opened the store and resumed the chain
    (tmp_path / "go").touch()
    outputs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, f"calls refused (-32050): {out}\n{err[-2000:]}"
    db = tmp_path / ".mcp-guard" / "audit.db"
    with sqlite3.connect(db) as conn:
        subjects = dict(
            conn.execute("SELECT subject, count(*) FROM audit_events GROUP BY subject").fetchall()
        )
    assert subjects == {"a": n, "b": n}
    assert not (tmp_path / ".mcp-guard" / "audit.spill.jsonl").exists()
    code, out = _cli(capsys, "audit", "verify", "--config", str(config))
    assert (code, out.strip()) == (0, f"ok: {2 * n} events")

    # The anchor still pins the newest event written by either process.
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM audit_events WHERE seq > ?", (2 * n - 3,))
    code, out = _cli(capsys, "audit", "verify", "--config", str(config))
    assert code == 1 and "newest events missing" in out, out


def _stale_spill(tmp_path: Path, stored: int, spilled: int) -> tuple[Path, Path]:
    """A store with ``stored`` events, and a spill written by a writer that never saw them."""
    config = _config(tmp_path)
    cfg = load_audit_config(config)
    audit = open_auditor(cfg.urls, cfg.settings, cfg.base_dir)
    for i in range(stored):
        audit.record(AuditEvent(method="tools/call", decision="allow", arguments={"stored": i}))
    audit.close()
    keys = cfg.settings.key_ring(cfg.base_dir, create=False)
    chainer = Chainer(keys)  # the other writer's view: an empty chain, so seq 1.. again
    records = [
        chainer.link({"id": f"spilled-{i}", "time": time.time(), "method": "tools/call", "decision": "allow"})
        for i in range(spilled)
    ]
    spill = cfg.settings.resolve(cfg.base_dir).spill_file
    assert spill is not None
    Spill(spill).append(records)
    return config, spill


def test_stale_spill_is_reported_by_verify_and_rechained_by_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, spill = _stale_spill(tmp_path, stored=5, spilled=3)
    code, out = _cli(capsys, "audit", "verify", "--config", str(config))
    assert code == 1, out
    assert "3 acknowledged events" in out and str(spill) in out, out

    code, out = _cli(capsys, "audit", "spill", "list", "--config", str(config))
    assert code == 0, out
    assert [ln.split()[0] for ln in out.splitlines()[:3]] == ["pending"] * 3, out
    assert "3 pending, 0 already stored, 0 rejected" in out, out

    code, out = _cli(capsys, "audit", "spill", "replay", "--config", str(config))
    assert code == 0, out
    assert "3 events re-chained" in out, out
    assert not spill.exists()

    code, out = _cli(capsys, "audit", "verify", "--config", str(config))
    assert (code, out.strip()) == (0, "ok: 8 events")
    with sqlite3.connect(tmp_path / ".mcp-guard" / "audit.db") as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM audit_events WHERE seq > 5 ORDER BY seq")]
    assert ids == ["spilled-0", "spilled-1", "spilled-2"]

    # Replaying again is a no-op, never a duplicate.
    Spill(spill).append([])
    code, out = _cli(capsys, "audit", "spill", "replay", "--config", str(config))
    assert code == 0, out
    code, out = _cli(capsys, "audit", "verify", "--config", str(config))
    assert (code, out.strip()) == (0, "ok: 8 events")


def test_restart_with_a_stale_spill_serves_and_rechains_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, spill = _stale_spill(tmp_path, stored=5, spilled=3)
    cfg = load_audit_config(config)
    audit = open_auditor(
        cfg.urls, AuditSettings(**{**cfg.settings.model_dump(), "retry_interval": 0.01}), cfg.base_dir
    )
    try:
        assert audit.flush(), audit.last_error
        audit.check_available()  # no -32050
        audit.record(AuditEvent(method="tools/call", decision="allow"))
        assert audit.flush()
    finally:
        audit.close()
    assert not spill.exists()
    code, out = _cli(capsys, "audit", "verify", "--config", str(config))
    assert (code, out.strip()) == (0, "ok: 9 events")


def test_tampered_spill_line_is_refused_loudly_and_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    config, spill = _stale_spill(tmp_path, stored=2, spilled=2)
    lines = spill.read_text().splitlines()
    spill.write_text(lines[0].replace('"allow"', '"deny"') + "\n" + lines[1] + "\n")
    cfg = load_audit_config(config)
    with caplog.at_level(logging.ERROR, logger="mcp_guard.audit"):
        audit = open_auditor(cfg.urls, cfg.settings, cfg.base_dir)
        try:
            assert audit.flush()
            audit.check_available()
        finally:
            audit.close()
    assert any(str(spill) in r.getMessage() and "MAC" in r.getMessage() for r in caplog.records), [
        r.getMessage() for r in caplog.records
    ]
    # The intact line was re-chained; the forged one is kept aside, and verify names it.
    code, out = _cli(capsys, "audit", "verify", "--config", str(config))
    assert code == 1 and "failed their MAC check" in out, out
    code, out = _cli(capsys, "audit", "spill", "list", "--config", str(config))
    assert "REJECTED" in out, out
