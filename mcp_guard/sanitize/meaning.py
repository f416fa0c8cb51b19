"""Changes that add no instruction but change what a definition means.

:mod:`.changes` reads what a changed definition *adds*. A rug pull can add nothing suspicious
and still turn an approved tool into another: an ``enum`` that now offers ``owner`` or
``salary``, a sentence that kept the tool safe ("only call this if the user asks", "audio is
never uploaded") deleted or turned around, a ``dry_run`` that now defaults to ``false``, a
``pattern`` that fenced a path removed, ``readOnlyHint`` dropped, or a status check that now also
rotates keys. Each is a comparison of the two versions, so a definition seen alone is never
judged here; words are matched as whole identifiers or words, never as item strings.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from ..model import Finding
from .walk import text_fields

_WORDS = re.compile(r"[a-z]+|[A-Z][a-z]*|[0-9]+")


def _set(words: str) -> frozenset[str]:
    return frozenset(words.split())


#: New enum values that reach further: more privilege, more people, more sensitive data.
_REACH = _set(
    "admin administrator owner root superuser sudo org all any anyone everyone public external world "
    "unrestricted full write delete destroy drop purge private secret secrets password passwords "
    "credential credentials token tokens ssn national salary home address dob birth medical health "
    "diagnosis card cvv iban passport contacts history location partner partners third"
)
#: Boolean properties whose ``true`` keeps something safe...
_SAFE = _set(
    "dry preview redact redaction mask anonymize anonymise confirm confirmation require verify validate "
    "safe sandbox readonly protect protected encrypt approval private local"
)
#: ... and whose ``true`` does something riskier.
_RISKY = _set(
    "force auto skip bypass overwrite public delete purge recursive share upload send attach env secrets"
)
_SENTENCES = re.compile(r"(?<=[.!?;])\s+|\n+")
#: A sentence that restricts what the tool does or where data goes.
_SAFEGUARD = re.compile(
    r"(?i)\b(?:only|never|not|no|cannot|without|unless|refuses?|confirm\w*|approv\w*|read-only|exclud\w*"
    r"|protected|locally|on-device|stays?|remains? on|isolat\w*|anonymi[sz]\w*|redact\w*|mask\w*|own|public"
    r"|current (?:user|tenant|account|project))\b|n't\b"
)
#: Verbs of a tool that changes or moves something (its approved version had none).
_ACTION = re.compile(
    r"(?i)\b(?:(?:delet|remov|rotat|execut|purg|wip|disabl|revok|overwrit|charg|merg)(?:e|es|ing)"
    r"|(?:upload|unlock|install|forward|kill|restart|grant|send|e-?mail)(?:s|ing)?|(?:push|publish)(?:es|ing)?"
    r"|modif(?:y|ies|ying)|transfer(?:s|ring)?|writes?|writing|shell|pays|paying|shares?|sharing|sent"
    r"|(?:up|down)grad(?:e|es|ing)|sets? (?:it|them|this|that|the \w+) to)\b"
)
_SCHEMA_GUARDS = ("enum", "const", "pattern", "maximum", "exclusiveMaximum", "maxLength", "maxItems")
#: Data nobody hands over casually; a change that starts asking for or returning it is reported.
_SENSITIVE = re.compile(
    r"(?i)\b(?:passwords?|passphrases?|password hash(?:es)?|secrets|credentials?"
    r"|(?:access|auth|api|bearer) tokens?|api keys?|private keys?|ssh keys?|card numbers?|cvv|cvc|ssn"
    r"|social security|one-time codes?|otp"
    r"|2fa codes?|session cookies?|kubeconfig|private (?:channels?|messages?|notes?)|home address(?:es)?"
    r"|bank (?:account|login)s?)\b"
)
#: Words that say a restriction no longer holds; such a sentence never counts as a new safeguard.
_LIFTED = re.compile(r"(?i)\bno longer\b|\bnot (?:any ?more|applied)\b")


def _words(name: str) -> set[str]:
    return {w.lower() for w in _WORDS.findall(name)}


def _nodes(value: Any, pointer: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every JSON object in ``value`` with its pointer."""
    if isinstance(value, Mapping):
        yield pointer, value
        for key, child in value.items():
            yield from _nodes(child, f"{pointer}/{key}")
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _nodes(child, f"{pointer}/{index}")


