"""The admin console at /admin of the portal: sign-in, approvals, audit, and its security properties."""

from __future__ import annotations

import hashlib
import html
import json
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.testclient import TestClient

from mcp_guard.authn import totp
from mcp_guard.authn.api_keys import create_api_key, revoke_api_key
from mcp_guard.authn.passwords import hash_password
from mcp_guard.authn.users import User, UsersFile
from mcp_guard.config import load_config
from mcp_guard.console import console_routes
from mcp_guard.console.html import esc
from mcp_guard.console.sessions import ConsoleSessions
from mcp_guard.errors import ConfigError
from mcp_guard.model import AuditEvent
from mcp_guard.portal import Portal
from mcp_guard.store import MemoryStore

from .test_pipeline_outcomes import Probe
from .test_portal_outcomes import probe_upstream
from .test_portal_support import client, portal_http

ADMIN_KEY = "carol-admin-key"
USER_KEY = "alice-user-key"
MEMBER_KEY = "dave-key-admin-through-the-policy"
PASSWORD = "correct horse battery staple"
SECRET = totp.new_secret()
XSS = "<script>alert(1)</script>"

POLICY = """
version = 1
default = "deny"

[roles.admin]
subjects = ["dave"]

[[rules]]
id = "probe-ok-needs-approval"
effect = "allow"
roles = ["analyst"]
servers = ["probe"]
tools = ["ok"]
approval = { approvers = ["admin"], timeout = "10m", wait = "20s" }
"""


def _sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def write_config(tmp_path: Path, upstream: str | None = None, console: str = "", authn: str = "") -> Path:
    servers = f'[[servers]]\nname = "probe"\nurl = "{upstream}"\n' if upstream else ""
    (tmp_path / "policy.toml").write_text(POLICY)
    path = tmp_path / "guard.toml"
    path.write_text(
        f"""
[guard]
server = "portal"
policy = "policy.toml"
state = "sqlite:///state.db"
audit = ["sqlite:///audit.db"]

[[authn.api_keys]]
subject = "carol"
key_sha256 = "{_sha(ADMIN_KEY)}"
roles = ["admin"]

[[authn.api_keys]]
subject = "alice"
key_sha256 = "{_sha(USER_KEY)}"
roles = ["analyst"]

[[authn.api_keys]]
subject = "dave"
key_sha256 = "{_sha(MEMBER_KEY)}"

{authn}
{console}
{servers}
"""
    )
    return path


@asynccontextmanager
async def console_client(
    tmp_path: Path, base: str = "http://127.0.0.1", console: str = "", authn: str = ""
) -> AsyncIterator[tuple[Portal, httpx.AsyncClient]]:
    portal = Portal.from_guard_config(load_config(write_config(tmp_path, console=console, authn=authn)))
    transport = httpx.ASGITransport(app=portal.streamable_http_app())
    try:
        async with httpx.AsyncClient(transport=transport, base_url=base) as http:
            yield portal, http
    finally:
        await portal.guard.aclose()


def csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


async def sign_in(http: httpx.AsyncClient, key: str = ADMIN_KEY) -> httpx.Response:
    form = await http.get("/admin/login")
    return await http.post("/admin/login", data={"key": key, "csrf": csrf(form.text)})


def events(portal: Portal, method: str) -> list[dict[str, Any]]:
    from mcp_guard.audit.query import Filters, query

    portal.guard.auditor.flush()  # type: ignore[union-attr]
    assert portal.console is not None
    source = portal.console.state.console.audit
    return query(source.path, Filters(method=method))


