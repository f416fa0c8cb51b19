"""The portal: a guarded MCP server whose handlers are guarded client sessions to upstreams.

Downstream, the guard's own :class:`~mcp_guard.integrations.server.GuardMiddleware`
authenticates, classifies, size-checks and audits refusals of every message;
in ``delegate`` mode it leaves the decision of list and targeted requests to
the handlers here, which route each to a :class:`~.routing.CallerSession`
(server = upstream name, target = the upstream's own name). So every request
is decided exactly once, with the names the policy is written against, and
nothing here bypasses the public chain.
"""

from __future__ import annotations

import base64
import logging
import os
import sys
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

import anyio
from anyio.abc import TaskGroup
from mcp import types
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.session import ServerSession
from mcp.server.subscriptions import (
    InMemorySubscriptionBus,
    ListenHandler,
    PromptsListChanged,
    ResourcesListChanged,
    ResourceUpdated,
    ToolsListChanged,
)
from mcp.shared.exceptions import MCPError

from .._wire import to_wire
from ..config import GuardConfig, ListenSection, UpstreamSection, load_config
from ..errors import (
    ACCESS_DENIED,
    GUARD_UNAVAILABLE,
    AccessDenied,
    ConfigError,
    GuardUnavailable,
)
from ..guard import Guard
from ..integrations.http import AuditHttpRefusals, check_bind, loopback_security
from ..integrations.server import CURRENT_CALLER, GuardMiddleware
from ..model import AccessRequest, Finding, Principal, RequestContext, ResultSummary, ScanResult
from ..sanitize.policy import verdict_action
from .callbacks import CallerLink, PrivateSession, client_callbacks
from .catalog import LIST_KEYS, Catalog, build_catalog, item_key, public_item
from .credentials import KEY_ENV, CredentialBroker, SecretBox, UpstreamCredentials, load_key
from .lockdown import PortalSigner
from .registry import Registry
from .relay import RoundRelay, new_replica_id, owner_of
from .rounds import RoundLink, Rounds
from .routing import CallerSession, ServedLists, UpstreamAdapter
from .subscriptions import Channel, SubscriptionTable
from .upstream import Upstream, check_upstream_url

logger = logging.getLogger("mcp_guard.portal")

_LIST_RESULT: dict[str, Any] = {
    "tool": types.ListToolsResult,
    "prompt": types.ListPromptsResult,
    "resource": types.ListResourcesResult,
    "resource_template": types.ListResourceTemplatesResult,
}

_LIST_CALL = {
    "tool": "list_tools",
    "prompt": "list_prompts",
    "resource": "list_resources",
    "resource_template": "list_resource_templates",
}


def _encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode()


def _decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
        if text.startswith("o:") and int(text[2:]) >= 0:
            return int(text[2:])
    except (ValueError, UnicodeDecodeError):
        pass
    raise MCPError(types.INVALID_PARAMS, "Invalid cursor")


