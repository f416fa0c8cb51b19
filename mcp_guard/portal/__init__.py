"""The portal: many upstream MCP servers behind one guarded endpoint (``mcp-guard serve``)."""

from __future__ import annotations

from .catalog import Catalog, Route, build_catalog
from .credentials import CredentialBroker, SecretBox, UpstreamCredentials, load_key
from .lockdown import LockdownMiddleware, LockdownVerifier, PortalSigner, load_public_key
from .portal import Portal
from .registry import Entry, Registry
from .upstream import Upstream, UpstreamUnavailable, check_upstream_url

__all__ = [
    "Catalog",
    "CredentialBroker",
    "Entry",
    "LockdownMiddleware",
    "LockdownVerifier",
    "Portal",
    "PortalSigner",
    "Registry",
    "Route",
    "SecretBox",
    "Upstream",
    "UpstreamCredentials",
    "UpstreamUnavailable",
    "build_catalog",
    "check_upstream_url",
    "load_key",
    "load_public_key",
]
