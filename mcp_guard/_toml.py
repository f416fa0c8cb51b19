"""Reading TOML/JSON files with error messages that point at a line.

``tomllib`` and pydantic know nothing of each other: pydantic reports a field
path, the parser the text. This module maps a field path back to the line
that defines it, so "authn.jwt[1].audience: field required" can say which line
of which file to fix.
"""

from __future__ import annotations

import difflib
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError

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


class ConfigErrors(ConfigError):
    """Several problems of one file; behaves as the first (``file``, ``line``, ``field``) and prints
    one ``FILE:LINE: FIELD: message`` line per problem."""

    def __init__(self, errors: Sequence[ConfigError]) -> None:
        self.errors = list(errors)
        first = self.errors[0]
        super().__init__(first.detail, file=first.file, line=first.line, field=first.field)

    def format(self) -> str:
        return "\n".join(ConfigError.format(e) for e in self.errors)


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _step(tp: Any, part: str | int) -> Any:
    """The type of ``tp[part]``: a model's field, a list's item, a dict's value (through Optional)."""
    if _is_model(tp):
        field = tp.model_fields.get(part) if isinstance(part, str) else None
        return None if field is None else field.annotation
    origin, args = get_origin(tp), get_args(tp)
    if origin in (list, tuple) and args and isinstance(part, int):
        return args[0]
    if origin is dict and len(args) == 2 and isinstance(part, str):
        return args[1]
    for arg in args:  # a Union (Optional): the first member that has this part
        found = _step(arg, part) if arg is not type(None) else None
        if found is not None:
            return found
    return None


def _fields_at(model: type[BaseModel] | None, loc: Sequence[str | int]) -> list[str]:
    """The keys the table at ``loc`` of ``model`` accepts (empty when it cannot be told)."""
    current: Any = model
    for part in loc:
        if current is None:
            return []
        current = _step(current, part)
    candidates = [current, *get_args(current)]
    for tp in candidates:
        if _is_model(tp):
            return [f.alias or name for name, f in tp.model_fields.items() if not f.exclude]
    return []


def known_fields(model: type[BaseModel] | None, loc: Sequence[str | int]) -> list[str]:
    """The keys a table at ``loc`` of ``model`` accepts (for a "did you mean")."""
    return _fields_at(model, loc)


def _message(err: Any, model: type[BaseModel] | None) -> str:
    loc = [p for p in err["loc"] if isinstance(p, (str, int))]
    if err["type"] == "extra_forbidden" and loc and isinstance(loc[-1], str):
        known = _fields_at(model, loc[:-1])
        close = difflib.get_close_matches(loc[-1], known, n=1, cutoff=0.6)
        hint = f" (did you mean `{close[0]}`?)" if close else ""
        return f"unknown key or table{hint}" + (f"; known: {', '.join(sorted(known))}" if known else "")
    return str(err["msg"])


def validation_error(
    exc: ValidationError,
    source: str,
    text: str | None,
    prefix: tuple[str, ...] = (),
    model: type[BaseModel] | None = None,
) -> ConfigError:
    """Every pydantic error as a :class:`ConfigError` naming file, line and field (one line each).

    ``prefix`` is where the validated table sits in the file (``("authn",)``
    for a section checked by its own model); ``model`` (the model validated) lets an unknown key
    be answered with the closest known one.
    """
    out: list[ConfigError] = []
    seen: set[tuple[int | None, str, str]] = set()
    for err in exc.errors():
        loc = [*prefix, *(p for p in err["loc"] if isinstance(p, (str, int)))]
        line = locate(text, loc) if text is not None and source.endswith(".toml") else None
        msg = _message(err, model)
        key = (line, dotted(loc), msg)
        if key in seen:
            continue
        seen.add(key)
        out.append(ConfigError(msg, file=source, line=line, field=dotted(loc) or None))
    out.sort(key=lambda e: e.line if e.line is not None else 1 << 30)  # stable: file order
    return out[0] if len(out) == 1 else ConfigErrors(out)
