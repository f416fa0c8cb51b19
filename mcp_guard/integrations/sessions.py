"""Streamable HTTP sessions (2025-11-25 ``Mcp-Session-Id``) owned by the principal that opened them.

The SDK's session manager serves any request that carries a live session id.
With ``[authn.oauth]`` it compares the caller's token identity with the one
that opened the session; without it (anonymous access, API keys read by the
guard's middleware) it cannot, and a session id alone was enough to read the
session's notification stream, send requests on it or end it. It also opened
a session for every ``initialize``, even one the guard then refused.

:class:`SessionGate` sits in front of the session manager (the SDK's, wrapped,
not replaced) and, for every request of the stateful 2025-11-25 era:

* without a session id (the request that opens one): authenticates the caller
  first - a refused credential is answered 401 / -32001 (as the guard would
  answer the ``initialize``) and never reaches the session manager - and
  admits it only under the caps on open sessions: at a principal's own cap its
  oldest session is closed to make room (clients that never end their sessions
  keep working; a flooding principal only evicts itself), at the overall cap the
  request is refused;
* with a session id the gate handed out: resolves the presented credential
  (from the credential cache when it can, no I/O) and lets the request through
  only when it is the principal that opened the session. Anyone else - another
  principal, no credential, an invalid one - gets the SDK's own answer for an
  unknown session (404 "Session not found"), so the refusal does not say
  whether the session exists.

Every refusal is audited. Anonymous sessions belong to the anonymous
principal: anyone may be anonymous, so for them the session id is the only
secret (it is a random 128-bit value the SDK hands out only to the caller that
opened the session). A named principal never uses an anonymous session, nor
the other way round.

A session belongs to the principal's subject, tenant, issuer and method of
authentication, and for API keys to the key itself; refreshed tokens (JWTs,
introspected tokens) keep their sessions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from mcp_types import INVALID_REQUEST, ErrorData, JSONRPCError
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from starlette.responses import Response

from ..errors import (
    ACCESS_DENIED,
    AUTHENTICATION_REQUIRED,
    GUARD_UNAVAILABLE,
    RATE_LIMITED,
    GuardError,
    RateLimited,
)
from ..model import Principal, RequestContext
from ..protocols import Credential

if TYPE_CHECKING:
    from ..guard import Guard

#: Open sessions at most, all principals together (the SDK's own limit is set to the same).
DEFAULT_MAX_SESSIONS = 1000
#: Open sessions at most per principal (anonymous callers: per source address).
DEFAULT_MAX_SESSIONS_PER_PRINCIPAL = 32

#: Scope key a refusal that is already on the audit trail carries (``AuditHttpRefusals`` skips it).
AUDITED = "mcp_guard.audited"

_Key = tuple[Any, ...]


def bearer(headers: Any) -> str | None:
    """The bearer token of an ``Authorization`` header; a malformed header is an invalid credential."""
    if headers is None:
        return None
    getlist = getattr(headers, "getlist", None)
    values = list(getlist("authorization")) if getlist is not None else [headers.get("authorization")]
    values = [v for v in values if v and v.strip()]
    if not values:
        return None
    scheme, _, token = values[0].strip().partition(" ")
    token = token.strip()
    if len(values) > 1 or scheme.lower() != "bearer" or not token or any(c in token for c in " \t,"):
        # A malformed Authorization header is a presented-but-invalid credential, and so are two
        # (which one counts would depend on the reader) or two folded into one ("Bearer a, Bearer b").
        return "\x00malformed"
    return str(token)


def owner_key(principal: Principal, anonymous: bool) -> _Key:
    """Who owns a session: the same person through the same kind of credential (an API key: that key)."""
    key_id = principal.credential_id if principal.auth_method == "api_key" else None
    return (anonymous, principal.auth_method, principal.issuer, principal.tenant, principal.subject, key_id)


@dataclass(slots=True)
class _Owner:
    key: _Key
    bucket: _Key  # what the per-principal cap counts: the owner, anonymous ones per source address
    opened: float = 0.0


class SessionGate:
    """ASGI layer in front of the SDK's ``StreamableHTTPASGIApp``; see the module docstring.

    ``max_sessions`` and ``max_sessions_per_principal`` cap open sessions
    (``None``: no cap); past a cap the opening request is refused (HTTP 503
    overall, 429 per principal, JSON-RPC -32029 "Too many open sessions") and
    audited. Install it with :func:`guard_sessions`.
    """

    def __init__(
        self,
        app: Any,
        guard: Guard,
        manager: Any,
        *,
        max_sessions: int | None = DEFAULT_MAX_SESSIONS,
        max_sessions_per_principal: int | None = DEFAULT_MAX_SESSIONS_PER_PRINCIPAL,
    ) -> None:
        for name, cap in (
            ("max_sessions", max_sessions),
            ("max_sessions_per_principal", max_sessions_per_principal),
        ):
            if cap is not None and (not isinstance(cap, int) or cap < 1):
                raise ValueError(f"{name} must be a positive number of sessions or None, not {cap!r}")
        self.app = app
        self.guard = guard
        self._manager = manager
        self.max_sessions = max_sessions
        self.max_sessions_per_principal = max_sessions_per_principal
        self._owners: dict[str, _Owner] = {}
        self._buckets: dict[_Key, set[str]] = {}
        self._pending: dict[_Key, int] = {}
        self._pending_total = 0
        if manager is not None:
            _live(manager)  # fail now, not on the first request, if the SDK changed shape

    @property
    def manager(self) -> Any:
        """The session manager; FastMCP's endpoint creates its own when the app starts."""
        return self._manager if self._manager is not None else self.app.session_manager

    # ------------------------------------------------------------------ ASGI
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        if getattr(self.manager, "stateless", False):
            # No session is handed out, so an ``Mcp-Session-Id`` is only the client's word: it must
            # not become a session (per-session flows, audit grouping) the client picks per request.
            await self.app(_without_session(scope), receive, send)
            return
        headers = _Headers(scope)
        version = headers.get("mcp-protocol-version")
        if version is not None and version not in HANDSHAKE_PROTOCOL_VERSIONS:
            await self.app(scope, receive, send)  # 2026-07-28: no sessions, every request authenticates
            return
        self.guard.ensure_background()
        session = headers.get("mcp-session-id")
        if session is None:
            await self._open(scope, receive, send, headers)
        else:
            await self._use(scope, receive, send, headers, session)

    # ------------------------------------------------------------------ a request on a session
    async def _use(self, scope: Any, receive: Any, send: Any, headers: _Headers, session: str) -> None:
        owner = self._owners.get(session)
        if owner is not None and session not in _live(self.manager):
            self._forget(session)  # ended in the SDK (idle timeout, crash)
            owner = None
        if owner is None:
            # Not a session this gate handed out: the SDK answers (404 for an unknown or expired id).
            await self.app(scope, receive, send)
            return
        try:
            principal, key = await self._identify(scope, headers)
        except GuardError as exc:
            self._audit(
                scope, session, None, f"credential refused on a bound session: {exc.reason}", exc.code
            )
            await _not_found(scope, receive, send)
            return
        if key != owner.key:
            self._audit(scope, session, principal, "session belongs to another principal", ACCESS_DENIED)
            await _not_found(scope, receive, send)
            return
        status = await _forward(self.app, scope, receive, send)
        if status == 404 or (scope.get("method") == "DELETE" and status is not None and status < 400):
            self._forget(session)
            if status != 404:  # ended by its owner: as much on record as a session the cap closes
                ended = "session ended by its client"
                self._audit(scope, session, principal, ended, None, decision="allow", refusal=False)

    # ------------------------------------------------------------------ the request that opens a session
    async def _open(self, scope: Any, receive: Any, send: Any, headers: _Headers) -> None:
        try:
            principal, key = await self._identify(scope, headers)
        except GuardError as exc:
            self._audit(
                scope,
                None,
                getattr(exc, "owner", None),  # whose revoked or expired key it was, if genuine
                exc.reason,
                exc.code,
                method="http/authenticate",
                kind="authn",
                decision="error" if exc.code == GUARD_UNAVAILABLE else "deny",
                detail="no session opened",
            )
            await _refuse(scope, receive, send, exc, presented=headers.get("authorization") is not None)
            return
        anonymous = key[0]
        bucket = key + ((_source(scope),) if anonymous else ())
        await self._make_room(scope, principal, bucket)
        full = self._full(bucket)
        if full is not None:
            status, reason = full
            self._audit(scope, None, principal, reason, RATE_LIMITED, detail="no session opened")
            await _answer(scope, receive, send, status, RATE_LIMITED, "Too many open sessions")
            return
        self._pending[bucket] = self._pending.get(bucket, 0) + 1
        self._pending_total += 1
        reserved = True

        async def bind(message: Any) -> None:
            nonlocal reserved
            if message.get("type") == "http.response.start" and int(message.get("status", 500)) < 400:
                session = _response_header(message, b"mcp-session-id")
                if session is not None and reserved:
                    # Bound before the id leaves: nobody can use it before it has an owner.
                    reserved = False
                    self._release(bucket)
                    self._owners[session] = _Owner(key, bucket, time.monotonic())
                    self._buckets.setdefault(bucket, set()).add(session)
            await send(message)

        try:
            await self.app(scope, receive, bind)
        finally:
            if reserved:
                self._release(bucket)

    # ------------------------------------------------------------------ bookkeeping
    async def _identify(self, scope: Any, headers: _Headers) -> tuple[Principal, _Key]:
        user = scope.get("user")
        if isinstance(user, AuthenticatedUser):
            token: str | None = (
                user.access_token.token
            )  # verified by the SDK's auth, with the guard's verifier
        else:
            token = bearer(headers)
        principal = self.guard.resolver.peek(token)  # the credential cache: no I/O on the hot path
        if principal is None:
            principal = await self.guard.identify(Credential(token, "http", _source(scope)))
        return principal, owner_key(principal, not token)

    async def _make_room(self, scope: Any, principal: Principal, bucket: _Key) -> None:
        """At a principal's cap, close its oldest sessions (audited) so the new one fits."""
        cap = self.max_sessions_per_principal
        if cap is None or self._count(bucket) < cap:
            return
        self._prune(self._buckets.get(bucket, set()))
        held = sorted(self._buckets.get(bucket, ()), key=lambda s: self._owners[s].opened)
        live = _live(self.manager)
        while held and self._count(bucket) >= cap:
            oldest = held.pop(0)
            transport = live.get(oldest)
            self._forget(oldest)
            if transport is not None:
                discard = getattr(self.manager, "_discard_session", None)
                if discard is not None:
                    await discard(oldest, transport)
                else:
                    await transport.terminate()
            self._audit(
                scope,
                oldest,
                principal,
                f"oldest session closed to open a new one: at most {cap} per principal",
                RATE_LIMITED,
                decision="allow",
                detail="session evicted",
            )

    def _full(self, bucket: _Key) -> tuple[int, str] | None:
        """``(HTTP status, audit reason)`` when opening one more session would pass a cap."""
        cap = self.max_sessions_per_principal
        if cap is not None and self._count(bucket) >= cap:
            self._prune(self._buckets.get(bucket, set()))
            held = self._count(bucket)
            if held >= cap:
                return 429, f"principal already has {held} open sessions (at most {cap} per principal)"
        cap = self.max_sessions
        if cap is not None and len(self._owners) + self._pending_total >= cap:
            self._prune(set(self._owners))
            held = len(self._owners) + self._pending_total
            if held >= cap:
                return 503, f"{held} open sessions in all (at most {cap})"
        return None

    def _count(self, bucket: _Key) -> int:
        return len(self._buckets.get(bucket, ())) + self._pending.get(bucket, 0)

    def _prune(self, sessions: set[str]) -> None:
        live = _live(self.manager)
        for session in [s for s in sessions if s not in live]:
            self._forget(session)

    def _release(self, bucket: _Key) -> None:
        self._pending_total -= 1
        left = self._pending.get(bucket, 1) - 1
        if left > 0:
            self._pending[bucket] = left
        else:
            self._pending.pop(bucket, None)

    def _forget(self, session: str) -> None:
        owner = self._owners.pop(session, None)
        if owner is None:
            return
        held = self._buckets.get(owner.bucket)
        if held is not None:
            held.discard(session)
            if not held:
                del self._buckets[owner.bucket]

    def _audit(
        self,
        scope: Any,
        session: str | None,
        principal: Principal | None,
        reason: str,
        code: int | None,
        *,
        method: str = "http/session",
        kind: str = "session",
        decision: str = "deny",
        detail: str | None = None,
        refusal: bool = True,
    ) -> None:
        scope[AUDITED] = True
        where = f"{scope.get('method', '?')} {scope.get('path', '?')}" + (f": {detail}" if detail else "")
        if self.guard.telemetry is not None and refusal:
            self.guard.telemetry.refused(method, decision)
        self.guard.record_nowait(
            self.guard.event(
                method,
                decision,  # type: ignore[arg-type]
                principal=principal,
                context=RequestContext(
                    time=datetime.now(timezone.utc),
                    transport="http",
                    session_id=session,
                    source_ip=_source(scope),
                ),
                reasons=(reason, where),
                error_code=code,
                kind=kind,
                server=self.guard.server,
            )
        )


