"""The portal: a guarded MCP server whose handlers are guarded client sessions to upstreams.

Downstream, the guard's own :class:`~mcp_guard.integrations.server.GuardMiddleware`
authenticates, classifies, size-checks and audits refusals of every message;
in ``delegate`` mode it leaves the decision of list and targeted requests to
the handlers here, which route each to a :class:`~.routing.CallerSession`
(server = upstream name, target = the upstream's own name). So every request
is decided exactly once, with the names the policy is written against, and
nothing here bypasses the public chain.

The class is composed of parts, one module each: :mod:`.supervisor` (the
upstreams and the catalog of what they serve), :mod:`.sessions` (which
upstream session serves a caller), :mod:`.handlers` (the requests),
:mod:`.subscribing` (resource subscriptions) and :mod:`.serving` (HTTP);
their shared state is set up in :mod:`.state`. This module puts them together
and runs them.
"""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
from mcp import types
from mcp.server.lowlevel import NotificationOptions, Server

from ..config import GuardConfig, load_config
from .admin import follow_pin_approvals
from .anomalies import start_monitor
from .handlers import HandlersMixin
from .handlers import _decode_cursor as _decode_cursor  # re-exported: tests import them from here
from .handlers import _encode_cursor as _encode_cursor
from .labelcheck import label_problems
from .serving import ServingMixin, http_auth, portal_arguments
from .serving import resolve_spec as resolve_spec
from .subscribing import SubscribingMixin
from .supervisor import SupervisorMixin

logger = logging.getLogger("mcp_guard.portal")


class Portal(SupervisorMixin, SubscribingMixin, HandlersMixin, ServingMixin):
    """Serve the approved upstreams' tools, prompts and resources behind one guard.

    Use as an async context manager (starts and supervises the upstreams), then
    serve :attr:`server` over any transport, or call :meth:`streamable_http_app`
    / :meth:`serve`. ``guard`` is any :class:`Guard`; ``servers`` are the
    config's ``[[servers]]`` entries, approved by being listed.
    """

    # The constructor and the attributes every part shares are in :mod:`.state`.
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
        guard, servers, portal_kw = portal_arguments(
            config, secrets_key=secrets_key, lockdown_key=lockdown_key, **overrides
        )
        portal = cls(guard, servers, **portal_kw)
        portal.http_options.update(http_auth(config, guard))
        portal.anomalies = start_monitor(guard, config)
        portal.metrics_endpoint = config.portal.metrics
        portal.metrics_public = config.portal.metrics_public
        if config.console.enabled:
            from ..console import audit_source, console_app, password_login

            portal.console = console_app(
                guard, config.console, audit_source=audit_source(config), login=password_login(config, guard)
            )
            portal.console.state.console.portal = portal  # the Servers page shows the upstreams' health
        return portal

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
        for problem in label_problems(self.guard.policy, list(self._configured.values())):
            logger.warning("policy: %s", problem)  # a label that labels nothing: its flows never fire
        stack = AsyncExitStack()
        tg = await stack.enter_async_context(anyio.create_task_group())
        self._stack, self._tg = stack, tg
        for spec in self._configured.values():
            self._start(spec)
        if self.registry is not None:
            await self._sync_registry()
            tg.start_soon(self._watch_registry)
        tg.start_soon(self._reap_private)
        if self.guard.pins is not None:  # a pin approved anywhere re-screens the lists at once
            tg.start_soon(follow_pin_approvals, self.guard.pins, self._rebuild)
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

    # ------------------------------------------------------------------ status
    def status(self) -> list[dict[str, Any]]:
        return [u.describe() for u in self.upstreams.values()]

    def catalog_names(self, kind: str = "tool") -> list[str]:
        """Every downstream name currently routed (before per-caller filtering)."""
        return sorted(self._catalog.routes[kind])

    def initialization_options(self) -> Any:
        return self.server.create_initialization_options(
            NotificationOptions(prompts_changed=True, resources_changed=True, tools_changed=True)
        )


__all__ = ["Portal"]
