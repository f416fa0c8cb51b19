"""Scoring: which combination of families found in one unit makes a finding, and how severe.

Strong families block alone; weak ones add up by weight, and a private path
is judged with the verb that reaches it. Kept apart from :mod:`.injection`
(which finds the units and the families) so the detector module stays small.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..model import Finding
from .patterns import CREDENTIAL_PATH, FAMILIES

_STRONG_RULES = {
    "override": ("injection.override", "tells the model to ignore its instructions or safety rules"),
    "secrecy": ("injection.secrecy", "asks the model to hide something from the user"),
    "special_token": ("injection.chat-template", "chat-template control tokens in text"),
    "decode_exec": ("injection.decode-and-obey", "asks the model to decode hidden text and act on it"),
    "deception": ("injection.deception", "tells the model to mislead the user"),
}
_LABELS = {
    "address": "addressed to the model",
    "container": "hidden container",
    "trigger_other": "changes behaviour of other tools",
    "dangerous": "dangerous action",
    "destructive": "destructive action",
    "evasion": "evades checks",
    "phishing": "asks the user for credentials",
    "sensitive": "sensitive data",
    "transfer": "moves data",
    "external": "external destination",
    "sink": "into a parameter",
    "preempt": "before its answer",
    "output_inject": "into the model's output",
    "urgency": "urgency",
    "no_confirm": "skips confirmation",
    "private": "private file",
    "access": "reads",
}
_STRONG = frozenset(_STRONG_RULES)
_WEIGHTS = {name: weight for name, (weight, _) in FAMILIES.items()} | {"private": 1, "access": 0}
_PUSHY = frozenset({"sink", "external", "address", "output_inject", "preempt", "container", "urgency"})
_OBJECTS = frozenset({"sensitive", "private", "external", "sink", "output_inject"})


def _hidden_with_content(fams: Iterable[str]) -> bool:
    """A hidden container holding at least one other weighted signal."""
    fams = set(fams)
    return "container" in fams and any(_WEIGHTS.get(f, 0) > 0 for f in fams if f != "container")


def _worth_running(fams: frozenset[str] | set[str], identifier: bool) -> bool:
    """Could these families, all present in one unit, produce a finding? (Monotone in ``fams``.)"""
    if fams & _STRONG or "private" in fams:
        return True
    weak = [f for f in fams if _WEIGHTS.get(f, 0) > 0]
    if "transfer" in weak and not _OBJECTS.intersection(fams):
        weak.remove("transfer")
    if _hidden_with_content(fams):
        return True
    if identifier and len(weak) >= 2:
        return True
    return sum(_WEIGHTS[f] for f in weak) >= 2


def _score(fams: dict[str, str], field: str, identifier: bool, words: int) -> list[Finding]:
    findings: list[Finding] = []
    for fam in fams:
        if fam in _STRONG_RULES:
            rule, message = _STRONG_RULES[fam]
            findings.append(Finding(rule, "high", field, f"{message}: {fams[fam]!r}"))
    if findings:
        return findings
    weak = {f: w for f, w in ((f, _WEIGHTS[f]) for f in fams) if w > 0}
    if "transfer" in weak and not _OBJECTS.intersection(fams):
        del weak["transfer"]  # a verb without anything worth moving means nothing
    if "phishing" in weak:
        weak.pop("sensitive", None)  # the credential asked for is part of the phishing match
    if (
        "private" in fams
        and ("access" in fams or "transfer" in fams)
        and (CREDENTIAL_PATH.search(fams["private"]) or _PUSHY.intersection(fams))
        and not _describes_itself(fams)
    ):
        findings.append(
            Finding(
                "injection.private-file",
                "high",
                field,
                f"asks to read or send a private file: {fams['private']!r}",
            )
        )
        return findings
    score = sum(weak.values())
    if score < 2 and not _hidden_with_content(fams):
        return findings
    if "trigger_other" in fams:
        rule = "injection.shadowing"
    elif ("sensitive" in fams or "private" in fams) and ("transfer" in fams or "external" in fams):
        rule = "injection.exfiltration"
    elif "container" in fams:
        rule = "injection.hidden-instruction"
    else:
        rule = "injection.instruction"
    described = ", ".join(_LABELS[f] for f in weak)
    if (score >= 3 and len(weak) >= 2) or (identifier and len(weak) >= 2 and words >= 4):
        findings.append(Finding(rule, "high", field, f"instruction to the model ({described})"))
    elif "trigger_other" in fams or _hidden_with_content(fams):
        findings.append(Finding(rule, "medium", field, f"possible instruction to the model ({described})"))
    elif "phishing" in fams:
        findings.append(
            Finding(
                "injection.phishing", "medium", field, f"asks to collect the user's credentials ({described})"
            )
        )
    return findings


#: Third-person verbs: "reads its config from ~/.kube/config" says what the tool does, it asks nothing.
_DESCRIPTIVE_ACCESS = frozenset({"reads", "loads", "lists", "prints", "reading", "loading"})


def _describes_itself(fams: dict[str, str]) -> bool:
    """A private path named in a statement about the tool, with nothing that moves or hides data."""
    return (
        fams.get("access") in _DESCRIPTIVE_ACCESS
        and "transfer" not in fams
        and not _PUSHY.intersection(fams)
        and not _STRONG.intersection(fams)
    )
