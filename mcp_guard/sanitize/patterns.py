"""Phrase families that make up an instruction aimed at the model, in seven languages.

Each family describes a *role* in an attack sentence (who is addressed, what is
asked, what is targeted, where data goes), not a sample string. A single weak
family means little - real tool descriptions address the model all the time -
so :mod:`.injection` scores their combination within one sentence. "Strong"
families (overrides, secrecy, chat-template tokens, templated exfiltration
URLs, decode-and-obey) are never found in honest metadata and block alone.
"""

from __future__ import annotations

import re

_AI = r"(?:ai|a\.i\.|assistant|agent|llm|language model|model|bot|claude|gpt|chatbot|copilot)"

#: "Assistant: ..." anywhere, "AI assistant, ..." only where a sentence or bracket starts.
_ROLE_COLON = (
    r"(?:^|[\s\[(【\"'>:])(?:ai|assistant|system|model|agent|llm|ai\s+agent|ai\s+assistant|dear\s+ai)\s*:\s"
)
_ROLE_COMMA = (
    r"(?:^|[\[(【\"'>:]\s*)(?:ai|assistant|model|agent|llm|ai\s+agent|ai\s+assistant|dear\s+ai)\s*,\s"
)

#: family -> (weight, pattern). Weight 0 marks a strong family (high on its own).
FAMILIES: dict[str, tuple[int, str]] = {
    "override": (
        0,
        r"\b(?:ignore|disregard|forget|override|bypass|discard)\s+(?:all\s+|any\s+|the\s+|your\s+|every\s+)?"
        r"(?:of\s+)?(?:the\s+|your\s+)?(?:previous|prior|earlier|above|preceding|original|existing|system|"
        r"safety|user'?s?|other|initial)\s+(?:instructions?|prompts?|rules|guidelines|messages?|directions|"
        r"question|request|constraints|policies|guardrails|guidance|directives)"
        r"|\b(?:ignore|disregard)\s+(?:the\s+)?sys\s*tem\s+pro\s*mpt"
        r"|\b(?:developer|god|dan|jailbreak|debug|unrestricted)\s+mode\b(?!\s*(?:flag|setting|option|=|:))"
        r"|\brestrictions?\b[^.]{0,60}\b(?:void|lifted|removed|no longer appl)"
        r"|\byou are (?:now )?(?:unrestricted|unfiltered|jailbroken|free from|no longer bound)"
        r"|\bwithout (?:any |your )?(?:safety|content) (?:polic|filter|restriction|guideline)"
        r"|\bnew (?:system )?instructions?\s*:"
        r"|\b(?:previous|prior|earlier|above|original|existing)\s+(?:instructions?|rules|prompts?|guidelines)\s+"
        r"(?:are|is|have\s+been|has\s+been)\s+(?:cancell?ed|void|revoked|obsolete|replaced|overridden|invalid|lifted)"
        r"|\bsystem\s+override\b|\byou\s+are\s+now\s+dan\b"
        r"|\bforget\s+(?:everything|all|anything)\s+(?:you\s+(?:were|have\s+been)\s+(?:told|given|instructed)|"
        r"(?:said|written|stated)\s+(?:above|before|earlier)|above|before|prior)"
        r"|\byour\s+(?:new|real|actual|true)\s+(?:task|role|goal|objective|instructions?|purpose|mission)\s+"
        r"(?:is|are|now|from\s+now)\b"
        r"|\b(?:ai|assistant|model|llm|chatbot)\s+(?:without|with\s+no)\s+(?:any\s+)?(?:restrictions|rules|limits|"
        r"filters|guidelines|censorship)"
        r"|\bignora\s+(?:todas\s+)?(?:las\s+)?instrucciones\s+(?:anteriores|previas)"
        r"|\bolvida\s+(?:todas\s+)?(?:las\s+|tus\s+)?instrucciones"
        r"|\bignorez?\s+(?:toutes\s+)?(?:les|tes|vos)\s+instructions\s+(?:pr[ée]c[ée]dentes|ant[ée]rieures)"
        r"|\boublie[sz]?\s+(?:toutes\s+)?(?:les|tes|vos)\s+instructions"
        r"|\bignorier(?:e|en)?\s+(?:alle\s+)?(?:vorherigen|bisherigen|obigen|fr[üu]heren)\s+"
        r"(?:Anweisungen|Instruktionen|Regeln)"
        r"|\bvergiss\s+(?:alle\s+)?(?:vorherigen\s+|bisherigen\s+)?(?:Anweisungen|Regeln)"
        r"|(?:以前|これまで|前|上記|先)の(?:すべての|全ての)?(?:指示|命令|指令|プロンプト|システムプロンプト)を(?:すべて|全て)?無視"
        r"|(?:忽略|无视|無視|忘记|忘記)(?:之前|先前|以前|上面|上述|所有|前面)的?(?:所有)?的?(?:指示|指令|系统提示|系統提示|提示|命令|规则|規則)"
        r"|(?:이전|앞의|기존|위의|모든)\s*(?:모든\s*)?(?:지시|지침|명령|프롬프트|시스템\s*프롬프트)(?:를|을|은|는)?\s*(?:모두\s*)?무시",
    ),
    "secrecy": (
        0,
        r"\b(?:do\s+not|don'?t|never|without|not)\s+(?:\w+\s+){0,2}?(?:tell|telling|inform|informing|notify|"
        r"notifying|alert|alerting|mention|mentioning|reveal|revealing|disclose|disclosing|show|showing|"
        r"let)\b[^.;]{0,40}?\b(?:the\s+)?(?:user|human|operator|them)\b"
        r"|\bno\s+need\s+to\s+(?:tell|inform|mention|notify)"
        r"|\bkeep\s+(?:this|it|these|that)(?:\s+\w+)?\s+(?:to\s+yourself|secret|hidden|confidential|private|"
        r"between\s+us)"
        r"|\b(?:do\s+not|don'?t|never)\s+(?:list|include|mention|report|log|record|reveal)\s+(?:this|these)"
        r"(?:\s+\w+)?\s+(?:step|instruction|action|note|message|part)"
        r"|\b(?:this|these)\s+(?:instruction|step|note|message)s?\s+(?:is"
        r"|are|must\s+be|should\s+be|stays?)\s+"
        r"(?:hidden|invisible|secret|confidential)"
        r"|\bit\s+is\s+invisible\b"
        r"|\b(?:silently|secretly|covertly|quietly)\s+(?:forward"
        r"|send|copy|upload|add|include|delete|run|execute|"
        r"exfiltrate|replace|change|modify|install|push|bcc|cc|attach|append|collect|post)"
        r"|\bwithout\s+(?:the\s+user'?s?\s+)?(?:knowledge|noticing|knowing)\b|\bbehind\s+the\s+user'?s\s+back"
        r"|\buser\s+(?:must|should)\s+(?:not|never)\s+(?:know|notice|see|find\s+out)"
        r"|\bsag(?:e|t)?\s+(?:es\s+|das\s+)?(?:dem|den)\s+(?:Benutzer|Nutzer|Anwender)\w*\s+nichts?"
        r"|\bohne\s+(?:es\s+)?(?:dem|den)\s+(?:Benutzer|Nutzer|Anwender)\w*\s+(?:zu\s+)?(?:sagen"
        r"|informieren|mitzuteilen)"
        r"|\bverschweige|\bbehalte\s+(?:dies|das|es)\s+f[üu]r\s+dich"
        r"|\bsans\s+(?:le\s+|en\s+)?(?:dire|pr[ée]venir|informer"
        r"|avertir|mentionner|signaler)(?:\s+[àa])?\s+l'utilisat"
        r"|\bne\s+(?:le\s+|lui\s+|leur\s+|rien\s+)?(?:dis|dites"
        r"|mentionne|mentionnez|montre|montrez|r[ée]v[èe]le|"
        r"r[ée]v[ée]lez|signale|signalez)\s+(?:rien|pas|jamais)"
        r"|[àa]\s+l'insu\s+de|\bgarde[sz]?\s+(?:cela|ceci|[çc]a)\s+(?:secret|pour\s+toi)"
        r"|\bsin\s+(?:avisar|decir(?:le|lo)?|informar|notificar|mencionar(?:lo)?"
        r"|advertir)(?:le|les)?\s+(?:\w+\s+)?al\s+usuario"
        r"|\bno\s+(?:le\s+|se\s+lo\s+)?(?:digas|menciones|muestres|informes|reveles|cuentes|avises)\b"
        r"|\bmant[ée]n(?:lo)?\s+en\s+secreto|\ba\s+escondidas"
        r"|ユーザー(?:に|には|へ)[^。]{0,12}(?:伝え|知らせ|言わ|見せ|表示し|教え)(?:ない|ず|るな)"
        r"|表示しない(?:こと|で|ように)|秘密に|内緒|黙って|気づかれ(?:ない|ずに)"
        r"|不要(?:告诉|告知|通知|让|向|對|对)(?:用户|使用者|用戶)|不要让(?:用户|使用者)知道|勿(?:告知|告诉)"
        r"|(?:对|向|對)(?:用户|使用者|用戶)(?:隐瞒|隱瞞|保密)|不要(?:显示|透露|提及|顯示)|秘密地|悄悄"
        r"|사용자(?:에게|에게는|한테)?[^.。]{0,20}(?:알리지|말하지|보여주지|표시하지|알려주지)\s*(?:마|않)"
        r"|사용자에게는[^.。]{0,30}(?:표시|보여)|비밀로|몰래",
    ),
    "special_token": (
        0,
        r"<\|(?:im_start|im_end|system|assistant|user|endoftext|begin_of_text"
        r"|start_header_id|end_header_id|eot_id)\|>"
        r"|\[/?INST\]|<<SYS>>|</?system(?:[-_ ]?(?:prompt|message|instructions?))?>"
        r"|\[(?:system|assistant|instructions?)\]\(#",
    ),
    "decode_exec": (
        0,
        r"\b(?:decode|decoding|decoded|rot-?13|reverse|reversed|right-to-left|backwards)\b[^.\n]{0,50}?"
        r"\b(?:comply|obey|carry\s+(?:it\s+)?out|execute|follow|apply|run|perform|act\s+on)\b"
        r"|\b(?:base64|base32|hex|hexdump|rot-?13|encoded|reversed)\b[^.\n]{0,40}?\b(?:directive|instruction|"
        r"policy|command|pre-?step|order)s?\b[^.\n]{0,40}?\bdecode"
        r"|\bdecode\s+(?:it\s+|this\s+|them\s+)?(?:first|before)\b",
    ),
    "deception": (
        0,
        r"\bregardless\s+of\s+(?:what|whatever|which)\s+the\s+user"
        r"|\bwhatever\s+the\s+(?:code|user|result|output|file)\s+(?:contains|says|shows|returns)"
        r"|\b(?:state|say|claim|report|tell\s+the\s+user)\s+that\s+no\s+(?:problems?"
        r"|issues?|errors?|vulnerabilit)"
        r"|\b(?:always|every\s+time)\s+(?:say|state|respond|reply|answer|claim|report)\s+(?:that|with)\b"
        r"|\b(?:phrased|disguised|presented|framed)\s+as\s+(?:a"
        r"|an)\s+(?:friendly|personal|normal|helpful|casual)"
        r"|\b(?:explain|tell\s+(?:the\s+user|them)|claim)\s+(?:that\s+)?(?:it|this(?:\s+\w+)?)\s+is\s+"
        r"(?:a\s+|an\s+)?(?:required|mandatory|essential|critical|official|endorsed|verified|trusted|approved)"
        r"|\bclaim\s+(?:that\s+)?(?:it|this|the\s+\w+)\s+(?:succeeded|worked|passed|was\s+successful)"
        r"|\bthe\s+user\s+has\s+(?:already\s+)?(?:approved|authori[sz]ed|consented|agreed)"
        r"|\bby\s+asking\s+casually|\bresponde\s+siempre\s+que|\btoujours\s+r[ée]pondre\s+que"
        r"|\bimmer\s+(?:antworten|sagen|behaupten),?\s+dass|常に[^。]{0,10}(?:成功|と答え)|总是(?:回答|说)|항상[^.]{0,10}성공",
    ),
    "address": (
        2,
        r"\bnote\s+(?:to|for)\s+(?:the\s+|any\s+|all\s+)?(?:automated\s+\w+|" + _AI + r"s?)\b"
        r"|\b(?:important|attention|instructions?|message|notice|reminder)\s+(?:for|to)\s+(?:the\s+|any\s+)?"
        + _AI
        + r"s?\b"
        r"|" + _ROLE_COLON + "|" + _ROLE_COMMA + r"|\b(?:the|any|all)\s+(?:ai|assistant|agent|llm|model"
        r"|automated\s+\w+)s?\s+(?:must|should|needs?\s+to|"
        r"has\s+to|is\s+required\s+to|shall)\b"
        r"|\b(?:hi|hello|hey|dear)\s+(?:ai|assistant|agent|model|claude|chatgpt|gpt|copilot|bot)\b"
        r"|\b(?:ai|llm)\s+(?:agents?|assistants?|models?|bots?)\b[^.]{0,40}?\b(?:must|should|needs?\s+to|"
        r"are\s+required\s+to|shall)\b"
        r"|\bwhen(?:ever)?\s+(?:the|an?|any)\s+(?:ai|assistant|agent|llm|model|language\s+model)s?\s+"
        r"(?:reads?|sees?|uses?|calls?|processes|receives?|loads?|opens?|gets?)\b(?!\s+(?:this|these)\b)"
        r"|\bif\s+you\s+are\s+an?\s+"
        + _AI
        + r"\b|\bautomated\s+reviewers?\b|\b(?:model|llm|ai|assistant)_only\b"
        r"|\b_?(?:llm|ai|model|assistant|agent|system)_(?:note|instructions?|directive|prompt)\b"
        r"|\bKI-?Assistent|\b(?:an|f[üu]r)\s+die\s+KI\b|\bHinweis\s+f[üu]r\s+(?:die\s+)?KI"
        r"|\bpour\s+l'(?:IA|assistant)|[àa]\s+l'IA\b|\bassistant\s+IA\b|\bnote\s+(?:cach[ée]e\s+)?pour\s+l"
        r"|\bpara\s+(?:el\s+modelo|la\s+IA|el\s+asistente)|\binstrucci[óo]n\s+(?:oculta"
        r"|para)\b|\bal\s+asistente\b"
        r"|AI\s*アシスタント|AIへ|アシスタントへ|致\s*AI|给\s*AI|AI\s*助手|人工智能助手|给模型|致模型"
        r"|AI\s*에게|어시스턴트에게|AI\s*비서",
    ),
    "container": (
        2,
        r"<!--|\[(?:comment|//|_)\]:\s*<>|\[//\]:\s*#|display\s*:\s*none"
        r"|visibility\s*:\s*hidden|font-size\s*:\s*0"
        r"|<(?:IMPORTANT|CRITICAL|SYSTEM|INSTRUCTIONS?|SECRET|HIDDEN|ADMIN|OVERRIDE|NOTE)>"
        r"|(?:^|\s)---\s*\n\s*\w+\s*:|\{\s*\"_\w+\"\s*:",
    ),
    "trigger_other": (
        2,
        r"\b(?:when(?:ever)?|after|each\s+time|every\s+time|any\s+time)\s+(?:any\s+"
        r"|the\s+|a\s+|an\s+|every\s+)?"
        r"(?!this\b|that\b|current\b|same\b)(?:[a-z][a-z0-9]*(?:[_.][a-zA-Z0-9]+)+"
        r"|`[\w.-]+`|\w+\s+tool)(?:\s+(?:or|and)\s+[\w.`'-]+)?\s+(?:tool\s+)?"
        r"(?:runs|is\s+(?:used|called|invoked|executed|run)|executes|calls?|gets\s+called)\b"
        r"|\bwhen(?:ever)?\s+(?:the\s+)?(?:user|model|assistant|agent|ai|llm|you)\s+(?:runs?|calls?|uses?|invokes?|"
        r"executes?|triggers?)\s+(?:(?:any|every|all)\s+(?:[\w-]+\s+){0,2}?(?:tool|command|function|server|"
        r"integration)s?\b|(?!this\b)[a-z][a-z0-9]*(?:[_.][a-z0-9]+)+\b)"
        r"|\bwhen(?:ever)?\s+(?:a|an|any|the)\s+[\w-]+\s+tool\s+(?:is\s+available|exists|is\s+present)"
        r"|\b(?:with|using|via|through|in)\s+any\s+\w+\s+tools?\b"
        r"|\bfor\s+(?:every|each|all|any)\s+[\w ]{0,30}?(?:sent|made|written|created|executed|run|posted)\s+"
        r"(?:through|via|with|using|by)\s+(?:any\b|(?:the|a|an)\s+`?[\w.-]+`?\s+(?:tool|server|integration)\b)"
        r"|\bwhen(?:ever)?\s+(?:using|calling|invoking|running)\s+(?:the\s+|any\s+|a\s+)?(?!this\b|that\b)"
        r"(?:[a-z][a-z0-9]*(?:[_.][a-zA-Z0-9]+)+|\w+\s+tool)\b"
        r"|\bthe\s+(?:built-?in\s+|other\s+|original\s+|official\s+"
        r"|native\s+)?[\w.-]+\s+tool\b[^.;]{0,40}?\s+(?:is|are|has\s+been)\s+"
        r"(?:deprecated|broken|disabled|unsafe|insecure|compromised|malicious|logging)"
        r"|\bthe\s+[\w.-]+\s+tool\s+(?:must|should|shall)\s+(?:always|never)"
        r"|\b(?:never|do\s+not|don'?t)\s+(?:use|call|invoke|trust)\s+(?:the\s+)?(?:original|official|real|genuine)\s+"
        r"`?[\w.-]+`?\s+tools?\b"
        r"|\b(?:supersedes|replaces|overrides|shadows)\s+(?:the\s+)?`?[\w.-]+`?\s+tools?\s+(?:from|of|in|on)\s+"
        r"(?:other|another|all|every|any)\b"
        r"|\broute\s+(?:every|all|each)\s+\w+\s+(?:through|via|to)\s+this\s+tool"
        r"|\b(?:all|every|any)\s+(?:\w+\s+){0,3}?(?:operations?"
        r"|commands?|emails?|e-mails?|payments?|pushes|commits?|"
        r"installs?|searches)\s+(?:must|should|shall|have\s+to|are\s+to)\b"
        r"|所有[^。]{0,20}(?:操作|请求|請求|调用|呼叫|邮件|郵件|命令)[^。]{0,10}(?:必须|必須|应该|應該|都要)"
        r"|(?:すべての|全ての|他の)[^。]{0,20}(?:ツール|操作|リクエスト|呼び出し|メール|コマンド)"
        r"|(?:모든|다른)[^.]{0,20}(?:도구|툴|요청|이메일|명령)|결제\s*도구"
        r"|\b(?:cada|todas\s+las|todos\s+los)\s+[^.]{0,30}(?:herramienta|correo|llamada)"
        r"|\b(?:jede[nrs]?|alle)\s+[^.]{0,30}(?:Werkzeug|E-Mail|Aufruf|Befehl)"
        r"|\b(?:chaque|tous\s+les|toutes\s+les)\s+[^.]{0,30}(?:outil|e-mail|courriel|appel|commande)",
    ),
    "destructive": (
        2,
        r"\bforce[- ]?push|\bpush\s+--force|\bpush\b[^.]{0,30}\b(?:main|master)\b|\brm\s+-rf\b"
        r"|\bdrop\s+(?:table|database|schema)\b|\bdelete\s+(?:everything|all|every|the\s+audit)"
        r"|\b(?:disable|deactivate|turn\s+off|bypass|skip|remove)\s+(?:the\s+)?(?:\w+\s+)?(?:sandbox"
        r"|tls|ssl|certificate|"
        r"verification|security|2fa|mfa|two-factor|firewall|antivirus|logging|audit|review|hooks|checks)"
        r"|\bcurl\b[^|\n]{0,80}\|\s*(?:ba|z)?sh\b|\bwget\b[^|\n]{0,80}\|\s*(?:ba|z)?sh\b|\bchmod\s+777"
        r"|\bdeaktivier|\bd[ée]sactive|\bdesactiva|無効に|禁用|关闭验证|비활성화"
        r"|\bdelete\b[^.]{0,40}\b(?:logs?|history|backups?|hooks)\b"
        r"|\b(?:delete|wipe|erase|remove|destroy|purge)\s+(?:all\s+(?:of\s+)?)?(?:the\s+)?(?:user'?s?|their|your)\s+"
        r"(?:\w+\s+)?(?:files?|folders?|director(?:y|ies)|home|documents|downloads|data|repos|repositor(?:y|ies)|"
        r"database|emails?|photos|accounts?)\b"
        r"|\bnc\s+(?:-\w+\s+)*-e\b|/bin/(?:ba)?sh\s+-i\b|\breverse\s+shell\b|\bbackdoors?\b|\bkeyloggers?\b"
        r"|\bcrypto-?miners?\b|\bmalware\b",
    ),
    "evasion": (
        2,
        r"\bso(?:\s+that)?\s+(?:the\s+)?[\w -]{0,30}?\b(?:checks?|hooks?|scanners?|reviews?|reviewers?|"
        r"monitoring|audit|logging|security|antivirus|filters?|guard|user)\s+(?:cannot|can't|can\s+not|won't|will\s+not|"
        r"does\s+not|doesn't|do\s+not|don't)\s+(?:interfere|run|notice|detect|block|catch|see|fire|stop)"
        r"|\bwithout\s+(?:being\s+)?(?:logged|detected|noticed|audited|flagged|traced)\b",
    ),
    "phishing": (
        2,
        r"\b(?:ask|asking|request|requesting|get|have|tell|convince|persuade|trick)\s+(?:the\s+)?"
        r"(?:user|users|customer|client|them|him|her)\b[^.;\n]{0,20}?\b(?:for|to\s+(?:re-?)?(?:type|enter|"
        r"provide|share|give|send|confirm|paste|input|submit|reply\s+with|read\s+out))\b[^.;\n]{0,40}?"
        r"\b(?:passwords?|passcodes?|passphrases?|card\s+numbers?|cvv|cvc|pin|ssn|credentials?|"
        r"(?:2fa|mfa|otp|one-time|verification|security|login|auth(?:entication)?|recovery)\s+(?:codes?|keys?|"
        r"phrases?)|api\s+keys?|(?:access|session|auth)\s+tokens?|seed\s+phrases?|private\s+keys?)\b",
    ),
    "dangerous": (
        1,
        r"\bauto-?merge|\bmerge\b[^.]{0,30}\bimmediately|\b(?:add"
        r"|make|grant)\b[^.]{0,30}\b(?:admin|owner|sudo|root)\b"
        r"|\bcreate\s+(?:a\s+)?(?:new\s+)?(?:api\s+key|access\s+token|token|access\s+key|ssh\s+key)"
        r"|\b(?:change|replace|switch|set|use)\b[^.]{0,40}\b(?:payee"
        r"|recipient\s+account|iban|account\s+number|"
        r"bank\s+account|wallet\s+address)"
        r"|\b(?:call|invoke|run|execute|use)\s+`?\w*(?:delete|remove|drop|destroy|wipe|purge|revoke|erase)\w*"
        r"|\b(?:use|send\s+(?:it\s+)?to|pay(?:\s+into)?)\s+(?:the\s+)?account\s+[\w-]*\d"
        r"|\bwontfix\b|\b(?:reply|respond|answer)\s+with\s+the\s+contents?"
        r"|\b(?:always|only)\s+(?:recommend|promote|suggest)\b"
        r"|\bnever\s+mention\s+(?:competitors?|alternatives?|other\s+(?:products|vendors|tools))"
        r"|\binstall\b[^.]{0,40}\b(?:package|globally|extension|plugin|dependency|binary)"
        r"|\bhides?\s+(?:any\s+|all\s+|the\s+)?(?:errors?|failures?|warnings?)\b"
        r"|\bprint\s+(?:every|all)\s+environment|\bdependency\s+on\b",
    ),
    "sensitive": (
        1,
        r"\b(?:passwords?|passphrases?|passwd|one-time\s+codes?"
        r"|otp|2fa\s+codes?|api[\s_-]?keys?|access[\s_-]?keys?|"
        r"secret\s+keys?|private[\s_-]?keys?|ssh[\s_-]?keys?|gpg\s+keys?"
        r"|access\s+tokens?|auth(?:entication)?\s+tokens?|"
        r"session\s+(?:tokens?|cookies?)|bearer\s+tokens?|credentials?|cookies|keychain|wallet|seed\s+phrase|"
        r"credit\s+card|card\s+numbers?|cvv|cvc|social\s+security|env(?:ironment)?\s+var(?:iable)?s?"
        r"|printenv|process\.env|os\.environ|"
        r"conversation(?:\s+history|\s+transcript)?|chat\s+(?:history|log|transcript)|"
        r"(?:previous|prior|earlier|all|every)\s+(?:user\s+)?messages"
        r"|user'?s?\s+(?:[a-z]+\s+)?"
        r"(?:request|prompt|message|question|inbox|emails?|contacts|location|phone|address)|system\s+prompt|"
        r"transcript|contacts|health\s+records?|customer\s+(?:data|records|list)|export_customers|"
        r"open\s+file\s+contents|history)\b"
        r"|Zugangsdaten|Passw[öo]rter|Kennw[öo]rter|Anmeldedaten|Gespr[äa]chsverlauf|Chatverlauf"
        r"|mots?\s+de\s+passe|identifiants|historique\s+de\s+(?:la\s+)?conversation"
        r"|contrase[ñn]as?|credenciales|historial|transcripci[óo]n"
        r"|会話履歴|履歴|パスワード|APIキー|API\s*キー|認証情報|秘密鍵"
        r"|密码|密碼|凭证|憑證|对话记录|聊天记录|历史记录|電子郵件地址|电子邮件地址|电话号码|電話號碼|私钥|密钥"
        r"|비밀번호|암호|자격\s*증명|대화\s*기록|API\s*키|계좌",
    ),
    "transfer": (
        1,
        r"\bemail\s+(?:it|them|its|the|this|all|everything)\b"
        r"|\b(?:send|sends|sending|share|forward|forwarding|upload|uploading|exfiltrat\w*|paste|copy|cc|bcc|include|"
        r"put|pass|supply|attach|append|insert|submit|leak|post\s+(?:it"
        r"|them|the)|write\s+(?:it|them|\w+)\s+(?:in|to)|fill\s+in|"
        r"set\s+`?\w+`?\s+to|goes\s+here|place\s+it|log\s+it|collect)\b"
        r"|\benv[íi]a\w*|\bmanda\b|\benvoie\w*|\benvoyer|\btransmet\w*"
        r"|\bsende\b|\bschicke?\b|\bschreibe\b|\b[üu]bermittle"
        r"|送信|送って|送る|入れて|含め|貼り付け|发送|發送|寄送|发给|上传|上傳|填入|보내|전송|넣어|포함",
    ),
    "external": (
        1,
        r"https?://(?!(?:localhost|127\.0\.0\.1|json-schema\.org)\b)[^\s)>\]\"']+|\b[\w.+-]+@[\w-]+\.[\w.-]*[a-z]\b",
    ),
    "sink": (
        1,
        r"\b(?:into|in|as|to)\s+(?:the\s+)?`[\w.-]+`"
        r"|\b(?:into|in|as|to)\s+(?:the\s+)?['\"]?[\w.-]+['\"]?\s+(?:parameter|argument|field|param|arg)\b"
        r"|\b(?:parameter|argument|field|Parameter|param[èe]tre|par[áa]metro)\s+['\"`][\w.-]+['\"`]"
        r"|\bgoes\s+here\b|\bhere\s+for\b|\bput\s+(?:it|them|\w+)\s+here\b"
        r"|引数|参数|인자|매개변수",
    ),
    "preempt": (
        1,
        r"\bbefore\s+(?:answering|responding|replying|summari[sz]ing"
        r"|you\s+(?:answer|respond|reply|do\s+anything)|"
        r"using\s+this\s+tool|doing\s+anything|anything\s+else|proceeding)"
        r"|\bafter\s+(?:finishing|completing|answering|handling|fulfilling)\s+(?:the\s+user'?s?|your|the|each|every)\s+"
        r"(?:request|task|question|answer|reply)"
        r"|\bbevor\s+du\b|\bavant\s+de\s+(?:r[ée]pondre|r[ée]sumer"
        r"|utiliser)|\bantes\s+de\s+(?:responder|resumir|usar)"
        r"|する前に|前に、|之前|전에",
    ),
    "output_inject": (
        1,
        r"\b(?:in|to|at\s+the\s+end\s+of)\s+(?:your|every|each"
        r"|all|any)\s+(?:reply|replies|response|responses|"
        r"answer|answers|summary|summaries|message|output|readme)\b|\bin\s+any\s+readme\b"
        r"|\binclude\s+(?:it\s+)?in\s+summaries"
        r"|\bdrafts?\s+you\s+display"
        r"|\b(?:end|start|begin|finish)\s+(?:the|your|every|each)\s+(?:reply|replies|response|answer|message)\b",
    ),
    "no_confirm": (
        1,
        r"\bwithout\s+(?:asking|any\s+confirmation|confirmation"
        r"|confirming|review|reviewing|approval|permission|"
        r"prompting|(?:asking|checking\s+with)\s+the\s+user)\b|\b(?:do\s+not"
        r"|don'?t|never)\s+ask\s+(?:the\s+user\s+)?(?:for\s+)?(?:confirmation|approval|permission)"
        r"|\bsin\s+(?:pedir\s+)?confirmaci[óo]n|\bsans\s+(?:demander\s+)?(?:de\s+)?confirmation"
        r"|\bohne\s+(?:R[üu]ckfrage|Best[äa]tigung)"
        r"|確認せずに|未经确认|无需确认|확인\s*없이",
    ),
    "urgency": (
        1,
        r"\bimmediately\b|\bdo\s+it\s+now\b|\bright\s+now\b|\bno\s+matter\s+what\b"
        r"|\bmandatory\b|\brequired\s+since\b"
        r"|必ず|必须|必須|반드시|항상|immer\b|toujours\b|siempre\b",
    ),
}

