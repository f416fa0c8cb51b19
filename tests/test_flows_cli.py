"""``policy check`` / ``policy explain`` with a request ``history``: flows tested offline."""

from __future__ import annotations

import json
from pathlib import Path

from .test_flows_portal import POLICY
from .test_policy_cli import cli


def request(time: str, *history: tuple[str, str, str]) -> str:
    return json.dumps(
        {
            "principal": {"subject": "alice", "roles": ["analyst"]},
            "action": "tools/call",
            "server": "mail",
            "target": "send_mail",
            "time": time,
            "history": [
                {"action": "tools/call", "server": s, "target": t, "time": when} for s, t, when in history
            ],
        }
    )


def test_check_refuses_a_send_after_a_fetch_in_the_history(tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    fetch = ("web", "fetch_page", "2026-01-05T10:00:00Z")
    done = cli(
        "check", "--policy", str(policy), "--request", "-", stdin=request("2026-01-05T10:20:00Z", fetch)
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["decision"] == "deny" and out["rule"] == "analysts-use-web-and-mail"
    assert out["flow"]["id"] == "no-send-after-untrusted" and out["flow"]["after_event"] == "history[0]"
    assert "refused by flow no-send-after-untrusted" in out["reasons"][0]
    # past the window, or with no fetch in it: allowed, and the output is the plain contract
    later = json.loads(
        cli(
            "check", "--policy", str(policy), "--request", "-", stdin=request("2026-01-05T10:31:00Z", fetch)
        ).stdout
    )
    assert later == {
        "decision": "allow",
        "rule": "analysts-use-web-and-mail",
        "reasons": ["allowed by rule analysts-use-web-and-mail"],
    }
    # an earlier call the policy refuses arms nothing
    refused = ("web", "fetch_page", "2026-01-05T10:00:00Z")
    bob = request("2026-01-05T10:05:00Z", refused).replace('"analyst"', '"viewer"')
    assert "flow" not in json.loads(cli("check", "--policy", str(policy), "--request", "-", stdin=bob).stdout)


def test_explain_shows_the_flow_state(tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    text = request("2026-01-05T10:20:00Z", ("web", "fetch_page", "2026-01-05T10:00:00Z"))
    shown = cli("explain", "--policy", str(policy), "--request", "-", stdin=text).stdout
    assert "target labels: external-output" in shown
    assert (
        "no-send-after-untrusted (deny, scope subject): refuses this target; earlier call history[0]" in shown
    )
    data = json.loads(cli("explain", "--policy", str(policy), "--request", "-", "--json", stdin=text).stdout)
    assert data["flows"][0]["mark"]["event"] == "history[0]"
    assert data["flow_decision"]["decision"] == "deny"


def test_history_out_of_order_names_the_field(tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    text = request("2026-01-05T10:20:00Z", ("web", "fetch_page", "2026-01-05T11:00:00Z"))
    done = cli("check", "--policy", str(policy), "--request", "-", stdin=text)
    assert done.returncode == 2
    assert "history[0].time" in done.stderr and "after the request" in done.stderr
