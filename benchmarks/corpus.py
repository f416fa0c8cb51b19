"""Detection quality per category on labelled corpora: the project's dev and held-out splits.

Run: ``.venv/bin/python benchmarks/corpus.py [DIR ...]``. Without arguments it scores
``tests/corpus/dev`` and the held-out ``tests/corpus/holdout``, ``holdout2`` and ``holdout3``
(and ``../shared/corpus`` when present);
each DIR is a folder of JSON Lines files in the ``mcp-guard scan`` input format with
``category`` and ``expect`` labels, e.g. a set someone else wrote.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mcp_guard.cli.scan import scan_pairs  # noqa: E402
from tests.corpus_eval import evaluate, load_split  # noqa: E402


def main() -> None:
    dirs = [Path(a) for a in sys.argv[1:]] or [
        ROOT / "tests" / "corpus" / "dev",
        ROOT / "tests" / "corpus" / "holdout",
        ROOT / "tests" / "corpus" / "holdout2",
        ROOT / "tests" / "corpus" / "holdout3",
    ]
    shared = ROOT.parent / "shared" / "corpus"
    if not sys.argv[1:] and shared.is_dir():
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
