"""The portal over streamable HTTP in front of real stdio upstreams, both protocol eras."""

from __future__ import annotations

import pytest
from mcp.shared.exceptions import MCPError

from mcp_guard import errors
from mcp_guard.portal import Portal

from .helpers import ListAuditor
from .test_portal_support import GRANTS, ServerPolicy, client, make_guard, portal_http, stdio

MODES = ["legacy", "auto"]


def build(auditor: ListAuditor, policy: ServerPolicy | None = None) -> Portal:
    guard = make_guard(policy, auditor)
    return Portal(
        guard, [stdio("notes", "notes_server.py"), stdio("weather", "weather_server.py", prefix="wx_")]
    )


@pytest.mark.parametrize("mode", MODES)
async def test_namespaced_lists_are_filtered_per_principal(mode: str) -> None:
    auditor = ListAuditor()
    with portal_http(build(auditor)) as url:
        async with client(url, "tok-alice", mode) as c:
            names = sorted(t.name for t in (await c.list_tools()).tools)
            assert names == [
                "notes__add_note",
                "notes__delete_note",
                "notes__echo",
                "notes__search_notes",
                "wx_forecast",
            ]
            prompts = [p.name for p in (await c.list_prompts()).prompts]
            assert prompts == ["notes__summarize"]
            uris = [str(r.uri) for r in (await c.list_resources()).resources]
            assert uris == ["notes://all"]
            templates = [t.uri_template for t in (await c.list_resource_templates()).resource_templates]
            assert templates == ["notes://note/{note_id}"]
        async with client(url, "tok-bob", mode) as c:
            assert sorted(t.name for t in (await c.list_tools()).tools) == [
                "notes__search_notes",
                "wx_forecast",
            ]
            assert (await c.list_prompts()).prompts == []


@pytest.mark.parametrize("mode", MODES)
async def test_calls_route_to_the_upstream_with_unprefixed_names(mode: str) -> None:
    auditor = ListAuditor()
    policy = ServerPolicy(GRANTS)
    with portal_http(build(auditor, policy)) as url:
        async with client(url, "tok-alice", mode) as c:
            policy.decided.clear()
            result = await c.call_tool("wx_forecast", {"city": "Oslo"})
            assert result.content[0].text == "Oslo: sunny, 21 C"  # type: ignore[union-attr]
            assert policy.decided == [("weather", "forecast", "tools/call")]
            found = await c.call_tool("notes__search_notes", {"query": "staging"})
            assert "Rotate the staging keys" in str(found.content)
            prompt = await c.get_prompt("notes__summarize", {"topic": "keys"})
            assert "keys" in str(prompt.messages[0].content)
            read = await c.read_resource("notes://all")
            assert "Quarterly" in str(read.contents[0])
            one = await c.read_resource("notes://note/2")
            assert "staging" in str(one.contents[0])
    calls = [e for e in auditor.events if e.method == "tools/call" and e.decision == "allow"]
    assert [(e.server, e.target) for e in calls] == [("weather", "forecast"), ("notes", "search_notes")]
    assert all(e.principal and e.principal["subject"] == "alice" for e in calls)


@pytest.mark.parametrize("mode", MODES)
async def test_denied_hidden_unknown_and_poisoned_look_alike(mode: str) -> None:
    auditor = ListAuditor()
    with portal_http(build(auditor)) as url:
        async with client(url, "tok-bob", mode) as c:
            codes = []
            for name in ("notes__delete_note", "notes__no_such_tool", "wx_weather_alerts", "delete_note"):
                with pytest.raises(MCPError) as exc:
                    await c.call_tool(name, {"note_id": "1"})
                codes.append((exc.value.code, exc.value.message))
            assert set(codes) == {(errors.ACCESS_DENIED, "Access denied")}
        async with client(url, "tok-alice", mode) as c:
            # The poisoned tool is withheld for everyone, even a principal allowed everything on `weather`.
            assert "wx_weather_alerts" not in [t.name for t in (await c.list_tools()).tools]
            with pytest.raises(MCPError) as exc:
                await c.call_tool("wx_weather_alerts", {"city": "Oslo"})
            assert exc.value.code == errors.ACCESS_DENIED
    denied = [e for e in auditor.events if e.decision == "deny" and e.method == "tools/call"]
    assert ("notes", "delete_note") in [(e.server, e.target) for e in denied]
    # Withholding the poisoned tool is itself on record, with the finding that caused it.
    screened = [e for e in auditor.events if e.method == "upstream/screen" and e.server == "weather"]
    assert screened and screened[0].decision == "deny" and screened[0].result is not None
    assert screened[0].result.withheld >= 1
    assert any("weather_alerts" in f.message for f in screened[0].result.findings)


async def test_missing_or_forged_credentials_are_refused() -> None:
    auditor = ListAuditor()
    with portal_http(build(auditor)) as url:
        for token in (None, "forged"):
            with pytest.raises(BaseException) as caught:
                async with client(url, token) as c:
                    await c.list_tools()
            assert "Authentication required" in repr(caught.value) or "-32001" in repr(caught.value)


async def test_example_config_policy_and_time_upstream() -> None:
    """examples/portal: the project's policy engine over three upstreams, two users, one poisoned tool."""
    from mcp_guard.config import load_config
    from mcp_guard.guard import Guard
    from mcp_guard.policy import load_policy
    from mcp_guard.portal.portal import resolve_spec

    from .helpers import KeywordSanitizer
    from .test_portal_support import EXAMPLES, TokenTable

    config = load_config(EXAMPLES / "guard.toml")
    auditor = ListAuditor()
    guard = Guard(
        policy=load_policy(EXAMPLES / "policy.toml"),
        authenticators=[TokenTable()],
        auditor=auditor,
        sanitizers=[KeywordSanitizer()],
    )
    portal = Portal(guard, [resolve_spec(config, s) for s in config.servers])
    with portal_http(portal) as url:
        async with client(url, "tok-alice") as c:
            alice = sorted(t.name for t in (await c.list_tools()).tools)
            assert "time__convert_time" in alice and "notes__add_note" in alice
            now = await c.call_tool("time__get_current_time", {"timezone": "UTC"})
            assert "UTC" in str(now.content)
            # Denied by the `when` rule (no MFA) although visible: conditions apply at use.
            with pytest.raises(MCPError):
                await c.call_tool("notes__delete_note", {"note_id": "1"})
        async with client(url, "tok-bob") as c:
            bob = sorted(t.name for t in (await c.list_tools()).tools)
            assert bob == ["notes__search_notes", "time__get_current_time", "wx_forecast"]
    assert "wx_weather_alerts" not in alice
    deny = [e for e in auditor.events if e.method == "tools/call" and e.decision == "deny"]
    assert [(e.server, e.target, e.rule) for e in deny][:1] == [
        ("notes", "delete_note", "no-deletes-without-mfa")
    ]
