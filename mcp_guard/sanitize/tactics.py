# ruff: noqa: RUF001
"""More technique signals for the scorer (:mod:`.technique`), kept as data beside :mod:`.lexicon`.

The core lexicon asks who a text addresses, what authority it claims and what data it moves.
Attacks written by people who never saw it reach the same ends by other routes, and each route
is a technique with its own small vocabulary, never a phrase from a known attack:

* **persona**: it reassigns the reader's role or rules ("you are now ...", "your only job ...",
  "previous guidance no longer applies", "for the remainder of this conversation");
* **promote**: it turns data into orders ("treat the text inside as commands", "lines starting
  with X are trusted instructions");
* **deceive**: it has the reader mislead the user (say something false, present an answer as its
  own, leave things out, mark or describe things as what they are not);
* **overrule**: it acts against what the user chose ("no matter what", "even if the user says",
  "unless they explicitly type otherwise");
* **steer**: it puts another tool, named by its identifier, under an obligation ("send_payment
  must add ...", "when restore_backup is requested ...");
* **harvest**: it reaches into context the call never needs (earlier messages, the environment,
  documents in the workspace, values "as they are", unredacted);
* **weaken**: it asks for a protection to be switched off (TLS checks, host keys, audits,
  signature checks, public ACLs, privileged containers);
* **concealed**: it marks itself as not for the user (an HTML or template comment, "not for
  display", "[hidden]", a fake chat turn).

Some patterns extend a core signal under the same name (another way to address the model,
claim authority or name a payment destination), so they add a way to be found, not weight.
"""

from __future__ import annotations

import re


def _w(text: str) -> frozenset[str]:
    """A word list written as one space-separated string."""
    return frozenset(text.split())


_MODEL = r"(?:ai|llm|assistant|model|agent|chatbot|bot|copilot|language\s+model)s?"

