"""Reading TOML/JSON files with error messages that point at a line.

``tomllib`` and pydantic know nothing of each other: pydantic reports a field
path, the parser the text. This module maps a field path back to the line
that defines it, so "authn.jwt[1].audience: field required" can say which line
of which file to fix.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-\"'.]+)\s*=")


def parse_text(text: str, source: str, fmt: str = "toml") -> dict[str, Any]:
    """Parse TOML or JSON text into a dict, or raise :class:`ConfigError` with the line."""
    try:
        data = json.loads(text) if fmt == "json" else tomllib.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(exc.msg, file=source, line=exc.lineno) from None
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        raise ConfigError(str(exc), file=source, line=int(match.group(1)) if match else None) from None
    if not isinstance(data, dict):
        raise ConfigError("the document must be a table/object at the top level", file=source)
    return data


def read_file(path: Path) -> tuple[str, dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read file: {exc.strerror or exc}", file=str(path)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"file is not valid UTF-8 (byte {exc.start})", file=str(path)) from None
    fmt = "json" if path.suffix.lower() == ".json" else "toml"
    return text, parse_text(text, str(path), fmt)


def dotted(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def locate(text: str, loc: Sequence[int | str]) -> int | None:
    """Best-effort line number (1-based) of the TOML entry a pydantic ``loc`` names.

    Walks the table headers in order, counting ``[[array]]`` occurrences, and
    then looks for the key inside the matched table. Returns the table's
    header line when the key itself is absent (a missing required field).
    """
    parts = [p for p in loc if isinstance(p, (str, int))]
    lines = text.splitlines()
    # Find the deepest table header that matches a prefix of the path.
    best_line: int | None = None
    best_depth = 0
    counts: dict[str, int] = {}
    current_table: list[str | int] = []
    table_start: dict[int, tuple[list[str | int], int]] = {}
    for no, line in enumerate(lines, 1):
        m = _HEADER.match(line)
        if not m:
            continue
        name = m.group(2).replace('"', "").replace("'", "")
        keys: list[str | int] = list(name.split("."))
        if m.group(1) == "[[":
            idx = counts.get(name, 0)
            counts[name] = idx + 1
            keys.append(idx)
        current_table = keys
        table_start[no] = (current_table, no)
        depth = 0
        for a, b in zip(parts, keys, strict=False):
            if a != b:
                break
            depth += 1
        if depth == len(keys) and depth > best_depth:
            best_depth, best_line = depth, no
    rest = parts[best_depth:]
    key = next((p for p in rest if isinstance(p, str)), None)
    start = best_line or 0
    if key is not None:
        for no in range(start + 1 if best_line else 1, len(lines) + 1):
            line = lines[no - 1]
            if best_line and _HEADER.match(line):
                break
            if not best_line and _HEADER.match(line):
                break
            km = _KEY.match(line)
            if km and km.group(1).strip("\"'").split(".")[0] == key:
                return no
    return best_line


def validation_error(
    exc: ValidationError, source: str, text: str | None, prefix: tuple[str, ...] = ()
) -> ConfigError:
    """The first pydantic error as a :class:`ConfigError` naming file, line and field.

    ``prefix`` is where the validated table sits in the file (``("authn",)``
    for a section checked by its own model).
    """
    err = exc.errors()[0]
    loc = [*prefix, *(p for p in err["loc"] if isinstance(p, (str, int)))]
    line = locate(text, loc) if text is not None and source.endswith(".toml") else None
    more = len(exc.errors()) - 1
    msg = err["msg"] + (f" (and {more} more error{'s' if more > 1 else ''})" if more else "")
    return ConfigError(msg, file=source, line=line, field=dotted(loc) or None)
