"""An upstream that asks its client things during calls: sampling, elicitation, roots and log lines.

Run as a script it serves stdio; ``build()`` gives the same server for HTTP.
Each tool asks on the call's own stream (``related_request_id``), except
``ask_unrelated``, which asks on the connection's standalone stream as a
server doing background work would, and ``start_job``, whose question and log
line come from background work after the call returned.
"""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.types import SamplingMessage, TextContent
from pydantic import BaseModel


class Confirmation(BaseModel):
    ok: bool


def _text(content: object) -> str:
    return content.text if isinstance(content, TextContent) else str(content)


def build() -> MCPServer:
    server = MCPServer("asker")

    @server.tool()
    async def ask(question: str, ctx: Context, delay: float = 0.0, hold: float = 0.0) -> str:
        """Log a line, wait ``delay`` seconds, ask the client's model, wait ``hold``, return the answer."""
        await ctx.info(f"asking: {question}")
        await anyio.sleep(delay)
        result = await ctx.session.create_message(
            messages=[SamplingMessage(role="user", content=TextContent(type="text", text=question))],
            max_tokens=50,
            related_request_id=ctx.request_id,
        )
        await anyio.sleep(hold)
        return _text(result.content)

    @server.tool()
    async def ask_unrelated(question: str, ctx: Context) -> str:
        """Ask the client's model without naming the call (the standalone stream over HTTP)."""
        result = await ctx.session.create_message(
            messages=[SamplingMessage(role="user", content=TextContent(type="text", text=question))],
            max_tokens=50,
        )
        return _text(result.content)

    @server.tool()
    async def confirm(message: str, ctx: Context) -> str:
        """Ask the user to confirm (elicitation)."""
        answer = await ctx.elicit(message, Confirmation)
        return f"{answer.action}:{getattr(answer.data, 'ok', None)}"

    @server.tool()
    async def roots(ctx: Context) -> list[str]:
        """The client's roots."""
        listed = await ctx.session.list_roots()
        return [str(root.uri) for root in listed.roots]

    background: set[Any] = set()

    @server.tool()
    async def start_job(secret: str, ctx: Context, delay: float = 0.8) -> str:
        """Return at once; after ``delay`` seconds log and ask about ``secret`` from background work."""
        session = ctx.session

        async def later() -> None:
            await anyio.sleep(delay)
            await session.send_log_message(level="info", data=f"job done for {secret}")
            question = SamplingMessage(role="user", content=TextContent(type="text", text=f"sum {secret}"))
            await session.create_message(messages=[question], max_tokens=10)

        task = asyncio.get_running_loop().create_task(later())
        background.add(task)
        task.add_done_callback(background.discard)
        return "started"

    @server.tool()
    async def wait(seconds: float) -> str:
        """Stay in flight for a while."""
        await anyio.sleep(seconds)
        return "waited"

    return server


if __name__ == "__main__":
    build().run("stdio")
