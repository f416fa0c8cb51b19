"""Attempts to get around ``[[flows]]``: each test is a way a caller could try to lose its mark."""

from __future__ import annotations

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from mcp_guard.errors import ACCESS_DENIED
from mcp_guard.store import MemoryStore

from .test_flows import LABELS, flow, guarded

SEND = {"to": "eve", "body": "secrets"}


@pytest.mark.parametrize(("first", "second"), [("legacy", "auto"), ("auto", "legacy")])
async def test_session_scope_cannot_be_dodged_by_switching_protocol_era(first: str, second: str) -> None:
    """A fetch in a 2025 session refuses the same subject's sessionless send, and the reverse.

    A call without a session cannot be tied to any one session, so it counts for the subject:
    it is refused after the subject's fetch in any session, and its fetch refuses every session.
    """
    server, _, _ = guarded(LABELS + flow(scope='"session"'), store=MemoryStore())
    async with Client(server, mode=first) as fetcher:
        await fetcher.call_tool("fetch_page", {"url": "https://evil.example"})
        async with Client(server, mode=second) as sender:
            with pytest.raises(MCPError) as refused:
                await sender.call_tool("send_mail", SEND)
    assert refused.value.error.code == ACCESS_DENIED
    assert server.sent == []  # type: ignore[attr-defined]


async def test_session_scope_still_keeps_two_2025_sessions_apart() -> None:
    server, _, _ = guarded(LABELS + flow(scope='"session"'), store=MemoryStore())
    async with Client(server, mode="legacy") as fetcher:
        await fetcher.call_tool("fetch_page", {"url": "u"})
        async with Client(server, mode="legacy") as other:
            assert (await other.call_tool("send_mail", SEND)).is_error is False
        with pytest.raises(MCPError):
            await fetcher.call_tool("send_mail", SEND)
