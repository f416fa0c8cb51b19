"""mcp-guard: access control, policy, sanitizing and audit around MCP sessions.

The public surface is small on purpose: the guard and its config loader, the
value types that flow through it, the plugin Protocols, the errors, and one way
each to guard a server (:meth:`Guard.protect`) and a client session
(:func:`guarded_client`). Everything else stays importable from its subpackage
(``mcp_guard.policy``, ``mcp_guard.authn``, ``mcp_guard.audit``,
``mcp_guard.store``, ``mcp_guard.sanitize``, ``mcp_guard.integrations``).
"""

from typing import TYPE_CHECKING, Any

from .errors import (
    AccessDenied,
    AuthenticationError,
    ConfigError,
    GuardError,
    GuardUnavailable,
    PayloadTooLarge,
    PolicyError,
    RateLimited,
)
from .model import (
    AccessRequest,
    AuditEvent,
    Decision,
    Finding,
    Obligation,
    Principal,
    RequestContext,
    ResultSummary,
    ScanResult,
)
from .protocols import AuditSink, Authenticator, Credential, PolicyEngine, Sanitizer, StateStore

if TYPE_CHECKING:
    from .config import GuardConfig, load_config
    from .guard import Guard
    from .integrations.client import guarded_client

#: Names whose modules pull in the ``mcp`` SDK and pydantic: imported on first use, so that
#: ``import mcp_guard`` (and the command line's ``--help``) stays cheap.
_LAZY = {
    "Guard": "guard",
    "GuardConfig": "config",
    "load_config": "config",
    "guarded_client": "integrations.client",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mcp_guard' has no attribute {name!r}")
    import importlib

    if name == "Guard":
        importlib.import_module(".integrations.server", __name__)  # the adapter behind Guard.protect
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


__version__ = "0.1.0"

__all__ = [
    "AccessDenied",
    "AccessRequest",
    "AuditEvent",
    "AuditSink",
    "AuthenticationError",
    "Authenticator",
    "ConfigError",
    "Credential",
    "Decision",
    "Finding",
    "Guard",
    "GuardConfig",
    "GuardError",
    "GuardUnavailable",
    "Obligation",
    "PayloadTooLarge",
    "PolicyEngine",
    "PolicyError",
    "Principal",
    "RateLimited",
    "RequestContext",
    "ResultSummary",
    "Sanitizer",
    "ScanResult",
    "StateStore",
    "guarded_client",
    "load_config",
]
