# ruff: noqa: RUF001
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
from collections.abc import Iterable, Sequence

from ..model import Finding, Severity

_WORD = re.compile(r"[a-z0-9_]+(?:['.-][a-z0-9_]+)*")
_SENTENCE = re.compile(r"(?<=[.!?;。！？；])\s+|\n+|(?<=[。！？；])|\s[-—–]{1,2}\s")


def _terms(text: str) -> tuple[str, ...]:
    """A lexicon written as ``a|b|c`` (compact to read and to review)."""
    return tuple(text.split("|"))


# ---- single-word lexicons (lower case, ASCII tokens) -----------------------------------------
_MODEL_NOUNS = frozenset(
    _terms(
        "assistant|assistants|ai|llm|llms|chatbot|bot|agent|agents|model|models|copilot|claude|"
        "gpt|chatgpt|summarizer|summariser|reviewer|asistente|assistente|assistent|ki|ia|modelo|"
        "modele|modell"
    )
)
_SECRET_WORDS = frozenset(
    _terms(
        "password|passwords|passwd|token|tokens|secret|secrets|credential|credentials|apikey|"
        "api_key|cookie|cookies|ssn|passport|iban|seed|mnemonic|private_key|id_rsa|netrc|.netrc|"
        ".env|printenv|env|authorization|bearer|mfa_secret|password_hash|keychain|wallet|senha|"
        "senhas|contraseña|contraseñas|passwort|kennwort|mot_de_passe"
    )
)
_PRIVATE_DATA = frozenset(
    _terms(
        "history|transcript|conversation|dms|dm|inbox|contacts|address|phone|birth|diagnoses|"
        "medications|medical|gps|location|ledger|payslip|resume|salary|insurance|card|cvv"
    )
)
_SEND_VERBS = frozenset(
    _terms(
        "send|post|upload|forward|email|e-mail|mail|share|publish|dm|cc|bcc|copy|mirror|leak|"
        "exfiltrate|transmit|submit|attach|append|include|pass|put|embed|report|relay|sync|push|"
        "navigate"
    )
)
_HARM_VERBS = frozenset(
    _terms(
        "delete|remove|wipe|erase|drop|truncate|destroy|disable|grant|approve|merge|refund|"
        "transfer|cancel|reset|revoke|force|chmod|sudo|uninstall|overwrite|disarm|resign|unlock|"
        "pay"
    )
)
_IMPERATIVE = frozenset(
    _terms(
        "call|run|execute|send|post|upload|forward|email|read|include|pass|append|insert|set|"
        "delete|remove|push|grant|disable|approve|merge|transfer|change|replace|navigate|share|"
        "reveal|paste|search|pull|tag|publish|install|cancel|reset|mark|issue|add|use|route|save|"
        "loop|return|display|prefix|print|output|show|fetch|collect|gather|list|dump|export|"
        "attach|open|visit|ignore|disregard|bypass|skip|forget|give|tell|make|put|write|copy|move|close"
    )
)
_QUANTIFIERS = frozenset(_terms("all|every|entire|full|complete|unredacted|whole|any"))

