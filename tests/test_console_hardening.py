"""The console's answers to what a red team tried: stale sessions, unbounded exports, paths and
redirects that slip past /admin, too many sessions, and refusal floods in the audit trail."""

from __future__ import annotations

from pathlib import Path

from .test_console import ADMIN_KEY, console_client, csrf, events, sign_in


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


async def test_every_path_under_admin_is_the_consoles_with_its_headers_and_on_record(tmp_path: Path) -> None:
    async with console_client(tmp_path) as (portal, http):
        for path in ("/admin/%0a", "/admin/approvals%0a", "/admin/%0d%0aSet-Cookie:%20x=1", "/admin%0a"):
            response = await http.get(path)
            assert response.status_code == 404, path
            assert response.headers["content-security-policy"].startswith("default-src 'self'"), path
            assert response.headers["cache-control"] == "no-store", path
            assert "x" not in http.cookies
        reasons = [e["reasons"][0] for e in events(portal, "console/reject")]
        assert len(reasons) == 4 and all(r.startswith("HTTP 404: GET /admin") for r in reasons)
        assert not any("\n" in r or "\r" in r for r in reasons)


async def test_redirects_stay_relative_whatever_the_host_header_says(tmp_path: Path) -> None:
    async with console_client(tmp_path) as (_, http):
        await sign_in(http)
        for path in ("/admin", "/admin/", "/admin/approvals/", "/admin/audit/", "/admin/login/"):
            response = await http.get(path, headers={"Host": "evil.example"})
            assert response.status_code in (303, 307, 308), (path, response.status_code)
            location = response.headers["location"]
            assert location.startswith("/admin") and not location.startswith("//"), (path, location)
            assert response.headers["x-frame-options"] == "DENY", path