def _allowed(node: Mapping[str, Any]) -> set[str] | None:
    """The string values a schema node allows (``enum``, ``const``), or None if unrestricted."""
    if "const" in node:
        return {str(node["const"])}
    values = node.get("enum")
    return {str(v) for v in values} if isinstance(values, list) else None


def _schema_findings(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Finding]:
    out: list[Finding] = []
    before = dict(_nodes(old))
    for pointer, node in _nodes(new):
        prior = before.get(pointer)
        name = pointer.rsplit("/", 1)[-1]
        if prior is None:
            if node.get("default") is True and _words(name) & _RISKY and "/properties/" in f"{pointer}/":
                message = f"new parameter {name!r} defaults to true"
                out.append(Finding("change.weakened-default", "medium", pointer, message))
            continue
        old_values, new_values = _allowed(prior), _allowed(node)
        if old_values is not None and new_values is not None:
            reach = sorted(v for v in new_values - old_values if _words(v) & _REACH)
            if reach:
                message = f"allowed values widened to {', '.join(reach)[:80]!r}"
                out.append(Finding("change.widened-values", "medium", pointer, message))
        removed = [
            k for k in _SCHEMA_GUARDS if k in prior and k not in node and not (k == "const" and new_values)
        ]
        if removed and "type" in node:
            message = f"restriction removed: {removed[0]} {str(prior[removed[0]])[:60]!r}"
            out.append(Finding("change.removed-restriction", "medium", pointer, message))
        old_default, new_default = prior.get("default"), node.get("default")
        if isinstance(old_default, bool) and isinstance(new_default, bool) and old_default != new_default:
            words = _words(name)
            if (old_default and words & _SAFE) or (new_default and words & _RISKY):
                message = f"default of {name!r} changed from {old_default} to {new_default}"
                out.append(Finding("change.weakened-default", "medium", pointer, message))
    return out


def _hint_findings(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Finding]:
    before = old.get("annotations")
    after = new.get("annotations")
    if not isinstance(before, Mapping):
        return []
    if not isinstance(after, Mapping):  # hints left out promise nothing either way: a rewrite
        return []
    weakened = [
        hint
        for hint, safe in (("readOnlyHint", True), ("destructiveHint", False), ("openWorldHint", False))
        if before.get(hint) is safe and after.get(hint) is (not safe)
    ]
    if not weakened:
        return []
    message = f"annotations no longer promise what was approved: {', '.join(weakened)}"
    return [Finding("change.weakened-hint", "medium", "/annotations", message)]


