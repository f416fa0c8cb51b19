"""The server middleware over the in-memory transport, on both protocol eras."""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client, types
from mcp.shared.exceptions import MCPError

from mcp_guard import errors
from mcp_guard.guard import Guard
from mcp_guard.limits import SizeLimits
from mcp_guard.model import Principal

from .helpers import KeywordSanitizer, ListAuditor, RolePolicy, notes_server

MODES = ["legacy", "auto"]
ANALYST = Principal("alice", roles=frozenset({"analyst"}))


class _CustomRequest(types.Request[Any, Any]):
    method: str = "tasks/list"
    params: dict[str, Any] | None = None


def first_mcp_error(exc: BaseException) -> MCPError:
    """The MCPError inside an exception group raised by a client that failed to connect."""
    if isinstance(exc, MCPError):
        return exc
    for inner in getattr(exc, "exceptions", ()):
        return first_mcp_error(inner)
    raise AssertionError(f"no MCPError in {exc!r}")


def make(principal: Principal = ANALYST, **kw: Any) -> tuple[Any, Guard, ListAuditor, RolePolicy]:
    server = notes_server()
    auditor = ListAuditor()
    policy = RolePolicy({"analyst": {"add", "search_notes", "review", "notes://all"}})
    guard = Guard(policy=policy, auditor=auditor, anonymous=principal, **kw)
    guard.protect(server, read_env=False)
    return server, guard, auditor, policy


@pytest.mark.parametrize("mode", MODES)
async def test_allowed_call_and_filtered_lists(mode: str) -> None:
    server, _, auditor, _ = make()
    async with Client(server, mode=mode) as client:
        tools = await client.list_tools()
        assert sorted(t.name for t in tools.tools) == ["add", "search_notes"]
        result = await client.call_tool("add", {"a": 2, "b": 3})
        assert result.structured_content == {"result": 5}
        prompts = await client.list_prompts()
        assert [p.name for p in prompts.prompts] == ["review"]
        resources = await client.list_resources()
        assert [str(r.uri) for r in resources.resources] == ["notes://all"]
        read = await client.read_resource("notes://all")
        assert "n1" in read.contents[0].text  # type: ignore[union-attr]
    calls = [e for e in auditor.events if e.method == "tools/call"]
    assert calls and calls[0].decision == "allow" and calls[0].target == "add"
    assert calls[0].principal is not None and calls[0].principal["subject"] == "alice"
    lists = [e for e in auditor.events if e.method == "tools/list"]
    assert lists[0].result is not None
    # Items the policy hides from alice are not "withheld" (that is a verdict on the item itself).
    assert (lists[0].result.hidden, lists[0].result.withheld) == (2, 0)
    assert lists[0].reasons[-1] == "2 item(s) hidden by policy: delete_notes; poisoned"


@pytest.mark.parametrize("mode", MODES)
async def test_denied_call_never_reaches_handler_and_is_audited(mode: str) -> None:
    server, _, auditor, _ = make()
    async with Client(server, mode=mode) as client:
        with pytest.raises(MCPError) as exc:
            await client.call_tool("delete_notes", {"query": "x"})
    assert exc.value.code == errors.ACCESS_DENIED
    assert exc.value.message == "Access denied"
    denied = [e for e in auditor.events if e.decision == "deny"]
    assert denied[-1].target == "delete_notes"
    assert "alice may not use delete_notes" in denied[-1].reasons[0]


@pytest.mark.parametrize("mode", MODES)
async def test_hidden_tool_indistinguishable_from_unknown(mode: str) -> None:
    server, *_ = make()
    async with Client(server, mode=mode) as client:
        errs = []
        for name in ("delete_notes", "no_such_tool"):
            with pytest.raises(MCPError) as exc:
                await client.call_tool(name, {"query": "x"})
            errs.append((exc.value.code, exc.value.message, exc.value.data))
    assert errs[0] == errs[1]


@pytest.mark.parametrize("mode", MODES)
async def test_unknown_method_denied(mode: str) -> None:
    server, _, auditor, _ = make()
    async with Client(server, mode="legacy") as client:
        with pytest.raises(MCPError) as exc:
            await client.session.send_request(_CustomRequest(), types.EmptyResult)
    assert exc.value.code == errors.METHOD_NOT_FOUND
    assert any(e.method == "tasks/list" and e.decision == "deny" for e in auditor.events)


async def test_unauthenticated_refused_without_anonymous() -> None:
    server = notes_server()
    auditor = ListAuditor()
    guard = Guard(policy=RolePolicy({}), auditor=auditor)
    guard.protect(server, read_env=False)
    with pytest.raises(BaseException) as exc:
        async with Client(server, mode="legacy") as client:
            await client.list_tools()
    err = first_mcp_error(exc.value)
    assert err.code == errors.AUTHENTICATION_REQUIRED
    assert auditor.events and auditor.events[0].decision == "deny"


@pytest.mark.parametrize("stage", ["policy", "sanitizer", "audit", "authenticator"])
async def test_stage_failure_denies_and_audits(stage: str) -> None:
    class Broken:
        async def authenticate(self, credential: Any) -> Principal:
            raise RuntimeError("idp exploded")

    server = notes_server()
    auditor = ListAuditor()
    policy = RolePolicy({"analyst": {"add", "poisoned"}})
    sanitizer = KeywordSanitizer()
    if stage == "authenticator":
        guard = Guard(
            policy=policy,
            auditor=auditor,
            authenticators=[Broken()],
            inspect_results=True,
            sanitizers=[sanitizer],
        )
        mw_kwargs: dict[str, Any] = {"credential": "some-token"}
    else:
        guard = Guard(
            policy=policy, auditor=auditor, anonymous=ANALYST, inspect_results=True, sanitizers=[sanitizer]
        )
        mw_kwargs = {}
    guard.protect(server, read_env=False, **mw_kwargs)
    with pytest.raises(BaseException) as caught:
        async with Client(server, mode="legacy") as client:
            if stage == "policy":
                policy.fail = True
            elif stage == "sanitizer":
                sanitizer.fail = True
            elif stage == "audit":
                auditor.fail = True
            await client.call_tool("add", {"a": 1, "b": 1})
    err = first_mcp_error(caught.value)
    assert err.code == errors.GUARD_UNAVAILABLE
    if stage != "audit":
        assert auditor.events[-1].decision == "error"
        assert auditor.events[-1].method == ("initialize" if stage == "authenticator" else "tools/call")


