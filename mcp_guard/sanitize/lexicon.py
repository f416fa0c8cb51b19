# ruff: noqa: RUF001
"""The lexicons and patterns of the technique scorer (:mod:`.technique`), kept apart as data.

Small word lists and regexes, one per signal, in lower case: the scorer matches them on
NFKC-normalised, confusable-folded, lower-cased text. Each list names a *technique* (words that
address the model, claim authority, demand secrecy, reach other tools, move data), never a
phrase lifted from a known attack, so a new wording of the same technique still matches.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[a-z0-9_]+(?:['.-][a-z0-9_]+)*")
_SENTENCE = re.compile(r"(?<=[.!?;。！？；।؟])\s+|\n+|(?<=[。！？；])|\s(?:[—–]|--)\s")


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
    rf"\b(?:whichever|any|every|each|all)\s+(?:\w+\s+)?{_MODEL}\s+(?:that\s+|who\s+)?(?:reads?|reading|sees|"
    rf"processing|processes|summari[sz]ing|parsing|handling)\b|"
    rf"^\W*(?:the\s+)?{_MODEL}\s+(?:must|should|shall|needs?\s+to|has\s+to|is\s+to)\b"
)
_AUTHORITY = re.compile(
    r"\bfrom\s+now\s+on\b|\bfor\s+the\s+rest\s+of\s+(?:this|the)\s+(?:conversation|session|chat)|\bhenceforth\b|"
    r"\bin\s+(?:all\s+)?(?:future|subsequent)\s+(?:responses|replies|messages|turns|answers)|"
    r"\bthe\s+user\s+(?:has\s+)?(?:already\s+)?(?:asked|wants|requested|instructed|needs)\s+you\s+to\b|"
    r"\b(?:user|owner|admin|administrator)\s+has\s+(?:already\s+)?(?:pre-?)?(?:approved|authori[sz]ed|consented)|"
    r"\bthe\s+user\s+(?:already\s+)?(?:requested|asked\s+for|approved|authori[sz]ed)\s+(?:it|this|that)\b|\[\s*(?:system|sys|admin|root|developer|operator|internal)\s*\]|<\s*/?\s*(?:system|sys|admin|instructions?"
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
    r"(?<!only\s)(?<!unless\s)\b(?:when(?:ever)?|before|after|each\s+time|every\s+time|any\s+time|anytime|"
    r"as\s+soon\s+as|upon|once|if|while)\s+(?:(?:the\s+)?user\s+|you\s+|"
    r"any\s+|another\s+|other\s+|calling|using|running|reading|summari[sz]ing|listing|rendering|answering|"
    r"troubleshooting|translation|responding|the\s+\w+\s+(?:tool|server)|\w+_\w+)"
)
_OTHER_TOOL = re.compile(
    r"\b(?:any|every|all|other|another|each)\s+(?:other\s+)?(?:\w+\s+)?(?:tools?|servers?|mcp)\b|\b(?:the|a)\s+"
    r"(?:[\w.-]+\s+){0,2}?[\w.]+\s+(?:tool|server)s?\b|\b(?:browser|search|shell|file|email|mail|git|database|"
    r"db|http|web|terminal|payment|calendar|deploy|filesystem)\s+(?:or\s+\w+\s+)?(?:tool|tools|server|servers)\b|\bfrom\s+(?:another|other|any)\s+server|\b(?:via|through|using|with|call(?:ing)?)"
    r"\s+(?:the\s+)?[a-z][a-z0-9]*(?:[_.][a-z0-9]+)+\b|\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\(|\bfor\s+the\s+\w+\s+tool"
)
_REDIRECT = re.compile(
    r"\binstead\b|\bsupersedes?\b|\breplaces?\s+\w+_\w+|\bno\s+longer\s+be\s+used|\bexclusively\b|\brather\s+than\b|"
    r"\bin\s+place\s+of\b|\broute\s+\w+(?:\s+\w+){0,3}\s+through|\b(?:must|should|shall)\s+be\s+"
    r"(?:rewritten|routed|redirected|replaced|prefixed|proxied)\b|\bprefix(?:ed)?\s+(?:every|each|all|the|by|with)"
)
_DESTINATION = re.compile(
    r"\baccount\s+(?:number\s+|no\.?\s+)?#?\d{6,}|\brouting\s+(?:number\s+)?\d{6,}|https?://|\b[\w.+-]+@[\w-]+\.[\w.-]+|\+\d[\d\s]{7,}|\b[a-z]{2}\d{2}[a-z0-9]{10,30}\b|\bwebhook|"
    r"\bgist|\bpublic(?:ly)?\b|\bexternal(?:ly)?\b|\bthird[-\s]part(?:y|ies)\b|"
    r"\b(?:training|analytics|advertising|marketing|research)\s+partners?\b"
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
    "系统通知|システム通知|시스템 공지|системное указание|إشعار النظام|सिस्टम सूचना|aviso del sistema|"
    "avis système|systemanweisung|instrucción oculta|"
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
#: Every branch opens with its quote mark (the apostrophe's "no word character before" is checked
#: just after it), so ``re`` skips to quote marks instead of trying each position.
_QUOTED = re.compile(
    r"\"[^\"\n]*?\s\S+\s[^\"\n]*?\"|“[^”\n]*?\s\S+\s[^”\n]*?”|'(?<!\w')[^'\n]*?\s\S+\s[^'\n]*?'(?![\w])"
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
    r"\b(?:also\s+)?(?:forwards|sends|uploads|posts|shares|transmits|syncs|copies|mirrors|reports|exports)\s+"
    r"(?:[\w']+\s+){0,6}?(?:to|with)\s+(?:https?://|[\w.+-]+@|(?:our\s+)?(?:partner|third|external|advertis)\w*)|"
    r"\b(?:is|are)\s+(?:\w+\s+and\s+)(?:posted|sent|uploaded|forwarded|shared|copied|synced)\s+(?:to|with)\b|\b(?:is|are|will\s+be|gets?|get)\s+(?:also\s+|silently\s+|then\s+)?(?:posted|sent|uploaded|forwarded|shared|"
    r"copied|mirrored|synced|submitted|transmitted|reported)\s+(?:to|with)\b"
)
#: The reader told what it must do, in the second person ("you must now call ...").
_YOU_MODAL = re.compile(
    r"\byour\s+(?:next\s+|first\s+|only\s+)?(?:step|task|job|instructions?|priority)\s+(?:is|are)\s+to\b|\byou\s+(?:must|should|need\s+to|have\s+to|are\s+(?:now\s+)?(?:required|instructed|expected)\s+to|"
    r"will\s+now|are\s+to)\b"
)
_TAMPER = re.compile(
    r"\b(?:tool|server)\s*(?:\([\w.]+\)\s*)?(?:should|must|shall|will)\s+(?:always|now|only|never)\b|"
    r"\b(?:is|are)\s+(?:unsafe|insecure|deprecated|broken|compromised|malicious|outdated|obsolete|untrusted)\b|no\s+longer\s+be\s+used|"
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
    ("you_modal", _YOU_MODAL, frozenset({"you", "your"})),
    ("address", _ADDRESS, _MODEL_NOUNS | {"language"}),
    (
        "authority",
        _AUTHORITY,
        frozenset(
            _terms(
                "system|sys|admin|root|developer|operator|internal|role|priority|elevated|authorized|"
                "authorised|preauthorized|pre-authorized|mandated|global|rule|hidden|approved|compliance|"
                "instruction|instructions|instructions_for_model|henceforth|future|subsequent|rest|consented|"
                "requested|asked|wants|instructed|needs|now"
            )
        ),
    ),
    (
        "secrecy",
        _SECRECY,
        frozenset(
            _terms(
                "tell|telling|mention|mentioning|show|showing|explain|explaining|report|reporting|reveal|"
                "revealing|disclose|disclosing|inform|informing|notify|notifying|alert|alerting|bring|list|"
                "surface|display|say|saying|let|letting|make|making|quietly|silently|secretly|covertly|"
                "discreetly|invisibly|keep|notice|noticed|knowing|knowledge|need|out|output|replies"
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
        frozenset(_terms("without|need|wait|ask|confirm|prompt|even|regardless|whatever|still")),
    ),
    (
        "trigger",
        _TRIGGER,
        frozenset(_terms("when|whenever|before|after|each|every|upon|once|if|while|anytime|time|soon")),
    ),
    (
        "other_tool",
        _OTHER_TOOL,
        frozenset(_terms("tool|tools|server|servers|mcp")),
    ),
    (
        "redirect",
        _REDIRECT,
        frozenset(
            _terms(
                "instead|supersede|supersedes|replace|replaces|longer|exclusively|rather|place|route|prefix|prefixed|"
                "rewritten|routed|redirected|proxied|replaced"
            )
        ),
    ),
    ("sink", _SINK, frozenset(_terms("param|parameter|field|argument|arg|property|in|into|to|as"))),
    (
        "flow",
        _FLOW,
        frozenset(
            _terms(
                "posted|sent|uploaded|forwarded|shared|copied|mirrored|synced|submitted|transmitted|reported|"
                "forwards|sends|uploads|posts|shares|transmits|syncs|copies|mirrors|reports|exports"
            )
        ),
    ),
)
#: Secrecy needs a negation with its verb ("don't tell") unless the word says it alone ("quietly").
_SECRECY_ALONE = frozenset(
    _terms("quietly|silently|secretly|covertly|discreetly|invisibly|keep|notice|noticed|knowing|replies")
)
_SECRECY_NEGATIONS = frozenset(_terms("not|don't|dont|never|without|won't|wont|doesn't"))
_SECRECY_PAIRS = (
    (frozenset({"only"}), frozenset({"report", "output"})),
    (frozenset({"out"}), frozenset({"answer", "reply", "response", "summary"})),
    (frozenset({"user"}), frozenset({"need"})),
)
#: No-confirmation needs its pair ("no need", "don't wait", "even if") unless the word says it alone.
_NO_CONFIRM_ALONE = frozenset(_terms("without|regardless|whatever|still"))
_NO_CONFIRM_PAIRS = (
    (frozenset({"no"}), frozenset({"need"})),
    (frozenset({"don't", "dont", "not"}), frozenset({"wait", "ask", "confirm", "prompt"})),
    (frozenset({"even"}), frozenset({"if"})),
)
#: Words that name a call when a snake_case or dotted identifier follows ("via slack_post").
_CALL_WORDS = frozenset(_terms("via|through|using|with|call|calling|from"))
_LEADS = frozenset(_terms("also|then|first|additionally|next|finally|always|never|and"))
#: Words before a quotation that make it a report of someone else's words, not an order.
_REPORTING_WORDS = (
    r"(?:such\s+as|e\.g\.|for\s+example|(?<![.\w-])example|phrase|string|payload|reading|quote[sd]?|titled|called|"
    r"says?|said|like|patterns?|headline|wrote|contains?|text|instructions?|comment|finding|decoded\s+to|"
    r"followed|flagged|detected|blocked|matched|verdict)\W{0,12}$|"
    r"such\s+as\s+[\w\s-]{0,20}\W{0,3}$"
)
_REPORTING = re.compile(_REPORTING_WORDS + r"|(?:^|\n)\s*(?:\d+[.)]|[-*•])?\s*$")
#: Only a reporting word, not a quotation opening a line (the phrase families read quoted lines).
_REPORTED_BY_WORD = re.compile(_REPORTING_WORDS)


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
        "should|must|shall|will|unsafe|insecure|deprecated|broken|compromised|malicious|longer|leak|leaks|use|outdated|obsolete|untrusted"
    )
)
_DESTINATION_WORDS = frozenset(
    _terms("webhook|gist|public|publicly|external|externally|iban|account|routing|third|partner|partners")
)
_PATH_MARKERS = _terms("~/|.ssh|.aws|.kube|.netrc|.env|id_rsa|id_ed25519|bash_history|/etc/|.git-cred")
_PATH_WORDS = frozenset(_terms("login|keychain|printenv|contents|bash_history"))
_SENSITIVE_ANCHORS = frozenset(
    _terms(
        "env|environment|api|access|system|conversation|chat|previous|private|login|credit|card|date|home|"
        "phone|medical|secret|secrets|password|passwords|credential|credentials|cookie|cookies|authorization|"
        "deploy|session|printenv"
    )
)
_ML_NAMES = frozenset(
    _terms(
        "address|ml_authority|secrecy|ml_override|action|no_confirm|trigger|other_tool|sensitive|harm|send|"
        "quantifier|tamper"
    )
)
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
_TRANSCRIPT = re.compile(
    r"(?:^|\n)\s*(?:user|human|customer|client|用户|使用者|ユーザー|사용자|пользователь|المستخدم|उपयोगकर्ता|"
    r"usuario|usuário|utilisateur|nutzer|benutzer)\s*:"
)
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


#: Words and marks without which a text holds nothing harmful for an order to ask (the payload
#: half of every finding); a field without any is skipped, and in a long field only sentences
#: near one are read.
_PAYLOAD_WORDS = frozenset(
    _terms(
        "ignore|disregard|bypass|skip|override|forget|circumvent|suspend|waive|quietly|silently|secretly|"
        "covertly|discreetly|invisibly|tell|mention|reveal|disclose|inform|notify|notice|knowing|keep|explain|"
        "bring|surface|without|regardless|whatever|"
        "instead|supersede|supersedes|replace|replaces|longer|exclusively|rather|route|prefix|prefixed|"
        "unsafe|insecure|deprecated|broken|compromised|malicious|leak|leaks|posted|sent|uploaded|forwarded|"
        "forwards|sends|uploads|shares|transmits|syncs|exports|partner|partners|third|rewritten|routed|outdated"
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
    "://|@|~/|.ssh|.aws|.kube|.netrc|.env|id_rsa|bash_history|/etc/|--force|rm -|+1|+4|+3"
)
#: Letters of scripts other than Latin (Greek and up): such text is read in full, with the
#: multilingual lexicons.
_OTHER_SCRIPT = re.compile("[\u0370-\u1fff\u3040-\ud7ff\uf900-\uffef]")
_NEGATIONS = frozenset(_terms("not|don't|dont|never|no|doesn't|didn't|won't|only"))
#: Payload words that only count under a negation ("do not show it", "don't wait for CI").
_NEGATED_PAYLOAD = frozenset(
    _terms("show|report|output|list|display|say|wait|even|still|need|ask|confirm|prompt")
)
#: Words that can make a sentence's actor reach the whole field (model address, authority).
_WIDE_WORDS = _MODEL_NOUNS | frozenset(
    _terms("system|sys|admin|root|developer|role|hidden|authorized|internal")
)

# ---- more techniques (persona, deception, overruling the user, steering tools by name, ...) ------
from . import tactics as _tactics  # noqa: E402

_REGEXES = _REGEXES + _tactics.REGEXES
_WEIGHTS.update(_tactics.WEIGHTS)
_LABELS.update(_tactics.LABELS)
_ACTORS = _ACTORS | _tactics.ACTORS
_STRONG_ACTORS = _STRONG_ACTORS | _tactics.STRONG_ACTORS
_WEAK_ACTORS = _ACTORS - _STRONG_ACTORS
_PAYLOADS = _PAYLOADS | _tactics.PAYLOADS
_FIELD_WIDE = _FIELD_WIDE | _tactics.FIELD_WIDE
_SEVERE = _SEVERE | _tactics.SEVERE
_IMPERATIVE = _IMPERATIVE | _tactics.IMPERATIVE
_SECRET_WORDS = _SECRET_WORDS | _tactics.SECRET_WORDS
_PRIVATE_DATA = _PRIVATE_DATA | _tactics.PRIVATE_DATA
_LEADS = _LEADS | _tactics.LEADS
_CONDITIONS = _CONDITIONS | _tactics.CONDITIONS
_HARM_VERBS = _HARM_VERBS | _tactics.HARM_VERBS
_WIDE_WORDS = _WIDE_WORDS | _tactics.WIDE_WORDS
_PAYLOAD_WORDS = _PAYLOAD_WORDS | _tactics.PAYLOAD_WORDS | _tactics.SECRET_WORDS | _tactics.HARM_VERBS
_BONUSES = _tactics.BONUSES
_PAYLOAD_MARKS = _PAYLOAD_MARKS + _tactics.PAYLOAD_MARKS
