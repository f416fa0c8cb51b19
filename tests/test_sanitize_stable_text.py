"""A finding's text is the same in every process: it must not follow a set's iteration order.

Sets of strings iterate in an order that depends on the interpreter's hash seed, which changes
from one process to the next. A finding's message that followed it would differ between two
replicas (or two runs) scanning the same definition, so pins, caches and audit trails that
compare findings would see changes that are not there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_SCRIPT = """
import json, sys
from pathlib import Path
from mcp_guard.cli.scan import scan_pairs
from tests.corpus_eval import load_split
rows = load_split(Path(sys.argv[1]))
results = scan_pairs([(r["kind"], r["item"]) for r in rows])
out = [[r["id"], sorted([f.rule, f.field, f.message] for f in res.findings)] for r, res in zip(rows, results)]
print(json.dumps(out))
"""


def _findings(seed: str) -> list[object]:
    env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(ROOT / "tests" / "corpus" / "dev")],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_findings_read_the_same_under_any_hash_seed() -> None:
    first = _findings("1")
    assert any(messages for _, messages in first)  # the corpus does produce findings
    for seed in ("2", "3"):
        assert _findings(seed) == first
