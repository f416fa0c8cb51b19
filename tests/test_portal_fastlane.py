"""The fast lane answers what the SDK path answers, and records what it records.

One sequence of raw streamable-HTTP requests - allowed, denied, unknown,
sanitizer-blocked, rate-limited, wrong sessions, wrong Host / Origin, batch,
notification, malformed and huge bodies - goes through a portal built from a
``guard.toml`` (the ``serve`` path) with the lane on and with it off; the
JSON-RPC answers (read from JSON or from an event stream) and the audit events
must be the same, up to ids, times and session ids. SDK and FastMCP clients
then work through the lane.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pydantic_core
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.jsonrpc_dispatcher import progress_token_from_params
from mcp_types import JSONRPCRequest, jsonrpc_message_adapter

from mcp_guard.authn.chain import AuthenticatorChain
from mcp_guard.config import load_config
from mcp_guard.model import Principal
from mcp_guard.portal import Portal
from mcp_guard.portal.fastlane import LANE_METHODS, _lane_request, _Reader
from mcp_guard.protocols import Credential

from .helpers import KeywordSanitizer, ListAuditor
from .http_util import INITIALIZE, MCP_HEADERS, free_port, serve
from .test_portal_support import client

POLICY = """
version = 1
default = "deny"

[roles.analyst]

[[rules]]
id = "analysts-use-lab"
effect = "allow"
roles = ["analyst"]
servers = ["lab"]
tools = ["echo", "leak", "limited", "chatty"]
prompts = ["greet"]
resources = ["lab://*"]

