"""Approval requests in the state store, so every replica (and the CLI) sees and decides the same ones.

Keys (all under ``approvals:``):

- ``req:ID`` the request as JSON, kept a day past its expiry for ``approvals list --all``;
- ``bind:HASH`` the open request of one (caller, server, target, arguments), so a retry finds it;
- ``decision:ID`` written once with ``set_if_absent``: of two replicas deciding together, one wins;
- ``grant:ID`` set on approval and redeemed with ``take`` (get and delete in one step), so an
  approval runs exactly one call however many retries race for it;
- ``open:HASH`` the set of request ids one caller (subject and tenant) opened, pruned of the
  decided and expired ones on each new request: at most :attr:`ApprovalBook.max_pending` pending
  at once, so one caller cannot fill the store or the approvers' list.

Each decision is published on :data:`CHANNEL` with the request id: a call
waiting on any replica wakes at once. A lost message costs a poll interval.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import anyio

from ..errors import AccessDenied
from ..protocols import StateStore
from .model import ApprovalError, ApprovalRequest, Approver, Status, arguments_hash, binding_hash
from .notify import LoggingNotifier, Notifier

__all__ = ["CHANNEL", "MAX_PENDING", "ApprovalBook"]

#: The state-store channel on which decisions are announced (message: the request id).
CHANNEL = "approvals:decided"
#: How long a decided or expired request stays listable.
RETAIN = 86400.0
#: Seconds between store reads while a call waits, in case a decision message was lost.
POLL = 1.0

#: Pending requests one caller (subject and tenant) may have at once, unless configured.
MAX_PENDING = 20

_PREFIX = "approvals:"


def _new_id() -> str:
    return "apr-" + secrets.token_hex(6)


class ApprovalBook:
    """Creates, finds, decides and redeems approval requests in a :class:`StateStore`."""

    def __init__(
        self,
        store: StateStore,
        *,
        notifiers: Sequence[Notifier] | None = None,
        clock: Callable[[], float] = time.time,
        poll: float = POLL,
        max_pending: int = MAX_PENDING,
    ) -> None:
        self.store = store
        #: A caller's new request past this many pending ones is refused (``[guard] max_pending_approvals``).
        self.max_pending = max_pending
        chosen = notifiers if notifiers is not None else (LoggingNotifier(),)
        self.notifiers: tuple[Notifier, ...] = tuple(chosen)
        self.clock = clock
        self.poll = poll

    # ------------------------------------------------------------------ reading
    async def get(self, request_id: str) -> ApprovalRequest | None:
        """The request as of now (expired when its time is up), or None when unknown."""
        raw = await self.store.get(_PREFIX + "req:" + request_id)
        return ApprovalRequest.loads(raw).at(self.clock()) if raw is not None else None

    async def list(
        self, *, everything: bool = False, viewer: Approver | None = None
    ) -> list[ApprovalRequest]:
        """Pending requests (all kept ones with ``everything``), oldest first.

        With ``viewer``, only those of the viewer's tenant that they asked for or may decide.
        """
        found = []
        for key in await self.store.keys(_PREFIX + "req:"):
            request = await self.get(key.removeprefix(_PREFIX + "req:"))
            if request is None or not (everything or request.status == "pending"):
                continue
            if viewer is None or request.visible_to(viewer):
                found.append(request)
        return sorted(found, key=lambda r: (r.requested_at, r.id))

    # ------------------------------------------------------------------ the caller's side
    async def open_for(
        self,
        *,
        subject: str,
        tenant: str | None,
        server: str,
        kind: str | None,
        target: str | None,
        arguments: Mapping[str, Any] | None,
        shown_arguments: Mapping[str, Any],
        rule: str | None,
        approvers: Sequence[str],
        timeout: float,
        truncated: bool = False,
        all_of: Sequence[Sequence[str]] = (),
        person: str | None = None,
    ) -> ApprovalRequest:
        """The request bound to this exact call: the open or decided one, else a new pending one.

        ``truncated`` says ``shown_arguments`` are not all of ``arguments`` (the approver is told);
        ``all_of`` lists each asking rule's approver roles when several rules asked. ``person``
        is the caller as one person (:func:`~mcp_guard.ratelimit.subject_key`: the subject per
        issuer or tenant key book) when ``subject`` alone could name two: the request, and the
        caller's quota of pending ones, are bound to it, so a namesake vouched for by another
        issuer neither uses the person's approval nor fills their quota.
        """
        who = person or subject
        args_hash = arguments_hash(arguments)
        bind = _PREFIX + "bind:" + binding_hash(who, tenant, server, kind, target, args_hash)
        known = await self.store.get(bind)
        if known is not None:
            request = await self.get(known.decode())
            if request is not None and request.status in ("pending", "approved", "denied"):
                return request
        await self._admit(who, tenant, subject)
        now = self.clock()
        request = ApprovalRequest(
            id=_new_id(),
            status="pending",
            subject=subject,
            tenant=tenant,
            server=server,
            kind=kind,
            target=target,
            arguments=dict(shown_arguments),
            arguments_sha256=args_hash,
            rule=rule,
            approvers=tuple(approvers),
            requested_at=now,
            expires_at=now + timeout,
            timeout=timeout,
            truncated=truncated,
            all_of=tuple(tuple(group) for group in all_of),
        )
        await self._save(request)
        await self.store.set(bind, request.id.encode(), ttl=timeout + RETAIN)
        await self.store.sadd(self._open_key(who, tenant), request.id)
        await self._notify(request)
        return request

    @staticmethod
    def _open_key(subject: str, tenant: str | None) -> str:
        return _PREFIX + "open:" + binding_hash(subject, tenant, "", None, None, "")

    async def _admit(self, who: str, tenant: str | None, subject: str) -> None:
        """Refuse a new request when ``who`` already has :attr:`max_pending` pending ones.

        Concurrent first calls of one caller may each pass before the others are
        recorded: the cap bounds the store, it is not an exact quota.
        """
        key = self._open_key(who, tenant)
        pending = 0
        for request_id in await self.store.smembers(key):
            request = await self.get(request_id)
            if request is None or request.status != "pending":
                await self.store.srem(key, request_id)
            else:
                pending += 1
        if pending >= self.max_pending:
            refused = AccessDenied(
                f"{subject!r} has {pending} pending approval requests (at most {self.max_pending})"
            )
            refused.public_message = (
                f"Access denied: you have {pending} approval requests waiting; retry once an approver"
                " has decided them or they have expired"
            )
            raise refused

    async def redeem(self, request: ApprovalRequest) -> ApprovalRequest | None:
        """Use an approved request for one call; None when it is not (or no longer) usable."""
        if request.at(self.clock()).status != "approved":
            return None
        if await self.store.take(_PREFIX + "grant:" + request.id) is None:
            return None  # another retry used it first
        used = replace(request, status="used")
        await self._save(used)
        return used

    async def wait(
        self,
        request_id: str,
        seconds: float,
        tick: Callable[[ApprovalRequest, float], Awaitable[None]] | None = None,
    ) -> ApprovalRequest | None:
        """Wait up to ``seconds`` for a decision on ``request_id``; the request as it then stands.

        Wakes on the decision's message on :data:`CHANNEL`, else every
        :data:`POLL` seconds; ``tick(request, waited)`` runs before each wait
        (progress notifications), and an exception there ends the wait.
        """
        deadline = self.clock() + seconds
        started = self.clock()
        woke: list[anyio.Event] = [anyio.Event()]

        async def follow() -> None:
            try:
                async for message in self.store.subscribe(CHANNEL):
                    if message == request_id:
                        woke[0].set()
            except Exception:  # polling still finds the decision
                return

        async with anyio.create_task_group() as tg:
            tg.start_soon(follow)
            await anyio.sleep(0)  # let the subscription start before the first read
            while True:
                request = await self.get(request_id)
                left = deadline - self.clock()
                if request is None or request.status != "pending" or left <= 0:
                    break
                if tick is not None:
                    await tick(request, self.clock() - started)
                woke[0] = anyio.Event()
                with anyio.move_on_after(min(self.poll, left)):
                    await woke[0].wait()
            tg.cancel_scope.cancel()
        return request

    # ------------------------------------------------------------------ the approver's side
    async def decide(
        self,
        request_id: str,
        approve: bool,
        *,
        by: str,
        roles: frozenset[str] | set[str],
        note: str | None = None,
        tenant: str | None = None,
    ) -> ApprovalRequest:
        """Approve or deny a pending request as ``by`` of ``tenant`` holding ``roles``.

        Raises :class:`ApprovalError` when the id is unknown, the request is
        no longer pending, ``by`` asked for it (nobody approves their own
        call), belongs to another tenant than the caller (an approver without
        a tenant decides only requests without one) or holds none of its
        approver roles.
        """
        request = await self.get(request_id)
        if request is None:
            raise ApprovalError(f"no approval request {request_id!r}", unknown=True)
        if request.status != "pending":
            raise ApprovalError(f"approval request {request_id} is {request.status}, not pending")
        if by == request.subject:
            raise ApprovalError(f"{by!r} asked for {request_id}: nobody decides their own request")
        if tenant != request.tenant:
            raise ApprovalError(
                f"{by!r} (tenant {tenant or '(none)'}) may not decide {request_id},"
                f" a call of tenant {request.tenant or '(none)'}"
            )
        if request.all_of and not request.may_decide(roles):
            lists = "; ".join(", ".join(group) for group in request.all_of)
            raise ApprovalError(
                f"{by!r} must hold an approver role of every rule that asks for {request_id} ({lists})"
            )
        if not request.may_decide(roles):
            raise ApprovalError(
                f"{by!r} holds none of the approver roles of {request_id} ({', '.join(request.approvers)})"
            )
        verdict: Status = "approved" if approve else "denied"
        now = self.clock()
        key = _PREFIX + "decision:" + request_id
        if not await self.store.set_if_absent(key, verdict.encode(), ttl=request.timeout + RETAIN):
            raise ApprovalError(f"approval request {request_id} was decided meanwhile")
        # An approval is usable for ``timeout`` from now; a denial stays on record as long.
        decided = replace(request, status=verdict, decided_by=by, decided_at=now, note=note)
        decided = replace(decided, expires_at=now + request.timeout)
        if approve:
            await self.store.set(_PREFIX + "grant:" + request_id, b"1", ttl=request.timeout)
        await self._save(decided)
        await self.store.publish(CHANNEL, request_id)
        await self._notify(decided)
        return decided

    # ------------------------------------------------------------------ internals
    async def _save(self, request: ApprovalRequest) -> None:
        ttl = max(request.expires_at - self.clock(), 0.0) + RETAIN
        await self.store.set(_PREFIX + "req:" + request.id, request.dumps(), ttl=ttl)

    async def _notify(self, request: ApprovalRequest) -> None:
        for notifier in self.notifiers:
            try:
                await notifier.notify(request)
            except Exception:  # a notification hook never blocks a decision
                logging.getLogger("mcp_guard").exception("approval notifier %r failed", notifier)
