"""HTTP glue: the SDK ``TokenVerifier`` adapter, loopback bind checks and Host allow-lists.

With the adapter, the SDK keeps doing what clients expect of an MCP server over
HTTP (401 with ``WWW-Authenticate`` and RFC 9728 metadata, 403 on missing
scopes) while the guard decides who the caller is. Refusals at this layer
happen before any MCP method runs, so they are audited here.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, cast

import anyio
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.transport_security import TransportSecuritySettings

from ..errors import ACCESS_DENIED, AUTHENTICATION_REQUIRED, ConfigError, GuardError
from ..model import RequestContext
from ..protocols import Credential
from .sessions import AUDITED

if TYPE_CHECKING:
    from ..authn.config import OAuthConfig
    from ..guard import Guard

logger = logging.getLogger("mcp_guard.http")


class GuardTokenVerifier:
    """An SDK ``TokenVerifier`` backed by the guard's authenticators and principal cache."""

    def __init__(self, guard: Guard) -> None:
        self.guard = guard

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            principal = await self.guard.identify(Credential(token, "http"))
        except GuardError as exc:
            if self.guard.telemetry is not None:
                self.guard.telemetry.refused("http/authenticate", "deny" if exc.code != -32050 else "error")
            self.guard.record_nowait(
                self.guard.event(
                    "http/authenticate",
                    "deny" if exc.code != -32050 else "error",
                    principal=getattr(exc, "owner", None),  # whose revoked or expired key it was
                    reasons=(exc.reason,),
                    error_code=exc.code,
                    kind="authn",
                    server=self.guard.server,
                )
            )
            return None
        claims: dict[str, Any] = {"roles": sorted(principal.roles), "auth_method": principal.auth_method}
        if principal.tenant:
            claims["tenant"] = principal.tenant
        if principal.issuer:
            claims["iss"] = principal.issuer
        return AccessToken(
            token=token,
            client_id=principal.subject,
            scopes=sorted(principal.scopes),
            expires_at=int(principal.expires_at) if principal.expires_at is not None else None,
            subject=principal.subject,
            claims=claims,
        )


