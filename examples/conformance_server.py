"""The MCP conformance fixtures behind an mcp-guard, on streamable HTTP.

    python examples/conformance_server.py --port 8765
    bash ../shared/tools/conformance.sh http://127.0.0.1:8765/mcp

The guard admits anonymous callers and its policy allows everything, so the
official conformance suite must see exactly what it sees from an unguarded
server: every message still crosses the guard's middleware (identify,
classify, decide, inspect, record), which is what this example proves
harmless to protocol conformance. Requests with a non-loopback ``Host`` or
``Origin`` are refused before any MCP message is read (DNS rebinding).

``--policy examples/conformance/policy.toml`` swaps the built-in allow-all
for the project's policy engine, ``--sanitize`` scans every list and result,
and ``--stdio`` serves the same guarded fixtures on stdin/stdout (for a
portal in front). At exit the in-memory audit counts go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import warnings
from collections import Counter, deque
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn
from mcp.shared.exceptions import MCPDeprecationWarning

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conformance.event_store import MemoryEventStore
from conformance.fixtures import build_fixture_server

from mcp_guard.errors import ConfigError
from mcp_guard.guard import Guard
from mcp_guard.integrations.http import check_bind, loopback_security
from mcp_guard.model import AccessRequest, AuditEvent, Decision, Principal
from mcp_guard.policy import load_policy
from mcp_guard.protocols import PolicyEngine
from mcp_guard.sanitize import DefaultSanitizer

ALLOW_ALL_RULE = "conformance-allow-all"
_ALLOW = Decision.allow(ALLOW_ALL_RULE)


class AllowAllPolicy:
    """A ``PolicyEngine`` that allows every request and shows every item.

    Only sensible for a fixture server: the point is to measure what the
    guard's plumbing does to a conforming exchange, with policy out of the way.
    """

    def decide(self, principal: Principal, request: AccessRequest) -> Decision:
        return _ALLOW

    def visible(self, principal: Principal, server: str, kind: str, name: str) -> bool:
        return True


class MemoryAuditor:
    """An ``Auditor`` keeping the latest events in memory and a count per outcome.

    Nothing leaves the process, so ``record`` never blocks; the counts are
    printed at shutdown as evidence that traffic went through the guard.
    """

    synchronous = False

    def __init__(self, keep: int = 1000) -> None:
        self.events: deque[AuditEvent] = deque(maxlen=keep)
        self.counts: Counter[str] = Counter()

    def record(self, event: AuditEvent) -> None:
        self.events.append(event)
        self.counts[event.decision] += 1

    async def record_sync(self, event: AuditEvent) -> None:
        self.record(event)

    async def aclose(self) -> None:
        return None

    def summary(self) -> str:
        return ", ".join(f"{k}={self.counts[k]}" for k in ("allow", "deny", "error"))


def build_guard(
    auditor: MemoryAuditor | None = None, policy_file: Path | None = None, *, sanitize: bool = False
) -> Guard:
    """The guard in front of the fixtures: anonymous callers, an allowing policy, in-memory audit.

    Without ``policy_file`` the policy is :class:`AllowAllPolicy`; with one,
    it is the project's policy engine loaded from that file (a bad file
    raises :class:`~mcp_guard.errors.PolicyError` naming file, line and field).
    ``sanitize`` adds the default sanitizer over every list and result, so
    the inspect-out stage is exercised on conforming traffic too.
    """
    policy: PolicyEngine = load_policy(policy_file) if policy_file is not None else AllowAllPolicy()
    return Guard(
        policy=policy,
        anonymous=Principal("anonymous", roles=frozenset({"guest"})),
        auditor=auditor,
        sanitizers=[DefaultSanitizer()] if sanitize else (),
        inspect_lists=sanitize,
        inspect_results=sanitize,
    )


def build_app(port: int, guard: Guard) -> Any:
    """The Starlette app serving the guarded fixtures on ``/mcp``."""
    server = build_fixture_server()
    guard.protect(server, read_env=False)
    return server.streamable_http_app(
        transport_security=loopback_security(port),
        event_store=MemoryEventStore(),
        retry_interval=500,
    )


async def serve(host: str, port: int, guard: Guard) -> None:
    """Serve until interrupted; uvicorn shuts down gracefully, then re-raises the signal."""
    config = uvicorn.Config(build_app(port, guard), host=host, port=port, log_level="warning", lifespan="on")
    print(f"conformance server: http://{host}:{port}/mcp (guarded, anonymous access)", flush=True)
    try:
        await uvicorn.Server(config).serve()
    finally:
        await guard.aclose()


async def serve_stdio(guard: Guard) -> None:
    """The same guarded fixtures on stdin/stdout, e.g. as a portal's upstream.

    A caller's credential, if any, comes from ``MCP_GUARD_TOKEN`` (read by the
    guard's middleware); without one the caller is anonymous.
    """
    server = build_fixture_server()
    guard.protect(server)
    try:
        await server.run_stdio_async()
    finally:
        await guard.aclose()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=8765, help="TCP port (default 8765)")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument("--stdio", action="store_true", help="serve on stdin/stdout instead of HTTP")
    parser.add_argument("--policy", type=Path, help="policy file to use instead of the built-in allow-all")
    parser.add_argument(
        "--sanitize", action="store_true", help="scan every list and result (default sanitizer)"
    )
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        parser.error(f"--port: {args.port} is not a TCP port")
    auditor = MemoryAuditor()
    try:
        check_bind(args.host, allow_public_bind=False)
        guard = build_guard(auditor, args.policy, sanitize=args.sanitize)
    except ConfigError as exc:
        print(f"conformance server: {exc}", file=sys.stderr)
        return 2
    # The fixtures use the 2025-11-25 logging, sampling and elicitation features
    # on purpose; their 2026-07-28 deprecation notices are noise here.
    warnings.filterwarnings("ignore", category=MCPDeprecationWarning)
    # SIGTERM ends the server like Ctrl-C does, so the audit summary is still printed.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        asyncio.run(serve_stdio(guard) if args.stdio else serve(args.host, args.port, guard))
    except KeyboardInterrupt:
        pass
    finally:
        print(f"conformance server: audit {auditor.summary()}", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
