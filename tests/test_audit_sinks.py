"""Sinks and their URLs: SQLite, JSONL rotation, logging, OpenTelemetry, fan-out."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from mcp_guard.audit import AuditLog, FanoutSink, JsonlSink, LoggingSink, OtelSink, SQLiteSink, open_sink
from mcp_guard.audit.chain import Chainer
from mcp_guard.audit.keys import AuditKey, KeyRing
from mcp_guard.audit.sinks import ChainConflict, store_path
from mcp_guard.errors import ConfigError
from mcp_guard.model import AuditEvent
from mcp_guard.protocols import AuditSink

KEYS = KeyRing([AuditKey("t", b"k" * 32)])


def records(n: int, start: int = 0) -> list[Any]:
    chainer = Chainer(KEYS, start)
    return [
        chainer.link({"id": f"e{i}", "time": float(i), "method": "tools/call", "decision": "allow"})
        for i in range(n)
    ]


def test_urls_select_sinks_and_resolve_relative_paths(tmp_path: Path) -> None:
    sink = open_sink("sqlite:///sub/a.db", tmp_path)
    assert isinstance(sink, SQLiteSink) and sink.path == tmp_path / "sub" / "a.db"
    sink.close()
    assert store_path(f"jsonl:///{tmp_path}/x.jsonl") == tmp_path / "x.jsonl"
    assert isinstance(open_sink("logging://app.audit?level=warning"), LoggingSink)
    assert isinstance(open_sink("otel://"), OtelSink)
    for bad in (
        "ftp://x",
        "sqlite:///a.db?nope=1",
        "jsonl:///a?keep=x",
        "sqlite://a.db",
        "logging://?level=LOUD",
    ):
        with pytest.raises(ConfigError, match=r"guard\.audit"):
            open_sink(bad, tmp_path)


def test_builtin_sinks_satisfy_the_protocol(tmp_path: Path) -> None:
    for sink in (SQLiteSink(tmp_path / "a.db"), JsonlSink(tmp_path / "a.jsonl"), LoggingSink(), OtelSink()):
        assert isinstance(sink, AuditSink)
        sink.close()


def test_sqlite_replay_is_idempotent_but_a_fork_is_refused(tmp_path: Path) -> None:
    sink = SQLiteSink(tmp_path / "a.db")
    batch = records(5)
    sink.write(batch)
    sink.write(batch[2:])  # replay after an ambiguous failure
    other = Chainer(KeyRing([AuditKey("t", b"o" * 32)])).link(
        {"id": "x", "time": 0.0, "method": "m", "decision": "allow"}
    )
    with pytest.raises(ChainConflict):
        sink.write([other])
    assert sink.head() == (5, batch[-1]["mac"], batch[0]["mac"])
    sink.close()
    with sqlite3.connect(tmp_path / "a.db") as conn:
        assert conn.execute("SELECT count(*) FROM audit_events").fetchone() == (5,)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_jsonl_rotation_keeps_n_files_and_skips_replays(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    sink = JsonlSink(path, max_bytes=600, keep=2)
    batch = records(40)
    for i in range(0, 40, 4):
        sink.write(batch[i : i + 4])
    sink.write(batch[30:])  # replay: nothing new
    sink.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["a.jsonl", "a.jsonl.1", "a.jsonl.2"]
    seqs = [
        json.loads(line)["seq"]
        for f in ("a.jsonl.2", "a.jsonl.1", "a.jsonl")
        for line in (tmp_path / f).open()
    ]
    assert seqs == sorted(seqs) and seqs[-1] == 40 and len(seqs) == len(set(seqs))
    reopened = JsonlSink(path)
    assert reopened.head() is not None and reopened.head()[0] == 40  # type: ignore[index]
    reopened.close()


def test_otel_sink_exports_one_span_per_event() -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    log = AuditLog(OtelSink(tracer_provider=provider), KEYS)
    log.record(
        AuditEvent(
            method="tools/call", decision="deny", principal={"subject": "bob"}, target="q", latency_ms=2.5
        )
    )
    log.close()
    (span,) = exporter.get_finished_spans()
    assert span.name == "mcp_guard.audit tools/call"
    assert span.attributes is not None
    assert span.attributes["mcp_guard.audit.subject"] == "bob"
    assert span.attributes["mcp_guard.audit.decision"] == "deny"
    assert span.end_time is not None and span.start_time is not None
    assert span.end_time - span.start_time == 2_500_000
    assert json.loads(str(span.attributes["mcp_guard.audit.record"]))["seq"] == 1


class Broken:
    def __init__(self) -> None:
        self.calls = 0
        self.ok = False
        self.got: list[int] = []

    def write(self, records: Sequence[Mapping[str, Any]]) -> None:
        self.calls += 1
        if not self.ok:
            raise RuntimeError("down")
        self.got.extend(int(r["seq"]) for r in records)

    def close(self) -> None:
        pass


def test_fanout_reports_failure_and_resends_only_what_a_sink_missed(tmp_path: Path) -> None:
    good = JsonlSink(tmp_path / "a.jsonl")
    bad = Broken()
    fan = FanoutSink([good, bad])
    batch = records(3)
    with pytest.raises(RuntimeError, match="down"):
        fan.write(batch)
    bad.ok = True
    fan.write(batch)
    assert bad.got == [1, 2, 3]
    assert len((tmp_path / "a.jsonl").read_text().splitlines()) == 3
    fan.close()


def test_otel_sink_can_emit_log_records() -> None:
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    log = AuditLog(OtelSink("logs", logger_provider=provider), KEYS)
    log.record(AuditEvent(method="tools/call", decision="deny", principal={"subject": "eve"}))
    log.close()
    (item,) = exporter.get_finished_logs()
    record = item.log_record
    assert json.loads(str(record.body))["principal"]["subject"] == "eve"
    assert record.attributes is not None and record.attributes["mcp_guard.audit.decision"] == "deny"


_OTEL_CHILD = """
import json, sys, pathlib
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from mcp_guard.audit import AuditLog, FanoutSink, OtelSink, SQLiteSink
from mcp_guard.audit.keys import load_key_file
from mcp_guard.errors import AuditUnavailable
from mcp_guard.model import AuditEvent

base = pathlib.Path(sys.argv[1])
keys = load_key_file(base / "audit.key", create=True)
sink = FanoutSink([SQLiteSink(base / "audit.db"), OtelSink()])
log = AuditLog(sink, keys, spill_path=base / "spill.jsonl", retry_interval=0.01)
log.record(AuditEvent(method="tools/call", decision="deny", principal={"subject": "bob"}))
out = {"delivered_without_provider": log.flush()}
try:
    log.check_available()
    out["refuses"] = False
except AuditUnavailable as exc:
    out["refuses"] = "OpenTelemetry" in str(exc)
exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
out["delivered_with_provider"] = log.flush()
log.close()
out["spans"] = [s.attributes["mcp_guard.audit.subject"] for s in exporter.get_finished_spans()]
print(json.dumps(out))
"""


def test_otel_sink_without_a_provider_keeps_events_instead_of_discarding_them(tmp_path: Path) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _OTEL_CHILD, str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout) == {
        "delivered_without_provider": False,
        "refuses": True,
        "delivered_with_provider": True,
        "spans": ["bob"],
    }
