"""Phrase families that make up an instruction aimed at the model, in seven languages.

Each family describes a *role* in an attack sentence (who is addressed, what is
asked, what is targeted, where data goes), not a sample string. A single weak
family means little - real tool descriptions address the model all the time -
so :mod:`.injection` scores their combination within one sentence. "Strong"
families (overrides, secrecy, chat-template tokens, templated exfiltration
URLs, decode-and-obey) are never found in honest metadata and block alone.

The tables themselves live in ``mcp_guard/data/injection-patterns.toml`` (its
header says how to edit them); this module exists to load that file once, at
import, and to give each table its Python name, type and regex flags.
"""

from __future__ import annotations

import re
import sys
from importlib import resources
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

_DATA: dict[str, Any] = tomllib.loads(
    resources.files("mcp_guard")
    .joinpath("data")
    .joinpath("injection-patterns.toml")
    .read_text(encoding="utf-8")
)
#: ``${NAME}``: a shared fragment (in a pattern) or word set (in an anchor part) from the data file.
_REF = re.compile(r"\$\{(\w+)\}")
_FRAGMENTS: dict[str, str] = _DATA["fragments"]


def _regex(alternatives: list[str]) -> str:
    """One pattern from the data file: its alternatives, fragments filled in, joined with ``|``."""
    return "|".join(_REF.sub(lambda m: _FRAGMENTS[m.group(1)], branch) for branch in alternatives)


def _w(words: str) -> frozenset[str]:
    return frozenset(words.split())


_AI = _FRAGMENTS["AI"]
_ROLE_COLON = _FRAGMENTS["ROLE_COLON"]
_ROLE_COMMA = _FRAGMENTS["ROLE_COMMA"]
_WORD_SETS = {name: _w(words) for name, words in _DATA["word_sets"].items()}
_AIW = _WORD_SETS["AI"]
_NEG = _WORD_SETS["NEG"]


def _words(part: str) -> frozenset[str]:
    """An anchor part: its words, each ``${NAME}`` replaced by that word set."""
    out: set[str] = set()
    for word in part.split():
        ref = _REF.fullmatch(word)
        out.update(_WORD_SETS[ref.group(1)] if ref else (word,))
    return frozenset(out)


#: family -> (weight, pattern). Weight 0 marks a strong family (high on its own).
FAMILIES: dict[str, tuple[int, str]] = {
    name: (int(family["weight"]), _regex(family["pattern"])) for name, family in _DATA["families"].items()
}

_PATTERNS: dict[str, list[str]] = _DATA["patterns"]

#: Credential stores: reading them is never part of a tool's job.
CREDENTIAL_PATH = re.compile(_regex(_PATTERNS["credential_path"]), re.IGNORECASE)

#: Home-directory dotfiles and well-known credential stores.
PRIVATE_PATH = _regex(_PATTERNS["private_path"])

#: Verbs that read, dump or move something; paired with PRIVATE_PATH they make an access request.
ACCESS_VERB = _regex(_PATTERNS["access_verb"])

#: Context that turns a path mention into a report about it (errors, refusals, negations).
NEGATED = re.compile(_regex(_PATTERNS["negated"]), re.IGNORECASE)

#: A URL that carries a template for conversation or secret data (an exfiltration beacon).
DATA_PLACEHOLDER = _regex(_PATTERNS["data_placeholder"])
EXFIL_URL = re.compile(_regex(_PATTERNS["exfil_url"]))
MARKDOWN_IMAGE = re.compile(_regex(_PATTERNS["markdown_image"]), re.I)

#: Words that, followed by ":" or ",", address the model ("Assistant: ..."); checked per sentence.
ROLE_MARKER_WORDS = _w(_DATA["role_marker"]["words"])
ROLE_MARKER = re.compile(_regex(_DATA["role_marker"]["pattern"]), re.MULTILINE)

#: Cheap necessary conditions for ASCII text: a family can only match if one clause has a word from each of
#: its sets (text split into ``[a-z0-9]+`` tokens), or one of the substrings occurs. Sentences with letters
#: outside ASCII skip this gate (non-ASCII punctuation and emoji split tokens like a space). Tests check
#: gated and ungated scans agree (``test_sanitize_detectors.py``, ``test_sanitize_fields.py``).
ANCHORS: dict[str, tuple[tuple[tuple[frozenset[str], ...], ...], tuple[str, ...]]] = {
    name: (
        tuple(tuple(_words(part) for part in clause) for clause in anchor["clauses"]),
        tuple(anchor["substrings"]),
    )
    for name, anchor in _DATA["anchors"].items()
}
