"""``mcp-guard policy`` as a first-time user of budgets and flows meets it.

Each test is a trap a first-time user can fall into: a read-only ``explain --state`` that
silently created an empty store and reported nothing used, a budget report
that did not say the call would be refused, and a ``validate`` summary that
did not show the flows it had loaded, a ``policy test`` case whose
``history`` was silently ignored, and case errors placed on the wrong line.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from mcp_guard.budgets import Budgets
from mcp_guard.model import AccessRequest, Principal
from mcp_guard.policy import load_policy
from mcp_guard.policy.locate import toml_lines
from mcp_guard.store import open_store

from .test_policy_cli import cli

POLICY = """\
version = 1
[[labels]]
servers = ["web"]
tools = ["fetch*"]
labels = ["untrusted-input"]
[[labels]]
servers = ["mail"]
tools = ["send_*"]
labels = ["external-output", "mail"]
[[rules]]
id = "staff"
effect = "allow"
roles = ["staff"]
servers = ["web", "mail"]
[[flows]]
id = "no-send-after-fetch"
after = ["untrusted-input"]
deny = ["external-output"]
window = "30m"
[[budgets]]
id = "fetch-daily"
period = "1d"
limit = 5
servers = ["web"]
cost = { "fetch" = 2 }
"""

REQUEST = {
    "principal": {"subject": "alice", "roles": ["staff"]},
    "action": "tools/call",
    "server": "web",
    "target": "fetch",
    "arguments": {"url": "https://example.com"},
}


def write(tmp_path: Path) -> tuple[str, str]:
    (tmp_path / "policy.toml").write_text(POLICY)
    (tmp_path / "request.json").write_text(json.dumps(REQUEST))
    return str(tmp_path / "policy.toml"), str(tmp_path / "request.json")


def spend(url: str, policy: str, times: int) -> None:
    principal = Principal("alice", roles=frozenset({"staff"}))
    request = AccessRequest("tools/call", "call", "web", "tool", "fetch")
    charges = load_policy(policy).budgets_for(principal, request)

    async def run() -> None:
        store = open_store(url)
        try:
            for _ in range(times):
                await Budgets(store).charge(principal, charges)
        finally:
            await store.aclose()

    asyncio.run(run())


def test_explain_state_refuses_a_sqlite_store_that_does_not_exist(tmp_path: Path) -> None:
    policy, request = write(tmp_path)
    missing = tmp_path / "elsewhere" / "state.db"
    out = cli("explain", "--policy", policy, "--request", request, "--state", f"sqlite:///{missing}")
    assert out.returncode == 2
    assert "--state" in out.stderr and str(missing) in out.stderr and "no state store" in out.stderr
    assert not missing.exists() and not missing.parent.exists()  # reading never creates a store


def test_explain_state_says_when_the_call_would_not_fit(tmp_path: Path) -> None:
    policy, request = write(tmp_path)
    url = f"sqlite:///{tmp_path / 'state.db'}"
    spend(url, policy, 1)
    text = cli("explain", "--policy", policy, "--request", request, "--state", url).stdout
    assert "alice used 2/5" in text and "refused" not in text
    spend(url, policy, 1)
    out = cli("explain", "--policy", policy, "--request", request, "--state", url)
    assert out.returncode == 0, out.stderr
    assert "alice used 4/5, resets" in out.stdout
    assert "this call (cost 2) would be refused: only 1 left" in out.stdout
    out = cli("explain", "--policy", policy, "--request", request, "--state", url, "--json")
    data = json.loads(out.stdout)
    assert [(b["budget"], b["fits"]) for b in data["budgets"]] == [("fetch-daily", False)]


def test_validate_counts_labels_and_flows(tmp_path: Path) -> None:
    policy, _ = write(tmp_path)
    out = cli("validate", policy)
    assert out.returncode == 0, out.stderr
    assert "labels 3" in out.stdout and "flows 1" in out.stdout


CASES = """\
[[cases]]
name = "no mail after a fetch"
expect = "deny"
rule = "staff"
[cases.request]
principal = { subject = "alice", roles = ["staff"] }
action = "tools/call"
server = "mail"
target = "send_email"
time = "2026-01-05T10:20:00Z"
history = [{ action = "tools/call", server = "web", target = "fetch", time = "2026-01-05T10:00:00Z" }]

