"""Which items a list screening withheld, per server: the call-time half of every list verdict.

A tool whose description the sanitizers blocked, or whose definition changed
since it was pinned, disappears from lists; this record makes sure it cannot be
used by name either, on every path (in-process, through the client wrapper,
through the portal). It holds verdicts about definitions, never about
principals: what the policy hides from one caller is decided per call.

Names are compared in NFC, as the policy compares them. A withheld resource
template withholds every URI it could expand to (any ``{...}`` expression
matches any text: over-matching refuses more, never less), unless that URI is
itself listed as a served resource.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping

_EXPRESSION = re.compile(r"\{[^}]*\}")


def _nfc(name: str) -> str:
    return unicodedata.normalize("NFC", name)


def _template_pattern(template: str) -> re.Pattern[str]:
    parts = _EXPRESSION.split(template)
    return re.compile(".*".join(re.escape(p) for p in parts), re.DOTALL)


class _Server:
    """One server's verdicts: exact names per kind, and the templates withheld or served."""

    def __init__(self) -> None:
        self.names: dict[tuple[str, str], bool] = {}
        self.templates: dict[str, tuple[bool, re.Pattern[str]]] = {}
        self.reasons: dict[tuple[str, str], str] = {}

    def copy(self) -> _Server:
        other = _Server()
        other.names = dict(self.names)
        other.templates = dict(self.templates)
        other.reasons = dict(self.reasons)
        return other


class WithheldItems:
    """The latest screening verdict of each item a server listed (safe to share: updates replace)."""

    def __init__(self) -> None:
        self._by_server: dict[str, _Server] = {}

    def update(
        self, server: str, kind: str, listed: Iterable[str], withheld: Iterable[str] | Mapping[str, str]
    ) -> None:
        """Record one screening of ``server``'s ``kind`` list: ``withheld`` of the ``listed`` names.

        ``withheld`` may map each name to why it was withheld, for the refusal's audit record.
        """
        current = self._by_server.get(server, _Server()).copy()
        hidden = {_nfc(n) for n in withheld}
        if isinstance(withheld, Mapping):
            for name, why in withheld.items():
                current.reasons[(kind, _nfc(name))] = why
        for raw in listed:
            name = _nfc(raw)
            if kind == "resource_template":
                current.templates[name] = (name in hidden, _template_pattern(name))
            else:
                current.names[(kind, name)] = name in hidden
        for name in hidden:
            if kind == "resource_template":
                current.templates[name] = (True, _template_pattern(name))
            else:
                current.names[(kind, name)] = True
        self._by_server[server] = current

    def state(self, server: str, kind: str, name: str) -> bool | None:
        """True: withheld; False: served; None: never screened."""
        record = self._by_server.get(server)
        if record is None:
            return None
        name = _nfc(name)
        if kind == "resource_template":
            entry = record.templates.get(name)
            return entry[0] if entry is not None else None
        exact = record.names.get((kind, name))
        if exact is not None or kind != "resource":
            return exact
        # A URI no resource list named: judged by the templates that could have produced it.
        matches = [hidden for hidden, pattern in record.templates.values() if pattern.fullmatch(name)]
        if any(matches):
            return True
        return False if matches else None

    def reason(self, server: str, kind: str, name: str) -> str:
        """Why an item is withheld, as recorded by the screening that withheld it."""
        record = self._by_server.get(server)
        name = _nfc(name)
        if record is not None:
            for key in ((kind, name), ("resource_template", name)):
                if key in record.reasons:
                    return record.reasons[key]
            if kind == "resource":
                for template, (hidden, pattern) in record.templates.items():
                    if hidden and pattern.fullmatch(name):
                        why = record.reasons.get(("resource_template", template), "withheld")
                        return f"it expands template {template!r}, which is withheld: {why}"
        return "a sanitizer verdict or a pin"

    def names(self, server: str) -> list[tuple[str, str]]:
        """The ``(kind, name)`` pairs currently withheld on ``server``."""
        record = self._by_server.get(server)
        if record is None:
            return []
        out = [k for k, v in record.names.items() if v]
        out += [("resource_template", t) for t, (v, _) in record.templates.items() if v]
        return sorted(out)
