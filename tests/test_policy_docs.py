"""docs/policy.md and examples/policies stay true: their snippets load and give the decisions they claim."""

from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mcp_guard.cli.main import main
from mcp_guard.policy import load_policy, load_policy_text
from mcp_guard.policy.requests import load_cases, parse_request, run_cases

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "policy.md").read_text()


def blocks(lang: str) -> list[str]:
    return [textwrap_dedent(b) for b in re.findall(rf"```{lang}\n(.*?)```", DOC, re.DOTALL)]


def textwrap_dedent(text: str) -> str:
    import textwrap

    return textwrap.dedent(text)


def test_the_first_example_gives_the_documented_decision() -> None:
    policy = load_policy_text(blocks("toml")[0], source="docs/policy.md")
    console = blocks("console")[0]
    request_text = console.split("$ cat request.json\n", 1)[1].split("$ mcp-guard", 1)[0]
    principal, request = parse_request(request_text, "docs")
    decision = policy.decide(principal, request)
    documented = json.loads(console.strip().splitlines()[-1])
    assert {
        "decision": decision.effect,
        "rule": decision.rule,
        "reasons": list(decision.reasons),
    } == documented


@pytest.mark.parametrize("index", [1, 3, 4, 5])
def test_standalone_snippets_load(index: int) -> None:
    load_policy_text(blocks("toml")[index], source=f"docs/policy.md block {index}")


def test_cookbook_conditions_compile() -> None:
    cookbook = blocks("toml")[2]
    lines = [line for line in cookbook.splitlines() if line.startswith("when = ")]
    assert len(lines) >= 5
    for i, line in enumerate(lines):
        load_policy_text(f'timezone = "Europe/Paris"\n[[rules]]\nid = "r{i}"\neffect = "allow"\n{line}\n')


def test_documented_case_file_passes_against_the_first_example() -> None:
    policy = load_policy_text(blocks("toml")[0])
    (case_file,) = [b for b in blocks("toml") if "[[cases]]" in b]
    cases = load_cases(case_file, "toml", "docs/policy.md")
    assert all(r.passed for r in run_cases(policy, cases))


def test_documented_human_in_the_loop_rule_loads_with_its_obligations() -> None:
    (block,) = [b for b in blocks("toml") if 'id = "transfers"' in b]
    (rule,) = load_policy_text(block, source="docs/policy.md").rules
    assert [o.kind for o in rule.obligations] == ["step_up", "confirm", "approval"]


def test_documented_plugin_output_matches_the_example() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "policy_plugin.py")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    documented = blocks("console")[1].split("\n", 1)[1]
    assert out.stdout == documented


def test_example_team_policy_cases_pass() -> None:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(
            [
                "policy",
                "test",
                "--policy",
                str(ROOT / "examples" / "policies" / "team.toml"),
                "--cases",
                str(ROOT / "examples" / "policies" / "team-cases.toml"),
            ]
        )
    assert code == 0, buf.getvalue()
    assert "0 failed" in buf.getvalue()
    assert load_policy(ROOT / "examples" / "policies" / "team.toml").limits[0].id == "queries-per-user"
    assert load_policy(ROOT / "examples" / "policies" / "team.toml").budgets[0].spec.id == "db-daily"
