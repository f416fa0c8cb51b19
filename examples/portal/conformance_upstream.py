"""The MCP conformance fixtures, unguarded, on stdio: the upstream of the conformance portal."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from mcp.shared.exceptions import MCPDeprecationWarning

from examples.conformance.fixtures import build_fixture_server

if __name__ == "__main__":
    warnings.filterwarnings("ignore", category=MCPDeprecationWarning)
    build_fixture_server().run("stdio")
