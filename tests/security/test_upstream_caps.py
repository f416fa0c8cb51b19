"""Upstream sessions opened for callers are capped per principal and per upstream.

An upstream listed in ``callbacks`` gets one private session - for stdio, one
process - per downstream connection; one with per-user credentials one per
credential owner; a 2026-07-28 call that may be asked something one per call.
Left uncapped, a few callers (or one caller with many connections) start
as many processes as they like. Past ``private_per_principal`` sessions for
one caller, or ``private_max`` for the upstream, the caller is refused with a
clear error that the guard records, and no process is started.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, types
from mcp.shared.exceptions import MCPError

from mcp_guard import errors
from mcp_guard.guard import Guard
from mcp_guard.model import Principal
from mcp_guard.portal import Portal
from mcp_guard.portal.credentials import CredentialBroker, SecretBox
from mcp_guard.protocols import Credential
from mcp_guard.store import MemoryStore

from ..helpers import ListAuditor
from ..test_portal_credentials import whoami_stdio
from ..test_portal_support import ServerPolicy, client, portal_http, stdio

PEOPLE = {
    f"tok-{name}": Principal(name, roles=frozenset({"staff"}), tenant="acme")
    for name in ("alice", "bob", "carol", "dave")
}


class People:
    async def authenticate(self, credential: Credential) -> Principal | None:
        return PEOPLE.get(credential.token or "")


def guard(auditor: ListAuditor) -> Guard:
    policy = ServerPolicy({"staff": {("lab", "*"), ("whoami", "*")}})
    return Guard(policy=policy, authenticators=[People()], auditor=auditor, server="portal")


def children(script: str) -> set[int]:
    """Live child processes of this test process running ``script`` (zombies excluded)."""
    me, found = os.getpid(), set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[1]) == me and script.encode() in cmdline:
            found.add(int(entry.name))
    return found


def caller_sessions(portal: Portal, upstream: str) -> int:
    """Caller sessions the portal holds for an upstream, opening and closing ones included."""
    return portal._slots.count(upstream)


async def pid_of(c: Client) -> int:
    result = await c.call_tool("lab__pid", {})
    assert not result.is_error, result
    return int(result.structured_content["result"])  # type: ignore[index]


async def refused(c: Client, tool: str = "lab__pid") -> MCPError:
    with pytest.raises(MCPError) as exc:
        await c.call_tool(tool, {})
    return exc.value


@asynccontextmanager
async def connections(url: str, *tokens: str, mode: str = "legacy") -> AsyncIterator[list[Client]]:
    async with AsyncExitStack() as stack:
        yield [await stack.enter_async_context(client(url, token, mode)) for token in tokens]


def refusals(auditor: ListAuditor, text: str) -> list[Any]:
    return [
        e
        for e in auditor.events
        if e.method == "tools/call" and e.decision != "allow" and any(text in r for r in e.reasons)
    ]


async def test_callback_sessions_are_capped_per_principal_and_per_upstream() -> None:
    auditor = ListAuditor()
    portal = Portal(
        guard(auditor),
        [stdio("lab", "lab_server.py")],
        callbacks=["lab"],
        private_per_principal=2,
        private_max=3,
    )
    with portal_http(portal) as url:
        shared = children("lab_server.py")
        assert len(shared) == 1  # the shared session's process
        tokens = ("tok-alice",) * 3 + ("tok-bob",) * 2 + ("tok-carol",)
        async with connections(url, *tokens) as (a1, a2, a3, b1, b2, c1):
            first, second = await pid_of(a1), await pid_of(a2)
            assert first != second and not {first, second} & shared
            assert await pid_of(a1) == first  # the connection keeps its own session

            # Alice's third connection: at her cap her least recently used idle session (a2's: a1
            # was used since) is closed to make room; nobody else's session is touched or lent.
            third_alice = await pid_of(a3)
            assert third_alice not in (first, second)
            assert caller_sessions(portal, "lab") == 2
            assert await pid_of(a1) == first  # the session she used more recently stays

            bobs = await pid_of(b1)
            assert bobs not in (first, second, third_alice)
            # The upstream's cap is reached: bob (one session of two) and carol are refused; the
            # portal never closes another principal's session to make room.
            for late in (b2, c1):
                busy = await refused(late)
                assert busy.error.code == errors.RATE_LIMITED
                assert "upstream busy" in busy.error.message.lower()
            assert caller_sessions(portal, "lab") == 3
            with anyio.fail_after(10):
                while len(children("lab_server.py") - shared) > 3:
                    await anyio.sleep(0.05)
            # Refusals are recorded like any other, with the reason for the operator.
            assert len(refusals(auditor, "private_max = 3")) == 2
            assert await pid_of(a3) == third_alice and await pid_of(b1) == bobs


async def test_concurrent_first_calls_on_one_connection_open_one_session() -> None:
    portal = Portal(
        guard(ListAuditor()),
        [stdio("lab", "lab_server.py")],
        callbacks=["lab"],
        private_per_principal=1,
        private_max=1,
    )
    with portal_http(portal) as url:
        async with connections(url, "tok-alice") as (a1,):
            pids: list[int] = []

            async def one() -> None:
                pids.append(await pid_of(a1))

            async with anyio.create_task_group() as tg:
                for _ in range(4):
                    tg.start_soon(one)
            assert len(set(pids)) == 1 and len(pids) == 4
            assert caller_sessions(portal, "lab") == 1


KEY = bytes(range(32))


async def whoami_pid(c: Client) -> int:
    result = await c.call_tool("whoami__whoami", {})
    assert not result.is_error, result
    return int(result.structured_content["pid"])  # type: ignore[index]


async def test_per_user_processes_are_capped_and_rotation_reuses_the_owners_slot() -> None:
    broker = CredentialBroker(MemoryStore(), SecretBox(KEY))
    for name in ("alice", "bob"):
        await broker.set("whoami", "subject", name, env={"SERVICE_TOKEN": f"svc-{name}"})
    auditor = ListAuditor()
    portal = Portal(
        guard(auditor), [whoami_stdio()], credentials=broker, private_per_principal=1, private_max=1
    )
    with portal_http(portal) as url:
        async with connections(url, "tok-alice", "tok-bob") as (alice, bob):
            first = await whoami_pid(alice)
            assert await whoami_pid(alice) == first  # pooled
            busy = await refused(bob, "whoami__whoami")
            assert busy.error.code == errors.RATE_LIMITED and "upstream busy" in busy.error.message.lower()
            assert len(refusals(auditor, "private_max = 1")) == 1

            # Alice's secrets rotate: her idle old process makes room for the new one.
            await broker.set("whoami", "subject", "alice", env={"SERVICE_TOKEN": "svc-alice-2"})
            broker._forget("whoami")
            rotated = await whoami_pid(alice)
            assert rotated != first
            assert caller_sessions(portal, "whoami") == 1
            assert first not in children("whoami_server.py")


async def test_calls_that_may_be_asked_something_are_capped_too() -> None:
    """On 2026-07-28 each call to a callbacks upstream runs on its own session while it is parked."""
    auditor = ListAuditor()
    portal = Portal(
        guard(auditor),
        [stdio("lab", "lab_server.py")],
        callbacks=["lab"],
        private_per_principal=1,
        private_max=2,
    )
    release = anyio.Event()
    asked = anyio.Event()

    async def slow_sampler(context: Any, params: types.CreateMessageRequestParams) -> Any:
        asked.set()
        await release.wait()
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text="ok"), model="m"
        )

    with portal_http(portal) as url:
        async with (
            client(url, "tok-alice", "auto", sampling_callback=slow_sampler) as first,
            client(url, "tok-alice", "auto") as second,
        ):
            results: list[Any] = []

            async def ask() -> None:
                results.append(await first.call_tool("lab__ask", {"question": "q"}))

            async with anyio.create_task_group() as tg:
                tg.start_soon(ask)
                with anyio.fail_after(20):
                    await asked.wait()
                assert caller_sessions(portal, "lab") == 1
                mine = await refused(second, "lab__pid")
                assert "too many upstream sessions for you" in mine.error.message.lower()
                release.set()
            assert results[0].structured_content == {"result": "ok"}
            with anyio.fail_after(10):
                while caller_sessions(portal, "lab"):
                    await anyio.sleep(0.05)
            assert await pid_of(second) > 0  # the slot came back
    assert refusals(auditor, "private_per_principal = 1")
