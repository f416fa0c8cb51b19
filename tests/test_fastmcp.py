"""A FastMCP server guarded in one line, driven by FastMCP's own ``Client`` in memory and over HTTP.

FastMCP tags and tool annotations reach the policy as ``request.tags`` and
``request.annotations``.
"""

from __future__ import annotations

from typing import Any

import pytest

fastmcp = pytest.importorskip("fastmcp")

from fastmcp import Client, FastMCP  # noqa: E402
from fastmcp.client.transports import StreamableHttpTransport  # noqa: E402
from mcp.shared.exceptions import MCPError  # noqa: E402
from mcp_types import ToolAnnotations  # noqa: E402

from mcp_guard import Guard, Principal  # noqa: E402
from mcp_guard.policy import policy_from_dict  # noqa: E402
from mcp_guard.protocols import Credential  # noqa: E402

from .helpers import ListAuditor  # noqa: E402
from .http_util import free_port, serve  # noqa: E402

POLICY = {
    "version": 1,
    "rules": [
        # Analysts may call any tool tagged "reports"; nothing destructive, whatever its tags.
        {
            "id": "analysts-reports",
            "effect": "allow",
            "roles": ["analyst"],
            "tools": ["*"],
            "when": '"reports" in request.tags',
        },
        {
            "id": "no-destructive",
            "effect": "deny",
            "tools": ["*"],
            "when": "has(request.annotations.destructiveHint) && request.annotations.destructiveHint",
        },
        {"id": "admins", "effect": "allow", "roles": ["admin"], "tools": ["*"]},
    ],
}
ALICE = Principal("alice", roles=frozenset({"analyst"}))


class Tokens:
    """Bearer tokens to principals (an Authenticator plugin)."""

    async def authenticate(self, credential: Credential) -> Principal | None:
        return {"tok-alice": ALICE}.get(credential.token or "")


def build() -> FastMCP:
    mcp = FastMCP("reports")

    @mcp.tool(tags={"reports"}, annotations=ToolAnnotations(readOnlyHint=True))
    def revenue(quarter: str) -> str:
        """Revenue of one quarter."""
        return f"revenue {quarter}: 42"

    @mcp.tool(tags={"reports"}, annotations=ToolAnnotations(destructiveHint=True))
    def purge_reports() -> str:
        """Delete every report."""
        return "purged"

    @mcp.tool(tags={"admin"})
    def rotate_keys() -> str:
        """Rotate the signing keys."""
        return "rotated"

    return mcp


def guarded(auditor: ListAuditor, **kw: Any) -> tuple[Guard, FastMCP]:
    guard = Guard(policy=policy_from_dict(POLICY), auditor=auditor, server="reports", **kw)
    mcp = guard.protect(build())  # the one line
    return guard, mcp


async def test_in_memory_client_sees_and_calls_only_what_policy_allows() -> None:
    auditor = ListAuditor()
    _, mcp = guarded(auditor, anonymous=ALICE)
    async with Client(mcp) as client:
        names = {t.name for t in await client.list_tools()}
        result = await client.call_tool("revenue", {"quarter": "Q1"})
        assert result.content[0].text == "revenue Q1: 42"  # type: ignore[union-attr]
        with pytest.raises(MCPError, match="denied"):
            await client.call_tool("purge_reports", {})
        with pytest.raises(MCPError):
            await client.call_tool("rotate_keys", {})
    # A `when` is not evaluated at list time: every tool a conditional allow names is listed.
    assert names == {"revenue", "purge_reports", "rotate_keys"}
    calls = [e for e in auditor.events if e.method == "tools/call"]
    assert [(e.target, e.decision, e.rule) for e in calls] == [
        ("revenue", "allow", "analysts-reports"),
        ("purge_reports", "deny", "no-destructive"),
        ("rotate_keys", "deny", None),
    ]


async def test_tags_and_annotations_are_what_the_policy_sees() -> None:
    seen: list[Any] = []

    class Spy:
        def decide(self, principal: Principal, request: Any) -> Any:
            seen.append((request.target, sorted(request.tags), dict(request.annotations)))
            from mcp_guard import Decision

            return Decision.allow("spy")

        def visible(self, principal: Principal, server: str, kind: str, name: str) -> bool:
            return True

    guard = Guard(policy=Spy(), anonymous=ALICE, auditor=ListAuditor())
    async with Client(guard.protect(build())) as client:
        await client.call_tool("revenue", {"quarter": "Q2"})
        await client.call_tool("rotate_keys", {})
    assert seen == [
        ("revenue", ["reports"], {"readOnlyHint": True}),
        ("rotate_keys", ["admin"], {}),
    ]


