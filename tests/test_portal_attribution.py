"""Which call an upstream's request on a shared session belongs to: exactly one, or none.

Unit level, with stand-in links: the rules of :class:`SharedCalls` under any mix
of calls and other requests in flight (hypothesis), refusals and their records.
"""

from __future__ import annotations

from typing import Any

import anyio
from hypothesis import given
from hypothesis import strategies as st
from mcp import types

from mcp_guard.model import Principal
from mcp_guard.portal.attribution import CURRENT_CALL, Call, SharedCalls, declared

from .helpers import ListAuditor
from .test_portal_support import make_guard


class FakeLink:
    """Records what reached it instead of forwarding to a downstream session."""

    def __init__(self, name: str, subject: str | None = None) -> None:
        self.name = name
        self.principal = Principal(subject or name)
        self.asked: list[str] = []
        self.logged: list[str] = []
        self.audited: list[tuple[str, str]] = []

    async def sampling(self, context: Any, params: Any) -> Any:
        self.asked.append("sampling")
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text=self.name), model="m"
        )

    async def logging(self, params: types.LoggingMessageNotificationParams) -> None:
        self.logged.append(str(params.data))

    def _audit(self, method: str, decision: str, reasons: Any = (), code: Any = None) -> None:
        self.audited.append((method, decision))


def calls_of(
    n: int, allowed: frozenset[str] = frozenset({"sampling"}), subjects: list[str] | None = None
) -> list[Call]:
    names = subjects or [f"c{i}" for i in range(n)]
    return [Call(FakeLink(f"c{i}", names[i]), allowed) for i in range(n)]  # type: ignore[arg-type]


@given(
    subjects=st.lists(st.sampled_from(["alice", "bob"]), max_size=4),
    earlier=st.lists(st.sampled_from(["alice", "bob"]), max_size=3),
    others=st.integers(0, 3),
    current=st.one_of(st.none(), st.integers(0, 5)),
    by_stream=st.booleans(),
)
def test_a_request_is_attributed_to_one_registered_call_or_to_none(
    subjects: list[str], earlier: list[str], others: int, current: int | None, by_stream: bool
) -> None:
    n_calls = len(subjects)
    shared = SharedCalls(None, "up", by_stream=by_stream)
    for done in calls_of(len(earlier), subjects=earlier):  # calls the session carried and finished
        shared.enter(done)
        shared.leave(done)
    calls = calls_of(n_calls, subjects=subjects)
    for c in calls:
        shared.enter(c)
    for _ in range(others):
        shared.enter(None)
    # The context may name a call of this session, or one that is not (another session's, or over).
    named = calls[current] if current is not None and current < n_calls else None
    stranger = Call(FakeLink("stranger"), frozenset({"sampling"}))  # type: ignore[arg-type]
    token = CURRENT_CALL.set(named if current is None or current < n_calls else stranger)
    try:
        owner = shared.owner()
    finally:
        CURRENT_CALL.reset(token)
    if by_stream:
        assert owner is named  # exactly the call whose stream it came on, never a guess
    elif n_calls == 1 and others == 0 and set(earlier) <= set(subjects):
        assert owner is calls[0]  # alone, on a session that carried only this user's calls
    else:
        assert owner is None
    assert owner is None or owner in calls


def test_an_unattributed_request_is_refused_and_recorded_and_logs_are_dropped() -> None:
    auditor = ListAuditor()
    shared = SharedCalls(make_guard(auditor=auditor), "up", by_stream=False)
    a, b = calls_of(2)
    shared.enter(a)
    shared.enter(b)
    params = types.CreateMessageRequestParams(messages=[], max_tokens=5)
    log = types.LoggingMessageNotificationParams(level="info", data="line")

    async def main() -> None:
        refused = await shared.sampling(None, params)
        assert isinstance(refused, types.ErrorData) and refused.code == types.INVALID_REQUEST
        await shared.logging(log)
        await anyio.sleep(0.05)  # the guard records without waiting

    anyio.run(main)
    for call in (a, b):
        link: Any = call.link
        assert link.asked == [] and link.logged == []
    [event] = [e for e in auditor.events if e.method == "sampling/createMessage"]
    assert (event.decision, event.principal, event.server) == ("deny", None, "up")


def test_a_capability_the_caller_did_not_declare_is_refused_to_the_upstream() -> None:
    shared = SharedCalls(None, "up", by_stream=False)
    [call] = calls_of(1, allowed=frozenset({"elicitation"}))
    shared.enter(call)
    params = types.CreateMessageRequestParams(messages=[], max_tokens=5)
    refused = anyio.run(shared.sampling, None, params)
    link: Any = call.link
    assert isinstance(refused, types.ErrorData) and "does not support sampling" in refused.message
    assert link.asked == [] and link.audited == [("sampling/createMessage", "deny")]


def test_declared_capabilities_are_read_from_the_client() -> None:
    caps = types.ClientCapabilities(sampling=types.SamplingCapability(), roots=types.RootsCapability())
    assert declared(caps) == {"sampling", "roots"}
    assert declared(None) == frozenset()


def test_over_stdio_a_session_that_carried_two_users_attributes_nothing_again() -> None:
    auditor = ListAuditor()
    shared = SharedCalls(make_guard(auditor=auditor), "up", by_stream=False)
    [bob] = calls_of(1, subjects=["bob"])
    [alice, alice_again] = calls_of(2, subjects=["alice", "alice"])
    shared.enter(bob)
    assert shared.owner() is bob
    shared.leave(bob)  # bob's call returned (or timed out); his work may still be running upstream
    shared.enter(alice)
    params = types.CreateMessageRequestParams(messages=[], max_tokens=5)
    log = types.LoggingMessageNotificationParams(level="info", data="bob's line")

    async def main() -> None:
        refused = await shared.sampling(None, params)
        assert isinstance(refused, types.ErrorData) and "more than one user" in refused.message
        await shared.logging(log)
        await anyio.sleep(0.05)

    anyio.run(main)
    shared.leave(alice)
    shared.enter(alice_again)
    assert shared.owner() is None
    link: Any = alice.link
    assert link.asked == [] and link.logged == []
    decided = [(e.method, e.decision, e.principal) for e in auditor.events]
    assert decided == [("sampling/createMessage", "deny", None), ("notifications/message", "deny", None)]


def test_the_same_user_on_a_session_stays_attributed() -> None:
    shared = SharedCalls(None, "up", by_stream=False)
    first, second = calls_of(2, subjects=["bob", "bob"])
    shared.enter(first)
    shared.leave(first)
    shared.enter(second)
    assert shared.owner() is second
