"""Per-caller routing: which upstream session serves a caller's request.

A request reaches its upstream on the shared session, on a private session
per downstream connection (upstreams that call back), on a pooled session per
credential owner (upstreams with per-user credentials), or - on 2026-07-28 -
as a multi-round-trip call whose questions travel in results. This module
picks and holds those sessions, reaps the idle ones, and refuses callers the
guard middleware never identified or names nothing here serves.

The sessions opened for callers (for stdio upstreams: one process each) are
capped per upstream: ``private_per_principal`` for one subject (or, for
tenant-wide credentials, one tenant) and ``private_max`` in all, opening ones
included. Past a cap the caller is refused - :class:`TooManyUpstreamSessions`
or :class:`UpstreamBusy`, recorded by the guard's pipeline like any refusal -
rather than handed another connection's session: a private session belongs to
one downstream connection. Sessions whose connection is gone, and pooled ones
superseded by rotated credentials, are closed first to make room.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from functools import cached_property
from typing import TYPE_CHECKING, Any

import anyio
from mcp.shared.exceptions import MCPError

from .. import pipeline
from ..confirm import carried_state
from ..errors import GUARD_UNAVAILABLE, AccessDenied, GuardUnavailable, RateLimited
from ..integrations.server import CURRENT_CALLER
from ..model import Principal, RequestContext
from ..ratelimit import subject_key
from .attribution import CURRENT_CALL, Call, declared
from .callbacks import CallerLink, PrivateSession, client_callbacks
from .catalog import PREFIXED
from .credentials import MissingCredentials, UpstreamCredentials
from .relay import owner_of
from .rounds import RoundLink
from .routing import CallerSession, UpstreamAdapter
from .state import PortalState, connection_of, is_legacy
from .subscriptions import Channel

logger = logging.getLogger("mcp_guard.portal")

#: Seconds a parked call's round waits beyond its upstream's timeout (the upstream's timeout fires first).
ROUND_GRACE = 1.0

#: Who a caller's upstream sessions count against: ("subject", name) or ("tenant", name).
Holder = tuple[str, str]


class TooManyUpstreamSessions(RateLimited):
    """The caller already holds ``private_per_principal`` sessions of this upstream."""

    public_message = "Too many upstream sessions for you: close another connection or retry later"


class UpstreamBusy(RateLimited):
    """The upstream already has ``private_max`` sessions opened for callers."""

    public_message = "Upstream busy: too many upstream sessions are open, retry later"


class SessionSlots:
    """How many caller sessions each upstream holds, per holder (opening and closing ones included).

    A slot is taken before a session is opened and given back once it is
    gone (for stdio: once the process exited), so the counts are what runs.
    """

    def __init__(self) -> None:
        self.held: dict[str, dict[Holder, int]] = {}
        #: One lock per downstream connection and upstream: concurrent first calls open one session.
        self.locks: weakref.WeakKeyDictionary[Any, dict[str, anyio.Lock]] = weakref.WeakKeyDictionary()

    def count(self, upstream: str, holder: Holder | None = None) -> int:
        by_holder = self.held.get(upstream, {})
        return by_holder.get(holder, 0) if holder is not None else sum(by_holder.values())

    def take(self, upstream: str, holder: Holder, per_holder: int, overall: int) -> Callable[[], None]:
        """Take a slot (raises past a cap); returns the function that gives it back, once."""
        by_holder = self.held.setdefault(upstream, {})
        mine, total = by_holder.get(holder, 0), sum(by_holder.values())
        if mine >= per_holder:
            raise TooManyUpstreamSessions(
                f"{holder[0]} {holder[1]!r} already holds {mine} sessions of upstream {upstream!r}"
                f" (private_per_principal = {per_holder})"
            )
        if total >= overall:
            raise UpstreamBusy(
                f"upstream {upstream!r} already holds {total} caller sessions (private_max = {overall})"
            )
        by_holder[holder] = mine + 1
        given_back = False

        def give_back() -> None:
            nonlocal given_back
            if given_back:
                return
            given_back = True
            left = by_holder.get(holder, 0) - 1
            if left > 0:
                by_holder[holder] = left
            else:
                by_holder.pop(holder, None)

        return give_back

    def lock(self, connection: Any, upstream: str) -> anyio.Lock:
        return self.locks.setdefault(connection, {}).setdefault(upstream, anyio.Lock())


def _holder_of(private: PrivateSession) -> Holder:
    """Who a connection's private session counts against: the person, as :func:`_holder` names them."""
    return _holder(private.link.principal)


