"""The portal: many upstream MCP servers behind one guarded endpoint (``mcp-guard serve``)."""

from __future__ import annotations

from .catalog import Catalog, Route, build_catalog
from .portal import Portal
from .registry import Entry, Registry
from .upstream import Upstream, UpstreamUnavailable, check_upstream_url

__all__ = [
    "Catalog",
    "Entry",
    "Portal",
    "Registry",
    "Route",
    "Upstream",
    "UpstreamUnavailable",
    "build_catalog",
    "check_upstream_url",
]
