"""``policy check`` / ``policy explain`` with a request ``history``: flows tested offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

from mcp_guard.policy import load_policy, load_policy_text

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


ROOT = Path(__file__).resolve().parents[1]


def test_the_documented_recipe_is_the_example_and_gives_the_documented_answer(tmp_path: Path) -> None:
    doc = (ROOT / "docs" / "policy.md").read_text()
    recipe = doc.split("### Recipe: forbid", 1)[1].split("\n## ", 1)[0]
    policy_block = textwrap.dedent(recipe.split("```toml\n", 1)[1].split("```", 1)[0])
    example = ROOT / "examples" / "flows" / "policy.toml"
    documented, shipped = load_policy_text(policy_block), load_policy(example)
    assert [r.id for r in documented.rules] == [r.id for r in shipped.rules]
    same = [replace(f, source="-", line=None) for f in documented.flows]
    assert same == [replace(f, source="-", line=None) for f in shipped.flows]
    # the console example of docs/cli.md, against the shipped policy
    cli_doc = (ROOT / "docs" / "cli.md").read_text()
    shown = cli_doc.split("**Testing flows: `history`.**", 1)[1].split("```\n", 2)[1]
    request_text = shown.split("$ cat request.json\n", 1)[1].split("$ mcp-guard", 1)[0]
    expected = json.loads(shown.split("--request request.json\n", 1)[1].split("\n", 1)[0])
    done = cli("check", "--policy", str(example), "--request", "-", stdin=request_text)
    assert json.loads(done.stdout) == expected


def test_the_example_refuses_the_send_naming_the_flow_and_the_fetch(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    script = ROOT / "examples" / "flows" / "fetch_then_send.py"
    done = subprocess.run(
        [sys.executable, str(script), "--data-dir", str(tmp_path / "data")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "mail__send_mail: sent to bob@example.com"
    assert lines[1].startswith("web__fetch_page: Page https://flights.example")
    assert lines[2].startswith(
        "mail__send_mail: refused (-32003) Access denied: flow no-send-after-untrusted"
    )
    trail = lines[lines.index("audit trail (tools/call):") + 1 :]
    fetch_id = next(line.split()[0] for line in trail if "web/fetch_page" in line)
    assert lines[2].endswith(f"after your earlier call {fetch_id}")
    assert trail[-1].endswith(f"deny mail/send_mail flow=no-send-after-untrusted after_event={fetch_id}")
    # the audit trail answers both questions: which calls did the flow refuse, and what was the fetch
    audit = str(tmp_path / "data" / "audit.db")
    refused = subprocess.run(
        [
            sys.executable,
            "-m",
            "mcp_guard",
            "audit",
            "query",
            audit,
            "--flow",
            "no-send-after-untrusted",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    (record,) = [json.loads(line) for line in refused.stdout.splitlines()]
    assert (record["target"], record["flow"]["after_event"]) == ("send_mail", fetch_id)
    earlier = subprocess.run(
        [sys.executable, "-m", "mcp_guard", "audit", "query", audit, "--id", fetch_id, "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    (first,) = [json.loads(line) for line in earlier.stdout.splitlines()]
    assert (first["target"], first["decision"]) == ("fetch_page", "allow")