def _holder(principal: Principal) -> Holder:
    """The person whose cap a session counts against: the subject per issuer or tenant's key book
    (:func:`~mcp_guard.ratelimit.subject_key`), so another tenant's key named after them can
    neither use up their sessions nor have their idle one closed to make room."""
    return ("subject", subject_key(principal))


class SessionsMixin(PortalState):
    """Route each caller's request to the upstream session it may use."""

    if TYPE_CHECKING:
        # Supplied by the subscription part (:mod:`.subscribing`).
        def _channel_notes(self, channel: Channel) -> Callable[[Any], Awaitable[None]]: ...

        async def _unsubscribe_upstream(self, channel: Channel, uri: str) -> None: ...

    @cached_property
    def _slots(self) -> SessionSlots:
        return SessionSlots()

    def _caller(self, ctx: Any) -> tuple[Principal, RequestContext]:
        caller = CURRENT_CALLER.get()
        if caller is None:
            # The handler was reached without the guard middleware deciding who calls: refuse.
            raise MCPError(GUARD_UNAVAILABLE, GuardUnavailable.public_message)
        connection = connection_of(ctx)
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
        acquired after the guard allowed the request. On the shared session the
        request is this caller's call: what the upstream asks or logs during it
        comes back here (see :mod:`.attribution`).
        """
        connection = connection_of(ctx)
        wants_callbacks = upstream_name in self.callbacks and connection is not None and is_legacy(ctx)
        per_user = await self._per_user(upstream_name)
        if not wants_callbacks and not per_user:
            link = CallerLink(self.guard, upstream_name, principal, self._level_of)
            link.in_flight.append((ctx.session, ctx.request_id))
            # Only a 2025-11-25 connection can be sent requests; later callers get log messages only.
            legacy = connection is not None and is_legacy(ctx)
            allowed = declared(ctx.session.client_capabilities) if legacy else frozenset()
            with _calling(Call(link, allowed)):
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

    async def _multi_round(self, ctx: Any, upstream_name: str) -> bool:
        """A 2026-07-28 request whose upstream may ask the caller something: questions travel in results.

        Upstreams in ``callbacks`` and shared ones; a per-user session (shared
        by one user's connections, or a tenant's) is never asked through.
        """
        if not ctx.protocol_version or is_legacy(ctx):
            return False
        return upstream_name in self.callbacks or not await self._per_user(upstream_name)

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
        # A rule's confirm question travels in the guard's own sealed state, around ours (if any).
        _, state = carried_state(getattr(params, "request_state", None))
        if state:
            responses = getattr(params, "input_responses", None) or {}
            owner = owner_of(state)
            if self._relay is not None and owner is not None and owner != self.replica:
                pipeline.hand_off()
                return await self._relayed_round(owner, state, principal, binding, responses, upstream_name)
            parked = self._rounds.resume(state, subject_key(principal), binding, responses)
            pipeline.hand_off()  # the parked call records itself, once, when it ends
            return await self._rounds.step(parked, (ctx.session, ctx.request_id))
        # Answers that come without a requestState we issued answer nothing: they are ignored.
        upstream = self.upstreams.get(upstream_name)
        if upstream is None or upstream.state != "up" or self._tg is None:
            raise MCPError(GUARD_UNAVAILABLE, "Upstream server unavailable")
        # A little longer than the upstream request's own timeout, which so ends the call first.
        parked, link = self._rounds.start(
            self._tg, principal, binding, upstream.spec.timeout + ROUND_GRACE, self.guard, upstream_name
        )
        callbacks = _round_callbacks(link, ctx)
        if upstream_name not in self.callbacks:
            # The shared session: what the upstream asks during the call is attributed to it.
            allowed = frozenset(name for name, key in _ASK_KEYS.items() if key in callbacks)

            async def call_shared(stack: AsyncExitStack, _: RoundLink) -> Any:
                with _calling(Call(link, allowed)):
                    return await call(self._session(upstream_name, principal, rc))

            self._tg.start_soon(parked.run, call_shared, link)
            pipeline.hand_off()
            return await self._rounds.step(parked, (ctx.session, ctx.request_id))
        per_user = await self._per_user(upstream_name)

        async def open_and_call(stack: AsyncExitStack, _: RoundLink) -> Any:
            async def acquire() -> Any:
                # Opened only after the guard allowed the call (inside the guarded session).
                creds = await self._credentials_for(upstream_name, principal, rc) if per_user else None
                stack.callback(await self._reserve(upstream_name, _holder(principal)))
                return await upstream.open_private(stack, callbacks, creds)

            return await call(self._session(upstream_name, principal, rc, acquire))

        self._tg.start_soon(parked.run, open_and_call, link)
        pipeline.hand_off()
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
        person = subject_key(principal)  # checked by the owner as a round that reached it directly
        return await self._relay.forward(owner, state, person, binding, responses, timeout + 1.0)

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
            raise MissingCredentials(f"no upstream credentials for {principal.subject!r} on {name!r}")
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
            holder = (creds.scope, creds.owner)
            await self._retire_superseded(name, holder, key)
            # Tenant-wide sessions are shared by several users: nothing may call back into one of them.
            link = CallerLink(self.guard, name, principal, self._level_of)
            callbacks: dict[str, Any] = {"logging_callback": link.logging} if creds.scope == "subject" else {}
            callbacks["message_handler"] = self._channel_notes(key)
            private = await self._hold(name, link, callbacks, creds, holder)
            self._pooled[key] = private
            return private

    async def _retire_superseded(self, name: str, holder: Holder, key: tuple[Any, ...]) -> None:
        """Close the idle pooled sessions of this owner opened with secrets since rotated."""
        for other, private in list(self._pooled.items()):
            if (
                other != key
                and other[0] == name
                and tuple(other[1:3]) == holder
                and not private.link.in_flight
                and not self._subs.holds(other)
            ):
                del self._pooled[other]
                self._pool_locks.pop(other, None)
                await self._retire(private)

    async def _retire(self, private: PrivateSession) -> None:
        """Close a session and wait (bounded) until it is gone and its slot given back."""
        private.close()
        with anyio.move_on_after(self.start_timeout):
            await private.done.wait()

    async def _reserve(self, name: str, holder: Holder) -> Callable[[], None]:
        """A slot for one more caller session of ``name``, making room first where it may.

        Sessions whose caller left go first; at the holder's own cap, its least
        recently used idle session is closed too (its connection opens a new one
        when it next needs it), so a client that leaves connections open keeps
        working while a flood only evicts its own. Nobody else's session is
        closed to make room: past the overall cap the caller is refused.
        """
        try:
            return self._slots.take(name, holder, self.private_per_principal, self.private_max)
        except TooManyUpstreamSessions:
            idle = [
                entry
                for entry in self._private
                if entry[1] == name
                and not entry[2].link.in_flight
                and (entry[0]() is None or _holder_of(entry[2]) == holder)
            ]
            # Sessions whose caller left first, then the holder's own, least recently used first.
            idle.sort(key=lambda e: (e[0]() is not None, e[2].link.last_used))
            gone = idle[:1]
        except RateLimited:
            gone = [
                entry
                for entry in self._private
                if entry[1] == name and entry[0]() is None and not entry[2].link.in_flight
            ]
        if not gone:
            return self._slots.take(name, holder, self.private_per_principal, self.private_max)
        self._private = [entry for entry in self._private if entry not in gone]
        for _, _, private in gone:
            await self._retire(private)
        return self._slots.take(name, holder, self.private_per_principal, self.private_max)

    async def _hold(
        self,
        name: str,
        link: CallerLink,
        callbacks: Mapping[str, Any],
        creds: UpstreamCredentials | None,
        holder: Holder,
    ) -> PrivateSession:
        upstream = self.upstreams.get(name)
        if upstream is None or upstream.state != "up" or self._tg is None:
            raise MCPError(GUARD_UNAVAILABLE, "Upstream server unavailable")
        give_back = await self._reserve(name, holder)
        private = PrivateSession(link)
        private.on_close = give_back

        async def factory(stack: AsyncExitStack, _: CallerLink) -> Any:
            return await upstream.open_private(stack, callbacks, creds)

        self._tg.start_soon(private.hold, factory)
        try:
            await private.ready.wait()
        except BaseException:
            private.close()  # the caller gave up while it opened: nobody would ever use or reap it
            raise
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
        async with self._slots.lock(connection, name):  # concurrent first calls open one session
            for ref, upstream_name, private in self._private:
                if ref() is connection and upstream_name == name and private.session is not None:
                    if subject_key(private.link.principal) != subject_key(principal):
                        # A connection is one caller; a different principal on it gets nothing of the first's.
                        raise AccessDenied(
                            "another principal already holds this connection's upstream session"
                        )
                    if private.fingerprint == fingerprint:
                        return private
                    # The caller's credentials were rotated: reconnect with the new ones (in its slot).
                    await self._retire(private)
            link = CallerLink(self.guard, name, principal, self._level_of)
            callbacks = client_callbacks(link, ctx.session.client_capabilities)
            private = await self._hold(name, link, callbacks, creds, _holder(principal))
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
    ) -> AccessDenied:
        """Refuse a name no upstream serves here, exactly like a name the policy hides.

        The guard's pipeline records the refusal as the downstream request's one event.
        """
        return AccessDenied(f"no served {kind} {name!r}: {self._why_not_served(kind, name)}")

    def _why_not_served(self, kind: str, name: str) -> str:
        """What really keeps a name out of the routing table, for the audit trail only (the caller
        gets the same ``Access denied`` as for a name that does not exist)."""
        if name in self._catalog.collisions.get(kind, ()):
            return "served by more than one upstream, so withheld from all of them"
        for upstream in self.upstreams.values():
            if kind in PREFIXED:
                if not name.startswith(upstream.prefix):
                    continue
                own = name[len(upstream.prefix) :]
            else:
                own = name
            if self.guard.withheld.state(upstream.name, kind, own):
                why = self.guard.withheld.reason(upstream.name, kind, own)
                return f"withheld on upstream {upstream.name!r}: {why}"
            if upstream.state != "up" and upstream.prefix:
                return f"upstream {upstream.name!r} is {upstream.state}"
        return "no upstream serves it"

    def _level_of(self, session: Any) -> str | None:
        connection = getattr(session, "_connection", None)
        return self._levels.get(connection) if connection is not None else None


@contextmanager
def _calling(call: Call) -> Iterator[None]:
    """Make ``call`` the one this task's upstream requests are sent for."""
    token = CURRENT_CALL.set(call)
    try:
        yield
    finally:
        CURRENT_CALL.reset(token)


#: The client callback each capability is asked through.
_ASK_KEYS = {
    "sampling": "sampling_callback",
    "elicitation": "elicitation_callback",
    "roots": "list_roots_callback",
}


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