async def test_unknown_tool_is_refused_by_the_policy_not_crashed() -> None:
    auditor = ListAuditor()
    _, mcp = guarded(auditor, anonymous=ALICE)
    async with Client(mcp) as client:
        with pytest.raises(MCPError):
            await client.call_tool("no_such_tool", {})
    assert [(e.target, e.decision) for e in auditor.events if e.method == "tools/call"] == [
        ("no_such_tool", "deny")
    ]


async def test_a_failing_describe_fails_closed() -> None:
    auditor = ListAuditor()
    _, mcp = guarded(auditor, anonymous=ALICE)

    async def broken(name: str, version: Any = None) -> Any:
        raise RuntimeError("registry exploded")

    mcp.get_tool = broken  # type: ignore[method-assign]
    async with Client(mcp) as client:
        with pytest.raises(MCPError):
            await client.call_tool("revenue", {"quarter": "Q1"})
    event = next(e for e in auditor.events if e.method == "tools/call")
    assert event.decision == "error" and "registry exploded" in event.reasons[0]


def test_over_http_with_fastmcp_client() -> None:
    auditor = ListAuditor()
    guard, mcp = guarded(auditor, authenticators=[Tokens()])
    port = free_port()
    app = guard.http_app(mcp)

    async def scenario(url: str) -> None:
        async with Client(StreamableHttpTransport(url + "/mcp", auth="tok-alice")) as client:
            assert "revenue" in {t.name for t in await client.list_tools()}
            result = await client.call_tool("revenue", {"quarter": "Q3"})
            assert result.content[0].text == "revenue Q3: 42"  # type: ignore[union-attr]
            with pytest.raises(MCPError):
                await client.call_tool("purge_reports", {})
        with pytest.raises(Exception):  # noqa: B017 - no token: refused before any MCP method
            async with Client(StreamableHttpTransport(url + "/mcp")) as anonymous:
                await anonymous.list_tools()

    import anyio

    with serve(app, port) as url:
        anyio.run(scenario, url)
    calls = [(e.target, e.decision, e.transport) for e in auditor.events if e.method == "tools/call"]
    assert calls == [("revenue", "allow", "http"), ("purge_reports", "deny", "http")]
    assert any(e.principal is None and e.decision == "deny" for e in auditor.events)


def test_http_app_refuses_dns_rebinding_by_default() -> None:
    import httpx

    from .http_util import INITIALIZE, MCP_HEADERS

    guard, mcp = guarded(ListAuditor(), anonymous=ALICE)
    with serve(guard.http_app(mcp), free_port()) as url:
        foreign_host = httpx.post(
            url + "/mcp", json=INITIALIZE, headers={**MCP_HEADERS, "Host": "evil.example"}
        )
        foreign_origin = httpx.post(
            url + "/mcp", json=INITIALIZE, headers={**MCP_HEADERS, "Origin": "http://evil.example"}
        )
        local = httpx.post(url + "/mcp", json=INITIALIZE, headers={**MCP_HEADERS, "Origin": url})
    assert (foreign_host.status_code, foreign_origin.status_code) == (421, 403)
    assert local.status_code == 200


def test_policy_check_requests_carry_tags_and_annotations() -> None:
    from mcp_guard.policy.requests import request_from_data

    policy = policy_from_dict(POLICY)
    base = {"principal": {"subject": "a", "roles": ["analyst"]}, "action": "call", "server": "reports"}
    _, tagged = request_from_data({**base, "target": "x", "tags": ["reports"]})
    _, destructive = request_from_data(
        {**base, "target": "x", "tags": ["reports"], "annotations": {"destructiveHint": True}}
    )
    _, untagged = request_from_data({**base, "target": "x"})
    assert policy.decide(ALICE, tagged).rule == "analysts-reports"
    assert policy.decide(ALICE, destructive).rule == "no-destructive"
    assert not policy.decide(ALICE, untagged).allowed


async def test_tags_are_looked_up_only_when_a_condition_may_read_them() -> None:
    plain = {"version": 1, "rules": [{"id": "all", "effect": "allow", "tools": ["*"]}]}
    for policy, expected in ((plain, 0), (POLICY, 1)):
        guard = Guard(policy=policy_from_dict(policy), anonymous=ALICE, auditor=ListAuditor())
        mcp = guard.protect(build())
        looked_up: list[str] = []
        original = mcp.get_tool

        async def counting(
            name: str, version: Any = None, original: Any = original, looked_up: list[str] = looked_up
        ) -> Any:
            looked_up.append(name)
            return await original(name, version)

        mcp.get_tool = counting  # type: ignore[method-assign]
        async with Client(mcp) as client:
            looked_up.clear()
            await client.call_tool("revenue", {"quarter": "Q1"})
        # FastMCP itself looks the tool up once to run it; the guard adds one only when needed.
        assert looked_up.count("revenue") - 1 == expected, (policy, looked_up)
