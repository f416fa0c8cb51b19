"""A FastMCP server guarded in one line (the line marked below), over stdio or streamable HTTP.

It uses the quick-start config (API keys demo-key-alice and demo-key-bob, the notes policy).
Over stdio the caller's key comes from the environment:

    MCP_GUARD_TOKEN=demo-key-bob python examples/fastmcp_server.py

Over streamable HTTP on 127.0.0.1:8000/mcp, with the key as a bearer token:

    python examples/fastmcp_server.py --http
"""

import sys
from pathlib import Path

from fastmcp import FastMCP
from mcp_types import ToolAnnotations

from mcp_guard import Guard

mcp = FastMCP("notes")
NOTES: list[str] = ["buy milk", "ship mcp-guard"]


# Tags and annotations reach policy conditions as request.tags and request.annotations.
@mcp.tool(tags={"read"}, annotations=ToolAnnotations(readOnlyHint=True))
def search_notes(query: str) -> list[str]:
    """Return the notes that contain the query."""
    return [n for n in NOTES if query.lower() in n.lower()]


@mcp.tool(tags={"read"}, annotations=ToolAnnotations(readOnlyHint=True))
def list_notes() -> list[str]:
    """Return every note."""
    return list(NOTES)


@mcp.tool(tags={"write"})
def add_note(text: str) -> str:
    """Store a new note."""
    NOTES.append(text)
    return f"stored note {len(NOTES)}"


@mcp.tool(tags={"write"}, annotations=ToolAnnotations(destructiveHint=True))
def delete_notes(query: str) -> int:
    """Delete the notes that contain the query."""
    before = len(NOTES)
    NOTES[:] = [n for n in NOTES if query.lower() not in n.lower()]
    return before - len(NOTES)


guard = Guard.from_config(Path(__file__).parent / "quickstart" / "guard.toml")
guard.protect(mcp)  # the guard line

if __name__ == "__main__":
    if "--http" in sys.argv:
        guard.serve_http(mcp, port=8000)
    else:
        mcp.run("stdio", show_banner=False)