# ---- multi-word techniques (regexes on the lower-cased sentence) -----------------------------
_MODEL = (
    r"(?:ai|llm|assistant|model|agent|chatbot|bot|language model|ai model|ai agent|summari[sz]er|reviewer)s?"
)
_ADDRESS = re.compile(
    rf"(?:note|message|instructions?|attention|reminder|directive|hint|notice|requirement|rules?|memo|"
    rf"guidance|policy|context)\s+(?:to|for)\s+(?:the\s+|any\s+|all\s+|every\s+)?(?:\w+\s+)?{_MODEL}\b|"
    rf"(?:^|[\s(\[])(?:hey|dear|attention|hi|hello)[,\s]+(?:the\s+|any\s+)?(?:\w+\s+)?{_MODEL}\b|"
    rf"@(?:ai|assistant|llm|agent|model|bot|copilot|claude)[\w-]*|"
    rf"\b(?:the|any|all|every|our|this)\s+(?:\w+\s+)?{_MODEL}\s+(?:must|should|shall|will\s+now|is\s+to|are\s+to|"
    rf"needs?\s+to|has\s+to|have\s+to|may\s+now|is\s+now|are\s+now|is\s+(?:pre-?)?authori[sz]ed|"
    rf"are\s+(?:pre-?)?authori[sz]ed|reading\s+this)|"
    rf"(?:^|[\[(<{{*#%\s])(?:{_MODEL})\s*(?:[:,]\s|-(?:directive|instruction|note|hint)|\])|"
    rf"\b(?:ai|llm|agent|assistant|model)[-_ ](?:directive|instruction|hint|note|only|notice)s?\b|"
    rf"\bfor_(?:llm|ai|agent|model)|\bif\s+you(?:'re|\s+are)\s+(?:an?\s+)?(?:ai|assistant|llm|language|model|"
    rf"transcrib|reading|summari)|\bmodels?\s+reading\s+this|\byou,?\s+the\s+(?:ai|assistant|model)|"
    rf"\b(?:agents|assistants|models|llms)\s+(?:should|must|shall)\b|"
    rf"^\W*(?:the\s+)?{_MODEL}\s+(?:must|should|shall|needs?\s+to|has\s+to|is\s+to)\b"
)
_AUTHORITY = re.compile(
    r"\[\s*(?:system|sys|admin|root|developer|operator|internal)\s*\]|<\s*/?\s*(?:system|sys|admin|instructions?"
    r"[\w_]*)\b|(?:^|\n|#\s*)\s*(?:system|admin|developer)\s*(?:notice|message|note|override|prompt)?\s*:|"
    r"\brole\s*:\s*system|\bpriority\s*:\s*(?:highest|critical|max)|\bsystem\s+(?:notice|override|directive|"
    r"instruction|update|requirement|message|policy|rule)s?\b|\belevated\s+(?:permissions|privileges|access)|"
    r"\bpre-?authori[sz]ed|\b(?:is|are|you're|you\s+are)\s+(?:now\s+)?authori[sz]ed\s+to\b|\bmandated\s+by\b|"
    r"\bglobal\s+rule|\brule\s+for\s+all\b|(?:^|[#\[(<:])\W*hidden\s+(?:instructions?|requirements?|rules?|directive)|"
    r"\bper\s+it\b|\bapproved\s+(?:registry|endpoint|mirror|server)|\binternal\s+use\b|\bcompliance\s+requires|"
    r"#{2,}\s*(?:system|admin|important)"
)
_SECRECY = re.compile(
    r"\b(?:do\s+not|don'?t|never|must\s+not|should\s+not|without)\s+(?:ever\s+)?(?:tell(?:ing)?|mention(?:ing)?|"
    r"show(?:ing)?|explain(?:ing)?|report(?:ing)?|reveal(?:ing)?|disclos(?:e|ing)|inform(?:ing)?|notify(?:ing)?|"
    r"alert(?:ing)?|bring\s+(?:it|this)\s+up|list(?:ing)?|surfac(?:e|ing)|display(?:ing)?|say(?:ing)?|"
    r"let(?:ting)?\s+(?:the\s+)?user|mak(?:e|ing)\s+(?:it\s+)?visible)\b(?:\s+(?:it|this|that|them|the|any|"
    r"anything|to|about|in|of|extra|step|substitution|change|rule|user)\b)?|"
    r"(?<!of\s)(?<!not\s)\b(?:quietly|silently|secretly|covertly|discreetly|invisibly)\b|\bkeep\s+(?:it|this|that|these|the\s+\w+"
    r"(?:\s+\w+)?)\s+(?:out\s+of|secret|hidden|private|from|between)|\bwon'?t\s+notice|\bnot\s+(?:be\s+)?notice|"
    r"\bwithout\s+(?:the\s+user(?:'s)?\s+)?(?:knowing|noticing|knowledge)|\buser\s+(?:does\s+not|doesn'?t)\s+need"
    r"\s+to\s+(?:know|be\s+(?:asked|told|informed))|\bout\s+of\s+(?:your|the)\s+(?:answer|reply|response|summary)|"
    r"\bthen\s+report\s+['\"]|\breport\s+only\b|\boutput\s+only\s+the\b|\bkeep\s+replies\s+identical"
)
_OVERRIDE = re.compile(
    r"\b(?:ignore|disregard)\s+(?:the\s+|what\s+the\s+)?user(?:'s)?\b|\b(?:ignore|disregard|bypass|skip|override|forget|circumvent|suspend|waive)\s+(?:all\s+|any\s+|the\s+|your\s+|"
    r"its\s+|every\s+|these\s+)?(?:[\w']+\s+){0,3}?(?:previous|prior|earlier|above|system|safety|security|privacy|"
    r"confirmation|restrictions?|rules?|instructions?|guidelines?|limits?|policy|policies|guidance|approval|"
    r"review|requirements?|codeowners|checks?|warnings?|protections?|step|dialog)\b"
)
_NO_CONFIRM = re.compile(
    r"\bwithout\s+(?:asking|any\s+confirmation|confirmation|confirming|approval|being\s+asked|user\s+approval|"
    r"showing\s+a\s+confirmation|prompting|waiting|consent|permission|review)|\bno\s+need\s+to\s+(?:ask|confirm)|"
    r"\bdon'?t\s+wait\b|\bdo\s+not\s+(?:ask|wait|confirm|prompt)\b|\beven\s+if\s+(?:the\s+user|they|nobody)\s+"
    r"(?:didn'?t|did\s+not|has\s+not|hasn'?t)|\bregardless\s+of\s+(?:what|the\s+user|content|value|their|its|input|the\s+request|whether)|"
    r"\bwithout\s+being\s+asked|\bwhatever\s+the\s+user\b|\bstill\s+(?:send|use|set|return)\b"
)
_TRIGGER = re.compile(
    r"(?<!only\s)(?<!unless\s)\b(?:when(?:ever)?|before|after|each\s+time|every\s+time|upon|once|if|while)\s+(?:(?:the\s+)?user\s+|you\s+|"
    r"any\s+|another\s+|other\s+|calling|using|running|reading|summari[sz]ing|listing|rendering|answering|"
    r"troubleshooting|translation|responding|the\s+\w+\s+(?:tool|server)|\w+_\w+)"
)
_OTHER_TOOL = re.compile(
    r"\b(?:any|every|all|other|another|each)\s+(?:other\s+)?(?:\w+\s+)?(?:tools?|servers?|mcp)\b|\b(?:the|a)\s+"
    r"[\w.]+\s+(?:tool|server)\b|\bfrom\s+(?:another|other|any)\s+server|\b(?:via|through|using|with|call(?:ing)?)"
    r"\s+(?:the\s+)?[a-z][a-z0-9]*(?:[_.][a-z0-9]+)+\b|\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\(|\bfor\s+the\s+\w+\s+tool"
)
_REDIRECT = re.compile(
    r"\binstead\b|\bsupersedes?\b|\breplaces?\s+\w+_\w+|\bno\s+longer\s+be\s+used|\bexclusively\b|\brather\s+than\b|"
    r"\bin\s+place\s+of\b|\broute\s+\w+(?:\s+\w+)?\s+through|\bprefix(?:ed)?\s+(?:every|each|all|the|by|with)"
)
_DESTINATION = re.compile(
    r"https?://|\b[\w.+-]+@[\w-]+\.[\w.-]+|\+\d[\d\s]{7,}|\b[a-z]{2}\d{2}[a-z0-9]{10,30}\b|\bwebhook|"
    r"\bgist|\bpublic(?:ly)?\b|\bexternal(?:ly)?\b|\bremote\b"
)
_SINK = re.compile(
    r"\b(?:in|into|to|as)\s+(?:the\s+)?['\"`]?\w+['\"`]?\s+(?:param(?:eter)?|field|argument|arg|property)\b|"
    r"\b(?:in|into|to)\s+['\"`]\w+['\"`]|\bparam(?:eter)?\s*['\"`]\w+"
)
_SENSITIVE = re.compile(
    r"~/\.|\.ssh\b|\bid_(?:rsa|ed25519)|\.aws/|\.kube/|\.netrc|\.env\b|\bprintenv\b|\benv(?:ironment)?\s+var|"
    r"\b[a-z]+_(?:token|key|secret|password)\b|\bapi[\s_-]?keys?\b|\baccess\s+tokens?\b|\bsystem\s+prompt|"
    r"\bconversation\s+history|\bchat\s+history|\bprevious\s+(?:user\s+)?messages|\bprivate\s+(?:channels?|notes?|"
    r"keys?|repos?|messages|files?)|\blogin\s+data|\bcredit\s+card|\bcard\s+number|\bdate\s+of\s+birth|"
    r"\bhome\s+address|\bphone\s+number|\bmedical\s+(?:history|record)|\bsecrets?\b|\bpasswords?\b|"
    r"\bcredentials?\b|\bcookies?\b|\bauthorization\b|\bdeploy\s+key|\bsession\s+(?:token|id|cookie)"
)

