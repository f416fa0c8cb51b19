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
from collections.abc import Iterator, Mapping
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
            "password passwords login log sign signin auth authenticate authentication credential",
            "credentials connect connects connector configure configures vault secret secrets keychain",
            "mailbox imap smtp wifi wi-fi network join joins unlock reset strength key keys token tokens",
            "ssh certificate register signup database account accounts aws gcp azure proxy",
        ),
    ),
    "identity": (
        re.compile(r"\bssn\b|social security|passport"),
        _words(
            "tax taxes taxpayer 1040 w-2 w2 irs payroll employee employees kyc identity verify verifies",
            "verification credit loan mortgage bank passport flight flights airline travel visa insurance",
            "patient medical clinic intake health hr background onboarding benefits hire applicant",
            "application customs immigration",
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
_DESTINATION = re.compile(
    r"(?:https?|s3|gs|ftp|sftp|wss?)://(?!(?:[\w.-]*\.)?(?:example\.(?:com|org|net)|localhost)\b)[\w.-]+"
    r"|[\w.+-]+@(?!(?:[\w-]+\.)*example\.(?:com|org|net)\b)[\w-]+\.[\w.-]+"
)
_TEMPLATED_SECRET = re.compile(
    r"\{\{\s*(?:env|secrets?|user\.(?:email|password|token))\b|\$\{?[A-Z_]*(?:TOKEN|KEY|SECRET)"
)
_SHARING = re.compile(r"\b(?:share|shares|sell|sold|forward|send|upload|export|transfer)\b")
_DATA = re.compile(r"\b(?:data|contacts|all|my|personal|everything|info|information|text|history|location)\b")
_REFUSES = re.compile(r"\b(?:not|never|no|rejected|refused|excluded|denied|blocked|masked|redacted)\b")
_WORDS = re.compile(r"[a-z0-9][a-z0-9-]*")
_SPLIT = re.compile(r"[_\-.]|(?<=[a-z])(?=[A-Z])")
#: Cheap pre-check over the whole item's text: nothing below can match without one of these.
_MAY = re.compile(
    r"passw|passphrase|security|maiden|recovery|key|token|authoriz|auth|cookie|login|credential|ssn|social"
    r"|passport|card|cvv|cvc|iban|routing|\.aws|ssh|id_|\.pem|\.env|netrc|npmrc|pypirc|kube"
    r"|://|@|\{\{|\$|share|sell|sold|forward|send|upload|export|transfer",
    re.IGNORECASE,
)


def may_need_fit(joined: str) -> bool:
    """Whether a tool's text holds any word a schema-fit finding needs (cheap, one regex)."""
    return _MAY.search(joined) is not None


def schema_findings(item: Mapping[str, Any]) -> list[Finding]:
    """Schema-fit findings for one tool definition."""
    schema = item.get("inputSchema")
    if not isinstance(schema, Mapping):
        return []
    name = item.get("name")
    desc = item.get("description")
    purpose_text = " ".join(_SPLIT.sub(" ", s) for s in (name, desc) if isinstance(s, str)).lower()
    purpose = set(_WORDS.findall(purpose_text))
    out: list[Finding] = []
    for pointer, pname, prop in _properties(schema, "/inputSchema"):
        asks = _SPLIT.sub(" ", pname).lower()
        described = " ".join(
            str(prop.get(k)) for k in ("description", "title") if isinstance(prop.get(k), str)
        ).lower()
        values = list(_values(prop))
        values_low = " ".join(values).lower()
        # A description that says what is refused ("~/.ssh is rejected") is not asking for it.
        asked = "" if _REFUSES.search(described) else described
        seen = f"{asks} {asked} {values_low}"
        for label, (pattern, needs) in _CLASSES.items():
            if pattern.search(seen) and purpose.isdisjoint(needs):
                message = f"asks for a {label} the tool does not need"
                out.append(Finding("schema.needless-secret", "medium", pointer, message))
                break
        own = f"{asks} {described}"
        preset = [v for k, v in _keyed_values(prop) if k in ("default", "const") or "recommend" in described]
        for value in preset:
            if _TEMPLATED_SECRET.search(value) or (_DESTINATION.search(value) and _MOVES.search(own)):
                message = "preset value sends data to a fixed outside address"
                out.append(Finding("schema.preset-destination", "medium", pointer, message))
                break
        for value in values:
            words = _SPLIT.sub(" ", value).lower()
            shares = _SHARING.findall(words)
            if shares and (_DATA.search(words) or _DESTINATION.search(value)) and purpose.isdisjoint(shares):
                out.append(Finding("schema.forced-consent", "medium", pointer, "value shares data by itself"))
                break
    return out


def _properties(
    schema: Mapping[str, Any], pointer: str, depth: int = 0
) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    """Every property schema, nested ones and ``$defs`` included, with its pointer and name."""
    if depth > 6:
        return
    for key in ("properties", "$defs", "definitions"):
        props = schema.get(key)
        if isinstance(props, Mapping):
            for pname, prop in props.items():
                if isinstance(pname, str) and isinstance(prop, Mapping):
                    here = f"{pointer}/{key}/{escape(pname)}"
                    yield here, pname, prop
                    yield from _properties(prop, here, depth + 1)
    items = schema.get("items")
    if isinstance(items, Mapping):
        yield from _properties(items, f"{pointer}/items", depth + 1)


def _keyed_values(prop: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """String values of a property's ``default``, ``const``, ``examples`` and ``enum``, with their key."""
    for key in ("default", "const", "examples", "enum"):
        value = prop.get(key)
        for one in value if isinstance(value, list) else [value]:
            if isinstance(one, str):
                yield key, one


def _values(prop: Mapping[str, Any]) -> Iterator[str]:
    for _, value in _keyed_values(prop):
        yield value
