"""``mcp-guard scan [FILE|-] [--json]``: judge MCP definitions or results offline.

Input is JSON Lines (``{"kind": ..., "item": ...}`` per line, other keys
ignored) or one ``tools/list``, ``prompts/list`` or ``resources/list`` result
(bare, or inside its JSON-RPC response).
Output is one verdict per item, in input order. Exit 0 when everything is
clean, 1 when anything is flagged or blocked, 2 for bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..model import ScanResult

_LIST_KINDS = {
    "tools": "tool",
    "prompts": "prompt",
    "resources": "resource",
    "resourceTemplates": "resource_template",
}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "scan",
        help="scan tool/prompt/resource definitions or results for injected instructions",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    )
    parser.add_argument("file", nargs="?", default="-", metavar="FILE|-", help="input file, or - for stdin")
    parser.add_argument("--json", action="store_true", help="one JSON object per item (the stable format)")
    parser.set_defaults(func=run)


def _read(source: str) -> str:
    try:
        if source == "-":
            return sys.stdin.read()
        with open(source, encoding="utf-8") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read input: {exc}", file=source) from None


def parse_input(text: str, source: str = "-") -> list[tuple[str, Any]]:
    """(kind, item) pairs from JSON Lines or a list result; errors name file, line and field."""
    stripped = text.strip()
    if not stripped:
        raise ConfigError(
            "empty input: expected JSON Lines or a tools/prompts/resources list result", file=source
        )
    try:
        whole = json.loads(stripped)
    except json.JSONDecodeError:
        whole = None
    if isinstance(whole, Mapping) and "jsonrpc" in whole and isinstance(whole.get("result"), Mapping):
        whole = whole["result"]  # a whole JSON-RPC response, as captured off the wire
    if isinstance(whole, Mapping) and "kind" in whole and "\n" in stripped:
        return [_record(whole, source, None)]  # one record, pretty-printed over several lines
    if isinstance(whole, Mapping) and "kind" not in whole:
        pairs: list[tuple[str, Any]] = []
        found = False
        for key, kind in _LIST_KINDS.items():
            if key in whole:
                found = True
                items = whole[key]
                if not isinstance(items, list):
                    raise ConfigError(f"must be an array, got {type(items).__name__}", file=source, field=key)
                for index, item in enumerate(items):
                    if not isinstance(item, Mapping):
                        raise ConfigError("must be an object", file=source, field=f"{key}[{index}]")
                    pairs.append((kind, item))
        if not found:
            raise ConfigError(
                "not a tools/list, prompts/list or resources/list result, and not a JSON Lines record "
                "(expected keys 'kind' and 'item')",
                file=source,
            )
        return pairs
    pairs = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"invalid JSON: {exc.msg} (column {exc.colno})", file=source, line=number
            ) from None
        pairs.append(_record(record, source, number))
    return pairs


def _record(record: Any, source: str, number: int | None) -> tuple[str, Any]:
    """One ``{"kind", "item"}`` record, checked; errors name the line and the field."""
    from ..sanitize.scanner import KINDS

    if not isinstance(record, Mapping):
        raise ConfigError("each line must be a JSON object", file=source, line=number)
    kind = record.get("kind")
    if kind is None:
        raise ConfigError("missing", file=source, line=number, field="kind")
    if not isinstance(kind, str) or kind not in KINDS:
        raise ConfigError(
            f"unknown kind {kind!r}; expected one of {', '.join(sorted(KINDS))}",
            file=source,
            line=number,
            field="kind",
        )
    item = record.get("item")
    if not isinstance(item, Mapping):
        raise ConfigError("missing or not an object", file=source, line=number, field="item")
    return kind, item


def scan_pairs(pairs: list[tuple[str, Any]]) -> list[ScanResult]:
    """Scan in input order; items of one kind are also judged as a list (look-alike names)."""
    from ..model import ScanResult
    from ..sanitize import DefaultSanitizer

    sanitizer = DefaultSanitizer()
    results: list[ScanResult | None] = [None] * len(pairs)
    by_kind: dict[str, list[int]] = {}
    for index, (kind, _) in enumerate(pairs):
        by_kind.setdefault(kind, []).append(index)
    for kind, indices in by_kind.items():
        for index, result in zip(
            indices, sanitizer.scan_items(kind, [pairs[i][1] for i in indices]), strict=True
        ):
            results[index] = result
    _add_change_findings(pairs, results)
    return [r if r is not None else ScanResult() for r in results]


def _add_change_findings(pairs: list[tuple[str, Any]], results: list[ScanResult | None]) -> None:
    """A definition whose kind and name appeared earlier in the input is a changed version of it
    (approved first, changed after): what the change adds is judged too."""
    from ..model import Finding, ScanResult
    from ..sanitize.changes import change_findings

    first: dict[tuple[str, str], Any] = {}
    for index, (kind, item) in enumerate(pairs):
        name = item_name(item) if isinstance(item, Mapping) and kind in _DEFINITIONS else None
        if name is None:
            continue
        approved = first.setdefault((kind, name), item)
        result = results[index]
        if approved is not item and result is not None and approved != item:
            try:
                extra = change_findings(approved, item)
            except Exception as exc:  # a failed comparison is a finding, never a pass
                extra = [Finding("sanitizer.error", "high", "/", f"change check failed: {exc}")]
            if extra:
                results[index] = ScanResult((*result.findings, *extra), result.item)


_DEFINITIONS = frozenset({"tool", "prompt", "resource", "resource_template"})


def item_name(item: Mapping[str, Any]) -> str | None:
    for key in ("name", "uri", "uriTemplate"):
        value = item.get(key)
        if isinstance(value, str):
            return value
    return None


_HIDDEN = frozenset("\u200b\u200c\u200d\u2060\ufeff")


def _safe(text: str) -> str:
    """Printable form for a terminal: a hostile name must not drive the terminal or hide in it."""
    return "".join(
        c if c.isprintable() and ord(c) < 0xE0000 and c not in _HIDDEN else f"\\u{ord(c):04x}" for c in text
    )


def run(args: argparse.Namespace) -> int:
    pairs = parse_input(_read(args.file), args.file)
    results = scan_pairs(pairs)
    out = sys.stdout
    flagged = False
    for index, ((_, item), result) in enumerate(zip(pairs, results, strict=True)):
        verdict = result.verdict
        flagged = flagged or verdict != "clean"
        if args.json:
            record = {
                "index": index,
                "name": item_name(item),
                "verdict": verdict,
                "findings": [f.as_dict() for f in result.findings],
            }
            out.write(json.dumps(record) + "\n")
        else:
            name = _safe(item_name(item) or "-")
            out.write(f"{index:>5}  {verdict:<5}  {name}\n")
            for f in result.findings:
                out.write(f"       {f.severity:<6} {f.rule:<28} {_safe(f.field)}  {_safe(f.message)}\n")
    if not args.json:
        counts = {v: sum(1 for r in results if r.verdict == v) for v in ("clean", "flag", "block")}
        out.write(
            f"{len(results)} items: {counts['clean']} clean, {counts['flag']} flag, {counts['block']} block\n"
        )
    return 1 if flagged else 0
