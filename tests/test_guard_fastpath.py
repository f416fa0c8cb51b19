"""The request path's synchronous shortcuts answer exactly as the full stages would.

A cached principal is taken without the resolver's coroutines (``AuthenticatorChain.hit``,
``Guard.identified``), a policy's Decision without a coroutine of its own, a call result is
inspected and its event enqueued without awaiting. Each shortcut only applies when the full
stage would give the same answer without any await; everything else takes the full stage.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError

from mcp_guard.authn import AuthenticatorChain, RevocationList
from mcp_guard.authn.api_keys import ApiKeyAuthenticator, ConfiguredKey
from mcp_guard.authn.lockout import Lockout
from mcp_guard.guard import Guard
from mcp_guard.model import AuditEvent, Principal
from mcp_guard.policy import AllowListPolicy
from mcp_guard.protocols import Credential
from mcp_guard.store import MemoryStore

from .test_authn_chain import Clock, Counting


async def test_hit_only_after_resolve_and_only_for_that_token() -> None:
    a = Counting("a", Principal(subject="alice", credential_id="ka"))
    b = Counting("b", Principal(subject="bob", credential_id="kb"))
    chain = AuthenticatorChain([a, b])
    alice, bob = Credential("a-token"), Credential("b-token")
    assert chain.hit(alice) is None  # nothing verified yet: the full path verifies
    assert (await chain.resolve(alice)).subject == "alice"
    assert chain.hit(alice) is not None and chain.hit(alice).subject == "alice"  # type: ignore[union-attr]
    # A second principal never gets the first one's answer, whichever was hashed last.
    assert chain.hit(bob) is None
    assert (await chain.resolve(bob)).subject == "bob"
    for _ in range(3):
        assert chain.hit(Credential("a-token")).subject == "alice"  # type: ignore[union-attr]
        assert chain.hit(Credential("b-token")).subject == "bob"  # type: ignore[union-attr]
    assert chain.hit(Credential("a-other")) is None


async def test_hit_ends_with_revocation_expiry_and_holds() -> None:
    clock = Clock()
    revocations = RevocationList(None)
    a = Counting("a", Principal(subject="alice", credential_id="ka"))
    chain = AuthenticatorChain([a], revocations=revocations, max_ttl=60, clock=clock)
    token = Credential("a-token")
    await chain.resolve(token)
    assert chain.hit(token) is not None
    clock.now += 61
    assert chain.hit(token) is None  # expired: resolve verifies again
    await chain.resolve(token)
    assert chain.hit(token) is not None
    await revocations.revoke("ka")
    assert chain.hit(token) is None  # revoked: resolve refuses it
    other = Counting("o", Principal(subject="olga", credential_id="ko"))
    held = AuthenticatorChain([other])
    await held.resolve(Credential("o-token"))
    held.holds = Lockout(MemoryStore())
    assert held.hit(Credential("o-token")) is None  # a hold is checked by resolve, never skipped


async def test_no_credential_hits_the_anonymous_principal_only_when_there_is_one() -> None:
    assert AuthenticatorChain([]).hit(Credential(None)) is None
    anonymous = Principal(subject="anonymous", auth_method="anonymous")
    assert AuthenticatorChain([], anonymous).hit(Credential(None)) is anonymous


@settings(max_examples=60, deadline=None)
@given(
    tokens=st.lists(st.sampled_from(["a1", "a2", "b1", "zz", ""]), min_size=1, max_size=12),
    revoked=st.sets(st.sampled_from(["a1", "a2", "b1"])),
)
async def test_hit_agrees_with_resolve(tokens: list[str], revoked: set[str]) -> None:
    """Whenever the shortcut answers, the full path gives the same principal."""

    class PerToken:
        async def authenticate(self, credential: Credential) -> Principal | None:
            token = credential.token or ""
            return Principal(subject=f"user-{token}", credential_id=token) if token[:1] in "ab" else None

    revocations = RevocationList(None)
    chain = AuthenticatorChain([PerToken()], Principal(subject="anon"), revocations=revocations)
    for i, token in enumerate(tokens):
        if i == len(tokens) // 2:
            for cid in revoked:
                await revocations.revoke(cid)
        credential = Credential(token)
        fast = chain.hit(credential)
        try:
            full: Principal | None = await chain.resolve(credential)
        except Exception:
            full = None
        if fast is not None:
            assert full is not None and fast.subject == full.subject == (f"user-{token}" if token else "anon")


KEY = "fastpath-key-0123456789"


def _guarded(tmp: Any) -> tuple[MCPServer, Guard, list[AuditEvent]]:
    events: list[AuditEvent] = []

    class Memory:
        synchronous = False

        def record(self, event: AuditEvent) -> None:
            events.append(event)

        async def record_sync(self, event: AuditEvent) -> None:
            events.append(event)

        async def aclose(self) -> None:
            return None

    digest = hashlib.sha256(KEY.encode()).hexdigest()
    revocations = RevocationList(None)
    resolver = AuthenticatorChain(
        [ApiKeyAuthenticator([ConfiguredKey(digest, "alice", ("user",), id="k1")])],
        revocations=revocations,
    )
    guard = Guard(policy=AllowListPolicy(tools=["echo"]), resolver=resolver, auditor=Memory(), server="s")
    server = MCPServer("s", log_level="WARNING")

    @server.tool()
    def echo(text: str) -> str:
        """Return the text."""
        return text

    guard.protect(server, credential=KEY, read_env=False)
    return server, guard, events


async def test_revoking_the_connection_key_refuses_the_next_call(tmp_path: Any) -> None:
    server, guard, events = _guarded(tmp_path)
    async with Client(server, mode="legacy") as client:
        for _ in range(3):
            assert (await client.call_tool("echo", {"text": "hi"})).content[0].text == "hi"  # type: ignore[union-attr]
        await guard.resolver.revocations.revoke("k1")  # type: ignore[attr-defined]
        with pytest.raises(MCPError):
            await client.call_tool("echo", {"text": "hi"})
    calls = [e for e in events if e.method == "tools/call"]
    assert [e.decision for e in calls] == ["allow", "allow", "allow", "deny"]
    assert all(e.principal is not None and e.principal["subject"] == "alice" for e in calls[:3])


async def test_shadow_mode_still_applies_to_a_plain_decision(tmp_path: Any) -> None:
    server, guard, events = _guarded(tmp_path)
    guard.mode = "shadow"
    guard.policy = AllowListPolicy(tools=["other"])
    async with Client(server, mode="legacy") as client:
        assert (await client.call_tool("echo", {"text": "hi"})).content[0].text == "hi"  # type: ignore[union-attr]
    (call,) = [e for e in events if e.method == "tools/call"]
    assert call.decision == "allow" and call.shadow