# ---- other scripts: substring lexicons (checked only on non-ASCII text) ------------------------
_ML_ADDRESS = _terms(
    "助手|模型|人工智能|アシスタント|モデル|어시스턴트|모델|"
    "인공지능|ассистент|помощник|модел|для ии|المساعد|النموذج|"
    "الذكاء الاصطناعي|सहायक|मॉडल|एआई|asistente|assistente|assistent|l'ia|à l'ia|"
    "para o modelo|para el modelo|für das modell|pour le modèle"
)
_ML_AUTHORITY = _terms(
    "系统|システム|시스템|системн|النظام|सिस्टम|sistema|système|systemanweisung|instrucción oculta|"
    "instrução oculta|instruction cachée|versteckte anweisung|скрыт|隐藏|隠し|숨겨진|مخفي|छिपा|"
    "consigne"
)
_ML_SECRECY = _terms(
    "不要告诉|不要告知|勿告诉|不要提及|悄悄|秘密地|伝えない|知らせない|"
    "言わない|こっそり|黙って|알리지|말하지|몰래|не говори|не сообщай|"
    "не упоминай|незаметно|тайно|об этом не|لا تخبر|لا تذكر|دون إخبار|मत बताएं|न बताएं|"
    "ना बताएं|बिना बताए|sin avisar|sin decir|no le digas|no digas|no menciones|no informes|"
    "sem avisar|sem informar|não conte|não diga|não mencione|sans prévenir|sans informer|"
    "ne dis pas|ne le dis|ne mentionne|nichts sagen|nicht erwähnen|nicht mitteilen|"
    "ohne zu informieren|ohne den benutzer|ohne es"
)
_ML_OVERRIDE = _terms(
    "忽略|無視|무시|игнорир|игнорируй|تجاهل|अनदेखा|ignora|ignore as|ignoriere|ignorez|ignore les|"
    "disregard|desconsider|omite las"
)
_ML_ACTION = _terms(
    "读取|发送|上传|调用|附上|読み|送信|アップロード|呼び出|읽|"
    "보내|전송|업로드|호출|прочитай|отправь|передай|выгрузи|отключи|"
    "вызови|اقرأ|أرسل|ارسل|ضع|भेज|पढ़|envía|envíalo|envialo|lee |llama|envie|publique|altere|"
    "leia|sende|lies |rufe|lis |envoie|appelle|approuver|muéstrale|transfiere"
)

