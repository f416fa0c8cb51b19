"""What a changed definition adds to the version that was approved (a "rug pull").

A server can ship an honest tool, wait for approval, then change it. Pins withhold any changed
item until someone approves it again; this module tells that person (and the scan) what the
change adds. Only new text counts: the sentences the approved version did not have are read on
their own, so the approved paragraphs around them cannot dilute them, and a new ``default``,
``const``, ``enum`` or ``examples`` value that is a destination (an address, a URL, an IBAN) the
approved version never named is reported, since defaults are filled in without anyone reading
them. What a change takes away or turns around (a widened ``enum``, a deleted safeguard, a
weakened default) is judged by :mod:`.meaning`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..model import Finding
from .injection import scan_fields
from .meaning import meaning_findings
from .walk import text_fields

_SENTENCES = re.compile(r"(?<=[.!?])\s+|\n+")
#: Values the model would send somewhere: an e-mail address, a URL, an IBAN, an IPv4 address.
_DESTINATION = re.compile(
    r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+|\b[a-z][a-z0-9+.-]*://[^\s\"'<>]+|\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){3,7}\b"
    r"|\b(?:\d{1,3}\.){3}\d{1,3}\b",
    re.IGNORECASE,
)
_VALUE_KEY = re.compile(r"/(?:default|const|enum|examples)(?:/\d+)?$")


def change_findings(approved: Mapping[str, Any], changed: Mapping[str, Any]) -> list[Finding]:
    """Findings about what ``changed`` adds to ``approved`` (both the same kind of definition)."""
    old_fields = text_fields(approved)
    old_texts = {f.text for f in old_fields}
    old_sentences = {s.strip() for t in old_texts for s in _SENTENCES.split(t) if s.strip()}
    old_destinations = {d.lower() for t in old_texts for d in _DESTINATION.findall(t)}
    added: list[tuple[str, str, bool]] = []
    out: list[Finding] = []
    for field in text_fields(changed):
        if not field.text or field.text in old_texts:
            continue
        pointer = field.pointer or "/"
        new = [
            s.strip() for s in _SENTENCES.split(field.text) if s.strip() and s.strip() not in old_sentences
        ]
        if new:
            added.append((pointer, " ".join(new), field.identifier))
        if _VALUE_KEY.search(pointer):
            fresh = [d for d in _DESTINATION.findall(field.text) if d.lower() not in old_destinations]
            if fresh:
                message = f"changed version sets a new destination as a schema value: {fresh[0][:80]!r}"
                out.append(Finding("change.new-destination", "medium", pointer, message))
    if added:
        # Read apart from the text that was approved, so an old honest paragraph cannot dilute it.
        for finding in scan_fields([(p, t, False) for p, t, _ in added]):
            if finding.rule != "encoded.hidden-text":
                message = f"added by the change: {finding.message}"
                out.append(Finding("change.added-instruction", finding.severity, finding.field, message))
    out.extend(meaning_findings(approved, changed))
    return out