async def test_sign_in_with_an_admin_key_sets_a_strict_session_cookie(tmp_path: Path) -> None:
    async with console_client(tmp_path) as (portal, http):
        form = await http.get("/admin/login")
        assert form.status_code == 200 and 'name="key"' in form.text
        assert "default-src 'self'" in form.headers["content-security-policy"]
        assert "script-src 'none'" in form.headers["content-security-policy"]
        assert form.headers["x-frame-options"] == "DENY"
        signed = await http.post("/admin/login", data={"key": ADMIN_KEY, "csrf": csrf(form.text)})
        assert signed.status_code == 303 and signed.headers["location"] == "/admin/approvals"
        for cookie in (c.lower() for c in signed.headers.get_list("set-cookie")):
            assert "httponly" in cookie and "samesite=strict" in cookie and "path=/admin" in cookie
            assert "secure" not in cookie  # plain HTTP: a Secure cookie would never come back
        page = await http.get("/admin/approvals")
        assert page.status_code == 200 and "carol" in page.text and "Sign out" in page.text
        bare = await http.get("/admin")
        assert bare.status_code == 303 and bare.headers["x-frame-options"] == "DENY"
        (event,) = events(portal, "console/login")
        assert event["decision"] == "allow" and event["principal"]["subject"] == "carol"


async def test_an_admin_by_policy_membership_signs_in_and_decides(tmp_path: Path) -> None:
    async with console_client(tmp_path) as (portal, http):
        assert (await sign_in(http, MEMBER_KEY)).status_code == 303
        request = await _pending(portal)
        page = await http.get("/admin/approvals")
        decided = await http.post(
            f"/admin/approvals/{request.id}", data={"decision": "approve", "csrf": csrf(page.text)}
        )
        assert decided.status_code == 303
        assert (await portal.guard.approvals.get(request.id)).decided_by == "dave"  # type: ignore[union-attr]


async def test_sign_in_with_password_and_one_time_code(tmp_path: Path) -> None:
    users = UsersFile(tmp_path / "users.json")
    users.put(User("olga", hash_password(PASSWORD, "scrypt"), SECRET, roles=("admin",)))
    users.put(User("paul", hash_password(PASSWORD, "scrypt"), SECRET, roles=("analyst",)))
    passwords = '[authn.passwords]\nusers_file = "users.json"\nhash = "scrypt"\n'
    async with console_client(tmp_path, authn=passwords) as (portal, http):
        form = await http.get("/admin/login")
        assert 'name="username"' in form.text and 'name="code"' in form.text and 'name="key"' in form.text

        async def attempt(user: str, password: str, step: int) -> httpx.Response:
            page = await http.get("/admin/login")
            code = totp.code_at(SECRET, step)
            fields = {"username": user, "password": password, "code": code, "csrf": csrf(page.text)}
            return await http.post("/admin/login", data=fields)

        step = totp.current_step()
        wrong = await attempt("olga", "not the password", step)
        assert wrong.status_code == 401 and "invalid username, password or one-time code" in wrong.text
        assert (await attempt("paul", PASSWORD, step)).status_code == 403
        signed = await attempt("olga", PASSWORD, step + 1)
        assert signed.status_code == 303
        assert "olga" in (await http.get("/admin/approvals")).text
        login_events = events(portal, "console/login") + events(portal, "login")
        assert ("allow", "olga") in {(e["decision"], e["principal"]["subject"]) for e in login_events}
        assert ("deny", "olga") in {(e["decision"], e["principal"]["subject"]) for e in login_events}


async def test_the_session_cookie_is_secure_over_tls(tmp_path: Path) -> None:
    async with console_client(tmp_path, base="https://127.0.0.1") as (_, http):
        signed = await sign_in(http)
        assert signed.status_code == 303 and "secure" in signed.headers["set-cookie"].lower()


