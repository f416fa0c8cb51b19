"""Detection quality per category on labelled corpora: the project's dev and held-out splits.

Run: ``.venv/bin/python benchmarks/corpus.py [DIR ...]``. Without arguments it scores
``tests/corpus/dev`` and the held-out ``tests/corpus/holdout``, ``holdout2``, ``holdout3``,
``holdout4``, ``holdout5`` and ``holdout6``
(and ``../shared/corpus`` when present);
each DIR is a folder of JSON Lines files in the ``mcp-guard scan`` input format with
``category`` and ``expect`` labels, e.g. a set someone else wrote.

``--split`` scores each DIR twice, as a train part (75%) and a validation part (25%) chosen
by a hash of each row's id (rug-pull pairs by their pair id, so both versions land on the
same side). Tuning a detector on the train misses and reading the validation figures only
before and after keeps an estimate of how the change generalises to wording not looked at.
``--misses`` lists the train misses and false flags with their findings.
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
from tests.corpus_eval import evaluate, load_split  # noqa: E402

#: One row in this many goes to validation.
VALIDATION_EVERY = 4


def is_validation(row: dict[str, Any]) -> bool:
    """Deterministic 25% side of a row: a hash of its pair id (or its own id), not file order."""
    key = str(row.get("pair") or row["id"]).encode("utf-8")
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") % VALIDATION_EVERY == 0


def _score(label: str, rows: list[dict[str, Any]], misses: bool) -> None:
    start = time.process_time()
    table = evaluate(rows, scan_pairs)
    spent = time.process_time() - start
    print(f"== {label} ({len(rows)} items, scanned in {spent:.2f} s CPU)")
    print(table.render())
    if misses:
        results = scan_pairs([(r["kind"], r["item"]) for r in rows])
        for row, result in zip(rows, results, strict=True):
            wrong = (result.verdict == "clean") == (row["expect"] == "flag")
            if wrong:
                rules = ", ".join(f"{f.rule}@{f.field}" for f in result.findings) or "-"
                label = f"{row['id']} ({row['category']}): {row.get('note', '')}"
                print(f"  {row['expect']:>5} {label} [{rules}]")
    print()


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    split = "--split" in sys.argv
    misses = "--misses" in sys.argv
    dirs = [Path(a) for a in args] or [
        ROOT / "tests" / "corpus" / "dev",
        ROOT / "tests" / "corpus" / "holdout",
        ROOT / "tests" / "corpus" / "holdout2",
        ROOT / "tests" / "corpus" / "holdout3",
        ROOT / "tests" / "corpus" / "holdout4",
        ROOT / "tests" / "corpus" / "holdout5",
        ROOT / "tests" / "corpus" / "holdout6",
    ]
    shared = ROOT.parent / "shared" / "corpus"
    if not args and shared.is_dir():
        dirs.append(shared)
    for directory in dirs:
        rows = load_split(directory)
        if not split:
            _score(str(directory), rows, misses)
            continue
        train = [r for r in rows if not is_validation(r)]
        validation = [r for r in rows if is_validation(r)]
        _score(f"{directory} train", train, misses)
        _score(f"{directory} validation", validation, False)


if __name__ == "__main__":
    main()
