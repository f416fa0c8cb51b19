"""The console's pages in a real browser (headless Chromium), as an administrator uses them.

The first test is the console's acceptance bar in one browser session: an administrator signs in
with an admin key, re-approves a tool whose definition changed upstream after reading its diff,
approves a call waiting on that tool, and finds a denied call on the Audit page, never touching a
terminal. The others cover one page each: Servers (revoke and approve a served upstream), Users
and keys (a key shown once, working until revoked), Overview (the chart drawn from the trail) and
Audit (filters, one event, the export as a browser downloads it).
What a caller sees is checked with a real MCP client, in a thread of its own (``in_thread``).
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcp import types
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import MCPError

from .browser_util import console_portal, in_thread, run_async, sign_in, submit
from .test_console import ADMIN_KEY, USER_KEY, write_config
from .test_pipeline_outcomes import Probe
from .test_portal_outcomes import probe_upstream
from .test_portal_support import client

if TYPE_CHECKING:  # Playwright itself is imported by the fixture, which skips where it is missing
    from playwright.sync_api import Page

BEFORE = "Look up an order by its id."
AFTER = "Look up an order by its id.\nAlso lists the order's refunds."


class Drifting(Probe):
    """An upstream whose ``ok`` tool's description can change between two runs of the portal."""

    def __init__(self) -> None:
        super().__init__()
        self.description = BEFORE

    def server(self) -> Server[Any]:
        async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
            return types.ListToolsResult(
                tools=[
                    types.Tool(name="ok", description=self.description, input_schema={"type": "object"}),
                    types.Tool(
                        name="forbidden", description="forbidden tool", input_schema={"type": "object"}
                    ),
                ]
            )

        async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
            return types.CallToolResult(content=[types.TextContent(type="text", text="done")])

        return Server("probe", on_list_tools=list_tools, on_call_tool=call_tool)


async def _tools(url: str, key: str = USER_KEY) -> dict[str, str | None]:
    async with client(url, key) as c:
        listed = await c.list_tools()
    return {t.name: t.description for t in listed.tools}


def _served(url: str, key: str = USER_KEY) -> dict[str, str | None]:
    """The tools an MCP client of ``key`` is served now."""
    result: dict[str, str | None] = run_async(lambda: _tools(url, key))
    return result


def _until(check: Any, what: str, tries: int = 100) -> Any:
    """``check()`` once it is truthy (polled every 100 ms); fails naming ``what`` otherwise."""
    for _ in range(tries):
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"never happened: {what}")


def _reload_until(page: Page, selector: str, what: str) -> None:
    """Reload the page until ``selector`` is visible on it (state that arrives in the background)."""
    for _ in range(100):
        if page.is_visible(selector):
            return
        page.wait_for_timeout(100)
        page.reload()
    raise AssertionError(f"never shown: {what}")


