"""The console's answers to attacks on its sessions and routing: stale sessions, unbounded exports, paths and
redirects that slip past /admin, too many sessions, and refusal floods in the audit trail."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcp_guard.audit.query import Filters, pages, query
from mcp_guard.authn import totp
from mcp_guard.authn.passwords import hash_password
from mcp_guard.authn.users import User, UsersFile
from mcp_guard.config import load_config
from mcp_guard.console import audit as console_audit
from mcp_guard.console.refusals import RefusalGate
from mcp_guard.errors import ConfigError
from mcp_guard.model import AuditEvent
from mcp_guard.portal import Portal

from .test_console import (
    ADMIN_KEY,
    MEMBER_KEY,
    PASSWORD,
    SECRET,
    _sha,
    console_client,
    csrf,
    events,
    sign_in,
    write_config,
)


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


async def test_the_export_streams_the_trail_in_pages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(console_audit, "EXPORT_PAGE", 2)
    async with console_client(tmp_path) as (portal, _):
        for n in range(5):
            await portal.guard.record(
                AuditEvent(method="tools/call", decision="allow", server="probe", target=f"t{n}")
            )
        portal.guard.auditor.flush()  # type: ignore[union-attr]
        status, headers, chunks = await _asgi_get(
            portal.streamable_http_app(), "/admin/audit/export?server=probe", ADMIN_KEY
        )
        assert status == 200 and headers["content-type"].startswith("application/x-ndjson")
        assert len([c for c in chunks if c]) == 3  # 2 + 2 + 1 events: sent as they are read
        targets = [json.loads(line)["target"] for line in b"".join(chunks).decode().splitlines()]
        assert targets == [f"t{n}" for n in range(5)]
        (event,) = events(portal, "console/audit.export")
        assert event["principal"]["subject"] == "carol" and '"server": "probe"' in event["reasons"][0]


async def _asgi_get(app: Any, target: str, key: str) -> tuple[int, dict[str, str], list[bytes]]:
    """One GET through ``app`` as a server would run it: the status, headers and every body chunk."""
    path, _, query = target.partition("?")
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
        "query_string": query.encode(), "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 80),
        "headers": [(b"host", b"127.0.0.1"), (b"authorization", f"Bearer {key}".encode())],
    }  # fmt: skip
    sent: list[dict[str, Any]] = []
    asked: list[bool] = []

    async def receive() -> dict[str, Any]:
        if asked:  # the client stays connected until the answer is complete
            await anyio.sleep_forever()
        asked.append(True)
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    chunks = [m.get("body", b"") for m in sent if m["type"] == "http.response.body"]
    return int(start["status"]), headers, chunks


_STORES: dict[str, Path] = {}


def _stores(factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A SQLite and a JSONL store holding the same 12 events (servers a/b, decisions allow/deny)."""
    if not _STORES:
        from mcp_guard.audit.sinks.jsonl import JsonlSink
        from mcp_guard.audit.sinks.sqlite import SQLiteSink

        base = factory.mktemp("pages")
        records = [
            {
                "seq": n, "id": f"e{n}", "time": 1000.0 + n, "server": "ab"[n % 2], "target": f"t{n}",
                "method": "tools/call", "decision": ("allow", "deny")[n % 3 == 0],
                "principal": {"subject": "s"}, "prev": "", "key_id": "k", "mac": "m",
            }
            for n in range(1, 13)
        ]  # fmt: skip
        for name, sink in (("sqlite", SQLiteSink(base / "a.db")), ("jsonl", JsonlSink(base / "a.jsonl"))):
            sink.write(records)
            sink.close()
            _STORES[name] = base / ("a.db" if name == "sqlite" else "a.jsonl")
    return _STORES


@given(
    st.sampled_from(["sqlite", "jsonl"]),
    st.integers(1, 14),
    st.sampled_from([None, "a", "b"]),
    st.sampled_from([None, "allow", "deny"]),
)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_reading_in_pages_yields_what_one_query_does(
    tmp_path_factory: pytest.TempPathFactory, kind: str, size: int, server: str | None, decision: str | None
) -> None:
    path = _stores(tmp_path_factory)[kind]
    filters = Filters(server=server, decision=decision)
    batches = list(pages(path, filters, size))
    assert all(0 < len(b) <= size for b in batches)
    assert [r for b in batches for r in b] == query(path, filters)