class AuditHttpRefusals:
    """ASGI middleware that audits the refusals the SDK sends before any MCP method runs.

    Its auth layer's 401 and 403, its transport's 400 for a POST (on
    2026-07-28 routing headers that disagree with the body are refused there,
    before the guard's middleware could see them), its DNS-rebinding refusals
    (403 for a foreign ``Origin``, told from ``insufficient_scope`` by the
    missing ``WWW-Authenticate`` challenge, and 421 for a foreign ``Host``),
    and :class:`BodyReadTimeout`'s 408; the principal is named when the guard
    already knows the bearer token that came with it. A request carrying more
    than one ``Authorization`` header is refused here (400) before anything reads one.

    With ``MCPServer(token_verifier=guard.token_verifier(), auth=...)`` the
    SDK answers a request without credentials with 401, and one whose token
    lacks a required scope with 403, without ever reaching the guard's
    middleware. An invalid token is already audited by the verifier; this
    records the other two, so every refused caller leaves a trace. Wrap the
    app the SDK builds: ``AuditHttpRefusals(mcp.streamable_http_app(), guard)``
    (:meth:`Guard.http_app` does exactly that).
    """

    def __init__(self, app: Any, guard: Guard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        given = sum(1 for k, _ in scope.get("headers", ()) if k.lower() == b"authorization")
        if given > 1:
            # Which one would count depends on the reader (the SDK and Starlette take the first,
            # a proxy may take the last): a presented credential that is not one is refused.
            await _send_plain(
                send,
                400,
                b"more than one Authorization header",
                [(b"www-authenticate", b'Bearer error="invalid_request"')],
            )
            self._record(scope, 400, duplicates=given)
            return
        status = 0
        challenge = ""
        held: dict[str, Any] | None = None  # an OAuth refusal's start, until its body is rewritten
        body = b""

        async def watch(message: Any) -> None:
            nonlocal status, challenge, held, body
            if message.get("type") == "http.response.start":
                status = int(message.get("status", 0))
                for k, v in message.get("headers", ()):
                    if k.lower() == b"www-authenticate":
                        challenge = v.decode("latin-1")
                if scope.get("method") == "POST" and _oauth_refusal(status, challenge, message):
                    held = message
                    return
            elif held is not None and message.get("type") == "http.response.body":
                body += message.get("body", b"")
                if message.get("more_body"):
                    return
                start, held = held, None
                new_body = _json_rpc_refusal(status, body)
                headers = [(k, v) for k, v in start.get("headers", ()) if k.lower() != b"content-length"]
                headers.append((b"content-length", str(len(new_body)).encode()))
                await send({**start, "headers": headers})
                await send({"type": "http.response.body", "body": new_body})
                return
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            if scope.get(AUDITED):
                pass  # refused by the session gate, which recorded why
            elif status in (401, 403, 408, 421) or (status == 400 and scope.get("method") == "POST"):
                self._record(scope, status, challenge=challenge)

    def _record(self, scope: Any, status: int, *, challenge: str = "", duplicates: int = 0) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}
        authorization = headers.get("authorization", "").strip()
        if status == 401 and authorization:
            return  # the token verifier refused it and audited why
        client = scope.get("client")
        kind, method, code = "authn", "http/authenticate", ACCESS_DENIED
        if duplicates:
            code = AUTHENTICATION_REQUIRED
            reason = f"Authorization header given {duplicates} times (HTTP 400)"
        elif status == 401:
            code = AUTHENTICATION_REQUIRED
            reason = "no credential presented (HTTP 401)"
        elif status == 403 and "insufficient_scope" in challenge:
            reason = "credential lacks a required scope (insufficient_scope, HTTP 403)"
        else:
            kind, method = "transport", "http/reject"
            if status == 403:
                # DNS-rebinding protection: the SDK's transport answers a foreign Origin with a bare 403.
                reason = f"Origin not allowed (HTTP 403): {headers.get('origin', '')[:200]!r}"
            elif status == 421:
                reason = f"Host not allowed (HTTP 421): {headers.get('host', '')[:200]!r}"
            elif status == 408:
                reason = "request body not received in time (HTTP 408)"
            else:
                # The SDK's transport refused the request before any MCP method ran: routing headers
                # that disagree with the body (2026-07-28), Mcp-Param headers that contradict the
                # arguments, a malformed envelope. Refused already; recorded here.
                routing = ", ".join(
                    f"{name}: {headers[name]!r}" for name in ("mcp-method", "mcp-name") if name in headers
                )
                reason = "rejected by the transport before the guard (HTTP 400)" + (
                    f"; {routing}" if routing else ""
                )
        # Whose credential came with it, when the guard already knows it (its cache only: no I/O).
        scheme, _, token = authorization.partition(" ")
        token = token.strip() if scheme.lower() == "bearer" and not duplicates else ""
        if self.guard.telemetry is not None:
            self.guard.telemetry.refused(method, "deny")
        self.guard.record_nowait(
            self.guard.event(
                method,
                "deny",
                principal=self.guard.resolver.peek(token) if token else None,
                context=RequestContext(
                    time=datetime.now(timezone.utc),
                    transport="http",
                    session_id=headers.get("mcp-session-id"),
                    source_ip=client[0] if client else None,
                ),
                reasons=(reason, f"{scope.get('method', '?')} {scope.get('path', '?')}"),
                error_code=code,
                kind=kind,
                server=self.guard.server,
            )
        )


def _oauth_refusal(status: int, challenge: str, start: Mapping[str, Any]) -> bool:
    """The SDK auth layer's 401 / 403 ``insufficient_scope``: an OAuth JSON body, no JSON-RPC."""
    if status != 401 and not (status == 403 and "insufficient_scope" in challenge):
        return False
    if not challenge.lower().startswith("bearer"):
        return False
    content_type = next((v for k, v in start.get("headers", ()) if k.lower() == b"content-type"), b"")
    return bytes(content_type).lower().startswith(b"application/json")


