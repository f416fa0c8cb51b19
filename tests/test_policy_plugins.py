"""Plugins: condition functions (direct, entry points), chained engines, the documented example."""

from __future__ import annotations

import asyncio
import runpy
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mcp_guard.errors import PolicyError
from mcp_guard.model import AccessRequest, Decision, Obligation, Principal
from mcp_guard.policy import ChainedPolicy, load_policy_text, policy_from_dict
from mcp_guard.policy import conditions as conditions_module

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "policy_plugin.py"
WHO = Principal("alice", roles={"ops"})


def call(tool: str, **arguments: Any) -> AccessRequest:
    return AccessRequest("tools/call", "call", "s", "tool", tool, arguments)


def test_directly_registered_condition_function() -> None:
    approved = {"CHG-1"}

    def ticket_ok(ticket: str) -> bool:
        return ticket in approved

    p = policy_from_dict(
        {
            "rules": [
                {
                    "id": "deploy",
                    "effect": "allow",
                    "tools": ["deploy"],
                    "when": "ticket_ok(request.arguments.ticket)",
                }
            ]
        },
        functions={"ticket_ok": ticket_ok},
    )
    assert p.decide(WHO, call("deploy", ticket="CHG-1")).allowed
    assert not p.decide(WHO, call("deploy", ticket="CHG-2")).allowed
    assert not p.decide(WHO, call("deploy")).allowed  # missing argument: evaluation error
    with pytest.raises(PolicyError, match="unknown function 'ticket_ok'"):
        policy_from_dict({"rules": [{"id": "d", "effect": "allow", "when": "ticket_ok('x')"}]})
    with pytest.raises(PolicyError, match="takes 1 argument"):
        policy_from_dict(
            {"rules": [{"id": "d", "effect": "allow", "when": "ticket_ok('x', 2)"}]},
            functions={"ticket_ok": ticket_ok},
        )


def test_a_raising_plugin_fails_closed() -> None:
    def broken(_: Any) -> bool:
        raise RuntimeError("backend down")

    p = policy_from_dict(
        {
            "rules": [
                {"id": "a", "effect": "allow", "tools": ["x"], "when": "broken(1)"},
                {"id": "base", "effect": "allow", "tools": ["y"]},
                {"id": "d", "effect": "deny", "tools": ["y"], "when": "broken(1)"},
            ]
        },
        functions={"broken": broken},
    )
    assert not p.decide(WHO, call("x")).allowed
    d = p.decide(WHO, call("y"))
    assert not d.allowed and d.rule == "d" and "backend down" in " ".join(d.reasons)


def test_invalid_function_names_are_rejected() -> None:
    for name in ("in_cidr", "size", "has", "bad-name"):
        with pytest.raises(PolicyError, match="invalid or reserved"):
            policy_from_dict({}, functions={name: lambda x: x})
    with pytest.raises(PolicyError, match="not callable"):
        policy_from_dict({}, functions={"f": 3})  # type: ignore[dict-item]