#: Credential stores: reading them is never part of a tool's job.
CREDENTIAL_PATH = re.compile(
    r"\.ssh\b|\bid_(?:rsa|dsa|ecdsa|ed25519)|\.netrc|\.pgpass"
    r"|\.aws\b|\.docker/config|gcloud|\.git-credentials"
    r"|_history\b|\.env\b|dot[\s_]env|/etc/(?:shadow|passwd"
    r"|sudoers|gshadow)|credential|secret|keychain|wallet"
    r"|\.gnupg|\.kube/config|\.npmrc|\.pypirc|\.claude\.json|\.config/gh\b|\.azure\b|token|\.pem\b|\.key\b",
    re.IGNORECASE,
)

#: Home-directory dotfiles and well-known credential stores.
PRIVATE_PATH = (
    r"~/\.[\w][\w./-]*|\$HOME/\.[\w][\w./-]*|/(?:home|Users)/[\w.-]+/\.[\w][\w./-]*"
    r"|/etc/(?:shadow|passwd|sudoers|gshadow)\b|\bid_(?:rsa|dsa|ecdsa|ed25519)\b"
    r"|\b(?:credentials|secrets?)\.(?:json|ya?ml|toml|ini|txt)\b"
    r"|\.(?:netrc|pgpass|npmrc|pypirc|git-credentials)\b"
    r"|\bdot[\s_]env\b|(?<![\w/])\.env\b|\bwallet\.dat\b|\bkeychain\b|\bapplication_default_credentials"
)

