"""``mcp-guard serve --config FILE``: the portal on streamable HTTP (default 127.0.0.1:8787/mcp)."""

from __future__ import annotations

import argparse
import errno
import logging
import socket
import sys
from pathlib import Path
from typing import Any

#: Exit status when the listen address cannot be bound (the port is in use, or not ours to take).
#: The same as uvicorn's own start-up failure, which it still is if the port is taken in between.
EXIT_CANNOT_LISTEN = 3


def _bind_problem(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on, or None: checked before anything is printed or
    started, with the same ``SO_REUSEADDR`` uvicorn uses (a port in TIME_WAIT is free)."""
    if port == 0:
        return None
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError:
        return None  # uvicorn reports an unresolvable host itself
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
            probe.listen()
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return f"port {port} is in use on {host} (another process listens there)"
            return f"cannot listen on {host}:{port}: {exc.strerror or exc}"
    return None


#: Libraries that log every request at INFO: quiet below ``-vv``, so ``-v`` shows the guard's own lines.
CHATTY_LOGGERS = (
    "mcp",
    "mcp_types",
    "httpx",
    "httpx2",
    "httpcore",
    "uvicorn",
    "uvicorn.access",
    "sse_starlette",
)


def configure_logging(verbosity: int) -> None:
    """``-v``: the guard's INFO lines (upstream state changes); ``-vv``: also the SDK's and
    the HTTP stack's per-request lines; ``-vvv``: DEBUG. Without ``-v``: warnings only."""
    level = logging.DEBUG if verbosity >= 3 else logging.INFO if verbosity else logging.WARNING
    logging.basicConfig(level=level, stream=sys.stderr)
    logging.getLogger().setLevel(level)
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(level if verbosity >= 2 else max(level, logging.WARNING))


def _serve(args: argparse.Namespace) -> int:
    import anyio

    from ..config import load_config
    from ..integrations.http import check_bind
    from ..portal import Portal

    configure_logging(args.verbose)
    config = load_config(args.config)
    host = args.host or config.listen.host
    port = config.listen.port if args.port is None else args.port
    # Refuse a public bind before anything starts (exit 2 with the field named).
    check_bind(host, config.listen.allow_public_bind)
    problem = _bind_problem(host, port)
    if problem:
        print(f"mcp-guard: {problem}; choose another with [listen] port or --port", file=sys.stderr)
        return EXIT_CANNOT_LISTEN
    portal = Portal.from_guard_config(
        config,
        secrets_key=args.secrets_key.resolve() if args.secrets_key else None,
        lockdown_key=args.lockdown_key.resolve() if args.lockdown_key else None,
    )
    scheme = "https" if config.listen.tls_certfile else "http"
    print(f"mcp-guard portal on {scheme}://{host}:{port}{config.listen.path}", file=sys.stderr)
    if config.console.enabled:
        print(f"admin console on {scheme}://{host}:{port}/admin", file=sys.stderr)
    if config.listen.trusted_proxies:
        # Portal.serve runs uvicorn with ``config.listen.server_options()``: forwarded headers are
        # believed from these peers only (never by default), so say so where the operator looks.
        proxies = ", ".join(config.listen.trusted_proxies)
        print(f"X-Forwarded-For / X-Forwarded-Proto believed from: {proxies}", file=sys.stderr)
    if args.lockdown_key:
        public = args.lockdown_key.resolve().with_suffix(".pub")
        print(f"lockdown: URL upstreams verify requests with {public}", file=sys.stderr)

    async def main() -> None:
        try:
            await portal.serve(host, port)
        finally:
            await portal.guard.aclose()

    anyio.run(main)
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve", help="run the portal (guarded upstream servers) on streamable HTTP"
    )
    parser.add_argument(
        "--config", type=Path, required=True, metavar="FILE", help="guard.toml with [[servers]]"
    )
    parser.add_argument("--host", help="override [listen] host (loopback unless allow_public_bind)")
    parser.add_argument("--port", type=int, help="override [listen] port")
    parser.add_argument(
        "--secrets-key",
        type=Path,
        metavar="FILE",
        help="AES key of per-user upstream credentials (default .mcp-guard/secrets.key beside the config; "
        "env MCP_GUARD_SECRETS_KEY wins)",
    )
    parser.add_argument(
        "--lockdown-key",
        type=Path,
        metavar="FILE",
        help="Ed25519 key signing every request to URL upstreams (created if absent; public key: FILE.pub)",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="-v: log upstream state changes; -vv: also the SDK's per-request lines; -vvv: debug",
    )
    parser.set_defaults(func=_serve)
