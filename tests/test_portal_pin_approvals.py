"""A pin approved anywhere (the CLI on another host, the console) is served by running portals at once."""

from __future__ import annotations

from pathlib import Path

import anyio

from mcp_guard.cli.main import main
from mcp_guard.config import load_config
from mcp_guard.portal import Portal

from .test_console import USER_KEY, write_config
from .test_pipeline_outcomes import Probe
from .test_portal_outcomes import probe_upstream
from .test_portal_support import client, portal_http


async def _tools(url: str) -> dict[str, str | None]:
    async with client(url, USER_KEY) as c:
        listed = await c.list_tools()
    return {t.name: t.description for t in listed.tools}


async def test_a_pin_approved_with_the_cli_reaches_the_running_portal(tmp_path: Path) -> None:
    with probe_upstream(Probe()) as up:
        config = write_config(tmp_path, upstream=up)
        portal = Portal.from_guard_config(load_config(config))
        assert portal.guard.pins is not None
        await portal.guard.pins.pin("probe", "tool", [{"name": "ok", "description": "what was approved"}])
        try:
            with portal_http(portal) as url:
                assert "probe__ok" not in await _tools(url)
                cli = ["pins", "approve", "probe", "ok", "--kind", "tool", "--config", str(config)]
                assert await anyio.to_thread.run_sync(main, cli) == 0
                with anyio.fail_after(10):
                    while "probe__ok" not in await _tools(url):
                        await anyio.sleep(0.05)
        finally:
            await portal.guard.aclose()