@pytest.fixture
def installed_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    dist = tmp_path / "acme_conditions-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-conditions\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[mcp_guard.conditions]\nis_weekday_name = acme_conditions_mod:weekday\n"
    )
    (tmp_path / "acme_conditions_mod.py").write_text(
        "def weekday(name):\n    return name in ('mon', 'tue', 'wed', 'thu', 'fri')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    conditions_module._entry_point_functions.cache_clear()
    yield
    conditions_module._entry_point_functions.cache_clear()


def test_entry_point_condition_functions(installed_plugin: None) -> None:
    p = load_policy_text(
        '[[rules]]\nid = "w"\neffect = "allow"\nwhen = "is_weekday_name(request.arguments.day)"\n'
    )
    assert p.decide(WHO, call("t", day="mon")).allowed
    assert not p.decide(WHO, call("t", day="sun")).allowed
    override = load_policy_text(
        '[[rules]]\nid = "w"\neffect = "allow"\nwhen = "is_weekday_name(request.arguments.day)"\n',
        functions={"is_weekday_name": lambda day: day == "sun"},
    )
    assert override.decide(WHO, call("t", day="sun")).allowed


class _Fixed:
    def __init__(self, decision: Decision, visible: bool = True) -> None:
        self.decision, self._visible, self.calls = decision, visible, 0

    def decide(self, principal: Principal, request: AccessRequest) -> Decision:
        self.calls += 1
        return self.decision

    def visible(self, principal: Principal, server: str, kind: str, name: str) -> bool:
        return self._visible


class _Async(_Fixed):
    async def decide(self, principal: Principal, request: AccessRequest) -> Decision:  # type: ignore[override]
        await asyncio.sleep(0)
        self.calls += 1
        return self.decision


class _Broken(_Fixed):
    def decide(self, principal: Principal, request: AccessRequest) -> Decision:
        raise RuntimeError("boom")


BUILTIN = policy_from_dict(
    {"rules": [{"id": "all", "effect": "allow", "tools": ["*"], "redact": ["secret"]}]}
)


def test_chained_policy_sync() -> None:
    allow = _Fixed(Decision(True, "ext", ("external ok",), (Obligation("step_up", {"max_age": 60}),)))
    d = ChainedPolicy([BUILTIN, allow]).decide(WHO, call("x"))
    assert isinstance(d, Decision) and d.allowed and d.rule == "all"
    assert [o.kind for o in d.obligations] == ["redact", "step_up"]
    deny = _Fixed(Decision(False, "risk", ("risk too high",)))
    later = _Fixed(Decision(True))
    d = ChainedPolicy([BUILTIN, deny, later]).decide(WHO, call("x"))
    assert isinstance(d, Decision) and not d.allowed and d.rule == "risk" and later.calls == 0
    d = ChainedPolicy([_Broken(Decision(True)), BUILTIN]).decide(WHO, call("x"))
    assert isinstance(d, Decision) and not d.allowed and "boom" in d.reasons[0]
    chain = ChainedPolicy([BUILTIN, _Fixed(Decision(True), visible=False)])
    assert not chain.visible(WHO, "s", "tool", "x")
    assert ChainedPolicy([BUILTIN, _Fixed(Decision(True))]).visible(WHO, "s", "tool", "x")
    with pytest.raises(ValueError):
        ChainedPolicy([])


async def test_chained_policy_async_members() -> None:
    remote = _Async(Decision(False, "pdp", ("remote deny",)))
    result = ChainedPolicy([BUILTIN, remote]).decide(WHO, call("x"))
    assert not isinstance(result, Decision)
    d = await result  # type: ignore[misc]
    assert not d.allowed and d.rule == "pdp"
    ok = _Async(Decision(True, "pdp"))
    d = await ChainedPolicy([ok, BUILTIN, _Async(Decision(True))]).decide(WHO, call("x"))  # type: ignore[misc]
    assert d.allowed and d.rule == "pdp" and [o.kind for o in d.obligations] == ["redact"]
    # a sync deny before any async member answers synchronously; the async member is never started
    sync_deny = ChainedPolicy([_Fixed(Decision(False, "no")), remote]).decide(WHO, call("x"))
    assert isinstance(sync_deny, Decision) and not sync_deny.allowed


def test_documented_example_runs() -> None:
    out = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "deploy with approved ticket during freeze: deny (rule change-freeze)" in out.stdout
    assert "deploy with approved ticket: allow (rule deploy-with-ticket)" in out.stdout
    assert "deploy without ticket: deny" in out.stdout
    namespace = runpy.run_path(str(EXAMPLE))
    policy = namespace["build_policy"]()
    assert policy.decide(Principal("ci", roles={"deployer"}), call("deploy", ticket="CHG-7")).allowed


def test_chain_version_follows_its_members(tmp_path: Path) -> None:
    from mcp_guard.policy import AllowListPolicy, ReloadingPolicy

    path = tmp_path / "p.toml"
    path.write_text('[[rules]]\nid = "a"\neffect = "allow"\ntools = ["a"]\n')
    live = ReloadingPolicy(path)
    chain = ChainedPolicy([AllowListPolicy(tools=["*"]), live])
    before = chain.version
    assert chain.version == before
    assert live.reload() is True
    assert chain.version != before


def test_deeply_nested_condition_is_a_load_error() -> None:
    with pytest.raises(PolicyError, match=r"rules\[0\]\.when"):
        policy_from_dict(
            {"rules": [{"id": "d", "effect": "allow", "when": "(" * 3000 + "true" + ")" * 3000}]}
        )