async def test_a_wrong_key_is_refused_audited_and_locks_out(tmp_path: Path) -> None:
    async with console_client(tmp_path) as (portal, http):
        wrong = await sign_in(http, "not-a-key")
        assert wrong.status_code == 401 and "invalid key" in wrong.text
        assert "mcp_guard_console=" not in wrong.headers.get("set-cookie", "")
        for _ in range(4):
            await sign_in(http, "still-not-a-key")
        locked = await sign_in(http)  # even the right key, from a source that kept guessing
        assert locked.status_code == 429
        assert (await http.get("/admin/approvals")).status_code == 303
        refusals = [e for e in events(portal, "console/login") if e["decision"] == "deny"]
        assert len(refusals) == 6 and all(e["source_ip"] == "127.0.0.1" for e in refusals)
        # The console names its own refusals: none is mistaken for a transport's (an Origin 403).
        assert events(portal, "http/reject") == [] and events(portal, "http/authenticate") == []


async def test_a_non_admin_gets_403_everywhere(tmp_path: Path) -> None:
    async with console_client(tmp_path) as (portal, http):
        refused = await sign_in(http, USER_KEY)
        assert refused.status_code == 403
        assert "mcp_guard_console=" not in refused.headers.get("set-cookie", "")
        as_user = {"Authorization": f"Bearer {USER_KEY}"}
        for path in ("/admin/approvals", "/admin/audit", "/admin/audit/export", "/admin/audit/events/x"):
            assert (await http.get(path, headers=as_user)).status_code == 403, path
        posted = await http.post("/admin/approvals/apr-1", headers=as_user, data={"decision": "approve"})
        assert posted.status_code == 403
        (event,) = events(portal, "console/login")
        assert event["decision"] == "deny" and event["principal"]["subject"] == "alice"
        # An admin's key reads pages without a session, but cannot act with it.
        as_admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
        assert (await http.get("/admin/audit", headers=as_admin)).status_code == 200
        acted = await http.post("/admin/approvals/apr-1", headers=as_admin, data={"decision": "approve"})
        assert acted.status_code == 403
        signed_out = await http.post("/admin/approvals/apr-1", data={"decision": "approve"})
        assert signed_out.status_code == 403
        assert [e["reasons"] for e in events(portal, "console/access")][-1] == ["no console session"]
        assert events(portal, "http/reject") == []


async def test_posts_without_the_csrf_token_are_refused(tmp_path: Path) -> None:
    async with console_client(tmp_path) as (portal, http):
        no_form_token = await http.post("/admin/login", data={"key": ADMIN_KEY})
        assert no_form_token.status_code == 403
        login_page = await http.get("/admin/login")
        fields = {"key": ADMIN_KEY, "csrf": csrf(login_page.text)}
        cross_site = {"Origin": "http://evil.example"}
        assert (await http.post("/admin/login", data=fields, headers=cross_site)).status_code == 403
        assert (await http.get("/admin/approvals")).status_code == 303  # not signed in
        await sign_in(http)
        request = await _pending(portal)
        for data in ({"decision": "approve"}, {"decision": "approve", "csrf": "forged"}):
            refused = await http.post(f"/admin/approvals/{request.id}", data=data)
            assert refused.status_code == 403
        assert (await portal.guard.approvals.get(request.id)).status == "pending"  # type: ignore[union-attr]
        assert (await http.post("/admin/logout", data={})).status_code == 403
        assert (await http.get("/admin/approvals")).status_code == 200  # still signed in
        page = await http.get("/admin/approvals")
        foreign = {"Origin": "http://evil.example"}
        form = {"decision": "approve", "csrf": csrf(page.text)}
        cross = await http.post(f"/admin/approvals/{request.id}", data=form, headers=foreign)
        assert cross.status_code == 403  # the right token, sent from another site's page
        assert (await portal.guard.approvals.get(request.id)).status == "pending"  # type: ignore[union-attr]
        assert [e["decision"] for e in events(portal, "console/csrf")] == ["deny"] * 5


async def _pending(portal: Portal, target: str = "ok", arguments: dict[str, Any] | None = None) -> Any:
    return await portal.guard.approvals.open_for(
        subject="alice",
        tenant=None,
        server="probe",
        kind="tool",
        target=target,
        arguments=arguments or {"n": 1},
        shown_arguments=arguments or {"n": 1},
        rule="probe-ok-needs-approval",
        approvers=["admin"],
        timeout=600,
    )


