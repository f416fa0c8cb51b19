"""Approvals and confirmations bind the exact call, once, for the caller's own tenant."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from mcp import Client, types
from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.exceptions import MCPError
from mcp_types import InputRequiredResult

from mcp_guard.approvals import arguments_hash
from mcp_guard.confirm import INPUT_KEY
from mcp_guard.errors import ACCESS_DENIED, APPROVAL_PENDING, AccessDenied
from mcp_guard.guard import Guard
from mcp_guard.model import Principal
from mcp_guard.policy import policy_from_dict

from .helpers import ListAuditor

OLGA = Principal("olga", roles=frozenset({"ops"}))
ADMIN = frozenset({"admin"})


def nest(leaf: Any, depth: int) -> Any:
    value = [leaf]
    for _ in range(depth):
        value = [value]
    return value


def innermost(value: Any) -> Any:
    while isinstance(value, list):
        value = value[0]
    return value


def batch_server() -> MCPServer:
    server = MCPServer("ops")

    @server.tool()
    def run_batch(plan: Any) -> str:
        server.ran.append(innermost(plan))  # type: ignore[attr-defined]
        return "ran"

    server.ran = []  # type: ignore[attr-defined]
    return server


def guarded_batch(**rule_extra: Any) -> tuple[MCPServer, Guard, ListAuditor]:
    rule = {"id": "batch", "effect": "allow", "roles": ["ops"], "tools": ["run_batch"]} | rule_extra
    server, auditor = batch_server(), ListAuditor()
    guard = Guard(policy=policy_from_dict({"rules": [rule]}), auditor=auditor, anonymous=OLGA)
    guard.protect(server, read_env=False)
    return server, guard, auditor


# ---------------------------------------------------------------------- exact arguments (hash)
def test_the_hash_sees_every_level_of_nesting() -> None:
    assert arguments_hash({"plan": nest("echo hello", 70)}) != arguments_hash({"plan": nest("rm -rf /", 70)})


@pytest.mark.parametrize(
    "arguments",
    [
        {"plan": nest("x", 5000)},
        {"x": float("nan")},
        {"x": float("inf")},
        {"x": b"bytes"},
        {"x": object()},
        {"x": {1: "int key"}},
        {"x": {"a", "set"}},
    ],
    ids=["too-deep", "nan", "inf", "bytes", "object", "int-key", "set"],
)
def test_arguments_that_cannot_be_encoded_exactly_are_refused(arguments: dict[str, Any]) -> None:
    with pytest.raises(AccessDenied, match="cannot be bound exactly"):
        arguments_hash(arguments)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=20,
)


@given(json_values, json_values)
def test_different_json_arguments_never_share_a_hash(a: Any, b: Any) -> None:
    import json

    same = json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert (arguments_hash({"v": a}) == arguments_hash({"v": b})) == same


async def test_an_approval_for_deep_arguments_does_not_run_other_deep_arguments() -> None:
    server, guard, _ = guarded_batch(approval={"approvers": ["admin"], "timeout": "10m", "wait": "0"})
    async with Client(server, mode="legacy") as client:
        with pytest.raises(MCPError) as pending:
            await client.call_tool("run_batch", {"plan": nest("echo hello", 70)})
        request_id = pending.value.error.data["approvalId"]
        request = await guard.approvals.get(request_id)
        assert request is not None and request.truncated  # the approver is told they do not see it all
        await guard.approvals.decide(request_id, True, by="ada", roles=ADMIN)
        with pytest.raises(MCPError) as other:
            await client.call_tool("run_batch", {"plan": nest("rm -rf /", 70)})
        assert other.value.error.code == APPROVAL_PENDING
        assert other.value.error.data["approvalId"] != request_id
    assert server.ran == []  # type: ignore[attr-defined]


async def test_arguments_too_deep_to_bind_are_refused_with_the_rule_for_the_audit() -> None:
    from mcp_guard.classify import classify

    _, guard, _ = guarded_batch(approval={"approvers": ["admin"], "timeout": "10m", "wait": "0"})
    request, info = classify(
        "tools/call", {"name": "run_batch", "arguments": {"plan": nest("x", 5000)}}, "ops"
    )
    with pytest.raises(AccessDenied, match="cannot be bound exactly") as refused:
        await guard.authorize(OLGA, request, info)
    assert refused.value.decision is not None and refused.value.decision.rule == "batch"
    assert "cannot be bound exactly" in refused.value.public_message
    assert await guard.approvals.list() == []


async def test_a_confirmation_for_deep_arguments_does_not_run_other_deep_arguments() -> None:
    server, _, _ = guarded_batch(confirm="Run this plan?")

    async def accept(context: Any, params: Any) -> types.ElicitResult:
        return types.ElicitResult(action="accept")

    async with Client(server, mode="auto", elicitation_callback=accept) as client:
        first = await client.session.call_tool(
            "run_batch", {"plan": nest("echo hello", 70)}, allow_input_required=True
        )
        assert isinstance(first, types.InputRequiredResult)
        answer = {INPUT_KEY: types.ElicitResult(action="accept")}
        with pytest.raises(MCPError):
            await client.session.call_tool(
                "run_batch",
                {"plan": nest("rm -rf /", 70)},
                input_responses=answer,
                request_state=first.request_state,
                allow_input_required=True,
            )
    assert server.ran == []  # type: ignore[attr-defined]


# ---------------------------------------------------------------------- single-use envelopes
async def test_a_confirmed_envelope_for_the_handlers_next_round_is_single_use() -> None:
    server = MCPServer("bank")
    sent: list[tuple[int, str]] = []

    @server.tool()
    def transfer(amount: int, to: str, ctx: Context) -> str | InputRequiredResult:
        memo = (ctx.input_responses or {}).get("memo")
        if memo is None:
            ask = {"method": "elicitation/create", "params": {"mode": "form", "message": "memo?"}}
            ask["params"]["requestedSchema"] = {"type": "object", "properties": {}}  # type: ignore[index]
            return InputRequiredResult(input_requests={"memo": ask}, request_state="round2")
        sent.append((amount, to))
        return f"sent {amount} to {to}"

    rule = {"id": "t", "effect": "allow", "tools": ["transfer"], "confirm": "Transfer {amount} to {to}?"}
    guard = Guard(policy=policy_from_dict({"rules": [rule]}), anonymous=OLGA)
    guard.protect(server, read_env=False)

    async def accept(context: Any, params: Any) -> types.ElicitResult:
        return types.ElicitResult(action="accept")

    args = {"amount": 5000, "to": "mallory"}
    async with Client(server, mode="auto", elicitation_callback=accept) as client:
        s = client.session
        first = await s.call_tool("transfer", args, allow_input_required=True)
        assert isinstance(first, types.InputRequiredResult)
        ok = {INPUT_KEY: types.ElicitResult(action="accept")}
        second = await s.call_tool(
            "transfer", args, input_responses=ok, request_state=first.request_state, allow_input_required=True
        )
        assert isinstance(second, types.InputRequiredResult) and "memo" in (second.input_requests or {})
        memo = {"memo": types.ElicitResult(action="accept", content={})}
        done = await s.call_tool(
            "transfer",
            args,
            input_responses=memo,
            request_state=second.request_state,
            allow_input_required=True,
        )
        assert isinstance(done, types.CallToolResult) and done.is_error is False
        for _ in range(2):
            replay = await s.call_tool(
                "transfer",
                args,
                input_responses=memo,
                request_state=second.request_state,
                allow_input_required=True,
            )
            assert isinstance(replay, types.InputRequiredResult)  # asks the user again
            assert INPUT_KEY in (replay.input_requests or {})
    assert sent == [(5000, "mallory")]


# ---------------------------------------------------------------------- the question in the audit
@pytest.mark.parametrize("mode", ["legacy", "auto"])
@pytest.mark.parametrize("action", ["decline", "accept"])
async def test_the_audit_keeps_the_question_template_never_the_argument_values(
    mode: str, action: str
) -> None:
    server = MCPServer("bank")

    @server.tool()
    def wire(amount: int, iban: str) -> str:
        return "ok"

    rule = {
        "id": "wires",
        "effect": "allow",
        "tools": ["wire"],
        "confirm": "Wire {amount} to {iban}?",
        "redact": ["iban"],
    }
    auditor = ListAuditor()
    guard = Guard(policy=policy_from_dict({"rules": [rule]}), auditor=auditor, anonymous=OLGA)
    guard.protect(server, read_env=False)
    asked: list[str] = []

    async def answer(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        return types.ElicitResult(action=action)  # type: ignore[arg-type]

    async with Client(server, mode=mode, elicitation_callback=answer) as client:  # type: ignore[arg-type]
        with contextlib.suppress(MCPError):  # declined: refused; accepted: runs
            await client.call_tool("wire", {"amount": 5, "iban": "DE89370400440532013000"})
    assert asked == ["Wire 5 to DE89370400440532013000?"]  # the user sees the values
    events = [e for e in auditor.events if e.method == "tools/call"]
    assert events
    for event in events:
        text = repr((event.reasons, event.confirmation))  # the arguments get the rule's redaction
        assert "DE89370400440532013000" not in text
        assert "Wire 5 " not in text
    if action == "decline":  # the refusal names the question, as the rule wrote it
        assert "Wire {amount} to {iban}?" in " ".join(events[-1].reasons)


# ---------------------------------------------------------------------- flooding the book
async def test_one_caller_holds_a_bounded_number_of_pending_requests(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server, guard, auditor = guarded_batch(approval={"approvers": ["admin"], "timeout": "10m", "wait": "0"})
    guard.approvals.max_pending = 3
    with caplog.at_level("DEBUG", logger="mcp_guard.approvals"):
        async with Client(server, mode="legacy") as client:
            codes = []
            for i in range(5):
                with pytest.raises(MCPError) as refused:
                    await client.call_tool("run_batch", {"plan": [i]})
                codes.append(refused.value.error.code)
            assert codes == [APPROVAL_PENDING] * 3 + [ACCESS_DENIED] * 2
            assert "approval requests waiting" in refused.value.error.message
            with pytest.raises(MCPError) as same:  # a call already waiting still answers with its request
                await client.call_tool("run_batch", {"plan": [0]})
            assert same.value.error.code == APPROVAL_PENDING
            first = same.value.error.data["approvalId"]
            await guard.approvals.decide(first, False, by="ada", roles=ADMIN)
            with pytest.raises(MCPError) as room:  # a decision makes room
                await client.call_tool("run_batch", {"plan": [7]})
            assert room.value.error.code == APPROVAL_PENDING
    assert len(await guard.approvals.list()) == 3
    denied = [e for e in auditor.events if e.method == "tools/call" and e.error_code == ACCESS_DENIED]
    assert len(denied) == 2 and all("pending approval requests" in e.reasons[-1] for e in denied)
    assert denied[0].rule == "batch"
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1  # one notice per caller and minute; the rest at DEBUG
    assert sum("asks to run" in r.getMessage() for r in caplog.records) == 4


def test_other_callers_are_not_throttled_and_the_next_notice_counts_the_quiet_ones(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import anyio

    from mcp_guard.approvals import LoggingNotifier
    from mcp_guard.approvals.model import ApprovalRequest

    now = [1000.0]
    notifier = LoggingNotifier(clock=lambda: now[0])

    def request(subject: str, n: int) -> ApprovalRequest:
        return ApprovalRequest(
            id=f"apr-{n}", status="pending", subject=subject, server="s", target="x", arguments={},
            arguments_sha256="0", rule="a", approvers=("admin",), requested_at=0.0, expires_at=1.0,
            timeout=1.0,
        )  # fmt: skip

    with caplog.at_level("WARNING", logger="mcp_guard.approvals"):
        for n, who in enumerate(["olga", "olga", "olga", "ada"]):
            anyio.run(notifier.notify, request(who, n))
        now[0] += 61
        anyio.run(notifier.notify, request("olga", 9))
    lines = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert [line.split(":")[0] for line in lines] == ["approval apr-0", "approval apr-3", "approval apr-9"]
    assert "2 more from olga not shown" in lines[-1]


def test_the_cap_is_configured_in_guard_toml(tmp_path: Any) -> None:
    from mcp_guard import load_config

    (tmp_path / "guard.toml").write_text('[guard]\nstate = "memory://"\nmax_pending_approvals = 5\n')
    assert Guard.from_config(load_config(tmp_path / "guard.toml")).approvals.max_pending == 5
    (tmp_path / "guard.toml").write_text('[guard]\nstate = "memory://"\n')
    assert Guard.from_config(load_config(tmp_path / "guard.toml")).approvals.max_pending == 20


# ---------------------------------------------------------------------- several approval rules
async def test_with_several_approval_rules_the_approver_satisfies_every_rule() -> None:
    rules = [
        {
            "id": "ops",
            "effect": "allow",
            "roles": ["ops"],
            "tools": ["run_batch"],
            "approval": {"approvers": ["lead"]},
        },
        {"id": "strict", "effect": "allow", "tools": ["run_batch"], "approval": {"approvers": ["security"]}},
    ]
    server, auditor = batch_server(), ListAuditor()
    guard = Guard(policy=policy_from_dict({"rules": rules}), auditor=auditor, anonymous=OLGA)
    guard.protect(server, read_env=False)
    async with Client(server, mode="legacy") as client:
        with pytest.raises(MCPError) as pending:
            await client.call_tool("run_batch", {"plan": [1]})
    request_id = pending.value.error.data["approvalId"]
    from mcp_guard.approvals import ApprovalError

    with pytest.raises(ApprovalError, match="every rule"):
        await guard.approvals.decide(request_id, True, by="lee", roles={"lead"})  # the laxer rule only
    with pytest.raises(ApprovalError, match="every rule"):
        await guard.approvals.decide(request_id, True, by="sam", roles={"security"})
    decided = await guard.approvals.decide(request_id, True, by="ada", roles={"lead", "security"})
    assert decided.status == "approved"