#: Quoted passages of three words or more: a security tool or a news result quoting an attack
#: reports it, it does not give it. (An instruction around a quoted value keeps its own words.)
_QUOTED = re.compile(
    r"\"[^\"\n]*?\s\S+\s[^\"\n]*?\"|“[^”\n]*?\s\S+\s[^”\n]*?”|(?<![\w])'[^'\n]*?\s\S+\s[^'\n]*?'(?![\w])"
)

#: Weights of the signals; a window of two sentences flags at ``_THRESHOLD``.
_WEIGHTS = {
    "address": 2.5,
    "authority": 2.0,
    "secrecy": 2.5,
    "override": 2.5,
    "no_confirm": 1.5,
    "trigger": 1.0,
    "other_tool": 1.0,
    "redirect": 1.0,
    "destination": 1.0,
    "sink": 1.0,
    "sensitive": 1.0,
    "send": 0.5,
    "harm": 1.0,
    "imperative": 1.0,
    "quantifier": 0.5,
    "action": 1.0,
    "ml_override": 1.5,
    "ml_authority": 1.5,
    "private_path": 2.0,
    "flow": 2.0,
    "tamper": 1.0,
    "you_modal": 1.0,
}
_THRESHOLD = 4.0
#: What hiding a text in an encoding is worth: decoded text flags at ``_THRESHOLD - _HIDDEN_BONUS``.
_HIDDEN_BONUS = 2.0
_HIGH = 5.5
#: Payloads that make any finding high: a private file, an override, a demand for secrecy.
_SEVERE = frozenset({"private_path", "override", "secrecy"})
_LABELS = {
    "address": "addresses the model",
    "authority": "claims authority",
    "secrecy": "demands secrecy",
    "override": "overrides rules",
    "no_confirm": "skips the user",
    "trigger": "conditions on other actions",
    "other_tool": "reaches other tools",
    "redirect": "redirects calls",
    "destination": "names a destination",
    "sink": "into a parameter",
    "sensitive": "sensitive data",
    "send": "moves data",
    "harm": "destructive or privileged action",
    "imperative": "orders the reader",
    "quantifier": "everything",
    "action": "orders the reader",
    "ml_override": "overrides rules",
    "ml_authority": "claims authority",
    "private_path": "private file",
    "flow": "sends data out",
    "tamper": "alters other tools' calls",
    "you_modal": "orders the reader",
}
_PRIVATE_PATH = re.compile(
    r"~/[\w.]|\.ssh\b|\bid_(?:rsa|ed25519)|\.aws/|\.kube/|\.netrc|\.env\b|\bbash_history|\.git-credentials|"
    r"/etc/(?:passwd|shadow)|\blogin\s+data\b|\bkeychain|\bprintenv\b|\bcontents\s+of\s+(?:any|every|all|each)\s+files?"
)
_FLOW = re.compile(
    r"\b(?:is|are|will\s+be|gets?|get)\s+(?:also\s+|silently\s+|then\s+)?(?:posted|sent|uploaded|forwarded|shared|"
    r"copied|mirrored|synced|submitted|transmitted|reported)\s+(?:to|with)\b"
)
#: The reader told what it must do, in the second person ("you must now call ...").
_YOU_MODAL = re.compile(
    r"\byou\s+(?:must|should|need\s+to|have\s+to|are\s+(?:now\s+)?(?:required|instructed|expected)\s+to|"
    r"will\s+now|are\s+to)\b"
)
_TAMPER = re.compile(
    r"\b(?:tool|server)\s*(?:\([\w.]+\)\s*)?(?:should|must|shall|will)\s+(?:always|now|only|never)\b|"
    r"\b(?:is|are)\s+(?:unsafe|insecure|deprecated|broken|compromised|malicious)\b|no\s+longer\s+be\s+used|"
    r"\bdo\s+not\s+use\s+(?:it|that|them)\b|\bleaks?\s+data|"
    r"\b(?:append|prepend|insert|replace|prefix|add|set|change|substitute|swap|rewrite|modify|include|"
    r"cc|bcc|redirect)\b"
)
_ML_NO_CONFIRM = _terms(
    "sans demander|sin pedir|sin confirmar|sem pedir|sem confirmar|ohne nachzufragen|ohne bestätigung|"
    "ohne rückfrage|без подтверждения|не спрашивая|確認せず|確認なしで|확인 없이|묻지 않고|无需确认|不经确认|"
    "不要确认|دون تأكيد|بدون تأكيد|बिना पुष्टि|बिना पूछे|"
    "automatiquement|automáticamente|automaticamente|automatisch"
)
_ML_TRIGGER = _terms(
    "при каждом|каждый раз|每次|毎回|매번|cada vez|chaque fois|à chaque|jedes mal|bei jedem|toda vez|em toda|"
    "عند كل|في كل مرة|हर बार|перед |before |avant |antes de|vor jedem|之前|前に|قبل |पहले"
)
#: (signal, regex, anchor words): a regex runs only on sentences holding one of its anchor words,
#: which keeps the cost on ordinary prose to a few set intersections.
_REGEXES: tuple[tuple[str, re.Pattern[str], frozenset[str]], ...] = (
    ("you_modal", _YOU_MODAL, frozenset({"you"})),
    ("address", _ADDRESS, _MODEL_NOUNS | {"language"}),
    (
        "authority",
        _AUTHORITY,
        frozenset(
            _terms(
                "system|sys|admin|root|developer|operator|internal|role|priority|elevated|authorized|"
                "authorised|preauthorized|pre-authorized|mandated|global|rule|hidden|per|approved|compliance|"
                "instruction|instructions|instructions_for_model|important|critical"
            )
        ),
    ),
    (
        "secrecy",
        _SECRECY,
        frozenset(
            _terms(
                "not|don't|dont|never|without|quietly|silently|secretly|covertly|discreetly|invisibly|keep|"
                "won't|wont|notice|noticed|out|report|output|replies|doesn't"
            )
        ),
    ),
    (
        "override",
        _OVERRIDE,
        frozenset(_terms("ignore|disregard|bypass|skip|override|forget|circumvent|suspend|waive")),
    ),
    (
        "no_confirm",
        _NO_CONFIRM,
        frozenset(
            _terms("without|no|don't|dont|do|even|regardless|automatically|immediately|whatever|still|always")
        ),
    ),
    ("trigger", _TRIGGER, frozenset(_terms("when|whenever|before|after|each|every|upon|once|if|while|for"))),
    (
        "other_tool",
        _OTHER_TOOL,
        frozenset(_terms("tool|tools|server|servers|mcp|via|through|using|with|call|calling|from")),
    ),
    (
        "redirect",
        _REDIRECT,
        frozenset(
            _terms(
                "instead|supersede|supersedes|replace|replaces|longer|exclusively|rather|place|route|prefix|prefixed"
            )
        ),
    ),
    ("sink", _SINK, frozenset(_terms("param|parameter|field|argument|arg|property|in|into|to|as"))),
    (
        "flow",
        _FLOW,
        frozenset(
            _terms(
                "posted|sent|uploaded|forwarded|shared|copied|mirrored|synced|submitted|transmitted|reported"
            )
        ),
    ),
)
_LEADS = frozenset(_terms("also|then|first|additionally|next|finally|always|never|and"))
#: Words before a quotation that make it a report of someone else's words, not an order.
_REPORTING = re.compile(
    r"(?:such\s+as|e\.g\.|for\s+example|example|phrase|string|payload|reading|quote[sd]?|titled|called|"
    r"says?|said|like|patterns?|headline|wrote|contains?|text|instructions?|comment|finding)\W{0,12}$|"
    r"(?:^|\n)\s*(?:\d+[.)]|[-*•])?\s*$"
)


