"""mcp-guard: access control, policy, sanitizing and audit around MCP sessions."""

from .errors import (
    AccessDenied,
    AuditUnavailable,
    AuthenticationError,
    ConfigError,
    GuardError,
    GuardUnavailable,
    MethodNotAllowed,
    PayloadTooLarge,
    PolicyError,
    RateLimited,
)
from .model import (
    AccessRequest,
    AuditEvent,
    Decision,
    Finding,
    LimitSpec,
    Obligation,
    Principal,
    RequestContext,
    ResultSummary,
    ScanResult,
)
from .protocols import (
    Auditor,
    AuditSink,
    Authenticator,
    Credential,
    PolicyEngine,
    RateDecision,
    Sanitizer,
    StateStore,
)
from .store import MemoryStore

__version__ = "0.1.0"

__all__ = [
    "AccessDenied",
    "AccessRequest",
    "AuditEvent",
    "AuditSink",
    "AuditUnavailable",
    "Auditor",
    "AuthenticationError",
    "Authenticator",
    "ConfigError",
    "Credential",
    "Decision",
    "Finding",
    "GuardError",
    "GuardUnavailable",
    "LimitSpec",
    "MemoryStore",
    "MethodNotAllowed",
    "Obligation",
    "PayloadTooLarge",
    "PolicyEngine",
    "PolicyError",
    "Principal",
    "RateDecision",
    "RateLimited",
    "RequestContext",
    "ResultSummary",
    "Sanitizer",
    "ScanResult",
    "StateStore",
    "__version__",
]
