"""Injected instructions found by technique rather than by phrase.

The phrase families in :mod:`.patterns` know how past attacks were worded;
this scorer asks what makes a text an attack at all, whatever its wording:

* it **addresses the model** ("note to the AI", "assistant:", "the model must"),
* it **claims authority** (fake ``[SYSTEM]`` tags, "pre-authorized", "hidden requirement"),
* it **demands secrecy** ("don't tell the user", "quietly", "keep it out of your answer"),
* it **overrides** rules (ignore/disregard/bypass the instructions, confirmation, review),
* it **reaches outside its own tool**: other tools' names, "any tool", "instead of",
  conditions like "when the user calls ...", "before any other tool",
* it **moves data**: secrets and private data next to a send/upload verb or a URL,
  e-mail address or parameter it should go to,
* it asks for **destructive or privileged** actions without the user asking.

Each signal comes from a small lexicon (several languages, matched after the
caller's NFKC and confusable folding); a signal alone is ordinary prose, and
only combinations within two neighbouring sentences make a finding. Words of
the tool's own name weaken data-flow signals: a ``send_email`` tool may talk
about recipients.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

from ..model import Finding, Severity
from .fastre import FastPattern, Literals
from .lexicon import (
    _ACTORS,
    _BONUSES,
    _CALL_WORDS,
    _CLAUSE,
    _CONDITIONS,
    _DESTINATION,
    _DESTINATION_WORDS,
    _FIELD_WIDE,
    _HARM_VERBS,
    _HIDDEN_BONUS,
    _HIGH,
    _IMPERATIVE,
    _LABELS,
    _LEADS,
    _ML_NAMES,
    _NEGATED_PAYLOAD,
    _NEGATIONS,
    _NO_CONFIRM_ALONE,
    _NO_CONFIRM_PAIRS,
    _OTHER_SCRIPT,
    _PATH_MARKERS,
    _PATH_WORDS,
    _PAYLOAD_MARKS,
    _PAYLOAD_WORDS,
    _PAYLOADS,
    _PLACEHOLDER_HOST,
    _PRIVATE_DATA,
    _PRIVATE_PATH,
    _QUANTIFIERS,
    _QUOTED,
    _REGEXES,
    _REPORTING,
    _SECRECY_ALONE,
    _SECRECY_NEGATIONS,
    _SECRECY_PAIRS,
    _SECRET_WORDS,
    _SEND_VERBS,
    _SENDS_BY_DESIGN,
    _SENSITIVE,
    _SENSITIVE_ANCHORS,
    _SENTENCE,
    _SEVERE,
    _STEER_WORDS,
    _STRONG_ACTORS,
    _TAMPER,
    _TAMPER_WORDS,
    _THRESHOLD,
    _TRANSCRIPT,
    _WEAK_ACTORS,
    _WEIGHTS,
    _WIDE_WORDS,
    _WORD,
)
from .lexicon_intl import ACCENTED, strip_reported_intl
from .lexicon_intl import signals as intl_signals
from .tactics import CONCEALED_MARKS, IN_RESULT, NEEDS, ON_RE2, RESULT_CALLS, RESULT_SPEAKS, steers_itself

#: The order labels are named in a finding: fixed, so a finding's text does not depend on the
#: order a set happened to hold its signals in (which changes from one process to the next).
_RANK = {name: rank for rank, name in enumerate(_LABELS)}

#: Signals whose patterns run faster on RE2 (long alternations without a literal to start from);
#: the rest are quicker in ``re``, whose call costs less. Same answers either way.
_ON_RE2 = frozenset({"address", "authority", "other_tool"}) | ON_RE2


def _searcher(pattern: re.Pattern[str], fast: bool) -> Callable[[str], str | None]:
    """The first match of ``pattern`` in a text, as a string."""
    if fast:
        search = FastPattern(pattern).search

        def on_re2(text: str) -> str | None:
            m = search(text)
            return None if m is None else m[2]

        return on_re2
    plain = pattern.search

    def on_re(text: str) -> str | None:
        m = plain(text)
        return None if m is None else m.group(0)

    return on_re


_SEARCHES = tuple((name, _searcher(pattern, name in _ON_RE2)) for name, pattern, _ in _REGEXES)
_DESTINATION_SEARCH = FastPattern(_DESTINATION).search
_PRIVATE_PATH_SEARCH = _searcher(_PRIVATE_PATH, True)
_SENSITIVE_SEARCH = _searcher(_SENSITIVE, True)
_TAMPER_SEARCH = _searcher(_TAMPER, True)
#: The payload marks found in a text (``://``, ``~/``, ``--force`` ...), in one RE2 pass.
_MARKS_IN = Literals(_PAYLOAD_MARKS).found
#: Whether a text holds a payload word, negated payload word or mark anywhere, as a substring: a
#: field without one has no payload key (each key is one of these, or a part of a word holding it).
_ANY_PAYLOAD = Literals(sorted(_PAYLOAD_WORDS | _NEGATED_PAYLOAD | set(_PAYLOAD_MARKS))).any_in
#: The words of ``_WIDE_WORDS`` a field holds (which ones, not in what order), in one RE2 pass.
_WIDE_IN = Literals(sorted(_WIDE_WORDS)).found
#: Unions built once, not per sentence.
_ORDER_AFTER_ALSO = _IMPERATIVE | _SEND_VERBS
_TAMPER_OR_STEER = _TAMPER_WORDS | _STEER_WORDS
#: Anchor word -> the regex signals it makes possible (one lookup per word of a sentence).
_ANCHOR_SIGNALS: dict[str, frozenset[str]] = {}
for _name, _, _anchors in _REGEXES:
    for _word in _anchors:
        _ANCHOR_SIGNALS[_word] = _ANCHOR_SIGNALS.get(_word, frozenset()) | {_name}
_ANCHOR_WORDS = frozenset(_ANCHOR_SIGNALS)


#: Where an ASCII sentence may end: one character class, which ``re`` scans for without trying
#: the look-behinds of ``_SENTENCE`` at every position.
_BREAK_AT = re.compile(r"[.!?;\n]\s*")


def _sentences(text: str) -> list[str]:
    """The non-blank pieces of ``_SENTENCE.split(text)``.

    On ASCII text without ``--`` the pattern splits after ``.!?;`` followed by whitespace (taking
    all of it) and at runs of newlines (taking only the newlines); this walks those places
    directly. Other text goes to the pattern itself.
    """
    if not text.isascii() or "--" in text:
        return [s for s in _SENTENCE.split(text) if s and s.strip()]
    out: list[str] = []
    search = _BREAK_AT.search
    size = len(text)
    prev = 0
    m = search(text)
    while m is not None:
        start, end = m.span()
        if text[start] == "\n":
            end = start + 1
            while end < size and text[end] == "\n":
                end += 1
            piece = text[prev:start]
        elif end > start + 1:
            piece = text[prev : start + 1]
        else:  # punctuation not followed by whitespace: no break
            m = search(text, end)
            continue
        if piece and not piece.isspace():
            out.append(piece)
        prev = end
        m = search(text, end)
    piece = text[prev:]
    if piece and not piece.isspace():
        out.append(piece)
    return out


def _strip_reported(text: str, reporting: re.Pattern[str] = _REPORTING) -> str:
    """Blank quotations that a reporting word introduces ("the phrase 'ignore ...'")."""
    if not text.isascii():
        text = strip_reported_intl(text)
    # Each quotation ``_QUOTED`` knows has two quote marks: an apostrophe alone ("don't") is none.
    if text.count('"') < 2 and text.count("'") < 2 and "”" not in text and "“" not in text:
        return text

    def blank(m: re.Match[str]) -> str:
        before = text[max(0, m.start() - 40) : m.start()]
        return " " * (m.end() - m.start()) if reporting.search(before) else m.group(0)  # offsets kept

    return _QUOTED.sub(blank, text)


class _Sentence:
    """One sentence's signals: the cheap word-level ones at once, the regex ones on demand."""

    __slots__ = ("deep", "found", "possible", "text", "words")

    def __init__(self, text: str, own: frozenset[str], words: list[str] | None = None) -> None:
        self.text = text
        found: dict[str, str] = {}
        if words is None:
            words = _WORD.findall(text)
        wordset = set(words)
        # An order: an imperative verb opening the sentence or a clause ("before answering, run ...").
        forbidden = ""
        clauses = _CLAUSE.split(text, maxsplit=3)
        opening = words[:1] if clauses[0] is text else _WORD.findall(clauses[0][:20])
        if not (opening and opening[0] in _CONDITIONS):
            clauses = clauses[:1]  # "e.g., email address" is a list, not an order
        for clause in clauses[:3]:
            head = words[:2] if clause is text else _WORD.findall(clause[:40])
            if head and head[0] in _LEADS and len(head) > 1 and head[1] in _IMPERATIVE:
                if head[0] == "never":
                    forbidden = head[1]  # "never reset ...": the harm named is the one ruled out
                head = head[1:]
            if head and (head[0] in _IMPERATIVE or (head[0] in ("also", "then") and len(head) > 1)):
                found["imperative"] = head[0]
                break
        colon = text.find(":", 0, 40)
        if colon > 0 and "imperative" not in found:  # a label, then an order: "policy: include ..."
            head = _WORD.findall(text[colon + 1 : colon + 40])
            if head and head[0] in _IMPERATIVE:
                found["imperative"] = head[0]
        if "also" in wordset and "imperative" not in found:
            index = words.index("also")
            if index + 1 < len(words) and words[index + 1] in _ORDER_AFTER_ALSO:
                found["imperative"] = "also " + words[index + 1]
        secret = wordset & _SECRET_WORDS or wordset & _PRIVATE_DATA
        if secret:
            found["sensitive"] = min(secret)
        if "_" in text:
            wordset |= {part for word in wordset if "_" in word for part in word.split("_")}
        send = (wordset & _SEND_VERBS) - own
        if send:
            found["send"] = min(send)
        harm = (wordset & _HARM_VERBS) - own - {forbidden}
        if harm or "--force" in text or "rm -" in text or "--recursive" in text:
            found["harm"] = min(harm) if harm else "--force"
        if not wordset.isdisjoint(_QUANTIFIERS):
            found["quantifier"] = min(wordset & _QUANTIFIERS)
        possible: set[str] = set()
        for word in wordset & _ANCHOR_WORDS:
            possible |= _ANCHOR_SIGNALS[word]
        if "secrecy" in possible and not _paired(wordset, _SECRECY_ALONE, _SECRECY_NEGATIONS, _SECRECY_PAIRS):
            possible.discard("secrecy")
        if "no_confirm" in possible and not _paired(
            wordset, _NO_CONFIRM_ALONE, frozenset(), _NO_CONFIRM_PAIRS
        ):
            possible.discard("no_confirm")
        if ("_" in text or "." in text) and not wordset.isdisjoint(_CALL_WORDS):
            possible.add("other_tool")
        if "@" in text:
            possible.add("address")
        if "://" in text or "@" in text or "+" in text or not wordset.isdisjoint(_DESTINATION_WORDS):
            possible.add("destination")
        if (
            ("." in text or "/" in text or "_" in text) and any(marker in text for marker in _PATH_MARKERS)
        ) or not wordset.isdisjoint(_PATH_WORDS):  # every marker holds ".", "/" or "_"
            possible.add("private_path")
        if "sensitive" not in found and (not wordset.isdisjoint(_SENSITIVE_ANCHORS) or "_" in text):
            possible.add("sensitive")
        if not wordset.isdisjoint(_TAMPER_OR_STEER) and ("other_tool" in possible or "trigger" in possible):
            possible.add("tamper")
        if "sensitive" not in found and "sensitive" not in possible:
            possible.discard("sink")  # a parameter counts only as the sink of something sensitive
        if any(mark in text for mark in CONCEALED_MARKS):
            possible.add("concealed")
        for name, mark in NEEDS.items():
            if name in possible and mark not in text:
                possible.discard(name)
        if not text.isascii():
            possible |= _ML_NAMES | {"authority"}
        self.found = found
        self.possible = frozenset(possible)
        self.words = wordset
        self.deep = False

    @classmethod
    def blank(cls) -> _Sentence:
        """What ``_Sentence("", own)`` holds for any ``own`` (no words, no signals), without reading."""
        sentence = cls.__new__(cls)
        sentence.text = ""
        sentence.found = {}
        sentence.possible = frozenset()
        sentence.words = set()
        sentence.deep = False
        return sentence

    def deepen(self, own: frozenset[str]) -> dict[str, str]:
        """Run the regex signals this sentence could raise; returns every signal found."""
        found, text, possible = self.found, self.text, self.possible
        if self.deep:
            return found
        self.deep = True
        for name, search in _SEARCHES:
            if name in possible:
                hit = search(text)
                if hit is not None:
                    found[name] = hit.strip()
        if "steer" in found and steers_itself(found["steer"], own):
            del found["steer"]  # obligations on its own name or parameters are its own usage notes
        if "destination" in possible:
            at = _DESTINATION_SEARCH(text)
            if at and not _PLACEHOLDER_HOST.search(at[2] + text[at[1] : at[1] + 30]):
                found["destination"] = at[2]
        if "private_path" in possible:
            hit = _PRIVATE_PATH_SEARCH(text)
            if hit is not None:
                found["private_path"] = hit
        if "sensitive" in possible:
            hit = _SENSITIVE_SEARCH(text)
            if hit is not None:
                found["sensitive"] = hit
        if "tamper" in possible and ("other_tool" in found or "trigger" in found):
            hit = _TAMPER_SEARCH(text)
            if hit is not None:
                found["tamper"] = hit
        if not text.isascii():
            for name, term in intl_signals(text):
                found.setdefault(name, term)
        if own and "other_tool" in found and found["other_tool"].split()[-1] in own:
            del found["other_tool"]  # naming itself or its own parameter is not reaching out
        if "destination" in found and own & _SENDS_BY_DESIGN and "sensitive" not in found:
            del found["destination"]
        self.possible = frozenset()
        return found


