"""The plugin points of the guard, as structural protocols.

Built-in plugins implement these like any user plugin would; nothing in the
guard checks for concrete classes. Each protocol is deliberately one or two
methods so a plain object (or a small adapter around a function) can fill it.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from .model import AccessRequest, AuditEvent, Decision, LimitSpec, Principal, ScanResult


@dataclass(frozen=True, slots=True)
class Credential:
    """A presented credential and where it came from.

    ``source`` is ``http`` (``Authorization: Bearer``), ``stdio``
    (``MCP_GUARD_TOKEN``), ``explicit`` (passed by the embedding code) or
    ``none``. ``token`` is None when nothing was presented.
    """

    token: str | None
    source: str = "explicit"
    ip: str | None = None


@runtime_checkable
class Authenticator(Protocol):
    """Turns a credential into a principal.

    Return ``None`` when the credential is not of a kind this authenticator
    handles (the guard tries the next one); raise
    :class:`~mcp_guard.errors.AuthenticationError` when it is yours but
    invalid (expired, bad signature, revoked). Never downgrade an invalid
    credential to anonymous.
    """

    async def authenticate(self, credential: Credential) -> Principal | None: ...


@runtime_checkable
class PrincipalResolver(Protocol):
    """What the guard asks for a principal: the authenticator chain plus its cache.

    ``resolve`` verifies (raising :class:`~mcp_guard.errors.AuthenticationError`);
    ``peek`` is the synchronous, cache-only lookup (``None`` = not known yet).
    The built-in is :class:`mcp_guard.authn.AuthenticatorChain`.
    """

    async def resolve(self, credential: Credential) -> Principal: ...

    def peek(self, token: str | None) -> Principal | None: ...


@runtime_checkable
class PolicyEngine(Protocol):
    """Decides requests and list visibility.

    ``decide`` may return a :class:`Decision` or an awaitable of one (engines
    that consult remote state). ``visible`` answers for list filtering and
    must be cheap: it runs once per item of every list.
    """

    def decide(self, principal: Principal, request: AccessRequest) -> Decision | Awaitable[Decision]: ...

    def visible(self, principal: Principal, server: str, kind: str, name: str) -> bool: ...


@runtime_checkable
class Sanitizer(Protocol):
    """Inspects what crosses the boundary toward the model.

    ``kind`` is ``tool``, ``prompt``, ``resource``, ``resource_template``,
    ``tool_result``, ``prompt_result``, ``resource_result`` or ``arguments``;
    ``item`` is the MCP object in wire (camelCase dict) form. Return findings
    and, if you rewrote the item (stripped characters, redacted secrets), the
    new item; leave ``item=None`` when unchanged.
    """

    def scan(self, kind: str, item: Mapping[str, Any]) -> ScanResult: ...


@runtime_checkable
class AuditSink(Protocol):
    """Persists batches of audit records.

    Called off the request path by the audit pipeline with already
    serialized, redacted and chained records (plain dicts). Raise on failure:
    the pipeline spills and retries, it never drops.
    """

    def write(self, records: Sequence[Mapping[str, Any]]) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class AlertSink(Protocol):
    """Receives what the anomaly monitor of ``mcp-guard serve`` finds.

    ``finding`` is the JSON object ``mcp-guard audit anomalies --json`` prints (kind, subject,
    source_ip, server, target, score, window, events, why) plus ``action`` (what was done:
    ``lock`` or ``none``). Called off the request path, one finding at a time; raise on failure:
    the monitor logs it and goes on (a sink that wants retries, like the webhook, retries itself).
    """

    async def alert(self, finding: Mapping[str, Any]) -> None: ...


@runtime_checkable
class Auditor(Protocol):
    """What the guard hands events to. ``record`` must not block on I/O.

    Raise :class:`~mcp_guard.errors.AuditUnavailable` when the event cannot
    be accepted (buffer full, sinks down) and the configuration requires
    audit; the guard then denies the request. ``record_sync`` is awaited
    instead when the configuration demands the event be durable before the
    response is sent.
    """

    @property
    def synchronous(self) -> bool: ...

    def record(self, event: AuditEvent) -> None: ...

    async def record_sync(self, event: AuditEvent) -> None: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class RateDecision:
    """Outcome of one rate-limit hit."""

    allowed: bool
    count: int
    limit: int
    retry_after: float = 0.0


@runtime_checkable
class StateStore(Protocol):
    """Shared state: counters, key-value with TTL, sets and change notification.

    Every method is atomic in the backend, so several replicas sharing one
    store agree (a limit of N allows N calls fleet-wide, not N per replica).
    """

    async def hit(self, key: str, limit: int, window: float) -> RateDecision: ...

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None: ...

    async def delete(self, key: str) -> None: ...

    async def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int: ...

    async def set_if_absent(self, key: str, value: bytes, ttl: float | None = None) -> bool: ...

    async def take(self, key: str) -> bytes | None: ...

    async def keys(self, prefix: str = "") -> builtins.list[str]: ...

    async def sadd(self, key: str, member: str) -> None: ...

    async def srem(self, key: str, member: str) -> None: ...

    async def sismember(self, key: str, member: str) -> bool: ...

    async def smembers(self, key: str) -> builtins.set[str]: ...

    async def publish(self, channel: str, message: str) -> None: ...

    def subscribe(self, channel: str) -> AsyncIterator[str]: ...

    async def aclose(self) -> None: ...


class RateLimiter(Protocol):
    """Counts requests against the policy's ``[[limits]]``; raises ``RateLimited`` past one."""

    async def check(
        self, principal: Principal, request: AccessRequest, limits: Sequence[LimitSpec]
    ) -> None: ...


class ServerIntegration(Protocol):
    """How a guard installs itself on an MCP server framework (the ``mcp`` SDK's is built in).

    The core holds one registered integration and calls it from
    :meth:`Guard.protect <mcp_guard.guard.Guard.protect>`, so the dependency
    points from the integration to the core and never back.
    """

    def protect(self, guard: Any, server: Any, **options: Any) -> Any: ...

    def http_app(self, guard: Any, server: Any, **kwargs: Any) -> Any: ...

    def http_server(self, guard: Any, server: Any, **options: Any) -> Any: ...

    def token_verifier(self, guard: Any) -> Any: ...

    def request_state_security(self, key: bytes | None, audience: str | None, ttl: float) -> Any: ...
