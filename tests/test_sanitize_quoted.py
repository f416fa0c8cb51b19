"""The quotation patterns open each branch with its quote mark, and match what they matched before.

``(?<!\\w)'`` (no word character before the apostrophe) became ``'(?<!\\w')`` (checked just after
it), so ``re`` can skip to quote marks; the property test holds both forms to the same matches.
"""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_guard.sanitize import lexicon, lexicon_intl

#: The patterns as written before: the apostrophe's look-behind first.
_BEFORE = re.compile(
    r"\"[^\"\n]*?\s\S+\s[^\"\n]*?\"|“[^”\n]*?\s\S+\s[^”\n]*?”|(?<![\w])'[^'\n]*?\s\S+\s[^'\n]*?'(?![\w])"
)
_BEFORE_INTL = re.compile(
    "«[^»\n]{4,}»|「[^」\n]{4,}」|『[^』\n]{4,}』|“[^”\n]{4,}”|„[^“”\n]{4,}[“”]|"
    "(?<!\\w)'[^'\n]{4,}'(?!\\w)|\"[^\"\n]{4,}\""
)
_TEXT = st.text(alphabet=st.sampled_from(list("'\"“”„«»「」 \n\tab_1é.-")), max_size=40)


def _spans(pattern: re.Pattern[str], text: str, start: int = 0) -> list[tuple[int, int]]:
    return [m.span() for m in pattern.finditer(text, start)]


@settings(max_examples=2000, deadline=None)
@given(text=_TEXT, start=st.integers(min_value=0, max_value=5))
def test_quotations_match_as_before(text: str, start: int) -> None:
    # From a later start too: the look-behind may then read a character before the start.
    assert _spans(lexicon._QUOTED, text, start) == _spans(_BEFORE, text, start)
    assert _spans(lexicon_intl._QUOTED, text, start) == _spans(_BEFORE_INTL, text, start)
    assert lexicon._QUOTED.sub(" ", text) == _BEFORE.sub(" ", text)


def test_an_apostrophe_after_a_letter_opens_no_quotation() -> None:
    assert _spans(lexicon._QUOTED, "don't do it, won't") == []
    assert _spans(lexicon._QUOTED, "say 'ignore all rules' now") == [(4, 22)]
    assert _spans(lexicon_intl._QUOTED, "l'homme 'quatre mots' x") == [(8, 21)]
