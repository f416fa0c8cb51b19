"""Sanitizers for what reaches the model, and pins against silently changed tools.

``DefaultSanitizer`` finds invisible text, instructions aimed at the model,
look-alike names and secrets; :func:`apply_to_list` / :func:`apply_to_result`
enforce a per-server :class:`SanitizePolicy`; :class:`PinStore` withholds
items that changed since they were approved. Rule ids and examples are in
``docs/sanitizers.md``.
"""

from .base import CompositeSanitizer, FunctionSanitizer
from .pins import FieldChange, PinCheck, PinEntry, PinStore, canonical_json, diff_items, item_hash
from .policy import (
    LIST_KEYS,
    ListOutcome,
    ResultOutcome,
    SanitizeConfig,
    SanitizePolicy,
    apply_to_list,
    apply_to_result,
)
from .redact import SecretMatch, find_secrets, redact_secrets
from .scanner import KINDS, DefaultSanitizer

__all__ = [
    "KINDS",
    "LIST_KEYS",
    "CompositeSanitizer",
    "DefaultSanitizer",
    "FieldChange",
    "FunctionSanitizer",
    "ListOutcome",
    "PinCheck",
    "PinEntry",
    "PinStore",
    "ResultOutcome",
    "SanitizeConfig",
    "SanitizePolicy",
    "SecretMatch",
    "apply_to_list",
    "apply_to_result",
    "canonical_json",
    "diff_items",
    "find_secrets",
    "item_hash",
    "redact_secrets",
]
