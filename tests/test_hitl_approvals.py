"""Approval requests: the book in every state store, and the guard's -32004 flow in both protocol eras."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError

from mcp_guard.approvals import ApprovalBook, ApprovalError, arguments_hash
from mcp_guard.errors import ACCESS_DENIED, APPROVAL_PENDING
from mcp_guard.guard import Guard
from mcp_guard.model import Principal
from mcp_guard.policy import policy_from_dict
from mcp_guard.protocols import StateStore
from mcp_guard.store import SQLiteStore

from .helpers import ListAuditor

MODES = ["legacy", "auto"]
OLGA = Principal("olga", roles=frozenset({"ops"}))
ADMIN = frozenset({"admin"})
_prefixes = itertools.count()


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def _open(book: ApprovalBook, args: dict[str, Any] | None = None, subject: str = "olga") -> Any:
    args = {"amount": 5, "to": "bob"} if args is None else args
    return await book.open_for(
        subject=subject,
        tenant=None,
        server="bank",
        kind="tool",
        target="transfer",
        arguments=args,
        shown_arguments=args,
        rule="transfers",
        approvers=("admin",),
        timeout=600.0,
    )


# ---------------------------------------------------------------------- the book
async def test_a_request_is_listed_decided_once_and_redeemed_once(store: StateStore) -> None:
    book = ApprovalBook(store, notifiers=())
    request = await _open(book)
    assert request.status == "pending" and request.id.startswith("apr-")
    assert (await _open(book)).id == request.id  # the same call finds its open request
    assert [r.id for r in await book.list()] == [request.id]
    approved = await book.decide(request.id, True, by="ada", roles=ADMIN, note="ok")
    assert (approved.status, approved.decided_by, approved.note) == ("approved", "ada", "ok")
    with pytest.raises(ApprovalError, match="not pending"):
        await book.decide(request.id, False, by="ada", roles=ADMIN)
    results = []

    async def redeem() -> None:
        results.append(await book.redeem(approved))

    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(redeem)
    assert [r.status for r in results if r is not None] == ["used"]  # single use, even racing
    assert await book.list() == []
    assert [r.status for r in await book.list(everything=True)] == ["used"]
    assert (await _open(book)).id != request.id  # a used approval is never found again


async def test_nobody_approves_their_own_request_or_without_an_approver_role(store: StateStore) -> None:
    book = ApprovalBook(store, notifiers=())
    request = await _open(book, subject="ada")
    with pytest.raises(ApprovalError, match="their own request"):
        await book.decide(request.id, True, by="ada", roles=ADMIN)
    with pytest.raises(ApprovalError, match="none of the approver roles"):
        await book.decide(request.id, True, by="olga", roles=frozenset({"ops"}))
    with pytest.raises(ApprovalError) as unknown:
        await book.decide("apr-nope", True, by="ada", roles=ADMIN)
    assert unknown.value.unknown
    assert (await book.get(request.id)).status == "pending"  # type: ignore[union-attr]


async def test_other_arguments_are_another_request(store: StateStore) -> None:
    book = ApprovalBook(store, notifiers=())
    first = await _open(book, {"amount": 5, "to": "bob"})
    assert (await _open(book, {"to": "bob", "amount": 5})).id == first.id  # key order is no difference
    assert (await _open(book, {"amount": 5000, "to": "bob"})).id != first.id
    assert (await _open(book, {"amount": 5, "to": "bob"}, subject="other")).id != first.id


async def test_requests_and_approvals_expire(store: StateStore) -> None:
    clock = Clock()
    book = ApprovalBook(store, notifiers=(), clock=clock)
    request = await _open(book)
    clock.now += 601
    assert (await book.get(request.id)).status == "expired"  # type: ignore[union-attr]
    with pytest.raises(ApprovalError, match="expired, not pending"):
        await book.decide(request.id, True, by="ada", roles=ADMIN)
    fresh = await _open(book)
    assert fresh.id != request.id
    approved = await book.decide(fresh.id, True, by="ada", roles=ADMIN)
    clock.now += 601  # approved, but never used within the timeout
    assert await book.redeem(approved) is None
    assert (await book.get(fresh.id)).status == "expired"  # type: ignore[union-attr]


async def test_a_waiting_call_wakes_when_another_replica_decides(tmp_path: Path) -> None:
    here, there = SQLiteStore(tmp_path / "s.db", poll_interval=0.02), SQLiteStore(tmp_path / "s.db")
    try:
        waiting, deciding = ApprovalBook(here, notifiers=(), poll=30), ApprovalBook(there, notifiers=())
        request = await _open(waiting)
        ticks: list[float] = []

        async def tick(_: Any, waited: float) -> None:
            ticks.append(waited)

        async def approve_soon() -> None:
            await anyio.sleep(0.2)
            await deciding.decide(request.id, True, by="ada", roles=ADMIN)

        async with anyio.create_task_group() as tg:
            tg.start_soon(approve_soon)
            with anyio.fail_after(10):  # far below the 30 s poll: the published decision woke it
                decided = await waiting.wait(request.id, 20, tick)
        assert decided is not None and decided.status == "approved"
        assert len(ticks) == 1  # one tick per wake-up: no poll ran before the decision
    finally:
        await here.aclose()
        await there.aclose()


def test_the_arguments_hash_is_the_sorted_canonical_json() -> None:
    import hashlib

    assert (
        arguments_hash({"b": [1, {"d": 1, "c": "é"}], "a": None})
        == hashlib.sha256(b'{"a":null,"b":[1,{"c":"\\u00e9","d":1}]}').hexdigest()
    )


# ---------------------------------------------------------------------- through the guard
def bank() -> MCPServer:
    server = MCPServer("bank")

    @server.tool()
    def transfer(amount: int, to: str) -> str:
        server.transfers.append((amount, to))  # type: ignore[attr-defined]
        return f"sent {amount} to {to}"

    server.transfers = []  # type: ignore[attr-defined]
    return server


def guarded(wait: str = "0", principal: Principal = OLGA) -> tuple[MCPServer, Guard, ListAuditor]:
    rule = {
        "id": "transfers",
        "effect": "allow",
        "roles": ["ops"],
        "tools": ["transfer"],
        "approval": {"approvers": ["admin"], "timeout": "10m", "wait": wait},
    }
    server, auditor = bank(), ListAuditor()
    guard = Guard(policy=policy_from_dict({"rules": [rule]}), auditor=auditor, anonymous=principal)
    guard.protect(server, read_env=False)
    return server, guard, auditor


def calls(auditor: ListAuditor) -> list[Any]:
    return [e for e in auditor.events if e.method == "tools/call"]


@pytest.mark.parametrize("mode", MODES)
async def test_pending_then_approved_then_the_retry_runs_once(mode: str) -> None:
    server, guard, auditor = guarded()
    args = {"amount": 5, "to": "bob"}
    async with Client(server, mode=mode) as client:  # type: ignore[arg-type]
        with pytest.raises(MCPError) as pending:
            await client.call_tool("transfer", args)
        assert pending.value.error.code == APPROVAL_PENDING
        request_id = pending.value.error.data["approvalId"]
        assert request_id in pending.value.error.message
        with pytest.raises(MCPError) as again:
            await client.call_tool("transfer", args)  # asking again before a decision: same request
        assert again.value.error.data["approvalId"] == request_id
        await guard.approvals.decide(request_id, True, by="ada", roles=ADMIN)
        with pytest.raises(MCPError) as other:
            await client.call_tool("transfer", {"amount": 6, "to": "bob"})  # other arguments
        assert other.value.error.data["approvalId"] != request_id
        result = await client.call_tool("transfer", args)
        assert result.is_error is False
        with pytest.raises(MCPError) as replay:
            await client.call_tool("transfer", args)  # single use: a replay needs a new approval
        assert replay.value.error.code == APPROVAL_PENDING
        assert replay.value.error.data["approvalId"] not in (request_id, other.value.error.data["approvalId"])
    assert server.transfers == [(5, "bob")]  # type: ignore[attr-defined]
    events = calls(auditor)
    assert [(e.decision, e.approval["status"]) for e in events] == [
        ("deny", "pending"),
        ("deny", "pending"),
        ("deny", "pending"),
        ("allow", "used"),
        ("deny", "pending"),
    ]
    ran = events[3]
    assert ran.approval == {
        "id": request_id,
        "status": "used",
        "requested_by": "olga",
        "decided_by": "ada",
        "arguments_sha256": arguments_hash(args),
    }
    assert ran.as_dict()["approval"]["id"] == request_id
    assert events[0].error_code == APPROVAL_PENDING and request_id in events[0].reasons[0]


@pytest.mark.parametrize("mode", MODES)
async def test_denied_calls_are_refused_with_the_note(mode: str) -> None:
    server, guard, auditor = guarded()
    async with Client(server, mode=mode) as client:  # type: ignore[arg-type]
        with pytest.raises(MCPError) as pending:
            await client.call_tool("transfer", {"amount": 5, "to": "eve"})
        request_id = pending.value.error.data["approvalId"]
        await guard.approvals.decide(request_id, False, by="ada", roles=ADMIN, note="not eve")
        with pytest.raises(MCPError) as denied:
            await client.call_tool("transfer", {"amount": 5, "to": "eve"})
        assert denied.value.error.code == ACCESS_DENIED
    assert server.transfers == []  # type: ignore[attr-defined]
    last = calls(auditor)[-1]
    assert last.approval["status"] == "denied" and last.approval["decided_by"] == "ada"
    assert "denied by ada: not eve" in last.reasons[0]


@pytest.mark.parametrize("mode", MODES)
async def test_approved_while_the_call_waits(mode: str) -> None:
    server, guard, auditor = guarded(wait="20s")

    async def approve_when_asked() -> None:
        while not await guard.approvals.list():
            await anyio.sleep(0.01)
        (request,) = await guard.approvals.list()
        await guard.approvals.decide(request.id, True, by="ada", roles=ADMIN)

    async with Client(server, mode=mode) as client, anyio.create_task_group() as tg:  # type: ignore[arg-type]
        tg.start_soon(approve_when_asked)
        with anyio.fail_after(10):
            result = await client.call_tool("transfer", {"amount": 7, "to": "bob"})
    assert result.is_error is False
    assert server.transfers == [(7, "bob")]  # type: ignore[attr-defined]
    (event,) = calls(auditor)
    assert event.decision == "allow" and event.approval["decided_by"] == "ada"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=10,
)


@given(st.dictionaries(st.text(max_size=4), json_values, max_size=4), st.randoms())
def test_the_hash_ignores_key_order_only(arguments: dict[str, Any], rnd: Any) -> None:
    def shuffled(value: Any) -> Any:
        if isinstance(value, dict):
            items = list(value.items())
            rnd.shuffle(items)
            return {k: shuffled(v) for k, v in items}
        if isinstance(value, list):
            return [shuffled(v) for v in value]
        return value

    assert arguments_hash(shuffled(arguments)) == arguments_hash(arguments)
    changed = {**arguments, "\x00extra": 1}
    assert arguments_hash(changed) != arguments_hash(arguments)


@pytest.mark.parametrize("mode", MODES)
async def test_a_waiting_call_reports_progress_naming_the_request(mode: str) -> None:
    server, guard, _ = guarded(wait="20s")
    guard.approvals.poll = 0.05  # several ticks before the decision
    notes: list[tuple[float, str | None]] = []

    async def progress(value: float, total: float | None, message: str | None) -> None:
        notes.append((value, message))

    async def approve_later() -> None:
        while len(notes) < 3:
            await anyio.sleep(0.01)
        (request,) = await guard.approvals.list()
        await guard.approvals.decide(request.id, True, by="ada", roles=ADMIN)

    async with Client(server, mode=mode) as client, anyio.create_task_group() as tg:  # type: ignore[arg-type]
        tg.start_soon(approve_later)
        with anyio.fail_after(10):
            args = {"amount": 8, "to": "bob"}
            result = await client.call_tool("transfer", args, progress_callback=progress)
    assert result.is_error is False
    (request,) = await guard.approvals.list(everything=True)
    assert len(notes) >= 3 and all(f"waiting for approval {request.id}" in (m or "") for _, m in notes)
    assert [v for v, _ in notes] == sorted(v for v, _ in notes)


async def test_a_call_waiting_on_one_replica_runs_when_another_approves(tmp_path: Path) -> None:
    rule = {
        "id": "transfers",
        "effect": "allow",
        "tools": ["transfer"],
        "approval": {"approvers": ["admin"], "timeout": "10m", "wait": "20s"},
    }
    stores = [SQLiteStore(tmp_path / "state.db", poll_interval=0.02) for _ in range(2)]
    waiting = Guard(policy=policy_from_dict({"rules": [rule]}), anonymous=OLGA, store=stores[0])
    waiting.approvals.poll = 30  # only the published decision can wake it in time
    other = ApprovalBook(stores[1], notifiers=())
    server = bank()
    waiting.protect(server, read_env=False)

    async def approve_elsewhere() -> None:
        while not (pending := await other.list()):
            await anyio.sleep(0.02)
        await other.decide(pending[0].id, True, by="ada", roles=ADMIN)

    try:
        async with Client(server, mode="legacy") as client, anyio.create_task_group() as tg:
            tg.start_soon(approve_elsewhere)
            with anyio.fail_after(10):
                result = await client.call_tool("transfer", {"amount": 9, "to": "bob"})
        assert result.is_error is False and server.transfers == [(9, "bob")]  # type: ignore[attr-defined]
    finally:
        for store in stores:
            await store.aclose()


def test_the_pending_notice_prints_a_command_that_works_where_it_is_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Run elsewhere, ``approvals approve ID`` would read another state store and act as the OS user."""
    from mcp_guard import load_config
    from mcp_guard.approvals.model import ApprovalRequest

    (tmp_path / "policy.toml").write_text('[[rules]]\nid = "a"\neffect = "allow"\ntools = ["x"]\n')
    (tmp_path / "guard.toml").write_text('[guard]\npolicy = "policy.toml"\nstate = "memory://"\n')
    guard = Guard.from_config(load_config(tmp_path / "guard.toml"))
    request = ApprovalRequest(
        id="apr-1", status="pending", subject="olga", server="s", target="x", arguments={},
        arguments_sha256="0", rule="a", approvers=("admin",), requested_at=0.0, expires_at=1.0, timeout=1.0,
    )  # fmt: skip
    with caplog.at_level("WARNING", logger="mcp_guard.approvals"):
        anyio.run(guard.approvals.notifiers[0].notify, request)
    assert f"approve|deny apr-1 --as APPROVER --config {tmp_path / 'guard.toml'}" in caplog.text
