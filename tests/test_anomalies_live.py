"""Anomalies found by ``mcp-guard serve`` as they happen, and by ``audit anomalies`` on its trail."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mcp_guard.audit.anomaly import AnomalySettings, Finding, WebhookSettings
from mcp_guard.audit.anomaly.alerts import DeliveryError, WebhookAlertSink
from mcp_guard.audit.anomaly.monitor import Monitor
from mcp_guard.authn.fetch import FetchPolicy, SafeFetcher
from mcp_guard.authn.lockout import Lockout
from mcp_guard.config import load_config
from mcp_guard.errors import ConfigError
from mcp_guard.portal import Portal

from .helpers import ListAuditor
from .http_util import INITIALIZE, MCP_HEADERS, free_port, serve
from .test_portal_support import EXAMPLES

KEY = "anomaly-test-key-for-alice"
ATTACKER = "203.0.113.7"


def receiver(received: list[dict[str, Any]], fail_first: int = 0) -> Starlette:
    """A webhook endpoint that answers 500 to the first ``fail_first`` posts."""
    calls = [0]

    async def hook(request: Request) -> Response:
        calls[0] += 1
        if calls[0] <= fail_first:
            return Response(status_code=500)
        received.append(json.loads(await request.body()))
        return Response(status_code=204)

    return Starlette(routes=[Route("/hook", hook, methods=["POST"])])


def write_config(tmp_path: Path, hook: str, action: str = "lock") -> Path:
    digest = hashlib.sha256(KEY.encode()).hexdigest()
    (tmp_path / "policy.toml").write_text(
        'version = 1\n[[rules]]\nid = "all-notes"\neffect = "allow"\nservers = ["notes"]\n'
    )
    path = tmp_path / "guard.toml"
    path.write_text(
        f"""
[guard]
server = "portal"
policy = "policy.toml"
state = "memory://"
audit = ["sqlite:///audit.db"]

[[authn.api_keys]]
subject = "alice"
key_sha256 = "{digest}"

[anomalies]
auth_failures = 5
auth_window = 60
action = "{action}"
lock_for = 600

[[anomalies.webhooks]]
url = "{hook}"
allow_insecure_loopback = true
backoff = 0.05

