# Sentence ends include full-width punctuation on purpose.
# ruff: noqa: RUF001
"""The anchor pre-check: which sentences could match which families, without running any regex.

Running every family regex on every sentence is the expensive part of a scan.
This module splits text into sentences and, from one pass over its
``[a-z0-9]+`` tokens plus a few substring searches (the ``ANCHORS`` of
:mod:`.patterns`), names the families each sentence could possibly match.
It is separate from :mod:`.injection` so the detector module stays small.
"""

from __future__ import annotations

import bisect
import functools
import operator
import re

from .families import _ALL
from .fastre import Literals
from .patterns import ANCHORS, ROLE_MARKER, ROLE_MARKER_WORDS

_TOKEN = re.compile(r"[a-z0-9]+")

#: Letters (and digits) outside ASCII: words the anchors cannot see. Non-ASCII punctuation and
#: symbols (dashes, curly quotes, emoji) split tokens exactly like a space, so they need no fallback.
_NON_ASCII = re.compile(r"[^\W\x00-\x7f]+")
_SENTENCE_END = re.compile(r"[.!?](?=\s)|\n|[。！？]")
#: Candidate sentence ends (a plain class: several times faster to scan than ``_SENTENCE_END``).
_END_CHARS = re.compile(r"[.!?\n。！？]")
#: The ends of ``_SENTENCE_END``, found from that class: the look-around runs only where the class
#: matched (".!?" must be followed by whitespace), and no Python test runs per candidate.
_ENDS = re.compile(r"[.!?\n。！？](?:(?<=[.!?])(?=\s)|(?<![.!?]))")


def _index_anchors() -> tuple[dict[str, list[tuple[int, int]]], list[tuple[str, int]], dict[str, set[str]]]:
    """word -> [(clause id, part bit)]; clause id -> (family, full mask); substring -> families."""
    words: dict[str, list[tuple[int, int]]] = {}
    clauses: list[tuple[str, int]] = []
    subs: dict[str, set[str]] = {}
    for fam, (fam_clauses, fam_subs) in ANCHORS.items():
        for clause in fam_clauses:
            cid = len(clauses)
            clauses.append((fam, (1 << len(clause)) - 1))
            for bit, part in enumerate(clause):
                for word in part:
                    words.setdefault(word, []).append((cid, 1 << bit))
        for sub in fam_subs:
            subs.setdefault(sub, set()).add(fam)
    for word in ROLE_MARKER_WORDS:
        words.setdefault(word, []).append((-1, 0))  # cid -1: may start "Assistant: ..."
    return words, clauses, subs


def _substring_hits(low: str) -> list[tuple[int, set[str]]]:
    """(position, families) of every anchor substring occurrence.

    One RE2 pass names the substrings present (most texts hold two or three of the forty); only
    those are looked for again, for their positions.
    """
    hits: list[tuple[int, set[str]]] = []
    for sub in _SUBSTRINGS_IN(low):
        fams = _SUBSTRINGS[sub]
        at = low.find(sub)
        while at >= 0:
            hits.append((at, fams))
            at = low.find(sub, at + 1)
    return hits


_WORD_INDEX, _CLAUSES, _SUBSTRINGS = _index_anchors()
_WORD_SET = frozenset(_WORD_INDEX)
_SUBSTRINGS_IN = Literals(_SUBSTRINGS).found


def _clause_bits() -> tuple[dict[str, int], tuple[tuple[int, int], ...], dict[int, str], int]:
    """Each clause as a run of bits, one per part: word -> mask, (arity, starts) per arity, bit -> family.

    The clauses of one arity sit side by side, so "every part of some clause has a word" is
    ``M & M >> 1 & ... & starts`` on the OR of the sentence's word masks: a few integer operations
    in place of a loop over its words and their clauses. Bit 0 marks a role-marker word.
    """
    offset = 1
    start_of: dict[int, int] = {}
    starts: dict[int, int] = {}
    for arity in sorted({bin(mask).count("1") for _, mask in _CLAUSES}):
        for cid, (_, mask) in enumerate(_CLAUSES):
            if bin(mask).count("1") == arity:
                start_of[cid] = offset
                starts[arity] = starts.get(arity, 0) | 1 << offset
                offset += arity
    masks: dict[str, int] = {}
    for word, entries in _WORD_INDEX.items():
        for cid, bit in entries:
            masks[word] = masks.get(word, 0) | (1 if cid < 0 else 1 << (start_of[cid] + bit.bit_length() - 1))
    family_at = {start_of[cid]: fam for cid, (fam, _) in enumerate(_CLAUSES)}
    return masks, tuple(sorted(starts.items())), family_at, offset


