"""The Create-key form's single-use token after a creation that was taken back.

Found: the token was spent before the key was made. When the key's audit event then failed, the key
was revoked and the administrator told to try again later - but posting the same form again (the
trail back) answered 409 "its key was created once", though no working key had ever been handed
out: the administrator was told a key exists that does not.
"""

from __future__ import annotations

import re
from pathlib import Path

from mcp_guard.authn.api_keys import list_api_keys
from mcp_guard.errors import GuardUnavailable
from mcp_guard.model import AuditEvent

from ..test_console import console_client, csrf, events, sign_in


async def test_a_form_whose_key_was_taken_back_can_be_posted_again(tmp_path: Path) -> None:
    async with console_client(tmp_path) as (portal, http):
        store = portal.guard.store
        assert store is not None
        await sign_in(http)
        page = await http.get("/admin/users")
        once = re.search(r'name="once" value="([^"]+)"', page.text)
        assert once is not None
        form = {"subject": "erin", "roles": "analyst", "csrf": csrf(page.text), "once": once.group(1)}
        record = portal.guard.record

        async def failing(event: AuditEvent) -> None:  # the sink fails after the readiness check passed
            raise GuardUnavailable("audit sink down")

        portal.guard.record = failing  # type: ignore[method-assign]
        first = await http.post("/admin/keys", data=form)
        assert first.status_code == 503 and "nothing was changed" in first.text
        portal.guard.record = record  # type: ignore[method-assign]
        again = await http.post("/admin/keys", data=form)
        assert again.status_code == 200 and "mcpg_" in again.text, again.text
        live = [r for r, _ in await list_api_keys(store) if r.subject == "erin" and r.revoked_at is None]
        assert len(live) == 1
        twice = await http.post("/admin/keys", data=form)  # and the form is still single-use
        assert twice.status_code == 409
        assert [e["decision"] for e in events(portal, "console/keys.create")] == ["allow", "deny"]


async def test_a_sign_in_taken_back_leaves_the_admins_other_sessions_alone(tmp_path: Path) -> None:
    """Found: the cap on sessions ended the admin's oldest session before the sign-in's own event
    was written; a sign-in then taken back (its event failed) still ended that session, and the
    ending was never on record (its ``console/sessions.end`` event comes after the sign-in's)."""
    console = "[console]\nmax_sessions_per_admin = 1\n"
    async with console_client(tmp_path, console=console) as (portal, http):
        assert (await sign_in(http)).status_code == 303
        kept = http.cookies["mcp_guard_console"]
        record = portal.guard.record
        tried: list[str] = []

        async def failing(event: AuditEvent) -> None:
            tried.append(event.method)
            raise GuardUnavailable("audit sink down")

        http.cookies.clear()
        portal.guard.record = failing  # type: ignore[method-assign]
        answer = await sign_in(http)
        portal.guard.record = record  # type: ignore[method-assign]
        assert answer.status_code == 503 and tried == ["console/login"]
        http.cookies.set("mcp_guard_console", kept, domain="127.0.0.1", path="/admin")
        assert (await http.get("/admin/approvals")).status_code == 200  # nothing was changed
        assert not events(portal, "console/sessions.end")
