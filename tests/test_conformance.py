"""The guarded conformance fixture server, run for real as a subprocess on 127.0.0.1.

The fast tests need nothing outside the repo; the suite run needs ``../shared``
(the conformance script) and ``npm`` (the script installs the suite with it).
"""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import io
import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.types import (
    BlobResourceContents,
    ElicitResult,
    JSONRPCNotification,
    LoggingMessageNotificationParams,
    PromptReference,
    TextContent,
    TextResourceContents,
)

from mcp_guard import errors

from .http_util import INITIALIZE, MCP_HEADERS, free_port
from .test_core_memory import first_mcp_error

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "conformance_server.py"
SHARED = Path(__file__).resolve().parents[2] / "shared"
CONFORMANCE_SH = SHARED / "tools" / "conformance.sh"
POLICY = REPO / "examples" / "conformance" / "policy.toml"


class ExampleServer:
    """``examples/conformance_server.py --port P`` as a child process."""

    def __init__(self, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        # A file, not a pipe: a long run must never block on a full pipe nobody reads.
        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed by stop()
        self.proc = subprocess.Popen(
            [sys.executable, str(EXAMPLE), "--port", str(self.port), *args],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
        )

    def stderr(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read()

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code, err = self.stop()
                raise AssertionError(f"example exited with {code}:\n{err}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        _, err = self.stop()
        raise AssertionError(f"example did not listen on port {self.port} within {timeout}s:\n{err}")

    def stop(self) -> tuple[int, str]:
        """Interrupt the server as a user would (Ctrl-C); return its exit code and stderr."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            code = self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        if self._stderr.closed:
            return code, ""
        err = self.stderr()
        self._stderr.close()
        return code, err


def audit_counts(stderr: str) -> dict[str, int]:
    """The outcome counts the example prints at shutdown (``audit allow=N, deny=M, error=K``)."""
    match = re.search(r"audit allow=(\d+), deny=(\d+), error=(\d+)", stderr)
    assert match, f"no audit summary in stderr:\n{stderr}"
    return dict(zip(("allow", "deny", "error"), map(int, match.groups()), strict=True))


@pytest.fixture(scope="module")
def example() -> Iterator[ExampleServer]:
    server = ExampleServer()
    server.wait_ready()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def example_with_policy_file() -> Iterator[ExampleServer]:
    """The example with the project's policy engine and ``examples/conformance/policy.toml``."""
    server = ExampleServer("--policy", str(POLICY))
    server.wait_ready()
    try:
        yield server
    finally:
        server.stop()


def http_client(url: str, token: str | None = None) -> Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    transport = streamable_http_client(url, http_client=create_mcp_http_client(headers=headers))
    return Client(transport, mode="legacy")


def client_for(url: str, mode: str) -> Client:
    transport = streamable_http_client(url, http_client=create_mcp_http_client())
    return Client(transport, mode=mode)


# ---------------------------------------------------------------------------- over the wire


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_lists_and_calls_fixtures_through_the_guard(example: ExampleServer, mode: str) -> None:
    async with client_for(example.url, mode) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert {"test_simple_text", "test_error_handling", "json_schema_2020_12_tool"} <= names
        result = await client.call_tool("test_simple_text", {})
        assert not result.is_error
        assert isinstance(result.content[0], TextContent)
        assert result.content[0].text == "This is a simple text response for testing."
        # The guard must not turn a tool's own error result into a refusal.
        failed = await client.call_tool("test_error_handling", {})
        assert failed.is_error
        assert isinstance(failed.content[0], TextContent)
        assert "intentionally returns an error" in failed.content[0].text
        prompt = await client.get_prompt("test_prompt_with_arguments", {"arg1": "a1", "arg2": "b2"})
        assert "arg1='a1'" in str(prompt.messages[0].content)


async def test_advertised_schema_keeps_2020_12_keywords(example: ExampleServer) -> None:
    async with http_client(example.url) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    schema = tools["json_schema_2020_12_tool"].input_schema
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert "address" in schema["$defs"]
    assert schema["additionalProperties"] is False


async def test_binary_resource_and_template(example: ExampleServer) -> None:
    async with http_client(example.url) as client:
        binary = await client.read_resource("test://static-binary")
        templated = await client.read_resource("test://template/123/data")
    blob, text = binary.contents[0], templated.contents[0]
    assert isinstance(blob, BlobResourceContents) and blob.mime_type == "image/png"
    assert base64.b64decode(blob.blob) == fixtures.PNG_BYTES
    assert isinstance(text, TextResourceContents) and text.mime_type == "application/json"
    assert json.loads(text.text) == {"id": "123", "templateTest": True, "data": "Data for ID: 123"}


@pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")
async def test_log_level_completion_and_elicitation_through_the_guard(example: ExampleServer) -> None:
    logs: list[Any] = []
    asked: list[Any] = []

    async def on_log(params: LoggingMessageNotificationParams) -> None:
        logs.append(params.data)

    async def on_elicit(context: Any, params: Any) -> ElicitResult:
        asked.append(params)
        return ElicitResult(action="accept", content={"username": "u", "email": "u@example.com"})

    transport = streamable_http_client(example.url, http_client=create_mcp_http_client())
    async with Client(
        transport, mode="legacy", logging_callback=on_log, elicitation_callback=on_elicit
    ) as client:
        await client.set_logging_level("error")
        await client.call_tool("test_tool_with_logging", {})
        await asyncio.sleep(0.1)
        assert logs == []  # info is below the session's threshold
        await client.set_logging_level("info")
        await client.call_tool("test_tool_with_logging", {})
        for _ in range(50):
            if len(logs) >= 3:
                break
            await asyncio.sleep(0.02)
        assert logs == ["Tool execution started", "Tool processing data", "Tool execution completed"]

        ref = PromptReference(type="ref/prompt", name="test_prompt_with_arguments")
        completion = await client.complete(ref, {"name": "arg1", "value": "pa"})
        assert completion.completion.values == ["paris", "park", "party"]

        result = await client.call_tool("test_elicitation", {"message": "Who are you?"})
    assert len(asked) == 1 and asked[0].message == "Who are you?"
    assert isinstance(result.content[0], TextContent)
    assert "action=accept" in result.content[0].text and "u@example.com" in result.content[0].text


def test_non_loopback_host_or_origin_is_refused(example: ExampleServer) -> None:
    good_host = f"127.0.0.1:{example.port}"
    cases = [
        ({"Host": "evil.example.com", "Origin": "http://evil.example.com"}, False),
        ({"Host": good_host, "Origin": "http://evil.example.com"}, False),
        ({"Host": "evil.example.com"}, False),
        ({"Host": good_host, "Origin": f"http://{good_host}"}, True),
    ]
    with httpx.Client(timeout=10) as http:
        for extra, accepted in cases:
            response = http.post(example.url, json=INITIALIZE, headers={**MCP_HEADERS, **extra})
            if accepted:
                assert response.status_code == 200, (extra, response.text)
            else:
                assert 400 <= response.status_code < 500, (extra, response.status_code)


async def test_presented_but_invalid_credential_is_refused(example: ExampleServer) -> None:
    # Anonymous access is for callers without credentials only; a bad token is
    # never downgraded to anonymous.
    with pytest.raises(BaseException) as caught:
        async with http_client(example.url, token="not-a-real-key") as client:
            await client.list_tools()
    assert first_mcp_error(caught.value).code == errors.AUTHENTICATION_REQUIRED


@pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")
def test_every_message_is_audited_by_the_guard() -> None:
    server = ExampleServer()
    server.wait_ready()
    try:

        async def session() -> None:
            async with http_client(server.url) as client:
                await client.list_tools()
                await client.call_tool("test_simple_text", {})
                await client.send_ping()
            with pytest.raises(BaseException) as caught:
                async with http_client(server.url, token="forged") as client:
                    await client.list_tools()
            assert first_mcp_error(caught.value).code == errors.AUTHENTICATION_REQUIRED

        asyncio.run(session())
    finally:
        code, err = server.stop()
    assert code == 0, err
    counts = audit_counts(err)
    # initialize, notifications/initialized, tools/list, tools/call, ping: all allowed and audited.
    assert counts["allow"] >= 5, counts
    assert counts["deny"] >= 1, counts
    assert counts["error"] == 0, counts


async def test_policy_file_allows_the_anonymous_guest(example_with_policy_file: ExampleServer) -> None:
    async with http_client(example_with_policy_file.url) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        templates = (await client.list_resource_templates()).resource_templates
        result = await client.call_tool("test_simple_text", {})
    assert "test_simple_text" in tools and len(tools) >= 14
    assert [t.uri_template for t in templates] == ["test://template/{id}/data"]
    assert not result.is_error


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ('version = 1\ndefault = "deny"\n[[rules]]\nid = "x"\neffect = "permit"\n', (":5:", "effect")),
        (None, ("policy",)),
    ],
    ids=["bad-field", "missing-file"],
)
def test_bad_policy_file_stops_start_up_with_its_location(
    tmp_path: Path, policy: str | None, expected: tuple[str, ...]
) -> None:
    path = tmp_path / "policy.toml"
    if policy is not None:
        path.write_text(policy)
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE), "--port", str(free_port()), "--policy", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert str(path) in proc.stderr and all(part in proc.stderr for part in expected), proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_same_guarded_fixtures_on_stdio(mode: str) -> None:
    params = StdioServerParameters(command=sys.executable, args=[str(EXAMPLE), "--stdio"], cwd=str(REPO))
    async with Client(params, mode=mode) as client:
        assert "test_simple_text" in {t.name for t in (await client.list_tools()).tools}
        result = await client.call_tool("test_simple_text", {})
        assert isinstance(result.content[0], TextContent)
        assert result.content[0].text == "This is a simple text response for testing."


