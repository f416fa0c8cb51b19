"""Condition functions without a package: ``--functions module:attr`` and ``[guard] policy_functions``.

A policy calling a custom function could only be checked offline or served
from ``guard.toml`` when the function was published as an entry point; a
module next to the policy is enough now. ``Guard.from_config`` takes
``functions=`` too, and ``extra_sanitizers=`` adds to the built-in sanitizer.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import anyio
import pytest

from mcp_guard import Guard
from mcp_guard.config import load_config
from mcp_guard.errors import PolicyError
from mcp_guard.policy.functionrefs import import_functions
from mcp_guard.sanitize import DefaultSanitizer
from tests.test_policy_cli import cli

POLICY = """\
[[rules]]
id = "pay-within-limit"
effect = "allow"
tools = ["pay"]
when = 'within_limit(request.arguments.amount)'
"""
MODULE = """\
def within_limit(amount):
    return amount <= 1000

FUNCTIONS = {"within_limit": within_limit}
"""
REQUEST = {
    "principal": {"subject": "pat"},
    "action": "tools/call",
    "server": "ledger",
    "target": "pay",
    "arguments": {"amount": 700},
}


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    module = f"ledger_rules_{uuid.uuid4().hex[:8]}"  # a fresh name: no module cached by another test
    (tmp_path / f"{module}.py").write_text(MODULE)
    (tmp_path / "policy.toml").write_text(POLICY)
    (tmp_path / "req.json").write_text(json.dumps(REQUEST))
    monkeypatch.chdir(tmp_path)
    return tmp_path, module


def test_without_the_function_the_policy_does_not_load(workdir: tuple[Path, str]) -> None:
    out = cli("validate", "policy.toml")
    assert out.returncode == 2 and "within_limit" in out.stderr


@pytest.mark.parametrize("attr", ["within_limit", "FUNCTIONS"])
def test_the_cli_takes_functions_by_reference(workdir: tuple[Path, str], attr: str) -> None:
    _, module = workdir
    out = cli("check", "--policy", "policy.toml", "--request", "req.json", "--functions", f"{module}:{attr}")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["decision"] == "allow"
    assert cli("validate", "policy.toml", "--functions", f"{module}:{attr}").returncode == 0


def test_a_misspelt_reference_says_what_was_meant(workdir: tuple[Path, str]) -> None:
    _, module = workdir
    out = cli("validate", "policy.toml", "--functions", f"{module}:within_limt")
    assert out.returncode == 2
    assert "--functions" in out.stderr and "did you mean 'within_limit'?" in out.stderr
    with pytest.raises(PolicyError, match="name a function as 'module:attr'"):
        import_functions(["no_colon"])
    with pytest.raises(PolicyError, match="cannot import 'no_such_module_here'"):
        import_functions(["no_such_module_here:f"])


def test_guard_toml_names_functions_and_from_config_takes_them(workdir: tuple[Path, str]) -> None:
    base, module = workdir
    plain = '[guard]\npolicy = "policy.toml"\nstate = "memory://"\naudit = ["logging://"]\n'
    (base / "guard.toml").write_text(plain + f'policy_functions = ["{module}:FUNCTIONS"]\n')
    guard = Guard.from_config(load_config(base / "guard.toml"))
    anyio.run(guard.aclose)
    (base / "plain.toml").write_text(
        '[guard]\npolicy = "policy.toml"\nstate = "memory://"\naudit = ["logging://"]\n'
    )
    with pytest.raises(PolicyError, match="within_limit"):
        Guard.from_config(load_config(base / "plain.toml"))
    guard = Guard.from_config(load_config(base / "plain.toml"), functions={"within_limit": lambda n: n < 5})
    anyio.run(guard.aclose)


def test_extra_sanitizers_add_to_the_built_in_one(workdir: tuple[Path, str]) -> None:
    base, _ = workdir
    (base / "guard.toml").write_text('[guard]\nstate = "memory://"\naudit = ["logging://"]\n')

    class Mine:
        name = "mine"

    mine = Mine()
    guard = Guard.from_config(load_config(base / "guard.toml"), extra_sanitizers=[mine])
    assert isinstance(guard.sanitizers[0], DefaultSanitizer) and guard.sanitizers[1] is mine
    replaced = Guard.from_config(load_config(base / "guard.toml"), sanitizers=[mine])
    assert replaced.sanitizers == (mine,)
    anyio.run(guard.aclose)
    anyio.run(replaced.aclose)
