# Look-alike characters are this module's subject: ruff's ambiguous-character warnings do not apply.
# ruff: noqa: RUF002
"""Look-alike letters in the names a person reads to approve an item, beyond tool names.

A tool's ``name`` is checked on its own (:func:`.names.check_name`); the same trick works on a
resource's ``name`` (``sеttings.json`` with a Cyrillic ``е``), on display titles
(``annotations.title``, ``title``) and on names with spaces ("Tор 100 ассounts"), which are
judged word by word since a title may honestly mix scripts across words ("Поиск в GitHub").
A look-alike letter the item's own prose also uses (a Turkish ``ı`` in a name whose
description is Turkish) is the item's language, not a disguise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..model import Finding
from .names import check_name

#: Kinds whose ``name`` the model calls by; their name is an identifier checked whole.
_CALLED = frozenset({"tool", "prompt"})
#: Kinds whose ``name`` and ``title`` a person reads in a list of resources.
_LISTED = frozenset({"resource", "resource_template"})


def name_findings(kind: str, item: Mapping[str, Any]) -> list[Finding]:
    """Look-alike findings for an item's name and titles (``/name``, ``/title``, ``/annotations/title``)."""
    if kind not in _CALLED and kind not in _LISTED:
        return []
    out: list[Finding] = []
    name = item.get("name")
    if isinstance(name, str) and not name.isascii():
        if " " not in name:
            out.extend(_unless_own_language(check_name(name), name, item))
        elif kind in _LISTED:
            out.extend(_word_findings(name, "/name"))
    notes = item.get("annotations")
    titles = [("/title", item.get("title"))]
    if isinstance(notes, Mapping):
        titles.append(("/annotations/title", notes.get("title")))
    for pointer, title in titles:
        if isinstance(title, str) and not title.isascii():
            out.extend(_word_findings(title, pointer))
    return out


def _word_findings(text: str, pointer: str) -> list[Finding]:
    """A word that mixes scripts (look-alike letters inside a Latin word), judged word by word."""
    for word in text.split():
        for finding in check_name(word, pointer):
            if finding.rule == "name.mixed-script":
                label = pointer.rsplit("/", 1)[-1]
                return [Finding(finding.rule, finding.severity, pointer, f"{label}: {finding.message}")]
    return []


def _unless_own_language(findings: list[Finding], name: str, item: Mapping[str, Any]) -> list[Finding]:
    """Drop ``name.confusable`` when every non-ASCII letter of the name is in the item's description."""
    description = item.get("description")
    if not isinstance(description, str):
        return findings
    odd = {c for c in name if not c.isascii() and c.isalpha()}
    if odd and odd <= set(description):
        return [f for f in findings if f.rule != "name.confusable"]
    return findings
