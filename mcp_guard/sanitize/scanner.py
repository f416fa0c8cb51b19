"""The built-in sanitizer: invisible text, injected instructions, look-alike names, secrets.

``DefaultSanitizer`` is an ordinary :class:`~mcp_guard.protocols.Sanitizer`;
``scan_items`` adds what needs the whole list (name collisions) and the
caches that make a repeated ``tools/list`` nearly free: results are keyed by a
digest of each item's canonical JSON, and a list object seen before (held by
reference, so its id cannot be reused) is answered without rescanning.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from ..model import Finding, ScanResult, Severity
from .addressee import addressee_findings
from .annotations import annotation_findings
from .cues import cue_findings, present_keys
from .injection import HIDDEN_TEXT, scan_fields
from .lookalike import may_be_styled, styled_findings
from .markup import markup_findings, may_have_markup
from .names import check_collisions
from .padding import may_be_padded, padding_findings
from .planted import planted_findings
from .poisoning import poisoning_findings
from .redact import find_secrets, might_contain_secret, redact_text
from .schemafit import SECRET_KEYS, VALUE_KEYS, VALUE_POINTERS, schema_findings
from .spoofing import name_findings
from .unicode import has_suspect_chars, scan_invisible, strip_invisible
from .walk import TextField, text_fields
from .warmup import warm as warm_up

#: Kinds whose content is data from the outside world, where secrets get redacted.
RESULT_KINDS = frozenset({"tool_result", "prompt_result", "resource_result", "arguments"})
#: Results that carry data from the outside world to the agent (a prompt result is the user's own turn).
_DATA_KINDS = frozenset({"tool_result", "resource_result"})
#: Kinds a sanitizer is asked about.
KINDS = frozenset({"tool", "prompt", "resource", "resource_template"}) | RESULT_KINDS
#: Kinds whose text the server (not the outside world) writes for the model: read for poisoning.
_DEFINITION_KINDS = frozenset({"tool", "prompt", "resource", "resource_template", "prompt_result"})
#: Kinds whose ``name`` is an identifier the model calls by.
_NAMED_KINDS = frozenset({"tool", "prompt"})


#: ``json.dumps`` with these options, without building an encoder per call (a fifth of its cost).
_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str).encode


def content_digest(item: Any) -> bytes:
    """128-bit digest of an item's JSON, the scan cache key.

    Keys keep their order (an equal item with other key order merely misses
    the cache); that saves sorting on every call. Pins use the canonical form.
    """
    encoded = _ENCODE(item)
    return hashlib.blake2b(encoded.encode("utf-8"), digest_size=16).digest()


class DefaultSanitizer:
    """Scans MCP definitions and results for hidden text, injected instructions and secrets.

    ``redact`` controls whether results (``*_result``, ``arguments``) come back
    rewritten with secrets masked. Every result carries the rewritten item in
    ``ScanResult.item`` when something was stripped or masked; the caller's
    policy decides whether to use it. Any internal error yields a high
    finding (``sanitizer.error``): a scan that failed is never a clean scan.
    ``warm`` does the first-use work of the process (character tables, RE2
    automata; see :mod:`.warmup`) while the sanitizer is built.
    """

    def __init__(self, *, redact: bool = True, cache_size: int = 8192, warm: bool = True) -> None:
        if warm:  # first-use work (tables, automata) now, not on the first list screened
            warm_up(lambda: DefaultSanitizer(warm=False))
        self.redact = redact
        self._cache: OrderedDict[tuple[str, bytes], ScanResult] = OrderedDict()
        self._cache_size = cache_size
        self._field_cache: dict[tuple[str, bool], tuple[tuple[str, Severity, str], ...]] = {}
        self._field_cache_size = cache_size * 8
        self._lists: OrderedDict[tuple[str, int], tuple[Sequence[Any], tuple[Any, ...], list[ScanResult]]] = (
            OrderedDict()
        )
        #: (kind, length) -> [(private copy of a scanned list, its typed scalars, its results)].
        self._equal_lists: dict[tuple[str, int], list[tuple[list[Any], list[Any], list[ScanResult]]]] = {}

    def scan(self, kind: str, item: Mapping[str, Any]) -> ScanResult:
        try:
            key = (kind, content_digest(item))
        except Exception as exc:  # unserialisable input is refused, not passed
            return _error(exc)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        result = self._scan_uncached(kind, item)
        self._cache[key] = result
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return result

    def scan_items(self, kind: str, items: Sequence[Mapping[str, Any]]) -> list[ScanResult]:
        """Scan a list result's items; look-alike names are judged against the whole list."""
        ident = (kind, id(items))
        hit = self._lists.get(ident)
        if (
            hit is not None
            and hit[0] is items
            and len(items) == len(hit[1])
            and all(a is b for a, b in zip(items, hit[1], strict=True))
        ):
            return list(hit[2])
        known = self._equal_list(kind, items)
        if known is not None:
            results = known
        else:
            results = [self.scan(kind, item) for item in items]
            for index, extra in self.list_findings(kind, items).items():
                old = results[index]
                results[index] = ScanResult((*old.findings, *extra), old.item)
            self._remember_equal(kind, items, results)
        self._lists[ident] = (items, tuple(items), results)
        if len(self._lists) > 64:
            self._lists.popitem(last=False)
        return list(results)

    def _equal_list(self, kind: str, items: Sequence[Any]) -> list[ScanResult] | None:
        """Results of an equal list scanned before: a ``tools/list`` parsed again costs one comparison.

        ``==`` on parsed JSON runs in C and allocates nothing, against a private copy taken at the
        first scan (the caller may change its own objects afterwards). Python counts ``True == 1``
        and ignores key order; key order changes no verdict, and the one place a scan reads a
        value's type (annotation hints, ``is True``) is compared with types.
        """
        for copy, typed, results in self._equal_lists.get((kind, len(items)), ()):
            if items == copy and _typed_scalars(items) == typed:
                return results
        return None

    def _remember_equal(self, kind: str, items: Sequence[Any], results: list[ScanResult]) -> None:
        try:
            copy = json.loads(json.dumps(list(items), default=str))
        except (TypeError, ValueError):  # not plain JSON: such lists are simply not remembered
            return
        if copy != items:
            return
        bucket = self._equal_lists.setdefault((kind, len(items)), [])
        bucket.insert(0, (copy, _typed_scalars(items), results))
        del bucket[4:]
        if len(self._equal_lists) > 64:
            del self._equal_lists[next(iter(self._equal_lists))]

    def list_findings(self, kind: str, items: Sequence[Any]) -> dict[int, tuple[Finding, ...]]:
        """Findings that only the whole list shows: names that imitate another item's name.

        Callers that cache per-item scans (the guard) add these to their
        cached results instead of rescanning every item.
        """
        if kind not in _NAMED_KINDS or len(items) < 2:
            return {}
        names = [item.get("name") if isinstance(item, Mapping) else None for item in items]
        found = check_collisions(n if isinstance(n, str) else None for n in names)
        return {index: (finding,) for index, finding in found.items()}

    def _scan_uncached(self, kind: str, item: Mapping[str, Any]) -> ScanResult:
        try:
            if not isinstance(item, Mapping):
                raise TypeError(f"{kind} item must be a JSON object, got {type(item).__name__}")
            return self._scan(kind, item)
        except Exception as exc:
            return _error(exc)

    def _scan(self, kind: str, item: Mapping[str, Any]) -> ScanResult:
        findings: list[Finding] = []
        rewrite = False
        is_result = kind in RESULT_KINDS  # secrets are looked for in results and arguments, not definitions
        findings.extend(name_findings(kind, item))
        fields = [f for f in text_fields(item) if f.text]
        joined = "\n".join(f.text for f in fields)
        if not joined.isascii() and may_be_styled(joined):
            for field in fields:
                if not field.text.isascii():
                    findings.extend(styled_findings(field.text, field.pointer or "/", result=is_result))
        if may_be_padded(joined, result=is_result):
            for field in fields:
                findings.extend(padding_findings(field.text, field.pointer or "/", result=is_result))
        if has_suspect_chars(joined):
            for field in fields:
                for hit in scan_invisible(field.text, terminal_output=is_result):
                    findings.append(Finding(hit.rule, hit.severity, field.pointer or "/", hit.message))
                    rewrite = True
        text_findings = self._text_findings(fields)
        if is_result:  # a sentence in base64 is ordinary data in a result (file contents from an API)
            text_findings = [f for f in text_findings if f.rule != HIDDEN_TEXT]
        findings.extend(text_findings)
        # Requests no user makes, and schema values beyond the tool's purpose: one pass finds
        # which of their words the item holds at all.
        low = joined.lower()
        present = present_keys(low, result=is_result)
        if present:
            sentences = ((f.pointer or "/", f.text) for f in fields if not f.identifier)
            findings.extend(cue_findings(sentences, low, present, result=is_result))
        if kind in _DATA_KINDS:  # data that speaks to the agent reading it, or orders a tool action
            prose = [(f.pointer or "/", f.text) for f in fields if not f.identifier]
            findings.extend(addressee_findings(prose, low))
            findings.extend(planted_findings(prose, low))
        asked = [key for key in SECRET_KEYS if key in present] if present else []
        valued = bool(present) and not present.isdisjoint(VALUE_KEYS) and _has_values(fields)
        if kind == "tool" and (asked or valued):
            # A property whose text already made a finding needs no second one for its values.
            flagged = [f.field for f in findings]
            for fit in schema_findings(item, asked, check_values=valued):
                if not any(field.startswith(fit.field) for field in flagged):
                    findings.append(fit)
        if kind in _DEFINITION_KINDS:  # requests and rules with no override word, in fields not flagged yet
            seen_fields = {f.field for f in findings}
            pairs = [(f.pointer or "/", f.text) for f in fields]
            findings.extend(
                p for p in poisoning_findings(kind, item, pairs, low) if p.field not in seen_fields
            )
        if may_have_markup(joined):
            seen = {(f.rule, f.field) for f in text_findings}
            for field in fields:
                for mark in markup_findings(field.text, field.pointer or "/", definition=not is_result):
                    if (mark.rule, mark.field) not in seen:
                        findings.append(mark)
        if kind == "tool" and "annotations" in item:
            prose = [(f.pointer or "/", f.text) for f in fields if not f.identifier and " " in f.text]
            findings.extend(annotation_findings(item, prose))
        if is_result and (might_contain_secret(joined) or any(_keyed(f.pointer) for f in fields)):
            for field in fields:
                secrets = find_secrets(
                    field.text, field.pointer.rsplit("/", 1)[-1] if field.pointer else None
                )
                if secrets:
                    kinds = sorted({s.kind for s in secrets})
                    redacted = is_result and self.redact
                    message = f"secret in text ({', '.join(kinds)})" + ("; redacted" if redacted else "")
                    findings.append(Finding("secret." + kinds[0], "medium", field.pointer or "/", message))
                    rewrite = rewrite or redacted
        new_item = self._rewrite(item, is_result and self.redact) if rewrite else None
        return ScanResult(tuple(findings), new_item)

    def _text_findings(self, fields: list[TextField]) -> list[Finding]:
        """Instruction findings per field, memoised by (text, identifier).

        A field's findings depend on its text alone (sentences and hidden
        containers never span two fields), and real lists repeat the same
        strings across tools ("Page number.", a shared disclaimer), so only
        texts not seen before are scanned, together in one batch.
        """
        out: list[Finding] = []
        todo: list[TextField] = []
        cache = self._field_cache
        for field in fields:
            known = cache.get((field.text, field.identifier))
            if known is None:
                todo.append(field)
            else:
                pointer = field.pointer or "/"
                out.extend(Finding(rule, severity, pointer, message) for rule, severity, message in known)
        if todo:
            fresh = scan_fields([(f.pointer or "/", f.text, f.identifier) for f in todo])
            by_pointer: dict[str, list[Finding]] = {}
            for finding in fresh:
                by_pointer.setdefault(finding.field, []).append(finding)
            for field in todo:
                mine = by_pointer.get(field.pointer or "/", [])
                cache[(field.text, field.identifier)] = tuple((f.rule, f.severity, f.message) for f in mine)
            if len(cache) > self._field_cache_size:
                for key in list(cache)[: len(cache) // 4]:
                    del cache[key]
            out.extend(fresh)
        return out

    def _rewrite(self, value: Any, redact: bool) -> Any:
        if isinstance(value, str):
            out = strip_invisible(value)
            return redact_text(out) if redact else out
        if isinstance(value, Mapping):
            return {k: v if k in ("data", "blob") else self._rewrite(v, redact) for k, v in value.items()}
        if isinstance(value, list):
            return [self._rewrite(v, redact) for v in value]
        return value


def _typed_scalars(items: Sequence[Any]) -> list[Any]:
    """Each item's annotation hints with their types (what ``==`` would let ``1`` stand in for)."""
    out: list[Any] = []
    for item in items:
        notes = item.get("annotations") if isinstance(item, Mapping) else None
        if isinstance(notes, Mapping):
            out.append([(k, type(v), v) for k, v in notes.items()])
        else:
            out.append(None)
    return out


def _has_values(fields: list[TextField]) -> bool:
    """Whether a definition has a string ``default``, ``const``, example or enum value anywhere."""
    pointers = "\n".join([f.pointer for f in fields])
    return any(part in pointers for part in VALUE_POINTERS)


def _keyed(pointer: str) -> bool:
    """The field is the value of a secret-sounding JSON key (``.../secret``, ``.../api_key``)."""
    tail = pointer.rsplit("/", 1)[-1].lower()
    return tail == "auth" or any(word in tail for word in ("secret", "token", "passw", "key", "credential"))


def _error(exc: Exception) -> ScanResult:
    return ScanResult((Finding("sanitizer.error", "high", "/", f"scan failed: {type(exc).__name__}: {exc}"),))
