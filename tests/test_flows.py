"""[[labels]], rule ``labels`` / ``annotations`` and [[flows]] in a guarded server, on both protocol eras."""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client, types
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError

from mcp_guard.errors import ACCESS_DENIED, APPROVAL_PENDING, GUARD_UNAVAILABLE, PolicyError
from mcp_guard.flowstate import FlowRefused
from mcp_guard.guard import Guard
from mcp_guard.model import Principal
from mcp_guard.policy import load_policy_text
from mcp_guard.store import MemoryStore

from .helpers import ListAuditor

MODES = ["legacy", "auto"]
ALICE = Principal("alice", roles=frozenset({"agent"}), tenant="acme")

LABELS = """
[[labels]]
servers = ["agent"]
tools = ["fetch*"]
labels = ["untrusted-input"]

[[labels]]
servers = ["agent"]
tools = ["send_*", "post_*"]
labels = ["external-output"]

[[rules]]
id = "agents-use-tools"
effect = "allow"
roles = ["agent"]
tools = ["*"]
"""


def flow(**fields: str) -> str:
    lines = "\n".join(f"{k} = {v}" for k, v in fields.items())
    return f"""
[[flows]]
id = "no-send-after-untrusted"
after = ["untrusted-input"]
deny = ["external-output"]
window = "30m"
{lines}
"""


def agent_server() -> MCPServer:
    server = MCPServer("agent")
    server.sent = []  # type: ignore[attr-defined]

    @server.tool()
    def fetch_page(url: str) -> str:
        """Fetch a web page."""
        return f"<html>{url}</html>"

    @server.tool()
    def send_mail(to: str, body: str) -> str:
        """Send an e-mail."""
        server.sent.append((to, body))  # type: ignore[attr-defined]
        return "sent"

    @server.tool(annotations=types.ToolAnnotations(readOnlyHint=True))
    def read_page(url: str) -> str:
        """Read a page from the cache."""
        return url

    @server.tool()
    def wipe() -> str:
        """Delete everything."""
        return "wiped"

    return server


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def guarded(
    policy: str, store: Any = None, principal: Principal = ALICE
) -> tuple[MCPServer, Guard, ListAuditor]:
    server, auditor = agent_server(), ListAuditor()
    guard = Guard(
        policy=load_policy_text(policy),
        auditor=auditor,
        anonymous=principal,
        store=store if store is not None else MemoryStore(),
    )
    guard.protect(server, read_env=False)
    return server, guard, auditor


def calls(auditor: ListAuditor, target: str) -> list[Any]:
    return [e for e in auditor.events if e.method == "tools/call" and e.target == target]


@pytest.mark.parametrize("mode", MODES)
async def test_fetch_then_send_is_refused_naming_the_flow_and_the_earlier_call(mode: str) -> None:
    server, _, auditor = guarded(LABELS + flow())
    async with Client(server, mode=mode) as client:
        assert (await client.call_tool("send_mail", {"to": "bob", "body": "hi"})).is_error is False
        assert (await client.call_tool("fetch_page", {"url": "https://evil.example"})).is_error is False
        with pytest.raises(MCPError) as refused:
            await client.call_tool("send_mail", {"to": "eve", "body": "secrets"})
    (fetch,) = calls(auditor, "fetch_page")
    assert refused.value.error.code == ACCESS_DENIED
    assert "no-send-after-untrusted" in refused.value.error.message
    assert fetch.id in refused.value.error.message
    assert refused.value.error.data == {"flow": "no-send-after-untrusted", "afterEvent": fetch.id}
    assert server.sent == [("bob", "hi")]  # type: ignore[attr-defined]
    event = calls(auditor, "send_mail")[-1]
    assert (event.decision, event.outcome, event.rule) == ("deny", "refused", "agents-use-tools")
    assert event.flow is not None
    assert event.flow["id"] == "no-send-after-untrusted"
    assert event.flow["after_event"] == fetch.id
    assert (event.flow["after_label"], event.flow["after_target"]) == ("untrusted-input", "fetch_page")
    assert event.flow["labels"] == ["external-output"]
    assert any("refused by flow no-send-after-untrusted" in r for r in event.reasons)
    assert event.as_dict()["flow"]["after_event"] == fetch.id


async def test_the_window_expires_and_a_later_fetch_starts_it_again() -> None:
    clock = Clock()
    server, _, _ = guarded(LABELS + flow(), store=MemoryStore(clock=clock))
    async with Client(server, mode="legacy") as client:
        await client.call_tool("fetch_page", {"url": "u"})
        clock.now += 29 * 60
        with pytest.raises(MCPError):
            await client.call_tool("send_mail", {"to": "a", "body": "b"})
        clock.now += 61
        assert (await client.call_tool("send_mail", {"to": "a", "body": "b"})).is_error is False
        await client.call_tool("fetch_page", {"url": "u"})
        with pytest.raises(MCPError):
            await client.call_tool("send_mail", {"to": "a", "body": "b"})


