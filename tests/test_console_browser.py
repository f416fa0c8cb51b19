"""The console in a real browser (headless Chromium): what an administrator clicks, end to end.

The HTTP-level tests (tests/test_console.py) check each route's answers; these check that the
pages work as pages: the forms post what the routes expect, the cookie comes back, a tampered
hidden field is refused, and an approval clicked in the browser releases a caller waiting on it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .browser_util import console_portal, in_thread, sign_in, submit
from .test_console import ADMIN_KEY, USER_KEY, write_config
from .test_pipeline_outcomes import Probe
from .test_portal_outcomes import probe_upstream
from .test_portal_support import client

if TYPE_CHECKING:  # Playwright itself is imported by the fixture, which skips where it is missing
    from playwright.sync_api import Page


def test_an_admin_signs_in_sees_the_pages_and_signs_out(browser_page: Page, tmp_path: Path) -> None:
    page = browser_page
    with console_portal(write_config(tmp_path)) as (_, url):
        page.goto(url + "/admin")
        assert page.url == url + "/admin/login"  # no session: sent to the sign-in form
        assert sign_in(page, url, ADMIN_KEY) == 200
        assert page.url == url + "/admin/approvals"
        assert page.inner_text("header span") == "mcp-guard console"
        assert "carol" in page.inner_text("header form")
        (cookie,) = [c for c in page.context.cookies() if c["name"] == "mcp_guard_console"]
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/admin"
        page.click("header a:text('Audit')")
        assert page.url == url + "/admin/audit" and page.inner_text("h1") == "Audit"
        assert "console/login" in page.inner_text("table")  # its own sign-in is on record
        assert submit(page, "header button:text('Sign out')") == 200
        assert page.url == url + "/admin/login"
        page.goto(url + "/admin/approvals")
        assert page.url == url + "/admin/login"  # the session is gone


def test_a_wrong_key_and_a_non_admins_key_are_refused(browser_page: Page, tmp_path: Path) -> None:
    page = browser_page
    with console_portal(write_config(tmp_path)) as (_, url):
        assert sign_in(page, url, "not-a-key") == 401
        assert page.inner_text("p.error") == "invalid key"
        assert page.is_visible("input[name=key]")  # the form again, to try once more
        assert sign_in(page, url, USER_KEY) == 403
        assert "administrators only" in page.inner_text("main")
        assert not [c for c in page.context.cookies() if c["name"] == "mcp_guard_console"]


def test_a_tampered_csrf_token_is_refused(browser_page: Page, tmp_path: Path) -> None:
    page = browser_page
    with console_portal(write_config(tmp_path)) as (_, url):
        page.goto(url + "/admin/login")
        page.fill("input[name=key]", ADMIN_KEY)
        _tamper(page, "form:has(input[name=key]) input[name=csrf]")
        assert submit(page, "form:has(input[name=key]) button[type=submit]") == 403
        assert "CSRF token" in page.inner_text("main")
        assert sign_in(page, url, ADMIN_KEY) == 200
        _tamper(page, "header form input[name=csrf]")
        assert submit(page, "header button:text('Sign out')") == 403
        page.goto(url + "/admin/approvals")
        assert page.url == url + "/admin/approvals"  # the forged sign-out did nothing


def _tamper(page: Page, selector: str) -> None:
    """Change a form's hidden CSRF token in the DOM, as a forged page would send it."""
    page.eval_on_selector(selector, "input => { input.value = 'forged-' + input.value.slice(7); }")


def test_approving_in_the_browser_releases_the_waiting_caller(browser_page: Page, tmp_path: Path) -> None:
    page = browser_page
    with probe_upstream(Probe()) as upstream, console_portal(write_config(tmp_path, upstream)) as (_, url):

        async def call() -> Any:
            async with client(url, USER_KEY) as c:
                return await c.call_tool("probe__ok", {"n": 7})

        with in_thread(call) as caller:
            assert sign_in(page, url, ADMIN_KEY) == 200
            for _ in range(100):  # the caller's request appears once its call reached the rule
                if page.is_visible("button:text('Approve')"):
                    break
                page.wait_for_timeout(100)
                page.reload()
            row = page.locator("tr", has=page.locator("button:text('Approve')"))
            assert "alice" in row.inner_text() and '"n": 7' in row.inner_text()
            row.locator("input[name=note]").fill("looks fine")
            assert submit(page, "button:text('Approve')") == 200
            result = caller.wait(15)
        assert result.is_error is False
        assert "No request waits for a decision." in page.inner_text("main")
        assert "looks fine" in page.inner_text("main")


def test_odd_paths_under_admin_get_the_consoles_page_and_headers(browser_page: Page, tmp_path: Path) -> None:
    page = browser_page
    with console_portal(write_config(tmp_path)) as (_, url):
        assert sign_in(page, url, ADMIN_KEY) == 200
        response = page.goto(url + "/admin/%0a")
        assert response is not None and response.status == 404
        assert response.headers["x-frame-options"] == "DENY"
        assert "no such console page" in page.inner_text("main")
        page.goto(url + "/admin/audit/")
        assert page.url == url + "/admin/audit"  # a trailing slash: redirected, on the same site