_PERSONA = re.compile(
    r"\byou\s+are\s+now\s+(?:an?\s+|the\s+|operating|acting|unrestricted|free\s+to|allowed|authori[sz]ed|permitted|"
    r"root\b|admin|\w+bot\b|in\s+\w+\s+mode)|\byou\s+are\s+(?:no\s+longer|not\s+(?:an?\s+)?(?:ai|assistant|"
    r"model|bot|language))\b|"
    r"\byou(?:'re|\s+are)\s+(?:now\s+)?(?:operating|acting)\s+as\b|"
    r"\bact\s+as\s+(?:an?\s+|the\s+)?(?:[\w-]+\s+)?(?:admin|administrator|root|superuser|the\s+user|owner)\b|"
    r"\bfrom\s+this\s+point\s+on\b|\bfor\s+the\s+remainder\s+of\b|"
    r"\bin\s+(?:every|each|all)\s+(?:future|later|subsequent)\s+(?:repl|respons|answer|messag|turn)|"
    r"\byour\s+(?:only|sole|new|real|true)\s+(?:job|task|role|goal|purpose|instructions?)\b|"
    r"\byou\s+have\s+no\s+(?:content\s+)?(?:policy|policies|restrictions|rules|limits|guidelines)\b|"
    r"\b(?:do\s+not|don'?t|never)\s+refuse\b|"
    r"\b(?:guidance|instructions|rules|caveats|guidelines|policies|restrictions|policy)\s+"
    r"(?:no\s+longer|do\s+not|don'?t|does\s+not)\s+apply\b|"
    r"\byou\s+no\s+longer\s+need\b|"
    r"\b(?:i|you)\s+(?:have\s+been|was|were|am|are)\s+(?:told|instructed|authori[sz]ed|allowed|permitted)\s+"
    r"to\s+(?:disregard|ignore|skip|bypass|override)\b|"
    r"\b(?:disregard|ignore|forget)\s+(?:your|the)\s+(?:usual|normal|standard|default)\b|"
    r"\b(?:forget|ignore|disregard)\s+(?:the|any|all)\s+instructions\s+you\b|"
    r"\binstructions\s+(?:outrank|override|supersede|take\s+precedence\s+over)\b"
)
_PROMOTE = re.compile(
    r"\b(?:treat|consider|regard|handle)\s+[^.;]{0,80}?\bas\s+(?:trusted\s+)?"
    r"(?:commands?|instructions?|orders|directives|system\s+input)\b|"
    r"\b(?:is|are)\s+(?:trusted\s+(?:system\s+)?(?:instructions?|input|commands?|orders))\b|"
    r"\b(?:obey|follow|execute|carry\s+out|run)\s+(?:any\s+|the\s+|all\s+)?(?:text|instructions?|commands?|lines?)"
    r"\s+(?:that\s+)?(?:appear|appearing|inside|within|found|contained|starting)\b|"
    r"\bfollow\s+them\b|\bcarry\s+them\s+out\b|"
    r"\bif\s+it\s+contains\s+(?:commands?|instructions?),?\s+(?:execute|run|follow|obey)\b"
)
_DECEIVE = re.compile(
    r"\bpretend\w*\b|\bdeny\b|\bas\s+(?:if\s+it\s+were\s+)?your\s+own\b|\beven\s+though\b|"
    r"\b(?:leave\s+out|withhold|hide)\b|"
    r"\bnever\s+(?:cite|credit|attribute|flag|disclose|admit)\b|"
    r"\b(?:do\s+not|don'?t)\s+(?:cite|flag|include|disclose|correct|alarm|downgrade|escalate|warn|admit)\b|"
    r"\b(?:say|reply|respond|claim|write\s+to\s+the\s+user)\s+(?:that\s+)?(?:it|they|the\s+\w+|this|there|"
    r"refunds?|none|nothing|all)\b[^.;]{0,40}?\b(?:not|no|none|unavailable|unreliable|empty|impossible|in\s+range|fine)\b|"
    r"\btell\s+(?:the\s+)?(?:user|customer|clinician|patient|others|them|caller)\s+(?:that\s+)?[^.;]{0,60}?"
    r"\b(?:not|no|none|unavailable|unreliable|escalated|empty|impossible)\b|"
    r"\b(?:describe|present|phrase|frame|report|mark|state|label|record)\s+(?:[\w'%-]+\s+){0,6}?as\s+"
    r"(?:['\"]|your\s+own|empty|matched|paid|resolved|delivered|guaranteed|safe|informational|no\s+changes|\d)|"
    r"\bmark\s+(?:them|it)\s+(?:delivered|paid|resolved|matched|done|complete)\b|"
    r"\b(?:state|claim|say|assert|confirm)\s+(?:that\s+)?(?:it|they|this|he|she)\s+(?:was|were|is|are|has|have)\s+"
    r"(?:been\s+)?(?:personally\s+|already\s+|fully\s+)?(?:reviewed|approved|checked|verified|signed|tested)\b|"
    r"\bnone\s+(?:are|is)\s+available\b|\bshows?\s+otherwise\b|"
    r"\birrespective\s+of\s+the\s+actual\b|\bregardless\s+of\s+the\s+(?:numbers|facts|results|data|outcome)\b"
)
_OVERRULE = re.compile(
    r"\bno\s+matter\s+(?:what|the|how|which)\b|\birrespective\s+of\b|"
    r"\bwhatever\s+(?:[\w-]+\s+)?(?:is\s+|was\s+|the\s+user\s+|they\s+)?(?:requested|asked|chosen|entered|typed|given|"
    r"picks|asks|wants|schedule|value)\b|"
    r"\beven\s+(?:if|when)\s+(?:the\s+)?(?:user|they|customer|clinician|patient|requester|he|she)\s+(?:says|asks\s+for|"
    r"provides|names|types|requests|prefers|wants|picks\s+another)\b|"
    r"\bunless\s+(?:the\s+user\s+|they\s+)?(?:explicitly\s+|specifically\s+)?(?:types?|says?|writes?|objects?)\b|"
    r"\bunless\s+told\b|\bregardless\s+of\s+(?:the\s+)?(?:findings|numbers|name|request|choice|selection|answer|"
    r"outcome|results|facts|user'?s\s+(?:request|choice|instruction|locale|selection|answer))\b|"
    r"\binstead\s+of\s+the\s+(?:user'?s?|chosen|requested|selected|customer'?s?|one\s+the\s+user)\b|"
    r"\bif\s+the\s+user\s+objects\b|\bcontinue\s+anyway\b|\bon\s+(?:the\s+user'?s|their|his|her)\s+behalf\b|"
    r"\bon\s+behalf\s+of\s+the\s+user\b|\bas\s+the\s+user\b|"
    r"\bsign\s+(?:[\w']+\s+){0,3}?(?:with|as|using)\s+(?:the\s+)?(?:[\w']+\s+){0,3}?(?:name|signature)\b"
)
#: Another tool, by its identifier, under an obligation or a condition this text sets.
_STEER = re.compile(
    r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+(?:\s+(?:tool|function|endpoint|calls?|invocations?))?"
    r"(?:\s+(?:from|on|of|in)\s+(?:the\s+|this\s+|any\s+)?[\w-]+\s+(?:server|deployment|mcp))?"
    r"(?:\s*\([^)]{0,30}\))?\s+(?:must|should|shall|needs\s+to|expects?|works\s+best)\b|"
    r"\b(?:passed|sent|given)\s+to\s+[a-z][a-z0-9]*(?:_[a-z0-9]+)+\s+(?:are|is|must|should)\b|"
    r"\b(?:the\s+)?[a-z][a-z0-9]*(?:_[a-z0-9]+)+(?:\s+tool)?\)?\s+(?:has\s+a\s+(?:known\s+)?bug|is\s+(?:broken|buggy|"
    r"deprecated|unsafe|unreliable|stale)|returns\s+(?:stale|unsafe|wrong|outdated))\b|"
    r"\bwhen(?:ever)?\s+you\s+(?:later\s+|next\s+)?(?:call|use|invoke|run)\s+(?:the\s+)?[a-z][a-z0-9]*(?:_[a-z0-9]+)+|"
    r"\bwhen(?:ever)?\s+(?:the\s+)?[a-z][a-z0-9]*(?:_[a-z0-9]+)+"
    r"(?:\s+tool)?\s+(?:is\s+|are\s+)?(?:used|called|requested|invoked|from|runs?)\b|"
    r"\b(?:text|data|content|values?)\s+you\s+(?:later\s+)?(?:pass|send|give)\s+to\b|"
    r"\b(?:governs|applies\s+to|overrides?)\s+(?:the\s+)?[a-z][a-z0-9]*(?:_[a-z0-9]+)+"
)
_IDENTIFIER = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)+")
_HARVEST = re.compile(
    r"\b(?:taken|pulled|copied|extracted|read|gathered|collected|scraped|copy|read\s+it)\s+(?:it\s+|them\s+)?"
    r"from\s+(?:the\s+|any\s+|all\s+|earlier\s+|previous\s+|prior\s+|other\s+)?(?:[\w'-]+\s+){0,3}?"
    r"(?:messages?|conversation|chat|context|session|workspace|documents?|emails?|inbox|environment|memory|"
    r"signature|history|turns?|http_request)\b|"
    r"\bfrom\s+the\s+environment\b|\b(?:every|each|all)\s+(?:\w+\s+)?messages?\s+so\s+far\b|"
    r"\b(?:visible|shared|mentioned|seen|pasted)\s+in\s+(?:the\s+|this\s+)?(?:conversation|chat|session|context)\b|"
    r"\bfrom\s+the\s+user'?s\s+(?:most\s+recent|last|previous|earlier|other)\b|\bfrom\s+earlier\s+messages\b|"
    r"\byou\s+were\s+given\b|\b(?:complete|full|entire|whole)\s+(?:text|content|contents)\s+of\b|"
    r"\bthe\s+user'?s\s+(?:last|previous|latest|most\s+recent|earlier)\s+(?:messages?|prompts?|requests?|documents?)\b|"
    r"\bread\s+so\s+far\b|\bselect\s+\*\s+from\b|"
    r"\{\{\s*(?:system_prompt|conversation|chat_history|history|all_\w+|previous_\w+|user_messages|secrets?|env|"
    r"api_key)\w*\s*\}\}|"
    r"\b(?:unredacted|unmasked|verbatim)\b|\bactual\s+values?\b|\b(?:not|never|no)\s+masked\s+values?\b|\bas\s+they\s+are\b|"
    r"\bsummaries\s+are\s+not\s+accepted\b|\b(?:raw|full)\s+(?:export|dump)\b|\bin\s+the\s+workspace\b"
)
_WEAKEN = re.compile(
    r"\b(?:stricthostkeychecking|verify_?tls|verify_?ssl|ssl_?verify|tls_?verify|audit-level|signature_?check|"
    r"knownhostsfile|confirm\w*|approval\w*|notify)['\"]?\s*[=:]\s*['\"]?(?:no|false|off|none|0|/dev/null)\b|"
    r"\bprivileged\s*:\s*true|\bclusteradmin\b|\bhostpid\b|0\.0\.0\.0/0|\banyone[_\s-]with[_\s-]link\b|"
    r"\bpublic[-_]read(?:[-_]write)?\b|--(?:no-verify|insecure|bypass[\w-]*|admin-override)\b|\bchmod\s+777\b|"
    r"\b(?:disable|skip|turn\s+off|switch\s+off|remove|silence)\s+(?:the\s+)?(?:[\w'-]+\s+){0,3}?(?:checks?|verification|"
    r"protection|cutoff|signing|scan|audit|firewall|2fa|mfa|alerts?|failures?)\b|"
    r"\bpush\s+directly\s+to\s+protected\b|\breviews?\s+(?:are|is)\s+not\s+(?:needed|required)\b|"
    r"\bno\s+dry\s+run\b|\bneeds\s+no\s+confirmation\b|\bstate\s*=\s*['\"]?(?:off|unlocked)\b"
)
_CONCEALED = re.compile(
    r"<!--|\{\{!--|/\*\s+\w+(?:[^*]+?\s){3,}[^*]*\*/|\[hidden\]|<span\s+hidden|«\s*system\s*»|"
    r"\bnot\s+(?:for|shown|visible|displayed)\s+(?:in\s+|to\s+)?(?:the\s+)?(?:display|ui|users?|humans?|customers?)\b|"
    r"\b(?:model|ai|assistant|llm)[-\s]only\b|"
    r"\b(?:secret|hidden|private)\s+(?:directive|instruction|note|rule|guidance|context)s?\b|"
    r"\bbegin\s+(?:agent|model|ai|assistant|trusted|system)\s+(?:context|instructions?)\b|"
    r"[\"']?role[\"']?\s*:\s*[\"']system\b|<(?:system|agent|assistant|model)[-_]\w+>|"
    r"\[\[\s*(?:assistant|agent|model|ai|system)[-_]\w+\s*\]\]|\bx-agent\b|\bmcp\.agent/|\bagent[-_]config\b|"
    r"\b(?:assistant|agent|model|ai)[-_]instructions?\b|\bsystem>\s|\bassistant>\s"
)
#: More ways to address the model (merged into the core ``address`` signal).
_ADDRESS_MORE = re.compile(
    rf"\b(?:whatever|whichever|whoever)\s+(?:\(?[\w\s]{{0,20}}\)?\s+)?{_MODEL}\b|"
    rf"\b(?:tips?|hints?|rules?|notes?|guidance|messages?|instructions?|ps|p\.s\.)\s+(?:for|to)\s+(?:the\s+|any\s+|all\s+)?"
    rf"(?:[\w/-]+\s+){{0,2}}?(?:{_MODEL}|pair\s+programmers)\b|"
    rf"\b(?:ai|assistants?|agents?|models?|llms?|copilot)\s+(?:reading|summari[sz]ing|processing|parsing|handling|"
    rf"managing|transcribing|auto-remediating)\b|[→>]\s*(?:ai|assistant|agent|model)\s*:|\(\s*ai\s*\)\s*:|"
    rf"\b(?:ai|assistant|agent|model|language\s+model)\s*[—–]\s|\b(?:attention|hey|dear)\s+(?:ai|assistant|agent|model|bot)\b|"
    rf"\bhuman\s+or\s+ai\b|\busing\s+an\s+ai\b|\byour\s+(?:ai\s+)?assistant\s+(?:should|must)\b|"
    rf"\b{_MODEL}\s+(?:guidance|directive|rule|context)\b|\bside\s+rule\b|\bto\s+(?:the\s+)?(?:\w+\s+)?{_MODEL}\s*:|"
    rf"\b(?:copilot|assistant|agent)/(?:assistant|agent|copilot)\b|\bfor_llm\w*|\bto\s*\"?\s*:\s*\"?(?:assistant|agent|model)\b|"
    rf"\b(?:agent|assistant|llm|model|ai)_(?:overrides?|config|rules?|instructions?|policy|mode|directives?)\b"
)
#: Claims of authority or of consent nobody gave (merged into the core ``authority`` signal).
_AUTHORITY_MORE = re.compile(
    r"\[\s*(?:system|admin|root|developer|operator)\s+(?:note|notice|message|override|instruction)s?\s*\]|"
    r"\(\s*(?:system|admin)\s*:|\boverride\s*:|"
    r"\b(?:per|by|under)\s+(?:[\w.-]+\s+){0,3}?(?:directive|regulation|mandate|notice)\b|"
    r"\bas\s+per\s+(?:the\s+)?(?:updated|new|latest)\s+[\w-]+\s+(?:guidance|policy|rules?)\b|"
    r"\bcorporate\s+(?:notice|directive|policy)\b|\b(?:has|have)\s+(?:been\s+)?delegated\b|"
    r"\bthis\s+(?:was|is|has\s+been)\s+(?:agreed|pre-?approved|an?\s+(?:executive|management)\s+decision)\b|"
    r"\b(?:the\s+)?(?:user|rider|customer|tenant|owner|doctor|controller|patient)\s+(?:already\s+)?"
    r"(?:knows|said\s+so|agreed|requested|approved\s+this|prefers\s+it|moved)\s*[.;)]|"
    r"\bthey\s+told\s+us\b|\belevated\s+session\b|\bstanding\s+exception\b|\bowner\s+of\s+this\s+\w+\s+requests\b|"
    r"\bthis\s+is\s+an\s+instruction\b|\bpolicy_override\b"
)
#: Rules and limits set aside (merged into the core ``override`` signal).
_OVERRIDE_MORE = re.compile(
    r"\b(?:ignore|disregard|bypass|skip|override|forget|waive)\s+(?:any\s+|all\s+|the\s+|your\s+)?(?:[\w-]+\s+){0,2}?"
    r"(?:caps?|limits?|thresholds?|constraints?|quotas?|caveats?|safeguards?|guardrails?|content\s+polic(?:y|ies))\b"
)
#: Consent skipped, in more words (merged into the core ``no_confirm`` signal).
_NO_CONFIRM_MORE = re.compile(
    r"\bwithout\s+(?:the\s+user'?s?\s+|their\s+|any\s+|prior\s+|explicit\s+)?(?:confirmation|approval|consent|"
    r"permission|sign-?off)\b"
)
#: Personal data and credentials in more words (merged into the core ``sensitive`` signal).
_SENSITIVE_MORE = re.compile(
    r"\bprivate\s+(?:events?|calendars?|photos?|documents?|data)\b|\bdial-in\s+pins?\b|\bmaster\s+pin\b|"
    r"\bpin\s+(?:code|number)s?\b|\bwi-?fi\s+password|\bbank(?:ing)?\s+(?:login|password|credentials?)\b|"
    r"\bnational\s+id\b|\bpayment\s+methods?\b|\bsalary\s+history\b|\brecovery\s+codes?\b|\brefresh\s+tokens?\b"
)
#: Passive orders to move data ("must be transmitted to ...", merged into the core ``flow`` signal).
_FLOW_MORE = re.compile(
    r"\b(?:must|should|shall|is\s+to|are\s+to|needs?\s+to)\s+(?:also\s+)?be\s+(?:posted|sent|uploaded|forwarded|shared|"
    r"copied|mirrored|synced|submitted|transmitted|reported|streamed)\s+(?:to|with)\b|"
    r"\b(?:stream|mirror|echo|forward)\s+(?:it|them|each\s+\w+|every\s+\w+|all\s+\w+)(?:\s+\w+){0,4}?\s+to\s+"
    r"(?:https?://|[\w-]+\.[\w.-]+|the\s+[\w_]+\s+tool)"
)
#: Rerouting a request to this tool or away from the one the user named.
_REDIRECT_MORE = re.compile(r"\broute\s+(?:\w+\s+){0,3}(?:here|to\s+this\s+tool|to\s+me)\b")
#: Payment destinations written with separators ("account 88-4410-2291", "card ending 4421").
_DESTINATION_MORE = re.compile(
    r"\b(?:account|acct|card|iban|swift|bic|routing|wallet|payee)\s+(?:no\.?\s+|number\s+|ending(?:\s+in)?\s+|"
    r"code\s+)?#?[a-z]{0,6}\d[\d-]{3,}|\bswift\s+[a-z]{6}[a-z0-9]{2,5}\b"
)

