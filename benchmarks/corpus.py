"""Detection quality per category on labelled corpora: the project's dev and held-out splits.

Run: ``.venv/bin/python benchmarks/corpus.py [DIR ...]``. Without arguments it scores
``tests/corpus/dev`` and the held-out ``tests/corpus/holdout``, ``holdout2`` and ``holdout3``
(and ``../shared/corpus`` when present);
each DIR is a folder of JSON Lines files in the ``mcp-guard scan`` input format with
``category`` and ``expect`` labels, e.g. a set someone else wrote.

``--split`` divides the dev rows into a training part (75%) and a validation part (25%) by a
hash of each row's id (a rug-pull pair by its pair id, so both versions land together) and
prints both tables side by side: detectors are tuned on training misses only (``--misses``
lists them), and validation says whether a change generalises. The split never changes with
the data around a row, so a figure measured today compares with one measured after tuning.
"""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mcp_guard.cli.scan import scan_pairs  # noqa: E402
from tests.corpus_eval import Table, evaluate, load_split  # noqa: E402

#: One row in ``_VALIDATION_IN`` goes to validation.
_VALIDATION_IN = 4


def part(row: dict[str, Any]) -> str:
    """``"train"`` or ``"validation"``, fixed by the row's id (or its rug-pull pair id)."""
    key = str(row.get("pair") or row["id"]).encode("utf-8")
    bucket = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") % _VALIDATION_IN
    return "validation" if bucket == 0 else "train"


def split_tables(rows: list[dict[str, Any]]) -> dict[str, Table]:
    """The dev rows scored once, counted per part."""
    return {
        name: evaluate([r for r in rows if part(r) == name], scan_pairs) for name in ("train", "validation")
    }


def render_split(tables: dict[str, Table]) -> str:
    train, valid = tables["train"], tables["validation"]
    lines = [f"{'category':<30} {'train':>12} {'recall':>7} {'validation':>12} {'recall':>7}"]
    for category in sorted(set(train.recall) | set(valid.recall)):
        cells = []
        for table in (train, valid):
            hit, total = table.recall.get(category, (0, 0))
            cells.append(f"{hit:>5}/{total:<6} {hit / total if total else 0:>7.1%}")
        lines.append(f"{category:<30} {cells[0]} {cells[1]}")
    cells = []
    for table in (train, valid):
        flagged, clean = table.negatives
        cells.append(f"{flagged:>5}/{clean:<6} {flagged / clean if clean else 0:>7.1%}")
    lines.append(f"{'clean items flagged':<30} {cells[0]} {cells[1]}")
    return "\n".join(lines)


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if "--split" in sys.argv:
        rows = load_split(ROOT / "tests" / "corpus" / "dev")
        tables = split_tables(rows)
        print(f"== dev, split by id hash ({len(rows)} items)")
        print(render_split(tables))
        if "--misses" in sys.argv:
            print("\ntrain misses:")
            print("\n".join(tables["train"].misses))
            print("\ntrain false flags:")
            print("\n".join(tables["train"].false_flags))
        return
    dirs = [Path(a) for a in args] or [
        ROOT / "tests" / "corpus" / "dev",
        ROOT / "tests" / "corpus" / "holdout",
        ROOT / "tests" / "corpus" / "holdout2",
        ROOT / "tests" / "corpus" / "holdout3",
    ]
    shared = ROOT.parent / "shared" / "corpus"
    if not args and shared.is_dir():
        dirs.append(shared)
    for directory in dirs:
        rows = load_split(directory)
        start = time.process_time()
        table = evaluate(rows, scan_pairs)
        spent = time.process_time() - start
        print(f"== {directory} ({len(rows)} items, scanned in {spent:.2f} s CPU)")
        print(table.render())
        print()


if __name__ == "__main__":
    main()
