"""Whitespace that pushes text out of sight: hundreds of spaces, tabs, newlines or line separators.

A description that reads "Books a meeting room." in the approval dialog can go on after a few
hundred spaces (or LINE SEPARATORs, ideographic spaces, no-break spaces) with a sentence no
reviewer scrolls to; the model reads it like any other. Honest text has short stretches:
indentation (a docstring indented 24 columns), aligned columns, a blank line or two. A
whitespace run before more text is measured both ways, in line breaks and in the widest
stretch on one line, and reported when either would take the text off the screen.
"""

from __future__ import annotations

import re

from ..model import Finding

#: (line breaks, columns on one line) that push text out of sight in a definition.
DEFINITION_LIMITS = (16, 64)
#: The same in a result, where aligned output and files with blank stretches are ordinary.
RESULT_LIMITS = (64, 160)
_RUN = re.compile(r"\s{16,}(?=\S)")
_BREAKS = re.compile("[\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")


def may_be_padded(text: str, *, result: bool = False) -> bool:
    """Cheap gate over all fields joined: a whitespace run somewhere that is too tall or too wide."""
    if text.isascii() and "        " not in text and "\n\n\n\n" not in text and "\t\t" not in text:
        return False  # no run of 16 can hide without eight spaces, four newlines or two tabs in a row
    return bool(padding_findings(text, "/", result=result))


def padding_findings(text: str, pointer: str, *, result: bool) -> list[Finding]:
    """``unicode.padding`` when a whitespace run before more text is too tall or too wide."""
    max_lines, max_columns = RESULT_LIMITS if result else DEFINITION_LIMITS
    for match in _RUN.finditer(text):
        run = match.group(0)
        lines = len(_BREAKS.findall(run))
        columns = max(len(part.expandtabs(8)) for part in _BREAKS.split(run))
        if lines >= max_lines or columns >= max_columns:
            kinds = ", ".join(sorted({f"U+{ord(c):04X}" for c in run})[:4])
            tail = text[match.end() : match.end() + 60]
            message = f"{len(run)} whitespace characters ({kinds}) push text out of sight: {tail!r}"
            return [Finding("unicode.padding", "medium", pointer, message)]
    return []