#: (signal, regex, anchor words), appended to the core lexicon's table.
REGEXES: tuple[tuple[str, re.Pattern[str], frozenset[str]], ...] = (
    (
        "persona",
        _PERSONA,
        _w(
            "you point remainder future subsequent refuse apply disregard ignore forget outrank "
            "override supersede precedence told instructed"
        ),
    ),
    ("promote", _PROMOTE, _w("treat consider regard handle trusted follow obey carry contains")),
    (
        "deceive",
        _DECEIVE,
        _w(
            "pretend pretending deny own though leave withhold hide never cite flag include disclose "
            "correct alarm downgrade escalate warn admit say reply respond claim write tell describe "
            "present phrase frame mark label none otherwise irrespective regardless reviewed approved "
            "checked verified signed tested"
        ),
    ),
    (
        "overrule",
        _OVERRULE,
        _w("matter irrespective whatever even unless regardless instead objects anyway behalf sign"),
    ),
    (
        "steer",
        _STEER,
        _w(
            "must should shall needs expects expect works passed sent given when whenever pass send "
            "governs applies override overrides bug broken buggy deprecated unsafe unreliable stale "
            "returns"
        ),
    ),
    (
        "harvest",
        _HARVEST,
        _w(
            "taken pulled copied extracted gathered collected scraped workspace environment inbox "
            "signature far given unredacted unmasked verbatim actual masked summaries raw complete "
            "entire whole recent earlier system_prompt chat_history all_previous_messages "
            "previous_messages secrets api_key"
        ),
    ),
    (
        "weaken",
        _WEAKEN,
        _w(
            "stricthostkeychecking verify_tls verifytls verify_ssl ssl_verify tls_verify audit-level "
            "signature_check knownhostsfile privileged clusteradmin hostpid anyone_with_link anyone "
            "public-read public_read no-verify insecure admin-override chmod disable skip turn switch "
            "remove silence push reviews review dry needs state 0.0.0.0 confirm notify approval"
        ),
    ),
    (
        "concealed",
        _CONCEALED,
        _w(
            "hidden display shown visible displayed model-only ai-only assistant-only llm-only begin "
            "role directive x-agent mcp.agent agent-config agent_config assistant-instructions agent- "
            "instructions ai-instructions model-instructions"
        ),
    ),
    ("address", _ADDRESS_MORE, frozenset()),  # reuses the core signal's anchors
    (
        "authority",
        _AUTHORITY_MORE,
        _w(
            "regulation directive mandate corporate delegated agreed knows prefers told elevated "
            "standing policy_override decision"
        ),
    ),
    (
        "flow",
        _FLOW_MORE,
        _w(
            "posted sent uploaded forwarded shared copied mirrored synced submitted transmitted "
            "reported streamed stream mirror echo forward"
        ),
    ),
    ("redirect", _REDIRECT_MORE, _w("route")),
    ("override", _OVERRIDE_MORE, _w("ignore disregard bypass skip override forget waive")),
    ("no_confirm", _NO_CONFIRM_MORE, _w("without")),
    (
        "sensitive",
        _SENSITIVE_MORE,
        _w("private dial-in master pin wi-fi wifi bank banking national payment salary recovery refresh"),
    ),
    (
        "destination",
        _DESTINATION_MORE,
        _w("account acct card iban swift bic routing wallet payee"),
    ),
)
#: Marks that make ``concealed`` possible whatever the words (comment openers, tags, guillemets).
CONCEALED_MARKS = (
    "<!--", "/*", "{{", "«", "[[", "<span", "<system", "<agent", "<assistant", "<model", "system>",
    "assistant>",
)  # fmt: skip
#: Signals whose pattern cannot match without this substring (checked before the regex runs).
NEEDS = {"steer": "_"}
#: Signals that run on RE2 (long alternations, no look-around): linear time on any sentence.
ON_RE2 = frozenset({"persona", "promote", "deceive", "steer", "harvest", "weaken", "concealed"})

