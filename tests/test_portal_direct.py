"""Direct forwarding to HTTP upstreams (``[portal] forward``): same answers, same chain, no SDK session."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import types
from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.exceptions import MCPError

from mcp_guard.config import UpstreamSection, load_config
from mcp_guard.errors import ConfigError
from mcp_guard.guard import Guard
from mcp_guard.portal import Portal
from mcp_guard.portal.forwarding import HttpForwarder

from .helpers import ListAuditor
from .http_util import free_port, serve
from .test_portal_credentials import People
from .test_portal_forwarding import Probe, portal
from .test_portal_subscriptions import updates_into
from .test_portal_support import ServerPolicy, client, portal_http


class Lab:
    """An HTTP upstream with a tool for each thing a forwarded call may carry."""

    def __init__(self) -> None:
        self.started = anyio.Event()
        self.cancelled = anyio.Event()
        self.server = server = MCPServer("lab")

        @server.tool()
        def echo(text: str) -> str:
            """Echo the text."""
            return text

        @server.tool()
        def fail() -> str:
            """Raise."""
            raise ValueError("broken on purpose")

        @server.tool()
        async def count(to: int, ctx: Context) -> int:
            """Report progress up to ``to``."""
            for i in range(1, to + 1):
                await ctx.report_progress(i, to)
            return to

        @server.tool()
        async def chatty(ctx: Context) -> str:
            """Log one message per level."""
            await ctx.debug("a debug line")
            await ctx.error("an error line")
            return "said"

        @server.tool()
        async def slow() -> str:
            """Wait until cancelled."""
            self.started.set()
            try:
                await anyio.sleep(30)
            except anyio.get_cancelled_exc_class():
                self.cancelled.set()
                raise
            return "finished"

        @server.tool()
        async def ask(ctx: Context) -> str:
            """Ask the client's model, on the call's own stream."""
            try:
                text = types.TextContent(type="text", text="?")
                question = types.SamplingMessage(role="user", content=text)
                answer = await ctx.session.create_message(
                    messages=[question],
                    max_tokens=5,
                    related_request_id=ctx.request_id,
                )
            except MCPError as exc:
                return f"refused: {exc.error.message}"
            return f"answered: {answer.content.text}"  # type: ignore[union-attr]

        @server.prompt()
        def review(topic: str) -> str:
            return f"Review {topic}"

        @server.resource("lab://readme")
        def readme() -> str:
            return "read me"

        async def complete(ctx: Any, params: types.CompleteRequestParams) -> types.CompleteResult:
            values = [v for v in ("alpha", "beta", "alps") if v.startswith(params.argument.value)]
            return types.CompleteResult(completion=types.Completion(values=values, total=len(values)))

        low = server._lowlevel_server
        low.add_request_handler("completion/complete", types.CompleteRequestParams, complete)

    @contextmanager
    def running(self) -> Iterator[str]:
        with serve(self.server.streamable_http_app(), free_port()) as url:
            yield url + "/mcp"


def direct_portal(url: str, auditor: ListAuditor, **kw: Any) -> Portal:
    guard = Guard(
        policy=ServerPolicy({"staff": {("lab", "*")}}),
        authenticators=[People()],
        auditor=auditor,
        server="portal",
    )
    return Portal(guard, [UpstreamSection(name="lab", url=url, **kw)], forward=True)


@pytest.fixture
def forwarded(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The methods that went through the direct forwarder (and not through an SDK session)."""
    sent: list[str] = []
    original = HttpForwarder.request

    async def counting(self: HttpForwarder, method: str, params: Any, **kw: Any) -> Any:
        sent.append(method)
        return await original(self, method, params, **kw)

    monkeypatch.setattr(HttpForwarder, "request", counting)
    return sent


async def test_forwarded_requests_answer_as_before_and_are_audited_once(forwarded: list[str]) -> None:
    lab, auditor = Lab(), ListAuditor()
    with lab.running() as up, portal_http(direct_portal(up, auditor)) as url:
        async with client(url, "tok-alice") as c:
            result = await c.call_tool("lab__echo", {"text": "hi"})
            assert result.structured_content == {"result": "hi"} and not result.is_error
            failed = await c.call_tool("lab__fail", {})
            assert failed.is_error and "Error executing tool fail" in str(failed.content)
            prompt = await c.get_prompt("lab__review", {"topic": "the plan"})
            assert "Review the plan" in str(prompt.messages[0].content)
            read = await c.read_resource("lab://readme")
            assert read.contents[0].text == "read me"  # type: ignore[union-attr]
            ref = types.PromptReference(type="ref/prompt", name="lab__review")
            done = await c.complete(ref, {"name": "topic", "value": "al"})
            assert done.completion.values == ["alpha", "alps"]
            with pytest.raises(MCPError):
                await c.call_tool("lab__nothing", {})
    assert forwarded == ["tools/call", "tools/call", "prompts/get", "resources/read", "completion/complete"]
    calls = [e for e in auditor.events if e.method == "tools/call"]
    assert [(e.server, e.target, e.decision) for e in calls] == [
        ("lab", "echo", "allow"),
        ("lab", "fail", "allow"),
        ("mcp-guard-portal", "lab__nothing", "deny"),  # unknown names name no upstream
    ]
    assert [e.method for e in auditor.events if e.method in ("prompts/get", "resources/read")] == [
        "prompts/get",
        "resources/read",
    ]


