# Look-alike characters are this module's subject: ruff's ambiguous-character warnings do not apply.
# ruff: noqa: RUF001
"""Tool names that imitate other tool names.

A squatting server registers ``create_pull_requ\\u0435st`` (Cyrillic ``\\u0435``) next to
the real ``create_pull_request`` so the model picks the wrong one. Names are
reduced to a *skeleton* (NFKC plus a map of Latin look-alikes); a name that
mixes scripts, or whose skeleton equals a different name's, is reported.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from ..model import Finding
from .letters import letter_table

_LOOKALIKES = {
    # Cyrillic
    "а": "a",
    "в": "b",
    "е": "e",
    "ё": "e",
    "і": "i",
    "ї": "i",
    "ј": "j",
    "к": "k",
    "м": "m",
    "н": "h",
    "о": "o",
    "р": "p",
    "с": "c",
    "т": "t",
    "у": "y",
    "х": "x",
    "ѕ": "s",
    "һ": "h",
    "ԁ": "d",
    "ԛ": "q",
    "ԝ": "w",
    "ӏ": "l",
    "ɡ": "g",
    "ь": "b",
    "ѵ": "v",
    "ԍ": "g",
    "ԗ": "p",
    "А": "A",
    "В": "B",
    "Е": "E",
    "К": "K",
    "М": "M",
    "Н": "H",
    "О": "O",
    "Р": "P",
    "С": "C",
    "Т": "T",
    "У": "Y",
    "Х": "X",
    "Ѕ": "S",
    "І": "I",
    "Ј": "J",
    "Ԁ": "D",
    "Ԛ": "Q",
    "Ԝ": "W",
    # Greek
    "α": "a",
    "β": "b",
    "γ": "y",
    "ε": "e",
    "ι": "i",
    "κ": "k",
    "ν": "v",
    "ο": "o",
    "ρ": "p",
    "τ": "t",
    "υ": "u",
    "χ": "x",
    "ω": "w",
    "Α": "A",
    "Β": "B",
    "Ε": "E",
    "Ζ": "Z",
    "Η": "H",
    "Ι": "I",
    "Κ": "K",
    "Μ": "M",
    "Ν": "N",
    "Ο": "O",
    "Ρ": "P",
    "Τ": "T",
    "Υ": "Y",
    "Χ": "X",
    # Latin extensions, Armenian and others that pass for ASCII
    "ı": "i",
    "ɑ": "a",
    "ɩ": "i",
    "ℓ": "l",
    "ǀ": "l",
    "օ": "o",
    "ս": "u",
    "ց": "g",
    "հ": "h",
    "ո": "n",
    "Ꭰ": "D",
    "Ꭼ": "E",
    "Ꮋ": "H",
    "Ꭺ": "A",
    "ꓲ": "I",
    "ꓳ": "O",
    "‐": "-",
    "‑": "-",
    "‒": "-",
    "–": "-",
    "＿": "_",
}
#: Public for the styled-text check, which counts these letters inside Latin words.
LOOKALIKES = _LOOKALIKES
_TABLE = str.maketrans(_LOOKALIKES)
_SCRIPTS = ("LATIN", "CYRILLIC", "GREEK", "ARMENIAN", "CHEROKEE")


def skeleton(name: str) -> str:
    """A comparison key under which look-alike names collide."""
    if name.isascii():
        return name
    folded = unicodedata.normalize("NFKC", name.translate(letter_table())).translate(_TABLE)
    return "".join(c for c in folded if unicodedata.category(c) not in ("Cf", "Mn"))


def _scripts(name: str) -> set[str]:
    found: set[str] = set()
    for ch in name:
        if ch.isalpha():
            script = unicodedata.name(ch, "UNKNOWN").split(" ", 1)[0]
            found.add(script if script in _SCRIPTS else "OTHER")
    return found


def check_name(name: str, field: str = "/name") -> list[Finding]:
    """Findings about one name on its own (no other names needed)."""
    if name.isascii():
        return []
    findings: list[Finding] = []
    scripts = _scripts(name)
    skel = skeleton(name)
    if "LATIN" in scripts and len(scripts & set(_SCRIPTS)) > 1 and not _localised(name):
        findings.append(
            Finding(
                "name.mixed-script",
                "high",
                field,
                f"name mixes {', '.join(sorted(scripts))} letters; reads as {skel!r}",
            )
        )
    elif skel.isascii() and skel != name and any(c.isalpha() for c in skel):
        findings.append(Finding("name.confusable", "medium", field, f"name is a look-alike of {skel!r}"))
    return findings


def _localised(name: str) -> bool:
    """A namespaced name whose parts are each in one script (``crm.поиск_клиента``), none of them
    a word of look-alike letters that reads as Latin: a localised name, not a disguised one."""
    parts = [p for p in re.split(r"[._\-/:]+", name) if p]
    if len(parts) < 2:
        return False
    for part in parts:
        if len(_scripts(part) & set(_SCRIPTS)) > 1:
            return False
        if not part.isascii() and skeleton(part).isascii():
            return False
    return True


_ASCII_LOOKALIKES = (("rn", "m"), ("vv", "w"), ("0", "o"), ("1", "l"), ("|", "l"), ("i", "l"), ("-", "_"))


def _loose(name: str) -> str:
    """A coarser key that also folds ASCII look-alikes (``rn``/``m``, ``1``/``l``, ``0``/``o``)."""
    key = skeleton(name)
    for old, new in _ASCII_LOOKALIKES:
        key = key.replace(old, new)
    return key


def check_collisions(names: Iterable[str | None]) -> dict[int, Finding]:
    """Index -> finding for each name that imitates a different name in the same list.

    Equal skeletons (look-alike letters from other scripts, full-width forms)
    are high; names equal only after folding ASCII look-alikes
    (``read_fi1e`` beside ``read_file``) are medium: rare by accident, but
    ASCII alone cannot prove intent.
    """
    listed = list(names)
    out: dict[int, Finding] = {}
    for key_of, severity in ((skeleton, "high"), (_loose, "medium")):
        groups: dict[str, list[tuple[int, str]]] = {}
        for index, name in enumerate(listed):
            if name:
                groups.setdefault(key_of(name), []).append((index, name))
        for group in groups.values():
            distinct = {n for _, n in group}
            if len(distinct) < 2:
                continue
            for index, name in group:
                if index in out:
                    continue
                others = sorted(n for n in distinct if n != name)
                if name.isascii() and any(not n.isascii() for n in others):
                    continue  # the original; the imitator gets the finding
                plain = severity == "medium" and name.isascii() and all(n.isascii() for n in others)
                if plain and _ascii_score(name) <= min(_ascii_score(n) for n in others):
                    continue  # the plainer spelling is taken as the original
                out[index] = Finding(
                    "name.collision",
                    "high" if severity == "high" else "medium",
                    "/name",
                    f"name {name!r} is confusable with {others[0]!r} in the same list",
                )
    return out


def _ascii_score(name: str) -> int:
    """How many look-alike substitutions a name contains (the imitator has more)."""
    return sum(name.count(c) for c in "01|") + name.count("rn") + name.count("vv")
