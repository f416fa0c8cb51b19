"""The portal in front of the unguarded conformance fixtures (``prefix = ""``), on streamable HTTP.

    python examples/portal/conformance_portal.py --port 8766
    bash ../shared/tools/conformance.sh http://127.0.0.1:8766/mcp

Anonymous callers, a policy that allows everything on the ``fixtures``
upstream, and the default upstream settings (no ``callbacks``): the suite
checks that the portal forwards the protocol faithfully, server-to-client
requests and log messages of a call included.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import anyio
from mcp.shared.exceptions import MCPDeprecationWarning

from mcp_guard.config import UpstreamSection
from mcp_guard.guard import Guard
from mcp_guard.model import AccessRequest, Decision, Principal
from mcp_guard.portal import Portal


class AllowFixtures:
    """Allows everything on the ``fixtures`` upstream and nothing elsewhere."""

    def decide(self, principal: Principal, request: AccessRequest) -> Decision:
        if request.server == "fixtures":
            return Decision.allow("fixtures")
        return Decision.deny(None, "not the fixtures upstream")

    def visible(self, principal: Principal, server: str, kind: str, name: str) -> bool:
        return server == "fixtures"


def build_portal() -> Portal:
    guard = Guard(policy=AllowFixtures(), anonymous=Principal("anonymous", roles=frozenset({"guest"})))
    upstream = UpstreamSection(
        name="fixtures",
        command=sys.executable,
        args=[str(Path(__file__).with_name("conformance_upstream.py"))],
        prefix="",
    )
    return Portal(guard, [upstream])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8766)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=MCPDeprecationWarning)
    print(f"conformance portal: http://127.0.0.1:{args.port}/mcp", flush=True)
    anyio.run(build_portal().serve, "127.0.0.1", args.port)


if __name__ == "__main__":
    main()
