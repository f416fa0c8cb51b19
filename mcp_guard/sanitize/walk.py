"""Every text field of an MCP object, with its JSON Pointer.

Definitions and results are walked the same way: every string value is text
the model may read, every key under ``properties`` is a name the model reads, and
so is any key outside ASCII (a ``structuredContent`` field named with tag characters).
Only fields that are structure, not prose (``type``, ``$ref``, binary
``data``/``blob``) are skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

#: Keys whose string values are schema plumbing or binary payloads, never prose.
_SKIP_VALUES = frozenset(
    {"type", "$schema", "$ref", "$id", "format", "mimeType", "data", "blob", "$dynamicRef"}
)
#: Keys whose mapping keys are names the model reads (property names and friends).
_NAME_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"})
#: Keys whose string values are identifiers rather than sentences.
_IDENTIFIER_KEYS = frozenset({"name", "required", "enum", "const"})
#: JSON scalars other than strings: never walked into, and cheaper to rule out than ``isinstance``.
_SCALARS = frozenset({bool, int, float, type(None)})


class TextField(NamedTuple):
    pointer: str
    text: str
    identifier: bool


def escape(token: str) -> str:
    """RFC 6901 escaping of one reference token."""
    if "~" in token or "/" in token:
        return token.replace("~", "~0").replace("/", "~1")
    return token


def text_fields(value: Any) -> list[TextField]:
    """Each string in ``value`` (and each property name) as a :class:`TextField`, in document order."""
    out: list[TextField] = []
    _walk(value, "", None, out)
    return out


def _walk(value: Any, pointer: str, key: str | None, out: list[TextField]) -> None:
    # Strings are handled in the loop of their container (no call per leaf), and ``type(...) is``
    # comes first: JSON parsed by ``json`` is plain dicts, lists and strs, and the ABC
    # ``isinstance`` checks cost more than the rest of the walk.
    if isinstance(value, str):
        _text(value, pointer, key, out)
    elif type(value) is dict or (type(value) is not list and isinstance(value, Mapping)):
        for k, v in value.items():
            if not isinstance(k, str):
                continue
            if not k.isascii() and key not in _NAME_MAPS:
                # Any other key the model reads (``structuredContent`` fields, extension keys) can
                # carry tag characters or look-alike letters too; ASCII keys are plain names.
                out.append(TextField(f"{pointer}/{escape(k)}", k, True))
            vt = type(v)
            if vt in _SCALARS:
                continue  # a number, flag or null holds no text: no pointer is built for it
            # ``escape`` inlined: most keys hold neither "~" nor "/", and a call per key adds up.
            child = f"{pointer}/{escape(k)}" if "~" in k or "/" in k else f"{pointer}/{k}"
            if vt is str:
                if k not in _SKIP_VALUES or " " in v:
                    out.append(TextField(child, v, k in _IDENTIFIER_KEYS and " " not in v))
                continue
            if k in _NAME_MAPS and isinstance(v, Mapping):
                for name in v:
                    if isinstance(name, str):
                        token = escape(name) if "~" in name or "/" in name else name
                        out.append(TextField(f"{child}/{token}", name, True))
            if vt is dict or vt is list or isinstance(v, (str, Mapping, list, tuple)):
                _walk(v, child, k, out)
    elif isinstance(value, (list, tuple)):
        for index, v in enumerate(value):
            vt = type(v)
            if vt is str:
                _text(v, f"{pointer}/{index}", key, out)
            elif (
                vt is dict
                or vt is list
                or (vt not in _SCALARS and isinstance(v, (str, Mapping, list, tuple)))
            ):
                _walk(v, f"{pointer}/{index}", key, out)


def _text(value: str, pointer: str, key: str | None, out: list[TextField]) -> None:
    # Plumbing keys hold tokens; the same key holding prose (``structuredContent.data``) is text.
    if key not in _SKIP_VALUES or " " in value:
        out.append(TextField(pointer, value, key in _IDENTIFIER_KEYS and " " not in value))
