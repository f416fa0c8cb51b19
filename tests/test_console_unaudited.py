"""Console actions whose audit event fails after the readiness check: taken back, or told.

The trail can fail between the console's readiness check and the write of an action's event (a
sink failing on the commit itself, a shutdown). A change that can be taken back must not stand
unaudited, and an administrator must never be shown success for an action that is not on record.
"""

from __future__ import annotations

from pathlib import Path

from mcp_guard.console.sessions import SESSION_COOKIE
from mcp_guard.errors import GuardUnavailable
from mcp_guard.model import AuditEvent
from mcp_guard.portal import Portal, Registry

from .test_console import console_client, csrf, sign_in
from .test_console_attacks import _version


def _fail_audit_writes(portal: Portal) -> list[str]:
    """Make every event write fail (the readiness check still passes); returns the methods tried."""
    tried: list[str] = []

    async def failing(event: AuditEvent) -> None:
        tried.append(event.method)
        raise GuardUnavailable("audit sink down")

    portal.guard.record = failing  # type: ignore[method-assign]
    return tried


async def test_a_sign_in_that_cannot_be_audited_opens_no_session(tmp_path: Path) -> None:
    async with console_client(tmp_path) as (portal, http):
        tried = _fail_audit_writes(portal)
        answer = await sign_in(http)
        assert answer.status_code == 503 and "nothing was changed" in answer.text
        assert tried == ["console/login"]
        # No session cookie was set, and the session the sign-in made no longer exists.
        assert SESSION_COOKIE not in answer.headers.get("set-cookie", "")
        assert not [k for k in await portal.guard.store.keys("") if "console:session" in k]  # type: ignore[union-attr]
        after = await http.get("/admin/approvals")
        assert after.status_code in (303, 403) or "Sign in" in after.text


async def test_a_server_approval_that_cannot_be_audited_is_taken_back(tmp_path: Path) -> None:
    async with console_client(tmp_path) as (portal, http):
        assert portal.guard.store is not None
        registry = Registry(portal.guard.store)
        await registry.add({"name": "tickets", "command": "python", "args": ["tickets.py"]}, by="mallory")
        before = await registry.get("tickets")
        await sign_in(http)
        shown = await http.get("/admin/servers")
        form = {"action": "approve", "csrf": csrf(shown.text), "version": _version(shown.text, "tickets")}
        tried = _fail_audit_writes(portal)
        answer = await http.post("/admin/servers/tickets", data=form)
        assert answer.status_code == 503 and "nothing was changed" in answer.text
        assert tried == ["console/servers.approve"]
        assert await registry.get("tickets") == before  # status, approver and time as they were


async def test_an_export_whose_start_cannot_be_audited_sends_nothing(tmp_path: Path) -> None:
    async with console_client(tmp_path) as (portal, http):
        await sign_in(http)
        await http.get("/admin/audit")
        tried = _fail_audit_writes(portal)
        answer = await http.get("/admin/audit/export")
        assert answer.status_code == 503 and "nothing was changed" in answer.text
        assert not answer.headers["content-type"].startswith("application/x-ndjson")
        assert tried == ["console/audit.export"]


async def test_a_revocation_that_cannot_be_audited_stands_and_says_so(tmp_path: Path) -> None:
    from mcp_guard.authn.api_keys import create_api_key, list_api_keys

    async with console_client(tmp_path) as (portal, http):
        store = portal.guard.store
        assert store is not None
        _, record = await create_api_key(store, "erin", roles=["analyst"])
        await sign_in(http)
        token = csrf((await http.get("/admin/users")).text)
        _fail_audit_writes(portal)
        answer = await http.post(f"/admin/keys/{record.id}/revoke", data={"csrf": token})
        # Revoking only takes access away: it stands, and the page does not claim all went well.
        assert answer.status_code == 503 and "could not take its event" in answer.text
        (after,) = [r for r, _ in await list_api_keys(store) if r.id == record.id]
        assert after.revoked_at is not None
