"""Example upstream: sends e-mail (here: keeps it in memory and says so)."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

server = MCPServer("mail")
OUTBOX: list[tuple[str, str]] = []


@server.tool()
def send_mail(to: str, body: str) -> str:
    """Send an e-mail."""
    OUTBOX.append((to, body))
    return f"sent to {to}"


if __name__ == "__main__":
    server.run("stdio")
