"""The MCP conformance fixtures as an ordinary ``MCPServer``.

The official server suite (``@modelcontextprotocol/conformance``) calls tools,
prompts and resources by fixed names and checks their exact shapes; this
module provides each of them, and nothing about the guard. Keeping the
fixtures free of guard code is what lets the suite prove that a guard in
front of them changes nothing a conforming client can see.

``MCPServer`` in mcp 2.3 has no typed hook for ``logging/setLevel``,
``resources/subscribe`` / ``unsubscribe`` or ``completion/complete``, so
those handlers are registered on its low-level server.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import struct
import wave
import zlib
from collections import OrderedDict
from typing import Any

from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.prompts.base import UserMessage
from mcp.server.mcpserver.tools import Tool
from mcp.types import (
    AudioContent,
    CompleteRequestParams,
    CompleteResult,
    Completion,
    EmbeddedResource,
    EmptyResult,
    ImageContent,
    SamplingMessage,
    SetLevelRequestParams,
    SubscribeRequestParams,
    TextContent,
    TextResourceContents,
    UnsubscribeRequestParams,
)

SERVER_NAME = "mcp-guard-conformance"

MAX_SUBSCRIPTIONS = 4096

#: Severity order of ``logging/setLevel`` (RFC 5424 names, as in the spec).
LOG_LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")


def _png_1x1_red() -> bytes:
    """A valid one-pixel PNG, built here so the fixture carries no opaque blob."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)  # 1x1, 8-bit RGB
    pixels = zlib.compress(b"\x00\xff\x00\x00")  # filter byte + one red pixel
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def _wav_silence(frames: int = 800, rate: int = 8000) -> bytes:
    """A tenth of a second of 8 kHz mono silence: the smallest honest ``audio/wav``."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\x00\x00" * frames)
    return buf.getvalue()


PNG_BYTES = _png_1x1_red()
PNG_B64 = base64.b64encode(PNG_BYTES).decode()
WAV_B64 = base64.b64encode(_wav_silence()).decode()


class LogThresholds:
    """Per-session minimum log level set by ``logging/setLevel``.

    Keyed by the streamable-HTTP session id (``None`` on transports without
    one) and bounded, so abandoned sessions cannot grow it without limit.
    """

    def __init__(self, default: str = "debug", max_sessions: int = 1024) -> None:
        self.default = default
        self._levels: OrderedDict[str | None, int] = OrderedDict()
        self._max = max_sessions

    def set(self, session: str | None, level: str) -> None:
        self._levels[session] = LOG_LEVELS.index(level)
        self._levels.move_to_end(session)
        while len(self._levels) > self._max:
            self._levels.popitem(last=False)

    def allows(self, session: str | None, level: str) -> bool:
        threshold = self._levels.get(session, LOG_LEVELS.index(self.default))
        return LOG_LEVELS.index(level) >= threshold


def _session_of(headers: Any) -> str | None:
    if headers is None:
        return None
    value = headers.get("mcp-session-id")
    return value if isinstance(value, str) else None


def _json_schema_2020_12_tool() -> Tool:
    """A tool whose advertised schema keeps 2020-12 keywords the SDK would not generate.

    Arguments are still validated by the function signature; only the
    advertised ``inputSchema`` is replaced, which is what the suite inspects.
    """

    def json_schema_2020_12_tool(name: str = "", address: dict[str, Any] | None = None) -> str:
        return f"Received name={name!r}, address={json.dumps(address or {})}"

    tool = Tool.from_function(json_schema_2020_12_tool, description="Tool with JSON Schema 2020-12 features")
    tool.parameters = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "$defs": {
            "address": {
                "type": "object",
                "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
            }
        },
        "properties": {"name": {"type": "string"}, "address": {"$ref": "#/$defs/address"}},
        "additionalProperties": False,
    }
    return tool


SEP1034_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "User name", "default": "John Doe"},
        "age": {"type": "integer", "description": "User age", "default": 30},
        "score": {"type": "number", "description": "User score", "default": 95.5},
        "status": {
            "type": "string",
            "description": "User status",
            "enum": ["active", "inactive", "pending"],
            "default": "active",
        },
        "verified": {"type": "boolean", "description": "Verification status", "default": True},
    },
    "required": [],
}

SEP1330_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "untitledSingle": {"type": "string", "enum": ["option1", "option2", "option3"]},
        "titledSingle": {
            "type": "string",
            "oneOf": [
                {"const": "value1", "title": "First Option"},
                {"const": "value2", "title": "Second Option"},
                {"const": "value3", "title": "Third Option"},
            ],
        },
        "legacyEnum": {
            "type": "string",
            "enum": ["opt1", "opt2", "opt3"],
            "enumNames": ["Option One", "Option Two", "Option Three"],
        },
        "untitledMulti": {
            "type": "array",
            "items": {"type": "string", "enum": ["option1", "option2", "option3"]},
        },
        "titledMulti": {
            "type": "array",
            "items": {
                "anyOf": [
                    {"const": "value1", "title": "First Choice"},
                    {"const": "value2", "title": "Second Choice"},
                    {"const": "value3", "title": "Third Choice"},
                ]
            },
        },
    },
    "required": [],
}

USER_INFO_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "username": {"type": "string", "description": "User's response"},
        "email": {"type": "string", "description": "User's email address"},
    },
    "required": ["username", "email"],
}

#: Completion candidates per prompt argument; prefix-filtered at request time.
COMPLETIONS: dict[str, tuple[str, ...]] = {
    "arg1": ("paris", "park", "party", "test", "testing"),
    "arg2": ("world", "word", "work"),
    "resourceUri": ("test://static-text", "test://static-binary", "test://example-resource"),
}


def _add_tools(server: MCPServer, logs: LogThresholds) -> None:
    @server.tool(description="Returns a simple text response")
    def test_simple_text() -> list[TextContent]:
        return [TextContent(type="text", text="This is a simple text response for testing.")]

    @server.tool(description="Returns a 1x1 PNG image")
    def test_image_content() -> list[ImageContent]:
        return [ImageContent(type="image", data=PNG_B64, mime_type="image/png")]

    @server.tool(description="Returns a short WAV clip")
    def test_audio_content() -> list[AudioContent]:
        return [AudioContent(type="audio", data=WAV_B64, mime_type="audio/wav")]

    @server.tool(description="Returns an embedded text resource")
    def test_embedded_resource() -> list[EmbeddedResource]:
        return [
            EmbeddedResource(
                type="resource",
                resource=TextResourceContents(
                    uri="test://embedded-resource",
                    mime_type="text/plain",
                    text="This is an embedded resource content.",
                ),
            )
        ]

    @server.tool(description="Returns text, image and resource content together")
    def test_multiple_content_types() -> list[TextContent | ImageContent | EmbeddedResource]:
        return [
            TextContent(type="text", text="Multiple content types test:"),
            ImageContent(type="image", data=PNG_B64, mime_type="image/png"),
            EmbeddedResource(
                type="resource",
                resource=TextResourceContents(
                    uri="test://mixed-content-resource",
                    mime_type="application/json",
                    text=json.dumps({"test": "data", "value": 123}, separators=(",", ":")),
                ),
            ),
        ]

    @server.tool(description="Sends three info log messages while it runs")
    async def test_tool_with_logging(ctx: Context) -> str:
        session = _session_of(ctx.headers)
        for i, text in enumerate(
            ("Tool execution started", "Tool processing data", "Tool execution completed")
        ):
            if i:
                await asyncio.sleep(0.05)
            if logs.allows(session, "info"):
                await ctx.log("info", text)
        return "Tool with logging executed successfully"

    @server.tool(description="Always fails, reporting the error in the result")
    def test_error_handling() -> str:
        raise ToolError("This tool intentionally returns an error for testing")

    @server.tool(description="Reports progress 0, 50 and 100 of 100")
    async def test_tool_with_progress(ctx: Context) -> str:
        for i, step in enumerate((0, 50, 100)):
            if i:
                await asyncio.sleep(0.05)
            await ctx.report_progress(step, 100, f"step {i + 1} of 3")
        return "Tool with progress executed successfully"

    @server.tool(description="Asks the client's model to answer the prompt")
    async def test_sampling(prompt: str, ctx: Context) -> str:
        result = await ctx.session.create_message(
            [SamplingMessage(role="user", content=TextContent(type="text", text=prompt))],
            max_tokens=100,
            related_request_id=ctx.request_context.request_id,
        )
        content = result.content
        text = content.text if isinstance(content, TextContent) else str(content)
        return f"LLM response: {text}"

    @server.tool(description="Asks the user for a username and email")
    async def test_elicitation(message: str, ctx: Context) -> str:
        result = await ctx.session.elicit_form(
            message, USER_INFO_SCHEMA, related_request_id=ctx.request_context.request_id
        )
        return f"User response: action={result.action}, content={json.dumps(result.content)}"

    @server.tool(description="Elicits a form whose fields all carry defaults (SEP-1034)")
    async def test_elicitation_sep1034_defaults(ctx: Context) -> str:
        result = await ctx.session.elicit_form(
            "Please review and update the form fields with defaults",
            SEP1034_SCHEMA,
            related_request_id=ctx.request_context.request_id,
        )
        return f"Elicitation completed: action={result.action}, content={json.dumps(result.content)}"

    @server.tool(description="Elicits a form with every enum variant (SEP-1330)")
    async def test_elicitation_sep1330_enums(ctx: Context) -> str:
        result = await ctx.session.elicit_form(
            "Please select options from the enum fields",
            SEP1330_SCHEMA,
            related_request_id=ctx.request_context.request_id,
        )
        return f"Elicitation completed: action={result.action}, content={json.dumps(result.content)}"

    @server.tool(description="Closes its SSE stream mid-call so the client resumes it (SEP-1699)")
    async def test_reconnection(ctx: Context) -> str:
        await asyncio.sleep(0.05)
        await ctx.close_sse_stream()
        await asyncio.sleep(0.1)
        return "Reconnection test completed successfully"


def _add_resources(server: MCPServer) -> None:
    @server.resource(
        "test://static-text", name="static-text", mime_type="text/plain", description="A static text resource"
    )
    def static_text() -> str:
        return "This is the content of the static text resource."

    @server.resource(
        "test://static-binary",
        name="static-binary",
        mime_type="image/png",
        description="A static binary resource (1x1 PNG)",
    )
    def static_binary() -> bytes:
        return PNG_BYTES

    @server.resource(
        "test://watched-resource",
        name="watched-resource",
        mime_type="text/plain",
        description="A resource clients may subscribe to",
    )
    def watched_resource() -> str:
        return "Watched resource content."

    @server.resource(
        "test://template/{id}/data",
        name="template-data",
        mime_type="application/json",
        description="Data for one id, from a URI template",
    )
    def template_data(id: str) -> str:
        return json.dumps({"id": id, "templateTest": True, "data": f"Data for ID: {id}"})


def _add_prompts(server: MCPServer) -> None:
    @server.prompt(description="A prompt without arguments")
    def test_simple_prompt() -> list[UserMessage]:
        return [UserMessage("This is a simple prompt for testing.")]

    @server.prompt(description="A prompt with two required arguments")
    def test_prompt_with_arguments(arg1: str, arg2: str) -> list[UserMessage]:
        return [UserMessage(f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'")]

    @server.prompt(description="A prompt embedding the resource it is given")
    def test_prompt_with_embedded_resource(resourceUri: str) -> list[UserMessage]:
        return [
            UserMessage(
                EmbeddedResource(
                    type="resource",
                    resource=TextResourceContents(
                        uri=resourceUri, mime_type="text/plain", text="Embedded resource content for testing."
                    ),
                )
            ),
            UserMessage("Please process the embedded resource above."),
        ]

    @server.prompt(description="A prompt carrying an image")
    def test_prompt_with_image() -> list[UserMessage]:
        return [
            UserMessage(ImageContent(type="image", data=PNG_B64, mime_type="image/png")),
            UserMessage("Please analyze the image above."),
        ]


def _add_lowlevel_handlers(server: MCPServer, logs: LogThresholds) -> None:
    """Handlers ``MCPServer`` 2.3 offers no typed registration for."""
    lowlevel = server._lowlevel_server
    # (session, uri) pairs, oldest first; bounded like the log thresholds.
    subscriptions: OrderedDict[tuple[str | None, str], None] = OrderedDict()

    async def set_level(ctx: ServerRequestContext[Any, Any], params: SetLevelRequestParams) -> EmptyResult:
        logs.set(_session_of(getattr(ctx.request, "headers", None)), params.level)
        return EmptyResult()

    async def subscribe(ctx: ServerRequestContext[Any, Any], params: SubscribeRequestParams) -> EmptyResult:
        subscriptions[(_session_of(getattr(ctx.request, "headers", None)), str(params.uri))] = None
        while len(subscriptions) > MAX_SUBSCRIPTIONS:
            subscriptions.popitem(last=False)
        return EmptyResult()

    async def unsubscribe(
        ctx: ServerRequestContext[Any, Any], params: UnsubscribeRequestParams
    ) -> EmptyResult:
        subscriptions.pop((_session_of(getattr(ctx.request, "headers", None)), str(params.uri)), None)
        return EmptyResult()

    async def complete(ctx: ServerRequestContext[Any, Any], params: CompleteRequestParams) -> CompleteResult:
        prefix = params.argument.value or ""
        values = [v for v in COMPLETIONS.get(params.argument.name, ()) if v.startswith(prefix)]
        return CompleteResult(completion=Completion(values=values, total=len(values), has_more=False))

    lowlevel.add_request_handler("logging/setLevel", SetLevelRequestParams, set_level)
    lowlevel.add_request_handler("resources/subscribe", SubscribeRequestParams, subscribe)
    lowlevel.add_request_handler("resources/unsubscribe", UnsubscribeRequestParams, unsubscribe)
    lowlevel.add_request_handler("completion/complete", CompleteRequestParams, complete)


def build_fixture_server(name: str = SERVER_NAME) -> MCPServer:
    """A fresh server holding every fixture the conformance suite's server scenarios call."""
    server: MCPServer = MCPServer(
        name, version="1.0.0", tools=[_json_schema_2020_12_tool()], log_level="WARNING"
    )
    logs = LogThresholds()
    _add_tools(server, logs)
    _add_resources(server)
    _add_prompts(server)
    _add_lowlevel_handlers(server, logs)
    return server
