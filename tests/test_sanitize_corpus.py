"""Detection quality on the shared corpora: recall per attack category, false flags on benign items.

Goals (issue 6): recall >= 95% in every malicious category (flag or block both
count), false flags <= 1% over real definitions plus hard negatives. The table
prints with ``pytest -s``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from mcp_guard.cli.scan import scan_pairs
from mcp_guard.sanitize import PinStore
from mcp_guard.store import MemoryStore

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
POISON = CORPUS / "poison-dev.jsonl"
BENIGN = CORPUS / "benign-real-dev.jsonl"

pytestmark = pytest.mark.shared


def _rows(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        pytest.skip(f"shared corpus not found at {path} (../shared is absent in this checkout)")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def verdicts() -> dict[str, list[tuple[dict[str, Any], str]]]:
    poison = _rows(POISON)
    benign = _rows(BENIGN)
    out: dict[str, list[tuple[dict[str, Any], str]]] = {}
    for name, rows in (("poison", poison), ("benign", benign)):
        results = scan_pairs([(r["kind"], r["item"]) for r in rows])
        out[name] = [(r, res.verdict) for r, res in zip(rows, results, strict=True)]
    return out


def test_recall_and_false_flags(verdicts: dict[str, list[tuple[dict[str, Any], str]]]) -> None:
    table: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    negatives = [0, 0]
    misses = []
    for row, verdict in verdicts["poison"]:
        if row["expect"] == "clean":
            negatives[0] += verdict != "clean"
            negatives[1] += 1
            if verdict != "clean":
                misses.append(f"false flag {row['id']}: {row['note']}")
            continue
        table[row["category"]][0] += verdict != "clean"
        table[row["category"]][1] += 1
        if verdict == "clean":
            misses.append(f"missed {row['id']} ({row['category']}): {row['note']}")
    benign_flags = [row for row, verdict in verdicts["benign"] if verdict != "clean"]
    lines = [f"{'category':<30} {'detected':>8} {'total':>6} {'recall':>7}"]
    for category, (hit, total) in sorted(table.items()):
        lines.append(f"{category:<30} {hit:>8} {total:>6} {hit / total:>7.1%}")
    total_negative = negatives[1] + len(verdicts["benign"])
    false_flags = negatives[0] + len(benign_flags)
    lines.append(f"{'hard negatives flagged':<30} {negatives[0]:>8} {negatives[1]:>6}")
    lines.append(f"{'benign real items flagged':<30} {len(benign_flags):>8} {len(verdicts['benign']):>6}")
    lines.append(
        f"{'false-flag rate':<30} {false_flags:>8} {total_negative:>6} {false_flags / total_negative:>7.2%}"
    )
    print("\n" + "\n".join(lines))
    for row in benign_flags:
        misses.append(f"false flag on real item {row['server']} {row['item'].get('name')}")
    for category, (hit, total) in table.items():
        assert hit / total >= 0.95, f"recall for {category} below 95%: {misses}"
    assert false_flags / total_negative <= 0.01, misses


def test_every_malicious_category_present(verdicts: dict[str, list[tuple[dict[str, Any], str]]]) -> None:
    categories = {row["category"] for row, _ in verdicts["poison"] if row["expect"] != "clean"}
    assert len(categories) >= 10  # the table above covers real families, not one


async def test_rug_pull_pairs_are_withheld_until_approved() -> None:
    rows = _rows(POISON)
    pairs: dict[str, dict[str, Any]] = defaultdict(dict)
    for row in rows:
        if row.get("pair"):
            pairs[row["pair"]][row["expect"]] = row["item"]
    assert pairs, "corpus has no rug-pull pairs"
    pins = PinStore(MemoryStore())
    for name, versions in pairs.items():
        first = await pins.check(name, "tool", [versions["clean"]])
        assert first.first_use and first.allowed == [versions["clean"]]
        changed = await pins.check(name, "tool", [versions["flag"]])
        assert changed.allowed == [] and changed.changed == (versions["flag"]["name"],)
        diff = await pins.diff(name, "tool", versions["flag"]["name"])
        assert diff, "a changed tool must show a per-field diff"
        await pins.approve(name, "tool", versions["flag"]["name"])
        assert (await pins.check(name, "tool", [versions["flag"]])).allowed == [versions["flag"]]


def test_scan_cli_on_the_corpus_files() -> None:
    _rows(POISON)
    run = subprocess.run(
        [sys.executable, "-m", "mcp_guard", "scan", str(POISON), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1, run.stderr
    records = [json.loads(line) for line in run.stdout.splitlines()]
    assert [r["index"] for r in records] == list(range(len(_rows(POISON))))
    for record in records:
        assert set(record) == {"index", "name", "verdict", "findings"}
        assert record["verdict"] in ("clean", "flag", "block")
        for finding in record["findings"]:
            assert set(finding) == {"rule", "severity", "field", "message"}
            assert finding["field"].startswith("/")
        if record["findings"]:
            high = any(f["severity"] == "high" for f in record["findings"])
            assert record["verdict"] == ("block" if high else "flag")
