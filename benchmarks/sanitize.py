"""Sanitizer throughput: tool definitions scanned per second on one core, and the cost of a cached re-scan.

Run: ``.venv/bin/python benchmarks/sanitize.py``. Uses the real definitions in
``../shared/corpus/benign-real-dev.jsonl`` when present (else a synthetic set
of the same shape). Timings are CPU time of this process (``time.process_time``
- robust against other load on the machine) and wall time, best of several runs. The first
cold round of a process (after the sanitizer is built, which does the first-use work) is measured
in a fresh interpreter and reported apart from the steady cold rounds.
"""

from __future__ import annotations

import copy
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from mcp_guard.sanitize import DefaultSanitizer, SanitizePolicy, apply_to_list

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "benign-real-dev.jsonl"


def load_tools() -> tuple[list[dict[str, Any]], str]:
    if CORPUS.exists():
        rows = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
        tools = [r["item"] for r in rows if r["kind"] == "tool"]
        return tools, f"{len(tools)} real tool definitions from {CORPUS.name}"
    tools = [
        {
            "name": f"tool_{i}",
            "description": f"Does thing {i}. Returns JSON. Use list_things first to find the id. " * 3,
            "inputSchema": {
                "type": "object",
                "properties": {
                    f"p{j}": {"type": "string", "description": f"Parameter {j}."} for j in range(8)
                },
            },
        }
        for i in range(400)
    ]
    return tools, "400 synthetic tool definitions (shared corpus absent)"


def measure(fn: Any, repeat: int) -> tuple[float, float]:
    """Best CPU and wall seconds of ``repeat`` runs."""
    cpu, wall = [], []
    for _ in range(repeat):
        c0, w0 = time.process_time(), time.perf_counter()
        fn()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return min(cpu), min(wall)


def main() -> int:
    tools, source = load_tools()
    size = statistics.mean(len(json.dumps(t)) for t in tools)
    rows: list[tuple[str, str, str]] = []

    # 1. Cold scans: a fresh sanitizer each round, so nothing comes from a cache (the sanitizer
    #    keeps no memo at module level: every cache lives in the instance). The first round of a
    #    process is measured in a fresh interpreter, building the sanitizer apart from the scan.
    first = json.loads(
        subprocess.run(
            [sys.executable, __file__, "--first-round"], check=True, capture_output=True, text=True
        ).stdout
    )
    rows.append(("build the first sanitizer of a process", f"{first['build'] * 1e3:.1f} ms", ""))
    rows.append(
        (
            "cold scan, first round of a process",
            f"{first['first'] / len(tools) * 1e6:.1f} us",
            f"{len(tools) / first['first']:,.0f} tools/s",
        )
    )
    fresh_sanitizers: list[DefaultSanitizer] = []

    def cold() -> None:
        sanitizer = fresh_sanitizers.pop()
        for tool in tools:
            sanitizer.scan("tool", tool)

    fresh_sanitizers.extend(DefaultSanitizer() for _ in range(8))
    cold()
    cpu, wall = measure(cold, 7)
    rows.append(
        (
            "cold scan, steady (fresh sanitizer)",
            f"{cpu / len(tools) * 1e6:.1f} us",
            f"{len(tools) / cpu:,.0f} tools/s",
        )
    )
    rows.append(("  (wall clock)", f"{wall / len(tools) * 1e6:.1f} us", f"{len(tools) / wall:,.0f} tools/s"))

    # 2. A 500-tool list: first scan, the same list object again, and an equal list freshly parsed.
    big = [copy.deepcopy(tools[i % len(tools)]) for i in range(500)]
    for i, tool in enumerate(big):
        tool["name"] = f"{tool['name']}_{i}"
    sanitizer = DefaultSanitizer()
    cpu, _ = measure(lambda: DefaultSanitizer().scan_items("tool", big), 3)
    rows.append(("500-tool list, first scan", f"{cpu * 1e3:.2f} ms", ""))
    sanitizer.scan_items("tool", big)
    reps = 2000
    cpu, wall = measure(lambda: [sanitizer.scan_items("tool", big) for _ in range(reps)], 5)
    rows.append(("500-tool list, cached re-scan (same list)", f"{cpu / reps * 1e6:.1f} us", "goal <= 50 us"))
    fresh = json.loads(json.dumps(big))
    copies = [json.loads(json.dumps(big)) for _ in range(7)]  # parsed beforehand: only the scan is timed
    cpu, _ = measure(lambda: sanitizer.scan_items("tool", copies.pop()), 7)
    rows.append(("500-tool list, equal list re-parsed", f"{cpu * 1e3:.2f} ms", ""))
    assert [r.verdict for r in sanitizer.scan_items("tool", fresh)] == [
        r.verdict for r in sanitizer.scan_items("tool", big)
    ]

    # 3. The policy helper on the cached list (what the guard pays per tools/list).
    policy = SanitizePolicy()
    result = {"tools": big}
    cpu, _ = measure(lambda: [apply_to_list(sanitizer, policy, "tool", result) for _ in range(200)], 3)
    rows.append(("apply_to_list on the cached 500-tool list", f"{cpu / 200 * 1e6:.1f} us", ""))

    # 4. Cold scans of benign tool results: the text of each real definition returned as a result
    #    (what a docs or search tool hands back), and short plain results with no cue word at all.
    echoed = [_as_result(tool) for tool in tools]
    plain = [
        _as_result({"description": f"Order #{i} shipped. Track it at https://parcel.example/{i}."})
        for i in range(400)
    ]
    for label, results in (
        ("cold scan, per definition echoed as a result", echoed),
        ("cold scan, per plain result", plain),
    ):
        cpu, _ = measure(lambda results=results: _scan_results(results), 5)
        rows.append((label, f"{cpu / len(results) * 1e6:.1f} us", ""))

    width = max(len(r[0]) for r in rows)
    print(
        f"sanitize benchmark - {source}, mean {size:,.0f} bytes of JSON each, Python {sys.version.split()[0]}"
    )
    print(f"{'measure':<{width}}  {'cost':>12}  {'rate / goal':>16}")
    for name, cost, rate in rows:
        print(f"{name:<{width}}  {cost:>12}  {rate:>16}")
    return 0


def first_round() -> int:
    """Child process: CPU seconds to build the first sanitizer and for its first cold round, as JSON."""
    tools, _ = load_tools()
    c0 = time.process_time()
    sanitizer = DefaultSanitizer()
    c1 = time.process_time()
    for tool in tools:
        sanitizer.scan("tool", tool)
    c2 = time.process_time()
    print(json.dumps({"build": c1 - c0, "first": c2 - c1}))
    return 0


def _as_result(tool: dict[str, Any]) -> dict[str, Any]:
    text = "\n".join(str(tool.get(key, "")) for key in ("name", "description"))
    return {"content": [{"type": "text", "text": text}], "isError": False}


def _scan_results(results: list[dict[str, Any]]) -> None:
    sanitizer = DefaultSanitizer()
    for result in results:
        sanitizer.scan("tool_result", result)


if __name__ == "__main__":
    sys.exit(first_round() if sys.argv[1:] == ["--first-round"] else main())
