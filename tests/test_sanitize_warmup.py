"""The sanitizer's first-use work happens when it is built, and changes no answer."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mcp_guard.sanitize import DefaultSanitizer, warmup

ROOT = Path(__file__).resolve().parents[1]

_PROBE = (
    "from mcp_guard.sanitize import DefaultSanitizer, unicode\n"
    "DefaultSanitizer(warm={warm})\n"
    "print(unicode._tables.cache_info().currsize)\n"
)


def _tables_built_after_build(warm: bool) -> str:
    """In a fresh interpreter: are the character tables built once a sanitizer exists?"""
    code = _PROBE.format(warm=warm)
    out = subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=60, capture_output=True)
    return out.stdout.decode().strip()


def test_building_a_sanitizer_builds_the_lazy_tables() -> None:
    assert _tables_built_after_build(True) == "1"
    assert _tables_built_after_build(False) == "0"


def test_the_samples_reach_the_detectors() -> None:
    """The warm-up only helps if its samples take the scan's paths: clean prose, an attack, a secret."""
    sanitizer = DefaultSanitizer(warm=False)
    verdicts = [r.verdict for r in sanitizer.scan_items("tool", list(warmup._TOOLS))]
    assert verdicts[0] == "clean"
    assert verdicts[2] != "clean"
    result = sanitizer.scan("tool_result", warmup._RESULTS[0])
    assert any(f.rule.startswith("secret.") for f in result.findings)


def test_warming_changes_no_answer() -> None:
    trip = {"name": "x", "description": "Plan a trip \u2014 \u5317\u4eac\u5e02 \u2192 here."}
    items = [*warmup._TOOLS, trip]
    cold = [r.findings for r in DefaultSanitizer(warm=False).scan_items("tool", items)]
    warmup.warm(lambda: DefaultSanitizer(warm=False))
    warm = [r.findings for r in DefaultSanitizer().scan_items("tool", items)]
    assert warm == cold