def _json_rpc_refusal(status: int, oauth_body: bytes) -> bytes:
    """The same refusal as a JSON-RPC error, which MCP clients surface (the SDK client reads a
    JSON-RPC error from a non-2xx body; anything else becomes "Server returned an error
    response"). The OAuth fields stay, under ``error.data``; the challenge stays in the
    ``WWW-Authenticate`` header, where RFC 6750 and RFC 9728 clients read it."""
    try:
        oauth = json.loads(oauth_body)
    except ValueError:
        oauth = None
    if isinstance(oauth, dict) and isinstance(oauth.get("error"), dict):
        # Already a JSON-RPC error (the guard's own refusal in front of FastMCP): keep it as it is.
        return json.dumps({"jsonrpc": "2.0", "id": oauth.get("id"), "error": oauth["error"]}).encode()
    if status == 401:
        code, message = AUTHENTICATION_REQUIRED, "Authentication required"
    else:
        code, message = ACCESS_DENIED, "Access denied"
    error: dict[str, Any] = {"code": code, "message": message}
    if isinstance(oauth, dict):
        error["data"] = {k: v for k, v in oauth.items() if k in ("error", "error_description")}
    return json.dumps({"jsonrpc": "2.0", "id": None, "error": error}).encode()


async def _send_plain(send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    start = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": start + headers})
    await send({"type": "http.response.body", "body": body})


class BodyReadTimeout:
    """ASGI middleware: a request body that has not arrived in full within ``timeout`` seconds is refused.

    uvicorn has no read timeout (its ``timeout_keep_alive`` only runs between
    requests), so a client that sends headers and then trickles or withholds the
    body would hold a connection and a task for ever. The answer is ``408`` with
    ``Connection: close``, after which uvicorn closes the socket; the application
    then sees the client as gone. Counted from the moment the headers are complete.
    """

    def __init__(self, app: Any, timeout: float | None = 30.0) -> None:
        self.app = app
        self.timeout = timeout

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope.get("type") != "http" or self.timeout is None:
            await self.app(scope, receive, send)
            return
        deadline = anyio.current_time() + self.timeout
        complete = started = timed_out = False

        async def timed_receive() -> Any:
            nonlocal complete, timed_out
            if complete:
                return await receive()
            if timed_out:
                return {"type": "http.disconnect"}
            with anyio.move_on_after(max(deadline - anyio.current_time(), 0.0)):
                message = await receive()
                if message.get("type") != "http.request" or not message.get("more_body", False):
                    complete = True
                return message
            timed_out = True
            if started:
                raise TimeoutError("request body not received in time")  # uvicorn drops the connection
            await _send_plain(send, 408, b"request body not received in time", [(b"connection", b"close")])
            return {"type": "http.disconnect"}

        async def guarded_send(message: Any) -> None:
            nonlocal started
            if timed_out:
                return  # the 408 is the answer
            if message.get("type") == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, timed_receive, guarded_send)
        except Exception:
            if not timed_out or started:
                raise


#: Key in a request's ``scope["state"]``: a callable run when the client's connection is lost before
#: the response is complete (uvicorn does not cancel the request's task; an app that can stop its
#: work - the portal's fast lane cancelling a forwarded call - registers it here).
ON_DISCONNECT = "mcp_guard.on_disconnect"
#: What that key holds once the client is gone (it may hang up before the app got to register).
CLIENT_GONE = "gone"


