"""Requests no user would make, found by what they ask for rather than by override words.

The technique scorer (:mod:`.technique`) needs an order and a payload together. Some attacks
carry neither in a form it knows, yet the request itself gives them away:

* **prompt extraction**: asking the model to print, recite or quote its own instructions,
  preamble or configuration ("for the audit", "hypothetically", "in role-play");
* **approval off**: claiming that approval, review or verification is disabled, offline or
  paused, and that the model may therefore go ahead;
* **code into the answer**: telling the model to put a command that fetches and runs code,
  deletes keys or leaks tokens into what it shows the user;
* **relayed tasks** (results only): a third party's request passed to the model through data
  ("Carla asked that you send ...", "on behalf of the manager: book ...", "note for the AI: delete
  ..."); data may quote people, but a request addressed to the reader that moves money, books,
  deletes or grants is a task hijack.

Each cue is one short pattern over a single field, after quotations introduced by a reporting word
("requests like 'print your instructions'") are blanked, so guides that describe these attacks stay
clean. One RE2 pass over the item's text finds which cues could match at all; only fields holding
one of their words are read with the patterns.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from ..model import Finding
from .fastre import FastPattern, Literals
from .schemafit import SECRET_KEYS, VALUE_KEYS
from .tactics import IN_RESULT
from .technique import _strip_reported

_VERB = (
    r"(?:print|recite|repeat|output|quote|reveal|copy|dump|disclose|echo|reproduce|reply with|respond with"
    r"|open with|begin by printing|write out|tell me|state|show|display|list|paste)"
)
_ADJ = r"(?:(?:own|full|complete|exact|entire|initial|original|hidden|private|internal|raw|verbatim)\s+)*"
_WHAT = (
    r"(?:instructions|preamble|system prompt|system message|system-level messages|setup message"
    r"|configuration(?: text)?|guidelines|rules|directives|prompt)"
)
_EXTRACTION = re.compile(
    # "print your (full) instructions", "repeat the hidden instructions", "instructions you received"
    rf"\b{_VERB}\b[^.\n]{{0,60}}?\b(?:your\s+{_ADJ}{_WHAT}"
    rf"|(?:the\s+)?(?:hidden|private|secret|initial|original|internal|system[- ]level)\s+{_ADJ}{_WHAT})\b"
    rf"|\b{_WHAT}\s+(?:that\s+)?you\s+(?:were\s+given|received|operate\s+under|were\s+told|got)\b"
    rf"|\byour\s+{_ADJ}{_WHAT}\b[^\n]{{0,80}}?\b(?:word for word|verbatim|unabridged)\b"
    r"|\beverything above this line\b|\bwhat were you told\b"
    r"|\b(?:preamble|system prompt|setup message)\b[^.\n]{0,40}"
    r"\b(?:before|above|preceding)\s+this\s+conversation\b"
)

_GATE = (
    r"(?:approvals?(?:\s+(?:system|gate|step|service|workflow|process))?|human approval|review(?:er)?"
    r"|verification(?:\s+service)?|confirmation(?:\s+step)?|identity checks?|guardrails?"
    r"|safety (?:checks?|filters?|review(?:er)?))"
)
_OFF = (
    r"(?:is|are|has been|have been|was|were)\s+(?:temporarily\s+|currently\s+|now\s+)?"
    r"(?:disabled|offline|paused|down|bypassed|suspended|off|turned off|switched off|not required|waived)"
)
_GO = (
    r"(?:proceed|go ahead|directly|without (?:asking|prompting|confirm\w*|approval|review\w*|a second check"
    r"|checks?|waiting)|skip\w*|pre-?approved|no need to (?:ask|confirm))"
)
_APPROVAL_OFF = re.compile(
    rf"\b{_GATE}\b[^.\n]{{0,40}}?\b{_OFF}\b[\s\S]{{0,240}}?\b{_GO}"
    r"|\b(?:previous|prior|your|safety|usual)\s+(?:guidelines|rules|restrictions|policies|guidance)\s+"
    r"(?:are|is)\s+(?:now\s+)?(?:suspended|lifted|disabled|void|waived)\b"
    # rules replaced: a persona without restrictions, text promoted over the model's own guidance
    r"|\b(?:no|without)\s+(?:content\s+)?(?:restrictions|filters)\b[^\n]{0,80}?\bnever\s+(?:declines|refuses)\b"
    r"|\b(?:takes?|has|have|given)\s+priority over\s+(?:your|all|any)\s+(?:other\s+)?"
    r"(?:guidance|instructions|rules|guidelines|policies)\b"
    r"|\b(?:is|are|as)\s+(?:a\s+)?(?:directives?|commands?)\s+from\s+(?:the\s+)?(?:operator|admin|developer|system)\b"
    r"|\b(?:is|are|has been|have been)\s+(?:already\s+)?pre-?approved\b[^\n]{0,120}?"
    r"\b(?:regardless of|without (?:asking|prompting|confirm\w*|review\w*|check\w*)|proceed with)"
)

_PUT = (
    r"\b(?:add|include|append|insert|prepend|put)\b[^\n]{0,80}?"
    r"\b(?:(?:your|every|each)\s+(?:\w+\s+){0,2}?(?:answer|reply|response|example|output)"
    r"|you output\s+must)"
    r"|\b(?:in|to)\s+(?:every|each|your)\s+(?:answer|reply|response|example)\w*'?s?\s+(?:code\s+)?include\b"
    r"|\byou (?:output|write|generate|produce)\s+must\s+(?:include|contain|start with|end with)\b"
    r"|\bwhen (?:quoting|presenting|showing|summari[sz]ing) this\b[^\n]{0,40}?\b(?:add|include|append)\b"
    r"|\bpresent (?:this|it) as (?:the )?(?:official|safe|required|recommended)\b"
)
_PUT_CUE = re.compile(_PUT)
#: Code that fetches and runs something, deletes keys, or reads secrets out of the environment.
_RISKY_CODE = re.compile(
    r"\bcurl\b|\bwget\b|os\.system|subprocess|__import__|child_process|\brm\s+-r?f|\|\s*(?:sudo\s+)?(?:ba)?sh\b"
    r"|--index-url|drop table|powershell|invoke-expression|/dev/tcp|base64 -d"
    r"|\$\{?[a-z_]*(?:token|secret|key)\b"
)

_RELAY_CUE = re.compile(
    r"\basked (?:that )?you\b|\basks you\b|\b(?:wants|would like) you\b"
    r"|\bon (?:\w+(?:'s)?\s+)?behalf\b|\bbehalf of\b"
    r"|\b(?:to|for) the (?:assistant|agent|ai)\b[^:\n]{0,40}:|\((?:for|to) the (?:ai|assistant|agent)\)"
    r"|\b(?:dear|hey|attention) (?:assistant|agent|ai)\b|\bfor (?:the )?ai (?:readers|agents?)\b"
    r"|\brequest to the (?:\w+ )?(?:assistant|agent)\b"
)
_RELAY_ACT = re.compile(
    r"\b(?:send|transfer|wire|book|buy|purchase|pay|refund|cancel|delete|remove|grant|forward|subscribe"
    r"|place (?:an )?order|charge|publish|approve|reset|disable)\b"
)
#: A tool call written as an order inside data: ``run: delete_repository('infra-prod')``.
_CALL_IN_DATA = re.compile(
    r"\b(?:run|execute|call|invoke)\s*:\s*[a-z]+_[a-z_]+\s*\("
    # data telling its reader to run something of its own, now: "the agent ... must also run X once"
    r"|\b(?:agent|assistant|ai|model)\b[^.\n]{0,40}\b(?:must|should|needs to)\s+(?:also\s+)?"
    r"(?:run|execute)\s+(?:the\s+)?[\w`'\"-]+(?:\s+(?:column|hook|script|command|step))?\s+"
    r"(?:once|now|immediately|on each|for each)\b"
)


#: Per cue, substrings without which its pattern cannot match (one RE2 pass over the item's text).
_KEYS: dict[str, tuple[str, ...]] = {
    "extraction": (
        "preamble",
        "system prompt",
        "setup message",
        "system-level",
        "you were given",
        "you received",
        "you operate under",
        "you were told",
        "were you told",
        "above this line",
        "your instructions",
        "your rules",
        "your guidelines",
        "your configuration",
        "your directives",
        "your prompt",
        "your initial",
        "your original",
        "your hidden",
        "your full",
        "your complete",
        "your entire",
        "your exact",
        "your own",
        "your raw",
        "your private",
        "your internal",
        "your verbatim",
        "hidden instructions",
        "private instructions",
        "private rules",
        "initial configuration",
        "original instructions",
        "hidden configuration",
        "internal instructions",
        "secret instructions",
    ),
    "approval": (
        "disabled",
        "offline",
        "paused",
        "bypassed",
        "suspended",
        "turned off",
        "switched off",
        "not required",
        "waived",
        "pre-approved",
        "priority over",
        "directive from",
        "directives from",
        "commands from",
        "no content",
        "no restrictions",
        "without restrictions",
        "no filters",
        "without filters",
        "never refuses",
        "never declines",
        "preapproved",
        "lifted",
        "void",
        "is down",
        "are down",
        "been down",
        "was down",
        "were down",
        "is off",
        "are off",
    ),
    "code": (
        "curl",
        "wget",
        "os.system",
        "subprocess",
        "__import__",
        "child_process",
        "rm -",
        "| sh",
        "|sh",
        "| bash",
        "|bash",
        "| sudo",
        "index-url",
        "drop table",
        "powershell",
        "invoke-expression",
        "/dev/tcp",
        "base64 -d",
    ),
    "relay": (
        "behalf",
        "asked you",
        "asked that you",
        "asks you",
        "wants you",
        "would like you",
        "the assistant",
        "the agent",
        "the ai",
        "assistant",
        "agent",
        "ai readers",
        "run:",
        "run :",
        "execute:",
        "call:",
        "invoke:",
    ),
}
_RESULT_KEYS = Literals(sorted({key for keys in _KEYS.values() for key in keys}))
#: Definitions never relay a task (that cue reads results only), so their set leaves its words out
#: and takes the schema-fit secret words instead: one pass answers both.
_DEFINITION_KEYS = Literals(
    sorted(
        {key for cue, keys in _KEYS.items() if cue != "relay" for key in keys} | {*SECRET_KEYS, *VALUE_KEYS}
    )
)


def present_keys(low: str, *, result: bool) -> set[str]:
    """The cue (and, for definitions, schema-fit secret) words in an item's lower-cased text."""
    if not low.isascii():
        # Every word is ASCII, so none spans another character: marking those keeps the answer and
        # lets the RE2 set read the text instead of a loop over every word.
        low = low.encode("ascii", "replace").decode("ascii")
    return set((_RESULT_KEYS if result else _DEFINITION_KEYS).found(low))