async def test_deny_with_a_note_moves_the_request_below(tmp_path: Path) -> None:
    async with console_client(tmp_path) as (portal, http):
        await sign_in(http)
        request = await _pending(portal)
        page = await http.get("/admin/approvals")
        assert request.id in page.text and ">Approve</button>" in page.text and ">Deny</button>" in page.text
        denied = await http.post(
            f"/admin/approvals/{request.id}",
            data={"decision": "deny", "note": "not today", "csrf": csrf(page.text)},
            headers={"Origin": "http://127.0.0.1", "Sec-Fetch-Site": "same-origin"},  # as a browser sends
        )
        assert denied.status_code == 303
        stored = await portal.guard.approvals.get(request.id)
        assert stored is not None and (stored.status, stored.decided_by, stored.note) == (
            "denied",
            "carol",
            "not today",
        )
        after = (await http.get("/admin/approvals")).text
        assert "No request waits for a decision." in after and "not today" in after
        again = await http.post(
            f"/admin/approvals/{request.id}", data={"decision": "approve", "csrf": csrf(after)}
        )
        assert again.status_code == 409
        (event,) = events(portal, "console/approvals.deny")
        assert event["principal"]["subject"] == "carol" and event["approval"]["id"] == request.id


async def test_tool_names_and_arguments_are_rendered_escaped(tmp_path: Path) -> None:
    async with console_client(tmp_path) as (portal, http):
        await sign_in(http)
        await _pending(portal, target=XSS, arguments={"q": '"><img src=x onerror=alert(1)>'})
        await portal.guard.record(
            AuditEvent(method="tools/call", decision="deny", server="probe", target=XSS)
        )
        portal.guard.auditor.flush()  # type: ignore[union-attr]
        for path in ("/admin/approvals", "/admin/audit"):
            text = (await http.get(path)).text
            assert XSS not in text and "<img" not in text, path
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text, path


async def test_audit_filters_detail_verification_and_export(tmp_path: Path) -> None:
    async with console_client(tmp_path) as (portal, http):
        await sign_in(http)
        for target, decision in (("ok", "allow"), ("rm", "deny"), ("ls", "allow")):
            await portal.guard.record(
                AuditEvent(method="tools/call", decision=decision, server="probe", target=target)  # type: ignore[arg-type]
            )
        portal.guard.auditor.flush()  # type: ignore[union-attr]
        page = await http.get("/admin/audit", params={"decision": "deny", "server": "probe", "since": "1h"})
        assert page.status_code == 200
        assert "<code>rm</code>" in page.text and "<code>ls</code>" not in page.text
        assert "Chain verification: not run since the console started" in page.text
        checked = await http.get("/admin/audit/verify")
        assert checked.status_code == 200 and ": ok: " in checked.text and "(anchor: event #" in checked.text
        assert ": ok: " in (await http.get("/admin/audit")).text  # the last result, shown until run again
        link = re.search(r'href="(/admin/audit/events/[^"]+)"', page.text)
        assert link is not None
        detail = await http.get(link.group(1))
        assert detail.status_code == 200 and "&quot;target&quot;: &quot;rm&quot;" in detail.text
        assert (await http.get("/admin/audit/events/nope")).status_code == 404
        bad = await http.get("/admin/audit", params={"since": "last tuesday"})
        assert bad.status_code == 400 and "unrecognised time" in bad.text
        export = await http.get("/admin/audit/export", params={"server": "probe"})
        assert export.status_code == 200 and export.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) for line in export.text.splitlines()]
        assert [r["target"] for r in lines] == ["ok", "rm", "ls"]
        (event,) = events(portal, "console/audit.export")
        assert event["principal"]["subject"] == "carol"