[[cases]]
name = "mail again once the window is over"
expect = "allow"
[cases.request]
principal = { subject = "alice", roles = ["staff"] }
action = "tools/call"
server = "mail"
target = "send_email"
time = "2026-01-05T10:40:00Z"
history = [{ action = "tools/call", server = "web", target = "fetch", time = "2026-01-05T10:00:00Z" }]
"""


def test_policy_test_replays_the_history_of_a_case(tmp_path: Path) -> None:
    policy, _ = write(tmp_path)
    (tmp_path / "cases.toml").write_text(CASES)
    out = cli("test", "--policy", policy, "--cases", str(tmp_path / "cases.toml"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "PASS no mail after a fetch: deny (rule staff)" in out.stdout
    assert "2 passed, 0 failed" in out.stdout


def test_policy_test_names_a_bad_history_entry(tmp_path: Path) -> None:
    policy, _ = write(tmp_path)
    bad = CASES.replace('time = "2026-01-05T10:00:00Z"', 'time = "2026-01-05T11:00:00Z"', 1)
    (tmp_path / "cases.toml").write_text(bad)
    out = cli("test", "--policy", policy, "--cases", str(tmp_path / "cases.toml"))
    assert out.returncode == 2
    assert "cases.toml:11: cases[0].request.history[0].time" in out.stderr
    assert "after the request's" in out.stderr


def test_a_case_error_names_the_line_inside_its_request_table(tmp_path: Path) -> None:
    policy, _ = write(tmp_path)
    second = CASES.index("[[cases]]", 1)  # the typo goes into the second case only
    bad = CASES[:second] + CASES[second:].replace('action = "tools/call"', 'action = "tools/cal"', 1)
    assert bad != CASES
    (tmp_path / "cases.toml").write_text(bad)
    out = cli("test", "--policy", policy, "--cases", str(tmp_path / "cases.toml"))
    assert out.returncode == 2
    assert "cases.toml:18: cases[1].request.action: unknown action 'tools/cal'" in out.stderr


@given(st.lists(st.lists(st.sampled_from(["a", "b", "c"]), unique=True), min_size=1, max_size=5))
def test_locator_places_each_key_of_a_sub_table_of_an_array_element(tables: list[list[str]]) -> None:
    lines: list[str] = []
    expected: dict[tuple[Any, ...], int] = {}
    for i, keys in enumerate(tables):
        lines += ["[[cases]]", f'name = "case {i}"', "[cases.request]"]
        for key in keys:
            lines.append(f"{key} = 1")
            expected[("cases", i, "request", key)] = len(lines)
    locator = toml_lines("\n".join(lines))
    for path, line in expected.items():
        assert locator.line(path) == line


def test_the_flows_example_case_file_passes() -> None:
    here = Path(__file__).resolve().parent.parent / "examples" / "flows"
    out = cli("test", "--policy", str(here / "policy.toml"), "--cases", str(here / "cases.toml"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "4 passed, 0 failed" in out.stdout


def test_every_unknown_label_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    text = POLICY.replace('after = ["untrusted-input"]', 'after = ["untrusted-inptu"]').replace(
        'deny = ["external-output"]', 'deny = ["external-outptu"]'
    )
    (tmp_path / "policy.toml").write_text(text)
    out = cli("validate", str(tmp_path / "policy.toml"))
    assert out.returncode == 2
    lines = out.stderr.splitlines()
    assert len(lines) == 2, out.stderr
    assert "flows[0].after[0]: unknown label 'untrusted-inptu' (did you mean 'untrusted-input'?)" in lines[0]
    assert "flows[0].deny[0]: unknown label 'external-outptu' (did you mean 'external-output'?)" in lines[1]