def guard_sessions(
    app: Any,
    guard: Guard,
    *,
    max_sessions: int | None = DEFAULT_MAX_SESSIONS,
    max_sessions_per_principal: int | None = DEFAULT_MAX_SESSIONS_PER_PRINCIPAL,
) -> SessionGate:
    """Put a :class:`SessionGate` in front of the streamable HTTP endpoint of ``app`` (an SDK Starlette app).

    It goes right in front of the SDK's session manager: behind the SDK's
    bearer auth when the app has it (``[authn.oauth]``), so the standard 401
    flow stays first. Raises ``RuntimeError`` when the app has no such endpoint.
    """
    for route in getattr(app, "routes", ()):
        holder = route
        inner = getattr(route, "app", None)
        if not _is_endpoint(inner):
            holder, inner = inner, getattr(inner, "app", None)  # RequireAuthMiddleware(endpoint)
        if inner is not None and _is_endpoint(inner):
            gate = SessionGate(
                inner,
                guard,
                inner.session_manager,
                max_sessions=max_sessions,
                max_sessions_per_principal=max_sessions_per_principal,
            )
            holder.app = gate
            return gate
    raise RuntimeError("no streamable HTTP endpoint found to guard the sessions of")


# ---------------------------------------------------------------------- helpers
def _is_endpoint(app: Any) -> bool:
    """The SDK's streamable HTTP endpoint, or FastMCP's (its own class around the SDK's manager)."""
    if isinstance(app, StreamableHTTPASGIApp):
        return True
    if type(app).__name__ != "StreamableHTTPASGIApp" or not hasattr(app, "session_manager"):
        return False
    manager = app.session_manager  # FastMCP's is None until the app's lifespan starts
    return manager is None or isinstance(manager, StreamableHTTPSessionManager)