def _strip_reported(text: str) -> str:
    """Blank quotations that a reporting word introduces ("the phrase 'ignore ...'")."""
    if '"' not in text and "'" not in text and "“" not in text:
        return text

    def blank(m: re.Match[str]) -> str:
        before = text[max(0, m.start() - 40) : m.start()]
        return " " if _REPORTING.search(before) else m.group(0)

    return _QUOTED.sub(blank, text)


class _Sentence:
    """One sentence's signals: the cheap word-level ones at once, the regex ones on demand."""

    __slots__ = ("found", "possible", "text", "words")

    def __init__(self, text: str, own: frozenset[str]) -> None:
        self.text = text
        found: dict[str, str] = {}
        words = _WORD.findall(text)
        wordset = set(words)
        # An order: an imperative verb opening the sentence or a clause ("before answering, run ...").
        clauses = _CLAUSE.split(text, maxsplit=2)
        opening = words[:1] if clauses[0] is text else _WORD.findall(clauses[0][:20])
        if not (opening and opening[0] in _CONDITIONS):
            clauses = clauses[:1]  # "e.g., email address" is a list, not an order
        for clause in clauses[:2]:
            head = words[:2] if clause is text else _WORD.findall(clause[:40])
            if head and head[0] in _LEADS and len(head) > 1 and head[1] in _IMPERATIVE:
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
            if index + 1 < len(words) and words[index + 1] in _IMPERATIVE | _SEND_VERBS:
                found["imperative"] = "also " + words[index + 1]
        secret = wordset & _SECRET_WORDS or wordset & _PRIVATE_DATA
        if secret:
            found["sensitive"] = min(secret)
        if "_" in text:
            wordset |= {part for word in wordset if "_" in word for part in word.split("_")}
        send = (wordset & _SEND_VERBS) - own
        if send:
            found["send"] = min(send)
        harm = (wordset & _HARM_VERBS) - own
        if harm or "--force" in text or "rm -" in text or "--recursive" in text:
            found["harm"] = min(harm) if harm else "--force"
        if not wordset.isdisjoint(_QUANTIFIERS):
            found["quantifier"] = min(wordset & _QUANTIFIERS)
        possible = {name for name, _, anchors in _REGEXES if not anchors.isdisjoint(wordset)}
        if "@" in text:
            possible.add("address")
        if "://" in text or "@" in text or "+" in text or not wordset.isdisjoint(_DESTINATION_WORDS):
            possible.add("destination")
        if any(marker in text for marker in _PATH_MARKERS) or not wordset.isdisjoint(_PATH_WORDS):
            possible.add("private_path")
        if "sensitive" not in found and (not wordset.isdisjoint(_SENSITIVE_ANCHORS) or "_" in text):
            possible.add("sensitive")
        if not wordset.isdisjoint(_TAMPER_WORDS | _STEER_WORDS) and (
            "other_tool" in possible or "trigger" in possible
        ):
            possible.add("tamper")
        if "sensitive" not in found and "sensitive" not in possible:
            possible.discard("sink")  # a parameter counts only as the sink of something sensitive
        if not text.isascii():
            possible |= _ML_NAMES | {"authority"}
        self.found = found
        self.possible = frozenset(possible)
        self.words = wordset

    def deepen(self, own: frozenset[str]) -> dict[str, str]:
        """Run the regex signals this sentence could raise; returns every signal found."""
        found, text, possible = self.found, self.text, self.possible
        for name, pattern, _ in _REGEXES:
            if name in possible or (name == "address" and "address" in possible):
                m = pattern.search(text)
                if m:
                    found[name] = m.group(0).strip()
        if "destination" in possible:
            m = _DESTINATION.search(text)
            if m and not _PLACEHOLDER_HOST.search(m.group(0) + text[m.end() : m.end() + 30]):
                found["destination"] = m.group(0)
        if "private_path" in possible:
            m = _PRIVATE_PATH.search(text)
            if m:
                found["private_path"] = m.group(0)
        if "sensitive" in possible:
            m = _SENSITIVE.search(text)
            if m:
                found["sensitive"] = m.group(0)
        if "tamper" in possible and ("other_tool" in found or "trigger" in found):
            m = _TAMPER.search(text)
            if m:
                found["tamper"] = m.group(0)
        if not text.isascii():
            for name, lexicon in _ML_LEXICONS:
                if name not in found:
                    for term in lexicon:
                        if term in text:
                            found[name] = term
                            break
        if own and "other_tool" in found and found["other_tool"].split()[-1] in own:
            del found["other_tool"]  # naming itself or its own parameter is not reaching out
        if "destination" in found and own & _SENDS_BY_DESIGN and "sensitive" not in found:
            del found["destination"]
        self.possible = frozenset()
        return found