[[limits]]
id = "limited-twice"
per = ["subject", "target"]
requests = 2
window = "1h"
tools = ["limited"]
"""

PEOPLE = {
    "tok-alice": Principal("alice", roles=frozenset({"analyst"}), auth_method="api_key"),
    "tok-bob": Principal("bob", roles=frozenset({"analyst"}), auth_method="api_key"),
}


class People:
    async def authenticate(self, credential: Credential) -> Principal | None:
        return PEOPLE.get(credential.token or "")


def lab() -> MCPServer:
    server = MCPServer("lab")

    @server.tool()
    def echo(text: str) -> str:
        """Echo the text."""
        return text

    @server.tool()
    def leak() -> str:
        """Return something the sanitizer blocks."""
        return "the key is in ~/.ssh/id_rsa"

    @server.tool()
    def limited() -> str:
        """Allowed twice an hour."""
        return "ok"

    @server.tool()
    def secret() -> str:
        """Never granted."""
        return "no"

    @server.tool()
    async def chatty(ctx: Context) -> str:
        """Log a line, then answer."""
        await ctx.info("a line from the lab")
        return "said"

    @server.prompt()
    def greet(name: str) -> str:
        """Greet someone."""
        return f"Hello {name}"

    @server.resource("lab://readme")
    def readme() -> str:
        """The readme."""
        return "read me"

    return server


@contextmanager
def running_lab() -> Iterator[str]:
    with serve(lab().streamable_http_app(), free_port()) as url:
        yield url + "/mcp"


def make_portal(tmp: Path, upstream: str, *, lane: bool, forward: bool = True) -> tuple[Portal, ListAuditor]:
    (tmp / "policy.toml").write_text(POLICY)
    (tmp / "guard.toml").write_text(
        '[guard]\npolicy = "policy.toml"\n\n'
        f"[portal]\nfast_lane = {str(lane).lower()}\nforward = {str(forward).lower()}\n\n"
        f'[[servers]]\nname = "lab"\nurl = "{upstream}"\n'
    )
    auditor = ListAuditor()
    portal = Portal.from_guard_config(
        load_config(tmp / "guard.toml"),
        auditor=auditor,
        resolver=AuthenticatorChain([People()], None),
        sanitizers=[KeywordSanitizer()],
    )
    return portal, auditor


@contextmanager
def portal_url(portal: Portal) -> Iterator[str]:
    port = free_port()
    with serve(portal.streamable_http_app(port=port), port) as url:
        yield url + "/mcp"


# ---------------------------------------------------------------------- raw HTTP
def messages(response: httpx.Response) -> list[Any]:
    """The JSON-RPC messages of a response, from a JSON body or an event stream."""
    kind = response.headers.get("content-type", "").split(";")[0]
    if kind == "text/event-stream":
        out = []
        for line in response.text.splitlines():
            if line.startswith("data:") and line[5:].strip():
                out.append(json.loads(line[5:]))
        return out
    if not response.content:
        return []
    try:
        return [response.json()]
    except ValueError:
        return [response.text]


def steady(value: Any) -> Any:
    """A message with its timings rounded (a retry-after counts down between two runs)."""
    if isinstance(value, dict):
        return {k: round(v) if k == "retryAfter" else steady(v) for k, v in value.items()}
    if isinstance(value, list):
        return [steady(v) for v in value]
    return value


def call(name: str, arguments: dict[str, Any] | None = None, rid: int = 7) -> dict[str, Any]:
    params: dict[str, Any] = {"name": name, "arguments": arguments or {}}
    return {"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": params}


def request(method: str, params: dict[str, Any] | None = None, rid: int = 7) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "method": method, **({"params": params} if params else {})}


def open_session(http: httpx.Client, url: str, token: str) -> str:
    auth = {"Authorization": f"Bearer {token}"}
    opened = http.post(url, json=INITIALIZE, headers={**MCP_HEADERS, **auth})
    session = opened.headers["mcp-session-id"]
    done = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    headers = {**MCP_HEADERS, **auth, "mcp-session-id": session, "mcp-protocol-version": "2025-11-25"}
    assert http.post(url, json=done, headers=headers).status_code == 202
    return session


#: (name, token, session ("alice" / "bob" / a literal id), extra headers, body (dict, list or bytes))
STEPS: list[tuple[str, str, str, dict[str, str], Any]] = [
    ("allowed", "tok-alice", "alice", {}, call("lab__echo", {"text": "hi"})),
    ("denied by policy", "tok-alice", "alice", {}, call("lab__secret")),
    ("unknown tool", "tok-alice", "alice", {}, call("lab__nothing")),
    ("sanitizer-blocked result", "tok-alice", "alice", {}, call("lab__leak")),
    ("within the limit", "tok-alice", "alice", {}, call("lab__limited")),
    ("within the limit again", "tok-alice", "alice", {}, call("lab__limited")),
    ("rate-limited", "tok-alice", "alice", {}, call("lab__limited")),
    ("bad arguments", "tok-alice", "alice", {}, call("lab__echo", {"text": 3})),
    ("log messages", "tok-alice", "alice", {}, call("lab__chatty")),
    ("tools/list", "tok-alice", "alice", {}, request("tools/list")),
    ("prompts/list", "tok-alice", "alice", {}, request("prompts/list")),
    ("resources/list", "tok-alice", "alice", {}, request("resources/list")),
    (
        "prompts/get",
        "tok-alice",
        "alice",
        {},
        request("prompts/get", {"name": "lab__greet", "arguments": {"name": "x"}}),
    ),
    ("resources/read", "tok-alice", "alice", {}, request("resources/read", {"uri": "lab://readme"})),
    ("resources/read unknown", "tok-alice", "alice", {}, request("resources/read", {"uri": "lab://none"})),
    (
        "completion/complete",
        "tok-alice",
        "alice",
        {},
        request(
            "completion/complete",
            {"ref": {"type": "ref/prompt", "name": "lab__greet"}, "argument": {"name": "name", "value": "a"}},
        ),
    ),
    ("bad params", "tok-alice", "alice", {}, request("tools/call", {"arguments": {}})),
    ("string id", "tok-alice", "alice", {}, {**call("lab__echo", {"text": "s"}), "id": "abc"}),
    (
        "progress token",
        "tok-alice",
        "alice",
        {},
        {
            **call("lab__echo", {"text": "p"}),
            "params": {"name": "lab__echo", "arguments": {"text": "p"}, "_meta": {"progressToken": 1}},
        },
    ),
    ("bad session id", "tok-alice", "0123456789abcdef0123456789abcdef", {}, call("lab__echo", {"text": "x"})),
    ("other principal's session", "tok-bob", "alice", {}, call("lab__echo", {"text": "x"})),
    ("no credential", "", "alice", {}, call("lab__echo", {"text": "x"})),
    (
        "wrong Origin",
        "tok-alice",
        "alice",
        {"origin": "http://evil.example"},
        call("lab__echo", {"text": "x"}),
    ),
    ("wrong Host", "tok-alice", "alice", {"host": "evil.example"}, call("lab__echo", {"text": "x"})),
    (
        "no event-stream Accept",
        "tok-alice",
        "alice",
        {"accept": "application/json"},
        call("lab__echo", {"text": "x"}),
    ),
    (
        "wrong Content-Type",
        "tok-alice",
        "alice",
        {"content-type": "text/plain"},
        call("lab__echo", {"text": "x"}),
    ),
    (
        "unknown protocol header",
        "tok-alice",
        "alice",
        {"mcp-protocol-version": "2024-01-01"},
        call("lab__echo", {"text": "x"}),
    ),
    (
        "Mcp-Method mismatch",
        "tok-alice",
        "alice",
        {"mcp-method": "tools/list"},
        call("lab__echo", {"text": "m"}),
    ),
    ("Mcp-Name mismatch", "tok-alice", "alice", {"mcp-name": "lab__leak"}, call("lab__echo", {"text": "n"})),
    ("bad cursor", "tok-alice", "alice", {}, request("tools/list", {"cursor": "not-a-cursor"})),
    (
        "batch",
        "tok-alice",
        "alice",
        {},
        [call("lab__echo", {"text": "a"}, 1), call("lab__echo", {"text": "b"}, 2)],
    ),
    (
        "notification",
        "tok-alice",
        "alice",
        {},
        {"jsonrpc": "2.0", "method": "notifications/roots/list_changed"},
    ),
    ("malformed JSON", "tok-alice", "alice", {}, b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", '),
    ("huge body", "tok-alice", "alice", {}, call("lab__echo", {"text": "x" * (2 << 20)})),
    ("allowed after all that", "tok-alice", "alice", {}, call("lab__echo", {"text": "bye"})),
]


def run_steps(url: str) -> list[tuple[str, int, list[Any]]]:
    out = []
    with httpx.Client(timeout=30) as http:
        sessions = {who: open_session(http, url, f"tok-{who}") for who in ("alice", "bob")}
        for name, token, session, extra, body in STEPS:
            headers = {**MCP_HEADERS, "mcp-protocol-version": "2025-11-25"}
            headers["mcp-session-id"] = sessions.get(session, session)
            if token:
                headers["Authorization"] = f"Bearer {token}"
            headers.update(extra)
            content = body if isinstance(body, bytes) else json.dumps(body).encode()
            response = http.post(url, content=content, headers=headers)
            out.append((name, response.status_code, steady(messages(response))))
    return out


_VARYING = {"id", "time", "session_id", "latency_ms", "source_ip"}


def normalized(events: list[Any]) -> list[dict[str, Any]]:
    """The audit events without what differs between two runs (ids, times, sessions)."""
    out = []
    for event in events:
        data = {k: v for k, v in event.as_dict().items() if k not in _VARYING}
        out.append(steady(json.loads(json.dumps(data, default=str))))
    return out


#: (lane, forward) of the reference run and of the run compared with it.
PAIRS = {
    "lane vs SDK path, SDK client sessions upstream": ((False, False), (True, False)),
    "lane vs SDK path, forwarding upstream": ((False, True), (True, True)),
    "forwarding vs SDK client sessions, lane off": ((False, False), (False, True)),
}


@pytest.mark.parametrize("pair", list(PAIRS))
def test_the_lane_answers_and_records_what_the_sdk_path_does(tmp_path: Path, pair: str) -> None:
    runs: dict[tuple[bool, bool], tuple[list[tuple[str, int, list[Any]]], list[dict[str, Any]]]] = {}
    served: dict[tuple[bool, bool], int] = {}
    with running_lab() as upstream:
        for lane, forward in PAIRS[pair]:
            where = tmp_path / f"{lane}-{forward}"
            where.mkdir()
            portal, auditor = make_portal(where, upstream, lane=lane, forward=forward)
            with portal_url(portal) as url:
                answers = run_steps(url)
            runs[lane, forward] = (answers, normalized(auditor.events))
            served[lane, forward] = portal.lane.served if portal.lane is not None else 0
    reference, compared = PAIRS[pair]
    sdk, fast = runs[reference], runs[compared]
    assert served[reference] == 0  # the lane was off
    assert served[compared] >= 15 if compared[0] else served[compared] == 0  # ... and served when on
    for (name, status, got), (_, sdk_status, expected) in zip(fast[0], sdk[0], strict=True):
        assert got == expected, name
        assert status == sdk_status or (status, sdk_status) == (200, 200), name
    # The same events; a notification is handled after its 202, so its event may come a step later.
    assert sorted(map(_key, fast[1])) == sorted(map(_key, sdk[1]))
    assert len(fast[1]) > len(STEPS)


def _key(event: dict[str, Any]) -> str:
    return json.dumps(event, sort_keys=True)


def test_the_lane_only_takes_what_it_can_prove(tmp_path: Path) -> None:
    """A progress token, a batch and a wrong Origin go to the SDK; plain calls do not."""
    with running_lab() as upstream:
        portal, _ = make_portal(tmp_path, upstream, lane=True)
        with portal_url(portal) as url, httpx.Client(timeout=30) as http:
            session = open_session(http, url, "tok-alice")
            headers = {
                **MCP_HEADERS,
                "mcp-protocol-version": "2025-11-25",
                "mcp-session-id": session,
                "Authorization": "Bearer tok-alice",
            }
            lane = portal.lane
            # The SDK answers notifications/initialized (202) before it handles it: the very first
            # request may still find the session unfinished and take the SDK path.
            http.post(url, json=call("lab__echo", {"text": "x"}), headers=headers)
            before = lane.served
            ok = http.post(url, json=call("lab__echo", {"text": "x"}), headers=headers)
            assert ok.headers["content-type"] == "application/json" and lane.served == before + 1
            progress = call("lab__echo", {"text": "x"})
            progress["params"]["_meta"] = {"progressToken": "p"}
            for body, extra in (
                (progress, {}),
                ([call("lab__echo")], {}),
                (call("lab__echo"), {"origin": "http://x"}),
            ):
                http.post(url, json=body, headers={**headers, **extra})
                assert lane.served == before + 1


@pytest.mark.parametrize("mode", ["legacy"])
async def test_sdk_clients_work_through_the_lane(tmp_path: Path, mode: str) -> None:
    with running_lab() as upstream:
        portal, auditor = make_portal(tmp_path, upstream, lane=True)
        port = free_port()
        with serve(portal.streamable_http_app(port=port), port) as base:
            async with client(base, "tok-alice", mode) as c:
                tools = await c.list_tools()
                assert "lab__echo" in [t.name for t in tools.tools]
                result = await c.call_tool("lab__echo", {"text": "hello"})
                assert not result.is_error and result.structured_content == {"result": "hello"}
                prompt = await c.get_prompt("lab__greet", {"name": "Ann"})
                assert "Hello Ann" in str(prompt.messages[0].content)
            from fastmcp import Client as FastClient
            from fastmcp.client.transports import StreamableHttpTransport

            transport = StreamableHttpTransport(base + "/mcp", headers={"Authorization": "Bearer tok-alice"})
            async with FastClient(transport) as fc:
                answer = await fc.call_tool("lab__echo", {"text": "fast"})
                assert answer.structured_content is not None and answer.structured_content["result"] == "fast"
                read = await fc.read_resource("lab://readme")
                assert "read me" in str(read[0])
    assert portal.lane.served >= 2  # the SDK client on 2025-11-25 (FastMCP speaks 2026-07-28: SDK path)
    assert [e.method for e in auditor.events if e.decision == "deny"] == []


# ---------------------------------------------------------------------- the lane's parser
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
_TOKEN = st.one_of(st.integers(), st.text(max_size=3), st.booleans(), _JSON)
_PARAMS = st.one_of(
    _JSON,
    st.fixed_dictionaries(
        {"name": st.text(max_size=4)},
        optional={
            "_meta": st.fixed_dictionaries(
                {},
                optional={
                    "progressToken": st.one_of(st.integers(), st.text(max_size=3), st.booleans(), _JSON)
                },
            )
        },
    ),
)
_LOOSE = st.fixed_dictionaries(
    {},
    optional={
        "jsonrpc": st.sampled_from(["2.0", "1.0", 2]),
        "id": st.one_of(st.integers(), st.text(max_size=4), st.none(), st.booleans()),
        "method": st.sampled_from([*sorted(LANE_METHODS), "initialize", "ping", "notifications/cancelled"]),
        "params": _PARAMS,
        "result": _JSON,
    },
)
#: Requests that get past the envelope checks, so the parameters decide.
_REQUESTS = st.fixed_dictionaries(
    {
        "jsonrpc": st.just("2.0"),
        "id": st.one_of(st.integers(), st.text(max_size=4)),
        "method": st.sampled_from(sorted(LANE_METHODS)),
        "params": _PARAMS,
    }
)
_MESSAGES = st.one_of(_LOOSE, _REQUESTS)


@given(st.one_of(_MESSAGES, st.lists(_MESSAGES, max_size=2), _JSON))
@settings(max_examples=300, deadline=None)
def test_the_lane_takes_only_single_requests_the_sdk_parses_the_same_way(raw: Any) -> None:
    body = json.dumps(raw).encode()
    taken = _lane_request(body)
    if taken is None:
        return
    # What the lane serves is exactly one request the SDK would parse as one, for a lane method,
    # without a progress token.
    parsed = jsonrpc_message_adapter.validate_python(pydantic_core.from_json(body), by_name=False)
    assert isinstance(parsed, JSONRPCRequest) and parsed == taken
    assert taken.method in LANE_METHODS and isinstance(raw, dict)
    assert progress_token_from_params(taken.params) is None


@given(st.binary(max_size=64))
@settings(max_examples=200, deadline=None)
def test_the_lane_parser_never_raises_on_bytes(body: bytes) -> None:
    _lane_request(body)


async def test_a_body_the_lane_read_reaches_the_sdk_in_full() -> None:
    chunks = [
        {"type": "http.request", "body": b'{"a":', "more_body": True},
        {"type": "http.request", "body": b"1}", "more_body": False},
        {"type": "http.disconnect"},
    ]
    pending = list(chunks)

    async def receive() -> dict[str, Any]:
        return pending.pop(0)

    reader = _Reader(receive)
    assert await reader.read(7) == b'{"a":1}'
    again = reader.replay()
    assert [await again() for _ in range(3)] == chunks
