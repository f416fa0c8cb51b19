"""Every finding the default sanitizer makes on the corpora, as one digest: a speed change must keep it.

Run: ``python benchmarks/sanitize_findings.py [--dump FILE]``. Scans every row of
``tests/corpus/*/*.jsonl`` and of ``../shared/corpus/*.jsonl`` the way ``mcp-guard scan`` does
(per file, items of one kind judged as a list), and each row's text once more as a tool result
(the result-only detectors read it then), and once more with dashes, quotes, arrows and emoji
put between its words (the path for punctuation outside ASCII). Prints a SHA-256 over every
finding (rule, severity, field, message) and rewritten item; ``--dump`` writes them one row a
line, so two versions' dumps can be compared with ``diff``. Run it on the commit before a change and after it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from mcp_guard.cli.scan import scan_pairs
from mcp_guard.model import ScanResult
from mcp_guard.sanitize import DefaultSanitizer

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "corpus"


def corpus_files() -> list[Path]:
    files = sorted((ROOT / "tests" / "corpus").glob("*/*.jsonl"))
    return files + sorted(SHARED.glob("*.jsonl")) if SHARED.is_dir() else files


def _rows(path: Path) -> list[dict[str, Any]]:
    lines = path.read_text(encoding="utf-8").split("\n")  # not splitlines: U+2028 may sit in a string
    return [json.loads(line) for line in lines if line.strip()]


def _as_result(item: Any) -> dict[str, Any]:
    texts = [str(item.get(key, "")) for key in ("name", "description")] if isinstance(item, dict) else []
    return {"content": [{"type": "text", "text": "\n".join(texts)}], "isError": False}


#: Punctuation and symbols outside ASCII that real definitions use (dashes, quotes, arrows, emoji, NBSP).
_SYMBOLS = "\u2014\u2013\u2019\u201c\u201d\u2192\u2022\u2705\u00a0\U0001f680\u2026\u00b7"


def _with_symbols(value: Any, seed: list[int]) -> Any:
    """``value`` with a symbol put in at every seventh space of each string (deterministic)."""
    if isinstance(value, str):
        parts = value.split(" ")
        for i in range(3, len(parts), 7):
            seed[0] += 1
            parts[i] = _SYMBOLS[seed[0] % len(_SYMBOLS)] + parts[i]
        return " ".join(parts)
    if isinstance(value, dict):
        return {k: _with_symbols(v, seed) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_symbols(v, seed) for v in value]
    return value


def _record(result: ScanResult) -> list[Any]:
    findings = [[f.rule, f.severity, f.field, f.message] for f in result.findings]
    return [findings, result.item]


def dump_lines() -> list[str]:
    """One JSON line per scanned row: file, row number, how it was scanned, findings."""
    out: list[str] = []
    for path in corpus_files():
        rows = _rows(path)
        name = str(path.relative_to(ROOT.parent))
        pairs = [(r["kind"], r["item"]) for r in rows]
        for number, result in enumerate(scan_pairs(pairs), 1):
            out.append(json.dumps([name, number, "row", _record(result)], ensure_ascii=False, default=str))
        sanitizer = DefaultSanitizer()
        for number, (_, item) in enumerate(pairs, 1):
            result = sanitizer.scan("tool_result", _as_result(item))
            out.append(json.dumps([name, number, "result", _record(result)], ensure_ascii=False, default=str))
        seed = [0]
        marked = [(kind, _with_symbols(item, seed)) for kind, item in pairs]
        for number, result in enumerate(scan_pairs(marked), 1):
            line = [name, number, "symbols", _record(result)]
            out.append(json.dumps(line, ensure_ascii=False, default=str))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dump", type=Path, help="write every row's findings to this file")
    args = parser.parse_args()
    lines = dump_lines()
    if args.dump:
        args.dump.write_text("\n".join(lines) + "\n", encoding="utf-8")
    digest = hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()
    print(f"{len(lines)} scans, findings sha256 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