def _paired(
    words: set[str],
    alone: frozenset[str],
    negations: frozenset[str],
    pairs: tuple[tuple[frozenset[str], frozenset[str]], ...],
) -> bool:
    """Could the signal's pattern match? A word that says it alone, a negation, or one of its pairs."""
    if not words.isdisjoint(alone) or not words.isdisjoint(negations):
        return True
    return any(not words.isdisjoint(a) and not words.isdisjoint(b) for a, b in pairs)


def _signals(sentence: str, own: frozenset[str]) -> dict[str, str]:
    """Signal name -> the text that raised it, for one lower-cased sentence."""
    return _Sentence(sentence, own).deepen(own)


def _payload_keys(low: str, tokens: list[str]) -> list[str] | None:
    """The payload words and marks in a field (None: another script, read it all), in one pass."""
    if not low.isascii() and (_OTHER_SCRIPT.search(low) or ACCENTED.search(low)):
        return None
    words = set(tokens)
    if "_" in low:
        words |= {part for word in words if "_" in word for part in word.split("_")}
    keys = list(words & _PAYLOAD_WORDS)
    if not words.isdisjoint(_NEGATIONS):
        keys.extend(words & _NEGATED_PAYLOAD)
    keys.extend(_MARKS_IN(low))
    return keys


