"""Example upstream for exercising the portal's recovery: list changes, hangs and crashes on demand."""

from __future__ import annotations

import os
import time

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import SamplingMessage, TextContent

server = MCPServer("lab")


@server.tool()
def pid() -> int:
    """The process id of this server (shows when the portal restarted it)."""
    return os.getpid()


@server.tool()
def crash() -> str:
    """Exit the process at once, as a crashing server would."""
    os._exit(3)


@server.tool()
async def hang(seconds: float = 60.0) -> str:
    """Block the whole server (its event loop included), as a hung server would."""
    time.sleep(seconds)  # deliberately blocking: nothing else, not even ping, is answered
    return "woke up"


@server.tool()
async def count(to: int, ctx: Context) -> int:
    """Count up, reporting progress at each step."""
    for i in range(1, to + 1):
        await ctx.report_progress(i, to, f"step {i}")
    return to


@server.tool()
async def grow(ctx: Context) -> str:
    """Add a tool named ``extra`` and announce the list change."""

    def extra() -> str:
        """A tool that appeared at run time."""
        return "extra"

    server.add_tool(extra)
    await ctx.session.send_tool_list_changed()
    return "grown"


@server.tool()
async def ask(question: str, ctx: Context) -> str:
    """Ask the client's model (sampling) and return its answer; logs a line on the way."""
    await ctx.info(f"asking: {question}")
    result = await ctx.session.create_message(
        messages=[SamplingMessage(role="user", content=TextContent(type="text", text=question))],
        max_tokens=50,
    )
    content = result.content
    return content.text if isinstance(content, TextContent) else str(content)


if __name__ == "__main__":
    server.run("stdio")
