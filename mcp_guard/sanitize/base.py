"""Small adapters so any callable or group of sanitizers fills the :class:`Sanitizer` protocol."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ..model import Finding, ScanResult
from ..protocols import Sanitizer


class FunctionSanitizer:
    """Wraps ``fn(kind, item)`` returning findings (any iterable) or a :class:`ScanResult`.

    The shortest way to add a house rule; exceptions become a high finding, so
    a buggy rule fails closed instead of letting an item through unchecked.
    """

    def __init__(self, fn: Callable[[str, Mapping[str, Any]], Iterable[Finding] | ScanResult]) -> None:
        self.fn = fn

    def scan(self, kind: str, item: Mapping[str, Any]) -> ScanResult:
        try:
            out = self.fn(kind, item)
            return out if isinstance(out, ScanResult) else ScanResult(tuple(out))
        except Exception as exc:
            name = getattr(self.fn, "__name__", "sanitizer")
            return ScanResult((Finding("sanitizer.error", "high", "/", f"{name} failed: {exc}"),))


class CompositeSanitizer:
    """Runs sanitizers in order; findings add up and a rewritten item is what the next one sees."""

    def __init__(self, sanitizers: Sequence[Sanitizer]) -> None:
        self.sanitizers = tuple(sanitizers)

    def scan(self, kind: str, item: Mapping[str, Any]) -> ScanResult:
        findings: list[Finding] = []
        current: Mapping[str, Any] = item
        rewritten = False
        for sanitizer in self.sanitizers:
            try:
                result = sanitizer.scan(kind, current)
            except Exception as exc:
                result = ScanResult(
                    (Finding("sanitizer.error", "high", "/", f"{type(sanitizer).__name__}: {exc}"),)
                )
            findings.extend(result.findings)
            if result.item is not None:
                current = result.item
                rewritten = True
        return ScanResult(tuple(findings), current if rewritten else None)

    def list_findings(self, kind: str, items: Sequence[Any]) -> dict[int, tuple[Finding, ...]]:
        """List-level findings of every member that has them (see ``DefaultSanitizer.list_findings``)."""
        merged: dict[int, tuple[Finding, ...]] = {}
        for sanitizer in self.sanitizers:
            fn = getattr(sanitizer, "list_findings", None)
            if callable(fn):
                for index, found in fn(kind, items).items():
                    merged[index] = (*merged.get(index, ()), *found)
        return merged

    def scan_items(self, kind: str, items: Sequence[Mapping[str, Any]]) -> list[ScanResult]:
        """Per-list scanning for members that support it (name collisions), item by item for the rest."""
        per_sanitizer: list[list[ScanResult]] = []
        for sanitizer in self.sanitizers:
            scan_items = getattr(sanitizer, "scan_items", None)
            try:
                if callable(scan_items):
                    per_sanitizer.append(list(scan_items(kind, items)))
                else:
                    per_sanitizer.append([sanitizer.scan(kind, i) for i in items])
            except Exception as exc:
                err = Finding("sanitizer.error", "high", "/", f"{type(sanitizer).__name__}: {exc}")
                per_sanitizer.append([ScanResult((err,)) for _ in items])
        out = []
        for index in range(len(items)):
            findings = [f for results in per_sanitizer for f in results[index].findings]
            rewritten = next(
                (r[index].item for r in reversed(per_sanitizer) if r[index].item is not None), None
            )
            out.append(ScanResult(tuple(findings), rewritten))
        return out