async def test_a_key_removed_from_the_config_ends_its_open_sessions(tmp_path: Path) -> None:
    async with console_client(tmp_path) as (_, http):
        assert (await sign_in(http)).status_code == 303
        cookie = http.cookies["mcp_guard_console"]
    # The portal restarts (or another replica runs) with carol's key gone from guard.toml; the
    # sessions live on in the shared state store.
    config = write_config(tmp_path)
    config.write_text(
        config.read_text().replace(f'key_sha256 = "{_sha(ADMIN_KEY)}"', 'key_sha256 = "' + "0" * 64 + '"')
    )
    portal = Portal.from_guard_config(load_config(config))
    try:
        transport = httpx.ASGITransport(app=portal.streamable_http_app())
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            http.cookies.set("mcp_guard_console", cookie, domain="127.0.0.1", path="/admin")
            gone = await http.get("/admin/approvals")
            assert gone.status_code == 303 and gone.headers["location"] == "/admin/login"
            (event,) = events(portal, "console/access")
            assert event["principal"]["subject"] == "carol" and "no longer" in event["reasons"][0]
    finally:
        await portal.guard.aclose()


async def test_a_user_removed_or_demoted_in_the_users_file_is_signed_out(tmp_path: Path) -> None:
    users = UsersFile(tmp_path / "users.json")
    for name in ("olga", "oscar"):
        users.put(User(name, hash_password(PASSWORD, "scrypt"), SECRET, roles=("admin",)))
    passwords = '[authn.passwords]\nusers_file = "users.json"\nhash = "scrypt"\n'
    step = totp.current_step()
    cookies: dict[str, str] = {}
    async with console_client(tmp_path, authn=passwords) as (portal, http):
        for name in ("olga", "oscar"):
            http.cookies.clear()
            page = await http.get("/admin/login")
            code = totp.code_at(SECRET, step)
            fields = {"username": name, "password": PASSWORD, "code": code, "csrf": csrf(page.text)}
            assert (await http.post("/admin/login", data=fields)).status_code == 303, name
            cookies[name] = http.cookies["mcp_guard_console"]
            step += 1
        http.cookies.clear()
        await sign_in(http)  # carol, by key: untouched by the users file
        cookies["carol"] = http.cookies["mcp_guard_console"]
        assert portal.console is not None
        portal.console.state.console.standing.every = 0  # check on every request
        users.remove("olga")
        users.update("oscar", roles=("analyst",))
        for name, status in (("olga", 303), ("oscar", 303), ("carol", 200), ("olga", 303)):
            http.cookies.set("mcp_guard_console", cookies[name], domain="127.0.0.1", path="/admin")
            assert (await http.get("/admin/approvals")).status_code == status, name
        ended = {e["principal"]["subject"] for e in events(portal, "console/access")}
        assert ended == {"olga", "oscar"} and len(events(portal, "console/access")) == 2


async def test_each_admin_has_at_most_max_sessions_the_oldest_dropped(tmp_path: Path) -> None:
    console = "[console]\nmax_sessions_per_admin = 2\n"
    async with console_client(tmp_path, console=console) as (portal, http):
        cookies: list[str] = []
        for key in (ADMIN_KEY, MEMBER_KEY, ADMIN_KEY, ADMIN_KEY):
            http.cookies.clear()
            assert (await sign_in(http, key)).status_code == 303
            cookies.append(http.cookies["mcp_guard_console"])
        for n, status in enumerate((303, 200, 200, 200)):  # carol's first went when her third came
            http.cookies.set("mcp_guard_console", cookies[n], domain="127.0.0.1", path="/admin")
            assert (await http.get("/admin/approvals")).status_code == status, n
        assert portal.console is not None
        assert portal.console.state.console.sessions.max_sessions == 2
    with pytest.raises(ConfigError) as zero:
        load_config(write_config(tmp_path, console="[console]\nmax_sessions_per_admin = 0\n"))
    assert zero.value.field == "console.max_sessions_per_admin"


