"""Screenshots of the admin console for docs/console.md: ``docs/images/console-*.png``.

Starts a demo portal on a free loopback port (a throw-away directory, an admin
key, a few approval requests and audit events), signs in with headless Chromium
through Playwright as a person would, and saves one PNG per page. Run it again
after changing a page or the stylesheet::

    python docs/console/screenshots.py            # writes docs/images/console-*.png
    python docs/console/screenshots.py --out DIR  # somewhere else

It needs Playwright (in the ``dev`` extra) and a Chromium binary (Debian:
``apt-get install chromium``; or set ``MCP_GUARD_CHROMIUM``). Nothing is
downloaded and nothing outside loopback is contacted.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import uvicorn

from mcp_guard.config import load_config
from mcp_guard.model import AuditEvent
from mcp_guard.portal import Portal

ROOT = Path(__file__).resolve().parents[2]
ADMIN_KEY = "demo-admin-key-for-screenshots"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
POLICY = """
version = 1
default = "deny"

[[rules]]
id = "payments-refund-needs-approval"
effect = "allow"
roles = ["support"]
servers = ["payments"]
tools = ["refund"]
approval = { approvers = ["admin"], timeout = "1h" }
"""


def _config(base: Path) -> Path:
    (base / "policy.toml").write_text(POLICY)
    digest = hashlib.sha256(ADMIN_KEY.encode()).hexdigest()
    path = base / "guard.toml"
    path.write_text(
        f"""
[guard]
server = "portal"
policy = "policy.toml"
state = "sqlite:///state.db"
audit = ["sqlite:///audit.db"]

[[authn.api_keys]]
subject = "carol"
key_sha256 = "{digest}"
roles = ["admin"]
"""
    )
    return path


async def _demo_data(portal: Portal) -> str:
    """A few approval requests (one decided) and audit events; the id of one event."""
    approvals = portal.guard.approvals
    requests = [
        ("alice", "refund", {"order": "A-1042", "amount_eur": 120}),
        ("bob", "refund", {"order": "B-2210", "amount_eur": 35.5, "reason": "damaged in transit"}),
        ("alice", "refund", {"order": "A-0999", "amount_eur": 2400}),
    ]
    opened = []
    for subject, tool, arguments in requests:
        opened.append(
            await approvals.open_for(
                subject=subject,
                tenant=None,
                server="payments",
                kind="tool",
                target=tool,
                arguments=arguments,
                shown_arguments=arguments,
                rule="payments-refund-needs-approval",
                approvers=["admin"],
                timeout=3600,
            )
        )
    await approvals.decide(
        opened[2].id, False, by="carol", roles=frozenset({"admin"}), note="over the refund limit"
    )
    calls = [
        ("alice", "orders", "lookup", "allow", None),
        ("bob", "orders", "lookup", "allow", None),
        ("bob", "payments", "refund", "deny", "payments-refund-needs-approval"),
        ("mallory", "admin", "drop_table", "deny", None),
        ("alice", "docs", "search", "allow", None),
    ]
    last = ""
    for subject, server, tool, decision, rule in calls:
        event = AuditEvent(
            method="tools/call",
            decision=decision,  # type: ignore[arg-type]
            server=server,
            target=tool,
            rule=rule,
            principal={"subject": subject, "roles": ["support"]},
            source_ip="192.0.2.10",
            transport="http",
            reasons=() if decision == "allow" else ("no rule allows it",),
        )
        await portal.guard.record(event)
        last = event.id
    portal.guard.auditor.flush()  # type: ignore[union-attr]
    return last


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(app: Any, port: int) -> tuple[uvicorn.Server, threading.Thread, str]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the demo portal did not start")
        time.sleep(0.02)
    return server, thread, f"http://127.0.0.1:{port}"


def _chromium() -> str:
    found = os.environ.get("MCP_GUARD_CHROMIUM") or shutil.which("chromium")
    if not found:
        sys.exit("no chromium binary: apt-get install chromium, or set MCP_GUARD_CHROMIUM")
    return found


def _shoot(url: str, event_id: str, out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    saved: list[Path] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=_chromium(), headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 420})

        def save(name: str) -> None:
            path = out / f"console-{name}.png"
            page.screenshot(path=str(path), full_page=True)
            saved.append(path)

        page.goto(url + "/admin/login")
        save("login")
        page.fill("input[name=key]", ADMIN_KEY)
        with page.expect_navigation():
            page.click("form:has(input[name=key]) button[type=submit]")
        save("approvals")
        page.goto(url + "/admin/audit/verify")
        page.goto(url + "/admin/audit")
        save("audit")
        page.goto(url + "/admin/audit/events/" + event_id)
        save("audit-event")
        browser.close()
    return saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images", help="where the PNGs go")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        portal = Portal.from_guard_config(load_config(_config(Path(tmp))))
        event_id = anyio.run(_demo_data, portal)
        port = _free_port()
        server, thread, url = _serve(portal.streamable_http_app(port=port), port)
        try:
            saved = _shoot(url, event_id, args.out)
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            anyio.run(portal.guard.aclose)
    for path in saved:
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
