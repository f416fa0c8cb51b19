"""Annotations that contradict the text: a tool that says it is safe and says it is not."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from ..model import Finding
from .fastre import Literals

#: What a tool that declares itself read-only or non-destructive must not say it does.
_DESTRUCTIVE_CLAIM = re.compile(
    r"(?<!not )(?<!never )(?<!n't )\b(?:permanently\s+(?:delet|remov|eras)\w*|delet(?:es|ing)|"
    r"empt(?:ies|ying)\s+(?:the\s+)?trash|wip(?:es|ing)|eras(?:es|ing)|drops?\s+(?:the\s+)?(?:table|database)|overwrit(?:es|ing)|destroy(?:s|ing))\b"
)
_OUTBOUND_CLAIM = re.compile(
    r"\b(?:(?:is|are|also|gets?)\s+(?:also\s+|\w+\s+and\s+)?(?:posted|sent|uploaded|forwarded|shared|copied|synced)\s+"
    r"(?:to|with)|"
    r"always\s+set\s+to\s+\S+@)"
)


_STEMS = (
    "delet",
    "empt",
    "wip",
    "eras",
    "drop",
    "overwrit",
    "destroy",
    "remov",
    "sent",
    "posted",
    "upload",
    "forward",
    "shared",
    "copied",
    "synced",
    "always set",
)
#: One pass for all the stems: most prose holds none of them and is done after it. Each claim
#: pattern needs one of its own stems (the first eight are destructive, the rest outbound), so a
#: pattern runs only on text holding one of those.
_STEMS_IN = Literals(_STEMS).found
_DESTRUCTIVE_STEMS = frozenset(_STEMS[:8])


def annotation_findings(item: Mapping[str, object], fields: Sequence[tuple[str, str]]) -> list[Finding]:
    """A tool whose annotations promise safety while its text says otherwise (a rug pull's tell).

    ``readOnlyHint: true`` or ``destructiveHint: false`` next to "permanently deletes" or "is
    posted to https://..." means one of the two is lying, and clients trust the annotation.
    """
    notes = item.get("annotations")
    if not isinstance(notes, Mapping):
        return []
    read_only = notes.get("readOnlyHint") is True
    harmless = read_only or notes.get("destructiveHint") is False
    if not harmless:
        return []
    for pointer, text in fields:
        low = text.lower()
        stems = _STEMS_IN(low)
        if not stems:
            continue
        destructive = not _DESTRUCTIVE_STEMS.isdisjoint(stems)
        outbound = read_only and not _DESTRUCTIVE_STEMS.issuperset(stems)
        if (destructive and _DESTRUCTIVE_CLAIM.search(low)) or (outbound and _OUTBOUND_CLAIM.search(low)):
            return [
                Finding(
                    "injection.annotation-mismatch",
                    "medium",
                    pointer,
                    "annotations promise a safe tool; the text says it deletes or sends data out",
                )
            ]
    return []