def _live(manager: Any) -> Any:
    """The session ids the SDK's manager still serves (only reachable as a private attribute)."""
    live = getattr(manager, "_server_instances", None)
    if live is None:
        raise RuntimeError("the SDK's session manager no longer exposes its sessions; update mcp_guard")
    return live


class _Headers:
    """Request headers by lower-case name, the first value winning (as the SDK reads them)."""

    def __init__(self, scope: Any) -> None:
        self._h: dict[str, str] = {}
        for name, value in scope.get("headers", ()):
            self._h.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))

    def get(self, name: str) -> str | None:
        return self._h.get(name)


def _without_session(scope: Any) -> Any:
    headers = [(k, v) for k, v in scope.get("headers", ()) if k.lower() != b"mcp-session-id"]
    return {**scope, "headers": headers}


def _source(scope: Any) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


def _response_header(message: Any, name: bytes) -> str | None:
    for key, value in message.get("headers", ()):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


async def _forward(app: Any, scope: Any, receive: Any, send: Any) -> int | None:
    status: int | None = None

    async def watch(message: Any) -> None:
        nonlocal status
        if message.get("type") == "http.response.start":
            status = int(message.get("status", 0))
        await send(message)

    await app(scope, receive, watch)
    return status


async def _answer(
    scope: Any,
    receive: Any,
    send: Any,
    status: int,
    code: int,
    message: str,
    data: Any = None,
    headers: dict[str, str] | None = None,
) -> None:
    """A JSON-RPC error without a request id, the way the SDK's transport answers before any method runs."""
    error = (
        ErrorData(code=code, message=message, data=data)
        if data is not None
        else ErrorData(code=code, message=message)
    )
    body = JSONRPCError(jsonrpc="2.0", id=None, error=error).model_dump_json(
        by_alias=True, exclude_unset=True
    )
    await Response(body, status_code=status, media_type="application/json", headers=headers)(
        scope, receive, send
    )