class Portal:
    """Serve the approved upstreams' tools, prompts and resources behind one guard.

    Use as an async context manager (starts and supervises the upstreams), then
    serve :attr:`server` over any transport, or call :meth:`streamable_http_app`
    / :meth:`serve`. ``guard`` is any :class:`Guard`; ``servers`` are the
    config's ``[[servers]]`` entries, approved by being listed.
    """

    def __init__(
        self,
        guard: Guard,
        servers: Sequence[UpstreamSection] = (),
        *,
        name: str = "mcp-guard-portal",
        listen: ListenSection | None = None,
        page_size: int = 100,
        ping_interval: float = 5.0,
        backoff: tuple[float, float] = (0.25, 30.0),
        pool: int = 4,
        callbacks: Sequence[str] = (),
        private_idle: float = 300.0,
        start_timeout: float = 15.0,
        registry: Registry | None = None,
        registry_poll: float = 5.0,
        allowed_upstream_hosts: Sequence[str] = ("127.0.0.1", "localhost", "::1"),
        errlog: TextIO | None = None,
        credentials: CredentialBroker | None = None,
        lockdown: PortalSigner | None = None,
    ) -> None:
        self.guard = guard
        self.credentials = credentials
        self.lockdown = lockdown
        self.listen = listen or ListenSection()
        self.page_size = page_size
        self.start_timeout = start_timeout
        self.registry = registry
        self.registry_poll = registry_poll
        self.allowed_upstream_hosts = frozenset(h.lower() for h in allowed_upstream_hosts)
        self._upstream_kw: dict[str, Any] = {
            "ping_interval": ping_interval,
            "backoff": backoff,
            "errlog": errlog,
            "pool": pool,
            "lockdown": lockdown,
        }
        self._configured: dict[str, UpstreamSection] = {}
        for spec in servers:
            if spec.url is not None:
                check_upstream_url(spec.url, field=f"servers.{spec.name}.url")
            self._configured[spec.name] = spec
        self.callbacks = frozenset(callbacks)
        self.private_idle = private_idle
        self._private: list[tuple[weakref.ref[Any], str, PrivateSession]] = []
        self._pooled: dict[tuple[Any, ...], PrivateSession] = {}
        self._pool_locks: dict[tuple[Any, ...], anyio.Lock] = {}
        self._levels: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
        #: Names this process in the handles of its parked calls (see :mod:`.relay`).
        self.replica = new_replica_id()
        self._rounds = Rounds(self.replica)
        # Only upstreams that call back park calls; without any there is nothing to relay.
        self._relay = (
            RoundRelay(guard.store, self.replica, self._rounds)
            if guard.store is not None and callbacks
            else None
        )
        self.upstreams: dict[str, Upstream] = {}
        self._served: dict[str, ServedLists] = {}
        self._catalog = Catalog()
        self._reverse: dict[str, dict[tuple[str, str], str]] = {k: {} for k in LIST_KEYS}
        self._sessions: weakref.WeakSet[Any] = weakref.WeakSet()
        self._subs = SubscriptionTable()
        self._listens: dict[InMemorySubscriptionBus, ListenHandler] = {}
        #: 2025-11-25 connections whose teardown already drops their subscriptions.
        self._closing: weakref.WeakSet[Any] = weakref.WeakSet()
        #: The shared session each upstream's subscriptions were made on (a new one: re-subscribe).
        self._subscribed_on: dict[str, Any] = {}
        self._tg: TaskGroup | None = None
        self._stack: AsyncExitStack | None = None
        self._scopes: dict[str, anyio.CancelScope] = {}
        #: Extra ``streamable_http_app`` arguments: the SDK's auth (401 + RFC 9728) and login routes
        #: when the config has ``[authn.oauth]`` / ``[authn.passwords]``.
        self.http_options: dict[str, Any] = {}
        self._screened: dict[str, tuple[int, tuple[tuple[str, str, str], ...]]] = {}
        self.middleware = GuardMiddleware(guard, server=name, read_env=False, delegate=True)
        self.server = self._build_server(name)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_config(cls, path: str | Path, **overrides: Any) -> Portal:
        """Build the guard and the portal from one ``guard.toml``; ``overrides`` go to the guard."""
        config = load_config(path)
        return cls.from_guard_config(config, **overrides)

    @classmethod
    def from_guard_config(
        cls,
        config: GuardConfig,
        *,
        secrets_key: str | Path | None = None,
        lockdown_key: str | Path | None = None,
        **overrides: Any,
    ) -> Portal:
        """The portal of ``mcp-guard serve``.

        The credential broker shares the guard's state store; its AES key comes
        from ``MCP_GUARD_SECRETS_KEY``, ``secrets_key`` or
        ``<config dir>/.mcp-guard/secrets.key``. Without any key, upstreams
        that keep per-user credentials are refused (never served with shared
        ones). ``lockdown_key`` is the Ed25519 key file (created if absent)
        that signs every request to URL upstreams.
        """
        from ..config import build_guard

        portal_kw = {k: overrides.pop(k) for k in list(overrides) if k in _PORTAL_KW}
        guard: Guard = build_guard(config, **overrides)
        servers = [resolve_spec(config, s) for s in config.servers]
        settings = config.portal
        registry = portal_kw.pop("registry", None)
        if registry is None and guard.store is not None:
            registry = Registry(guard.store)
        declared = {s.name: s.credentials for s in config.servers if s.credentials != "shared"}
        if "credentials" not in portal_kw and guard.store is not None:
            key_file = (
                Path(secrets_key) if secrets_key is not None else config.resolve(settings.secrets_key_file)
            )
            box = None
            if os.environ.get(KEY_ENV) or key_file.exists():
                box = SecretBox(load_key(key_file, create=False))
            portal_kw["credentials"] = CredentialBroker(guard.store, box, declared=declared)
        elif declared and "credentials" not in portal_kw:
            raise ConfigError("per-user upstream credentials need a state store", field="servers.credentials")
        lockdown_file = lockdown_key if lockdown_key is not None else settings.lockdown_key_file
        if lockdown_file is not None and "lockdown" not in portal_kw:
            portal_kw["lockdown"] = PortalSigner.from_file(config.resolve(str(lockdown_file)))
        portal_kw.setdefault("callbacks", [s.name for s in config.servers if s.callbacks])
        portal_kw.setdefault("allowed_upstream_hosts", settings.allowed_upstream_hosts)
        portal_kw.setdefault("page_size", settings.page_size)
        portal_kw.setdefault("private_idle", settings.private_idle)
        listen = config.listen
        tls = {
            k: str(config.resolve(v))
            for k, v in (("tls_certfile", listen.tls_certfile), ("tls_keyfile", listen.tls_keyfile))
            if v
        }
        portal = cls(
            guard,
            servers,
            name=config.guard.server or "mcp-guard-portal",
            listen=listen.model_copy(update=tls) if tls else listen,
            registry=registry,
            **portal_kw,
        )
        portal.http_options.update(_http_auth(config, guard))
        return portal

    def _lister(self, kind: str) -> Any:
        model = _LIST_RESULT[kind]

        async def handler(ctx: Any, params: types.PaginatedRequestParams | None) -> Any:
            # Lists differ per caller: never cacheable across principals.
            return model.model_validate(
                {**await self._list(ctx, params, kind), "ttlMs": 0, "cacheScope": "private"}
            )

        return handler

    def _build_server(self, name: str) -> Server[Any]:
        server: Server[Any] = Server(
            name,
            on_list_tools=self._lister("tool"),
            on_list_prompts=self._lister("prompt"),
            on_list_resources=self._lister("resource"),
            on_list_resource_templates=self._lister("resource_template"),
            on_call_tool=self._call_tool,
            on_get_prompt=self._get_prompt,
            on_read_resource=self._read_resource,
            on_subscribe_resource=self._subscribe,
            on_unsubscribe_resource=self._unsubscribe,
            on_subscriptions_listen=self._listen,
            on_completion=self._complete,
            get_tool_input_schema=self._tool_schema,
        )
        # Kept per downstream connection and applied by the portal to the log messages it
        # forwards; not forwarded: a shared upstream session serves many callers, and one
        # caller's level must not change what another receives.
        server.add_request_handler("logging/setLevel", types.SetLevelRequestParams, self._set_level)
        server.middleware.append(self.middleware)
        return server

    # ------------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> Portal:
        stack = AsyncExitStack()
        tg = await stack.enter_async_context(anyio.create_task_group())
        self._stack, self._tg = stack, tg
        for spec in self._configured.values():
            self._start(spec)
        if self.registry is not None:
            await self._sync_registry()
            tg.start_soon(self._watch_registry)
        tg.start_soon(self._reap_private)
        if self._relay is not None:
            tg.start_soon(self._relay.run)
        with anyio.move_on_after(self.start_timeout):
            for upstream in list(self.upstreams.values()):
                await upstream.wait_up(self.start_timeout)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._stack is not None and self._tg is not None
        self._tg.cancel_scope.cancel()
        await self._stack.aclose()
        self._tg = self._stack = None

    def _start(self, spec: UpstreamSection) -> None:
        assert self._tg is not None
        upstream = Upstream(
            spec, on_change=self._changed, on_notification=self._upstream_note, **self._upstream_kw
        )
        self.upstreams[spec.name] = upstream
        scope = anyio.CancelScope()
        self._scopes[spec.name] = scope

        async def supervise() -> None:
            with scope:
                await upstream.run()

        self._tg.start_soon(supervise)

    async def _stop(self, name: str) -> None:
        scope = self._scopes.pop(name, None)
        if scope is not None:
            scope.cancel()
        if self.upstreams.pop(name, None) is not None:
            await self._rebuild()

    # ------------------------------------------------------------------ registry (run-time servers)
    async def _sync_registry(self) -> None:
        assert self.registry is not None
        try:
            entries = await self.registry.entries()
        except Exception:
            logger.exception("server registry unreadable; keeping the current upstreams")
            return
        wanted: dict[str, UpstreamSection] = {}
        revoked = {e.name for e in entries if e.status == "revoked"}
        for name, spec in self._configured.items():
            if name not in revoked:
                wanted[name] = spec
        for entry in entries:
            if entry.status != "approved" or entry.name in self._configured:
                continue
            try:
                spec = entry.spec()
                if spec.url is not None:
                    check_upstream_url(
                        spec.url, self.allowed_upstream_hosts, field=f"servers.{entry.name}.url"
                    )
            except (ConfigError, ValueError) as exc:
                logger.warning("registered server %r refused: %s", entry.name, exc)
                continue
            wanted[entry.name] = spec
        for name in [n for n in self.upstreams if n not in wanted or wanted[n] != self.upstreams[n].spec]:
            await self._stop(name)
        for name, spec in wanted.items():
            if name not in self.upstreams:
                self._start(spec)

    async def _watch_registry(self) -> None:
        assert self.registry is not None
        while True:
            await self.registry.wait_change(self.registry_poll)
            await self._sync_registry()

    # ------------------------------------------------------------------ catalog
    async def _changed(self, upstream: Upstream) -> None:
        await self._rebuild()
        session = upstream.session if upstream.state == "up" else None
        if session is not None and self._subscribed_on.get(upstream.name) is not session:
            self._subscribed_on[upstream.name] = session
            uris = self._subs.uris((upstream.name,))
            if uris and self._tg is not None:
                self._tg.start_soon(self._resubscribe, upstream, session, uris)

    async def _rebuild(self) -> None:
        """Recompute what each live upstream serves (sanitizer verdicts, pins) and the routing table."""
        before = {k: set(v) for k, v in self._catalog.routes.items()}
        served: dict[str, ServedLists] = {}
        parts: list[tuple[str, str, Mapping[str, Sequence[Mapping[str, Any]]]]] = []
        for upstream in self.upstreams.values():
            if upstream.state != "up":
                continue
            try:
                lists = await self._screen(upstream)
            except Exception:
                logger.exception("screening upstream %r failed: withholding all its items", upstream.name)
                continue
            served[upstream.name] = ServedLists(lists)
            parts.append((upstream.name, upstream.prefix, lists))
        catalog = build_catalog(parts)
        reverse: dict[str, dict[tuple[str, str], str]] = {k: {} for k in LIST_KEYS}
        for kind, routes in catalog.routes.items():
            for public, route in routes.items():
                reverse[kind][(route.upstream, route.name)] = public
        self._served, self._catalog, self._reverse = served, catalog, reverse
        changed = [k for k in LIST_KEYS if set(catalog.routes[k]) != before[k]]
        if changed and self._tg is not None:
            self._tg.start_soon(self._announce, changed)

    async def _screen(self, upstream: Upstream) -> dict[str, list[dict[str, Any]]]:
        """Items of ``upstream`` anyone may be served: sanitizer-blocked and unapproved changes withheld."""
        guard = self.guard
        policy = guard.sanitize_policy(upstream.name)
        out: dict[str, list[dict[str, Any]]] = {}
        findings: list[Finding] = []
        notices: list[str] = []
        total = withheld = 0
        for kind, key in LIST_KEYS.items():
            items = list(upstream.lists.get(kind, []))
            total += len(items)
            if items:
                data, pin_notes = await guard.screen_pins(upstream.name, kind, {key: items}, key)
                findings.extend(pin_notes)
                withheld += len(items) - len(data.get(key, []))
                items = [i for i in data.get(key, []) if isinstance(i, dict)]
            kept: list[dict[str, Any]] = []
            list_level = guard.list_findings(kind, items) if guard.sanitizers else {}
            for index, item in enumerate(items):
                if guard.sanitizers:
                    scanned = guard.scan_item(kind, item)
                    if index in list_level:
                        scanned = ScanResult((*scanned.findings, *list_level[index]), scanned.item)
                    findings.extend(
                        replace(f, message=f"{kind} {item_key(kind, item)!r}: {f.message}")
                        for f in scanned.findings
                    )
                    action = verdict_action(policy, scanned)
                    if action == "rewrite":
                        item = scanned.item
                    elif action == "withhold":
                        notices.append(
                            f"upstream {upstream.name!r} {kind} {item_key(kind, item)!r} withheld: "
                            + "; ".join(f"{f.rule} at {f.field}" for f in scanned.findings)
                        )
                        withheld += 1
                        continue
                kept.append(item)
            out[kind] = kept
        outcome = (withheld, tuple((f.rule, f.field, f.message) for f in findings))
        if findings and self._screened.get(upstream.name) != outcome:
            # One log line and one record per change of what an upstream's screening found; a
            # rebuild for another upstream's sake does not repeat them.
            for notice in notices:
                logger.warning("%s", notice)
            guard.record_nowait(
                guard.event(
                    "upstream/screen",
                    "deny" if withheld else "allow",
                    principal=None,
                    reasons=(f"{withheld} of {total} item(s) withheld",),
                    result=ResultSummary(items=total - withheld, withheld=withheld, findings=tuple(findings)),
                    kind="sanitize",
                    server=upstream.name,
                )
            )
        self._screened[upstream.name] = outcome
        return out

    async def _announce(self, kinds: Sequence[str]) -> None:
        logger.debug("announcing %s list change to %d session(s)", kinds, len(self._sessions))
        events: list[Any] = []
        if "tool" in kinds:
            events.append(ToolsListChanged())
        if "prompt" in kinds:
            events.append(PromptsListChanged())
        if "resource" in kinds or "resource_template" in kinds:
            events.append(ResourcesListChanged())
        for bus in list(self._listens):
            for event in events:
                await bus.publish(event)  # each stream delivers only the kinds it asked for
        for session in list(self._sessions):
            try:
                if "tool" in kinds:
                    await session.send_tool_list_changed()
                if "prompt" in kinds:
                    await session.send_prompt_list_changed()
                if "resource" in kinds or "resource_template" in kinds:
                    await session.send_resource_list_changed()
            except Exception:
                logger.debug("list change not delivered to a downstream session", exc_info=True)
                self._sessions.discard(session)

    async def _upstream_note(self, upstream: Upstream, note: Any) -> None:
        if isinstance(note, types.ResourceUpdatedNotification):
            await self._resource_updated((upstream.name,), str(note.params.uri))

    def _channel_notes(self, channel: Channel) -> Callable[[Any], Awaitable[None]]:
        """The message handler of a per-user connection: its updates reach only its own subscribers."""

        async def on_message(message: Any) -> None:
            root = getattr(message, "root", message)
            if isinstance(root, types.ResourceUpdatedNotification):
                await self._resource_updated(channel, str(root.params.uri))

        return on_message

    async def _resource_updated(self, channel: Channel, uri: str) -> None:
        route = self._catalog.route_uri(uri)
        if route is None or route.upstream != channel[0]:
            return  # withheld, colliding or gone since: nobody is told about it
        await self._subs.deliver(channel, uri)

    # ------------------------------------------------------------------ handler plumbing
    def _caller(self, ctx: Any) -> tuple[Principal, RequestContext]:
        caller = CURRENT_CALLER.get()
        if caller is None:
            # The handler was reached without the guard middleware deciding who calls: refuse.
            raise MCPError(GUARD_UNAVAILABLE, GuardUnavailable.public_message)
        connection = _connection(ctx)
        if connection is not None and ctx.protocol_version and ctx.protocol_version < "2026":
            self._sessions.add(connection)
        return caller

    def _session(
        self, upstream_name: str, principal: Principal, rc: RequestContext, acquire: Any = None
    ) -> CallerSession:
        upstream = self.upstreams.get(upstream_name)
        served = self._served.get(upstream_name)
        if upstream is None or served is None:
            raise MCPError(GUARD_UNAVAILABLE, "Upstream server unavailable")
        adapter = UpstreamAdapter(upstream, served, acquire)
        return CallerSession(self.guard, adapter, principal=principal, context=rc)

    @asynccontextmanager
    async def _routed(
        self, ctx: Any, upstream_name: str, principal: Principal, rc: RequestContext
    ) -> AsyncIterator[CallerSession]:
        """The caller's session to an upstream.

        The shared session, unless the upstream calls back (a private session per
        downstream connection, bound to the request in flight) or keeps per-user
        credentials (a pooled session - for stdio a process - per subject or
        tenant, opened with that caller's secrets). The private session is only
        acquired after the guard allowed the request.
        """
        connection = _connection(ctx)
        wants_callbacks = upstream_name in self.callbacks and connection is not None and _legacy(ctx)
        per_user = await self._per_user(upstream_name)
        if not wants_callbacks and not per_user:
            yield self._session(upstream_name, principal, rc)
            return
        entry = (ctx.session, ctx.request_id)
        links: list[CallerLink] = []

        async def acquire() -> Any:
            creds = await self._credentials_for(upstream_name, principal, rc) if per_user else None
            if wants_callbacks and (creds is None or creds.scope == "subject"):
                private = await self._private_for(connection, upstream_name, principal, ctx, creds)
            else:
                assert creds is not None
                private = await self._pooled_for(upstream_name, principal, creds)
            link = private.link
            link.in_flight.append(entry)
            link.last_used = time.monotonic()
            links.append(link)
            return private.session

        try:
            yield self._session(upstream_name, principal, rc, acquire)
        finally:
            for link in links:
                link.in_flight.remove(entry)
                link.last_used = time.monotonic()

    async def _per_user(self, upstream_name: str) -> bool:
        """Whether the upstream is served only with each caller's own credentials (fails closed)."""
        if self.credentials is None:
            return False
        try:
            return await self.credentials.scope(upstream_name) is not None
        except Exception as exc:
            logger.warning("credential scope of %r unreadable: %s", upstream_name, exc)
            raise MCPError(GUARD_UNAVAILABLE, GuardUnavailable.public_message) from None

    def _multi_round(self, ctx: Any, upstream_name: str) -> bool:
        """A 2026-07-28 request to an upstream that may call back: questions travel in results."""
        return upstream_name in self.callbacks and bool(ctx.protocol_version) and not _legacy(ctx)

    async def _round_trip(
        self,
        ctx: Any,
        upstream_name: str,
        principal: Principal,
        rc: RequestContext,
        binding: tuple[str, str],
        params: Any,
        call: Any,
    ) -> Any:
        """Run (or resume) a call whose upstream may ask the client something: see :mod:`.rounds`."""
        state = getattr(params, "request_state", None)
        if state:
            responses = getattr(params, "input_responses", None) or {}
            owner = owner_of(state)
            if self._relay is not None and owner is not None and owner != self.replica:
                return await self._relayed_round(owner, state, principal, binding, responses, upstream_name)
            parked = self._rounds.resume(state, principal.subject, binding, responses)
            return await self._rounds.step(parked, (ctx.session, ctx.request_id))
        # Answers that come without a requestState we issued answer nothing: they are ignored.
        upstream = self.upstreams.get(upstream_name)
        if upstream is None or upstream.state != "up" or self._tg is None:
            raise MCPError(GUARD_UNAVAILABLE, "Upstream server unavailable")
        parked, link = self._rounds.start(
            self._tg, principal, binding, upstream.spec.timeout, self.guard, upstream_name
        )
        callbacks = _round_callbacks(link, ctx)
        per_user = await self._per_user(upstream_name)

        async def open_and_call(stack: AsyncExitStack, _: RoundLink) -> Any:
            async def acquire() -> Any:
                # Opened only after the guard allowed the call (inside the guarded session).
                creds = await self._credentials_for(upstream_name, principal, rc) if per_user else None
                return await upstream.open_private(stack, callbacks, creds)

            return await call(self._session(upstream_name, principal, rc, acquire))

        self._tg.start_soon(parked.run, open_and_call, link)
        return await self._rounds.step(parked, (ctx.session, ctx.request_id))

    async def _relayed_round(
        self,
        owner: str,
        state: str,
        principal: Principal,
        binding: tuple[str, str],
        responses: Mapping[str, Any],
        upstream_name: str,
    ) -> Any:
        """Hand a round of a call parked on another replica to that replica and return its outcome."""
        assert self._relay is not None
        upstream = self.upstreams.get(upstream_name)
        timeout = upstream.spec.timeout if upstream is not None else 30.0
        return await self._relay.forward(owner, state, principal.subject, binding, responses, timeout + 1.0)

    async def _credentials_for(
        self, name: str, principal: Principal, rc: RequestContext
    ) -> UpstreamCredentials:
        """The caller's own upstream secrets; a caller without any is refused (never a shared fallback)."""
        assert self.credentials is not None
        try:
            creds = await self.credentials.for_principal(name, principal)
        except Exception as exc:
            logger.warning("credentials for %r unreadable: %s", name, exc)
            raise MCPError(GUARD_UNAVAILABLE, GuardUnavailable.public_message) from None
        if creds is None:
            self.guard.record_nowait(
                self.guard.event(
                    "credentials",
                    "deny",
                    principal=principal,
                    context=rc,
                    reasons=(f"no upstream credentials for {principal.subject!r} on {name!r}",),
                    error_code=ACCESS_DENIED,
                    server=name,
                )
            )
            raise MCPError(ACCESS_DENIED, "Access denied: no upstream credentials are stored for you")
        return creds

    async def _pooled_for(
        self, name: str, principal: Principal, creds: UpstreamCredentials
    ) -> PrivateSession:
        """One upstream session (for stdio: one process) per credential owner, closed when idle."""
        key = (name, *creds.fingerprint())
        lock = self._pool_locks.setdefault(key, anyio.Lock())
        async with lock:  # concurrent first calls of one user start one process, not several
            private = self._pooled.get(key)
            if private is not None and private.session is not None:
                return private
            # Tenant-wide sessions are shared by several users: nothing may call back into one of them.
            link = CallerLink(self.guard, name, principal, self._level_of)
            callbacks: dict[str, Any] = {"logging_callback": link.logging} if creds.scope == "subject" else {}
            callbacks["message_handler"] = self._channel_notes(key)
            private = await self._hold(name, link, callbacks, creds)
            self._pooled[key] = private
            return private

    async def _hold(
        self, name: str, link: CallerLink, callbacks: Mapping[str, Any], creds: UpstreamCredentials | None
    ) -> PrivateSession:
        upstream = self.upstreams.get(name)
        if upstream is None or upstream.state != "up" or self._tg is None:
            raise MCPError(GUARD_UNAVAILABLE, "Upstream server unavailable")
        private = PrivateSession(link)

        async def factory(stack: AsyncExitStack, _: CallerLink) -> Any:
            return await upstream.open_private(stack, callbacks, creds)

        self._tg.start_soon(private.hold, factory)
        await private.ready.wait()
        if private.session is None:
            raise MCPError(GUARD_UNAVAILABLE, "Upstream server unavailable")
        return private

    async def _private_for(
        self,
        connection: Any,
        name: str,
        principal: Principal,
        ctx: Any,
        creds: UpstreamCredentials | None = None,
    ) -> PrivateSession:
        fingerprint = creds.fingerprint() if creds is not None else None
        for ref, upstream_name, private in self._private:
            if ref() is connection and upstream_name == name and private.session is not None:
                if private.link.principal.subject != principal.subject:
                    # A connection is one caller; a different principal on it gets nothing of the first's.
                    raise MCPError(ACCESS_DENIED, AccessDenied.public_message)
                if private.fingerprint == fingerprint:
                    return private
                private.close()  # the caller's credentials were rotated: reconnect with the new ones
        link = CallerLink(self.guard, name, principal, self._level_of)
        private = await self._hold(name, link, client_callbacks(link, ctx.session.client_capabilities), creds)
        private.fingerprint = fingerprint
        self._private.append((weakref.ref(connection), name, private))
        return private

    async def _reap_private(self) -> None:
        """Close private upstream sessions whose downstream connection is gone or idle."""
        while True:
            await anyio.sleep(min(30.0, max(self.private_idle / 4, 0.5)))
            now = time.monotonic()
            keep = []
            for ref, name, private in self._private:
                link = private.link
                idle = not link.in_flight and now - link.last_used > self.private_idle
                if ref() is None or idle or private.session is None:
                    private.close()
                else:
                    keep.append((ref, name, private))
            self._private = keep
            for key, private in list(self._pooled.items()):
                link = private.link
                if private.session is None:
                    # The connection died: subscriptions on it cannot fire any more. Listen
                    # streams end (their clients re-listen on a fresh connection); 2025-11-25
                    # subscribers are dropped.
                    self._subs.lose(key)
                if private.session is None or (
                    not link.in_flight
                    and not self._subs.holds(key)
                    and now - link.last_used > self.private_idle
                ):
                    private.close()
                    del self._pooled[key]
                    self._pool_locks.pop(key, None)
            for channel, uri in self._subs.prune():
                await self._unsubscribe_upstream(channel, uri)

    def _unknown(
        self, method: str, kind: str, name: str, principal: Principal, rc: RequestContext
    ) -> MCPError:
        """Refuse a name no upstream serves here, exactly like a name the policy hides."""
        self.guard.record_nowait(
            self.guard.event(
                method,
                "deny",
                principal=principal,
                context=rc,
                reasons=(f"no served {kind} {name!r} (unknown, withheld, colliding or upstream down)",),
                error_code=ACCESS_DENIED,
                server=None,
            )
        )
        return MCPError(ACCESS_DENIED, AccessDenied.public_message)

    # ------------------------------------------------------------------ handlers
    async def _list(self, ctx: Any, params: types.PaginatedRequestParams | None, kind: str) -> dict[str, Any]:
        principal, rc = self._caller(ctx)
        key = LIST_KEYS[kind]
        reverse = self._reverse[kind]
        items: list[dict[str, Any]] = []
        for name in list(self._served):
            session = self._session(name, principal, rc)
            listed = to_wire(await getattr(session, _LIST_CALL[kind])())
            for item in listed.get(key, []):
                own = item_key(kind, item)
                public = reverse.get((name, own)) if own is not None else None
                if public is not None and public in self._catalog.routes[kind]:
                    items.append(public_item(kind, public, item))
        start = _decode_cursor(params.cursor if params is not None else None)
        page = items[start : start + self.page_size] if self.page_size > 0 else items[start:]
        result: dict[str, Any] = {key: page}
        end = start + len(page)
        if self.page_size > 0 and end < len(items):
            result["nextCursor"] = _encode_cursor(end)
        return result

    async def _call_tool(self, ctx: Any, params: types.CallToolRequestParams) -> Any:
        kw: dict[str, Any] = {}
        token = (ctx.meta or {}).get("progress_token") if ctx.meta else None
        if token is not None and ctx.session is not None:
            kw["progress_callback"] = _progress_forwarder(ctx.session, token, ctx.request_id)
        arguments = dict(params.arguments or {})
        return await self._forward(
            ctx,
            params,
            ("tools/call", "tool", params.name),
            self._catalog.route("tool", params.name),
            lambda s, name: s.call_tool(name, arguments),
            lambda s, name: s.call_tool(name, arguments, **kw),  # progress only on a live stream
        )

    async def _get_prompt(self, ctx: Any, params: types.GetPromptRequestParams) -> Any:
        arguments = dict(params.arguments or {})
        return await self._forward(
            ctx,
            params,
            ("prompts/get", "prompt", params.name),
            self._catalog.route("prompt", params.name),
            lambda s, name: s.get_prompt(name, arguments),
        )

    async def _read_resource(self, ctx: Any, params: types.ReadResourceRequestParams) -> Any:
        uri = str(params.uri)
        return await self._forward(
            ctx,
            params,
            ("resources/read", "resource", uri),
            self._catalog.route_uri(uri),
            lambda s, _name: s.read_resource(uri),
        )

    async def _forward(
        self,
        ctx: Any,
        params: Any,
        what: tuple[str, str, str],
        route: Any,
        send: Callable[[Any, str], Awaitable[Any]],
        send_routed: Callable[[Any, str], Awaitable[Any]] | None = None,
    ) -> Any:
        """Send one targeted request to its upstream under the upstream's own name.

        Over the multi-round-trip path where the upstream may call back on
        2026-07-28, else on the caller's routed session (``send_routed`` when
        that path passes more, such as a progress callback). ``what`` is
        ``(method, kind, public name or URI)``; a target with no route is
        refused exactly like an unknown one.
        """
        method, kind, name = what
        principal, rc = self._caller(ctx)
        if route is None:
            raise self._unknown(method, kind, name, principal, rc)
        if self._multi_round(ctx, route.upstream):
            return await self._round_trip(
                ctx, route.upstream, principal, rc, (method, name), params, lambda s: send(s, route.name)
            )
        async with self._routed(ctx, route.upstream, principal, rc) as session:
            return await (send_routed or send)(session, route.name)

    async def _subscribe_caller(
        self,
        upstream_name: str,
        uri: str,
        principal: Principal,
        rc: RequestContext,
        token: object,
        deliver: Callable[[str], Awaitable[None]],
        *,
        connection: Any = None,
        on_lost: Callable[[], None] | None = None,
    ) -> Channel:
        """Subscribe one caller to ``uri`` on its channel, decided and audited by the guard.

        An upstream with per-user credentials is subscribed on the caller's own
        pooled connection (opened only once the guard allowed it), so the
        upstream reports only what that user may see; any other upstream on its
        shared connection. Updates are re-checked against the policy on
        delivery, so a caller who may no longer see the resource hears nothing.
        """
        channel: Channel = (upstream_name,)
        per_user = await self._per_user(upstream_name)
        upstream = self.upstreams.get(upstream_name)

        async def acquire() -> Any:
            nonlocal channel
            if not per_user:
                # One upstream session carries all shared subscriptions, so an unsubscribe
                # or a re-subscribe after a reconnect reaches the session that holds them.
                return upstream.session if upstream is not None else None
            creds = await self._credentials_for(upstream_name, principal, rc)
            private = await self._pooled_for(upstream_name, principal, creds)
            private.link.last_used = time.monotonic()
            channel = (upstream_name, *creds.fingerprint())
            return private.session

        await self._session(upstream_name, principal, rc, acquire).subscribe_resource(uri)

        async def checked(changed: str) -> None:
            if self.guard.visible(principal, upstream_name, "resource", changed):
                await deliver(changed)

        self._subs.add(channel, uri, token, checked, connection=connection, on_lost=on_lost)
        return channel

    async def _unsubscribe_upstream(self, channel: Channel, uri: str) -> None:
        """Drop the upstream subscription nobody uses any more (best effort: updates are filtered anyway)."""
        name = channel[0]
        upstream = self.upstreams.get(name)
        if upstream is None or upstream.state != "up":
            return
        if len(channel) == 1:
            session = upstream.session
        else:
            private = self._pooled.get(channel)
            session = private.session if private is not None else None
        if session is None:
            return
        try:
            await upstream.request(lambda s: s.unsubscribe_resource(uri), session=session)
        except Exception as exc:
            logger.debug("unsubscribing %r from %r failed: %r", uri, name, exc)

    async def _resubscribe(self, upstream: Upstream, session: Any, uris: Sequence[str]) -> None:
        """Renew the shared subscriptions on an upstream's new connection (a restart loses them)."""
        for uri in uris:

            async def send(s: Any, u: str = uri) -> Any:
                return await s.subscribe_resource(u)

            try:
                await upstream.request(send, session=session)
            except Exception as exc:
                logger.warning("re-subscribing %r on %r failed: %r", uri, upstream.name, exc)

    async def _subscribe(self, ctx: Any, params: types.SubscribeRequestParams) -> Any:
        principal, rc = self._caller(ctx)
        uri = str(params.uri)
        route = self._catalog.route_uri(uri)
        if route is None:
            raise self._unknown("resources/subscribe", "resource", uri, principal, rc)
        connection = _connection(ctx)
        if connection is None:
            raise MCPError(types.INVALID_REQUEST, "resources/subscribe needs a standing connection")
        ref = weakref.ref(connection)

        async def deliver(changed: str) -> None:
            live = ref()
            if live is None:
                raise anyio.ClosedResourceError
            await live.send_resource_updated(changed)

        await self._subscribe_caller(
            route.upstream, uri, principal, rc, id(connection), deliver, connection=connection
        )
        if connection not in self._closing:
            # The connection's own teardown ends its subscriptions (the reaper's prune is the backstop).
            self._closing.add(connection)
            connection.exit_stack.push_async_callback(self._connection_closed, id(connection))
        return types.EmptyResult()

    async def _connection_closed(self, token: int) -> None:
        for channel, uri in self._subs.drop(token):
            if self._tg is not None:  # not in the connection's teardown: an upstream may be slow
                self._tg.start_soon(self._unsubscribe_upstream, channel, uri)

    async def _unsubscribe(self, ctx: Any, params: types.UnsubscribeRequestParams) -> Any:
        principal, rc = self._caller(ctx)
        uri = str(params.uri)
        route = self._catalog.route_uri(uri)
        if route is None:
            raise self._unknown("resources/unsubscribe", "resource", uri, principal, rc)
        connection = _connection(ctx)
        if connection is not None:
            for channel in self._subs.channels_of(route.upstream):
                if self._subs.remove(channel, uri, id(connection)):
                    await self._unsubscribe_upstream(channel, uri)
        # Nothing to decide (it only gives up access), but it is recorded like every request.
        request = AccessRequest("resources/unsubscribe", "subscribe", route.upstream, "resource", uri, {}, rc)
        self.guard.record_nowait(
            self.guard.event("resources/unsubscribe", "allow", principal=principal, request=request)
        )
        return types.EmptyResult()

    async def _listen(self, ctx: Any, params: types.SubscriptionsListenRequestParams) -> Any:
        """Serve a 2026-07-28 ``subscriptions/listen`` stream: list changes and the caller's resources.

        Each requested URI is subscribed like a ``resources/subscribe`` (decided
        by the guard under the upstream's name, on the caller's own connection
        for per-user upstreams); one refused or unknown URI refuses the whole
        listen before the acknowledgement. The SDK's listen handler writes the
        acknowledgement, the subscription id and the events; a per-stream bus
        carries only what this caller subscribed to.
        """
        principal, rc = self._caller(ctx)
        wanted = params.notifications
        uris = list(dict.fromkeys(wanted.resource_subscriptions or ()))
        bus = InMemorySubscriptionBus()
        handler = ListenHandler(bus, max_subscriptions=1)
        token = object()
        held: list[tuple[Channel, str]] = []

        async def deliver(changed: str) -> None:
            await bus.publish(ResourceUpdated(uri=changed))

        try:
            for uri in uris:
                route = self._catalog.route_uri(uri)
                if route is None:
                    raise self._unknown("subscriptions/listen", "resource", uri, principal, rc)
                channel = await self._subscribe_caller(
                    route.upstream, uri, principal, rc, token, deliver, on_lost=handler.close
                )
                held.append((channel, uri))
            kinds = [
                k
                for k, on in (
                    ("tools", wanted.tools_list_changed),
                    ("prompts", wanted.prompts_list_changed),
                    ("resources", wanted.resources_list_changed),
                )
                if on
            ]
            self.guard.record_nowait(
                self.guard.event(
                    "subscriptions/listen",
                    "allow",
                    principal=principal,
                    context=rc,
                    reasons=(f"list changes: {', '.join(kinds) or 'none'}; {len(uris)} resource(s)",),
                    server=None,
                )
            )
            self._listens[bus] = handler
            return await handler(ctx, params)
        finally:
            self._listens.pop(bus, None)
            for channel, uri in held:
                last = self._subs.remove(channel, uri, token)
                if last and self._tg is not None:
                    self._tg.start_soon(self._unsubscribe_upstream, channel, uri)

    async def _set_level(self, ctx: Any, params: types.SetLevelRequestParams) -> Any:
        # The guard middleware has already admitted (and audited) this request.
        connection = _connection(ctx)
        if connection is not None:
            self._levels[connection] = str(params.level)
        return types.EmptyResult()

    def _level_of(self, session: Any) -> str | None:
        connection = getattr(session, "_connection", None)
        return self._levels.get(connection) if connection is not None else None

    async def _complete(self, ctx: Any, params: types.CompleteRequestParams) -> Any:
        principal, rc = self._caller(ctx)
        ref = params.ref
        argument = params.argument.model_dump(by_alias=True, exclude_none=True)
        if isinstance(ref, types.PromptReference):
            route = self._catalog.route("prompt", ref.name)
            if route is None:
                raise self._unknown("completion/complete", "prompt", ref.name, principal, rc)
            own_ref: Any = types.PromptReference(type="ref/prompt", name=route.name)
        else:
            uri = str(ref.uri)
            route = self._catalog.route_uri(uri)
            if route is None:
                raise self._unknown("completion/complete", "resource", uri, principal, rc)
            own_ref = ref
        async with self._routed(ctx, route.upstream, principal, rc) as session:
            return await session.complete(own_ref, argument)

    def _tool_schema(self, name: str) -> Mapping[str, Any] | None:
        """Input schema for the SDK's pre-middleware header check: hidden tools look unknown."""
        from mcp.server.auth.middleware.auth_context import get_access_token

        route = self._catalog.route("tool", name)
        if route is None:
            return None
        token = get_access_token()
        principal = self.guard.resolver.peek(token.token if token is not None else None)
        if principal is None or not self.guard.visible(principal, route.upstream, "tool", route.name):
            return None
        schema = route.item.get("inputSchema")
        return schema if isinstance(schema, Mapping) else None

    # ------------------------------------------------------------------ status
    def status(self) -> list[dict[str, Any]]:
        return [u.describe() for u in self.upstreams.values()]

    def catalog_names(self, kind: str = "tool") -> list[str]:
        """Every downstream name currently routed (before per-caller filtering)."""
        return sorted(self._catalog.routes[kind])

    # ------------------------------------------------------------------ HTTP
    def streamable_http_app(self, *, port: int | None = None, **kwargs: Any) -> Any:
        """A Starlette app serving the portal on ``[listen] path``; its lifespan runs the upstreams."""
        listen = self.listen
        security = loopback_security(port if port is not None else listen.port, list(listen.allowed_hosts))
        app = self.server.streamable_http_app(
            streamable_http_path=listen.path,
            transport_security=kwargs.pop("transport_security", security),
            host=listen.host,
            **{**self.http_options, **kwargs},
        )
        inner = app.router.lifespan_context

        @asynccontextmanager
        async def lifespan(a: Any) -> AsyncIterator[None]:
            async with self, inner(a):
                yield

        app.router.lifespan_context = lifespan
        app.add_middleware(AuditHttpRefusals, guard=self.guard)  # the SDK's own 401/403s are audited too
        return app

    async def serve(self, host: str | None = None, port: int | None = None, **app_kwargs: Any) -> None:
        """Run the portal on streamable HTTP until cancelled (refusing public binds unless allowed)."""
        import uvicorn

        listen = self.listen
        host = host or listen.host
        port = listen.port if port is None else port
        check_bind(host, listen.allow_public_bind)
        tls: dict[str, Any] = {}
        if listen.tls_certfile:
            tls = {"ssl_certfile": listen.tls_certfile, "ssl_keyfile": listen.tls_keyfile}
        config = uvicorn.Config(
            self.streamable_http_app(port=port),
            host=host,
            port=port,
            log_level="warning",
            lifespan="on",
            **tls,
        )
        await uvicorn.Server(config).serve()

    def initialization_options(self) -> Any:
        return self.server.create_initialization_options(
            NotificationOptions(prompts_changed=True, resources_changed=True, tools_changed=True)
        )


