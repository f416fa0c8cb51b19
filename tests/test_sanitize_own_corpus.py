"""Detection quality on the project's own corpus, with its held-out split reported apart.

``tests/corpus/dev/`` may be read while detectors are tuned; ``tests/corpus/holdout/`` is
written in other wording, after the dev files, and is never tuned on: its figures are the
honest estimate of what an attacker who never saw our data gets past. Both tables print with
``pytest -s``; ``benchmarks/corpus.py`` prints them without pytest.

The assertions are floors at the figures measured when a batch was added (see
``docs/sanitizers.md``), so a change that loses detections or adds false flags fails here;
the goals themselves (95% recall, <= 5% false flags on hard negatives) are reported, not
asserted, until they are reached.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mcp_guard.cli.scan import scan_pairs

from .corpus_eval import Table, evaluate, load_split

CORPUS = Path(__file__).resolve().parent / "corpus"
FLOORS: dict[str, Any] = json.loads((CORPUS / "floors.json").read_text(encoding="utf-8"))


@pytest.fixture(
    scope="module", params=["dev", "holdout", "holdout2", "holdout3", "holdout4", "holdout5", "holdout6"]
)
def table(request: pytest.FixtureRequest) -> tuple[str, Table]:
    split = str(request.param)
    rows = load_split(CORPUS / split)
    assert rows, f"{CORPUS / split} holds no items"
    result = evaluate(rows, scan_pairs)
    print(f"\n{split}:\n{result.render()}")
    return split, result


def test_recall_per_category_stays_at_or_above_its_floor(table: tuple[str, Table]) -> None:
    split, result = table
    floors = FLOORS[split]["recall"]
    low = {
        category: f"{hit}/{total}"
        for category, (hit, total) in result.recall.items()
        if hit / total < floors.get(category, 0.0)
    }
    assert not low, f"{split}: recall below floor in {low}; missed: {result.misses[:20]}"


def test_false_flags_stay_at_or_below_their_ceiling(table: tuple[str, Table]) -> None:
    split, result = table
    flagged, total = result.negatives
    ceiling = FLOORS[split]["false_flags"]
    assert flagged / total <= ceiling, (
        f"{split}: {flagged}/{total} hard negatives flagged: {result.false_flags}"
    )


def test_every_category_has_items_in_both_splits() -> None:
    dev = {r["category"] for r in load_split(CORPUS / "dev")}
    holdout = {r["category"] for r in load_split(CORPUS / "holdout")}
    assert dev == holdout
    assert "hard_negative" in dev and len(dev) >= 10