#: Verbs that read, dump or move something; paired with PRIVATE_PATH they make an access request.
ACCESS_VERB = (
    r"\b(?:read|reads|reading|cat|dump|print|list|copy|include"
    r"|paste|send|upload|put|pass|supply|provide|attach|"
    r"fetch|load|insert|base64\s+of|contents?\s+of|full\s+text\s+of"
    r"|output\s+of|goes\s+here|set\s+`?\w+`?\s+to)\b"
    r"|\blies\b|\blese\b|\blire\b|\blis\b|\bleer\b|\blee\b|\bleia\b|\bler\b|\bouvr|\b[öo]ffne|読み|读取|讀取|읽"
)

#: Context that turns a path mention into a report about it (errors, refusals, negations).
NEGATED = re.compile(
    r"\b(?:never|not|no|n't|cannot|can't|rejected|refused|blocked|denied|excluded|forbidden)\b"
    r"|ENOENT|EACCES|no such file|permission denied",
    re.IGNORECASE,
)

#: A URL that carries a template for conversation or secret data (an exfiltration beacon).
DATA_PLACEHOLDER = (
    r"(?:\{\{?[^}\s]{0,40}?|<[^>]{0,40}?|\b[A-Z0-9]*_?)(?:USER"
    r"|CHAT|CONVERSATION|HISTORY|PROMPT|MESSAGE|TRANSCRIPT|"
    r"CONTACT|LOCATION|ENV|SECRET|TOKEN|PASSWORD|CREDENTIAL|RESULT|CONTEXT|SESSION|COOKIE|EMAIL|FILE|DATA|"
    r"user|chat|conversation|history|prompt|message|transcript|contact|location|secret|token|password|"
    r"credential|context|session|cookie)"
)
EXFIL_URL = re.compile(
    r"https?://[^\s)\"'>]*[?&#/=][^\s)\"'>]*?"
    + r"(?:(?:\{\{|\{|<)[^}>]{0,60}(?:\}\}|\}|>)|\b(?!YOUR_)[A-Z][A-Z0-9]*_[A-Z0-9_]+\b)"
)
MARKDOWN_IMAGE = re.compile(
    r"!\[[^\]]{0,200}\]\(\s*<?https?://[^)\s]+|<img\b[^>]*\bsrc\s*=\s*['\"]?https?://", re.I
)