async def test_a_failing_page_is_a_plain_500_on_record(tmp_path: Path) -> None:
    async with console_client(tmp_path) as (portal, http):
        await sign_in(http)

        async def broken(*, everything: bool = False, viewer: Any = None) -> list[Any]:
            raise RuntimeError("state store exploded at /secret/path")

        portal.guard.approvals.list = broken  # type: ignore[method-assign]
        failed = await http.get("/admin/approvals")
        assert (
            failed.status_code == 500 and "/secret/path" not in failed.text and "Traceback" not in failed.text
        )
        assert failed.headers["content-security-policy"].startswith("default-src 'self'")
        (event,) = events(portal, "console/error")
        assert event["decision"] == "error" and event["reasons"] == ["RuntimeError"]


async def test_sign_out_ends_the_session(tmp_path: Path) -> None:
    async with console_client(tmp_path) as (portal, http):
        await sign_in(http)
        cookie = http.cookies["mcp_guard_console"]
        page = await http.get("/admin/approvals")
        out = await http.post("/admin/logout", data={"csrf": csrf(page.text)})
        assert out.status_code == 303 and out.headers["location"] == "/admin/login"
        http.cookies.set("mcp_guard_console", cookie, domain="127.0.0.1", path="/admin")
        assert (await http.get("/admin/approvals")).status_code == 303  # the old cookie no longer works
        assert [e["decision"] for e in events(portal, "console/logout")] == ["allow"]


async def test_revoking_the_admins_key_ends_the_session(tmp_path: Path) -> None:
    async with console_client(tmp_path) as (portal, http):
        assert portal.guard.store is not None
        key, record = await create_api_key(portal.guard.store, "erin", roles=["admin"])
        assert (await sign_in(http, key)).status_code == 303
        assert (await http.get("/admin/approvals")).status_code == 200
        await revoke_api_key(portal.guard.store, record.id)
        gone = await http.get("/admin/approvals")
        assert gone.status_code == 303 and gone.headers["location"] == "/admin/login"


async def test_the_session_ends_when_the_key_expires(tmp_path: Path) -> None:
    async with console_client(tmp_path, console="[console]\nidle_timeout = 86400\n") as (portal, http):
        assert portal.guard.store is not None and portal.console is not None
        key, _ = await create_api_key(portal.guard.store, "erin", roles=["admin"], expires_in=3600)
        assert (await sign_in(http, key)).status_code == 303
        later = [0.0]
        portal.console.state.console.sessions.clock = lambda: time.time() + later[0]
        later[0] = 3500
        assert (await http.get("/admin/approvals")).status_code == 200
        later[0] = 3700
        assert (await http.get("/admin/approvals")).status_code == 303


async def test_an_idle_session_expires(tmp_path: Path) -> None:
    async with console_client(tmp_path, console="[console]\nidle_timeout = 60\n") as (portal, http):
        now = [1_000_000.0]
        assert portal.console is not None
        portal.console.state.console.sessions.clock = lambda: now[0]
        await sign_in(http)
        now[0] += 59
        assert (await http.get("/admin/approvals")).status_code == 200  # used: the idle timer restarts
        now[0] += 59
        assert (await http.get("/admin/approvals")).status_code == 200
        now[0] += 60
        gone = await http.get("/admin/approvals")
        assert gone.status_code == 303 and gone.headers["location"] == "/admin/login"


async def test_a_busy_session_still_ends_at_its_max_age(tmp_path: Path) -> None:
    """However busy, and whatever its credential, a session ends max_age after sign-in."""
    console = "[console]\nidle_timeout = 60\nmax_age = 150\n"
    async with console_client(tmp_path, console=console) as (portal, http):
        now = [1_000_000.0]
        assert portal.console is not None
        portal.console.state.console.sessions.clock = lambda: now[0]
        await sign_in(http)
        for _ in range(2):
            now[0] += 59
            assert (await http.get("/admin/approvals")).status_code == 200
        now[0] += 59
        gone = await http.get("/admin/approvals")
        assert gone.status_code == 303 and gone.headers["location"] == "/admin/login"


