"""Example upstream that reports which credentials reached it (per-user credentials, lockdown).

    python whoami_server.py                          # stdio (the portal starts one per user)
    python whoami_server.py --port 9100              # streamable HTTP on 127.0.0.1:9100/mcp
    python whoami_server.py --port 9100 --lockdown-key portal-lockdown.pub

With ``--lockdown-key`` the server accepts only requests signed by the portal
holding the matching private key (:class:`mcp_guard.portal.lockdown.LockdownMiddleware`).
"""

from __future__ import annotations

import argparse
import os

from mcp.server.mcpserver import Context, MCPServer

server = MCPServer("whoami")


@server.tool()
def whoami(ctx: Context) -> dict[str, object]:
    """Which service identity this server was given, and by which process."""
    headers = {k.lower(): v for k, v in (ctx.headers or {}).items()}
    return {
        "pid": os.getpid(),
        "service_token": os.environ.get("SERVICE_TOKEN") or headers.get("x-service-token"),
        "authorization": headers.get("authorization"),
        "portal_token": "mcp-guard-portal-token" in headers,
        "env_names": sorted(os.environ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, help="serve streamable HTTP on 127.0.0.1:PORT/mcp")
    parser.add_argument("--lockdown-key", help="portal's public key: refuse requests not signed by it")
    args = parser.parse_args()
    if args.port is None:
        server.run("stdio")
        return
    import uvicorn

    app = server.streamable_http_app()
    if args.lockdown_key:
        from mcp_guard.portal.lockdown import LockdownMiddleware, LockdownVerifier, load_public_key

        verifier = LockdownVerifier(load_public_key(args.lockdown_key), audience="whoami")
        app = LockdownMiddleware(app, verifier)  # type: ignore[assignment]
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