def _legacy(ctx: Any) -> bool:
    return bool(ctx.protocol_version) and str(ctx.protocol_version) < "2026"


def _round_callbacks(link: RoundLink, ctx: Any) -> dict[str, Any]:
    """What a 2026-07-28 caller may be asked: what it declared, else sampling, elicitation and roots.

    The question reaches the client as an ``InputRequiredResult``; a client that
    cannot answer one simply returns an error for it.
    """
    capabilities = getattr(ctx.session, "client_capabilities", None)
    if capabilities is not None and any(
        getattr(capabilities, k, None) is not None for k in ("sampling", "elicitation", "roots")
    ):
        return client_callbacks(link, capabilities)  # log messages ride the open round's stream
    return {
        "sampling_callback": link.sampling,
        "elicitation_callback": link.elicitation,
        "list_roots_callback": link.roots,
        "logging_callback": link.logging,
    }


def _connection(ctx: Any) -> Any:
    """The downstream connection behind a request (long-lived on 2025-11-25; the session is per request).

    The SDK exposes it only as the session's private ``_connection``; kept in
    this one helper so an SDK change touches one line.
    """
    return getattr(ctx.session, "_connection", None)


def _progress_forwarder(session: ServerSession, token: Any, request_id: Any) -> Any:
    async def forward(progress: float, total: float | None, message: str | None) -> None:
        try:
            await session.send_progress_notification(
                token, progress, total=total, message=message, related_request_id=request_id
            )
        except Exception:
            logger.debug("progress notification could not be forwarded", exc_info=True)

    return forward


