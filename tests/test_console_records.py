"""What the console puts on record beyond its pages' actions: sessions ended by the per-admin cap,
and how an audit export ended (complete with its count, or cut short by the store)."""

from __future__ import annotations

import json
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from mcp_guard.audit.query import Filters
from mcp_guard.audit.verify import StoreError
from mcp_guard.console import audit as console_audit
from mcp_guard.model import AuditEvent

from .test_console import ADMIN_KEY, console_client, events, sign_in
from .test_console_hardening import _asgi_get


async def test_a_session_ended_by_the_per_admin_cap_is_on_record(tmp_path: Path) -> None:
    console = "[console]\nmax_sessions_per_admin = 2\n"
    async with console_client(tmp_path, console=console) as (portal, http):
        for _ in range(2):
            http.cookies.clear()
            assert (await sign_in(http, ADMIN_KEY)).status_code == 303
        assert events(portal, "console/sessions.end") == []  # two sessions so far: none dropped
        for _ in range(2):
            http.cookies.clear()
            assert (await sign_in(http, ADMIN_KEY)).status_code == 303
        ended = events(portal, "console/sessions.end")
        assert len(ended) == 2  # the third and the fourth sign-in each ended the oldest
        assert {e["principal"]["subject"] for e in ended} == {"carol"}
        assert all(e["decision"] == "allow" and e["event"] == "console" for e in ended)
        assert all("at most 2 sessions" in e["reasons"][0] for e in ended)
        assert all("signed in at" in e["reasons"][0] for e in ended)


async def _five_events(portal: Any) -> None:
    for n in range(5):
        await portal.guard.record(
            AuditEvent(method="tools/call", decision="allow", server="probe", target=f"t{n}")
        )
    portal.guard.auditor.flush()


async def test_a_complete_export_is_closed_on_record_with_its_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(console_audit, "EXPORT_PAGE", 2)
    async with console_client(tmp_path) as (portal, _):
        await _five_events(portal)
        status, _, chunks = await _asgi_get(
            portal.streamable_http_app(), "/admin/audit/export?server=probe", ADMIN_KEY
        )
        assert status == 200
        lines = [json.loads(line) for line in b"".join(chunks).decode().splitlines()]
        assert [r["target"] for r in lines] == [f"t{n}" for n in range(5)]  # no trailer on success
        (started,) = events(portal, "console/audit.export")
        (closed,) = events(portal, "console/audit.exported")
        assert closed["decision"] == "allow" and closed["principal"]["subject"] == "carol"
        assert closed["reasons"][0] == f"5 events sent (export of event {started['id']})"


async def test_a_store_failing_mid_export_ends_with_an_error_line_and_an_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = console_audit.pages

    def failing(path: Path, filters: Filters, size: int) -> Generator[list[dict[str, Any]], None, None]:
        batches = real(path, filters, size)
        yield next(batches)
        raise StoreError("database disk image is malformed")

    monkeypatch.setattr(console_audit, "EXPORT_PAGE", 2)
    monkeypatch.setattr(console_audit, "pages", failing)
    async with console_client(tmp_path) as (portal, _):
        await _five_events(portal)
        status, _, chunks = await _asgi_get(
            portal.streamable_http_app(), "/admin/audit/export?server=probe", ADMIN_KEY
        )
        assert status == 200  # the headers went with the first page
        lines = [json.loads(line) for line in b"".join(chunks).decode().splitlines()]
        assert [r.get("target") for r in lines[:2]] == ["t0", "t1"]
        assert lines[2] == {
            "error": "the export ended early: database disk image is malformed",
            "events": 2,
        }
        assert len(lines) == 3
        (failed,) = [e for e in events(portal, "console/error") if e["principal"]]
        assert failed["decision"] == "error" and failed["principal"]["subject"] == "carol"
        assert failed["reasons"][0] == "audit export ended after 2 events: database disk image is malformed"
        assert events(portal, "console/audit.exported") == []
