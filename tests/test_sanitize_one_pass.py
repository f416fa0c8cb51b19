"""The scanner's one-pass helpers answer exactly what the per-item loops they replace answer.

RE2 sets find every hint of a list in one pass (``fastre.Literals``), the encoded-text check
searches runs and hints together, and the technique scorer splits ASCII text into sentences
without the look-behind pattern. Each is held here to the plain version, on generated text that
is dense in the characters that matter (punctuation, quotes, newlines, run alphabets, non-ASCII).
"""

from __future__ import annotations

import hashlib
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_guard.sanitize import annotations, decoders, encoded, gate, injection, lexicon, technique, unicode
from mcp_guard.sanitize.annotations import _STEMS
from mcp_guard.sanitize.fastre import Literals
from mcp_guard.sanitize.scanner import content_digest

_PIECES = st.one_of(
    st.sampled_from(
        [
            *encoded._DECODE_HINTS,
            *_STEMS,
            "ROT13",
            "Reversed",
            "e.g.",
            " -- ",
            " — ",
            "。",
            "\uff1b",
            "\u2028",
        ]
    ),
    st.text(alphabet="aZ09+/_=- .!?;:\n\t\r\x0b\x1c'\"“”%\\x&#", max_size=8),
    st.text(alphabet=st.characters(max_codepoint=127), max_size=6),  # any ASCII: a new break mark shows
    st.text(max_size=4),  # anything at all, lone surrogates included
)
_TEXT = st.lists(_PIECES, max_size=16).map("".join)
_LONG = st.lists(
    st.one_of(_PIECES, st.text(alphabet="abcXYZ019+/_=-", min_size=20, max_size=30)), max_size=8
).map("".join)


@settings(max_examples=400, deadline=None)
@given(text=_TEXT)
def test_literal_sets_find_what_a_loop_finds(text: str) -> None:
    for literals in (encoded._DECODE_HINTS, _STEMS, lexicon._PAYLOAD_MARKS):
        found = Literals(literals)
        assert found.found(text) == [literal for literal in literals if literal in text]
        assert found.any_in(text) == any(literal in text for literal in literals)


def _may_be_encoded_plain(text: str) -> bool:
    """The check without the one-pass RE2 shortcut for ASCII text: each test on its own."""
    long_word = max(map(len, text.split()), default=0) >= 24
    if long_word and (encoded._RUNS.search(text) is not None or decoders.base85_words(text)):
        return True
    low = text.lower()
    if any(hint in low for hint in encoded._DECODE_HINTS):
        return True
    return decoders.spaced_hex(text) or decoders.padded_words(text) or decoders.rot13_likely(low)


@settings(max_examples=400, deadline=None)
@given(text=_LONG)
def test_encoded_check_and_runs_agree_with_the_plain_patterns(text: str) -> None:
    assert encoded._may_be_encoded(text) == _may_be_encoded_plain(text)
    assert encoded._runs(text) == [m.group(0) for m in encoded._RUNS.finditer(text)]


@settings(max_examples=600, deadline=None)
@given(text=_TEXT)
def test_sentence_split_agrees_with_the_sentence_pattern(text: str) -> None:
    low = text.lower()
    assert technique._sentences(low) == [s for s in lexicon._SENTENCE.split(low) if s and s.strip()]


def test_sentence_split_on_the_usual_shapes() -> None:
    text = "first. second!\n\nthird?  fourth; fifth.\n  sixth\n.\nseventh e.g. x.y -- z"
    expected = [s for s in lexicon._SENTENCE.split(text) if s and s.strip()]
    assert technique._sentences(text) == expected
    assert re.sub(r"\s+", " ", " ".join(expected)).startswith("first. second! third?")


@settings(max_examples=400, deadline=None)
@given(text=_TEXT)
def test_text_the_quote_check_passes_over_holds_no_quotation(text: str) -> None:
    if text.count('"') < 2 and text.count("'") < 2 and "”" not in text:
        assert lexicon._QUOTED.search(text) is None
        assert technique._strip_reported(text) is text


@settings(max_examples=600, deadline=None)
@given(text=_TEXT)
def test_sentence_ends_are_the_class_matches_the_filter_kept(text: str) -> None:
    low = text.lower()
    size = len(low)
    plain = [
        e
        for e in (m.end() for m in gate._END_CHARS.finditer(low))
        if low[e - 1] not in ".!?" or (e < size and low[e].isspace())
    ]
    assert gate._sentence_ends(low) == [*plain, size]
    assert gate._sentence_ends(low)[:-1] == [m.end() for m in gate._SENTENCE_END.finditer(low)]