async def test_stdio_credential_is_checked_too() -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=[str(EXAMPLE), "--stdio"],
        cwd=str(REPO),
        env={"MCP_GUARD_TOKEN": "forged"},
    )
    with pytest.raises(BaseException) as caught:
        async with Client(params, mode="legacy") as client:
            await client.list_tools()
    assert first_mcp_error(caught.value).code == errors.AUTHENTICATION_REQUIRED


def test_refuses_to_bind_beyond_loopback() -> None:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE), "--host", "0.0.0.0", "--port", str(free_port())],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "allow_public_bind" in proc.stderr


# ---------------------------------------------------------------------------- helpers, in process


def _load(name: str) -> ModuleType:
    path = REPO / "examples" / "conformance" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_conformance_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fixtures = _load("fixtures")
event_store = _load("event_store")

LEVELS: tuple[str, ...] = fixtures.LOG_LEVELS


@given(
    st.lists(st.tuples(st.sampled_from([None, "s1", "s2"]), st.sampled_from(LEVELS)), max_size=8),
    st.sampled_from([None, "s1", "s2"]),
    st.sampled_from(LEVELS),
)
def test_log_threshold_is_the_last_level_set_for_the_session(
    settings_: list[tuple[str | None, str]], session: str | None, level: str
) -> None:
    logs = fixtures.LogThresholds(default="info")
    for sid, lvl in settings_:
        logs.set(sid, lvl)
    chosen = [lvl for sid, lvl in settings_ if sid == session]
    threshold = chosen[-1] if chosen else "info"
    assert logs.allows(session, level) == (LEVELS.index(level) >= LEVELS.index(threshold))