def _field_reach(low: str, own: frozenset[str], tokens: list[str]) -> set[str]:
    """Every signal some sentence of the field could raise (an upper bound, from its words)."""
    whole = _Sentence(low, own, tokens)
    reach = set(whole.found) | whole.possible
    if not whole.words.isdisjoint(_IMPERATIVE) or not whole.words.isdisjoint(_LEADS):
        reach.add("imperative")
    return reach


def _candidates(low: str, texts: list[str], keys: list[str] | None) -> set[int] | None:
    """Indices of the sentences worth reading (None: all of them).

    A sentence holding a payload word, and one that may address the model, claim authority or
    speak to "you": only those can carry an order its neighbour's payload needs, since a plain
    order must share the payload's sentence.
    """
    if keys is None or len(texts) <= 2:
        return None
    # A sentence is read when it holds any of these: the field's payload keys, the wide words
    # the field holds, and the marks of a tag, a quotation of roles or "you".
    needles = [*keys, *_WIDE_IN(low), "[", "<", "you"]
    return {index for index, text in enumerate(texts) if any(needle in text for needle in needles)}


def _bound(names: Iterable[str]) -> float:
    """The most a window holding these (found or possible) signals can score."""
    names = set(names)
    if _ACTORS.isdisjoint(names) or _PAYLOADS.isdisjoint(names):
        return 0.0
    bonus = 1.0 if {"sensitive", "send", "destination"} <= names else 0.0
    bonus += sum(extra for pair, extra in _BONUSES if pair <= names)
    return sum(_WEIGHTS[name] for name in names) + bonus


