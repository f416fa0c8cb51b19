"""The console's answers to what a red team tried: stale sessions, unbounded exports, paths and
redirects that slip past /admin, too many sessions, and refusal floods in the audit trail."""

from __future__ import annotations

from pathlib import Path

from .test_console import ADMIN_KEY, console_client, csrf


async def test_a_browser_form_with_an_opaque_origin_is_accepted_only_when_same_origin(tmp_path: Path) -> None:
    """Browsers send ``Origin: null`` under some referrer policies; Sec-Fetch-Site then decides."""
    async with console_client(tmp_path) as (_, http):
        form = await http.get("/admin/login")
        assert form.headers["referrer-policy"] == "same-origin"
        fields = {"key": ADMIN_KEY, "csrf": csrf(form.text)}
        opaque = {"Origin": "null"}
        assert (await http.post("/admin/login", data=fields, headers=opaque)).status_code == 403
        own = {"Origin": "null", "Sec-Fetch-Site": "same-origin"}
        assert (await http.post("/admin/login", data=fields, headers=own)).status_code == 303
