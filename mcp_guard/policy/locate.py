"""Maps a field path (``("rules", 2, "when")``) to the line of a policy file that defines it.

``tomllib`` and ``json`` keep no positions, so each format gets a small
scanner that records the line of every key; YAML nodes carry their own marks.
A path that cannot be placed falls back to its nearest known parent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from contextlib import suppress
from json import decoder as _decoder
from typing import Any

__all__ = ["Locator", "json_lines", "toml_lines", "yaml_lines"]

Path = tuple[Any, ...]


class Locator:
    """Line lookup for field paths of one file; ``line(path)`` returns None when nothing is known."""

    def __init__(self, lines: dict[Path, int] | None = None) -> None:
        self.lines = lines or {}

    def line(self, path: Path) -> int | None:
        path = tuple(path)
        while True:
            if path in self.lines:
                return self.lines[path]
            if not path:
                return None
            path = path[:-1]


_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""^\s*("(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_.\-"' ]+?)\s*=""")


def _split_dotted(text: str) -> list[str]:
    parts, buf, quote = [], "", ""
    for ch in text:
        if quote:
            if ch == quote:
                quote = ""
            else:
                buf += ch
        elif ch in "\"'":
            quote = ch
        elif ch == ".":
            parts.append(buf.strip())
            buf = ""
        else:
            buf += ch
    parts.append(buf.strip())
    return parts


def _in_array(keys: tuple[str, ...], counters: dict[Path, int]) -> Path:
    """``[cases.request]`` after ``[[cases]]`` is a table of the *last* case: ``("cases", i, "request")``."""
    for cut in range(len(keys) - 1, 0, -1):
        index = counters.get(keys[:cut])
        if index:
            return (*keys[:cut], index - 1, *keys[cut:])
    return keys


def toml_lines(text: str) -> Locator:
    lines: dict[Path, int] = {}
    counters: dict[Path, int] = {}
    table: Path = ()
    depth = 0  # inside a multi-line array or string we do not read keys
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if depth == 0 and (m := _HEADER.match(raw)) and stripped.startswith("["):
            keys = tuple(_split_dotted(m.group(2)))
            if m.group(1) == "[[":
                index = counters.get(keys, 0)
                counters[keys] = index + 1
                table = (*keys, index)
                lines.setdefault(keys, number)
            else:
                table = _in_array(keys, counters)
            lines[table] = number
            continue
        if depth == 0 and (m := _KEY.match(raw)):
            lines.setdefault(table + tuple(_split_dotted(m.group(1))), number)
        without_strings = re.sub(r'"(?:[^"\\]|\\.)*"|\'[^\']*\'', "", raw.split("#", 1)[0])
        depth = max(0, depth + without_strings.count("[") - without_strings.count("]"))
    return Locator(lines)


_scan: Callable[[str, int], tuple[str, int]] = _decoder.scanstring  # type: ignore[attr-defined]
_SCALAR = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null")


def json_lines(text: str) -> Locator:
    """Scan a JSON document that ``json.loads`` already accepted, recording each value's line."""
    lines: dict[Path, int] = {}
    newlines = [i for i, ch in enumerate(text) if ch == "\n"]

    def line_of(pos: int) -> int:
        lo, hi = 0, len(newlines)
        while lo < hi:
            mid = (lo + hi) // 2
            if newlines[mid] < pos:
                lo = mid + 1
            else:
                hi = mid
        return int(lo) + 1

    def skip(pos: int) -> int:
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
        return pos

    def value(pos: int, path: Path) -> int:
        pos = skip(pos)
        lines.setdefault(path, line_of(pos))
        ch = text[pos]
        if ch == "{":
            pos = skip(pos + 1)
            if text[pos] == "}":
                return pos + 1
            while True:
                pos = skip(pos)
                key, pos = _scan(text, pos + 1)
                child = (*path, key)
                lines[child] = line_of(pos)
                pos = skip(pos)
                pos = value(pos + 1, child)  # skip ':'
                pos = skip(pos)
                if text[pos] == "}":
                    return pos + 1
                pos += 1  # ','
        if ch == "[":
            pos = skip(pos + 1)
            if text[pos] == "]":
                return pos + 1
            index = 0
            while True:
                pos = skip(value(pos, (*path, index)))
                index += 1
                if text[pos] == "]":
                    return pos + 1
                pos += 1
        if ch == '"':
            return _scan(text, pos + 1)[1]
        m = _SCALAR.match(text, pos)
        if m is None:
            raise ValueError("unexpected JSON token")
        return m.end()

    with suppress(ValueError, IndexError, json.JSONDecodeError):
        value(0, ())
    return Locator(lines)


def yaml_lines(root: Any) -> Locator:
    """Record lines from a composed YAML node tree (``yaml.compose``)."""
    lines: dict[Path, int] = {}

    def walk(node: Any, path: Path) -> None:
        lines.setdefault(path, node.start_mark.line + 1)
        if node.tag.endswith(":map"):
            for key_node, value_node in node.value:
                key = key_node.value
                child = (*path, key)
                lines[child] = key_node.start_mark.line + 1
                walk(value_node, child)
        elif node.tag.endswith(":seq"):
            for index, item in enumerate(node.value):
                walk(item, (*path, index))

    if root is not None:
        walk(root, ())
    return Locator(lines)


LocatorFactory = Callable[[str], Locator]