[[servers]]
name = "notes"
command = "python"
args = ["{EXAMPLES / "notes_server.py"}"]
"""
    )
    return path


async def _post(http: httpx.AsyncClient, url: str, token: str, source: str | None = None) -> int:
    # The test server believes X-Forwarded-For from loopback, as [listen] trusted_proxies would.
    forwarded = {"X-Forwarded-For": source} if source else {}
    response = await http.post(
        url + "/mcp",
        json=INITIALIZE,
        headers={**MCP_HEADERS, "Authorization": f"Bearer {token}", **forwarded},
    )
    return response.status_code


async def test_a_burst_of_bad_keys_alerts_the_webhook_and_locks_the_source(tmp_path: Path) -> None:
    received: list[dict[str, Any]] = []
    with serve(receiver(received, fail_first=1)) as hook_url:
        config = load_config(write_config(tmp_path, hook_url + "/hook"))
        portal = Portal.from_guard_config(config)
        port = free_port()
        with serve(portal.streamable_http_app(port=port), port) as url:
            async with httpx.AsyncClient(timeout=30) as http:
                assert await _post(http, url, KEY) == 200  # alice works before
                for i in range(6):
                    assert await _post(http, url, f"mcpg_0123456789ab_wrong{i}", ATTACKER) == 401
                with anyio.fail_after(15):
                    while not received:
                        await anyio.sleep(0.05)
                finding = received[0]
                assert finding["kind"] == "auth-failures" and finding["source_ip"] == ATTACKER
                assert finding["action"] == "lock" and len(finding["events"]) == 5
                assert f"refused credentials from source {ATTACKER}" in finding["why"]
                # Held: even the right key is refused from that address now; others go on.
                assert await _post(http, url, KEY, ATTACKER) in (401, 429)
                assert await _post(http, url, KEY) == 200
                lockout = Lockout(portal.guard.store)
                with pytest.raises(Exception, match="locked"):
                    await lockout.check_hold(None, ATTACKER)
                assert await lockout.unlock(source=ATTACKER)
                assert await _post(http, url, KEY, ATTACKER) == 200
        await portal.guard.aclose()
    assert len(received) == 1  # the 500 was retried, the finding delivered once
    # The CLI finds the same burst in the trail the guard wrote, and the alert is on record.
    found = [json.loads(line) for line in cli(tmp_path, "anomalies", "--json").splitlines()]
    assert [(f["kind"], f["source_ip"]) for f in found] == [("auth-failures", ATTACKER)]
    records = [json.loads(line) for line in cli(tmp_path, "query", "--json").splitlines()]
    alerts = [r for r in records if r["event"] == "anomaly"]
    assert [a["method"] for a in alerts] == ["anomaly/auth-failures"]
    assert alerts[0]["decision"] == "deny" and alerts[0]["reasons"][2] == "action lock"
    assert set(found[0]["events"]) <= {r["id"] for r in records if r["event"] == "authn"}
    table = cli(tmp_path, "anomalies").splitlines()
    assert len(table) == 2 and "auth-failures" in table[1] and ATTACKER in table[1]


def cli(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "mcp_guard", "audit", *args, "--config", "guard.toml"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


# -- the webhook sink on its own ------------------------------------------------------------------


def _mock(statuses: list[int], seen: list[httpx.Request]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(statuses.pop(0) if statuses else 200)

    return httpx.MockTransport(handle)


async def test_webhook_retries_with_backoff_then_gives_up() -> None:
    seen: list[httpx.Request] = []
    settings = WebhookSettings(url="https://93.184.216.34/hook", retries=2, backoff=0.01)
    sink = WebhookAlertSink(settings, fetcher=SafeFetcher(FetchPolicy(), transport=_mock([503, 502], seen)))
    started = time.monotonic()
    await sink.alert({"kind": "rate-spike"})
    assert len(seen) == 3 and time.monotonic() - started >= 0.03  # 0.01 + 0.02 between attempts
    assert json.loads(seen[-1].content) == {"kind": "rate-spike"}
    assert seen[-1].headers["content-type"] == "application/json"
    seen.clear()
    failing = WebhookAlertSink(settings, fetcher=SafeFetcher(FetchPolicy(), transport=_mock([500] * 5, seen)))
    with pytest.raises(DeliveryError, match="HTTP 500"):
        await failing.alert({"kind": "rate-spike"})
    assert len(seen) == 3


@pytest.mark.parametrize(
    ("url", "allow", "problem"),
    [
        ("http://127.0.0.1:9/hook", {}, "plain http"),
        ("http://hooks.example/x", {"allow_insecure_loopback": True}, "plain http"),
        ("ftp://hooks.example/x", {}, "https:// URL"),
        ("https://user:pw@hooks.example/x", {}, "credentials"),
        ("https://127.0.0.1/hook", {}, "non-public"),
        ("https://10.1.2.3/hook", {}, "allow_private_addresses"),
        ("https://169.254.169.254/latest", {"allow_private_addresses": True}, "non-public"),
        ("https://[::ffff:192.168.0.1]/hook", {}, "non-public"),
    ],
)
def test_webhook_urls_that_break_the_outbound_rules_are_refused_at_load(
    url: str, allow: dict[str, bool], problem: str
) -> None:
    with pytest.raises(ValidationError, match=re.escape(problem)):
        WebhookSettings(url=url, **allow)


async def test_webhook_to_a_name_resolving_to_loopback_is_refused_when_sending() -> None:
    seen: list[httpx.Request] = []
    settings = WebhookSettings(url="https://localhost/hook", retries=3, backoff=5)
    sink = WebhookAlertSink(settings, fetcher=SafeFetcher(FetchPolicy(), transport=_mock([], seen)))
    with anyio.fail_after(4):  # not retried: the rules will not change between attempts
        with pytest.raises(DeliveryError, match="non-public"):
            await sink.alert({"kind": "new-source"})
    assert seen == []


async def test_webhook_to_a_private_address_when_allowed() -> None:
    seen: list[httpx.Request] = []
    settings = WebhookSettings(url="https://10.1.2.3/hook", allow_private_addresses=True)
    sink = WebhookAlertSink(
        settings, fetcher=SafeFetcher(FetchPolicy(allow_private_addresses=True), transport=_mock([], seen))
    )
    await sink.alert({"kind": "new-source"})
    assert len(seen) == 1


# -- the monitor and plugin sinks -----------------------------------------------------------------


class ListSink:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.got: list[dict[str, Any]] = []

    async def alert(self, finding: Mapping[str, Any]) -> None:
        if self.fail:
            raise RuntimeError("sink down")
        self.got.append(dict(finding))


async def test_monitor_alerts_every_sink_even_when_one_fails(caplog: pytest.LogCaptureFixture) -> None:
    auditor = ListAuditor()
    broken, working = ListSink(fail=True), ListSink()
    locked: list[Finding] = []

    async def lock(finding: Finding) -> list[str]:
        locked.append(finding)
        return [f"hold:{finding.subject}"]

    settings = AnomalySettings(denials=3, action="lock")
    monitor = Monitor(settings, sinks=[broken, working], auditor=auditor, lock=lock, interval=0.01)
    now = time.time()
    records = [
        {
            "id": f"d{i}",
            "time": now + i,
            "event": "request",
            "decision": "deny",
            "principal": {"subject": "eve"},
        }
        for i in range(4)
    ]
    monitor.observe(records[:2])
    monitor.observe(records[2:])
    async with anyio.create_task_group() as tg:
        tg.start_soon(monitor.run)
        with anyio.fail_after(10):
            while not working.got:
                await anyio.sleep(0.01)
        tg.cancel_scope.cancel()
    assert [f["kind"] for f in working.got] == ["denial-burst"] and working.got[0]["action"] == "lock"
    assert working.got[0]["events"] == ["d0", "d1", "d2"] and [f.subject for f in locked] == ["eve"]
    assert "sink down" in caplog.text
    (event,) = auditor.events
    assert (event.event, event.method, event.principal) == (
        "anomaly",
        "anomaly/denial-burst",
        {"subject": "eve"},
    )
    # A full queue skips records instead of growing or blocking the audit flusher.
    small = Monitor(settings, capacity=2)
    small.observe(records[:2])
    small.observe(records[2:])
    assert small.dropped == 2


def test_plugin_sinks_by_entry_point_name(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.metadata import EntryPoint

    from mcp_guard.portal import anomalies

    points = [EntryPoint("pager", "tests.test_anomalies_live:ListSink", anomalies.ENTRY_POINT_GROUP)]
    monkeypatch.setattr(
        anomalies, "entry_points", lambda group: points if group == anomalies.ENTRY_POINT_GROUP else []
    )
    assert isinstance(anomalies.plugin_sink("pager"), ListSink)
    with pytest.raises(ConfigError, match="did you mean 'pager'"):
        anomalies.plugin_sink("pagr")
    points.append(EntryPoint("bad", "json:dumps", anomalies.ENTRY_POINT_GROUP))
    with pytest.raises(ConfigError, match=r"'bad' failed to load"):
        anomalies.plugin_sink("bad")


async def test_a_hold_refuses_logins_and_credentials_until_unlocked() -> None:
    from mcp_guard.authn import AuthenticatorChain
    from mcp_guard.errors import GuardError, RateLimited
    from mcp_guard.model import Principal
    from mcp_guard.protocols import Credential
    from mcp_guard.store import MemoryStore

    class Table:
        async def authenticate(self, credential: Credential) -> Principal | None:
            return Principal("eve") if credential.token == "tok-eve" else None

    lockout = Lockout(MemoryStore())
    chain = AuthenticatorChain([Table()], auditor=ListAuditor())
    assert (await chain.resolve(Credential("tok-eve", "http", "10.0.0.1"))).subject == "eve"
    assert chain.peek("tok-eve") is not None
    chain.holds = lockout
    assert await lockout.hold("eve", None, 60) == ["hold:eve"]
    chain.held(time.time() + 60)
    assert chain.peek("tok-eve") is None  # the cache cannot tell: every credential is checked
    with pytest.raises(RateLimited, match="locked"):
        await lockout.check("eve", "10.0.0.1")  # the login endpoint
    with pytest.raises(GuardError, match="locked"):
        await chain.resolve(Credential("tok-eve", "http", "10.0.0.1"))
    assert "hold:eve" in await lockout.status("eve")
    assert "hold:eve" in await lockout.unlock("eve")
    assert (await chain.resolve(Credential("tok-eve", "http", "10.0.0.1"))).subject == "eve"


async def test_a_hold_made_on_one_replica_reaches_the_credential_cache_of_another() -> None:
    from mcp_guard.authn import AuthenticatorChain
    from mcp_guard.model import Principal
    from mcp_guard.portal.anomalies import HOLDS_CHANNEL, follow_holds
    from mcp_guard.protocols import Credential
    from mcp_guard.store import MemoryStore

    class Table:
        async def authenticate(self, credential: Credential) -> Principal | None:
            return Principal("eve") if credential.token == "tok-eve" else None

    store = MemoryStore()
    other = AuthenticatorChain([Table()])
    await other.resolve(Credential("tok-eve", "http"))
    async with anyio.create_task_group() as tg:
        tg.start_soon(follow_holds, store, other)
        with anyio.fail_after(5):
            while other.peek("tok-eve") is not None:
                await store.publish(HOLDS_CHANNEL, repr(time.time() + 60))
                await anyio.sleep(0.02)
        await store.publish(HOLDS_CHANNEL, "not a time")  # ignored, the follower goes on
        await store.publish(HOLDS_CHANNEL, repr(time.time() + 120))
        tg.cancel_scope.cancel()