_WORD_MASKS, _ARITY_STARTS, _FAMILY_AT, _CLAUSE_BIT_COUNT = _clause_bits()


def _families_of(hits: frozenset[str] | set[str]) -> tuple[frozenset[str], bool]:
    """Families whose every clause part has a word in ``hits``; and whether a role-marker word is there."""
    m = functools.reduce(operator.or_, map(_WORD_MASKS.__getitem__, hits), 0)
    done = 0
    run = m
    width = 1
    for arity, starts in _ARITY_STARTS:  # ascending: each arity extends the previous one's run
        while width < arity:  # ``run`` keeps bits whose next ``width - 1`` bits are set too
            run &= m >> width
            width += 1
        done |= run & starts
    if not done:
        return frozenset(), bool(m & 1)
    fams = set()
    while done:
        low = done & -done
        fams.add(_FAMILY_AT[low.bit_length() - 1])
        done ^= low
    return frozenset(fams), bool(m & 1)


#: ``_families_of`` of each single anchor word: a third of the sentences that hold an anchor word
#: hold just one, and a lookup answers them.
_ONE_WORD = {word: _families_of(frozenset((word,))) for word in _WORD_SET}

_SUBSTRINGS_BY_FIRST: dict[str, list[tuple[str, set[str]]]] = {}
for _sub, _fams in _SUBSTRINGS.items():
    _SUBSTRINGS_BY_FIRST.setdefault(_sub[0], []).append((_sub, _fams))


def _possible(low: str) -> frozenset[str]:
    """Families whose anchors occur in ASCII text (a superset of the families that can match)."""
    spans = _candidate_sentences(low, split=False)
    return frozenset(spans[0][2]) if spans else frozenset()


def _candidate_sentences(low: str, split: bool = True) -> list[tuple[int, int, set[str]]]:
    """(start, end, possible families) for each sentence of ASCII ``low`` with any anchor.

    One pass over ``[a-z0-9]+`` tokens and ``str.find`` for the anchor
    substrings; with ``split=False`` the whole text counts as one sentence.
    """
    ends = _sentence_ends(low) if split else [len(low)]
    fams_by_sentence: dict[int, set[str]] = {}
    markers: set[int] = set()
    words = _WORD_SET
    findall = _TOKEN.findall
    start = 0
    for sid, end in enumerate(ends):
        # Tokens never cross a sentence end (it follows punctuation or a newline), so each
        # sentence's anchor words are one C-level findall and a set intersection away.
        hits = words.intersection(findall(low, start, end)) if end > start else None
        start = end
        if not hits:
            continue
        completed, marker = _ONE_WORD[next(iter(hits))] if len(hits) == 1 else _families_of(hits)
        if completed:
            fams_by_sentence[sid] = set(completed)
        if marker:
            markers.add(sid)
    for at, sub_fams in _substring_hits(low):
        sid = bisect.bisect_right(ends, at) if split else 0
        fams_by_sentence.setdefault(sid, set()).update(sub_fams)
    wide: set[int] = set()
    if not low.isascii():
        for m in _NON_ASCII.finditer(low):
            if split:
                wide.update(
                    range(bisect.bisect_right(ends, m.start()), bisect.bisect_right(ends, m.end() - 1) + 1)
                )
            else:
                wide.add(0)
    spans = []
    for sid in sorted(fams_by_sentence.keys() | markers | wide):
        start, end = (ends[sid - 1] if sid else 0), ends[sid]
        fams = fams_by_sentence.get(sid, set())
        if sid in markers and ROLE_MARKER.search(low, start, end):
            fams.add("address")
        if sid in wide:
            fams = set(_ALL)  # words outside ASCII have no anchors: run every family
        if "private" in fams:
            fams.add("access")
        if fams:
            spans.append((start, end, fams))
    return spans


def _sentence_ends(low: str) -> list[int]:
    """End offsets of the sentences of ``low`` (``_SENTENCE_END`` matches), the last one ``len(low)``."""
    ends = [m.end() for m in _ENDS.finditer(low)]
    ends.append(len(low))
    return ends


def _all_sentences(low: str) -> list[tuple[int, int, set[str]]]:
    ends = [m.end() for m in _SENTENCE_END.finditer(low)]
    ends.append(len(low))
    starts = [0, *ends[:-1]]
    return [(s, e, set(_ALL)) for s, e in zip(starts, ends, strict=True) if e > s]