async def test_progress_and_log_messages_reach_the_caller(forwarded: list[str]) -> None:
    lab, auditor = Lab(), ListAuditor()
    progress: list[float] = []
    lines: list[str] = []

    async def on_progress(p: float, total: float | None, message: str | None) -> None:
        progress.append(p)

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        lines.append(str(params.data))

    with lab.running() as up, portal_http(direct_portal(up, auditor)) as url:
        async with client(url, "tok-alice", logging_callback=on_log) as c:
            await c.set_logging_level("error")
            result = await c.call_tool("lab__count", {"to": 3}, progress_callback=on_progress)  # type: ignore[arg-type]
            await c.call_tool("lab__chatty", {})
    assert result.structured_content == {"result": 3}
    assert progress == [1, 2, 3]
    assert lines == ["an error line"]
    assert forwarded == ["tools/call", "tools/call"]


async def test_cancelling_the_caller_cancels_the_upstream_request(forwarded: list[str]) -> None:
    lab = Lab()
    with lab.running() as up, portal_http(direct_portal(up, ListAuditor())) as url:
        async with client(url, "tok-alice") as c:
            with anyio.move_on_after(10):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(c.call_tool, "lab__slow", {})
                    await lab.started.wait()
                    tg.cancel_scope.cancel()
            with anyio.fail_after(10):
                await lab.cancelled.wait()
            assert (await c.call_tool("lab__echo", {"text": "still here"})).structured_content == {
                "result": "still here"
            }
    assert forwarded == ["tools/call", "tools/call"]


async def test_a_hung_upstream_times_out_and_is_recorded(forwarded: list[str]) -> None:
    lab, auditor = Lab(), ListAuditor()
    with lab.running() as up, portal_http(direct_portal(up, auditor, timeout=1)) as url:
        async with client(url, "tok-alice") as c:
            with pytest.raises(MCPError, match="timed out"):
                await c.call_tool("lab__slow", {})
    [event] = [e for e in auditor.events if e.method == "tools/call"]
    assert event.outcome == "timeout"
    with anyio.fail_after(10):
        await lab.cancelled.wait()


async def test_a_forgotten_upstream_session_is_renewed(forwarded: list[str]) -> None:
    lab = Lab()
    with lab.running() as up:
        portal = direct_portal(up, ListAuditor())
        with portal_http(portal) as url:
            async with client(url, "tok-alice") as c:
                forwarder = portal.upstreams["lab"].forwarder
                assert forwarder is not None
                forwarder.session_id = "forgotten"
                result = await c.call_tool("lab__echo", {"text": "again"})
                assert result.structured_content == {"result": "again"}
                assert forwarder.session_id != "forgotten"


async def test_upstream_requests_on_a_forwarded_call_are_refused_and_recorded(forwarded: list[str]) -> None:
    lab, auditor = Lab(), ListAuditor()
    with lab.running() as up, portal_http(direct_portal(up, auditor)) as url:
        async with client(url, "tok-alice") as c:
            result = await c.call_tool("lab__ask", {})
    assert result.structured_content == {
        "result": "refused: sampling/createMessage refused: the client does not support sampling"
    }
    assert [e.decision for e in auditor.events if e.method == "sampling/createMessage"] == ["deny"]
    assert forwarded == ["tools/call"]


async def test_callers_that_can_be_asked_keep_the_session_path(forwarded: list[str]) -> None:
    lab = Lab()

    async def sample(context: Any, params: Any) -> types.CreateMessageResult:
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text="yes"), model="m"
        )

    with lab.running() as up, portal_http(direct_portal(up, ListAuditor())) as url:
        async with client(url, "tok-alice", sampling_callback=sample) as c:
            result = await c.call_tool("lab__ask", {})
            echoed = await c.call_tool("lab__echo", {"text": "x"})
    assert result.structured_content == {"result": "answered: yes"}
    assert echoed.structured_content == {"result": "x"}
    assert forwarded == []


def test_the_switch_is_read_from_the_config(tmp_path: Path) -> None:
    config = tmp_path / "guard.toml"
    config.write_text(
        '[portal]\nforward = true\n\n[[servers]]\nname = "lab"\nurl = "http://127.0.0.1:9/mcp"\n'
    )
    portal = Portal.from_guard_config(load_config(config), auditor=ListAuditor())
    assert portal._upstream_kw["forward"] is True
    config.write_text('[portal]\nforward = "sometimes"\n')
    with pytest.raises(ConfigError, match=r"guard.toml:2.*portal.forward"):
        load_config(config)
    config.write_text("[portal]\nforwrd = true\n")
    with pytest.raises(ConfigError, match="forward"):
        load_config(config)


async def test_updates_from_a_forwarded_call_reach_subscribers(forwarded: list[str]) -> None:
    probe = Probe()
    updates: list[str] = []
    with probe.running() as up, portal_http(portal(up, forward=True)) as url:
        async with (
            client(url, "tok-alice", message_handler=updates_into(updates)) as sub,
            client(url, "tok-bob") as other,
        ):
            await sub.subscribe_resource("probe://watched")
            await other.call_tool("probe__touch", {})
            with anyio.fail_after(5):
                while not updates:
                    await anyio.sleep(0.05)
    assert updates == ["probe://watched"]
    assert forwarded == ["tools/call"]