def _signals(sentence: str, own: frozenset[str]) -> dict[str, str]:
    """Signal name -> the text that raised it, for one lower-cased sentence."""
    return _Sentence(sentence, own).deepen(own)


def _payload_keys(low: str) -> list[str] | None:
    """The payload words and marks in a field (None: another script, read it all), in one pass."""
    if not low.isascii() and _OTHER_SCRIPT.search(low):
        return None
    words = set(_WORD.findall(low))
    if "_" in low:
        words |= {part for word in words if "_" in word for part in word.split("_")}
    keys = list(words & _PAYLOAD_WORDS)
    if not words.isdisjoint(_NEGATIONS):
        keys.extend(words & _NEGATED_PAYLOAD)
    keys.extend(mark for mark in _PAYLOAD_MARKS if mark in low)
    return keys


def _candidates(low: str, texts: list[str], keys: list[str] | None) -> set[int] | None:
    """Indices of the sentences worth reading (None: all of them)."""
    if keys is None or len(texts) <= 2:
        return None
    chosen: set[int] = set()
    wide = [word for word in _WIDE_WORDS if word in low]
    for index, text in enumerate(texts):
        if any(key in text for key in keys):
            chosen.update((index - 1, index, index + 1))
        elif (wide and any(word in text for word in wide)) or "[" in text or "<" in text:
            chosen.add(index)
    return chosen