def header_timeout_protocol(seconds: float, parser: str = "auto") -> type[Any]:
    """uvicorn's HTTP protocol, closing a connection whose next request's headers take over ``seconds``.

    Counted from the connection and from the end of each response. uvicorn has no
    such timeout of its own: a peer that connects and sends nothing, or part of a
    request line, is otherwise held for ever. (:class:`BodyReadTimeout` covers the
    body.) Pass the result as ``uvicorn.Config(http=...)``. Its writes go through
    :class:`.coalesce.CoalescingTransport`.

    ``parser`` picks uvicorn's protocol: ``"httptools"`` (llhttp, a C parser: about a
    fifth of the served side's CPU per request less than h11's pure-Python state
    machine; installed by the ``fast`` extra), ``"h11"``, or ``"auto"`` - httptools
    when it is installed, else h11. Both give the same timeouts, the same one write
    per answer and the same disconnect reporting.
    """
    import asyncio

    from .coalesce import CoalescingTransport

    base = _http_protocol(parser)

    class HeaderTimeoutProtocol(base):  # type: ignore[valid-type,misc]
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            # A response's head and body written in one step go out in one system call.
            super().connection_made(cast(asyncio.Transport, CoalescingTransport(transport, self.loop)))
            self._arm_header_timer()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm_header_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None
            cycle = self.cycle
            state = cycle.scope.get("state") if cycle is not None and not cycle.response_complete else None
            if isinstance(state, dict):
                on_gone = state.get(ON_DISCONNECT)
                state[ON_DISCONNECT] = CLIENT_GONE  # for an app that registers only later
                if callable(on_gone):
                    try:
                        on_gone()
                    except Exception:
                        logger.exception("disconnect callback failed")
            super().connection_lost(exc)

        def _arm_header_timer(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
            self._header_timer = self.loop.call_later(seconds, self._header_timeout)

        def _header_timeout(self) -> None:
            self._header_timer = None
            # No request in progress: its headers are still missing (or its unread body trickles).
            waiting = self.cycle is None or self.cycle.response_complete
            if waiting and not self.transport.is_closing():
                self.transport.close()

    return HeaderTimeoutProtocol


def _http_protocol(parser: str) -> type[Any]:
    """uvicorn's protocol class for ``parser`` (see :func:`header_timeout_protocol`)."""
    if parser not in ("auto", "httptools", "h11"):
        raise ConfigError(f"unknown HTTP parser {parser!r}; expected 'auto', 'httptools' or 'h11'")
    if parser != "h11":
        try:
            from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
        except ImportError:
            if parser == "httptools":
                hint = "pip install 'mcp-guard[fast]'"
                raise ConfigError(f"the httptools parser is not installed: {hint}") from None
        else:
            return HttpToolsProtocol
    from uvicorn.protocols.http.h11_impl import H11Protocol

    return H11Protocol


def is_loopback(host: str) -> bool:
    """True for loopback literals and for names that resolve only to loopback addresses."""
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def check_bind(host: str, allow_public_bind: bool) -> None:
    """Refuse to listen beyond loopback unless the operator said so explicitly."""
    if not allow_public_bind and not is_loopback(host):
        raise ConfigError(
            f"refusing to bind {host!r}: not a loopback address; "
            "set allow_public_bind = true to expose the server",
            field="listen.host",
        )


def loopback_security(port: int, extra_hosts: list[str] | None = None) -> TransportSecuritySettings:
    """DNS-rebinding protection that accepts only loopback Host and Origin headers for ``port``."""
    hosts = [f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "127.0.0.1", "localhost"]
    hosts += list(extra_hosts or [])
    origins = [f"http://{h}" for h in hosts] + [f"https://{h}" for h in hosts]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
    )


def auth_settings(cfg: OAuthConfig) -> AuthSettings:
    """The SDK settings for ``[authn.oauth]``: RFC 9728 metadata and required scopes.

    The SDK answers a request without a bearer token with 401 before any token
    verifier or MCP middleware runs; :class:`AuditHttpRefusals` (or
    ``Guard.http_app``) puts those refusals on the audit trail.
    """
    return AuthSettings(
        issuer_url=cfg.issuer_url,
        resource_server_url=cfg.resource_server_url,
        required_scopes=list(cfg.required_scopes) or None,
        service_documentation_url=cfg.service_documentation_url,
        # Audience and issuer are checked by the guard's authenticators, per configured issuer.
        validate_token_resource=False,
    )