@settings(max_examples=400, deadline=None)
@given(text=_TEXT)
def test_suspect_character_gate_is_the_three_checks_it_replaces(text: str) -> None:
    plain = (
        "\x1b" in text or unicode._CONTROL.search(text) is not None or "\r" in text
        if text.isascii()
        else True
    )
    assert unicode.has_suspect_chars(text) == plain


def test_a_blank_sentence_is_what_reading_empty_text_gives() -> None:
    for own in (frozenset(), frozenset({"send", "email", "token"})):
        read, blank = technique._Sentence("", own), technique._Sentence.blank()
        assert (read.text, read.found, read.possible, read.words, read.deep) == (
            blank.text,
            blank.found,
            blank.possible,
            blank.words,
            blank.deep,
        )


@settings(max_examples=300, deadline=None)
@given(text=_TEXT)
def test_ascii_letters_are_kept_in_order(text: str) -> None:
    assert injection._letters(text) == "".join(c for c in text if c.isascii() and c.isalpha())


@settings(max_examples=300, deadline=None)
@given(
    texts=st.lists(st.one_of(st.sampled_from(sorted(lexicon._WIDE_WORDS)), _TEXT), min_size=3, max_size=6),
    keys=st.lists(st.sampled_from(sorted(lexicon._PAYLOAD_WORDS)), max_size=3),
)
def test_sentences_chosen_for_reading_are_those_holding_a_needle(texts: list[str], keys: list[str]) -> None:
    low = " ".join(texts)
    wide = [word for word in lexicon._WIDE_WORDS if word in low]
    plain = {
        i
        for i, text in enumerate(texts)
        if any(key in text for key in keys)
        or (wide and any(word in text for word in wide))
        or "[" in text
        or "<" in text
        or "you" in text
    }
    assert technique._candidates(low, texts, keys) == plain


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(st.one_of(st.sampled_from(sorted(gate._SUBSTRINGS)), _TEXT), max_size=8))
def test_anchor_substrings_are_found_at_every_position(parts: list[str]) -> None:
    low = "".join(parts).lower()
    plain = sorted(
        (at, sorted(fams))
        for sub, fams in gate._SUBSTRINGS.items()
        for at in range(len(low))
        if low.startswith(sub, at)
    )
    assert sorted((at, sorted(fams)) for at, fams in gate._substring_hits(low)) == plain


_CLAIMS = st.lists(
    st.one_of(
        st.sampled_from(
            [*_STEMS, "permanently ", "deletes", "is sent to", "are also uploaded to", "not ", "the table"]
        ),
        st.sampled_from(["always set to a@b", "drops the database", " ", "n't ", "wiping", "erases"]),
        _TEXT,
    ),
    max_size=8,
).map("".join)


@settings(max_examples=400, deadline=None)
@given(text=_CLAIMS, read_only=st.booleans())
def test_annotation_claims_are_looked_for_where_their_stems_are(text: str, read_only: bool) -> None:
    low = text.lower()
    plain = any(stem in low for stem in _STEMS) and bool(
        annotations._DESTRUCTIVE_CLAIM.search(low) or (read_only and annotations._OUTBOUND_CLAIM.search(low))
    )
    notes = {"readOnlyHint": True} if read_only else {"destructiveHint": False}
    assert bool(annotations.annotation_findings({"annotations": notes}, [("/description", text)])) == plain


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(item=_JSON)
def test_the_cache_key_is_the_digest_of_the_items_json(item: object) -> None:
    encoded = json.dumps(item, separators=(",", ":"), ensure_ascii=False, default=str)
    try:
        expected = hashlib.blake2b(encoded.encode("utf-8"), digest_size=16).digest()
    except UnicodeEncodeError:  # a lone surrogate: both refuse the item
        with pytest.raises(UnicodeEncodeError):
            content_digest(item)
        return
    assert content_digest(item) == expected


@settings(max_examples=400, deadline=None)
@given(
    parts=st.lists(
        st.one_of(
            st.sampled_from(sorted(lexicon._PAYLOAD_WORDS | lexicon._NEGATED_PAYLOAD | lexicon._NEGATIONS)),
            st.sampled_from([*lexicon._PAYLOAD_MARKS, "_", " ", "'", "-", "."]),
            _TEXT,
        ),
        max_size=8,
    )
)
def test_a_field_passed_over_before_tokenising_has_no_payload_key(parts: list[str]) -> None:
    low = "".join(parts).lower()
    keys = technique._payload_keys(low, lexicon._WORD.findall(low))
    if low.isascii() and not technique._ANY_PAYLOAD(low):
        assert keys == []
