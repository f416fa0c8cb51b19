"""Example upstream: a small notes service (stdio by default, ``--http PORT`` for streamable HTTP)."""

from __future__ import annotations

import argparse

from mcp.server.mcpserver import MCPServer

NOTES = {"1": "Quarterly numbers look good.", "2": "Rotate the staging keys on Friday."}

server = MCPServer("notes")


@server.tool()
def search_notes(query: str) -> list[str]:
    """Search the notes for a word."""
    return [text for text in NOTES.values() if query.lower() in text.lower()]


@server.tool()
def add_note(text: str) -> str:
    """Add a note and return its id."""
    key = str(len(NOTES) + 1)
    NOTES[key] = text
    return key


@server.tool()
def delete_note(note_id: str) -> bool:
    """Delete a note by id."""
    return NOTES.pop(note_id, None) is not None


@server.tool()
def echo(text: str) -> str:
    """Return the text unchanged (used by the benchmark)."""
    return text


@server.prompt()
def summarize(topic: str) -> str:
    """Ask for a summary of the notes about a topic."""
    return f"Summarize the notes about {topic}."


@server.resource("notes://all")
def all_notes() -> str:
    """Every note, one per line."""
    return "\n".join(NOTES.values())


@server.resource("notes://note/{note_id}")
def one_note(note_id: str) -> str:
    """One note by id."""
    return NOTES.get(note_id, "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--http", type=int, metavar="PORT", help="serve streamable HTTP on 127.0.0.1:PORT")
    args = parser.parse_args()
    if args.http:
        import uvicorn

        uvicorn.run(server.streamable_http_app(), host="127.0.0.1", port=args.http, log_level="warning")
    else:
        server.run("stdio")


if __name__ == "__main__":
    main()