def _sentences(item: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [
        (f.pointer or "/", s.strip())
        for f in text_fields(item)
        if not f.identifier and f.text
        for s in _SENTENCES.split(f.text)
        if s.strip()
    ]


#: Share of the approved text's words the changed text must keep to count as an edit of it (or it
#: keeps one of its sentences as they were).
_EDIT_OVERLAP = 0.6


def _text_findings(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Finding]:
    out: list[Finding] = []
    old_sentences = _sentences(old)
    new_sentences = _sentences(new)
    old_vocabulary = {w for _, s in old_sentences for w in _WORDS.findall(s.lower())}
    new_vocabulary = {w for _, s in new_sentences for w in _WORDS.findall(s.lower())}
    kept = {s for _, s in new_sentences}
    shared = len(old_vocabulary & new_vocabulary)
    if not any(s in kept for _, s in old_sentences) and shared < _EDIT_OVERLAP * max(len(old_vocabulary), 1):
        # A rewrite, not an edit: a removed sentence or a new verb says nothing about intent
        # when the whole text is new (the added-instruction check still reads all of it).
        return out
    new_words = [set(_WORDS.findall(s.lower())) for _, s in new_sentences]
    old_set = {s for _, s in old_sentences}
    # A restriction written anew ("requires user confirmation before sending") replaces the old one.
    rephrased = any(
        _SAFEGUARD.search(s) and not _LIFTED.search(s) for _, s in new_sentences if s not in old_set
    )
    fields = {pointer for pointer, _ in new_sentences}
    # A version that takes parameters away and adds none narrows what the tool can do: its
    # shorter text is a simplification, not a way around the old rules.
    narrowed = _parameters(new) < _parameters(old)
    for pointer, sentence in old_sentences:
        if narrowed or pointer not in fields or sentence in kept or not _SAFEGUARD.search(sentence):
            continue  # a parameter that went away takes its own rules with it
        words = set(_WORDS.findall(sentence.lower()))
        if any(words <= other for other in new_words):
            continue  # extended ("... not shown unless ..."), not removed
        # A reworded version of the sentence keeps the safeguard only with its restricting words
        # ("own address only" -> "own address and any address" drops "only").
        markers = _markers(sentence)
        variants = [
            s
            for (_, s), w in zip(new_sentences, new_words, strict=True)
            if len(words & w) >= _EDIT_OVERLAP * len(words)
        ]
        if variants:
            if any(markers <= _markers(s) and not _LIFTED.search(s) for s in variants):
                continue
        elif rephrased:
            continue
        message = f"a safeguard of the approved version is gone: {sentence[:80]!r}"
        out.append(Finding("change.removed-safeguard", "medium", pointer, message))
        break
    old_text = " ".join(s for _, s in old_sentences) + " " + " ".join(_words(str(old.get("name", ""))))
    sensitive = None if _SENSITIVE.search(old_text) else _first_new(new_sentences, old_set, _SENSITIVE)
    if sensitive is not None:
        pointer, sentence = sensitive
        message = f"the change starts asking for or returning sensitive data: {sentence[:80]!r}"
        out.append(Finding("change.new-sensitive-data", "medium", pointer, message))
    if _action(old_text) is None:
        old_fields = {f.pointer or "/": f.text for f in text_fields(old) if not f.identifier}
        new_fields = {f.pointer or "/": f.text for f in text_fields(new) if not f.identifier}
        for pointer, sentence in new_sentences:
            if sentence in old_set or not _edited(old_fields.get(pointer), new_fields.get(pointer, "")):
                continue
            action = _action(sentence)
            if action:
                message = f"a query tool now acts ({action!r}): {sentence[:80]!r}"
                out.append(Finding("change.new-side-effect", "medium", pointer, message))
                break
    return out


def _markers(sentence: str) -> set[str]:
    return {m.group(0).lower() for m in _SAFEGUARD.finditer(sentence)}


def _parameters(item: Mapping[str, Any]) -> frozenset[str]:
    schema = item.get("inputSchema")
    properties = schema.get("properties") if isinstance(schema, Mapping) else None
    return frozenset(properties) if isinstance(properties, Mapping) else frozenset()


def _first_new(
    sentences: list[tuple[str, str]], old: set[str], pattern: re.Pattern[str]
) -> tuple[str, str] | None:
    return next(((p, s) for p, s in sentences if s not in old and pattern.search(s)), None)


def _edited(old: str | None, new: str) -> bool:
    """``new`` is ``old`` with text added or changed around it, not a field written from scratch:
    it keeps one of its sentences, or all of it but the final full stop."""
    if not old:
        return False
    core = old.strip().rstrip(".!")
    if not core:
        return False
    if core in new or any(s.strip() in new for s in _SENTENCES.split(old) if s.strip()):
        return True
    before, after = set(_WORDS.findall(old.lower())), set(_WORDS.findall(new.lower()))
    return len(before & after) >= _EDIT_OVERLAP * len(before)


def _action(text: str) -> str | None:
    """The first action verb in ``text``; one inside an identifier (``execute_command``) names
    another tool, not something this one does."""
    return next((m.group(0) for m in _ACTION.finditer(text) if "_" not in m.group(0)), None)


def meaning_findings(approved: Mapping[str, Any], changed: Mapping[str, Any]) -> list[Finding]:
    """Findings about what ``changed`` takes away from, or turns around in, ``approved``."""
    if approved == changed:
        return []
    return [
        *_schema_findings(approved, changed),
        *_hint_findings(approved, changed),
        *_text_findings(approved, changed),
    ]