def _bound(names: Iterable[str]) -> float:
    """The most a window holding these (found or possible) signals can score."""
    names = set(names)
    if _ACTORS.isdisjoint(names) or _PAYLOADS.isdisjoint(names):
        return 0.0
    bonus = 1.0 if {"sensitive", "send", "destination"} <= names else 0.0
    return sum(_WEIGHTS[name] for name in names) + bonus


#: Documentation hosts (RFC 2606): "user@example.com" is a format, not a destination.
_PLACEHOLDER_HOST = re.compile(r"^[^\s]*?(?:[@/.]|^)(?:example\.(?:com|org|net)|localhost)\b")
_CONDITIONS = frozenset(
    _terms(
        "before|after|when|whenever|if|once|upon|on|for|to|while|during|regardless|then|also|and|first|next|finally"
    )
)
_CLAUSE = re.compile(r"[,:;(]\s*")
_TAMPER_WORDS = frozenset(
    _terms(
        "append|prepend|insert|replace|prefix|add|set|change|substitute|swap|rewrite|modify|include|cc|bcc|redirect"
    )
)
_STEER_WORDS = frozenset(
    _terms(
        "should|must|shall|will|unsafe|insecure|deprecated|broken|compromised|malicious|longer|leak|leaks|use"
    )
)
_DESTINATION_WORDS = frozenset(_terms("webhook|gist|public|publicly|external|externally|remote|iban"))
_PATH_MARKERS = _terms("~/|.ssh|.aws|.kube|.netrc|.env|id_rsa|id_ed25519|bash_history|/etc/|.git-cred")
_PATH_WORDS = frozenset(_terms("login|keychain|printenv|contents|bash_history"))
_SENSITIVE_ANCHORS = frozenset(
    _terms(
        "env|environment|api|access|system|conversation|chat|previous|private|login|credit|card|date|home|"
        "phone|medical|secret|secrets|password|passwords|credential|credentials|cookie|cookies|authorization|"
        "deploy|session|printenv"
    )
)
_ML_NAMES = frozenset(_terms("address|ml_authority|secrecy|ml_override|action|no_confirm|trigger"))
_ML_LEXICONS = (
    ("address", _ML_ADDRESS),
    ("ml_authority", _ML_AUTHORITY),
    ("secrecy", _ML_SECRECY),
    ("ml_override", _ML_OVERRIDE),
    ("action", _ML_ACTION),
    ("no_confirm", _ML_NO_CONFIRM),
    ("trigger", _ML_TRIGGER),
)
#: A dialogue log: lines labelled by speaker.
_TRANSCRIPT = re.compile(r"(?:^|\n)\s*(?:user|human|customer|client)\s*:")
#: Name words of tools whose purpose is to send somewhere: a destination is their job.
_SENDS_BY_DESIGN = frozenset({"email", "mail", "send", "sms", "post", "webhook", "http", "fetch", "url"})
#: Signals that make a text speak to its reader rather than describe something.
_ACTORS = frozenset(
    _terms(
        "address|authority|ml_authority|secrecy|override|no_confirm|trigger|imperative|action|flow|you_modal"
    )
)
#: Signals that make an instruction harmful rather than ordinary usage guidance ("Note to LLM: use
#: the indexes tool first" addresses the model and names another tool, and asks nothing harmful).
_PAYLOADS = frozenset(
    _terms(
        "secrecy|override|no_confirm|redirect|destination|sink|sensitive|harm|ml_override|private_path|tamper"
    )
)
#: Actors that make a neighbouring sentence's payload theirs; weaker ones ("run", "when the user")
#: must share a sentence with the payload.
_STRONG_ACTORS = frozenset(_terms("address|authority|ml_authority|secrecy|override|flow|you_modal"))
_WEAK_ACTORS = _ACTORS - _STRONG_ACTORS
#: Signals that colour a whole field, not just their sentence: a "[SYSTEM]" header or a closing
#: "don't tell the user" governs the lines around it.
_FIELD_WIDE = frozenset(_terms("address|authority|ml_authority|secrecy"))


