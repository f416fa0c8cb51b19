"""Schema values judged against the tool's own purpose.

A poisoned schema often holds no order at all: a parameter simply asks for a password, an SSN or
a card number, a default selects ``ssn,card_number``, an enum offers only "share all contacts with
partner", a default points copies at someone's webhook. Whether that is an attack depends on the
tool: a tax form may ask for an SSN, a mail connector for a password, a payment tool for a card.
So each secret class here has the purpose words that justify it, read from the tool's own name
and description only (never from the parameter, which is what is being judged).

* **needless secret**: a parameter's name, description or values reach for a credential,
  identity number, payment card or secret file the tool's purpose does not need;
* **preset destination**: a ``default``/``const`` (or a "recommended" example) sends copies to a
  fixed outside address, or fills a URL template with environment secrets;
* **forced consent**: a default, ``const`` or enum value that shares, sells or forwards data
  (or names an address) where the tool's purpose is not sharing.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping
from typing import Any

from ..model import Finding
from .walk import escape


def _words(*lines: str) -> frozenset[str]:
    """A word set written over several short lines."""
    return frozenset(" ".join(lines).split())


#: Secret class -> (what asks for it, words of a tool purpose that may need it).
_CLASSES: dict[str, tuple[re.Pattern[str], frozenset[str]]] = {
    "credential": (
        re.compile(
            r"passw(?:or)?d|passphrase|security (?:code|question)|maiden name|recovery codes?"
            r"|api[ _-]?key|secret[ _-]?(?:access[ _-]?)?key|access[ _-]?token|authorization header"
            r"|auth header|session cookie|private key|\bcredentials?\b"
        ),
        _words(
            "password passwords login logon sign signin auth authenticate authentication credential",
            "credentials connect connects connector configure configures vault secret secrets keychain",
            "mailbox imap smtp wifi wi-fi network join joins unlock reset strength key keys token tokens",
            "ssh certificate register signup database account accounts aws gcp azure proxy",
        ),
    ),
    "identity": (
        re.compile(r"\bssn\b|social security|passport|national id|driver'?s licen[cs]e"),
        _words(
            "tax taxes taxpayer 1040 w-2 w2 irs payroll employee employees kyc identity verify verifies",
            "verification credit loan mortgage bank passport flight flights airline travel visa insurance",
            "patient medical clinic intake health hr background onboarding benefits hire applicant",
            "application customs immigration rental rent car vehicle driving",
        ),
    ),
    "payment": (
        re.compile(r"card[ _-]?number|\bcvv\b|\bcvc\b|credit card|bank card|\biban\b|routing number"),
        _words(
            "pay payment payments charge charges checkout card cards invoice invoices billing bill bank",
            "payroll refund refunds purchase order orders subscription subscribe wallet finance transfer",
            "transfers issuer bin credit loan donate donation shop buy store money fund funds deposit",
            "withdraw merchant fee rent tuition payout payouts expense expenses",
        ),
    ),
    "secret file": (
        re.compile(
            r"\.aws/|~/\.ssh|\.ssh/|id_rsa|id_ed25519|\.pem\b|\*\*/\.env|~/\.env|\.netrc|\.git-credentials"
            r"|\.npmrc|\.pypirc|\.kube/config"
        ),
        _words(
            "ssh key keys certificate certificates cert certs", "vault secret secrets credential credentials"
        ),
    ),
}
#: Words in a parameter's own name or description that make a preset address a copy sent away.
_MOVES = re.compile(
    r"\b(?:copy|copies|send|sends|mirror|forward|cc|bcc|share|upload|deliver|sync|relay|logs?|export"
    r"|telemetry|webhook|archive|also|keep a copy|recommended)\b"
)
#: Purpose words of tools whose job is to send or copy data somewhere.
_SENDING = _words(
    "send sends email emails mail mails notify notifies forward forwards share shares upload uploads",
    "sync syncs publish publishes post posts webhook webhooks export exports backup backs mirror",
    "mirrors relay relays deliver delivers",
)
_DESTINATION = re.compile(
    r"(?:https?|s3|gs|ftp|sftp|wss?)://(?!(?:[\w.-]*\.)?(?:example\.(?:com|org|net)|localhost)\b)[\w.-]+"
    r"|[\w.+-]+@(?!(?:[\w-]+\.)*example\.(?:com|org|net)\b)[\w-]+\.[\w.-]+"
)
_TEMPLATED_SECRET = re.compile(
    r"\{\{\s*(?:env|secrets?|user\.(?:email|password|token))\b|\$\{?[A-Z_]*(?:TOKEN|KEY|SECRET)"
)
_SHARING_WORDS = ("share", "sell", "sold", "forward", "send", "upload", "export", "transfer")
_SHARING = re.compile(r"\b(?:share|shares|sell|sold|forward|send|upload|export|transfer)\b")
_DATA = re.compile(r"\b(?:data|contacts|all|my|personal|everything|info|information|text|history|location)\b")
_REFUSES = re.compile(r"\b(?:not|never|no|rejected|refused|excluded|denied|blocked|masked|redacted)\b")
_WORDS = re.compile(r"[a-z0-9][a-z0-9-]*")
_SPLIT = re.compile(r"[_\-.]|(?<=[a-z])(?=[A-Z])")
#: Substrings without which no secret class can match a property's lower-cased name, text or values.
SECRET_KEYS: tuple[str, ...] = (
    "passw",
    "passphrase",
    "security code",
    "security question",
    "maiden",
    "recovery code",
    "api key",
    "api_key",
    "apikey",
    "api-key",
    "secret",
    "access token",
    "access_token",
    "accesstoken",
    "authorization",
    "auth header",
    "session cookie",
    "private key",
    "credential",
    "ssn",
    "social security",
    "passport",
    "national id",
    "driver",
    "card number",
    "card_number",
    "cardnumber",
    "card-number",
    "cvv",
    "cvc",
    "credit card",
    "bank card",
    "iban",
    "routing number",
    ".aws/",
    ".ssh",
    "id_rsa",
    "id_ed25519",
    ".pem",
    ".env",
    ".netrc",
    ".git-credentials",
    ".npmrc",
    ".pypirc",
    ".kube/config",
)
#: Words an item's text must hold for a preset or consent value to matter: a word that shares or
#: moves data (in the value or the property's text) or a template placeholder.
VALUE_KEYS: tuple[str, ...] = (
    "share",
    "sell",
    "sold",
    "forward",
    "send",
    "upload",
    "export",
    "transfer",
    "copy",
    "copies",
    "mirror",
    "bcc",
    "deliver",
    "relay",
    "telemetry",
    "webhook",
    "archive",
    "recommend",
    "logs",
    "{{",
    "${",
)
_VALUE_KINDS = ("default", "const", "examples", "enum")
#: Pointer parts of those values, for telling from a tool's field list whether it has any.
VALUE_POINTERS = ("/default", "/const", "/examples", "/enum/")


def schema_findings(
    item: Mapping[str, Any], secrets: Collection[str] = SECRET_KEYS, *, check_values: bool = True
) -> list[Finding]:
    """Schema-fit findings for one tool definition.

    ``secrets`` narrows the secret keys to those the caller found in the item's text (one RE2
    pass for all cues, see :func:`.cues.present_keys`); a property is split into words and judged
    only when it holds one of them, or has values and ``check_values`` (the item holds a
    :data:`VALUE_KEYS` word) is set.
    """
    schema = item.get("inputSchema")
    if not isinstance(schema, Mapping):
        return []
    purpose: set[str] | None = None
    out: list[Finding] = []
    for base, pname, prop in _properties(schema, "/inputSchema"):
        if not secrets and not (check_values and not prop.keys().isdisjoint(_VALUE_KINDS)):
            continue  # nothing here could make a finding: no secret word in the item, no value
        pointer = f"{base}/{escape(pname)}"
        described = prop.get("description")
        described = described.lower() if isinstance(described, str) else ""
        title = prop.get("title")
        if isinstance(title, str):
            described = f"{described} {title.lower()}"
        values = list(_keyed_values(prop)) if not prop.keys().isdisjoint(_VALUE_KINDS) else []
        values_low = " ".join(v for _, v in values).lower()
        seen_all = f"{pname.lower()} {described} {values_low}"
        secret = any(key in seen_all for key in secrets)
        valued = bool(values) and check_values
        if not secret and not valued:
            continue
        if purpose is None:
            purpose = _purpose(item)
        asks = _SPLIT.sub(" ", pname).lower()
        if secret:
            # A description that says what is refused ("~/.ssh is rejected") is not asking for it.
            asked = "" if _REFUSES.search(described) else described
            seen = f"{asks} {asked} {values_low}"
            for label, (pattern, needs) in _CLASSES.items():
                if pattern.search(seen) and purpose.isdisjoint(needs):
                    message = f"asks for a {label} the tool does not need"
                    out.append(Finding("schema.needless-secret", "medium", pointer, message))
                    break
        if not valued:
            continue
        own = f"{asks} {described}"
        preset = [v for k, v in values if k in ("default", "const") or "recommend" in described]
        sends = not purpose.isdisjoint(_SENDING)  # a mail or sync tool may preset where copies go
        for value in preset:
            if _TEMPLATED_SECRET.search(value) or (
                _DESTINATION.search(value) and _MOVES.search(own) and not sends
            ):
                message = "preset value sends data to a fixed outside address"
                out.append(Finding("schema.preset-destination", "medium", pointer, message))
                break
        for _, value in values:
            if not any(word in value.lower() for word in _SHARING_WORDS):
                continue
            words = _SPLIT.sub(" ", value).lower()
            shares = _SHARING.findall(words)
            if shares and (_DATA.search(words) or _DESTINATION.search(value)) and purpose.isdisjoint(shares):
                out.append(Finding("schema.forced-consent", "medium", pointer, "value shares data by itself"))
                break
    return out


def _purpose(item: Mapping[str, Any]) -> set[str]:
    """The words of a tool's own name and description: what its parameters are judged against."""
    name, description = item.get("name"), item.get("description")
    words = set(_WORDS.findall(_SPLIT.sub(" ", name).lower())) if isinstance(name, str) else set()
    if isinstance(description, str):  # prose: its identifiers split at "_" is enough
        words.update(_WORDS.findall(description.lower().replace("_", " ")))
    return words


def _properties(
    schema: Mapping[str, Any], pointer: str, depth: int = 0
) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    """Every property schema, nested ones and ``$defs`` included, with its parent's pointer and name."""
    if depth > 6:
        return
    for key in ("properties", "$defs", "definitions"):
        props = schema.get(key)
        if type(props) is dict or (props is not None and isinstance(props, Mapping)):
            base = f"{pointer}/{key}"
            for pname, prop in props.items():
                if type(prop) is dict or isinstance(prop, Mapping):
                    if type(pname) is not str:
                        continue
                    yield base, pname, prop
                    if "properties" in prop or "items" in prop or "$defs" in prop or "definitions" in prop:
                        yield from _properties(prop, f"{base}/{escape(pname)}", depth + 1)
    items = schema.get("items")
    if type(items) is dict or (items is not None and isinstance(items, Mapping)):
        yield from _properties(items, f"{pointer}/items", depth + 1)


def _keyed_values(prop: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """String values of a property's ``default``, ``const``, ``examples`` and ``enum``, with their key."""
    for key in _VALUE_KINDS:
        value = prop.get(key)
        for one in value if isinstance(value, list) else [value]:
            if isinstance(one, str):
                yield key, one
