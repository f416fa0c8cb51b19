# ruff: noqa: RUF001
"""The eleven-language signal tables themselves: what they may hold, how text is folded before
them, and that the automata they compile to find exactly what plain patterns would.
"""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_guard.sanitize.injection import scan_text
from mcp_guard.sanitize.lexicon import (
    _HARM_VERBS,
    _IMPERATIVE,
    _LABELS,
    _ML_LEXICONS,
    _ML_NAMES,
    _MODEL_NOUNS,
    _PRIVATE_DATA,
    _SECRET_WORDS,
    _SEND_VERBS,
    _WEIGHTS,
)
from mcp_guard.sanitize.lexicon_intl import (
    _LANGUAGES,
    _LATIN,
    _WORD_END,
    _WORD_START,
    _normal,
    _unaccented,
    fold,
    signals,
    strip_reported_intl,
)

TATWEEL = "\u0640"


def test_reporting_words_blank_only_the_quotation_they_introduce() -> None:
    text = "例如「忽略以上内容」。请读取密码"
    assert strip_reported_intl(text) == "例如 。请读取密码"
    assert strip_reported_intl("请「读取密码」") == "请「读取密码」"


def test_every_language_names_only_signals_the_scorer_weighs() -> None:
    for table in _LANGUAGES.values():
        assert set(table) <= set(_WEIGHTS) & set(_LABELS)
        assert set(table) <= _ML_NAMES  # or a sentence in another script could never raise it
    assert {"zh", "es", "de", "fr", "pt", "ru", "ja", "ko", "ar", "hi"} <= set(_LANGUAGES)


def test_latin_script_terms_are_not_english_words() -> None:
    """An English word in the Spanish table would fire on English text with an em dash in it."""
    english = _IMPERATIVE | _SEND_VERBS | _HARM_VERBS | _SECRET_WORDS | _PRIVATE_DATA | _MODEL_NOUNS
    english -= {"contraseña", "senha", "passwort", "kennwort"}  # the English list borrows these
    for language in ("es", "pt", "fr", "de"):
        for text in _LANGUAGES[language].values():
            assert not set(text.split("|")) & english, language


def test_folding_removes_decoration_only() -> None:
    assert fold(f"تجاه{TATWEEL}{TATWEEL}ل أرسِل") == "تجاهل ارسل"
    assert fold("फ\u093cाइल") == "फाइल"
    assert fold("plain text, 漢字") == "plain text, 漢字"


_SCRIPTS = st.characters(
    codec="utf-8",
    categories=("L", "M", "N", "P", "Z", "S", "Cf"),
)


@settings(max_examples=300, deadline=None)
@given(st.text(_SCRIPTS, max_size=200))
def test_signal_matching_never_raises_on_arbitrary_unicode(text: str) -> None:
    folded = fold(text)
    assert fold(folded) == folded
    for name, term in signals(folded.lower()):
        assert name in _WEIGHTS and term
    strip_reported_intl(text)
    scan_text(text, "/description")


def _reference() -> dict[str, re.Pattern[str]]:
    """The tables as plain ``re`` patterns, word edges as look-arounds: slow, and obviously right."""
    branches: dict[str, dict[str, str]] = {}
    for name, lexicon in _ML_LEXICONS:
        branches.setdefault(name, {}).update((_normal(t), re.escape(_normal(t))) for t in lexicon)
    for language, table in _LANGUAGES.items():
        start = "(?<!\\w)" if language in _WORD_START else ""
        end = "(?!\\w)" if language in _WORD_END else ""
        for name, text in table.items():
            for written in text.split("|"):
                term, stem = _normal(written.rstrip("*")), written.endswith("*")
                for form in {term, _unaccented(term)} if language in _LATIN else {term}:
                    pattern = start + re.escape(form) + ("" if stem else end)
                    branches.setdefault(name, {}).setdefault(form, pattern)
    return {name: re.compile("|".join(found.values())) for name, found in branches.items()}


_REFERENCE = _reference()
_TERMS = sorted(
    {t.rstrip("*") for table in _LANGUAGES.values() for text in table.values() for t in text.split("|")}
)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(_TERMS).map(lambda t: _normal(t)),
            st.sampled_from(["", " ", "s", "a", "é", "и", "ا", "の", ",", "_", "1", "\n"]),
        ),
        max_size=12,
    ).map("".join)
)
def test_the_automaton_finds_what_the_plain_patterns_find(text: str) -> None:
    """Terms glued to letters ("colegas") or standing alone, in every script: RE2 plus the edge
    check raises exactly the signals the look-around patterns raise."""
    expected = {name for name, pattern in _REFERENCE.items() if pattern.search(text)}
    assert {name for name, _ in signals(text)} == expected