async def test_blocked_result_is_refused() -> None:
    server, _guard, auditor, policy = make(inspect_results=True, sanitizers=[KeywordSanitizer()])
    policy.allowed["analyst"].add("search_notes")

    @server.tool()
    def leak() -> str:
        return "here is ~/.ssh/id_rsa"

    policy.allowed["analyst"].add("leak")
    async with Client(server, mode="legacy") as client:
        with pytest.raises(MCPError) as exc:
            await client.call_tool("leak", {})
    assert exc.value.code == errors.ACCESS_DENIED
    assert "result withheld" in auditor.events[-1].reasons[0]


async def test_oversized_arguments_refused() -> None:
    server, _, auditor, _ = make(size_limits=SizeLimits(max_arguments_bytes=100))
    async with Client(server, mode="legacy") as client:
        with pytest.raises(MCPError) as exc:
            await client.call_tool("search_notes", {"query": "x" * 500})
        ok = await client.call_tool("search_notes", {"query": "small"})
    assert exc.value.code == errors.PAYLOAD_TOO_LARGE
    assert ok.is_error is False
    assert any("above the limit" in r for e in auditor.events for r in e.reasons)


async def test_oversized_result_refused() -> None:
    server, _, _auditor, policy = make(size_limits=SizeLimits(max_result_bytes=1000))

    @server.tool()
    def big() -> str:
        return "y" * 5000

    policy.allowed["analyst"].add("big")
    async with Client(server, mode="legacy") as client:
        with pytest.raises(MCPError) as exc:
            await client.call_tool("big", {})
    assert exc.value.code == errors.PAYLOAD_TOO_LARGE


async def test_shadow_mode_allows_but_records_would_be_deny() -> None:
    server, _, auditor, _ = make(mode="shadow")
    async with Client(server, mode="legacy") as client:
        result = await client.call_tool("delete_notes", {"query": "x"})
    assert result.is_error is False
    event = [e for e in auditor.events if e.method == "tools/call"][-1]
    assert event.decision == "allow" and event.shadow is True


async def test_notifications_pass_the_chain() -> None:
    server, _, auditor, _ = make()
    async with Client(server, mode="legacy") as client:
        await client.send_ping()
    assert "notifications/initialized" in auditor.methods("allow")
    assert "ping" in auditor.methods("allow")


async def test_refusals_keep_the_rule_and_redactions_of_the_decision() -> None:
    """A policy deny names its rule; an allow refused later (step-up) still masks its redact fields."""
    from mcp_guard.policy import load_policy_text

    policy = load_policy_text(
        """
version = 1
[[rules]]
id = "notes-need-recent-mfa"
effect = "allow"
tools = ["add"]
redact = ["a"]
step_up = "15m"

[[rules]]
id = "nobody-searches"
effect = "deny"
tools = ["search_notes"]
"""
    )
    server = notes_server()
    auditor = ListAuditor()
    guard = Guard(policy=policy, auditor=auditor, anonymous=ANALYST)
    guard.protect(server, read_env=False)
    async with Client(server, mode="legacy") as client:
        with pytest.raises(MCPError):
            await client.call_tool("add", {"a": 4111, "b": 1})
        with pytest.raises(MCPError):
            await client.call_tool("search_notes", {"query": "x"})
    step_up, denied = [e for e in auditor.events if e.method == "tools/call"]
    assert step_up.decision == "deny" and step_up.rule == "notes-need-recent-mfa"
    assert "step-up required" in step_up.reasons[0]
    assert step_up.redact_fields == ("a",)
    assert denied.decision == "deny" and denied.rule == "nobody-searches"


@pytest.mark.parametrize("mode", MODES)
async def test_each_connection_keeps_its_own_session_id_and_client(mode: str) -> None:
    # The middleware looks the connection's facts up once per connection: two clients of one
    # server, alternating, must never be recorded under each other's session or name.
    server, _, auditor, _ = make()
    first, second = (
        types.Implementation(name="first", version="1"),
        types.Implementation(name="second", version="2"),
    )
    async with (
        Client(server, mode=mode, client_info=first) as a,
        Client(server, mode=mode, client_info=second) as b,
    ):
        for _ in range(2):
            await a.call_tool("add", {"a": 1, "b": 1})
            await b.call_tool("add", {"a": 2, "b": 2})
    calls = [e for e in auditor.events if e.method == "tools/call"]
    seen = {(e.client_name, e.client_version, e.arguments["a"] if e.arguments else None) for e in calls}
    assert seen == {("first", "1", 1), ("second", "2", 2)}
    if mode == "legacy":  # a 2026-07-28 connection has no session to group by
        by_client: dict[str | None, set[str | None]] = {}
        for event in calls:
            by_client.setdefault(event.client_name, set()).add(event.session_id)
        assert all(len(ids) == 1 and None not in ids for ids in by_client.values())
        assert by_client["first"] != by_client["second"]
