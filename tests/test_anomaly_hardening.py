"""Attacks on anomaly detection, alerting and the lock action, and what stops each of them."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio
import pytest

from mcp_guard.audit.anomaly import (
    AnomalySettings,
    Detector,
    Event,
    Finding,
    WebhookSettings,
    from_record,
    read_events,
)
from mcp_guard.audit.anomaly.detect import MAX_KNOWN, MAX_NOVELTIES
from mcp_guard.portal.anomalies import hold_targets


def _finding(kind: str, subject: str | None, source: str | None) -> Finding:
    return Finding(kind, subject, source, None, None, 1.0, 0.0, 0.0, ("e1",), "why")


# -- the lock action cannot be turned against others ----------------------------------------------


def test_failing_credentials_for_a_user_never_locks_that_user() -> None:
    # Anyone can fail a login "as" admin from anywhere: the account must not be held for it
    # (the login lockout's own capped account counter deals with distributed guessing).
    account, source = hold_targets(_finding("auth-failures", "admin", "203.0.113.9"), [])
    assert account is None and source is None


def test_failing_credentials_from_one_address_holds_that_address() -> None:
    assert hold_targets(_finding("auth-failures", None, "203.0.113.9"), []) == (None, "203.0.113.9")


def test_a_subject_who_is_denied_again_and_again_is_held() -> None:
    assert hold_targets(_finding("denial-burst", "eve", "203.0.113.9"), []) == ("eve", None)


@pytest.mark.parametrize("source", ["127.0.0.1", "::1", "::ffff:127.0.0.1", "10.0.0.5", "10.9.9.9"])
def test_loopback_and_proxy_addresses_are_never_held(source: str) -> None:
    # Behind a reverse proxy every caller has the proxy's address: holding it locks everyone.
    assert hold_targets(_finding("auth-failures", None, source), ["10.0.0.5", "10.9.0.0/16"]) == (
        None,
        None,
    )


def test_a_public_source_is_held_even_with_proxies_configured() -> None:
    assert hold_targets(_finding("auth-failures", None, "198.51.100.7"), ["10.0.0.5"]) == (
        None,
        "198.51.100.7",
    )


# -- odd trails ------------------------------------------------------------------------------------


@pytest.mark.parametrize("t", [1e15, -1e12, 1e300, -5.0])
def test_events_at_impossible_times_are_skipped_not_fatal(t: float) -> None:
    assert from_record({"id": "x", "time": t, "event": "authn", "decision": "deny"}) is None


def test_the_cli_survives_a_trail_with_events_from_the_far_future(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mcp_guard.cli.main import main

    path = tmp_path / "trail.jsonl"
    now = time.time()
    records = [
        {"id": f"a{i}", "time": t, "event": "authn", "decision": "deny", "source_ip": "203.0.113.5"}
        for i, t in enumerate([1e15 + i for i in range(12)] + [now + i for i in range(12)])
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert main(["audit", "anomalies", str(path), "--json"]) == 0
    found = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [f["kind"] for f in found] == ["auth-failures"]
    assert all(e.time < 1e15 for e in read_events(path))


# -- alert floods ----------------------------------------------------------------------------------


async def test_a_stuck_sink_holds_a_bounded_number_of_alerts_and_the_rest_are_counted() -> None:
    from mcp_guard.audit.anomaly.monitor import Monitor

    release = anyio.Event()
    got: list[str] = []

    class Stuck:
        async def alert(self, finding: Mapping[str, Any]) -> None:
            await release.wait()

    class Quick:
        async def alert(self, finding: Mapping[str, Any]) -> None:
            got.append(str(finding["subject"]))

    monitor = Monitor(AnomalySettings(), sinks=[Stuck(), Quick()], max_pending=10)
    async with anyio.create_task_group() as tg:
        for i in range(500):
            await monitor.handle(_finding("new-source", f"user{i}", "203.0.113.9"), tg)
        await anyio.sleep(0.05)
        assert monitor.in_flight == 10  # not one task per alert piling up behind the stuck sink
        assert monitor.undelivered == 490  # its overflow, counted (and logged by run)
        assert len(got) == 500  # the quick sink lost nothing
        release.set()
        with anyio.fail_after(5):
            while monitor.in_flight:
                await anyio.sleep(0.01)
        tg.cancel_scope.cancel()


def _call(i: int, t: float, target: str, source: str = "198.51.100.1", decision: str = "allow") -> Event:
    return Event(f"e{i}", t, "request", decision, "mallory", source, None, "notes", target, "tools/call")


def test_one_subject_probing_random_tools_gives_a_few_findings_and_bounded_memory() -> None:
    detector = Detector(AnomalySettings(kinds=["new-target"]).thresholds())
    start = 1_800_000_000.0
    history = [_call(i, start + i, "read") for i in range(60)]
    probes = [_call(60 + i, start + 60 + i, f"tool-{i}", decision="deny") for i in range(20_000)]
    found = detector.run(history + probes)
    hours = 20_000 / 3600 + 1
    assert 1 <= len(found) <= MAX_NOVELTIES * hours
    assert any("more new-target by this subject not reported" in f.why for f in found)
    assert len(detector._subjects["mallory", None].targets) <= MAX_KNOWN + 2


def test_one_subject_rotating_source_addresses_gives_a_few_findings_and_bounded_memory() -> None:
    detector = Detector(AnomalySettings(kinds=["new-source"]).thresholds())
    start = 1_800_000_000.0
    history = [_call(i, start + i, "read") for i in range(60)]
    rotating = [
        _call(60 + i, start + 60 + i, "read", source=f"203.0.{i // 256 % 256}.{i % 256}")
        for i in range(20_000)
    ]
    found = detector.run(history + rotating)
    assert 1 <= len(found) <= MAX_NOVELTIES * (20_000 / 3600 + 1)
    assert len(detector._subjects["mallory", None].sources) <= MAX_KNOWN + 1


# -- webhook addresses -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host", ["2130706433", "0x7f000001", "017700000001", "127.1", "0x7f.1", "169.254.43518", "10.1"]
)
def test_numeric_forms_of_private_addresses_are_refused_at_load(host: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="non-public address"):
        WebhookSettings(url=f"https://{host}/hook")


async def test_a_webhook_that_will_be_refused_is_reported_when_the_monitor_starts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from mcp_guard.audit.anomaly.alerts import WebhookAlertSink
    from mcp_guard.audit.anomaly.monitor import Monitor

    sink = WebhookAlertSink(WebhookSettings(url="https://localhost/hook"))
    monitor = Monitor(AnomalySettings(), sinks=[sink], interval=0.01)
    async with anyio.create_task_group() as tg:
        tg.start_soon(monitor.run)
        with anyio.fail_after(5):
            while "will not be delivered" not in caplog.text:
                await anyio.sleep(0.01)
        tg.cancel_scope.cancel()
    assert "https://localhost/hook" in caplog.text and "non-public" in caplog.text
