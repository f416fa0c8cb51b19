"""Approvals and confirmation through the portal: the nested run of the upstream call enforces them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import types
from mcp.shared.exceptions import MCPError
from starlette.applications import Starlette

from mcp_guard.authn.issuer import TokenIssuer
from mcp_guard.authn.lockout import Lockout, LockoutPolicy
from mcp_guard.authn.login import LoginService
from mcp_guard.authn.passwords import hash_password
from mcp_guard.authn.stepup import StepUps, step_up_routes
from mcp_guard.authn.users import User, UsersFile
from mcp_guard.config import UpstreamSection
from mcp_guard.errors import APPROVAL_PENDING, URL_ELICITATION_REQUIRED
from mcp_guard.guard import Guard
from mcp_guard.policy import policy_from_dict
from mcp_guard.portal import Portal
from mcp_guard.store import MemoryStore

from .helpers import KeywordSanitizer, ListAuditor
from .test_hitl_stepup import PASSWORD, SECRET, sign_in
from .test_pipeline_outcomes import Probe
from .test_portal_outcomes import probe_upstream
from .test_portal_support import TokenTable, client, portal_http

MODES = ["legacy", "auto"]


def build(url: str, auditor: ListAuditor, **obligations: Any) -> Portal:
    rule = {"id": "probe-ok", "effect": "allow", "roles": ["analyst"], "servers": ["probe"], "tools": ["ok"]}
    guard = Guard(
        policy=policy_from_dict({"rules": [rule | obligations]}),
        authenticators=[TokenTable()],
        auditor=auditor,
        sanitizers=[KeywordSanitizer()],
        server="portal",
    )
    return Portal(guard, [UpstreamSection(name="probe", url=url)])


def calls(auditor: ListAuditor) -> list[Any]:
    return [e for e in auditor.events if e.method == "tools/call"]


@pytest.mark.parametrize("mode", MODES)
async def test_approval_through_the_portal(mode: str) -> None:
    auditor = ListAuditor()
    with probe_upstream(Probe()) as up:
        portal = build(up, auditor, approval={"approvers": ["admin"], "timeout": "10m"})
        with portal_http(portal) as url:
            async with client(url, "tok-alice", mode) as c:
                with pytest.raises(MCPError) as pending:
                    await c.call_tool("probe__ok", {"n": 1})
                assert pending.value.error.code == APPROVAL_PENDING
                request_id = pending.value.error.data["approvalId"]
                (waiting,) = await portal.guard.approvals.list()
                assert (waiting.id, waiting.server, waiting.target) == (request_id, "probe", "ok")
                await portal.guard.approvals.decide(request_id, True, by="ada", roles=frozenset({"admin"}))
                result = await c.call_tool("probe__ok", {"n": 1})
                assert result.is_error is False
                with pytest.raises(MCPError) as replay:
                    await c.call_tool("probe__ok", {"n": 1})
                assert replay.value.error.code == APPROVAL_PENDING
    events = calls(auditor)
    assert [(e.decision, e.approval["status"]) for e in events] == [
        ("deny", "pending"),
        ("allow", "used"),
        ("deny", "pending"),
    ]
    assert events[1].server == "probe" and events[1].approval["decided_by"] == "ada"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("action", ["accept", "decline"])
async def test_confirm_through_the_portal(mode: str, action: str) -> None:
    auditor = ListAuditor()
    asked: list[str] = []

    async def answer(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        return types.ElicitResult(action=action)  # type: ignore[arg-type]

    with probe_upstream(Probe()) as up, portal_http(build(up, auditor, confirm="Run ok with {n}?")) as url:
        async with client(url, "tok-alice", mode, elicitation_callback=answer) as c:
            if action == "accept":
                assert (await c.call_tool("probe__ok", {"n": 2})).is_error is False
            else:
                with pytest.raises(MCPError):
                    await c.call_tool("probe__ok", {"n": 2})
    assert asked == ["Run ok with 2?"]
    event = calls(auditor)[-1]
    assert event.confirmation["answer"] == action and event.server == "probe"
    assert event.decision == ("allow" if action == "accept" else "deny")


@pytest.mark.parametrize("mode", MODES)
async def test_a_portal_call_waits_with_progress_and_runs_when_approved(mode: str) -> None:
    auditor = ListAuditor()
    notes: list[str] = []

    async def progress(value: float, total: float | None, message: str | None) -> None:
        notes.append(message or "")

    with probe_upstream(Probe()) as up:
        portal = build(up, auditor, approval={"approvers": ["admin"], "timeout": "10m", "wait": "20s"})
        portal.guard.approvals.poll = 0.05
        book = portal.guard.approvals

        async def approve_when_reported() -> None:
            while not notes:
                await anyio.sleep(0.01)
            (request,) = await book.list()
            await book.decide(request.id, True, by="ada", roles=frozenset({"admin"}))

        with portal_http(portal) as url:
            async with client(url, "tok-alice", mode) as c, anyio.create_task_group() as tg:
                tg.start_soon(approve_when_reported)
                with anyio.fail_after(15):
                    result = await c.call_tool("probe__ok", {"n": 3}, progress_callback=progress)
    assert result.is_error is False
    (request,) = await book.list(everything=True)
    assert request.status == "used" and f"waiting for approval {request.id}" in notes[0]


@pytest.mark.parametrize("mode", MODES)
async def test_step_up_through_the_portal(mode: str, tmp_path: Path) -> None:
    store = MemoryStore()
    users = UsersFile(tmp_path / "users.json")
    users.put(User("alice", hash_password(PASSWORD, "scrypt"), SECRET, roles=("analyst",)))
    service = LoginService(users, TokenIssuer(tmp_path / "keys"), Lockout(store, LockoutPolicy()), store)
    step_ups = StepUps(store, "http://guard.test/login/step-up")
    page = Starlette(routes=step_up_routes(service, step_ups))
    auditor = ListAuditor()
    links: list[str] = []

    async def open_link(context: Any, params: Any) -> types.ElicitResult:
        links.append(params.url)
        assert (await sign_in(browser, params.url, user="alice")).status_code == 200
        return types.ElicitResult(action="accept")

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=page), base_url="http://guard.test"
    ) as browser:
        with probe_upstream(Probe()) as up:
            portal = build(up, auditor, step_up="15m")
            portal.guard.step_ups = step_ups
            with portal_http(portal) as url:
                async with client(url, "tok-alice", mode, elicitation_callback=open_link) as c:
                    if mode == "legacy":  # asked on the call's stream; the call waits for the sign-in
                        assert (await c.call_tool("probe__ok", {"n": 4})).is_error is False
                    else:
                        with pytest.raises(MCPError) as required:
                            await c.call_tool("probe__ok", {"n": 4})
                        assert required.value.error.code == URL_ELICITATION_REQUIRED
                        link = required.value.error.data["elicitations"][0]["url"]
                        assert (await sign_in(browser, link, user="alice")).status_code == 200
                        links.append(link)
                        assert (await c.call_tool("probe__ok", {"n": 4})).is_error is False
    assert len(links) == 1 and links[0].startswith("http://guard.test/login/step-up?id=")
    assert calls(auditor)[-1].decision == "allow"
