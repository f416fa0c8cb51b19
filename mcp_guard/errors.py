"""Error hierarchy and the JSON-RPC codes the guard answers with.

Callers only ever see ``public_message`` and a stable ``code``; the ``reason``
(which can name rules, keys or internal failures) goes to the audit trail.
Codes live in the JSON-RPC server-defined range so clients can switch on them.
"""

from __future__ import annotations

from typing import Any

#: Credentials missing or invalid.
AUTHENTICATION_REQUIRED = -32001
#: The policy (or a sanitizer verdict) refuses the request.
ACCESS_DENIED = -32003
#: The call waits for a person's approval; ``data.approvalId`` names the request to retry after.
APPROVAL_PENDING = -32004
#: A rate limit or lockout applies; ``data.retryAfter`` holds seconds.
RATE_LIMITED = -32029
#: The caller must visit a URL first (a step-up sign-in); ``data.elicitations`` holds it.
URL_ELICITATION_REQUIRED = -32042
#: Params, arguments or a result exceed a configured maximum.
PAYLOAD_TOO_LARGE = -32013
#: The guard itself failed (a stage raised, audit unavailable): denied, fail closed.
GUARD_UNAVAILABLE = -32050
#: Standard JSON-RPC "method not found", used for unknown methods so they look
#: exactly like methods the server does not implement.
METHOD_NOT_FOUND = -32601


class GuardError(Exception):
    """Base for every refusal the guard produces.

    ``reason`` is the detailed, possibly sensitive explanation for the audit
    trail; ``public_message`` is the short text a caller receives.
    """

    code: int = ACCESS_DENIED
    public_message: str = "Access denied"

    def __init__(self, reason: str = "", *, data: dict[str, Any] | None = None, decision: Any = None) -> None:
        super().__init__(reason or self.public_message)
        self.reason = reason or self.public_message
        self.data = data
        #: The policy :class:`~mcp_guard.model.Decision` behind the refusal, when there was one:
        #: its rule id and redaction obligations still apply to the audit event.
        self.decision = decision


class AuthenticationError(GuardError):
    """Credentials were missing, malformed, expired, revoked or not recognised."""

    code = AUTHENTICATION_REQUIRED
    public_message = "Authentication required"

    #: Whose genuine credential was refused (a :class:`~mcp_guard.model.Principal`: a revoked or
    #: expired key whose secret matched): the refusal's event names that person, so
    #: ``audit query --subject`` finds it. ``None`` when the presenter proved nothing.
    owner: Any = None


class AccessDenied(GuardError):
    """The policy or a sanitizer verdict refused the request."""

    code = ACCESS_DENIED
    public_message = "Access denied"


class ApprovalPending(GuardError):
    """The call needs an approval that has not been given yet; retry it unchanged once approved."""

    code = APPROVAL_PENDING
    public_message = "Approval pending"

    def __init__(self, reason: str, *, request_id: str, expires_at: float, decision: Any = None) -> None:
        data = {"approvalId": request_id, "status": "pending", "expiresAt": expires_at}
        super().__init__(reason, data=data, decision=decision)
        #: The caller learns the id to quote to an approver, and that a retry is expected.
        self.public_message = f"Approval pending: request {request_id}; retry the same call once approved"
        self.request_id = request_id


class StepUpRequired(GuardError):
    """A rule needs a fresh MFA: the caller signs in again at ``url``, then retries the call."""

    code = URL_ELICITATION_REQUIRED
    public_message = "Step-up required: sign in again at the given URL, then retry"

    def __init__(
        self, reason: str, *, url: str, elicitation_id: str, message: str, decision: Any = None
    ) -> None:
        item = {"mode": "url", "message": message, "url": url, "elicitationId": elicitation_id}
        super().__init__(reason, data={"elicitations": [item]}, decision=decision)
        self.url = url


class MethodNotAllowed(GuardError):
    """An MCP method the guard does not know: refused as if the server lacked it."""

    code = METHOD_NOT_FOUND
    public_message = "Method not found"


class RateLimited(GuardError):
    """A rate limit or lockout; carries ``retry_after`` seconds."""

    code = RATE_LIMITED
    public_message = "Rate limit exceeded"

    def __init__(self, reason: str = "", *, retry_after: float | None = None) -> None:
        data = {"retryAfter": round(retry_after, 3)} if retry_after is not None else None
        super().__init__(reason, data=data)
        self.retry_after = retry_after


class PayloadTooLarge(GuardError):
    """Params, tool arguments or a result exceeded a configured maximum."""

    code = PAYLOAD_TOO_LARGE
    public_message = "Payload too large"


class GuardUnavailable(GuardError):
    """A guard stage failed; the request is denied rather than let through."""

    code = GUARD_UNAVAILABLE
    public_message = "Request refused: access control unavailable"


class AuditUnavailable(GuardUnavailable):
    """The audit trail cannot accept the event, and the configuration says no audit, no access."""


class ConfigError(ValueError):
    """A configuration or policy file is invalid.

    The message always names the file, the line when it is known, and the
    field path, so an operator can go straight to the mistake.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.file = file
        self.line = line
        self.field = field
        self.detail = message
        super().__init__(self.format())

    def format(self) -> str:
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line else "") + ": "
        elif self.line:
            where = f"line {self.line}: "
        fld = f"{self.field}: " if self.field else ""
        return f"{where}{fld}{self.detail}"


class PolicyError(ConfigError):
    """A policy file is invalid (bad field, unknown role, uncompilable condition, cycle)."""