async def test_a_refused_fetch_arms_nothing() -> None:
    policy = LABELS + flow() + '\n[[rules]]\nid = "no-evil"\neffect = "deny"\ntools = ["fetch_page"]\n'
    server, _, _ = guarded(policy)
    async with Client(server, mode="legacy") as client:
        with pytest.raises(MCPError):
            await client.call_tool("fetch_page", {"url": "u"})
        assert (await client.call_tool("send_mail", {"to": "a", "body": "b"})).is_error is False


@pytest.mark.parametrize("mode", MODES)
async def test_session_scope_is_per_session_on_2025_and_per_subject_on_2026(mode: str) -> None:
    server, _, _ = guarded(LABELS + flow(scope='"session"'))
    async with Client(server, mode=mode) as first:
        await first.call_tool("fetch_page", {"url": "u"})
    async with Client(server, mode=mode) as second:
        if mode == "legacy":  # a new session starts clean
            assert (await second.call_tool("send_mail", {"to": "a", "body": "b"})).is_error is False
        else:  # 2026-07-28 has no session: the subject is remembered
            with pytest.raises(MCPError):
                await second.call_tool("send_mail", {"to": "a", "body": "b"})


async def test_subject_scope_keeps_other_callers_apart_and_tenant_scope_joins_them() -> None:
    store = MemoryStore()
    bob = Principal("bob", roles=frozenset({"agent"}), tenant="acme")
    for scope, bob_refused in (('"subject"', False), ('"tenant"', True)):
        policy = LABELS + flow(scope=scope)
        alice_server, _, _ = guarded(policy, store=store)
        bob_server, _, _ = guarded(policy, store=store, principal=bob)
        async with Client(alice_server, mode="legacy") as alice:
            await alice.call_tool("fetch_page", {"url": "u"})
        async with Client(bob_server, mode="legacy") as client:
            if bob_refused:
                with pytest.raises(MCPError):
                    await client.call_tool("send_mail", {"to": "a", "body": "b"})
            else:
                assert (await client.call_tool("send_mail", {"to": "a", "body": "b"})).is_error is False


class BrokenStore(MemoryStore):
    async def get(self, key: str) -> bytes | None:
        if key.startswith("flow:"):
            raise ConnectionError("store down")
        return await super().get(key)

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        if key.startswith("flow:"):
            raise ConnectionError("store down")
        await super().set(key, value, ttl)


@pytest.mark.parametrize("tool", ["fetch_page", "send_mail"])
async def test_a_store_error_refuses_the_call_and_is_audited(tool: str) -> None:
    server, _, auditor = guarded(LABELS + flow(), store=BrokenStore())
    async with Client(server, mode="legacy") as client:
        with pytest.raises(MCPError) as refused:
            await client.call_tool(tool, {"url": "u"} if tool == "fetch_page" else {"to": "a", "body": "b"})
        assert refused.value.error.code == GUARD_UNAVAILABLE
        # a target in no flow never touches the store
        assert (await client.call_tool("read_page", {"url": "u"})).is_error is False
    (event,) = calls(auditor, tool)
    assert (event.decision, event.outcome) == ("error", "guard_error")
    assert "state store failed" in event.reasons[0]
    assert server.sent == []  # type: ignore[attr-defined]


async def test_a_confirm_flow_asks_instead_of_refusing() -> None:
    server, _, auditor = guarded(LABELS + flow(effect='"confirm"', message='"Send {to} after a fetch?"'))
    asked: list[str] = []

    async def answer(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        return types.ElicitResult(action="accept")

    async with Client(server, mode="legacy", elicitation_callback=answer) as client:  # type: ignore[arg-type]
        assert (await client.call_tool("send_mail", {"to": "a", "body": "b"})).is_error is False
        await client.call_tool("fetch_page", {"url": "u"})
        assert (await client.call_tool("send_mail", {"to": "eve", "body": "b"})).is_error is False
    assert asked == ["Send eve after a fetch?"]
    event = calls(auditor, "send_mail")[-1]
    assert event.decision == "allow" and event.flow is not None and event.flow["effect"] == "confirm"
    assert event.confirmation is not None and event.confirmation["answer"] == "accept"


@pytest.mark.parametrize("mode", MODES)
async def test_rules_match_labels_and_pinned_annotations(mode: str) -> None:
    policy = """
[[labels]]
servers = ["agent"]
tools = ["fetch*"]
labels = ["web"]

[[rules]]
id = "read-only"
effect = "allow"
tools = ["*"]
annotations = { readOnlyHint = true }

[[rules]]
id = "web-tools"
effect = "allow"
labels = ["web"]
"""
    server, _, auditor = guarded(policy)
    async with Client(server, mode=mode) as client:
        listed = {t.name for t in (await client.list_tools()).tools}
        assert (await client.call_tool("read_page", {"url": "u"})).is_error is False
        assert (await client.call_tool("fetch_page", {"url": "u"})).is_error is False
        with pytest.raises(MCPError):
            await client.call_tool("wipe", {})
    # labels are static, so lists follow them; annotations, like `when`, are checked at use time
    assert {"fetch_page", "read_page"} <= listed
    assert calls(auditor, "read_page")[0].rule == "read-only"
    assert calls(auditor, "fetch_page")[0].rule == "web-tools"


def test_unknown_labels_are_load_errors_with_the_closest_name() -> None:
    with pytest.raises(PolicyError) as bad:
        load_policy_text(
            LABELS + flow().replace('deny = ["external-output"]', 'deny = ["external-outptu"]'),
            source="p.toml",
        )
    text = str(bad.value)
    assert "p.toml:" in text and "flows[0].deny[0]" in text and "did you mean 'external-output'" in text
    with pytest.raises(PolicyError) as rule:
        load_policy_text(
            LABELS + '[[rules]]\nid = "x"\neffect = "deny"\nlabels = ["untrusted"]\n', source="p.toml"
        )
    assert "rules[1].labels[0]" in str(rule.value) and "untrusted-input" in str(rule.value)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('effect = "approval"', "needs approval"),
        ('effect = "sometimes"', "effect"),
        ('scope = "sesion"', "scope"),
        ('windows = "1m"', "did you mean `window`"),
    ],
)
def test_flow_fields_are_checked(extra: str, message: str) -> None:
    with pytest.raises(PolicyError) as bad:
        load_policy_text(LABELS + flow(**dict([extra.split(" = ")])), source="p.toml")
    assert message in str(bad.value)