async def test_a_flood_of_refusals_is_counted_not_recorded_one_by_one(tmp_path: Path) -> None:
    async with console_client(tmp_path) as (portal, http):
        for _ in range(25):
            await http.get("/admin/audit", headers={"Authorization": "Bearer nope"})
        elsewhere = httpx.ASGITransport(app=portal.streamable_http_app(), client=("10.9.8.7", 4321))
        async with httpx.AsyncClient(transport=elsewhere, base_url="http://127.0.0.1") as other:
            for _ in range(3):
                assert (await other.get("/admin/no-such-page")).status_code == 404
        await anyio.sleep(0.1)  # the guard's background jobs get going, as in a running server
        await portal.guard.aclose()  # what is still counted is written as the guard closes
        assert portal.console is not None
        path = portal.console.state.console.audit.path
        refused = query(path, Filters(method="console/access"))
        assert len(refused) == 10 and {e["source_ip"] for e in refused} == {"127.0.0.1"}
        assert len(query(path, Filters(method="console/reject"))) == 3  # another address: its own burst
        (summary,) = query(path, Filters(method="console/refusals"))
        assert summary["source_ip"] == "127.0.0.1" and summary["reasons"][0].startswith("15 more refusals")


@given(
    st.lists(st.tuples(st.sampled_from(["a", "b", "c", None]), st.floats(0, 25)), max_size=60),
)
@settings(max_examples=200, deadline=None)
def test_every_refusal_is_recorded_or_counted_exactly_once(steps: list[tuple[str | None, float]]) -> None:
    now = [0.0]
    gate = RefusalGate(window=10, burst=3, overall=5, max_sources=2, clock=lambda: now[0])
    full: list[tuple[str | None, float]] = []
    summaries = []
    for source, wait in steps:
        now[0] += wait
        admitted, over = gate.admit(source)
        summaries += over
        if admitted:
            full.append((source, now[0]))
        summaries += gate.expired()
    summaries += gate.drain()
    assert len(full) + sum(s.count for s in summaries) == len(steps)
    assert all(s.count > 0 and s.start <= s.end for s in summaries)
    # Windows are fixed per address (they start at its first refusal), so any span of one window's
    # length holds at most the end of one window and the start of the next: two bursts.
    for source, at in full:
        assert sum(1 for s, t in full if s == source and at - 10 < t <= at) <= 2 * 3


async def test_an_api_key_authenticator_names_the_holder_of_a_live_key_only() -> None:
    from mcp_guard.authn.api_keys import ApiKeyAuthenticator, ConfiguredKey, create_api_key, revoke_api_key
    from mcp_guard.store import MemoryStore

    now = [1000.0]
    store = MemoryStore()
    live, _ = await create_api_key(store, "erin", roles=["admin"])
    _, revoked = await create_api_key(store, "finn", roles=["admin"])
    await revoke_api_key(store, revoked.id)
    _, short = await create_api_key(store, "gus", expires_in=10, clock=lambda: now[0])
    configured = [
        ConfiguredKey(sha256=_sha(ADMIN_KEY), subject="carol", roles=("admin",)),
        ConfiguredKey(sha256=_sha("old"), subject="hal", expires_at=999.0),
    ]
    keys = ApiKeyAuthenticator(configured, store, clock=lambda: now[0])
    live_id = live.split("_")[1]
    carol = await keys.holder(f"cfg-{_sha(ADMIN_KEY)[:12]}")
    assert carol is not None and carol.subject == "carol" and carol.roles == {"admin"}
    erin = await keys.holder(live_id)
    assert erin is not None and erin.subject == "erin"
    assert await keys.holder(short.id) is not None
    now[0] += 11
    for gone in (revoked.id, short.id, f"cfg-{_sha('old')[:12]}", "0123456789ab", "not-an-id"):
        assert await keys.holder(gone) is None, gone
    assert await ApiKeyAuthenticator(configured).holder(live_id) is None  # stored keys turned off