async def test_console_settings_are_validated_and_it_can_be_turned_off(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as typo:
        load_config(write_config(tmp_path, console='[console]\nadmin_role = ["ops"]\n'))
    assert typo.value.field == "console.admin_role" and "did you mean `admin_roles`" in str(typo.value)
    assert typo.value.line is not None
    with pytest.raises(ConfigError) as empty:
        load_config(write_config(tmp_path, console="[console]\nadmin_roles = []\n"))
    assert empty.value.field == "console.admin_roles"
    async with console_client(tmp_path, console="[console]\nenabled = false\n") as (portal, http):
        assert portal.console is None
        assert (await http.get("/admin/login")).status_code == 404


async def test_a_waiting_caller_completes_when_approved_in_the_console(tmp_path: Path) -> None:
    with probe_upstream(Probe()) as up:
        portal = Portal.from_guard_config(load_config(write_config(tmp_path, upstream=up)))
        portal.guard.approvals.poll = 0.05
        result: list[Any] = []
        try:
            with portal_http(portal) as url:

                async def call() -> None:
                    async with client(url, USER_KEY) as c:
                        result.append(await c.call_tool("probe__ok", {"n": 7}))

                async with httpx.AsyncClient(base_url=url) as http, anyio.create_task_group() as tg:
                    tg.start_soon(call)
                    await sign_in(http)
                    with anyio.fail_after(15):
                        while not await portal.guard.approvals.list():
                            await anyio.sleep(0.05)
                    page = await http.get("/admin/approvals")
                    (request,) = await portal.guard.approvals.list()
                    assert request.id in page.text and "&quot;n&quot;: 7" in page.text
                    form = {"decision": "approve", "csrf": csrf(page.text)}
                    approved = await http.post(f"/admin/approvals/{request.id}", data=form)
                    assert approved.status_code == 303
                    with anyio.fail_after(15):
                        while not result:
                            await anyio.sleep(0.05)
            (used,) = await portal.guard.approvals.list(everything=True)
        finally:
            await portal.guard.aclose()
    assert result[0].is_error is False
    assert (used.status, used.decided_by) == ("used", "carol")


@given(st.text())
def test_escaped_text_has_no_markup_and_reads_back_the_same(text: str) -> None:
    escaped = esc(text)
    assert not set("<>\"'") & set(escaped)
    assert html.unescape(escaped) == text


@given(st.text(min_size=1, max_size=200))
@settings(max_examples=50)
def test_no_guessed_cookie_is_a_session(guess: str) -> None:
    async def check() -> None:
        store = MemoryStore()
        sessions = ConsoleSessions(store, idle=60)
        session_id, _, _ = await sessions.create("carol", ("admin",), {"subject": "carol"})
        assert guess == session_id or await sessions.get(guess) is None
        assert (await sessions.get(session_id)) is not None
        assert all(session_id not in key for key in await store.keys(""))  # stored under a hash only

    anyio.run(check)


_FUZZ_FIELDS = ("subject", "server", "tool", "decision", "since", "until", "other")


@given(st.dictionaries(st.sampled_from(_FUZZ_FIELDS), st.text(max_size=40), max_size=4))
@example({"since": "0001-01-01"})
@example({"until": "99999999999999999999w"})
@example({"decision": "deny", "tool": "\x00<b>"})
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_audit_filter_is_a_page_or_a_precise_400(
    tmp_path_factory: pytest.TempPathFactory, params: dict[str, str]
) -> None:
    app = _fuzz_app(tmp_path_factory)
    with TestClient(app, base_url="http://127.0.0.1") as http:
        for path in ("/admin/audit", "/admin/audit/export"):
            response = http.get(path, params=params, headers={"Authorization": f"Bearer {ADMIN_KEY}"})
            assert response.status_code in (200, 400), (path, params, response.text[:300])
            if response.status_code == 400:
                assert "unrecognised time" in response.text or "out of range" in response.text


_FUZZ: dict[str, Any] = {}


def _fuzz_app(factory: pytest.TempPathFactory) -> Any:
    if "app" not in _FUZZ:
        portal = Portal.from_guard_config(load_config(write_config(factory.mktemp("fuzz"))))
        _FUZZ["app"] = Starlette(routes=console_routes(portal.console))
    return _FUZZ["app"]


@given(st.binary(max_size=300), st.sampled_from(["/admin/login", "/admin/logout", "/admin/approvals/apr-1"]))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_form_body_is_refused_cleanly(
    tmp_path_factory: pytest.TempPathFactory, body: bytes, path: str
) -> None:
    app = _fuzz_app(tmp_path_factory)
    with TestClient(app, base_url="http://127.0.0.1", follow_redirects=False) as http:
        token = csrf(http.get("/admin/login").text)
        sent = body + b"&csrf=" + token.encode() if path == "/admin/login" else body
        response = http.post(
            path, content=sent, headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        assert response.status_code in (400, 401, 403, 429), (path, body, response.status_code)
        assert response.headers["x-frame-options"] == "DENY"


async def test_approvals_are_bound_to_the_admins_tenant_as_in_the_cli(tmp_path: Path) -> None:
    async with console_client(tmp_path) as (portal, http):
        await sign_in(http)  # carol: an admin of no tenant
        other = await portal.guard.approvals.open_for(
            subject="mallory", tenant="acme", server="probe", kind="tool", target="ok",
            arguments={"n": 2}, shown_arguments={"n": 2}, rule="probe-ok-needs-approval",
            approvers=["admin"], timeout=600,
        )  # fmt: skip
        page = await http.get("/admin/approvals")
        assert other.id not in page.text  # another tenant's request (and its arguments) is not shown
        decided = await http.post(
            f"/admin/approvals/{other.id}",
            data={"decision": "approve", "csrf": csrf(page.text)},
            headers={"Origin": "http://127.0.0.1", "Sec-Fetch-Site": "same-origin"},
        )
        assert decided.status_code == 409 and "tenant" in decided.text
        assert (await portal.guard.approvals.get(other.id)).status == "pending"  # type: ignore[union-attr]


async def test_failed_keys_lock_one_address_out_of_sign_in_and_bearer_reads_but_no_other(
    tmp_path: Path,
) -> None:
    async with console_client(tmp_path) as (portal, http):
        for _ in range(6):
            wrong = await http.get("/admin/audit", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 429  # reading with a key is no way around the lockout
        right = await http.get("/admin/audit", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
        assert right.status_code == 429
        assert (await sign_in(http)).status_code == 429
        elsewhere = httpx.ASGITransport(app=portal.streamable_http_app(), client=("10.9.8.7", 4321))
        async with httpx.AsyncClient(transport=elsewhere, base_url="http://127.0.0.1") as other:
            # Failures from one address never lock an administrator out from another.
            assert (await sign_in(other)).status_code in (200, 303)


async def test_refusals_made_before_a_page_runs_are_on_record_too(tmp_path: Path) -> None:
    async with console_client(tmp_path) as (portal, http):
        await sign_in(http)
        wrong_method = await http.put("/admin/approvals/apr-1")
        assert wrong_method.status_code == 405
        assert wrong_method.headers["content-security-policy"].startswith("default-src 'self'")
        unknown = await http.get("/admin/no-such-page%1b%5b31m")  # an escape sequence, percent-encoded
        assert unknown.status_code == 404
        reasons = [e["reasons"][0] for e in events(portal, "console/reject")]
        assert reasons[0] == "HTTP 405: PUT /admin/approvals/apr-1"
        assert reasons[1].startswith("HTTP 404: GET /admin/no-such-page") and "\x1b" not in reasons[1]
        assert events(portal, "console/approvals.approve") == []
