"""Isolation and recovery: a crashing or hanging upstream affects only its own tools."""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest
from mcp import types
from mcp.shared.exceptions import MCPError

from mcp_guard import errors
from mcp_guard.portal import Portal

from .helpers import ListAuditor
from .test_portal_support import client, make_guard, portal_http, stdio


def build(auditor: ListAuditor) -> Portal:
    return Portal(
        make_guard(auditor=auditor),
        [stdio("lab", "lab_server.py", timeout=2.0), stdio("notes", "notes_server.py")],
        ping_interval=0.3,
        backoff=(0.1, 0.5),
    )


async def _tool_names(c: Any) -> list[str]:
    return sorted(t.name for t in (await c.list_tools()).tools)


async def _wait_for(c: Any, name: str, present: bool = True, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while (name in await _tool_names(c)) != present:
        assert time.monotonic() < deadline, f"{name} present={not present} after {timeout}s"
        await anyio.sleep(0.1)


async def test_crash_is_isolated_and_the_upstream_restarts() -> None:
    auditor = ListAuditor()
    portal = build(auditor)
    with portal_http(portal) as url:
        async with client(url, "tok-alice") as c:
            first = (await c.call_tool("lab__pid", {})).structured_content
            with pytest.raises(MCPError) as exc:
                await c.call_tool("lab__crash", {})
            assert exc.value.code == errors.GUARD_UNAVAILABLE
            # Other upstreams keep working through the same downstream session.
            assert (await c.call_tool("notes__echo", {"text": "hi"})).structured_content == {"result": "hi"}
            # Until the crash is noticed the tool may still be listed; once restarted, a new process answers.
            deadline = time.monotonic() + 15
            second = first
            while second == first:
                assert time.monotonic() < deadline, "lab was not restarted"
                try:
                    second = (await c.call_tool("lab__pid", {})).structured_content
                except MCPError as refused:
                    assert refused.code in (errors.ACCESS_DENIED, errors.GUARD_UNAVAILABLE)
                    await anyio.sleep(0.1)
            assert portal.upstreams["lab"].restarts >= 1


async def test_hang_times_out_and_the_upstream_is_replaced() -> None:
    auditor = ListAuditor()
    with portal_http(build(auditor)) as url:
        async with client(url, "tok-alice") as c:
            before = (await c.call_tool("lab__pid", {})).structured_content
            started = time.monotonic()
            with pytest.raises(MCPError) as exc:
                await c.call_tool("lab__hang", {"seconds": 30})
            assert time.monotonic() - started < 6
            assert exc.value.code == errors.GUARD_UNAVAILABLE
            assert (await c.call_tool("notes__echo", {"text": "still"})).structured_content == {
                "result": "still"
            }
            # The hung process stops answering pings: its items leave the lists, then it comes back.
            await _wait_for(c, "lab__pid", present=False)
            await _wait_for(c, "lab__pid")
            after = (await c.call_tool("lab__pid", {})).structured_content
            assert after != before


async def test_list_changes_and_progress_are_forwarded() -> None:
    auditor = ListAuditor()
    seen: list[str] = []

    async def on_message(message: Any) -> None:
        root = getattr(message, "root", message)
        if isinstance(root, types.ToolListChangedNotification):
            seen.append("tools")

    progress: list[tuple[float, float | None]] = []

    async def on_progress(p: float, total: float | None, message: str | None) -> None:
        progress.append((p, total))

    with portal_http(build(auditor)) as url:
        async with client(url, "tok-alice", message_handler=on_message) as c:
            assert "lab__extra" not in await _tool_names(c)
            await c.call_tool("lab__grow", {})
            await _wait_for(c, "lab__extra")
            with anyio.fail_after(5):
                while not seen:
                    await anyio.sleep(0.05)
            assert (await c.call_tool("lab__extra", {})).structured_content == {"result": "extra"}
            result = await c.call_tool("lab__count", {"to": 3}, progress_callback=on_progress)  # type: ignore[arg-type]
            assert result.structured_content == {"result": 3}
            assert [p for p, _ in progress] == [1, 2, 3]


async def test_sampling_and_logs_reach_the_caller_who_made_the_call() -> None:
    auditor = ListAuditor()
    portal = Portal(make_guard(auditor=auditor), [stdio("lab", "lab_server.py")], callbacks=["lab"])
    logs: dict[str, list[str]] = {"one": [], "two": []}

    def sampler(who: str) -> Any:
        async def sample(context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
            return types.CreateMessageResult(
                role="assistant", content=types.TextContent(type="text", text=f"{who} answers"), model="m"
            )

        return sample

    def logger(who: str) -> Any:
        async def log(params: types.LoggingMessageNotificationParams) -> None:
            logs[who].append(str(params.data))

        return log

    with portal_http(portal) as url:
        async with (
            client(url, "tok-alice", sampling_callback=sampler("one"), logging_callback=logger("one")) as c1,
            client(url, "tok-alice", sampling_callback=sampler("two"), logging_callback=logger("two")) as c2,
        ):
            async with anyio.create_task_group() as tg:
                results: dict[str, Any] = {}

                async def ask(name: str, c: Any) -> None:
                    results[name] = (
                        await c.call_tool("lab__ask", {"question": f"q-{name}"})
                    ).structured_content

                tg.start_soon(ask, "one", c1)
                tg.start_soon(ask, "two", c2)
            assert results == {"one": {"result": "one answers"}, "two": {"result": "two answers"}}
            assert logs == {"one": ["asking: q-one"], "two": ["asking: q-two"]}
    forwarded = [e for e in auditor.events if e.method == "sampling/createMessage"]
    assert len(forwarded) == 2 and all(e.server == "lab" and e.decision == "allow" for e in forwarded)


async def test_sampling_on_2026_travels_in_input_required_results_to_the_right_caller() -> None:
    auditor = ListAuditor()
    portal = Portal(make_guard(auditor=auditor), [stdio("lab", "lab_server.py")], callbacks=["lab"])

    def sampler(who: str) -> Any:
        async def sample(context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
            return types.CreateMessageResult(
                role="assistant", content=types.TextContent(type="text", text=f"{who} answers"), model="m"
            )

        return sample

    answer = types.CreateMessageResult(
        role="assistant", content=types.TextContent(type="text", text="forged"), model="m"
    )
    with portal_http(portal) as url:
        async with (
            client(url, "tok-alice", "auto", sampling_callback=sampler("one")) as c1,
            client(url, "tok-alice", "auto", sampling_callback=sampler("two")) as c2,
            client(url, "tok-bob", "auto") as other,
        ):
            results: dict[str, Any] = {}

            async def ask(name: str, c: Any) -> None:
                results[name] = (await c.call_tool("lab__ask", {"question": f"q-{name}"})).structured_content

            async with anyio.create_task_group() as tg:
                tg.start_soon(ask, "one", c1)
                tg.start_soon(ask, "two", c2)
            assert results == {"one": {"result": "one answers"}, "two": {"result": "two answers"}}

            # Driving the rounds by hand: answers pre-filled without a portal-issued state are ignored,
            await c1.list_tools()
            first = await c1.session.call_tool(
                "lab__ask", {"question": "q"}, input_responses={"q1": answer}, allow_input_required=True
            )
            assert isinstance(first, types.InputRequiredResult) and first.request_state
            [(key, request)] = (first.input_requests or {}).items()
            assert isinstance(request, types.CreateMessageRequest)
            # another caller cannot answer (or even probe) the parked call,
            with pytest.raises(MCPError) as exc:
                await other.session.call_tool(
                    "lab__ask",
                    {"question": "q"},
                    input_responses={key: answer},
                    request_state=first.request_state,
                    allow_input_required=True,
                )
            assert exc.value.error.code in (errors.ACCESS_DENIED, types.INVALID_PARAMS)
            # and the caller it belongs to finishes it.
            reply = types.CreateMessageResult(
                role="assistant", content=types.TextContent(type="text", text="by hand"), model="m"
            )
            done = await c1.session.call_tool(
                "lab__ask",
                {"question": "q"},
                input_responses={key: reply},
                request_state=first.request_state,
                allow_input_required=True,
            )
            assert isinstance(done, types.CallToolResult) and done.structured_content == {"result": "by hand"}
    forwarded = [e for e in auditor.events if e.method == "sampling/createMessage"]
    assert len(forwarded) == 3 and all(e.server == "lab" for e in forwarded)