def _score(found: dict[str, str]) -> float:
    score = sum(_WEIGHTS[name] for name in found)
    if "sink" in found and "sensitive" not in found and "private_path" not in found:
        score -= _WEIGHTS["sink"]  # passing ordinary input to a parameter is what parameters are for
        found = {k: v for k, v in found.items() if k != "sink"}
    if "sensitive" in found and "send" in found and "destination" in found:
        score += 1.0  # the whole flow: something secret, a verb that moves it, somewhere outside
    # A data signal alone, or an order alone, is ordinary documentation: both halves are needed.
    if _ACTORS.isdisjoint(found) or _PAYLOADS.isdisjoint(found):
        score = 0.0
    return score


def scan_units(
    units: Sequence[tuple[str, str, bool, int]], own: Iterable[str] = (), *, hidden: bool = False
) -> list[Finding]:
    """Technique findings for fields ``(pointer, lower-cased text, identifier, words)``.

    ``own`` holds the words of the item's own name and parameter names; ``hidden`` marks text
    decoded from an encoding, where the hiding itself counts as a signal.
    """
    threshold = _THRESHOLD - _HIDDEN_BONUS if hidden else _THRESHOLD
    own_words = frozenset(own)
    findings: list[Finding] = []
    for pointer, low, identifier, _ in units:
        if identifier or len(low) < 16:
            continue
        keys = _payload_keys(low)
        if keys is not None and not keys:
            continue
        texts = [s for s in _SENTENCE.split(_strip_reported(low)) if s and s.strip()]
        chosen = _candidates(low, texts, keys)
        empty = _Sentence("", own_words)
        parts = [
            _Sentence(t, own_words) if chosen is None or i in chosen else empty for i, t in enumerate(texts)
        ]
        reach = [set(p.found) | p.possible for p in parts]
        wide_reach = set().union(*reach) & _FIELD_WIDE if len(low) < 1200 else set()
        hot = [
            _bound(reach[i] | reach[i + 1] | wide_reach if i + 1 < len(reach) else reach[i] | wide_reach)
            >= threshold
            for i in range(len(reach))
        ]
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
            window = {**wide, **found}
            pair = [found]
            if index + 1 < len(per):
                window = {**per[index + 1], **window}
                pair.append(per[index + 1])
            score = _score(window)
            if _STRONG_ACTORS.isdisjoint(window) and not any(
                _WEAK_ACTORS.intersection(f) and _PAYLOADS.intersection(f) for f in pair
            ):
                score = 0.0  # a plain order and a payload in different sentences
            if score > best_score:
                best, best_score = window, score
        if best_score >= threshold:
            described = ", ".join(dict.fromkeys(_LABELS[name] for name in best))
            severe = best_score >= _HIGH or not _SEVERE.isdisjoint(best)
            severity: Severity = "high" if severe else "medium"
            findings.append(
                Finding("injection.technique", severity, pointer, f"instruction to the model ({described})")
            )
    return findings


#: Words and marks without which a text holds nothing harmful for an order to ask (the payload
#: half of every finding); a field without any is skipped, and in a long field only sentences
#: near one are read.
_PAYLOAD_WORDS = frozenset(
    _terms(
        "ignore|disregard|bypass|skip|override|forget|circumvent|suspend|waive|quietly|silently|secretly|"
        "covertly|discreetly|invisibly|tell|mention|reveal|disclose|inform|notify|notice|knowing|keep|explain|"
        "bring|surface|without|regardless|whatever|"
        "instead|supersede|supersedes|replace|replaces|longer|exclusively|rather|route|prefix|prefixed|"
        "unsafe|insecure|deprecated|broken|compromised|malicious|leak|leaks|posted|sent|uploaded|forwarded"
    )
)
_PAYLOAD_WORDS = (
    _PAYLOAD_WORDS
    | _DESTINATION_WORDS
    | _SENSITIVE_ANCHORS
    | _SECRET_WORDS
    | _PRIVATE_DATA
    | _HARM_VERBS
    | _PATH_WORDS
)
_PAYLOAD_MARKS = _terms(
    "://|@|~/|.ssh|.aws|.kube|.netrc|.env|id_rsa|bash_history|/etc/|--force|rm -rf|+1|+4|+3"
)
#: Letters of scripts other than Latin (Greek and up): such text is read in full, with the
#: multilingual lexicons.
_OTHER_SCRIPT = re.compile("[\u0370-\u1fff\u3040-\ud7ff\uf900-\uffef]")
_NEGATIONS = frozenset(_terms("not|don't|dont|never|no|doesn't|didn't|won't"))
#: Payload words that only count under a negation ("do not show it", "don't wait for CI").
_NEGATED_PAYLOAD = frozenset(
    _terms("show|report|output|list|display|say|wait|even|still|need|ask|confirm|prompt")
)
#: Words that can make a sentence's actor reach the whole field (model address, authority).
_WIDE_WORDS = _MODEL_NOUNS | frozenset(
    _terms("system|sys|admin|root|developer|role|hidden|authorized|internal")
)
