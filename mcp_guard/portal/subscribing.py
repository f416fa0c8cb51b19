"""Resource subscriptions through the portal: ``resources/subscribe`` and ``subscriptions/listen``.

A caller's subscription is decided by the guard under the upstream's name and
held upstream on the connection that reports only what the caller may see
(the shared one, or the caller's pooled per-user one). Updates coming back
are routed to their subscribers and re-checked against the policy; upstream
subscriptions nobody holds any more are dropped, and renewed when an
upstream reconnects.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio
from mcp import types
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler, ResourceUpdated
from mcp.shared.exceptions import MCPError

from .. import pipeline
from ..model import Principal, RequestContext
from .sessions import SessionsMixin
from .state import connection_of
from .subscriptions import Channel
from .upstream import Upstream

logger = logging.getLogger("mcp_guard.portal")


class SubscribingMixin(SessionsMixin):
    """Subscribe callers to upstream resources and deliver the updates they may see."""

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
        connection = connection_of(ctx)
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
        connection = connection_of(ctx)
        if connection is not None:
            for channel in self._subs.channels_of(route.upstream):
                if self._subs.remove(channel, uri, id(connection)):
                    await self._unsubscribe_upstream(channel, uri)
        # Nothing to decide (it only gives up access); the pipeline records it like every request.
        pipeline.route(route.upstream, uri)
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
            # The stream stays open: its one event is recorded now, not when it ends.
            await pipeline.settle(
                self.guard, f"list changes: {', '.join(kinds) or 'none'}; {len(uris)} resource(s)"
            )
            self._listens[bus] = handler
            return await handler(ctx, params)
        finally:
            self._listens.pop(bus, None)
            for channel, uri in held:
                last = self._subs.remove(channel, uri, token)
                if last and self._tg is not None:
                    self._tg.start_soon(self._unsubscribe_upstream, channel, uri)