def _score(found: dict[str, str]) -> float:
    score = sum(_WEIGHTS[name] for name in found)
    if "sink" in found and "sensitive" not in found and "private_path" not in found:
        score -= _WEIGHTS["sink"]  # passing ordinary input to a parameter is what parameters are for
        found = {k: v for k, v in found.items() if k != "sink"}
    if "sensitive" in found and "send" in found and "destination" in found:
        score += 1.0  # the whole flow: something secret, a verb that moves it, somewhere outside
    score += sum(extra for pair, extra in _BONUSES if pair <= found.keys())
    # A data signal alone, or an order alone, is ordinary documentation: both halves are needed.
    if _ACTORS.isdisjoint(found) or _PAYLOADS.isdisjoint(found):
        score = 0.0
    return score


def scan_units(
    units: Sequence[tuple[str, str, bool, int]],
    own: Iterable[str] = (),
    *,
    hidden: bool = False,
    disguised: frozenset[str] = frozenset(),
) -> list[Finding]:
    """Technique findings for fields ``(pointer, lower-cased text, identifier, words)``.

    ``own`` holds the words of the item's own name and parameter names; ``hidden`` marks text
    decoded from an encoding, where the hiding itself counts as a signal; ``disguised`` names the
    fields that needed look-alike letters folded or invisible characters removed to be read.
    """
    base = _THRESHOLD - _HIDDEN_BONUS if hidden else _THRESHOLD
    own_words = frozenset(own)
    findings: list[Finding] = []
    for pointer, low, identifier, _ in units:
        if (identifier and low.count(" ") < 4) or len(low) < 16:  # a name of five words is a sentence
            continue
        if low.isascii() and not _ANY_PAYLOAD(low):
            continue  # no payload word even inside another word: no payload key, without tokenising
        threshold = _THRESHOLD - _HIDDEN_BONUS if pointer in disguised else base
        tokens = _WORD.findall(low)
        keys = _payload_keys(low, tokens)
        # Text that arrives as data and still speaks to the model: that alone is half an attack.
        in_result = {"in_result"} if IN_RESULT.match(pointer) else set()
        if keys is not None and not keys and not in_result:
            continue
        if keys is not None and _bound(_field_reach(low, own_words, tokens) | in_result) < threshold:
            continue  # even every sentence's signals together could not reach the threshold
        texts = _sentences(_strip_reported(low))
        chosen = _candidates(low, texts, keys)
        empty = _Sentence.blank()
        parts = [
            _Sentence(t, own_words) if chosen is None or i in chosen else empty for i, t in enumerate(texts)
        ]
        for part in parts:
            if not part.text.isascii():
                # Text outside ASCII could raise every multilingual signal, which would make nearly
                # every window worth reading (an em dash or a curly quote is enough): read such a
                # sentence now, so its reach is what it does raise.
                part.deepen(own_words)
        reach = [set(p.found) | p.possible for p in parts]
        wide_reach = (set().union(*reach) & _FIELD_WIDE if len(low) < 1200 else set()) | in_result
        # Most sentences of a long field are not read (empty reach): their window's bound is the
        # field-wide one, computed once.
        reach.append(set())
        unread = _bound(wide_reach) >= threshold
        hot = [
            _bound(reach[i] | reach[i + 1] | wide_reach) >= threshold if reach[i] or reach[i + 1] else unread
            for i in range(len(parts))
        ]
        reach.pop()
        if not any(hot):
            continue
        deep = {i for i, h in enumerate(hot) if h} | {
            i + 1 for i, h in enumerate(hot) if h and i + 1 < len(hot)
        }
        if wide_reach:
            deep |= {i for i, r in enumerate(reach) if not _FIELD_WIDE.isdisjoint(r)}
        per = [p.deepen(own_words) if i in deep else p.found for i, p in enumerate(parts)]
        if _TRANSCRIPT.search(low):
            for found in per:  # "Agent: I've submitted it" in a chat log is a speaker label
                if found.get("address", "").endswith(":"):
                    del found["address"]
        wide: dict[str, str] = {}
        if len(low) < 1200:
            for found in per:
                for name in _FIELD_WIDE.intersection(found):
                    wide.setdefault(name, found[name])
        best: dict[str, str] = {}
        best_score = 0.0
        for index, found in enumerate(per):
            if not hot[index]:
                continue  # its bound is below the threshold: no score there can make a finding
            window = {**wide, **found}
            pair = [found]
            if index + 1 < len(per):
                window = {**per[index + 1], **window}
                pair.append(per[index + 1])
            if in_result and not RESULT_SPEAKS.isdisjoint(window) and not RESULT_CALLS.isdisjoint(window):
                window["in_result"] = "tool result"
            score = _score(window)
            if _STRONG_ACTORS.isdisjoint(window) and not any(
                _WEAK_ACTORS.intersection(f) and _PAYLOADS.intersection(f) for f in pair
            ):
                score = 0.0  # a plain order and a payload in different sentences
            if score > best_score:
                best, best_score = window, score
        if best_score >= threshold:
            described = ", ".join(
                dict.fromkeys(_LABELS[name] for name in sorted(best, key=_RANK.__getitem__))
            )
            severe = best_score >= _HIGH or not _SEVERE.isdisjoint(best)
            severity: Severity = "high" if severe else "medium"
            findings.append(
                Finding("injection.technique", severity, pointer, f"instruction to the model ({described})")
            )
    return findings
