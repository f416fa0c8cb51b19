"""The reasons the engine gives when no rule decided, and how to recognise them in a record.

The audit trail keeps a decision's reasons as text and has no field saying
"the default decided"; this module writes those reasons and reads them back
(``policy coverage``), so their wording is defined in one place.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = ["DEFAULT_ALLOW_REASON", "DEFAULT_DENY_REASON", "is_default_denial", "unmet_reason"]

#: Nothing matched the request and the policy's default allowed or denied it.
DEFAULT_ALLOW_REASON = "no rule matched; default allow"
DEFAULT_DENY_REASON = "no rule matched; default deny"
#: How the two reasons for a denial by the default read: "<why nothing allowed>; default deny".
_NOTHING_MATCHED = "no rule matched"
_UNMET_ENDING = "`when` was false"
_DEFAULT_DENY = "default deny"


def unmet_reason(ids: Sequence[str], default: str, foreign: bool) -> str:
    """Why nothing allowed a request that an allow rule was written for: its ``when`` was false."""
    names = ", ".join(ids)
    rules = f"rule {names} matched but its" if len(ids) == 1 else f"rules {names} matched but their"
    fallback = "tenant isolation" if default == "allow" and foreign else f"default {default}"
    return f"{rules} `when` was false; {fallback}"


def is_default_denial(reasons: Iterable[object]) -> bool:
    """Whether a decision's reasons say the policy's default denied it.

    The engine puts that reason first: :data:`DEFAULT_DENY_REASON` or an
    :func:`unmet_reason` ending in "default deny". Notes may follow, in the
    same string when a refusal joined the reasons with "; ".
    """
    for reason in reasons:
        if not isinstance(reason, str):
            return False
        why, _, rest = reason.partition("; ")
        fallback = rest.partition("; ")[0]
        return fallback == _DEFAULT_DENY and (why == _NOTHING_MATCHED or why.endswith(_UNMET_ENDING))
    return False
