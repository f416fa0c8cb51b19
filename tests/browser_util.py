"""A real browser for console tests: Playwright driving the system's Chromium, and a served portal.

Playwright's own browser downloads are not used: Debian's ``chromium`` package
is (``/usr/bin/chromium``, or ``MCP_GUARD_CHROMIUM``), launched headless with
everything that reaches out to the network switched off, since a test machine
may have none and Chromium's background fetches then only slow it down or hang.
Tests skip, saying why, where that binary or Playwright is missing; CI installs both.

One browser serves a whole test module (starting Chromium is the slow part);
each test gets a fresh context (its own cookies and storage, so sessions never
leak between tests) through the ``browser_page`` fixture. A test of a new console
page needs only ``browser_page``, :func:`console_portal` and :func:`sign_in`::

    def test_the_overview_page(browser_page: Page, tmp_path: Path) -> None:
        with console_portal(write_config(tmp_path)) as (portal, url):
            assert sign_in(browser_page, url, ADMIN_KEY) == 200
            browser_page.goto(url + "/admin/overview")

(``write_config`` and the keys are those of :mod:`tests.test_console`.)

The fixtures are sync: Playwright's sync API cannot run inside an event loop, so
browser tests are plain functions, the portal is served by uvicorn in a thread
(:func:`tests.http_util.serve`), and async work such as an MCP client waiting on
an approval runs in a thread of its own (:func:`in_thread`).
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from mcp_guard.config import load_config
from mcp_guard.portal import Portal

from .http_util import free_port, serve

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

#: Switches that keep a headless Chromium from reaching out or waiting on anything outside the test.
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: How long a page action or navigation may take before the test fails (milliseconds).
TIMEOUT_MS = 10_000


def chromium_path() -> str | None:
    """The system Chromium to drive, or None where there is none."""
    configured = os.environ.get("MCP_GUARD_CHROMIUM")
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    return shutil.which("chromium") or (
        "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None
    )


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """One headless Chromium per test module (Playwright gives it a fresh, temporary profile).

    Not per session: while Playwright's sync API is open it holds an event loop on the main
    thread, and no async test could run until it closes. So a module of browser tests holds
    sync tests only, and the async tests of the next module run after the browser is gone.
    """
    executable = chromium_path()
    if executable is None:
        pytest.skip("no chromium binary (apt-get install chromium, or set MCP_GUARD_CHROMIUM)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True, args=LAUNCH_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def browser_page(chromium: Browser) -> Iterator[Page]:
    """A page in a fresh browser context: no cookie of another test."""
    context = chromium.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


@contextmanager
def console_portal(config: Path) -> Iterator[tuple[Portal, str]]:
    """The portal of the guard.toml at ``config`` served on a free loopback port: ``(portal, base URL)``."""
    portal = Portal.from_guard_config(load_config(config))
    portal.guard.approvals.poll = 0.05  # a waiting caller notices a decision at once
    port = free_port()
    try:
        with serve(portal.streamable_http_app(port=port), port) as url:
            yield portal, url
    finally:
        run_async(portal.guard.aclose)


def sign_in(page: Page, url: str, key: str) -> int:
    """Sign in on the console's form with ``key`` as a person would; the answer's HTTP status.

    A successful sign-in redirects, so the status is that of the page it lands on (200).
    """
    page.goto(url + "/admin/login")
    page.fill("input[name=key]", key)
    with page.expect_navigation() as navigation:
        page.click("form:has(input[name=key]) button[type=submit]")
    response = navigation.value
    assert response is not None
    return int(response.status)


def submit(page: Page, button: str) -> int:
    """Click ``button`` (a selector) of a form and return the status of the page the form leads to."""
    with page.expect_navigation() as navigation:
        page.click(button)
    response = navigation.value
    assert response is not None
    return int(response.status)


def run_async(work: Callable[[], Awaitable[Any]], timeout: float = 30) -> Any:
    """``work()`` run to completion on an event loop of its own thread: the test's thread has
    Playwright's loop, on which no other may run."""
    with in_thread(work) as background:
        return background.wait(timeout)


class Background:
    """An async function run to completion in a thread with its own event loop (an MCP client, say)."""

    def __init__(self, work: Callable[[], Awaitable[Any]]) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = threading.Event()

        def run() -> None:
            try:
                self.result = anyio.run(work)
            except BaseException as exc:  # reported to the test by wait()
                self.error = exc
            finally:
                self.done.set()

        self.thread = threading.Thread(target=run, daemon=True)

    def wait(self, timeout: float) -> Any:
        """The work's result; fails the test when it raised or did not finish in ``timeout`` seconds."""
        assert self.done.wait(timeout), "the background work did not finish"
        if self.error is not None:
            raise self.error
        return self.result


@contextmanager
def in_thread(work: Callable[[], Awaitable[Any]]) -> Iterator[Background]:
    """Start ``work`` in a thread for the block; the block waits for it with ``.wait(timeout)``."""
    background = Background(work)
    background.thread.start()
    try:
        yield background
    finally:
        background.thread.join(timeout=30)