async def _not_found(scope: Any, receive: Any, send: Any) -> None:
    """Exactly the SDK's answer for a session id it does not know."""
    await _answer(scope, receive, send, 404, INVALID_REQUEST, "Session not found")


async def _refuse(scope: Any, receive: Any, send: Any, exc: GuardError, *, presented: bool) -> None:
    """The guard's refusal of an opening request, with the HTTP status that goes with it."""
    headers: dict[str, str] = {}
    if exc.code == AUTHENTICATION_REQUIRED:
        status = 401
        headers["WWW-Authenticate"] = 'Bearer error="invalid_token"' if presented else "Bearer"
    elif exc.code == RATE_LIMITED:
        status = 429
        retry = exc.retry_after if isinstance(exc, RateLimited) else None
        if retry is not None:
            headers["Retry-After"] = str(max(1, round(retry)))
    elif exc.code == GUARD_UNAVAILABLE:
        status = 503
    else:
        status = 403
    await _answer(scope, receive, send, status, exc.code, exc.public_message, exc.data, headers)


__all__ = [
    "DEFAULT_MAX_SESSIONS",
    "DEFAULT_MAX_SESSIONS_PER_PRINCIPAL",
    "SessionGate",
    "bearer",
    "guard_sessions",
    "owner_key",
]