def test_an_administrators_day_without_a_terminal(browser_page: Page, tmp_path: Path) -> None:
    page = browser_page
    upstream = Drifting()
    with probe_upstream(upstream) as up:
        config = write_config(tmp_path, up)
        with console_portal(config) as (_, url):  # yesterday: the tool was seen, and pinned as it was
            assert _until(lambda: _served(url).get("probe__ok") == BEFORE, "the first definition served")
        upstream.description = AFTER  # overnight the upstream changed it
        with console_portal(config) as (portal, url):
            _until(lambda: portal.upstreams["probe"].state == "up", "the upstream connected")
            assert "probe__ok" not in _served(url)  # changed since approval: withheld from callers

            assert sign_in(page, url, ADMIN_KEY) == 200
            page.click("header a:text('Pins')")
            _reload_until(page, "h3:has-text('changed since approval')", "the changed tool on the Pins page")
            diff = page.inner_text("pre.diff")
            assert diff.splitlines() == [  # one line each, no blank line between them
                "@@ -1 +1,2 @@",
                " Look up an order by its id.",
                "+Also lists the order's refunds.",
            ]
            assert page.locator("pre.diff span.add").all_inner_texts() == ["+Also lists the order's refunds."]
            assert "Sanitizers: no finding in the pending version." in page.inner_text("main")
            assert submit(page, "button:text('Approve')") == 200
            assert "Nothing waits for re-approval." in page.inner_text("main")
            assert _until(lambda: _served(url).get("probe__ok") == AFTER, "the approved definition served")

            async def calls() -> tuple[Any, str]:
                async with client(url, USER_KEY) as c:
                    try:
                        await c.call_tool("probe__forbidden", {"order": "A-1"})
                        refused = ""
                    except MCPError as exc:
                        refused = str(exc)
                    return await c.call_tool("probe__ok", {"order": "A-1042"}), refused

            with in_thread(calls) as caller:
                page.click("header a:text('Approvals')")
                _reload_until(page, "button:text('Approve')", "the waiting call on the Approvals page")
                row = page.locator("tr", has=page.locator("button:text('Approve')"))
                assert "alice" in row.inner_text() and '"order": "A-1042"' in row.inner_text()
                assert submit(page, "button:text('Approve')") == 200
                result, refused = caller.wait(15)
            assert result.is_error is False and refused  # the call ran; the other was denied

            page.click("header a:text('Audit')")
            page.fill("form.filters input[name=subject]", "alice")
            page.fill("form.filters input[name=tool]", "forbidden")
            page.select_option("form.filters select[name=decision]", "deny")
            assert submit(page, "form.filters button:text('Filter')") == 200
            assert "decision=deny" in page.url and "tool=forbidden" in page.url
            rows = page.locator("tbody tr")
            assert rows.count() == 1
            assert "tools/call" in rows.inner_text() and "deny" in rows.inner_text()
            assert submit(page, "tbody tr a") == 200
            assert page.inner_text("h1") == "Audit event"
            detail = page.inner_text("pre")
            assert '"decision": "deny"' in detail and '"target": "forbidden"' in detail
            assert '"subject": "alice"' in detail


def test_revoke_and_approve_a_served_server(browser_page: Page, tmp_path: Path) -> None:
    page = browser_page
    with probe_upstream(Probe()) as up, console_portal(write_config(tmp_path, up)) as (_, url):
        assert "probe__ok" in _until(lambda: _served(url), "the probe's tools served")
        assert sign_in(page, url, ADMIN_KEY) == 200
        page.click("header a:text('Servers')")
        row = page.locator("tr", has=page.locator("code:text-is('probe')"))
        _reload_until(page, "td:text-matches('^up')", "the probe up on the Servers page")
        assert "config" in row.inner_text() and "approved" in row.inner_text()
        assert not row.locator("button:text('Approve')").count()  # approved: only Revoke offered
        assert submit(page, "button:text('Revoke')") == 200
        assert "revoked" in row.inner_text() and "carol" in row.inner_text()
        assert _until(lambda: not [t for t in _served(url) if t.startswith("probe__")], "the probe stopped")
        assert submit(page, "button:text('Approve')") == 200
        assert "approved" in row.inner_text()
        assert "probe__ok" in _until(lambda: _served(url), "the probe served again")


def test_create_a_key_shown_once_and_revoke_it(browser_page: Page, tmp_path: Path) -> None:
    page = browser_page
    with probe_upstream(Probe()) as up, console_portal(write_config(tmp_path, up)) as (_, url):
        assert sign_in(page, url, ADMIN_KEY) == 200
        page.click("header a:text('Users and keys')")
        page.fill("input[name=subject]", "erin")
        page.fill("input[name=roles]", "analyst")
        page.fill("input[name=expires]", "30d")
        page.fill("input[name=description]", "reporting job")
        assert submit(page, "button:text('Create')") == 200
        assert page.inner_text("h1") == "Key created"
        key = page.inner_text("p.key code")
        found = re.fullmatch(r"mcpg_([0-9a-f]{12})_[A-Za-z0-9_-]+", key)
        assert found is not None
        key_id = found.group(1)
        assert "probe__ok" in _until(lambda: _served(url, key), "the new key served")
        page.click("a:text('Back to users and keys')")
        assert key not in page.content()  # shown once: the list names the key's id only
        row = page.locator("tr", has=page.locator(f"td:has-text('{key_id}')"))
        assert "erin" in row.inner_text() and "reporting job" in row.inner_text()
        assert submit(page, f"tr:has(td:has-text('{key_id}')) button:text('Revoke')") == 200
        assert "revoked" in page.locator("tr", has=page.locator(f"td:has-text('{key_id}')")).inner_text()
        try:
            _served(url, key)
            refused = False
        except Exception:
            refused = True
        assert refused, "a revoked key was still served"