WEIGHTS = {
    "persona": 3.5,
    "promote": 3.5,
    "deceive": 2.5,
    "overrule": 1.5,
    "steer": 3.0,
    "harvest": 2.0,
    "weaken": 1.5,
    "concealed": 2.0,
    "in_result": 1.0,
}
LABELS = {
    "persona": "reassigns the model's role",
    "promote": "turns data into orders",
    "deceive": "misleads the user",
    "overrule": "overrules the user",
    "steer": "steers another tool",
    "harvest": "reaches for context",
    "weaken": "weakens a protection",
    "concealed": "hides from the user",
    "in_result": "inside a tool result",
}
#: Pairs that make each other stronger: the technique is whole only with both halves (context reached
#: for and a secret in it; an order and a lie to tell or a choice of the user's to overrule).
BONUSES: tuple[tuple[frozenset[str], float], ...] = (
    (frozenset({"harvest", "sensitive"}), 1.0),
    (frozenset({"deceive", "imperative"}), 1.0),
    (frozenset({"overrule", "imperative"}), 1.0),
    (frozenset({"deceive", "you_modal"}), 1.0),
    (frozenset({"overrule", "you_modal"}), 1.0),
)
#: Words the core lexicon's lists lack: orders ("pretend", "mirror", "accept"), secrets ("pin"),
#: private data ("contact"), openers before an order ("please").
IMPERATIVE = _w(
    "pretend leave accept sign mirror echo buy purchase subscribe apply tip rate unlock "
    "switch turn stream rewrite drop keep answer reply respond describe present inflate rank "
    "recommend suggest state omit provide retry select create choose substitute convert raise "
    "silence hide deny update"
)
SECRET_WORDS = _w("otp")
#: Acts that bind or expose the user ("sign", "accept", "purchase", a door "unlocked").
HARM_VERBS = _w("sign accept buy purchase subscribe unlocked disarmed")
#: Words of authority claims that colour a whole field ("they told us", "delegated", "regulation").
WIDE_WORDS = _w("told delegated agreed decision regulation directive mandate")
PRIVATE_DATA = _w("contact")
LEADS = _w("please kindly")
#: Words that open a condition before an order ("whatever they pick, select ...").
CONDITIONS = _w("whatever unless irrespective")
#: Which sets of the core lexicon each new signal joins.
ACTORS = frozenset({"persona", "promote", "concealed", "harvest", "steer"})
STRONG_ACTORS = frozenset({"persona", "promote", "concealed"})
PAYLOADS = frozenset(
    {"persona", "promote", "deceive", "overrule", "steer", "harvest", "weaken", "concealed", "in_result"}
)
FIELD_WIDE = frozenset({"persona"})
SEVERE = frozenset({"promote", "persona"})
#: Words that let a field hold a payload of the new signals (the scorer skips fields without any).
PAYLOAD_WORDS = _w(
    "pretend deny withhold hide irrespective behalf objects anyway refuse remainder obey "
    "unredacted unmasked verbatim masked privileged clusteradmin hostpid insecure silence "
    "otherwise must shall should expects governs treat whatever trusted operating acting "
    "unrestricted outrank outranks precedence unlocked mark describe confirmation caps "
    "workspace environment far earlier recent entire public-read public_read anyone_with_link "
    "stricthostkeychecking verify_tls verify_ssl"
)
PAYLOAD_MARKS = ("<!--", "{{!--", "[hidden]", "0.0.0.0", "«", "[[", "system>")

#: In a result, a window that speaks to the model and asks for an action or a call is half an attack
#: already: data has no business giving orders.
RESULT_SPEAKS = frozenset({"address", "authority", "persona", "promote", "concealed", "harvest"})
RESULT_CALLS = frozenset({"harm", "other_tool", "steer", "weaken", "send", "action"})
#: Pointers inside a result (tool, prompt or resource content): text that arrives as data.
IN_RESULT = re.compile(r"^/(?:content|structuredContent|contents|messages)(?:/|$)")


def steers_itself(hit: str, own: frozenset[str]) -> bool:
    """Whether the tool a ``steer`` match names is the item itself or one of its parameters."""
    names = _IDENTIFIER.findall(hit)
    return bool(names) and all(set(name.split("_")) <= own for name in names)
