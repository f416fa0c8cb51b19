"""The caller confirms: elicitation on 2025-11-25, a signed input_required round on 2026-07-28."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from mcp import Client, types
from mcp.shared.exceptions import MCPError

from mcp_guard.approvals import arguments_hash
from mcp_guard.confirm import INPUT_KEY, render
from mcp_guard.errors import ACCESS_DENIED
from mcp_guard.guard import Guard
from mcp_guard.model import Principal
from mcp_guard.policy import policy_from_dict

from .helpers import ListAuditor
from .test_hitl_approvals import bank

MODES = ["legacy", "auto"]
OLGA = Principal("olga", roles=frozenset({"ops"}))


def guarded(**extra: Any) -> tuple[Any, Guard, ListAuditor]:
    rule = {
        "id": "transfers",
        "effect": "allow",
        "tools": ["transfer"],
        "confirm": "Transfer {amount} to {to}?",
    }
    server, auditor = bank(), ListAuditor()
    guard = Guard(policy=policy_from_dict({"rules": [rule | extra]}), auditor=auditor, anonymous=OLGA)
    guard.protect(server, read_env=False)
    return server, guard, auditor


def answering(action: str, asked: list[str]) -> Any:
    async def callback(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        return types.ElicitResult(action=action)  # type: ignore[arg-type]

    return callback


def last_call(auditor: ListAuditor) -> Any:
    return [e for e in auditor.events if e.method == "tools/call"][-1]


@pytest.mark.parametrize("mode", MODES)
async def test_accepted_calls_run_once_confirmed(mode: str) -> None:
    server, _, auditor = guarded()
    asked: list[str] = []
    async with Client(server, mode=mode, elicitation_callback=answering("accept", asked)) as client:  # type: ignore[arg-type]
        result = await client.call_tool("transfer", {"amount": 5, "to": "bob"})
    assert result.is_error is False
    assert asked == ["Transfer 5 to bob?"]
    assert server.transfers == [(5, "bob")]
    event = last_call(auditor)
    assert event.decision == "allow"
    assert event.confirmation == {
        "by": "olga",
        "answer": "accept",
        "arguments_sha256": arguments_hash({"amount": 5, "to": "bob"}),
    }
    assert event.as_dict()["confirmation"]["answer"] == "accept"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("action", ["decline", "cancel"])
async def test_declined_or_cancelled_calls_are_refused(mode: str, action: str) -> None:
    server, _, auditor = guarded()
    asked: list[str] = []
    async with Client(server, mode=mode, elicitation_callback=answering(action, asked)) as client:  # type: ignore[arg-type]
        with pytest.raises(MCPError) as refused:
            await client.call_tool("transfer", {"amount": 5, "to": "eve"})
    assert refused.value.error.code == ACCESS_DENIED
    assert ("declined" if action == "decline" else "cancelled") in refused.value.error.message
    assert asked == ["Transfer 5 to eve?"] and server.transfers == []
    event = last_call(auditor)
    assert event.decision == "deny" and event.confirmation["answer"] == action
    assert f"answered {action!r}" in event.reasons[0]


@pytest.mark.parametrize("mode", MODES)
async def test_a_client_without_elicitation_is_refused(mode: str) -> None:
    server, _, auditor = guarded()
    async with Client(server, mode=mode) as client:  # type: ignore[arg-type]
        with pytest.raises(MCPError) as refused:
            await client.call_tool("transfer", {"amount": 5, "to": "bob"})
    assert refused.value.error.code == ACCESS_DENIED and server.transfers == []
    assert "your client cannot ask you" in refused.value.error.message  # the caller learns why
    assert "rule" not in refused.value.error.message  # but not the policy behind it
    event = last_call(auditor)
    assert event.confirmation["answer"] == "unsupported" and "cannot elicit" in event.reasons[0]


async def test_a_round_cannot_be_answered_for_other_arguments_or_replayed() -> None:
    server, _, _ = guarded()

    async def accept(context: Any, params: Any) -> types.ElicitResult:
        return types.ElicitResult(action="accept")

    async with Client(server, mode="auto", elicitation_callback=accept) as client:
        first = await client.session.call_tool(
            "transfer", {"amount": 5, "to": "bob"}, allow_input_required=True
        )
        assert isinstance(first, types.InputRequiredResult)
        assert first.input_requests is not None and INPUT_KEY in first.input_requests
        answer = {INPUT_KEY: types.ElicitResult(action="accept")}
        # The state is bound to the exact arguments: answering it for a bigger transfer fails.
        with pytest.raises(MCPError):
            await client.session.call_tool(
                "transfer",
                {"amount": 5000, "to": "bob"},
                input_responses=answer,
                request_state=first.request_state,
                allow_input_required=True,
            )
        done = await client.session.call_tool(
            "transfer",
            {"amount": 5, "to": "bob"},
            input_responses=answer,
            request_state=first.request_state,
            allow_input_required=True,
        )
        assert isinstance(done, types.CallToolResult) and done.is_error is False
        again = await client.session.call_tool(
            "transfer",
            {"amount": 5, "to": "bob"},
            input_responses=answer,
            request_state=first.request_state,
            allow_input_required=True,
        )
        assert isinstance(again, types.InputRequiredResult)  # the replayed answer asks anew
        unanswered = await client.session.call_tool(
            "transfer",
            {"amount": 5, "to": "bob"},
            request_state=first.request_state,
            allow_input_required=True,
        )
        assert isinstance(unanswered, types.InputRequiredResult)  # echoing the state is no answer
    assert server.transfers == [(5, "bob")]


async def test_confirm_then_approval_in_one_call() -> None:
    server, guard, auditor = guarded(approval={"approvers": ["admin"]})
    asked: list[str] = []
    async with Client(server, mode="legacy", elicitation_callback=answering("accept", asked)) as client:
        with pytest.raises(MCPError) as pending:
            await client.call_tool("transfer", {"amount": 5, "to": "bob"})
        await guard.approvals.decide(
            pending.value.error.data["approvalId"], True, by="ada", roles=frozenset({"admin"})
        )
        result = await client.call_tool("transfer", {"amount": 5, "to": "bob"})
    assert result.is_error is False and len(asked) == 2
    event = last_call(auditor)
    assert event.confirmation["answer"] == "accept" and event.approval["decided_by"] == "ada"


@given(st.dictionaries(st.sampled_from(["a", "b", "c"]), st.integers() | st.text(max_size=4), max_size=3))
def test_render_names_each_argument_and_nothing_else(arguments: dict[str, Any]) -> None:
    text = render("{a} and {b} {{x}} {c.d}", arguments)
    for name in ("a", "b"):
        value = arguments.get(name)
        shown = "(missing)" if name not in arguments else value if isinstance(value, str) else str(value)
        assert shown in text
    assert "{x}" in text and text.endswith("(missing)")


@pytest.mark.parametrize(("action", "runs"), [("accept", True), ("decline", False)])
async def test_the_client_wrapper_asks_the_hosts_user(action: str, runs: bool) -> None:
    from mcp_guard.integrations.client import guarded_client

    rule = {"id": "transfers", "effect": "allow", "tools": ["transfer"], "confirm": "Send {amount}?"}
    auditor = ListAuditor()
    guard = Guard(policy=policy_from_dict({"rules": [rule]}), auditor=auditor)
    upstream = bank()
    asked: list[str] = []
    async with guarded_client(
        guard, upstream, server="bank", principal=OLGA, elicitation_callback=answering(action, asked)
    ) as session:
        if runs:
            assert (await session.call_tool("transfer", {"amount": 3, "to": "bob"})).is_error is False
        else:
            with pytest.raises(MCPError):
                await session.call_tool("transfer", {"amount": 3, "to": "bob"})
    assert asked == ["Send 3?"]
    assert upstream.transfers == ([(3, "bob")] if runs else [])
    assert last_call(auditor).confirmation["answer"] == action


async def test_the_client_wrapper_without_a_callback_refuses() -> None:
    from mcp_guard.integrations.client import guarded_client

    rule = {"id": "transfers", "effect": "allow", "tools": ["transfer"], "confirm": "Send {amount}?"}
    guard = Guard(policy=policy_from_dict({"rules": [rule]}))
    upstream = bank()
    async with guarded_client(guard, upstream, server="bank", principal=OLGA) as session:
        with pytest.raises(MCPError):
            await session.call_tool("transfer", {"amount": 3, "to": "bob"})
    assert upstream.transfers == []