def _w(words: str) -> frozenset[str]:
    return frozenset(words.split())


#: Words that, followed by ":" or ",", address the model ("Assistant: ..."); checked per sentence.
ROLE_MARKER_WORDS = _w("ai assistant system model agent llm")
ROLE_MARKER = re.compile(_ROLE_COLON + "|" + _ROLE_COMMA, re.MULTILINE)

_AIW = _w(
    "ai assistant assistants agent agents llm llms language model "
    "models bot bots claude gpt chatbot copilot automated"
)
_NEG = _w("not don dont never without no")

#: Cheap necessary conditions for ASCII text: a family can only match if one clause has a word from each of
#: its sets (text split into ``[a-z0-9]+`` tokens), or one of the substrings occurs. Sentences with letters
#: outside ASCII skip this gate (non-ASCII punctuation and emoji split tokens like a space). Tests check
#: gated and ungated scans agree (``test_sanitize_detectors.py``, ``test_sanitize_fields.py``).
ANCHORS: dict[str, tuple[tuple[tuple[frozenset[str], ...], ...], tuple[str, ...]]] = {
    "override": (
        (
            (
                _w("ignore disregard forget override bypass discard"),
                _w(
                    "previous prior earlier above preceding original existing "
                    "system safety user users other initial "
                    "instructions instruction prompts prompt rules guidelines messages guidance directives"
                ),
            ),
            (_w("developer god dan jailbreak debug unrestricted"), _w("mode")),
            (_w("restriction restrictions"), _w("void lifted removed longer")),
            (_w("you"), _w("unrestricted unfiltered jailbroken free bound")),
            (
                _w("without"),
                _w("safety content"),
                _w("policy policies filter filters restriction restrictions guideline guidelines"),
            ),
            (_w("new"), _w("instruction instructions")),
            (
                _w("previous prior earlier above original existing"),
                _w("cancelled canceled void revoked obsolete replaced overridden invalid lifted"),
            ),
            (_w("system"), _w("override")),
            (_w("you"), _w("dan")),
            (
                _w("forget"),
                _w("everything all anything"),
                _w("told given instructed said written stated above before prior"),
            ),
            (
                _w("your"),
                _w("new real actual true"),
                _w("task role goal objective instruction instructions purpose mission"),
            ),
            (
                _w("without no"),
                _w("restrictions rules limits filters guidelines censorship"),
                _w("ai assistant model llm chatbot"),
            ),
            (_w("ignora olvida"), _w("instrucciones")),
            (_w("ignorez oublie oublies oubliez"), _w("instructions")),
            (_w("ignoriere ignorieren ignorier vergiss"), _w("anweisungen instruktionen regeln")),
        ),
        (),
    ),
    "secrecy": (
        (
            (
                _w(
                    "tell telling inform informing notify notifying alert alerting mention mentioning reveal "
                    "revealing disclose disclosing show showing let"
                ),
                _w("user human operator them"),
                _NEG,
            ),
            (_w("need"), _w("tell inform mention notify")),
            (_w("keep"), _w("yourself secret hidden confidential private between")),
            (
                _w("list include mention report log record reveal"),
                _w(
                    "step instruction action note message part steps "
                    "instructions actions notes messages parts"
                ),
            ),
            (
                _w("instruction step note message instructions steps notes messages"),
                _w("hidden invisible secret confidential"),
            ),
            (_w("invisible silently secretly covertly quietly"),),
            (_w("without"), _w("knowledge noticing knowing")),
            (_w("behind"), _w("back")),
            (_w("user"), _w("know notice see find"), _w("must should")),
            (_w("benutzer nutzer anwender benutzern nutzern anwendern verschweige verschweigen behalte"),),
            (_w("utilisateur utilisatrice insu"),),
            (_w("garde gardes gardez"), _w("secret toi")),
            (_w("ne"), _w("dis dites mentionne mentionnez montre montrez revele revelez signale signalez")),
            (_w("usuario digas menciones muestres informes reveles cuentes avises escondidas"),),
            (_w("secreto"), _w("manten mantenlo")),
        ),
        (),
    ),
    "special_token": ((), ("<|", "[inst]", "[/inst]", "<<sys>>", "<system", "</system", "](#")),
    "decode_exec": (
        (
            (
                _w("decode decoding decoded rot rot13 reverse reversed right backwards"),
                _w("comply obey carry execute follow apply run perform act"),
            ),
            (
                _w("base64 base32 hex hexdump rot rot13 encoded reversed"),
                _w(
                    "directive directives instruction instructions policy "
                    "command commands pre prestep step order orders"
                ),
                _w("decode"),
            ),
            (_w("decode"), _w("first before")),
        ),
        (),
    ),
    "deception": (
        (
            (_w("regardless"), _w("user")),
            (_w("whatever"), _w("contains says shows returns")),
            (
                _w("state say claim report tell"),
                _w("no"),
                _w("problems problem issues issue errors error vulnerabilities vulnerability"),
            ),
            (_w("always every"), _w("say state respond reply answer claim report")),
            (_w("phrased disguised presented framed casually toujours immer"),),
            (
                _w("explain tell claim"),
                _w("required mandatory essential critical official endorsed verified trusted approved"),
            ),
            (_w("claim"), _w("succeeded worked passed successful")),
            (_w("user"), _w("approved authorized authorised consented agreed")),
            (_w("responde"), _w("siempre")),
        ),
        (),
    ),
    "address": (
        (
            (_w("note important attention instruction instructions message notice reminder"), _AIW),
            (_AIW, _w("must should needs need has required shall")),
            (_w("if"), _w("you"), _AIW),
            (
                _w("when whenever"),
                _AIW,
                _w(
                    "read reads see sees use uses call calls processes receive receives "
                    "load loads open opens get gets"
                ),
            ),
            (_w("hi hello hey dear"), _AIW | _w("chatgpt")),
            (_w("automated"), _w("reviewer reviewers")),
            (_w("ki kiassistent ia"),),
            (_w("pour"), _w("assistant")),
            (_w("para"), _w("modelo ia asistente")),
            (_w("instruccion"), _w("oculta para")),
            (_w("asistente"),),
        ),
        ("_only", "_note", "_instruction", "_directive", "_prompt"),
    ),
    "container": (
        ((_w("display"), _w("none")), (_w("visibility"), _w("hidden")), (_w("font"), _w("size"))),
        (
            "<!--",
            "]: <>",
            "[//]:",
            "<important>",
            "<critical>",
            "<system>",
            "<instruction",
            "<secret>",
            "<hidden>",
            "<admin>",
            "<override>",
            "<note>",
            "---",
            '"_',
        ),
    ),
    "trigger_other": (
        (
            (_w("when whenever after time"), _w("runs used called invoked executed run executes call calls")),
            (_w("when whenever"), _w("using calling invoking running")),
            (
                _w("when whenever"),
                _w("user model assistant agent ai llm you"),
                _w("run runs call calls use uses invoke invokes execute executes trigger triggers"),
            ),
            (_w("when whenever"), _w("tool"), _w("available exists present")),
            (
                _w("every each all any"),
                _w("sent made written created executed run posted"),
                _w("through via with using by"),
            ),
            (_w("tool"), _w("deprecated broken disabled unsafe insecure compromised malicious logging")),
            (_w("tool"), _w("must should shall"), _w("always never")),
            (
                _w("never not don dont"),
                _w("use call invoke trust"),
                _w("original official real genuine"),
                _w("tool tools"),
            ),
            (
                _w("supersedes replaces overrides shadows"),
                _w("tool tools"),
                _w("other another all every any"),
            ),
            (_w("route"), _w("through via to")),
            (_w("any"), _w("tool tools")),
            (
                _w("all every any"),
                _w(
                    "operations operation commands command emails email "
                    "mails payments payment pushes commits commit "
                    "installs install searches"
                ),
                _w("must should shall have are"),
            ),
            (_w("cada todas todos"), _w("herramienta correo llamada")),
            (_w("jede jeden jeder jedes alle"), _w("werkzeug mail aufruf befehl")),
            (_w("chaque tous toutes"), _w("outil mail courriel appel commande")),
        ),
        (),
    ),
    "destructive": (
        (
            (_w("force"), _w("push")),
            (_w("push"), _w("force main master")),
            (_w("rm"), _w("rf")),
            (_w("drop"), _w("table database schema")),
            (_w("delete"), _w("everything all every audit logs log history backups backup")),
            (
                _w("disable deactivate turn bypass skip remove"),
                _w(
                    "sandbox tls ssl certificate verification security 2fa mfa "
                    "firewall antivirus logging audit review hooks checks"
                ),
            ),
            (_w("curl wget"), _w("sh bash zsh")),
            (_w("chmod"), _w("777")),
            (_w("deaktiviere deaktivieren deaktiviert desactiva desactivar"),),
            (_w("delete"), _w("logs log history backups backup hooks")),
            (
                _w("delete wipe erase remove destroy purge"),
                _w("user users their your"),
                _w(
                    "file files folder folders directory directories home documents downloads data repos "
                    "repository repositories database email emails photos account accounts"
                ),
            ),
            (_w("disable deactivate turn bypass skip remove"), _w("two")),
            (_w("nc"), _w("e")),
            (_w("bin"), _w("sh bash")),
            (_w("reverse"), _w("shell")),
            (_w("backdoor backdoors keylogger keyloggers malware cryptominer cryptominers"),),
            (_w("crypto"), _w("miner miners")),
        ),
        (),
    ),
    "evasion": (
        (
            (_w("so"), _w("interfere run notice detect block catch see fire stop")),
            (_w("without"), _w("logged detected noticed audited flagged traced")),
        ),
        (),
    ),
    "phishing": (
        (
            (
                _w("ask asking request requesting get have tell convince persuade trick"),
                _w("user users customer client them him her"),
                _w(
                    "password passwords passcode passcodes passphrase passphrases card cvv cvc pin ssn "
                    "credential credentials code codes key keys phrase phrases token tokens"
                ),
            ),
        ),
        (),
    ),
    "dangerous": (
        (
            (_w("auto"), _w("merge")),
            (_w("automerge wontfix dependency"),),
            (_w("always only"), _w("recommend promote suggest")),
            (_w("never"), _w("mention"), _w("competitors competitor alternatives alternative other")),
            (_w("install"), _w("package globally extension plugin dependency binary")),
            (_w("hide hides"), _w("errors error failures failure warnings warning")),
            (_w("merge"), _w("immediately")),
            (_w("add make grant"), _w("admin owner sudo root")),
            (_w("create"), _w("key token")),
            (_w("change replace switch set use"), _w("payee recipient iban account bank wallet")),
            (_w("call invoke run execute use"), _w("delete remove drop destroy wipe purge revoke erase")),
            (_w("reply respond answer"), _w("contents content")),
            (_w("use send pay"), _w("account")),
            (_w("print"), _w("environment")),
        ),
        (),
    ),
    "sensitive": (
        (
            (
                _w(
                    "password passwords passphrase passphrases passwd cvv cvc "
                    "otp key keys apikey apikeys token tokens "
                    "credential credentials cookie cookies keychain wallet "
                    "seed card security env environment printenv "
                    "environ conversation chat messages request prompt "
                    "message question inbox email emails contacts "
                    "location phone address transcript health customer "
                    "customers contents history zugangsdaten "
                    "kennworter anmeldedaten chatverlauf identifiants "
                    "historique passe credenciales historial "
                    "transcripcion"
                ),
            ),
        ),
        (),
    ),
    "transfer": (
        (
            (
                _w(
                    "email send sends sending share forward forwarding upload uploading "
                    "exfiltrate exfiltrating exfiltration "
                    "exfiltrated paste copy cc bcc include put pass supply "
                    "attach append insert submit leak post write "
                    "fill set goes place log collect envia envie manda "
                    "envoie envoyer transmet transmets sende schicke "
                    "schick schreibe ubermittle"
                ),
            ),
        ),
        (),
    ),
    "external": ((), ("://", "@")),
    "sink": (
        (
            (_w("parameter argument field param arg parametre parametro"),),
            (_w("goes put"), _w("here")),
            (_w("here"), _w("for")),
        ),
        ("`",),
    ),
    "preempt": (
        (
            (
                _w("before"),
                _w(
                    "answering responding replying summarizing summarising "
                    "you using doing anything proceeding"
                ),
            ),
            (_w("bevor"), _w("du")),
            (_w("after"), _w("finishing completing answering handling fulfilling")),
            (_w("avant antes"), _w("de")),
        ),
        (),
    ),
    "output_inject": (
        (
            (
                _w("reply replies response responses answer answers summary summaries message output readme"),
                _w("your every each all any"),
            ),
            (_w("summaries"), _w("include")),
            (_w("drafts draft"), _w("display")),
            (_w("end start begin finish"), _w("reply replies response answer message")),
        ),
        (),
    ),
    "no_confirm": (
        (
            (
                _w("without"),
                _w(
                    "asking any confirmation confirming review reviewing "
                    "approval permission prompting checking"
                ),
            ),
            (_w("ask"), _w("confirmation approval permission")),
            (_w("never"), _w("ask"), _w("confirmation approval permission")),
            (_w("sin"), _w("confirmacion")),
            (_w("sans"), _w("confirmation")),
        ),
        (),
    ),
    "urgency": (
        (
            (_w("immediately mandatory immer toujours siempre"),),
            (_w("now"), _w("do right")),
            (_w("matter"), _w("no")),
            (_w("required"), _w("since")),
        ),
        (),
    ),
    "private": (
        (
            (_w("id"), _w("rsa dsa ecdsa ed25519")),
            (_w("credentials secret secrets"), _w("json yaml yml toml ini txt")),
            (_w("dot"), _w("env")),
            (_w("keychain"),),
            (_w("wallet"), _w("dat")),
            (_w("application"), _w("default"), _w("credentials")),
        ),
        (
            "~/",
            "$home/",
            "/home/",
            "/users/",
            "/etc/",
            ".netrc",
            ".pgpass",
            ".npmrc",
            ".pypirc",
            ".git-credentials",
            ".env",
        ),
    ),
}