def _message(i: int) -> Any:
    return JSONRPCNotification(jsonrpc="2.0", method="notifications/message", params={"i": i})


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["a", "b"]), st.booleans()), min_size=1, max_size=30),
    st.integers(min_value=0, max_value=29),
    st.integers(min_value=1, max_value=40),
)
def test_event_store_replays_only_later_events_of_the_same_stream(
    events: list[tuple[str, bool]], pick: int, capacity: int
) -> None:
    async def run() -> None:
        store = event_store.MemoryEventStore(max_events=capacity)
        stored: list[tuple[str, str, Any]] = []
        for i, (stream, priming) in enumerate(events):
            message = None if priming else _message(i)
            stored.append((await store.store_event(stream, message), stream, message))
        kept = stored[-capacity:]
        last_id, stream, _ = stored[pick % len(stored)]
        replayed: list[Any] = []

        async def send(event: Any) -> None:
            replayed.append((event.event_id, event.message))

        result = await store.replay_events_after(last_id, send)
        if all(eid != last_id for eid, _, _ in kept):
            assert result is None and replayed == []
            return
        assert result == stream
        position = [eid for eid, _, _ in kept].index(last_id)
        expected = [(eid, m) for eid, s, m in kept[position + 1 :] if s == stream and m is not None]
        assert replayed == expected

    asyncio.run(run())


def test_fixture_media_are_well_formed() -> None:
    assert fixtures.PNG_BYTES.startswith(b"\x89PNG\r\n\x1a\n") and fixtures.PNG_BYTES.endswith(
        b"IEND\xaeB`\x82"
    )
    with wave.open(io.BytesIO(base64.b64decode(fixtures.WAV_B64))) as clip:
        assert clip.getnframes() > 0 and clip.getframerate() > 0


# ---------------------------------------------------------------------------- official suite


@pytest.mark.shared
@pytest.mark.parametrize(
    "args",
    [(), ("--policy", str(POLICY), "--sanitize")],
    ids=["allow-all", "policy-file-and-sanitizer"],
)
def test_official_conformance_suite_passes_through_the_guard(args: tuple[str, ...]) -> None:
    if not CONFORMANCE_SH.is_file():
        pytest.skip(f"{CONFORMANCE_SH} not found: the shared conformance tools are not checked out")
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed: conformance.sh installs the suite with npm")
    server = ExampleServer(*args)
    server.wait_ready()
    try:
        proc = subprocess.run(
            ["bash", str(CONFORMANCE_SH), server.url], capture_output=True, text=True, timeout=900
        )
    finally:
        code, err = server.stop()
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    assert proc.returncode == 0, f"{last}\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}"
    match = re.fullmatch(r"conformance: (\d+) passed, 0 failed", last)
    assert match and int(match.group(1)) > 0, last
    # Every scenario went through the guard, and the guard refused or failed nothing.
    assert code == 0, err
    counts = audit_counts(err)
    assert counts["allow"] > int(match.group(1)) and counts["deny"] == 0 and counts["error"] == 0, counts
