"""A tenant's administrator sees only that tenant's audit trail, and only buttons they may use."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcp_guard.audit.query import Filters, query
from mcp_guard.authn.api_keys import create_api_key
from mcp_guard.console.overview import count, read_day
from mcp_guard.model import AuditEvent
from mcp_guard.portal import Registry
from mcp_guard.portal.registry import Entry

from .test_console import console_client, csrf, sign_in


async def _trail(portal: object) -> None:
    """Calls of tenants acme and globex and of no tenant, one denied by a rule named after each."""
    guard = portal.guard  # type: ignore[attr-defined]
    now = time.time()
    for tenant, subject in (("acme", "alice"), ("globex", "gary"), (None, "nora")):
        principal = {"subject": subject, "tenant": tenant}
        await guard.record(AuditEvent("tools/call", "allow", principal=principal, time=now - 5, target="t"))
        rule = f"deny-{tenant or 'none'}"
        await guard.record(AuditEvent("tools/call", "deny", principal=principal, time=now - 4, rule=rule))
    guard.auditor.flush()


def _ids(portal: object, subject: str) -> list[str]:
    portal.guard.auditor.flush()  # type: ignore[attr-defined]
    path = portal.console.state.console.audit.path  # type: ignore[attr-defined]
    return [str(r["id"]) for r in query(path, Filters(subject=subject))]


async def test_an_admin_of_a_tenant_reads_only_that_tenants_audit_events(tmp_path: Path) -> None:
    async with console_client(tmp_path) as (portal, http):
        assert portal.guard.store is not None
        await _trail(portal)
        key, _ = await create_api_key(portal.guard.store, "tina", roles=["admin"], tenant="acme")
        await sign_in(http, key)
        listed = await http.get("/admin/audit")
        assert listed.status_code == 200
        assert "alice" in listed.text and "tina" in listed.text  # their tenant's calls and admins
        assert "gary" not in listed.text and "nora" not in listed.text
        (gary_call, _) = _ids(portal, "gary")
        (alice_call, _) = _ids(portal, "alice")
        other = await http.get(f"/admin/audit/events/{gary_call}")
        unknown = await http.get("/admin/audit/events/no-such-event")
        assert (other.status_code, unknown.status_code) == (404, 404)
        assert "gary" not in other.text
        assert (await http.get(f"/admin/audit/events/{alice_call}")).status_code == 200
        exported = await http.get("/admin/audit/export")
        subjects = {json.loads(line)["principal"]["subject"] for line in exported.text.splitlines()}
        assert subjects <= {"alice", "tina"} and "alice" in subjects
        searched = await http.get("/admin/audit", params={"subject": "gary"})
        assert "No event matches." in searched.text
        overview = await http.get("/admin/overview")
        assert "2 call(s), 1 denial(s)" in overview.text
        assert "deny-acme" in overview.text
        assert "deny-globex" not in overview.text and "deny-none" not in overview.text
        path = tmp_path / "audit.db"
        summed = read_day(path, time.time(), "acme")  # summed by SQLite
        decoded = count(query(path, Filters(tenant="acme")), time.time())  # record by record
        assert (summed.calls, summed.denials, summed.rules) == (decoded.calls, decoded.denials, decoded.rules)
        assert sum(summed.calls) == 2


async def test_an_admin_of_no_tenant_reads_every_tenants_events(tmp_path: Path) -> None:
    async with console_client(tmp_path) as (portal, http):
        await _trail(portal)
        await sign_in(http)
        listed = await http.get("/admin/audit")
        assert all(s in listed.text for s in ("alice", "gary", "nora"))
        (gary_call, _) = _ids(portal, "gary")
        assert (await http.get(f"/admin/audit/events/{gary_call}")).status_code == 200
        overview = await http.get("/admin/overview")
        assert "6 call(s), 3 denial(s)" in overview.text


async def test_an_admin_of_a_tenant_reads_that_tenants_trail_from_a_json_lines_store(tmp_path: Path) -> None:
    from .test_console import write_config

    path = write_config(tmp_path)
    path.write_text(path.read_text().replace("sqlite:///audit.db", "jsonl:///audit.jsonl"))
    async with console_client(tmp_path) as (portal, http):
        assert portal.guard.store is not None
        await _trail(portal)
        key, _ = await create_api_key(portal.guard.store, "tina", roles=["admin"], tenant="acme")
        await sign_in(http, key)
        listed = await http.get("/admin/audit")
        assert "alice" in listed.text and "gary" not in listed.text
        assert "2 call(s), 1 denial(s)" in (await http.get("/admin/overview")).text


async def test_a_server_whose_name_has_a_slash_can_be_approved(tmp_path: Path) -> None:
    async with console_client(tmp_path) as (portal, http):
        assert portal.guard.store is not None
        registry = Registry(portal.guard.store)
        # Today's names cannot hold a slash, but an entry in a shared store may (written by hand or
        # by another version): the page must still be able to approve or revoke it.
        await registry._put(Entry("team/tickets", "pending", {"command": "python"}))
        await sign_in(http)
        shown = await http.get("/admin/servers")
        assert 'action="/admin/servers/team%2Ftickets"' in shown.text
        found = re.search(r'name="version" value="([0-9a-f]{64})"', shown.text)
        assert found is not None
        form = {"action": "approve", "csrf": csrf(shown.text), "version": found.group(1)}
        done = await http.post("/admin/servers/team%2Ftickets", data=form)
        assert done.status_code == 303, done.text
        assert (await registry.get("team/tickets")).status == "approved"  # type: ignore[union-attr]
        revoke = {"action": "revoke", "csrf": form["csrf"]}
        revoked = await http.post("/admin/servers/team%2Ftickets", data=revoke)
        assert revoked.status_code == 303
        assert (await registry.get("team/tickets")).status == "revoked"  # type: ignore[union-attr]


async def test_an_admin_of_a_tenant_sees_no_server_or_pin_buttons(tmp_path: Path) -> None:
    async with console_client(tmp_path) as (portal, http):
        assert portal.guard.store is not None and portal.guard.pins is not None
        await Registry(portal.guard.store).add({"name": "tickets", "command": "python"})
        await portal.guard.pins.pin("probe", "tool", [{"name": "ok", "description": "old"}])
        await portal.guard.pins.check("probe", "tool", [{"name": "ok", "description": "new"}])
        key, _ = await create_api_key(portal.guard.store, "tina", roles=["admin"], tenant="acme")
        await sign_in(http, key)
        servers = await http.get("/admin/servers")
        pins = await http.get("/admin/pins")
        assert "tickets" in servers.text and "new" in pins.text
        for shown in (servers.text, pins.text):
            assert 'value="approve"' not in shown and 'value="revoke"' not in shown
            assert "only an administrator of no tenant" in shown
        http.cookies.clear()
        await sign_in(http)
        assert 'value="approve"' in (await http.get("/admin/servers")).text
        assert 'value="approve"' in (await http.get("/admin/pins")).text


def test_the_health_column_counts_items_in_words() -> None:
    from types import SimpleNamespace

    from mcp_guard.console.servers import _health

    items = {"tool": 2, "prompt": 1, "resource": 0, "resource_template": 3}
    upstream = SimpleNamespace(
        describe=lambda: {"state": "up", "restarts": 1, "last_error": None, "items": items}
    )
    console = SimpleNamespace(portal=SimpleNamespace(upstreams={"notes": upstream}))
    assert _health(console, "notes") == "up (1 prompt, 3 resource templates, 2 tools); 1 restart(s)"  # type: ignore[arg-type]


_TENANTS = st.sampled_from([None, "acme", "globex", "acme/x", ""])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    principals=st.lists(
        st.one_of(st.none(), st.fixed_dictionaries({"subject": st.just("s"), "tenant": _TENANTS})),
        max_size=12,
    ),
    wanted=_TENANTS,
    size=st.integers(min_value=1, max_value=5),
)
def test_the_tenant_filter_reads_the_same_events_from_either_store(
    tmp_path: Path, principals: list[dict[str, Any] | None], wanted: str | None, size: int
) -> None:
    from mcp_guard.audit.query import pages
    from mcp_guard.audit.sinks.sqlite import _INSERT, SCHEMA, column_values

    records = [
        {"seq": i + 1, "id": f"e{i}", "time": 1.0 + i, "method": "tools/call", "decision": "allow"}
        | ({} if p is None else {"principal": p})
        for i, p in enumerate(principals)
    ]
    db, lines = tmp_path / f"t{len(records)}-{size}.db", tmp_path / f"t{len(records)}-{size}.jsonl"
    db.unlink(missing_ok=True)
    with sqlite3.connect(db) as conn:
        conn.executescript(SCHEMA)
        for r in records:
            row = (r["seq"], *column_values(r), "p", "k", "m", json.dumps(r))
            conn.execute(_INSERT, row)
    conn.close()
    lines.write_text("".join(json.dumps(r) + "\n" for r in records))
    expected = [r for r in records if wanted is None or (r.get("principal") or {}).get("tenant") == wanted]
    for path in (db, lines):
        assert query(path, Filters(tenant=wanted)) == expected
        assert [r for batch in pages(path, Filters(tenant=wanted), size) for r in batch] == expected
