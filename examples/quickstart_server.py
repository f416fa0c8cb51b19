"""A guarded MCP server: the guard-specific code is the two lines marked below.

Run over stdio with the caller's key in the environment:

    MCP_GUARD_TOKEN=demo-key-alice python examples/quickstart_server.py
"""

from pathlib import Path

from mcp.server.mcpserver import MCPServer

from mcp_guard import Guard

mcp = MCPServer("notes")
NOTES: list[str] = ["buy milk", "ship mcp-guard"]


@mcp.tool()
def search_notes(query: str) -> list[str]:
    """Return the notes that contain the query."""
    return [n for n in NOTES if query.lower() in n.lower()]


@mcp.tool()
def list_notes() -> list[str]:
    """Return every note."""
    return list(NOTES)


@mcp.tool()
def add_note(text: str) -> str:
    """Store a new note."""
    NOTES.append(text)
    return f"stored note {len(NOTES)}"


@mcp.tool()
def delete_notes(query: str) -> int:
    """Delete the notes that contain the query."""
    before = len(NOTES)
    NOTES[:] = [n for n in NOTES if query.lower() not in n.lower()]
    return before - len(NOTES)


guard = Guard.from_config(Path(__file__).parent / "quickstart" / "guard.toml")  # guard line 1
guard.protect(mcp)  # guard line 2

if __name__ == "__main__":
    mcp.run("stdio")
