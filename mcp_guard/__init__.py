"""mcp-guard: access control, policy, sanitizing and audit around MCP sessions.

The public surface is small on purpose: the guard and its config loader, the
value types that flow through it, the plugin Protocols, the errors, and one way
each to guard a server (:meth:`Guard.protect`) and a client session
(:func:`guarded_client`). Everything else stays importable from its subpackage
(``mcp_guard.policy``, ``mcp_guard.authn``, ``mcp_guard.audit``,
``mcp_guard.store``, ``mcp_guard.sanitize``, ``mcp_guard.integrations``).
"""

from .config import GuardConfig, load_config
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
from .guard import Guard
from .integrations.client import guarded_client  # the package registers the adapter behind Guard.protect
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
