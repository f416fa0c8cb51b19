"""A guarded notes server over stdio: the credential comes from MCP_GUARD_TOKEN."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from mcp_guard.guard import Guard
from mcp_guard.model import Principal
from mcp_guard.protocols import Credential
from tests.helpers import RolePolicy, notes_server


class TokenTable:
    async def authenticate(self, credential: Credential) -> Principal | None:
        table = {"tok-alice": Principal("alice", roles=frozenset({"analyst"}))}
        return table.get(credential.token or "")


if __name__ == "__main__":
    import os

    auditor = None
    if os.environ.get("AUDIT_JSONL"):
        from mcp_guard.audit import open_auditor

        log = Path(os.environ["AUDIT_JSONL"])
        auditor = open_auditor([f"jsonl:///{log}"], None, log.parent)
    server = notes_server()
    guard = Guard(
        policy=RolePolicy({"analyst": {"add"}}),
        authenticators=[TokenTable()],
        server="notes",
        auditor=auditor,
    )
    guard.protect(server)
    server.run("stdio")