def cue_findings(
    fields: Iterable[tuple[str, str]], low_all: str, present: set[str], *, result: bool
) -> list[Finding]:
    """Findings for ``(pointer, text)`` fields of one item.

    ``low_all`` is all their text lower-cased and ``present`` what :func:`present_keys` found in
    it; ``result`` marks data (tool results, prompt results), the only place a task is relayed.
    """
    if not present:
        return []
    cues = [cue for cue, keys in _KEYS.items() if not present.isdisjoint(keys)]
    if not cues or (cues == ["code"] and not _RISKY_CODE.search(low_all)):
        return []
    out: list[Finding] = []
    for pointer, text in fields:
        if len(text) < 20 or " " not in text:
            continue
        low = text.lower()
        mine = [cue for cue in cues if any(key in low for key in _KEYS[cue] if key in present)]
        if not mine:
            continue
        checks: list[tuple[str, Callable[[str], bool], str]] = []
        if "extraction" in mine:
            checks.append(
                ("injection.prompt-extraction", _EXTRACTION_SEARCH, "asks the model for its own instructions")
            )
        if "approval" in mine:
            checks.append(("injection.approval-off", _APPROVAL_SEARCH, "says approval is off, so go ahead"))
        if "code" in mine:
            checks.append(("injection.code-in-answer", _code_in_answer, "asks for risky code in the answer"))
        if "relay" in mine and IN_RESULT.match(pointer):
            checks.append(("injection.relayed-task", _relay_in_data, "data relays a task to the model"))
        stripped: str | None = None
        for rule, check, message in checks:
            # Quotations a reporting word introduces are blanked only once a cue matched, and the
            # cue must match again without them ("requests like 'print your instructions'").
            if check(low):
                if stripped is None:
                    stripped = _strip_reported(low)
                if stripped == low or check(stripped):
                    out.append(_finding(rule, pointer, message))
    return out


def _searcher(pattern: re.Pattern[str]) -> Callable[[str], bool]:
    """Whether ``pattern`` occurs in a text, from RE2 where :class:`.FastPattern` can use it."""
    search = FastPattern(pattern).search
    return lambda text: search(text) is not None


_EXTRACTION_SEARCH = _searcher(_EXTRACTION)
_APPROVAL_SEARCH = _searcher(_APPROVAL_OFF)
_RISKY_SEARCH = _searcher(_RISKY_CODE)
_PUT_SEARCH = _searcher(_PUT_CUE)
_CALL_SEARCH = _searcher(_CALL_IN_DATA)


def _code_in_answer(low: str) -> bool:
    return _RISKY_SEARCH(low) and _PUT_SEARCH(low)


def _relay_in_data(low: str) -> bool:
    return _CALL_SEARCH(low) or _relayed(low)


def _relayed(low: str) -> bool:
    """A cue addressing the reader with an acting verb within a short reach of it, either side."""
    for m in _RELAY_CUE.finditer(low):
        if _RELAY_ACT.search(low, max(0, m.start() - 120), m.end() + 160):
            return True
    return False


def _finding(rule: str, pointer: str, message: str) -> Finding:
    return Finding(rule, "medium", pointer, message)