def test_the_overview_chart_shows_the_days_calls_and_denials(browser_page: Page, tmp_path: Path) -> None:
    page = browser_page
    with probe_upstream(Probe()) as up, console_portal(write_config(tmp_path, up)) as (portal, url):

        async def traffic() -> None:
            async with client(url, USER_KEY) as c:
                for _ in range(3):
                    with contextlib.suppress(MCPError):
                        await c.call_tool("probe__forbidden", {})

        _until(lambda: _served(url), "the probe's tools served")
        run_async(traffic)
        portal.guard.auditor.flush()  # type: ignore[union-attr]
        assert sign_in(page, url, ADMIN_KEY) == 200
        page.click("header a:text('Overview')")
        assert page.inner_text("h1") == "Overview"
        heights = "rects => rects.map(r => parseFloat(r.getAttribute('height')))"
        calls = page.eval_on_selector_all("svg.chart rect.calls", heights)
        denials = page.eval_on_selector_all("svg.chart rect.denials", heights)
        assert len(calls) == len(denials) == 24
        assert max(calls) > 0 and max(denials) > 0  # this hour's bars have data
        assert page.is_visible("svg.chart")
        box = page.locator("svg.chart").bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 100
        tips = page.eval_on_selector_all("svg.chart rect.denials title", "ts => ts.map(t => t.textContent)")
        assert any(re.search(r": [1-9]\d* denials$", t) for t in tips)
        assert "no rule" in page.inner_text("main")  # default deny, under Top denied rules


def test_find_denied_calls_open_one_and_export_them(browser_page: Page, tmp_path: Path) -> None:
    page = browser_page
    with probe_upstream(Probe()) as up, console_portal(write_config(tmp_path, up)) as (portal, url):

        async def traffic() -> None:
            async with client(url, USER_KEY) as c:
                for n in range(2):
                    with contextlib.suppress(MCPError):
                        await c.call_tool("probe__forbidden", {"n": n})

        _until(lambda: _served(url), "the probe's tools served")
        run_async(traffic)
        portal.guard.auditor.flush()  # type: ignore[union-attr]
        assert sign_in(page, url, ADMIN_KEY) == 200
        page.click("header a:text('Audit')")
        page.select_option("form.filters select[name=decision]", "deny")
        page.fill("form.filters input[name=server]", "probe")
        assert submit(page, "form.filters button:text('Filter')") == 200
        rows = page.locator("tbody tr")
        assert rows.count() == 2 and all("forbidden" in t for t in rows.all_inner_texts())
        assert submit(page, "tbody tr:first-child a") == 200
        assert '"n": 1' in page.inner_text("pre")  # newest first
        page.go_back()
        with page.expect_download() as download:
            page.click("a:text('Export matching events as JSON lines')")
        saved = Path(download.value.path())
        exported = [json.loads(line) for line in saved.read_text().splitlines()]
        assert [(r["decision"], r["target"], r["arguments"]) for r in exported] == [
            ("deny", "forbidden", {"n": 0}),
            ("deny", "forbidden", {"n": 1}),
        ]
        page.goto(url + "/admin/audit?subject=carol")  # the export's closing event, once written
        _reload_until(page, "td:text-is('console/audit.exported')", "the export's closing event")
        assert "2 events sent" in page.inner_text("tbody")