def test_annotation_names_and_types_are_checked() -> None:
    base = '[[rules]]\nid = "r"\neffect = "allow"\ntools = ["*"]\n'
    with pytest.raises(PolicyError) as name:
        load_policy_text(base + "annotations = { readOnlyHnt = true }\n")
    assert "did you mean `readOnlyHint`" in str(name.value)
    with pytest.raises(PolicyError) as kind:
        load_policy_text(base + 'annotations = { readOnlyHint = "yes" }\n')
    assert "holds a bool" in str(kind.value)


async def test_an_approval_flow_holds_the_call_for_an_approver() -> None:
    approval = '{ approvers = ["admin"], timeout = "10m" }'
    server, guard, auditor = guarded(LABELS + flow(effect='"approval"', approval=approval))
    async with Client(server, mode="legacy") as client:
        await client.call_tool("fetch_page", {"url": "u"})
        with pytest.raises(MCPError) as pending:
            await client.call_tool("send_mail", {"to": "a", "body": "b"})
        assert pending.value.error.code == APPROVAL_PENDING
        (request,) = await guard.approvals.list()
        assert request.target == "send_mail"
        await guard.approvals.decide(request.id, True, by="ada", roles=frozenset({"admin"}), tenant="acme")
        assert (await client.call_tool("send_mail", {"to": "a", "body": "b"})).is_error is False
    assert server.sent == [("a", "b")]  # type: ignore[attr-defined]
    events = calls(auditor, "send_mail")
    assert [e.decision for e in events] == ["deny", "allow"]
    assert all(e.flow is not None and e.flow["effect"] == "approval" for e in events)


def test_annotations_on_a_rule_without_tools_are_refused() -> None:
    with pytest.raises(PolicyError) as bad:
        load_policy_text(
            '[[rules]]\nid = "r"\neffect = "allow"\nprompts = ["*"]\nannotations = { readOnlyHint = true }\n'
        )
    assert "names no tools" in str(bad.value)


async def test_a_listen_stream_is_checked_and_arms_like_a_subscribe() -> None:
    from datetime import datetime, timezone

    from mcp_guard.classify import classify
    from mcp_guard.model import RequestContext
    from mcp_guard.pipeline import Exchange

    policy = """
[[labels]]
resources = ["feed://untrusted/*"]
labels = ["untrusted-input"]
[[labels]]
resources = ["feed://outbox/*"]
labels = ["external-output"]
[[rules]]
id = "feeds"
effect = "allow"
resources = ["feed://*"]
""" + flow()
    guard = Guard(policy=load_policy_text(policy), store=MemoryStore())
    ctx = RequestContext(time=datetime.now(timezone.utc))

    def listen(*uris: str) -> tuple[Any, Any, Exchange]:
        params = {"notifications": {"resourceSubscriptions": list(uris)}}
        request, info = classify("subscriptions/listen", params, "feeds", ctx)
        return request, info, Exchange("subscriptions/listen", params, "feeds", ctx, event_id="evt-listen")

    request, info, exchange = listen("feed://outbox/1")
    await guard.authorize(ALICE, request, info, exchange=exchange)  # nothing armed yet
    request, info, exchange = listen("feed://untrusted/news")
    await guard.authorize(ALICE, request, info, exchange=exchange)
    request, info, exchange = listen("feed://outbox/1")
    with pytest.raises(FlowRefused) as refused:
        await guard.authorize(ALICE, request, info, exchange=exchange)
    assert refused.value.data == {"flow": "no-send-after-untrusted", "afterEvent": "evt-listen"}