def resolve_spec(config: GuardConfig, spec: UpstreamSection) -> UpstreamSection:
    """Resolve ``cwd`` against the config file; ``command = "python"`` means the portal's own interpreter.

    The interpreter rule lets a config ship Python upstreams that run with the
    packages the portal was installed with, wherever its virtualenv lives.
    """
    update: dict[str, Any] = {}
    if spec.cwd is not None:
        update["cwd"] = str(config.resolve(spec.cwd))
    if spec.command in ("python", "python3"):
        update["command"] = sys.executable
    return spec.model_copy(update=update) if update else spec


def _http_auth(config: GuardConfig, guard: Guard) -> dict[str, Any]:
    """The SDK auth wiring ``[authn]`` asks for.

    With ``[authn.oauth]`` (and no anonymous access, which needs the guard to
    read the header itself) the SDK's own bearer check runs with the guard's
    verifier, so clients get the standard 401 + RFC 9728 metadata flow. With
    ``[authn.passwords]`` the login endpoint and the issuer's JWKS are served
    beside the MCP endpoint.
    """
    if not config.authn:
        return {}
    from ..authn.config import AuthnSettings, build_login_service
    from ..authn.oauth import auth_settings

    settings = AuthnSettings.model_validate(config.authn)
    out: dict[str, Any] = {}
    if settings.oauth is not None and settings.anonymous is None:
        out["token_verifier"] = guard.token_verifier()
        out["auth"] = auth_settings(settings.oauth)
    if settings.passwords is not None and guard.store is not None:
        service = build_login_service(settings, guard.store, config.base_dir, auditor=guard.auditor)
        if service is not None:
            from ..authn import login_routes

            out["custom_starlette_routes"] = login_routes(service)
    return out


_PORTAL_KW = frozenset(
    {
        "page_size",
        "ping_interval",
        "backoff",
        "pool",
        "callbacks",
        "private_idle",
        "start_timeout",
        "registry",
        "registry_poll",
        "allowed_upstream_hosts",
        "errlog",
        "credentials",
        "lockdown",
    }
)

__all__ = ["Portal"]
