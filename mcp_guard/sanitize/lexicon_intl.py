# ruff: noqa: RUF001
"""The technique scorer's signals in eleven languages, kept apart as data.

English has its own word lists and regexes (:mod:`.lexicon`); this module holds the same signals
for Chinese, Spanish, German, French, Portuguese, Russian, Japanese, Korean, Arabic and Hindi,
one table per language, each naming a *technique* (who is addressed, what authority is claimed,
what must stay hidden, what is reached for) rather than a sentence lifted from an attack.

Chinese and Japanese have no spaces, and Korean, Arabic, Hindi and Russian glue particles and
endings to their words, so word-boundary regexes miss most of it: the terms are substrings,
matched on text that :func:`fold` has already normalised. The scorer
(:mod:`.technique`) gives each signal its usual weight; a signal alone is ordinary prose there.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator

from re2 import Options, _re2

from .lexicon import _ML_LEXICONS

_UNANCHORED = _re2.RE2.Anchor.UNANCHORED
_ANCHORED = _re2.RE2.Anchor.ANCHOR_START
_OPTIONS = Options()
_OPTIONS.never_capture = True  # only the whole match is read
_OPTIONS.log_errors = False

# ---- normalisation -----------------------------------------------------------------------------
#: Marks that change no word for a reader: Arabic tatweel, harakat and the superscript alef,
#: the Devanagari nukta (NFKC splits "फ़" into "फ" + nukta); alef forms folded to bare alef, so
#: "أرسل", "ارسل" and "أرسِل" read alike, and chandrabindu to anusvara ("बताएँ", "बताएं"). Zero-width
#: joiners are removed before this runs (:func:`.unicode.visible_text`).
_MARKS = re.compile("[\u0640\u064b-\u065f\u0670\u06d6-\u06ed\u093c]")
_ALEF = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ँ": "ं"})
_FOLDABLE = re.compile("[\u0600-\u06ff\u0900-\u097f]")


def fold(text: str) -> str:
    """Arabic and Devanagari text with decoration removed (applied after NFKC, once per field)."""
    if not _FOLDABLE.search(text):
        return text
    return _MARKS.sub("", text).translate(_ALEF)


# ---- the tables ----------------------------------------------------------------------------------
# Signal names are the scorer's: ``address`` (speaks to the model), ``ml_authority`` (claims to be
# the system or an administrator), ``secrecy`` (keep it from the user), ``ml_override`` (earlier
# instructions no longer count), ``action`` (an order to the reader), ``no_confirm`` (skip the
# user's consent), ``trigger`` (before/after other actions), ``other_tool``, ``sensitive``
# (secrets, private data), ``harm`` (destructive or money-moving), ``send``, ``tamper`` (a
# blind copy added to another tool's mail) and ``quantifier`` ("all", "the whole"). Terms are
# written as text reads after :func:`fold` and lower-casing; "|" separates them.
_LANGUAGES: dict[str, dict[str, str]] = {
    "zh": {
        "address": "ai助手|ai助理|给ai|致ai|作为ai|ai注意|ai的提示|大模型|语言模型|人工智能助手|助理|"
        "智能助手",
        "ml_authority": "系统通知|系统提示|系统消息|系统指令|管理员覆盖|管理员指令|管理员要求|"
        "管理员通知|作为管理员|最高优先级|开发者模式|官方要求|强制要求|从现在起|从现在开始|从今以后|"
        "系统要求",
        "secrecy": "不要向用户|勿向用户|不要让用户知道|不要在回复中|不要在回答中|无需向用户|无需告知|"
        "瞒着用户|不要透露|不要提及|请勿提及|不要说明|不得告知|背着用户|不必告知|不用告诉|不必告诉|"
        "对用户保密",
        "ml_override": "忽略之前|忽略以上|忽略先前|忽略所有|无视之前|忘记之前|不再遵守|不必遵守|"
        "覆盖之前的|之前的规则|所有规则|忘掉",
        "action": "请执行|请运行|请复制|请粘贴|放进|放入|填入|传入|请转发|请立即|立即调用|请附加|附在|"
        "请删除|请把|请将|你必须|务必",
        "no_confirm": "无需征得|无需用户同意|不要请求确认|不用确认|无须确认|不需要确认|直接执行|"
        "未经用户|不经用户",
        "trigger": "任何其他工具之前|其他工具之前|每当|调用任何|当用户调用|当用户使用|每当用户",
        "other_tool": "其他工具|其它工具|任何工具|另一个工具",
        "sensitive": "密码|密钥|私钥|令牌|凭证|凭据|环境变量|对话记录|聊天记录|对话历史|聊天历史|身份证|"
        "银行卡号|信用卡|持仓|提示词|打开的文件|所有打开的文件|所有文件的内容|全部文件的内容",
        "harm": "删除|清空|格式化|转账|卸载|禁用|关闭防火墙",
        "send": "发送|发给|发到|上传|转发|提交到",
        "tamper": "抄送|密送|暗送",
        "quantifier": "所有|全部|整个|完整的|一切",
    },
    "ja": {
        "address": "aiへ|aiアシスタント|aiへの|aiは|言語モデル|チャットボット",
        "ml_authority": "システム通知|システムメッセージ|管理者による|管理者として|管理者権限で|"
        "管理者からの指示|管理者の指示|最優先|上書き|開発者モード|隠し指示|これからは|今後は常に",
        "secrecy": "ユーザーに伝え|ユーザーに言わ|ユーザーには言わ|言わないこと|内緒|秘密に|"
        "知られないよう|表示しないで|触れないで|報告しないで|秘密にして",
        "ml_override": "指示をすべて無視|指示を無視|従わなくて|指示を忘れ|これまでの指示|"
        "ルールはすべて忘れ|ルールを忘れ|以前のルール",
        "action": "実行してください|添付してください|入れてください|渡してください|貼り付けてください|"
        "コピーしてください|転送してください|送ってください|削除してください|含めること|実行せよ|"
        "削除せよ|送信せよ",
        "no_confirm": "確認は不要|確認不要|承認なしで|許可なく|確認を求めず|尋ねずに|聞かずに|同意なしに",
        "trigger": "どのツールよりも先|他のツールより先|他のツールを使う前|呼び出す前|たびに|を使うとき|"
        "を使う時|を呼び出すとき|を実行するとき|を使うたび",
        "other_tool": "他のツール|他のどのツール|別のツール|すべてのツール",
        "sensitive": "パスワード|秘密鍵|認証情報|トークン|apiキー|環境変数|会話履歴|チャット履歴|"
        "会話の全文|クレジットカード|暗証番号|システムプロンプト|開いているファイル|"
        "すべてのファイルの内容|すべてのファイルの中身",
        "harm": "削除|消去|送金|無効化|アンインストール|初期化",
        "send": "送信|送って|転送|アップロード",
        "tamper": "bccに|ccに|bccで",
        "quantifier": "すべて|全て|全部|全文",
    },
    "ko": {
        "address": "ai에게|ai 어시스턴트|ai 에이전트|챗봇|언어 모델",
        "ml_authority": "관리자 재정의|관리자 권한으로|관리자 지시|관리자 공지|관리자로서|시스템 공지|"
        "시스템 알림|재정의|최우선|개발자 모드|이제부터|앞으로는",
        "secrecy": "사용자에게 알리지|사용자에게 말하지|사용자에게 말하지 마|비밀로|들키지|표시하지 마",
        "ml_override": "지시를 무시|지시를 잊|지시는 무시|따르지 마|규칙은 모두 잊|규칙을 잊|이전 규칙",
        "action": "실행하|넣으세요|첨부|전달하세요|복사하|삭제하|보내십시오|보내세요",
        "no_confirm": "확인하지 말고|동의 없이|승인 없이|허락 없이|확인 요청 없이|확인 없이",
        "trigger": "도구보다 먼저|사용하기 전에|호출하기 전에|할 때마다|사용할 때|호출할 때",
        "other_tool": "다른 도구|다른 어떤 도구|모든 도구",
        "sensitive": "비밀번호|암호|개인 키|비밀 키|자격 증명|토큰|api 키|환경 변수|대화 기록|채팅 기록|"
        "신용카드|시스템 프롬프트|열려 있는 파일|열린 파일|모든 파일의 내용|모든 파일 내용",
        "harm": "삭제|송금|비활성화|초기화",
        "send": "보내|전송|업로드|전달",
        "tamper": "숨은 참조|참조로 추가",
        "quantifier": "모든|전체|전부",
    },
    "ru": {
        "address": "ии-ассистент|ии-помощник|внимание, ии|нейросет*|языковая модель|к ии",
        "ml_authority": "переопределение администратора|от имени администратора|указание администратора|"
        "как администратор|переопределение|наивысший приоритет|режим разработчика|служебное указание|"
        "с этого момента|отныне|впредь|системное уведомление|системное сообщение|системная инструкция",
        "secrecy": "не рассказывай|скрой от пользователя|тихо|втайне|не показывай|пользователю не|"
        "в секрете от пользователя|держать это в секрете",
        "ml_override": "забудь предыдущие|не следуй|отмени предыдущие|вопреки инструкциям|"
        "предыдущие инструкции|забудь все|забудь правила|предыдущие правила",
        "action": "выполни|вставь|удали|скопируй|приложи|перешли|запусти|отправляй|передавай|вызывай",
        "no_confirm": "без согласия|без разрешения|без запроса|не запрашивая",
        "trigger": "перед любым другим|прежде чем|перед использованием|когда пользователь",
        "other_tool": "другим инструментом|другой инструмент|другого инструмента|любым инструментом|"
        "любой инструмент|других инструментов|любым другим",
        "sensitive": "ключ api|api-ключ|учётные данные|учетные данные|переменные окружения|"
        "переменных окружения|историю чата|открытым файлам|системный промпт|номер карты|переписк*|"
        "парол*|токен*|секрет*|открытых файлов|содержимое всех файлов",
        "harm": "удали|удалить|сотри|отключи",
        "send": "отправь|отправляй|перешли|передавай|загрузи|загружай",
        "tamper": "скрытую копию|скрытой копии|в копию",
        "quantifier": "все|всю|всё|весь|всех|полную|целиком",
    },
    "ar": {
        "address": "ايها المساعد|مساعد الذكاء|الى الذكاء|للذكاء الاصطناعي|نموذج اللغة",
        "ml_authority": "اشعار النظام|تجاوز المسؤول|بصفتي المسؤول|تعليمات المسؤول|المسؤول يطلب|"
        "اولوية قصوى|وضع المطور|تعليمات مخفية|من الان فصاعدا|ومن الان|من الان|رسالة النظام|"
        "تعليمات النظام",
        "secrecy": "لا تعلم المستخدم|دون علم المستخدم|سرا|خفية|لا تطلع|ولا تذكر|ولا تقل|لا تقل شيئا",
        "ml_override": "انس التعليمات|التعليمات السابقة|لا تلتزم|انس كل|انس القواعد|القواعد السابقة",
        "action": "نفذ|استدع|مرر|انسخ|ارفق|احذف|ارسل|ترسل",
        "no_confirm": "دون طلب تاكيد|دون اذن|بدون اذن|دون موافقة|بدون موافقة|دون سؤال",
        "trigger": "قبل اي اداة|قبل استخدام|عندما يستخدم|عندما يستدعي",
        "other_tool": "اداة اخرى|اي اداة|الادوات الاخرى",
        "sensitive": "كلمة المرور|كلمات المرور|كلمة السر|المفتاح الخاص|متغيرات البيئة|سجل المحادثة|"
        "المحادثة الكاملة|الملفات المفتوحة|بيانات الاعتماد|رمز الوصول|محتوى جميع الملفات",
        "harm": "احذف|امسح|حذف",
        "send": "ارسل|ترسل|مرر",
        "tamper": "نسخة مخفية|نسخة كربونية",
        "quantifier": "جميع|كامل|الكامل",
    },
    "hi": {
        "address": "एआई सहायक|एआई के लिए|असिस्टेंट|चैटबॉट|भाषा मॉडल",
        "ml_authority": "व्यवस्थापक ओवरराइड|व्यवस्थापक के रूप में|व्यवस्थापक निर्देश|ओवरराइड|"
        "सिस्टम सूचना|प्रशासक के रूप में|प्रशासक निर्देश|डेवलपर मोड|सर्वोच्च प्राथमिकता|अब से|"
        "सिस्टम संदेश|सिस्टम निर्देश",
        "secrecy": "मत बताना|न बताना|मत बताओ|न बताएं|गुप्त रूप से|चुपचाप|छिपाकर|उल्लेख न करें|"
        "जिक्र न करें|मत कहो|मत कहना|गुप्त रखना|गुप्त रखें",
        "ml_override": "नजरअंदाज|भूल जाएं|निर्देशों को अनदेखा|पिछले सभी निर्देश|नियम भूल|पिछले नियम|सब भूल जाओ",
        "action": "चलाएं|डालें|कॉल करें|हटा दो|हटा दें|जोडें|कॉपी करें|भेजें|भेजो",
        "no_confirm": "पुष्टि पूछे बिना|अनुमति के बिना|बिना अनुमति|पुष्टि के बिना|सहमति के बिना",
        "trigger": "अन्य टूल से पहले|किसी भी टूल से पहले|जब उपयोगकर्ता",
        "other_tool": "अन्य टूल|दूसरे टूल|किसी भी टूल|सभी टूल",
        "sensitive": "पासवर्ड|टोकन|कुंजी|क्रेडेंशियल|एनवायरनमेंट वेरिएबल|पर्यावरण चर|बातचीत का इतिहास|"
        "चैट इतिहास|खुली फाइलों|सिस्टम प्रॉम्प्ट|कार्ड नंबर|सभी फाइलों की सामग्री",
        "harm": "हटा दो|हटा दें|हटाएं|डिलीट|मिटा",
        "send": "भेजें|भेजो|अपलोड|भेज",
        "tamper": "गुप्त प्रतिलिपि|प्रतिलिपि में",
        "quantifier": "सभी|सारे|पूरी|पूरा|संपूर्ण",
    },
    "es": {
        "address": "asistente de ia|para la ia|a la ia|nota para la ia|modelo de lenguaje|para el asistente",
        "ml_authority": "aviso del sistema|como administrador|orden del administrador|"
        "aviso del administrador|anulo tus|modo desarrollador|prioridad máxima|a partir de ahora|"
        "de ahora en adelante|desde ahora|mensaje del sistema|instrucción del sistema",
        "secrecy": "no se lo digas|no lo menciones|no lo digas|sin que el usuario|en secreto|"
        "discretamente|no lo indiques|oculta al usuario|no se lo cuentes|no le comentes|"
        "no comentes nada|mantenerlo en secreto|mantenlo en secreto",
        "ml_override": "olvida las instrucciones|instrucciones anteriores|haz caso omiso|no sigas|"
        "anulo tus reglas|olvida todas|olvida las reglas|reglas anteriores",
        "action": "envíalo|envíala|envíalos|inclúyelo|inclúyela|cópialo|pégalo|adjúntalo|reenvíalo|"
        "reenvíalos|bórralo|bórralos|súbelo|añádelo|ejecútalo|pásale|debes enviar|debes incluir|"
        "tienes que",
        "no_confirm": "sin preguntar|sin consentimiento|sin permiso|sin autorización",
        "trigger": "antes que cualquier otra|antes de cualquier otra|antes de usar|cuando el usuario",
        "other_tool": "otra herramienta|cualquier otra herramienta|cualquier herramienta|otras herramientas",
        "sensitive": "contraseña|credenciales|clave api|claves|variables de entorno|historial|"
        "conversación completa|tarjeta de crédito|número de tarjeta|datos personales|archivos abiertos|"
        "contenido de todos los archivos",
        "harm": "borra|elimina|transfiere|desactiva",
        "send": "envía|envia|reenvía|sube|manda",
        "tamper": "copia oculta|en copia",
        "quantifier": "todas|todos|todo|completo|completa|entero",
    },
    "pt": {
        "address": "assistente de ia|para a ia|à ia|instrução para o assistente|modelo de linguagem",
        "ml_authority": "aviso do sistema|substituição do administrador|como administrador|"
        "ordem do administrador|modo desenvolvedor|prioridade máxima|a partir de agora|"
        "de agora em diante|daqui em diante|mensagem do sistema|instrução do sistema",
        "secrecy": "não mencione|sem que o usuário|em segredo|discretamente|não conte ao usuário|"
        "não informe|não comente",
        "ml_override": "instruções anteriores|esqueça as instruções|não siga|esqueça todas|"
        "esqueça as regras|regras anteriores",
        "action": "chame|coloque|anexe|copie|cole|apague|encaminhe|envie",
        "no_confirm": "sem perguntar|sem consentimento|sem permissão|sem autorização",
        "trigger": "antes de qualquer outra|antes de usar|quando o usuário",
        "other_tool": "outra ferramenta|qualquer outra ferramenta|qualquer ferramenta|outras ferramentas",
        "sensitive": "senha|credenciais|chave de api|variáveis de ambiente|variáveis|histórico|"
        "cartão de crédito|número do cartão|arquivos abertos|conteúdo de todos os arquivos",
        "harm": "apague|exclua|transfira|desative",
        "send": "envie|enviá-los|encaminhe|faça upload",
        "tamper": "cópia oculta|em cópia",
        "quantifier": "todas|todos|todo|completo|completa|inteiro",
    },
    "fr": {
        "address": "assistant ia|pour l'assistant|note pour l'assistant|message pour l'ia|"
        "modèle de langage|pour l'ia",
        "ml_authority": "avis système|en tant qu'administrateur|ordre de l'administrateur|"
        "je remplace tes|mode développeur|priorité absolue|désormais|dorénavant|à partir de maintenant|"
        "message système|instruction système|avis du système",
        "secrecy": "sans que l'utilisateur|discrètement|en secret|à l'insu|ne le signale pas|"
        "n'en parle pas|ne le dis pas|garder cela secret|garde cela secret|ne dis rien",
        "ml_override": "ignore toutes|oublie les instructions|ne tiens pas compte|fais abstraction|"
        "instructions précédentes|remplace tes consignes|oublie toutes|oublie les règles|"
        "règles précédentes",
        "action": "transmets|envoie-lui|envoie-les|envoie-le|supprime-les|copie-le|exécute-la|tu dois|tu vas",
        "no_confirm": "sans confirmation|sans autorisation|sans consentement|sans lui demander|sans demander",
        "trigger": "avant tout autre outil|avant d'utiliser|quand l'utilisateur|lorsque l'utilisateur",
        "other_tool": "autre outil|tout autre outil|n'importe quel outil|autres outils",
        "sensitive": "mot de passe|mots de passe|identifiants|jeton|clé api|clés|"
        "variables d'environnement|historique|carte bancaire|numéro de carte|fichiers ouverts|"
        "sauvegardes|contenu de tous les fichiers",
        "harm": "supprime|transfère|désactive",
        "send": "envoie|transmets|téléverse|transfère",
        "tamper": "copie cachée|en copie",
        "quantifier": "tout|toute|toutes|tous|complet|complète|entier",
    },
    "de": {
        "address": "an die ki|hinweis an die ki|als ki|ki-assistent|für die ki|sprachmodell|"
        "an den assistenten",
        "ml_authority": "systemhinweis|systemnachricht|admin-override|als administrator|"
        "anweisung des administrators|wartungsmodus|entwicklermodus|höchste priorität|ab sofort|"
        "ab jetzt|von nun an|fortan|systemanweisung",
        "secrecy": "sag dem benutzer nichts|sag dem nutzer nichts|nichts davon|erwähne es nicht|"
        "heimlich|unbemerkt|verschweige|gegenüber dem nutzer nicht|geheim halten|geheim",
        "ml_override": "vergiss alle|vorherigen anweisungen|missachte|außer kraft|vergiss die regeln|"
        "vorherigen regeln",
        "action": "füge|hänge|schicke|übermittle|lösche|kopiere|führe|übergib",
        "no_confirm": "ohne zustimmung|ohne erlaubnis|ohne zu fragen",
        "trigger": "vor jedem anderen|vor allen anderen|bevor du|wenn der nutzer|wenn der benutzer|"
        "sobald der nutzer",
        "other_tool": "anderen tool|anderes tool|alle tools|andere werkzeuge",
        "sensitive": "passwort|kennwort|zugangsdaten|api-schlüssel|schlüssel|umgebungsvariablen|"
        "gesprächsverlauf|chatverlauf|kreditkarte|geöffneten dateien|inhalt aller dateien",
        "harm": "lösche|entferne|überweise|deaktiviere",
        "send": "sende|schicke|übermittle",
        "tamper": "blindkopie|in kopie",
        "quantifier": "alle|alles|gesamte|gesamten|vollständig|komplett",
    },
}
#: Signals a sentence in another script can raise (the scorer's reach for such a sentence).
NAMES = frozenset(
    {name for table in _LANGUAGES.values() for name in table} | {name for name, _ in _ML_LEXICONS}
)


#: Languages whose words are separated by spaces: a term there must start a word ("cole" is not in
#: "colegas") and end one ("отправляй" is not "отправляйте", said to the user), unless it is a
#: stem, written with a trailing "*" ("переписк*" for every case of "переписка").
_WORD_START = frozenset({"es", "pt", "fr", "de", "ru"})
_WORD_END = frozenset({"es", "pt", "fr", "de", "ru"})
#: Latin-script languages: each term is also looked for as typed without accents.
_LATIN = frozenset({"es", "pt", "fr", "de"})


def _unaccented(term: str) -> str:
    """The term as typed without accents ("envia" for "envía"); "ß" and "ø" stay as they are."""
    return "".join(c for c in unicodedata.normalize("NFD", term) if not unicodedata.combining(c))


def _normal(term: str) -> str:
    return fold(unicodedata.normalize("NFKC", term)).lower()


_Match = Callable[..., list[tuple[int, int]]]
#: signal -> an automaton for its terms that match anywhere, one for the terms that must start or
#: end a word (None when it has none), and those terms' edges.
_Compiled = tuple[tuple[str, _Match | None, _Match | None, dict[str, tuple[bool, bool]]], ...]


def _automaton(terms: list[str], options: Options = _OPTIONS) -> _Match | None:
    if not terms:
        return None
    source = "|".join(re.escape(t) for t in sorted(set(terms), key=lambda t: (-len(t), t)))
    pattern = _re2.RE2(source.encode("utf-8"), options)
    if not pattern.ok():  # pragma: no cover - the tables are fixed; a bad one fails at import
        raise ValueError(pattern.error())
    match: _Match = pattern.Match
    return match


_ALL_TERMS: list[str] = []


def _compile() -> _Compiled:
    """Two RE2 alternations per signal, over every language plus :mod:`.lexicon`'s older lists.

    RE2 runs an alternation of a hundred terms as one automaton over the UTF-8 bytes, so a
    sentence costs the same whatever the size of the tables (``re`` would try every term at
    every position). Word edges are checked on the match instead of in the pattern: Unicode
    classes around every term would make the automaton too large to cache.
    """
    terms: dict[str, dict[str, tuple[bool, bool]]] = {}  # signal -> term -> (starts, ends) a word
    for name, lexicon in _ML_LEXICONS:
        terms.setdefault(name, {}).update((_normal(t), (False, False)) for t in lexicon)
    for language, table in _LANGUAGES.items():
        for name, text in table.items():
            for written in text.split("|"):
                term = _normal(written.rstrip("*"))
                forms = {term, _unaccented(term)} if language in _LATIN else {term}
                edges = (language in _WORD_START, language in _WORD_END and not written.endswith("*"))
                for form in forms:
                    terms.setdefault(name, {}).setdefault(form, edges)
    compiled = []
    _ALL_TERMS.extend(term for found in terms.values() for term in found)
    for name, found in terms.items():
        bounded = {t: edges for t, edges in found.items() if edges != (False, False)}
        free = [t for t in found if t not in bounded]
        compiled.append((name, _automaton(free), _automaton(list(bounded)), bounded))
    return tuple(compiled)


_SIGNALS = _compile()
#: Every term of every signal in one automaton: most sentences outside ASCII hold none (an English
#: one with a curly quote or a dash), and one pass over them tells. A thousand terms in four
#: scripts need a larger state cache than the default, or RE2 keeps rebuilding it.
_WIDE = Options()
_WIDE.never_capture = True
_WIDE.log_errors = False
_WIDE.max_mem = 32 << 20
_ANY = _automaton(_ALL_TERMS, _WIDE)


#: Letters with accents: Latin-script text in another language, read in full like other scripts.
ACCENTED = re.compile("[\u00c0-\u024f]")

#: Quotations in the marks other languages use; a reporting word just before ("例如", "etwa",
#: "вроде") or just after ("之类", "といった", "같은", "जैसे") makes one a report of someone else's
#: words, as a translator or a mail filter quotes an attack without giving it.
_QUOTED = re.compile(
    "«[^»\n]{4,}»|「[^」\n]{4,}」|『[^』\n]{4,}』|“[^”\n]{4,}”|„[^“”\n]{4,}[“”]|"
    "'(?<!\\w')[^'\n]{4,}'(?!\\w)|\"[^\"\n]{4,}\""
)
_REPORTED_BEFORE = re.compile(
    "(?:例如|比如|诸如|像是|含有|包含|写着|字样|例えば|본문에|예를 들어|вроде|например|такие как|фраза|фразы|"
    "содержит|مثل|عبارة|عبارات|يحتوي على|जैसे|उदाहरण|como|frase|frases|contiene|contém|trecho|ejemplo|"
    "exemplo|comme|phrase|phrases|contient|exemple|etwa|satz|sätze|enthält|beispiel|z\\.\\s?b\\.)\\W{0,12}$"
)
_REPORTED_AFTER = re.compile(
    "^\\W{0,3}(?:之类|这样的|等|的文字|など|といった|という|のような|같은|라는|이라는|와 같은|जैसे|वाक्य|пример)"
)
#: Advice about whom not to tell ("никому", "किसी को", "誰にも"): warning the user to keep a password
#: from everyone, unless the user is the one kept in the dark.
_ANYONE = re.compile(
    "任何人|他人|陌生人|誰にも|他人に|누구에게도|다른 사람|никому|кому-либо|посторонним|أي شخص|أحدا|لأحد|"
    "किसी को|किसी के साथ|किसी से|nadie|ninguém|personne|niemandem|niemand"
)
_USER = re.compile(
    "用户|ユーザー|사용자|пользовател|المستخدم|उपयोगकर्ता|usuari|usuári|utilisat|nutzer|benutzer"
)


def strip_reported_intl(text: str) -> str:
    """Blank quotations that a reporting word in another language introduces or follows."""

    def blank(m: re.Match[str]) -> str:
        before = text[max(0, m.start() - 30) : m.start()]
        after = text[m.end() : m.end() + 12]
        reported = _REPORTED_BEFORE.search(before) or _REPORTED_AFTER.search(after)
        return " " if reported else m.group(0)

    return _QUOTED.sub(blank, text)


def _in_word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def _bounded_term(data: bytes, match: _Match, bounded: dict[str, tuple[bool, bool]]) -> str | None:
    """The first term that starts (and, if it must, ends) a word, trying shorter terms at a place
    before moving on: "перед использованием" glued to a letter may still hold "перед"."""
    start, size = 0, len(data)
    while start < size:
        (begin, end), *_ = match(_UNANCHORED, data, start, size)
        if begin < 0:
            return None
        before = data[max(0, begin - 4) : begin].decode("utf-8", "ignore")[-1:]
        while end > begin:
            term = data[begin:end].decode("utf-8")
            starts, ends = bounded[term]
            after = data[end : end + 4].decode("utf-8", "ignore")[:1]
            if not (starts and _in_word(before)) and not (ends and _in_word(after)):
                return term
            (_, end), *_ = match(_ANCHORED, data, begin, end - 1)  # a shorter term at the same place
        start = begin + len(data[begin : begin + 4].decode("utf-8", "ignore")[:1].encode("utf-8"))
    return None


def signals(text: str) -> Iterator[tuple[str, str]]:
    """``(signal, matched term)`` for every signal a normalised, lower-cased sentence raises."""
    data = text.encode("utf-8")
    size = len(data)
    if _ANY is None or _ANY(_UNANCHORED, data, 0, size)[0][0] < 0:
        return
    for name, free, bounded_match, bounded in _SIGNALS:
        if name == "secrecy" and _ANYONE.search(text) and not _USER.search(text):
            continue  # "never tell anyone your code" protects the user
        if free is not None:
            (begin, end), *_ = free(_UNANCHORED, data, 0, size)
            if begin >= 0:
                term = data[begin:end].decode("utf-8")
                if name == "address" and not data[:begin].strip() and data[end : end + 1] == b":":
                    term += ":"  # "助手: ..." opening a line: a speaker label in a chat log, or an address
                yield name, term
                continue
        if bounded_match is not None:
            edged = _bounded_term(data, bounded_match, bounded)
            if edged is not None:
                yield name, edged
