"""Scoring a labelled corpus (JSON Lines in the ``mcp-guard scan`` input format) per category.

Shared by the corpus tests and ``benchmarks/corpus.py``: a malicious item counts as detected
when its verdict is ``flag`` or ``block``; an item labelled ``clean`` counts as a false flag
when its verdict is anything else.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


class _Verdict(Protocol):
    verdict: str


def load_split(directory: Path) -> list[dict[str, Any]]:
    """Every row of every ``*.jsonl`` file in ``directory``, in file-name order, labels defaulted."""
    rows: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.jsonl")):
        for number, line in enumerate(
            path.read_text(encoding="utf-8").split("\n"), 1
        ):  # not splitlines: U+2028 may sit in a string
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: {exc}") from exc
            for key in ("kind", "item"):
                if key not in row:
                    raise ValueError(f"{path}:{number}: missing {key!r}")
            # Unlabelled rows (a dump of real servers' definitions) count as clean.
            row.setdefault("id", f"{path.stem}:{number}")
            row.setdefault("category", "real_definition")
            row.setdefault("expect", "clean")
            if row["category"] == "hard_negative":
                # Hard negatives are benign by definition, whatever their ``expect`` says.
                row["expect"] = "clean"
            if row["expect"] not in ("clean", "flag"):
                raise ValueError(f"{path}:{number}: expect must be 'clean' or 'flag', not {row['expect']!r}")
            rows.append(row)
    return rows


@dataclass
class Table:
    recall: dict[str, tuple[int, int]] = field(default_factory=dict)
    negatives: tuple[int, int] = (0, 0)
    misses: list[str] = field(default_factory=list)
    false_flags: list[str] = field(default_factory=list)

    @property
    def overall(self) -> tuple[int, int]:
        return sum(h for h, _ in self.recall.values()), sum(t for _, t in self.recall.values())

    def render(self) -> str:
        lines = [f"{'category':<30} {'detected':>8} {'total':>6} {'recall':>7}"]
        for category, (hit, total) in sorted(self.recall.items()):
            lines.append(f"{category:<30} {hit:>8} {total:>6} {hit / total:>7.1%}")
        hit, total = self.overall
        if total:
            lines.append(f"{'all malicious':<30} {hit:>8} {total:>6} {hit / total:>7.1%}")
        flagged, clean = self.negatives
        if clean:
            lines.append(f"{'clean items flagged':<30} {flagged:>8} {clean:>6} {flagged / clean:>7.1%}")
        return "\n".join(lines)


def evaluate(
    rows: Sequence[dict[str, Any]], scan: Callable[[list[tuple[str, Any]]], Sequence[_Verdict]]
) -> Table:
    """Scan ``rows`` with ``scan`` (e.g. ``scan_pairs``) and count per category."""
    results = scan([(r["kind"], r["item"]) for r in rows])
    table = Table()
    counts: dict[str, list[int]] = {}
    flagged = clean = 0
    for row, result in zip(rows, results, strict=True):
        verdict = result.verdict
        if row["expect"] == "clean":
            clean += 1
            if verdict != "clean":
                flagged += 1
                table.false_flags.append(f"{row['id']}: {row.get('note', '')}")
            continue
        hit = counts.setdefault(row["category"], [0, 0])
        hit[1] += 1
        if verdict != "clean":
            hit[0] += 1
        else:
            table.misses.append(f"{row['id']} ({row['category']}): {row.get('note', '')}")
    table.recall = {c: (h, t) for c, (h, t) in counts.items()}
    table.negatives = (flagged, clean)
    return table
