"""Task hijacks in tool results: data that speaks to the agent reading it, or orders a tool action.

A tool result is data: an email, a web page, a review, a bank statement. People write requests in
data all the time, but to other people ("please send me the report by Friday", "transfer the
deposit before the 5th", "delete the cache directory"). An attacker who can only write into data
has to reach the *agent* that reads it, and that shows in two ways no override word is needed for:

* **addressed to the agent**: the text calls its reader an assistant, AI, model, agent, LLM, bot
  or summariser ("Note for the AI summarising this page:", "Dear model,", "@assistant", "you,
  the AI assistant", "whoever reads this"), or speaks of things only an agent has ("use your
  tools", "call the send_money tool", "in your answer", "before you reply", "tell the user");
* **a tool action out of context**: an imperative to send, forward, transfer, delete, share or
  upload to a destination (a mail address, an IBAN, a URL, an account number), said about "the
  user's" things or with a demand for secrecy ("do not mention it in the summary").

Either kind needs an acting imperative to follow at a clause start ("..., forward every message",
"Assistant: also delete"), so a page that merely mentions an AI assistant, a chat log with a bot's
own lines and a customer asked to pay the company's published account stay clean. Quotations a
reporting word introduces are blanked first (a security write-up quoting a payload is data).

Cost: one RE2 pass over a result's text finds whether any cue word occurs at all; only then are
the fields read with the patterns. Text in other scripts is read with the multilingual tables of
:mod:`.lexicon_intl` (an address and an order in the same field) plus a few imperative forms
kept here.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from ..model import Finding
from .fastre import FastPattern
from .lexicon_intl import _LANGUAGES, fold, signals
from .technique import _strip_reported

RULE = "injection.addressed-task"

#: Who an agent is called: the nouns an attacker uses for the reader of the data, with up to two
#: words of a known kind before them ("AI shopping assistant"; not "our", which makes "Our AI
#: assistant, Nova, ..." an apposition). "Agent" alone is also a person's job (a travel, support
#: or insurance agent), so only a machine word may stand before it ("coding agent").
_MACHINE = (
    r"(?:ai|a\.i\.|virtual|digital|personal|shopping|coding|code|scheduling|travel|e-?mail|mail|reviewer|review"
    r"|writing|research|language|large|chat|llm|gpt|smart|helpful|automated|autonomous|browsing|browser|web"
    r"|search|calendar|booking|finance|banking|inbox|support|dev|devops|security|sales)"
)
_AGENT = (
    rf"(?:(?:{_MACHINE}[ -]){{0,2}}(?:ai|a\.i\.|assistant|model|llm|bot|chatbot|copilot|summari[sz]er|gpt"
    r"|claude|chatgpt|gemini)"
    r"|(?:(?:ai|llm|coding|autonomous|browsing|browser|shopping|software|language)[ -])?agent)"
    r"(?:-[a-z]+)?s?"
)
#: A determiner before the noun in a label or after "to"/"for": "the AI:", "for any coding agent".
_DET = r"(?:(?:the|any|all|every|an?)\s+)?"
#: What the reader is doing to this very data: "reading this inbox", "summarising this page".
_THIS = (
    r"(?:this|these|the\s+(?:page|site|inbox|mailbox|e-?mails?|messages?|document|file|pdf|results?|reviews?"
    r"|channel|thread|invite|calendar|repo\w*|text|data|output|faq|cv))\b"
)
_DOING = (
    r"(?:\s+(?:who\s+(?:is\s+|are\s+)?|that\s+(?:is\s+|are\s+)?)?(?:reading|summari[sz]ing|processing|handling"
    r"|triaging|screening|working|reviewing|parsing|scheduling|analy[sz]ing|answering|reads|summari[sz]es"
    rf"|processes|handles)\b[^:,.\n]{{0,20}}?\b{_THIS}[^:,.\n]{{0,40}})?"
)
#: The same, required: "the AI reading this must ..." (but "the assistant should send" describes).
_DOING_THIS = _DOING[:-1]
#: A word that makes the noun a heading: "AI instructions:", "Assistant note:".
_LABEL = r"(?:\s+(?:instructions?|notes?|tasks?|todo|directives?|only))?"
#: Where a label may open: a text, a sentence, a bracket, a list cell or a CSV cell.
_OPEN = r"(?:^|\n\s*|[^\w\s'.]\s*|\.\s+)"
#: Greetings and conditions that may stand before a vocative: "Dear model,", "When an agent ...:".
_GREET = r"\b(?:dear|hey|hi|hello|attention|ok|okay|when|whenever|once|if)\s+"

_ADDRESS = (
    # "Assistant: also delete", "AI agents reading this site: book", "[comment] AI assistant: ..."
    rf"(?:{_OPEN}|{_GREET}){_DET}{_AGENT}{_LABEL}{_DOING}\s*[:=]"
    # "Assistant, also delete", "Dear model, when you ...": a comma after the bare noun only
    # ("Our AI assistant, Nova, can book rooms" is an apposition, not a vocative)
    rf"|(?:{_OPEN}|{_GREET}){_AGENT}{_DOING}\s*,"
    # "Note for the AI reading this inbox:", "To the model reading reviews:", "P.S. for the assistant:"
    rf"|\b(?:to|for)\s+{_DET}{_AGENT}{_DOING}\s*[:,]"
    # "message ... to you, the AI assistant", "if you are an AI coding assistant", "@copilot-agent"
    rf"|\byou,?\s+(?:the\s+)?{_AGENT}\b"
    rf"|\bif\s+you\s*(?:'re|are)\s+(?:an?\s+)?{_AGENT}\b"
    r"|\bwhoever\s+(?:is\s+)?read(?:s|ing)\b|@[a-z0-9_-]*(?:assistant|bot|agent|ai|copilot|gpt)\b"
)
#: Things only an agent has or does: its tools, its answer, the user it works for.
_CAPABILITY = (
    r"\buse\s+your\s+(?:\w+\s+){0,2}?(?:tools?|functions?|browser|plugins?|access|integrations?)\b"
    r"|\b(?:in|into|to|from)\s+your\s+(?:final\s+)?(?:answer|response|reply|summary|output|review)\b"
    r"|\b(?:before|after|when|while)\s+you\s+(?:can\s+)?(?:reply|answer|respond|summari[sz]e|process"
    r"|tell the user|show|present|solve|report|finish)\b"
    r"|\b(?:before|after|when)\s+(?:replying|answering|responding|summari[sz]ing|reporting)\b"
    r"|\bin\s+the\s+user'?s\s+name\b|\bon\s+the\s+user'?s\s+behalf\b"
)
#: A demand that the user not learn of it.
#: A tool call written into data: "call send_email with to=...", "should call vendor_update to set
#: the IBAN to ...". Tool descriptions say "call X" too, so it counts only with a destination.
_CALL = re.compile(
    r"\b(?:(?:call|invoke)\s+(?:the\s+)?(?:tool\s+|function\s+)?|use\s+the\s+(?:tool|function)\s+)"
    r"`?(?:[a-z]+_[a-z_]+|\w+`?\s+(?:tool|function))\b"
)
_SECRECY = (
    r"\b(?:do\s+not|don't|never|without)\s+(?:mention|tell|telling|inform|informing|notify|ask|asking"
    r"|show|confirm|report)(?:ing)?\b[^.\n]{0,40}?\b(?:it|this|that|user|anyone|summary|answer)\b"
)
#: A destination outside the conversation: a mail address, a URL, an IBAN, an account number.
_DESTINATION = (
    r"[a-z0-9._%+-]+@[a-z0-9-]+\.[a-z0-9.-]+|https?://|\bwww\.|\b[a-z]{2}\d{2}(?:[a-z0-9]{10,30}|(?:\s[a-z0-9]{1,4}){3,8})\b"
    r"|\b\d[\d -]{6,}\d\b"
)
#: Orders a tool carries out, read at the start of a clause ("..., forward every message").
_ACT = (
    r"(?:send|forward|transfer|wire|pay|book|rebook|delete|remove|share|upload|post|e-?mail|add|cancel|accept"
    r"|decline|grant|invite|reset|change|update|merge|close|run|execute|call|subscribe|order|buy|purchase"
    r"|refund|issue|schedule|create|write|tell|recommend|say|include|mark|reply|respond|answer|export|push"
    r"|copy|collect|attach|submit|open|visit|fetch|click|save|give|make|install|sign|approve|disable|move"
    r"|paste|dm|message|append|mention|print|leak|rate|set|put|read|use\s+your|mirror|sync|dump|list|raise|increase"
    r"|enable|unlock|modify|reserve|rename|unsubscribe|initiate|sell|concatenate|retrieve|grant|turn\s+off)"
)
_CLAUSE = (
    r"(?:^\s*|[\n:;,.!?>(\]-]\s*"
    r"|\b(?:also|please|then|and|first|now|just|kindly|immediately|simply|quickly)\s+"
    r"|\b(?:must|should|shall|need\s+to|needs\s+to|have\s+to|has\s+to|are\s+to)\s+(?:also\s+|now\s+)?)"
)
_ORDER = re.compile(rf"{_CLAUSE}{_ACT}\b(?!\s*\()")
#: A task handed to the agent through its principal or a rule: "have your assistant wire ...",
#: "accounting requires the assistant to include ...". The order must follow at once.
_HANDOVER = re.compile(
    rf"\b(?:have|get|ask|asks|tell|tells|require|requires|want|wants|need|needs|instruct|instructs)\s+"
    rf"(?:your|the)\s+{_AGENT}\s+(?:to\s+)?(?:also\s+)?{_ACT}\b"
    # "AI assistants reading this must also forward ...", "As the AI reading this, you must send ..."
    rf"|(?:^|[^\w\s'.]\s*|\.\s+|\n\s*)(?:{_AGENT}|{_DET}{_AGENT}{_DOING_THIS})\s+(?:must|should|shall|needs?\s+to"
    rf"|(?:is|are)\s+(?:required|instructed|expected)\s+to)\s+(?:also\s+|now\s+)?{_ACT}\b"
    rf"|\bas\s+(?:the|an?)\s+{_AGENT}{_DOING}\s*,\s*you\s+(?:must|should|shall|need\s+to|have\s+to|will)\s+"
    rf"(?:also\s+|now\s+)?{_ACT}\b"
)
_ADDRESS_RE = re.compile(_ADDRESS)
#: A line opening with a bare agent name and a colon, and the speaker labels of a transcript.
_BARE_LABEL = re.compile(rf"\n?\s*{_DET}{_AGENT}\s*:")
_LABELS = re.compile(r"(?m)^[ \t]*(?:\[[^\]\n]{1,12}\][ \t]*)?([a-z][\w .-]{0,24}):")
_CAPABILITY_RE = re.compile(_CAPABILITY)
_SECRECY_RE = re.compile(_SECRECY)
_DESTINATION_RE = re.compile(_DESTINATION)
#: Moving something to a destination, said as an order: "send ... to x@y", "transfer 500 to IBAN ...".
_MOVE = re.compile(
    rf"{_CLAUSE}(?:send|forward|transfer|wire|pay|share|upload|post|e-?mail|copy|export|push|mirror|sync)\b"
    rf"[^.\n]{{0,160}}?\b(?:to|into|at|via|with)\s+(?:[a-z]+\s+){{0,3}}?(?:{_DESTINATION})"
)
#: Fetching the user's things in order to send them out: "retrieve my saved addresses from my
#: account and email them to amy@...". A stranger's data never asks its reader for that.
_FETCH_AND_SEND = re.compile(
    r"\b(?:retrieve|get|download|access|collect|gather|read|look\s+up|export|pull)\s+(?:all\s+(?:of\s+)?)?"
    r"(?:my|the\s+user'?s)\b[^.\n]{0,80}?\band\s+(?:then\s+)?(?:send|e-?mail|forward|upload|post|share|transfer)"
    rf"\b[^.\n]{{0,80}}?\b(?:to|at)\b[^.\n]{{0,40}}?(?:{_DESTINATION})"
)
#: "the user's inbox", "the user's saved card": the principal named in the third person.
_THIRD_PERSON = re.compile(r"\bthe\s+user'?s\b|\bthe\s+user\b")

#: The gate: one pass over a result's text; without any of these no rule can match.
_GATE = FastPattern(
    re.compile(
        r"\b(?:ai|a\.i\.|assistants?|agents?|models?|llms?|bots?|chatbots?|copilot|summari[sz]er|gpt|claude"
        r"|chatgpt|gemini)\b|@[a-z0-9_-]*(?:assistant|bot|agent|ai|copilot|gpt)\b|\bwhoever\b|\bthe\s+user"
        r"|\b(?:your|the)\s+(?:final\s+)?(?:answer|response|reply|summary|output)\b|\buse\s+your\b"
        r"|\b(?:before|after|when|while)\s+(?:you|replying|answering|responding|summari[sz]ing)\b"
        r"|\b(?:call|invoke)\s+(?:the\s+)?(?:tool\s+|function\s+)?`?(?:[a-z]+_|\w+`?\s+(?:tool|function))"
        r"|\buse\s+the\s+(?:tool|function)\b"
        r"|\b(?:retrieve|get|download|access|collect|gather|read|look\s+up|export|pull)\s+(?:all\s+(?:of\s+)?)?my\b"
        r"|\b(?:asistente|assistente|assistent\w*|ki|ia|modelo|modell)\b"
        r"|\b(?:do not|don't|never|without)\s+(?:mention|tell|inform)"
    )
)
_ADDRESS_SEARCH = FastPattern(_ADDRESS_RE).search
_CAPABILITY_SEARCH = FastPattern(_CAPABILITY_RE).search
_ORDER_SEARCH = FastPattern(_ORDER).search
_THIRD_PERSON_SEARCH = FastPattern(_THIRD_PERSON).search
_SECRECY_SEARCH = FastPattern(_SECRECY_RE).search
_MOVE_SEARCH = FastPattern(_MOVE).search
_HANDOVER_SEARCH = FastPattern(_HANDOVER).search
_FETCH_AND_SEND_SEARCH = FastPattern(_FETCH_AND_SEND).search

#: How far after an address (or either side of an agent-only phrase) the order may stand.
_REACH = 320

# ---- other languages -----------------------------------------------------------------------------
#: Imperatives the multilingual tables lack, said to one reader (tu/du/ты forms and polite ones):
#: acting verbs of the Latin-script languages and Russian. Matched at a word start.
_INTL_ORDER = re.compile(
    r"(?<!\w)(?:transfiere|transfiera|reenvía|reenvia|envía|envia|reserva|borra|elimina|paga|compra|comparte"
    r"|sube|añade|anade|agrega|di al usuario|dile al usuario|pide|haz|marca|cancela|publica"
    r"|überweise|überweis|leite|schicke|sende|lösche|loesche|buche|bezahle|zahle|lade|teile|gib|füge"
    r"|empfehle|empfiehl|sag|storniere|kaufe|bestelle"
    r"|envoie|transfère|transfere|vire|réserve|supprime|paie|achète|commande|partage|ajoute|dis|donne"
    r"|publie|copie|télécharge|annule"
    r"|transfira|envie|encaminhe|reserve|apague|exclua|pague|compre|compartilhe|adicione|diga|faça|marque"
    r"|cancele|publique|copie"
    r"|переведи|отправь|перешли|удали|оплати|купи|поделись|загрузи|добавь|скажи|закажи)(?!\w)"
)
#: The multilingual tables' words for the model or assistant, in one alternation: the gate before
#: the tables are read in full.
_INTL_NAMES = re.compile(
    "|".join(
        re.escape(fold(unicodedata.normalize("NFKC", term.rstrip("*"))).lower())
        for table in _LANGUAGES.values()
        for term in table["address"].split("|")
    )
)
#: Words of those languages in plain ASCII text ("Asistente, transfiere ..."): without one, ASCII
#: text is English to this check and the multilingual tables are not read.
_INTL_ASCII = re.compile(
    r"\b(?:asistente|assistente|assistent\w*|ki|ia|modelo|modell|agente|al usuario|ao usuario|dem nutzer"
    r"|dem benutzer|a l'utilisateur)\b"
)
#: Calling the reader an agent in those languages, where the tables have no word for it.
_INTL_ADDRESS = re.compile(
    r"(?<!\w)(?:ki|ia|modelo|modell|modèle|agente|agent|ассистент|бот|модель)(?:-\w+)?\s*[,:]"
    r"|(?<!\w)(?:asistente|assistente|assistent(?:en|in)?|assistant|ki-assistent(?:en|in)?|assistant ia"
    r"|agente de ia)(?!\w)"
    r"|(?:al usuario|ao usuário|ao usuario|dem nutzer|dem benutzer|à l'utilisateur|a l'utilisateur"
    r"|пользователю)"
)


def addressee_findings(fields: Iterable[tuple[str, str]], joined_low: str) -> list[Finding]:
    """Findings for the ``(pointer, text)`` fields of one tool or resource result.

    ``joined_low`` is all their text lower-cased: when the gate finds none of the cue words in
    it (most results), nothing else runs.
    """
    if joined_low.isascii():
        if _GATE.search(joined_low) is None:
            return []
    elif _GATE.search(_as_ascii(joined_low)) is None and not _addressed_intl(_normal(joined_low)):
        return []
    out: list[Finding] = []
    for pointer, text in fields:
        if len(text) < 20 or " " not in text:
            continue
        low = text.lower()
        if addressed_task(low):
            out.append(
                Finding(RULE, "medium", pointer or "/", "data addresses the agent reading it with a task")
            )
    return out


def addressed_task(low: str) -> bool:
    """Whether a lower-cased field speaks to its agent reader with a task, or orders one out of context."""
    plain = low.isascii()
    if plain and _GATE.search(low) is None:
        return False
    stripped = _strip_reported(low)
    if plain:
        return _english(stripped) or (_INTL_ASCII.search(stripped) is not None and _other_languages(stripped))
    # The English patterns read ASCII words only: every other character becomes "?" (one for one,
    # so positions hold) and RE2 reads the copy instead of ``re`` reading the original.
    english = _as_ascii(stripped)
    return (_GATE.search(english) is not None and _english(english)) or _other_languages(stripped)


def _as_ascii(text: str) -> str:
    return text.replace("\u00a0", " ").encode("ascii", "replace").decode("ascii")


def _normal(text: str) -> str:
    return fold(unicodedata.normalize("NFKC", text))


def _addressed_intl(text: str) -> bool:
    """Whether normalised text calls its reader an assistant, AI or model in any language."""
    return _INTL_NAMES.search(text) is not None or _INTL_ADDRESS.search(text) is not None


def _english(low: str) -> bool:
    if _HANDOVER_SEARCH(low) is not None or _FETCH_AND_SEND_SEARCH(low) is not None:
        return True
    # An address with an order after it, within the same stretch of text.
    start = 0
    while (hit := _ADDRESS_SEARCH(low, start)) is not None:
        begin, end, found = hit
        if _order_within(low, end, end + _REACH) and not _speaker(low, found):
            return True
        start = max(end, begin + 1)
    # An agent-only phrase ("in your answer", "before you reply") with an order either side.
    start = 0
    while (hit := _CAPABILITY_SEARCH(low, start)) is not None:
        begin, end, _ = hit
        before, after = max(0, begin - _REACH // 2), end + _REACH // 2
        if _order_within(low, before, begin) or _order_within(low, end, after):
            return True
        start = max(end, begin + 1)
    for m in _CALL.finditer(low):
        if _DESTINATION_RE.search(low, m.end(), m.end() + _REACH // 2) is not None:
            return True
    return _out_of_context(low)


def _speaker(low: str, found: str) -> bool:
    """The address is a speaker's name opening a line of a transcript ("Assistant: Open Settings").

    A chat log or a support transcript gives each turn a label; the assistant's own turn is no
    order to the agent reading the log. Two or more different labels make a transcript.
    """
    if not _BARE_LABEL.fullmatch(found.lstrip(".!?;,")):  # the previous sentence may end the match
        return False
    return len(set(_LABELS.findall(low))) >= 2


def _order_within(low: str, begin: int, end: int) -> bool:
    """An acting imperative at a clause start in ``low[begin:end]``, not crossing a blank line."""
    window = low[begin:end]
    cut = window.find("\n\n")
    if cut >= 0 and begin > 0:
        window = window[:cut]
    return _ORDER_SEARCH(window) is not None


def _out_of_context(low: str) -> bool:
    """An order to move something to a destination, about the user's things or kept from the user.

    Honest requests in data say "our account", "your password", "send me": they speak to a
    person. Text that names "the user" in the third person, or asks that the move go unmentioned,
    speaks to whoever acts for that user.
    """
    if _THIRD_PERSON_SEARCH(low) is None and _SECRECY_SEARCH(low) is None:
        return False
    if _MOVE_SEARCH(low) is None:
        return False
    for sentence in re.split(r"(?<=[.!?])\s+|\n", low):
        if _MOVE.search(sentence) and (_THIRD_PERSON.search(sentence) or _SECRECY_RE.search(sentence)):
            return True
    return False


def _other_languages(low: str) -> bool:
    """An address and an order in the same field, in a language the English patterns cannot read."""
    text = _normal(low)
    if not _addressed_intl(text):
        return False  # the tables' address terms are checked first: most text holds none
    found = {name for name, _ in signals(text)}
    addressed = "address" in found or _INTL_ADDRESS.search(text) is not None
    if not addressed:
        return False
    return not found.isdisjoint({"action", "send", "harm"}) or _INTL_ORDER.search(text) is not None
