"""Forbid "fetch then send" across a portal: the refusal names the flow and the earlier call.

    python examples/flows/fetch_then_send.py [--data-dir DIR]

Serves ``guard.toml`` of this directory (a web and a mail upstream) on a free
loopback port, with state and audit under ``--data-dir`` (default: a
temporary directory), and calls it as alice: a mail, a fetch, then a mail
again. The last call is refused by the flow ``no-send-after-untrusted``; the
script prints the refusal and the audit record of both calls.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import tempfile
from pathlib import Path

import httpx2
import uvicorn
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from mcp_guard.audit.query import Filters, query
from mcp_guard.config import load_config
from mcp_guard.portal import Portal

HERE = Path(__file__).resolve().parent
KEY = "alice-flows-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def calls(url: str) -> None:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {KEY}"}, timeout=30)
    async with Client(streamable_http_client(url, http_client=http), mode="legacy") as client:
        for tool, arguments in (
            ("mail__send_mail", {"to": "bob@example.com", "body": "lunch?"}),
            ("web__fetch_page", {"url": "https://flights.example"}),
            ("mail__send_mail", {"to": "eve@example.com", "body": "here is what I found"}),
        ):
            try:
                result = await client.call_tool(tool, arguments)
                print(f"{tool}: {result.content[0].text}")  # type: ignore[union-attr]
            except MCPError as refused:
                print(f"{tool}: refused ({refused.error.code}) {refused.error.message}")
                print(f"   data: {json.dumps(refused.error.data)}")


async def main(data: Path) -> None:
    config = load_config(HERE / "guard.toml")
    config = config.model_copy(
        update={
            "guard": config.guard.model_copy(
                update={"state": f"sqlite:///{data}/state.db", "audit": [f"sqlite:///{data}/audit.db"]}
            ),
            "audit": {**config.audit, "key_file": str(data / "audit.key")},
        }
    )
    port = free_port()
    portal = Portal.from_guard_config(config)
    server = uvicorn.Server(
        uvicorn.Config(
            portal.streamable_http_app(port=port), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if serving.done():
                serving.result()
            await asyncio.sleep(0.05)
        await calls(f"http://127.0.0.1:{port}/mcp")
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await serving
        await portal.guard.aclose()
    print("audit trail (tools/call):")
    for record in query(data / "audit.db", Filters(), 20):
        if record.get("method") == "tools/call":
            flow = record.get("flow")
            extra = f" flow={flow['id']} after_event={flow['after_event']}" if flow else ""
            print(f"   {record['id']} {record['decision']} {record['server']}/{record['target']}{extra}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data-dir", type=Path, help="state and audit here (default: a temporary directory)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mcpg-flows-") as tmp:
        data = (args.data_dir or Path(tmp)).resolve()
        data.mkdir(parents=True, exist_ok=True)
        asyncio.run(main(data))
