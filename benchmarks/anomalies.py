"""Anomaly detection: accuracy on generated trails, and offline throughput.

Measures, in one run:
1. precision and recall per kind over trails with injected anomalies (five seeds), and the
   findings on normal trails of other seeds (should be none);
2. events/s of the detectors alone (events already in memory);
3. events/s of ``mcp-guard audit anomalies`` end to end minus printing: reading a SQLite store
   (and a JSONL one) and detecting.

Rounds alternate between the measurements so load on a shared machine spreads over all of them;
each figure is the median with the range of the rounds.

Run: .venv/bin/python benchmarks/anomalies.py [USERS] [ROUNDS]
"""

from __future__ import annotations

import json
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcp_guard.audit.anomaly import Detector, from_record, read_events
from mcp_guard.audit.sinks.sqlite import SCHEMA, column_values
from tests.anomaly_trails import generate, score

USERS = int(sys.argv[1]) if len(sys.argv) > 1 else 60
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 5


def accuracy() -> None:
    totals: dict[str, list[float]] = {}
    for seed in range(1, 6):
        trail = generate(seed)
        found = Detector().run(e for e in map(from_record, trail.records) if e is not None)
        for kind, figures in score(found, trail.labels).items():
            totals.setdefault(kind, [0, 0, 0.0, 0.0])
            t = totals[kind]
            t[0] += figures["findings"]
            t[1] += figures["labels"]
            t[2] += figures["precision"] * figures["findings"]
            t[3] += figures["recall"] * figures["labels"]
    print("accuracy over seeds 1-5 (20 users, 14 days + injected anomalies):")
    print(f"  {'kind':<14} {'findings':>8} {'injected':>8} {'precision':>9} {'recall':>7}")
    for kind, (n, labels, right, hit) in sorted(totals.items()):
        print(f"  {kind:<14} {n:>8} {labels:>8} {right / max(n, 1):>9.2f} {hit / max(labels, 1):>7.2f}")
    quiet = [
        len(Detector().run(e for e in map(from_record, generate(s, inject=False).records) if e))
        for s in (11, 12, 13)
    ]
    print(f"  findings on normal trails (seeds 11-13): {quiet}")


def store(records: list[dict[str, object]], base: Path) -> tuple[Path, Path]:
    db = base / "audit.db"
    conn = sqlite3.connect(db)
    conn.executescript(SCHEMA)
    rows = []
    for seq, record in enumerate(records, 1):
        record = {**record, "seq": seq}
        rows.append((seq, *column_values(record), "0" * 64, "k", "0" * 64, json.dumps(record)))
    conn.executemany("INSERT INTO audit_events VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    conn.commit()
    conn.close()
    jsonl = base / "audit.jsonl"
    jsonl.write_text("".join(json.dumps({**r, "seq": i}) + "\n" for i, r in enumerate(records, 1)))
    return db, jsonl


def main() -> None:
    accuracy()
    trail = generate(7, users=USERS)
    records = trail.records
    events = [e for e in map(from_record, records) if e is not None]
    with tempfile.TemporaryDirectory() as tmp:
        db, jsonl = store(records, Path(tmp))
        runs: dict[str, Callable[[], object]] = {
            "detectors only": lambda: Detector().run(events),
            "sqlite read + detect": lambda: Detector().run(read_events(db)),
            "jsonl read + detect": lambda: Detector().run(read_events(jsonl)),
        }
        rates: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(ROUNDS):
            for name, run in runs.items():
                started = time.perf_counter()
                run()
                rates[name].append(len(events) / (time.perf_counter() - started))
    print(f"\nthroughput on {len(events):,} events ({USERS} users), {ROUNDS} alternating rounds:")
    for name, values in rates.items():
        print(
            f"  {name:<22} {statistics.median(values):>10,.0f} events/s"
            f"  (range {min(values):,.0f} - {max(values):,.0f})"
        )


if __name__ == "__main__":
    main()
