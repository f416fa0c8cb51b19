"""The authorization policy engine: rule files, conditions, decisions, visibility, limits.

``load_policy("policy.toml")`` returns a :class:`CompiledPolicy` implementing
:class:`~mcp_guard.protocols.PolicyEngine`. See ``docs/policy.md`` for the
file format and semantics.
"""

from __future__ import annotations

from .chain import AllowListPolicy, ChainedPolicy
from .conditions import BUILTIN_FUNCTIONS, ENTRY_POINT_GROUP, condition_functions
from .engine import CompiledPolicy, Explanation, Rule, RuleTrace
from .loader import load_policy, load_policy_text, policy_from_dict
from .reloading import RELOAD_CHANNEL, ReloadingPolicy, audit_reloads, publish_reload

__all__ = [
    "BUILTIN_FUNCTIONS",
    "ENTRY_POINT_GROUP",
    "RELOAD_CHANNEL",
    "AllowListPolicy",
    "ChainedPolicy",
    "CompiledPolicy",
    "Explanation",
    "ReloadingPolicy",
    "Rule",
    "RuleTrace",
    "audit_reloads",
    "condition_functions",
    "load_policy",
    "load_policy_text",
    "policy_from_dict",
    "publish_reload",
]
