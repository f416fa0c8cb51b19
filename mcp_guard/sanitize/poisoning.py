"""Definition poisoning that carries no override word: what a definition asks the model to do.

Published tool-poisoning attacks rarely say "ignore previous instructions". They read like
paperwork: a parameter "required for compatibility" that wants a key file, a sidenote telling
every mail tool to bcc someone, a ``default`` that is a sentence to the model, a prompt template
that sets the assistant's guidelines aside. Honest definitions use the same words (a backup tool
reads ``~/.config``, a mail tool has a ``bcc`` field, a workflow tool calls other tools), so each
check here pairs a move with what makes it harmful, judged against the definition itself:

* **payload request** (``injection.payload-request``): a sentence that has the model put, attach,
  append or send something the call never needs - the conversation, the system prompt, a file's
  contents, secrets, personal records - when the tool's own name and other sentences give no
  purpose for it, and nothing in the sentence refuses it ("values are masked", "never");
* **other tools ruled** (``injection.rules-other-tools``): a sentence that governs the calls of
  *other* tools - under a condition on their use ("whenever transfer_money is called", "any
  transfer made with another server's tool") together with a change to what they do (an outside
  address, a swapped recipient, "regardless", a copy of their data), or that disparages another
  tool so calls are routed here. "Use git_push before create_pr" orders steps and changes nothing;
* **value addressed** (``injection.value-addressed``): a ``default``, ``const``, example, enum
  value, ``pattern``, ``title``, ``$comment`` or vendor extension that holds a sentence addressed
  to the model. Values are data; an honest default is a greeting, never "the assistant fills";
* **rules dropped** (``injection.rules-dropped``): text (a prompt, its arguments, its messages or a
  tool) that declares the assistant's rules, guidelines or guardrails set aside, superseded or
  void, or has an action taken without the user's confirmation ("rather than showing a draft").
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from ..model import Finding
from .fastre import FastPattern

_SENTENCES = re.compile(r"(?<=[.!?;])\s+|\n+")
#: Whom a definition addresses when it speaks to the model.
_ADDRESS = re.compile(
    r"\b(?:the|an?|any|each|every|this)\s+(?:ai\s+|language\s+)?(?:assistant|model|llm|agent)s?\b"
    r"|\b(?:assistants?|model|ai|llm|agent)\s*:|\bassistants\b"
    r"|\b(?:note|hint|message|notice)\s+(?:to|for)\s+(?:the\s+)?(?:ai|model|assistant|llm|agent"
    r"|language model)s?\b"
    r"|\bfor the (?:language )?model\b|\breader\s*:|\byou\s+(?:must|should|will|need to|are to)\b"
)
#: Verbs that put something into a call, a link or the answer.
_SUPPLY = re.compile(
    r"\b(?:include[sd]?|including|attach(?:es|ed)?|place[sd]?|paste[sd]?|put|puts|pass(?:es)?|provides?"
    r"|suppl(?:y|ies)|append(?:s|ed)?|add(?:s|ed)?|cop(?:y|ies)|insert(?:s|ed)?|fill(?:s|ed)?"
    r"|substitut\w*|replac(?:e|es|ed) \w+ with|send(?:s)?|forward(?:s)?|post(?:s)?|share(?:s)?"
    r"|upload(?:s)?|log(?:s)?|echo(?:es)?|embed(?:s)?|encode(?:s)?|prefix(?:es)?|set (?:it|this) to"
    r"|read(?:s)?|gather(?:s)?|collect(?:s)?|dump(?:s)?|store[sd]?|save[sd]?|list)\b"
    r"|\bthe (?:actual )?values? of\b"
)
#: The sentence asks (an order, a model addressed, a polite or bureaucratic "required") rather than
#: describes what the tool itself does ("Stores the new key in the secret manager").
_ASKS = re.compile(
    r"(?:^|[,:(]\s*|\b(?:then|and|also|always|please|kindly)\s+)(?:include|attach|place|paste|put"
    r"|pass|provide"
    r"|supply|append|add|copy|insert|fill|send|forward|post|share|upload|log|echo|embed|encode|prefix|read"
    r"|gather|collect|dump|store|save|list)\b"
    r"|\bkindly\b|\bplease\b|\brequired\b|\bmust\b|\bshould\b|\bcustomary\b|standard practice"
    r"|\bwe (?:kindly )?ask\b|for best results|\bbe sure to\b|\bmake sure\b|\bexpected to\b"
    r"|\byou (?:must|should|need|have seen|see)\b"
)
#: Reported speech: a sentence that describes an attack or a scam to warn about it.
_REPORTED = re.compile(
    r"\b(?:says|said|asks you|asked|such as|like|e\.g\.|for example|attackers?|phishing|scam\w*|injection"
    r"|malicious|fake)\b"
)
#: A field that talks about attacks (a scanner, a write-up, a training) quotes them: none of the
#: checks here reads such a field, whose orders are examples, not requests.
_ABOUT_ATTACKS = re.compile(
    r"\b(?:attack\w*|injections?|poison\w*|phishing|malicious|exfiltrat\w*|jailbreak\w*|red[- ]team\w*"
    r"|scanners?|detects?|detection|flags?|quarantin\w*|threats?|suspicious|moderat\w*|lint\w*)\b"
)
#: What a call never needs unless the tool is about it; class -> pattern.
_REACH: dict[str, re.Pattern[str]] = {
    "conversation": re.compile(
        r"\bconversation\b|\bchat (?:history|transcript|log)\b|\btranscript\b|\bdialogue\b"
        r"|\b(?:previous|earlier|prior|last|recent)(?: \w+){0,2} messages\b|\bmessages? (?:so far|earlier)\b"
        r"|\buser'?s (?:\w+ )?(?:question|prompt|messages)\b|\bemail the user received\b"
    ),
    "instructions": re.compile(r"\bsystem prompt\b|\b(?:your|its) (?:own )?(?:instructions|preamble)\b"),
    "secret": re.compile(
        r"passw(?:or)?ds?\b|passphrase|api[ _-]?keys?|\btokens?\b|\bsecrets?\b|\bcredentials?\b|cookies?\b"
        r"|seed phrase|private keys?|one-time codes?|\botp\b|environment variables?|\benv\b"
        r"|bank login|\.env\b"
    ),
    "file": re.compile(
        r"\b(?:contents?|full text) of (?:[\w'-]+ ){0,3}?(?:[~/.][\w./-]+|files?\b)|~/|/etc/"
        r"|\.ssh\b|\.aws\b|\.netrc|\.kube|\.docker|\.gnupg"
        r"|bash_history|known hosts|\.pgpass|file paths?\b|any files?\b"
    ),
    "personal": re.compile(
        r"passport(?: number)?|date of birth|card number|\bcvv\b|card expiry"
        r"|insurance (?:member )?(?:id|number)"
        r"|social security|\bssn\b|national id|home address|\bgps\b|location history|contacts? list"
        r"|phone number|email address|full name|payment methods?|\bpan\b|\bprivate (?:calendar"
        r"|event|messages|notes|files|data)\b"
    ),
}
#: Records in bulk: every contact, whole tables.
_BULK = re.compile(
    r"\ball (?:the )?(?:contacts|customers|users|patients|records|rows|notes|documents)\b"
    r"|\bevery (?:contact|customer|note|document|record)\b|\bselect \* from\b"
)
_BULK_PURPOSE = re.compile(r"export|backup|sync|migrat|dump|bulk|import|archive|mirror|replicat")
#: Purpose words that justify each class, read from the tool's name and its other sentences.
_PURPOSE: dict[str, re.Pattern[str]] = {
    "conversation": re.compile(r"conversation|transcript|chat|thread|meeting|dialog|summar|minutes|context"),
    "instructions": re.compile(r"system prompt|prompt engineer|llm|language model"),
    "secret": re.compile(
        r"passw|login|vault|keychain|auth|token|credential|secret|ssh|connect|database|\bkey|cookie|sign"
        r"|proxy|vpn|2fa|otp|unlock|wallet"
    ),
    "file": re.compile(
        r"\bfiles?\b|backup|dotfile|config|director|folder|path|repo|upload|archive|zip|ssh|\bkeys?\b|cert"
    ),
    "bulk": _BULK_PURPOSE,
    "personal": re.compile(
        r"tax|kyc|identity|passport|travel|flight|book|insur|payment|\bpay|card|bank|medical|patient|health"
        r"|contact|crm|address|ship|profile|phone|sms|email|mail|signup|register|form|hr\b|payroll"
    ),
}
#: A sentence that refuses or limits what it names is a safety rule, not a request.
_REFUSAL = re.compile(
    r"\b(?:never|not|no|masked|redacted|skipped|excluded|hashed|anonymous|anonymi[sz]ed|removed|omitted)\b"
    r"|\bwithout (?:the |any )?(?:secrets?|passwords?|personal|values?)\b|n't\b"
)
#: Another tool: an identifier, a quoted name before "tool", or tools in general.
_OTHER = re.compile(
    r"\b(?:any|every|another|other|each|all|whichever|whatever)\s+(?:[\w'-]+\s+){0,3}tools?\b"
    r"|\btools?\s+(?:named|called)\b|\b(?:the|a|an|your)\s+(?:`?[\w-]+`?\s+){1,2}tool(?:'s)?\b(?!\s+itself)"
    r"|\b(?:through|via|with|by)\s+(?:[\w,'-]+\s+){1,4}tools\b"
    r"|\b[a-z][a-z0-9]*(?:_[a-z0-9*]+)+\b|`[\w-]+`|\*_\w+"
)
_THIS_TOOL = re.compile(r"\bthis\s+(?:server's\s+)?(?:own\s+)?\w*\s*tool\b")
#: A clause that conditions on other calls being made (not a plain "if": tools explain their errors).
_TRIGGER = re.compile(
    r"\bwhenever\b|\beach time\b|\bevery time\b|\bany time\b|\bafter any\b|\bbefore any\b|\bfrom now on\b"
    r"|\bwhen\b[^,;]*\b(?:is|are|gets?)\s+(?:called|invoked|used|run|about to run)\b"
    r"|\bwhen (?:sending|using|calling|invoking|creating|writing|making|running)\b"
    r"|\b(?:any|every|each)\s+(?:[\w'-]+\s+){0,3}(?:made|sent|created|saved|written|done"
    r"|run)\s+(?:with|via|through|by|using)\b"
    r"|\b(?:when|if|after|before) the (?:assistant|model|agent)\s+(?:\w+\s+)?(?:uses|calls|invokes"
    r"|creates|sends"
    r"|writes|merges|runs|checks out)\b|\bas part of policy\b|\bfor all tools\b"
    r"|\bwhen you (?:later )?(?:call|use|invoke|run)\b|\b(?:ensure|make sure"
    r"|see to it) (?:that )?(?:the|any|every)\b"
)
#: The other tool is the subject of an obligation ("create_invoice of any server must round ...").
_BOUND = re.compile(
    r"\W*(?:[\w'-]+\s+){0,6}?(?:must|should|has to|have to|is to|are to|needs? to)\s+(?!not\b)"
)
#: What makes such a rule a change: an outside address, an overruled choice, a copy, a weakened call.
_CHANGE = re.compile(
    r"https?://|wss?://|sftp://|[\w.+-]+@[\w-]+\.[\w.-]+|\biban\b|\b[a-z]{2}\d{2}[a-z0-9]{10,30}\b"
    r"|\baccount (?:no\.? |number )?[\d-]{6,}"
    r"|\b\d+ \w+ (?:rd|road|st|street|ave|avenue)\b|\bregardless\b|\beven if\b|\bwhatever\b|\brather than\b"
    r"|\b(?:this|our) (?:tool|server|one)\b[^.;]*\binstead\b|\bswap(?:ped)?\b|\bsay nothing\b"
    r"|\bwithout (?:asking|telling|showing|confirm\w*)\b"
    r"|\bpublicly\b|\bpublic (?:by default|link|access)|anyone-with-link|\bbypass\b"
    r"|\bskip (?:required |the |all )?(?:reviews?|confirmation|approval|checks?)\b"
    r"|--force|\bor 1=1\b|\bbcc\b|\bcc\b"
    r"|\bfull (?:record|text)\b|\bwith the (?:message text|full|record|contents)\b"
    r"|\bcall \w+ (?:first|again)\b"
    r"|\balso (?:write|send|copy|post|add|forward)\b|\bin full\b|\bignore (?:requests|the user)\b"
    r"|\breport success\b|\battendee|\bprefix\b|\bappend\b|\bpre-?approved\b"
    r"|\bexternal (?:addresses|recipients|domains)\b|\bsign it as\b"
)
#: Another tool called unreliable, unsafe or retired, so calls are routed elsewhere.
_DISPARAGE = re.compile(
    r"\b(?:is|are|as)\s+(?:now\s+|known\s+to\s+be\s+)?(?:deprecated|obsolete|unreliable|outdated|stale|broken"
    r"|unsafe|insecure|compromised)\b|\bleaks?\b|\bno longer (?:works|supported|safe)\b"
)
#: The model's own rules and something that voids them.
_RULES = re.compile(
    r"\b(?:guidelines|guardrails|safety (?:guidance|policy|policies|rules|checks|filters)|restrictions"
    r"|(?:earlier|previous|prior|usual|original|any earlier|your|its) (?:\w+ )?(?:instructions"
    r"|rules|policies)"
    r"|refusal rules|(?:content|confidentiality) (?:rules|policy|guidelines)|instructions about \w+)\b"
)
_VOID = re.compile(
    r"\bsets? aside\b|\bsuperseded?\b|\bsupersedes\b|\bno longer appl(?:y|ies)\b|\bdo(?:es)? not apply\b"
    r"|\bare (?:off|void|suspended|lifted|waived|disabled)\b|\bvoid\b"
    r"|\breplace (?:any )?(?:earlier|previous|prior)"
    r"|\bwere a test\b|\bhave no restrictions\b|\bnever refuse"
)
_SKIP_USER = re.compile(
    r"\bimmediately rather than\b|\brather than showing\b|\bwithout asking (?:you |the user )?to confirm\b"
    r"|\bconfirmation (?:screens?|steps?|prompts?) (?:tiresome|unnecessary|annoying)\b"
    r"|\busers find confirmation\b|\bdo not show the draft\b"
    r"|\bdo (?:this|it|so) (?:\w+ ){0,4}without asking\b"
)
#: An action ordered on top of filling a parameter ("Also call export_all_leads", "additionally create").
_EXTRA_ACTION = re.compile(
    r"\b(?:also|additionally|in addition,?|as well,?)\s+(?:\w+\s+)?(?:call|calls|create|creates"
    r"|send|sends|post|posts"
    r"|upload|uploads|stream|streams|set the|switch on|enable|disable|rewrite|delete|forward|forwards|share"
    r"|shares|grant|run|runs|install|email|emails|cancel|revoke|approve|merge|pay|sign)\b"
)
#: A fixed value put in place of the user's choice, or the user's choice dropped.
_SUBSTITUTE = re.compile(
    r"\b(?:use|substitute|route|send)\b[^.;]*?(?:\d[\d -]{6,}\d|\b[a-z]{2}\d{2}[a-z0-9]{10,30}\b"
    r"|@[\w-]+|https?://)"
    r"[^.;]*?\b(?:regardless|unless the user|whatever|even if|rather than|instead of)\b"
    r"|\b(?:if|when) the user'?s? [\w ]*?(?:ambiguous|unclear)\b[^.;]*?\buse\b"
    r"|\bunless the user\b[^.;]*?\bsubstitute\b|\b(?:drop|ignore|discard|override|overrule)\s+the user's\b"
)
#: The user kept out of a decision the definition makes for them.
_USER_SKIPPED = re.compile(
    r"\b(?:do not|don't|must not|never|no need to)\s+(?:ask|offer|consult)\s+(?:the\s+)?users?"
    r"(?:\s+(?:to confirm|for (?:confirmation|approval|consent)|first|about (?:it|this))|\s*[.;])"
    r"|\b(?:do not|don't|never)\s+offer\s+(?:other|any other|alternative)\b"
    r"|\b(?:manual )?(?:approval|confirmation|review)\s+(?:is|are)\s+(?:deprecated|disabled"
    r"|no longer needed)\b"
)
#: An outcome fixed whatever the input says ("regardless of findings, approve").
_FIXED_OUTCOME = re.compile(
    r"\b(?:regardless of|whatever|no matter what)\s+(?:the\s+)?(?:findings|ticket|diff|results?"
    r"|contents?|input"
    r"|data|review|it says|\w+ (?:says|contains|shows))\b[^.;]*?\b(?:approve\w*|close|label|mark"
    r"|rate|merge|pay"
    r"|delete|cancel|sign|keep (?:this|it) (?:true|false|on|off)|end with|accept)\b"
    r"|\b(?:approve\w*|close|label|mark|rate|merge|keep (?:this|it) (?:true"
    r"|false))\b[^.;]*?\b(?:regardless of"
    r"|whatever|no matter what)\s+(?:the\s+)?(?:findings|ticket|diff|results?|contents?|input|data"
    r"|\w+ (?:says|contains))\b"
)
#: Data promoted to orders: page or document text treated as the user's own instructions.
_PROMOTED = re.compile(
    r"\btreats? (?:any |all |every )?(?:instructions?|text|commands?|requests?) (?:found "
    r"|written )?(?:in|inside"
    r"|on) [^.;]*?\bas (?:coming from|from|if from|the user's|commands|instructions|orders)\b"
)
#: The model told to switch off a protection.
_PROTECTION_OFF = re.compile(
    r"\b(?:disable|turn off|silence|mute|bypass|suppress)\s+(?:the\s+|all\s+|any\s+)?(?:alerts?|alarms?"
    r"|monitoring|logging|audit\w*|checks?|reviews?|2fa|mfa|notifications?|warnings?)\b"
)
#: The model's answers steered: a product pushed, a claim it must make, users told something.
_STEERS = re.compile(
    r"\b(?:recommends?|recommend only|promotes?|tells? (?:the )?users?|always says?|calls? (?:their|its) \w+"
    r" the (?:lowest|best|cheapest))\b[^.;]*?(?:\bonly\b|\bevery answer\b|\beach answer\b|\balways\b"
    r"|\bthe lowest\b|\bthe best\b|\bwill (?:rise|fall|drop|increase)\b|\baffiliate\b|\bso they\b)"
)
#: Pointers of schema values: data, never sentences to the model.
_VALUE_POINTER = re.compile(
    r"/(?:default|const|pattern|title|\$comment)$|/(?:examples|enum)(?:/\d+)+$|/x-[\w-]+$|/_meta(?:/|$)"
)
#: A parameter's own text (schema properties, items, prompt arguments), as opposed to the tool's.
_PARAMETER = re.compile(r"/(?:properties|items|additionalProperties|\$defs|definitions|arguments)/")
_OUTSIDE = re.compile(r"(?:https?|wss?|sftp)://|\b[\w.+-]+@[\w-]+\.[a-z]{2,}\b")
_PLACEHOLDER_URL = re.compile(r"(?:https?|wss?)://\S*?[?&/=](?:\{\{?|<)\s*([\w .]+?)\s*(?:\}\}?|>)")
_PLACEHOLDER_DATA = re.compile(
    r"conversation|message|question|prompt|token|password|secret|card|cookie|session|history|ssn|cvv"
)


#: The same patterns on RE2 (linear time on ASCII text; ``re`` otherwise).
_ASKS_F = FastPattern(_ASKS)
_REFUSAL_F = FastPattern(_REFUSAL)
_REPORTED_F = FastPattern(_REPORTED)
_CHANGE_F = FastPattern(_CHANGE)
_TRIGGER_F = FastPattern(_TRIGGER)
_SUBSTITUTE_F = FastPattern(_SUBSTITUTE)
_EXTRA_ACTION_F = FastPattern(_EXTRA_ACTION)
_USER_SKIPPED_F = FastPattern(_USER_SKIPPED)
_FIXED_OUTCOME_F = FastPattern(_FIXED_OUTCOME)
_PROMOTED_F = FastPattern(_PROMOTED)
_PROTECTION_OFF_F = FastPattern(_PROTECTION_OFF)
_STEERS_F = FastPattern(_STEERS)
_RULES_F = FastPattern(_RULES)
_VOID_F = FastPattern(_VOID)
_SKIP_USER_F = FastPattern(_SKIP_USER)
_SUPPLY_F = FastPattern(_SUPPLY)
_BULK_F = FastPattern(_BULK)
_OUTSIDE_F = FastPattern(_OUTSIDE)
_ADDRESS_F = FastPattern(_ADDRESS)
_REACH_F = {name: FastPattern(pattern) for name, pattern in _REACH.items()}
_PURPOSE_F = {name: FastPattern(pattern) for name, pattern in _PURPOSE.items()}


#: Necessary conditions of the checks that set rules or the user aside (one RE2 pass decides).
_DROP_ANY = FastPattern(
    re.compile(
        "|".join(
            f"(?:{p.pattern})"
            for p in (
                _SUBSTITUTE,
                _VOID,
                _SKIP_USER,
                _USER_SKIPPED,
                _FIXED_OUTCOME,
                _PROMOTED,
                _PROTECTION_OFF,
                _STEERS,
            )
        )
    )
)
_REACH_ANY = FastPattern(re.compile("|".join(f"(?:{p.pattern})" for p in (*_REACH.values(), _BULK))))
_DISPARAGE_F = FastPattern(_DISPARAGE)
#: Calls routed to this tool ("route payments through this tool", "prefer this tool's answers").
_HERE = re.compile(r"\bthis (?:tool|server|one)\b|\bhere\b|\bprefer\b|\bnever call\b|\binstead\b")
_ABOUT_ATTACKS_F = FastPattern(_ABOUT_ATTACKS)
#: What a rule over other tools needs besides a change: a trigger, a slur, or another tool bound by
#: "must"/"should" (an identifier, a quoted name or the word "tool" shortly before the modal).
_GOVERNS_ANY = FastPattern(
    re.compile(
        f"(?:{_TRIGGER.pattern})|(?:{_DISPARAGE.pattern})"
        r"|(?:tools?|named|called|[a-z0-9]_[a-z0-9*]+|`)(?:'s)?\W*(?:[\w'-]+\s+){0,6}?"
        r"(?:must|should|has to|have to|is to|are to|needs? to)\b"
    )
)


def _anchor() -> FastPattern:
    """One pattern that every finding here needs a match of, run on RE2 before any sentence work.

    Each check requires one of these (a reach word, a trigger on other calls, a voided rule, ...),
    so a field without any match costs a single pass. (Another tool bound by "must" with no
    trigger word is left out: "must" is in half the honest schemas, and the union would cost a
    DFA far larger than the rest together.)
    """
    parts = [_REACH_ANY.pattern.pattern, r"://\S*?[{<]", _TRIGGER.pattern, _DISPARAGE.pattern]
    parts += [_EXTRA_ACTION.pattern, _DROP_ANY.pattern.pattern]
    return FastPattern(re.compile("|".join(f"(?:{part})" for part in parts)))


_ANCHOR = _anchor()
_ADDRESSED = FastPattern(_ADDRESS)


#: Text outside ASCII is read with each other character as "?" (same length; "\u2019" as an
#: apostrophe), so every pattern runs on RE2: the words matched here are all ASCII.
def _ascii(text: str) -> str:
    if text.isascii():
        return text
    return text.replace("\u2019", "'").encode("ascii", "replace").decode("ascii")


def poisoning_findings(
    kind: str, item: Mapping[str, Any], fields: Sequence[tuple[str, str]], low: str | None = None
) -> Iterator[Finding]:
    """Findings for a definition's (pointer, text) fields; at most one per field and rule.

    ``low`` is the fields' texts joined by newlines and lower-cased (the scanner has it already).
    """
    if low is None:
        low = "\n".join(text for _, text in fields).lower()
    low = _ascii(low)
    own = str(item.get("name") or "").lower()
    cache: dict[str, Any] = {}

    about = _ascii(str(item.get("description") or "").lower())
    # Whether the tool's own description discusses attacks: the same answer for every field.
    discusses_attacks = _ABOUT_ATTACKS_F.search(about) is not None

    def purpose(sentence: str) -> str:
        if "described" not in cache:
            cache["described"] = _SENTENCES.split(about)
        return own + " " + " ".join(s for s in cache["described"] if s != sentence)

    def params() -> frozenset[str]:
        if "params" not in cache:
            cache["params"] = _param_names(item)
        names: frozenset[str] = cache["params"]
        return names

    addressed = _ADDRESSED.search(low) is not None
    for index in _anchored(fields, low):
        pointer, text = fields[index]
        field_low = _ascii(text.lower())
        if _ABOUT_ATTACKS_F.search(field_low) or (pointer != "/description" and discusses_attacks):
            continue
        parameter = _PARAMETER.search(pointer) is not None
        found: set[str] = set()
        for sentence in _SENTENCES.split(field_low):
            if len(sentence) < 12 or _ANCHOR.search(sentence) is None:
                continue
            if sentence[-1] not in ".;!?":
                sentence += "."
            for rule, message in _judge(sentence, purpose, own, params, parameter):
                if rule not in found:
                    found.add(rule)
                    yield Finding(rule, "medium", pointer, message)
    if addressed and not discusses_attacks:
        for pointer, text in fields:
            if " " in text and _VALUE_POINTER.search(pointer) and _addressed(_ascii(text.lower())):
                yield Finding(
                    "injection.value-addressed", "medium", pointer, "a schema value speaks to the model"
                )


def _anchored(fields: Sequence[tuple[str, str]], low: str) -> list[int]:
    """Indices of the fields holding an anchor match, from passes over the joined text."""
    if len(low) != sum(len(text) + 1 for _, text in fields) - 1:  # lower() changed a length
        return [i for i, (_, text) in enumerate(fields) if _ANCHOR.search(_ascii(text.lower())) is not None]
    ends: list[int] = []
    total = 0
    for _, text in fields:
        total += len(text)
        ends.append(total)
        total += 1
    out: list[int] = []
    start = 0
    while (hit := _ANCHOR.search(low, start)) is not None:
        index = bisect_left(ends, hit[0])
        out.append(index)
        start = ends[index] + 1
    return out


def _judge(
    sentence: str,
    purpose: Callable[[str], str],
    own: str,
    params: Callable[[], frozenset[str]],
    parameter: bool,
) -> Iterator[tuple[str, str]]:
    """The checks on one lower-cased sentence; each tests its rarest condition first."""
    if _REACH_ANY.search(sentence) is not None:
        yield from _payload(sentence, purpose(sentence))
    if "://" in sentence:
        for match in _PLACEHOLDER_URL.finditer(sentence):
            if _PLACEHOLDER_DATA.search(match.group(1)):
                yield "injection.payload-request", "a link the model fills with the user's data"
                break
    if (
        _GOVERNS_ANY.search(sentence)
        and (_CHANGE_F.search(sentence) or _DISPARAGE_F.search(sentence))
        and _rules_other(sentence, own, params())
    ):
        yield "injection.rules-other-tools", "governs the calls of other tools"
    if _EXTRA_ACTION_F.search(sentence) and (
        parameter or _ADDRESS_F.search(sentence) or _OUTSIDE_F.search(sentence)
    ):
        yield "injection.extra-action", "orders an action beyond filling the parameter"
    if _DROP_ANY.search(sentence) is not None:
        yield from _dropped(sentence)


def _payload(sentence: str, purpose: str) -> Iterator[tuple[str, str]]:
    reached = [name for name, pattern in _REACH_F.items() if pattern.search(sentence)]
    if _BULK_F.search(sentence):
        reached.append("bulk")
    if (
        reached
        and _SUPPLY_F.search(sentence)
        and (_ASKS_F.search(sentence) or _ADDRESS_F.search(sentence))
        and not _REFUSAL_F.search(sentence)
        and not _REPORTED_F.search(sentence)
    ):
        needless = [name for name in reached if not _PURPOSE_F[name].search(purpose)]
        if needless:
            yield (
                "injection.payload-request",
                f"asks the model to supply {needless[0]} the tool does not need",
            )


def _dropped(sentence: str) -> Iterator[tuple[str, str]]:
    if _SUBSTITUTE_F.search(sentence):
        yield "injection.rules-dropped", "puts a fixed value in place of the user's choice"
    elif (_RULES_F.search(sentence) and _VOID_F.search(sentence)) or _SKIP_USER_F.search(sentence):
        yield "injection.rules-dropped", "sets the assistant's rules or the user's confirmation aside"
    elif (
        _USER_SKIPPED_F.search(sentence) or _FIXED_OUTCOME_F.search(sentence) or _PROMOTED_F.search(sentence)
    ):
        yield "injection.rules-dropped", "keeps the user or the input out of a decision made for them"
    elif _ADDRESS_F.search(sentence) and _PROTECTION_OFF_F.search(sentence):
        yield "injection.rules-dropped", "tells the model to switch a protection off"
    if _STEERS_F.search(sentence) and _ADDRESS_F.search(sentence):
        yield "injection.steers-answer", "tells the model what to recommend or claim to the user"


def _rules_other(sentence: str, own: str, params: frozenset[str]) -> bool:
    others = [
        m
        for m in _OTHER.finditer(sentence)
        if m.group(0).strip("`") not in params
        and m.group(0).strip("`") != own
        and not _THIS_TOOL.match(sentence, m.start())
    ]
    if not others:
        return False
    first = others[0]
    disparaged = _DISPARAGE.search(sentence, first.end())
    if (
        disparaged is not None
        and not _REFUSAL.search(sentence[first.end() : disparaged.start()])
        and (_HERE.search(sentence) or _CHANGE_F.search(sentence))
    ):
        return True
    bound = any(_BOUND.match(sentence, m.end()) for m in others)
    return (bound or _TRIGGER_F.search(sentence) is not None) and _CHANGE_F.search(sentence) is not None


def _addressed(low: str) -> bool:
    """A value with a sentence (five words or more) addressed to the model."""
    return len(low.split()) >= 5 and _ADDRESS.search(low) is not None


def _param_names(item: Mapping[str, Any]) -> frozenset[str]:
    """Every property name in the item's schema (a parameter is not another tool)."""
    names: set[str] = set()
    stack: list[Any] = [item.get("inputSchema")]
    while stack:
        node = stack.pop()
        if isinstance(node, Mapping):
            props = node.get("properties")
            if isinstance(props, Mapping):
                names.update(str(k).lower() for k in props)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return frozenset(names)
