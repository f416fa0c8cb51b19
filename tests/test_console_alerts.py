"""The Overview lists the anomaly alerts of the last 24 hours (``[anomalies]``), escaped, newest first."""

from __future__ import annotations

import time
from pathlib import Path

from mcp_guard.model import AuditEvent

from .test_console import XSS, console_client, sign_in


def _alert(kind: str, at: float, subject: str, action: str = "none", by: str | None = None) -> AuditEvent:
    return AuditEvent(
        f"anomaly/{kind}",
        "deny" if action == "lock" else "allow",
        event="anomaly",
        time=at,
        principal={"subject": subject} | ({"vouched_by": by} if by else {}),
        source_ip="203.0.113.7",
        reasons=(f"{kind} by {subject}", "score 3.00", f"action {action}", "events e1 e2"),
    )


async def test_the_overview_lists_the_days_alerts_newest_first_and_escaped(tmp_path: Path) -> None:
    async with console_client(tmp_path) as (portal, http):
        now = time.time()
        for event in (
            _alert("denial-burst", now - 60, "bob"),
            _alert("denial-burst", now - 50, "ada", action="lock", by="api-keys/acme"),
            _alert("auth-failures", now - 30, XSS, action="lock"),
            _alert("new-target", now - 30 * 3600, "too-old"),  # outside the day
            AuditEvent("tools/call", "deny", time=now - 10),  # not an alert
        ):
            await portal.guard.record(event)
        portal.guard.auditor.flush()  # type: ignore[union-attr]
        await sign_in(http)
        page = (await http.get("/admin/overview")).text
        section = page.split("<h2>Anomaly alerts</h2>", 1)[1].split("<h2>", 1)[0]
        assert section.index("auth-failures") < section.index("denial-burst")  # newest first
        assert "too-old" not in section and "tools/call" not in section
        assert XSS not in page  # attacker-chosen subject rendered as text
        assert "lock" in section and "203.0.113.7" in section
        assert "ada (api-keys/acme)" in section  # the person held, not everyone named ada
        assert 'href="/admin/audit/events/' in section


async def test_the_overview_says_when_there_was_no_alert(tmp_path: Path) -> None:
    async with console_client(tmp_path) as (_, http):
        await sign_in(http)
        page = (await http.get("/admin/overview")).text
        assert "No anomaly alerts in the last 24 hours" in page
