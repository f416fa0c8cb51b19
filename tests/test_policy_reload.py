"""Hot reload: a changed file takes over, an invalid one is reported and the old policy stays in force."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from mcp_guard.errors import PolicyError
from mcp_guard.model import AccessRequest, Principal
from mcp_guard.policy import CompiledPolicy, ReloadingPolicy
from mcp_guard.protocols import PolicyEngine

ALLOW_A = '[[rules]]\nid = "a"\neffect = "allow"\ntools = ["a"]\n'
ALLOW_B = '[[rules]]\nid = "b"\neffect = "allow"\ntools = ["b", "bb"]\n'
WHO = Principal("alice")


def allowed(p: PolicyEngine, tool: str) -> bool:
    d = p.decide(WHO, AccessRequest("tools/call", "call", "s", "tool", tool))
    assert not hasattr(d, "__await__")
    return bool(d.allowed)  # type: ignore[union-attr]


def rewrite(path: Path, text: str) -> None:
    before = path.stat().st_mtime_ns
    path.write_text(text)
    os.utime(path, ns=(before + 10**9, before + 10**9))  # a visible change even on coarse clocks


def test_reload_on_change_and_keep_old_on_error(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(ALLOW_A)
    errors: list[PolicyError] = []
    reloaded: list[CompiledPolicy] = []
    p = ReloadingPolicy(path, on_error=errors.append, on_reload=reloaded.append)
    assert isinstance(p, PolicyEngine)
    assert allowed(p, "a") and not allowed(p, "b")
    v1 = p.version
    assert p.reload(force=False) is False  # unchanged: nothing to do
    rewrite(path, ALLOW_B)
    assert p.reload(force=False) is True
    assert allowed(p, "b") and not allowed(p, "a") and p.version != v1 and reloaded == [p.current]
    rewrite(path, ALLOW_B.replace('"allow"', '"permit"'))
    assert p.reload() is False
    assert len(errors) == 1 and errors[0].field == "rules[0].effect" and errors[0].line == 3
    assert p.last_error is errors[0]
    assert allowed(p, "b")  # the last good policy is still in force
    path.unlink()
    assert p.reload() is False and "cannot read" in str(errors[-1])
    assert allowed(p, "b")


def test_background_polling_picks_up_changes(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(ALLOW_A)
    with ReloadingPolicy([path], interval=0.05) as p:
        rewrite(path, ALLOW_B)
        deadline = time.monotonic() + 10
        while not allowed(p, "b") and time.monotonic() < deadline:
            time.sleep(0.02)
        assert allowed(p, "b")
    assert p._thread is None


def test_first_load_must_succeed_and_callbacks_cannot_break_reload(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text("rules = 3\n")
    with pytest.raises(PolicyError, match="rules"):
        ReloadingPolicy(path)
    path.write_text(ALLOW_A)

    def explode(_: object) -> None:
        raise RuntimeError("callback bug")

    p = ReloadingPolicy(path, on_error=explode, on_reload=explode)
    rewrite(path, ALLOW_B)
    assert p.reload() is True and allowed(p, "b")
    rewrite(path, "nonsense = [")
    assert p.reload() is False and allowed(p, "b")


def test_decisions_stay_consistent_while_reloading(tmp_path: Path) -> None:
    import threading

    path = tmp_path / "policy.toml"
    path.write_text(ALLOW_A)
    p = ReloadingPolicy(path)
    problems: list[str] = []
    stop = threading.Event()

    def decide_loop() -> None:
        while not stop.is_set():
            a, b = allowed(p, "a"), allowed(p, "b")
            if a == b:  # each policy allows exactly one of the two
                current = p.current
                if allowed(current, "a") == allowed(current, "b"):
                    problems.append("inconsistent policy")

    workers = [threading.Thread(target=decide_loop) for _ in range(3)]
    for w in workers:
        w.start()
    for i in range(20):
        rewrite(path, ALLOW_B if i % 2 == 0 else ALLOW_A)
        assert p.reload() is True
    stop.set()
    for w in workers:
        w.join()
    assert problems == []


def test_reloads_are_audited_and_earlier_callbacks_still_run(tmp_path: Path) -> None:
    from mcp_guard.policy import audit_reloads

    from .test_authn_jwt import Recorder

    path = tmp_path / "policy.toml"
    path.write_text(ALLOW_A)
    errors: list[PolicyError] = []
    auditor = Recorder()
    p = audit_reloads(ReloadingPolicy(path, on_error=errors.append), auditor)
    rewrite(path, ALLOW_A.replace("tools =", "tool ="))
    assert p.reload() is False
    assert allowed(p, "a")  # the old policy stays in force
    (event,) = auditor.events
    assert event.event == "lifecycle" and event.method == "policy/reload" and event.decision == "error"
    assert "previous policy stays in force" in event.reasons[0]
    assert "policy.toml:4" in event.reasons[0] and "rules[0].tool" in event.reasons[0]
    assert len(errors) == 1  # the callback given first still ran
    rewrite(path, ALLOW_B)
    assert p.reload() is True
    assert auditor.events[-1].decision == "allow"
    assert "1 rules" in auditor.events[-1].reasons[0] and allowed(p, "b")


def test_zero_poll_interval_means_explicit_reloads_only(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text('version = 1\n[[rules]]\nid = "a"\neffect = "allow"\ntools = ["x"]\n')
    policy = ReloadingPolicy([path], interval=0).start()
    assert policy._thread is None
    policy.stop()


def test_a_reloading_policy_explains_hidden_items_like_the_compiled_one(tmp_path: Path) -> None:
    """The audit names the rule or default deny that hides a listed item, not the wrapper's class."""
    path = tmp_path / "policy.toml"
    path.write_text(ALLOW_A)
    p = ReloadingPolicy(path)
    principal = Principal("u", roles=frozenset({"r"}))
    assert p.hiding_rule(principal, "s", "tool", "b") == p.current.hiding_rule(principal, "s", "tool", "b")
    assert "ReloadingPolicy" not in p.hiding_rule(principal, "s", "tool", "b")
