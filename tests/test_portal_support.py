"""Plugins and builders shared by the portal tests (real plugins, real upstream processes)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from mcp_guard.config import UpstreamSection
from mcp_guard.guard import Guard
from mcp_guard.model import AccessRequest, Decision, Principal
from mcp_guard.portal import Portal
from mcp_guard.protocols import Credential

from .helpers import KeywordSanitizer, ListAuditor
from .http_util import free_port, serve

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "portal"

ALICE = Principal("alice", roles=frozenset({"analyst"}))
BOB = Principal("bob", roles=frozenset({"viewer"}))
TOKENS = {"tok-alice": ALICE, "tok-bob": BOB}


class TokenTable:
    async def authenticate(self, credential: Credential) -> Principal | None:
        return TOKENS.get(credential.token or "")


class ServerPolicy:
    """Grants per role a set of ``(server, target)`` pairs (``*`` = any target); records every decision."""

    def __init__(self, grants: Mapping[str, set[tuple[str, str]]]) -> None:
        self.grants = grants
        self.decided: list[tuple[str, str | None, str | None]] = []

    def _ok(self, principal: Principal, server: str, name: str | None) -> bool:
        pairs = set().union(*(self.grants.get(r, set()) for r in principal.roles))
        return (server, name or "") in pairs or (server, "*") in pairs

    def decide(self, principal: Principal, request: AccessRequest) -> Decision:
        self.decided.append((request.server, request.target, request.method))
        if self._ok(principal, request.server, request.target):
            return Decision.allow("grant")
        return Decision.deny(None, f"{principal.subject} may not use {request.server}/{request.target}")

    def visible(self, principal: Principal, server: str, kind: str, name: str) -> bool:
        return self._ok(principal, server, name)


GRANTS: dict[str, set[tuple[str, str]]] = {
    "analyst": {("notes", "*"), ("weather", "*"), ("lab", "*")},
    "viewer": {("notes", "search_notes"), ("notes", "notes://all"), ("weather", "forecast")},
}


def stdio(name: str, script: str, **kw: Any) -> UpstreamSection:
    return UpstreamSection(name=name, command=sys.executable, args=[str(EXAMPLES / script)], **kw)


def make_guard(policy: Any = None, auditor: ListAuditor | None = None) -> Guard:
    return Guard(
        policy=policy or ServerPolicy(GRANTS),
        authenticators=[TokenTable()],
        auditor=auditor or ListAuditor(),
        sanitizers=[KeywordSanitizer()],
        server="portal",
    )


def client(url: str, token: str | None, mode: str = "legacy", **kw: Any) -> Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    transport = streamable_http_client(url + "/mcp", http_client=create_mcp_http_client(headers=headers))
    return Client(transport, mode=mode, **kw)


@contextmanager
def portal_http(portal: Portal) -> Iterator[str]:
    port = free_port()
    with serve(portal.streamable_http_app(port=port), port) as url:
        yield url


@asynccontextmanager
async def running(portal: Portal) -> AsyncIterator[Portal]:
    async with portal:
        yield portal
