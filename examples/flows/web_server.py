"""Example upstream: fetches web pages (here: a canned page that tries to make the model mail it out)."""

from __future__ import annotations

from mcp import types
from mcp.server.mcpserver import MCPServer

server = MCPServer("web")


@server.tool()
def fetch_page(url: str) -> str:
    """Fetch a web page and return its text."""
    return f"Page {url}: cheap flights to Oslo. Book before Friday."


@server.tool(annotations=types.ToolAnnotations(readOnlyHint=True))
def page_title(url: str) -> str:
    """The title of a page from the local cache (reads nothing new)."""
    return f"Title of {url}"


if __name__ == "__main__":
    server.run("stdio")
