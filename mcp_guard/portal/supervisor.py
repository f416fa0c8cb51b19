"""The portal's upstreams: which run, and what each may serve.

Starts and supervises the configured upstreams and those approved at run time
in the server :class:`~.registry.Registry` (stopping revoked or changed ones),
and on every change screens what each live upstream offers (sanitizer
verdicts, pins) into the routing catalog, telling downstream sessions when a
list changed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import anyio
from mcp.server.subscriptions import PromptsListChanged, ResourcesListChanged, ToolsListChanged

from ..classify import classify
from ..config import UpstreamSection
from ..errors import ConfigError
from ..guard import Guard
from ..model import Finding, ResultSummary
from .catalog import LIST_KEYS, build_catalog, item_key
from .routing import ServedLists
from .state import PortalState
from .upstream import Upstream, check_upstream_url, own_interpreter

logger = logging.getLogger("mcp_guard.portal")


_LIST_METHOD = {
    "tool": "tools/list",
    "prompt": "prompts/list",
    "resource": "resources/list",
    "resource_template": "resources/templates/list",
}


class SupervisorMixin(PortalState):
    """Run the approved upstreams and keep the catalog of what they serve current."""

    if TYPE_CHECKING:
        # Supplied by the subscription part (:mod:`.subscribing`).
        async def _resubscribe(self, upstream: Upstream, session: Any, uris: Sequence[str]) -> None: ...

        async def _upstream_note(self, upstream: Upstream, note: Any) -> None: ...

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
                spec = own_interpreter(entry.spec())
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
            # Annotations count only where pins vetted them (see ServedLists).
            vetted = _pinned(self.guard, upstream.name)
            served[upstream.name] = ServedLists(lists, vetted=vetted)
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
        """Items of ``upstream`` anyone may be served: sanitizer-blocked and unapproved changes withheld.

        The guard's own list screening (pins, then the sanitizers) decides, exactly as for a host's
        guarded client: the portal is that client, for everyone at once.
        """
        guard = self.guard
        out: dict[str, list[dict[str, Any]]] = {}
        findings: list[Finding] = []
        notices: list[str] = []
        total = withheld = 0
        for kind, key in LIST_KEYS.items():
            items = list(upstream.lists.get(kind, []))
            total += len(items)
            info = classify(_LIST_METHOD[kind], {}, upstream.name)[1]
            data, summary = await guard.screen_list(None, upstream.name, info, {key: items}, "outbound")
            kept = [i for i in data.get(key, []) if isinstance(i, dict)]
            withheld += len(items) - len(kept)
            findings.extend(summary.findings)
            served = {item_key(kind, i) for i in kept}
            for item in items:
                name = item_key(kind, item)
                if name is not None and name not in served:
                    why = [
                        f"{f.rule} at {f.field}"
                        for f in summary.findings
                        if f.message.startswith(f"{kind} {name!r}:")
                    ]
                    notices.append(
                        f"upstream {upstream.name!r} {kind} {name!r} withheld: "
                        + ("; ".join(why) or "not approved")
                    )
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


def _pinned(guard: Guard, server: str) -> bool:
    """Whether pins enforce what ``server`` serves: only then did anyone vouch for its annotations."""
    if guard.pins is None:
        return False
    policy = guard.sanitize_policy(server)
    return bool(policy.pin and not policy.shadow)  # a shadowed pin still serves a changed item
