"""``mcp-guard policy explain`` and ``validate`` with ``[[budgets]]``: which apply, the cost, the state."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from mcp_guard.budgets import Budgets
from mcp_guard.model import AccessRequest, Principal
from mcp_guard.policy import load_policy
from mcp_guard.store import open_store

from .test_policy_cli import REQUEST, cli

POLICY = """\
version = 1
[[rules]]
id = "query"
effect = "allow"
roles = ["analyst"]
servers = ["db"]
tools = ["query"]
[[budgets]]
id = "daily-cost"
per = "tenant"
period = "1d"
limit = 50
servers = ["db"]
cost = { "query" = 5 }
[[budgets]]
id = "files-only"
period = "1h"
limit = 3
servers = ["files"]
"""


def write(tmp_path: Path) -> tuple[str, str]:
    (tmp_path / "policy.toml").write_text(POLICY)
    (tmp_path / "request.json").write_text(json.dumps(REQUEST))
    return str(tmp_path / "policy.toml"), str(tmp_path / "request.json")


def test_explain_lists_the_budgets_that_apply_and_the_cost(tmp_path: Path) -> None:
    policy, request = write(tmp_path)
    out = cli("explain", "--policy", policy, "--request", request, "--json")
    assert out.returncode == 0, out.stderr
    budgets = json.loads(out.stdout)["budgets"]
    assert [(b["budget"], b["applies"], b["cost"]) for b in budgets] == [
        ("daily-cost", True, 5),
        ("files-only", False, 1),
    ]
    assert "server 'db' not in servers ['files']" in budgets[1]["reason"]
    text = cli("explain", "--policy", policy, "--request", request).stdout
    assert "budgets:\n  CHARGE daily-cost: cost 5 of 50 per 86400s per tenant" in text


def test_explain_with_state_reads_the_current_use_without_charging(tmp_path: Path) -> None:
    policy, request = write(tmp_path)
    url = f"sqlite:///{tmp_path / 'state.db'}"
    charges = load_policy(policy).budgets_for(
        Principal("bob", roles=frozenset({"analyst"}), tenant="acme"),
        AccessRequest("tools/call", "call", "db", "tool", "query"),
    )

    async def spend() -> None:
        store = open_store(url)
        try:
            for _ in range(3):
                await Budgets(store).charge(Principal("bob", tenant="acme"), charges)
        finally:
            await store.aclose()

    asyncio.run(spend())
    for _ in range(2):  # reading twice shows the same figure: explain charges nothing
        out = cli("explain", "--policy", policy, "--request", request, "--json", "--state", url)
        assert out.returncode == 0, out.stderr
        entry = json.loads(out.stdout)["budgets"][0]
        assert (entry["owner"], entry["used"], entry["remaining"]) == ("acme", 15, 35)
        assert entry["resets_at"].endswith("T00:00:00Z")
    text = cli("explain", "--policy", policy, "--request", request, "--state", url).stdout
    assert "acme used 15/50, resets" in text


def test_validate_counts_budgets(tmp_path: Path) -> None:
    policy, _ = write(tmp_path)
    out = cli("validate", policy)
    assert out.returncode == 0 and "budgets 2" in out.stdout
