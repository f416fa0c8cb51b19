"""What an operator needs to find in the trail and the logs: admin actions, refused keys' owners, causes.

Each test stands for a place where someone running the portal from the docs had to guess or read
source: the admin commands could not be listed, a revoked key's refusals named nobody, an upstream
failure said only "ExceptionGroup", and ``servers add --command python`` did not mean what the same
line in the config file means.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import anyio
import pytest

from mcp_guard.audit.query import Filters, query
from mcp_guard.authn.api_keys import ApiKeyAuthenticator, create_api_key, revoke_api_key
from mcp_guard.authn.chain import AuthenticatorChain
from mcp_guard.config import UpstreamSection
from mcp_guard.errors import AuthenticationError
from mcp_guard.model import AuditEvent
from mcp_guard.portal.upstream import describe_failure, own_interpreter
from mcp_guard.protocols import Credential
from mcp_guard.store import open_store
from tests.test_cli_audit_trail import cli, config, events  # noqa: F401  (fixture)


def test_admin_commands_are_found_by_event_kind_and_method_prefix(
    config: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli(capsys, "keys", "create", "--subject", "carol", "--json", "--config", str(config))[0] == 0
    assert cli(capsys, "policy", "reload", "--config", str(config))[0] in (0, 1)
    stored = events(config)
    assert stored, "the commands left no events"
    db = config.parent / "trail" / "audit.db"
    by_kind = query(db, Filters(kind="admin"))
    by_prefix = query(db, Filters(method="cli/*"))
    assert [r["id"] for r in by_kind] == [e["id"] for e in stored if e["event"] == "admin"]
    assert [r["id"] for r in by_prefix] == [r["id"] for r in by_kind]
    assert {r["method"] for r in by_prefix} >= {"cli/keys.create"}
    assert query(db, Filters(kind="request")) == []
    assert query(db, Filters(method="cli/keys.create"))  # an exact method still matches itself
    assert query(db, Filters(method="cli/keys")) == []  # and nothing else without the star

    code, out, _ = cli(capsys, "audit", "query", "--config", str(config), "--event", "admin", "--json")
    assert code == 0 and len(out.splitlines()) == len(by_kind)
    code, out, _ = cli(capsys, "audit", "query", "--config", str(config), "--method", "cli/*", "--json")
    assert code == 0 and len(out.splitlines()) == len(by_kind)
    code, _, err = cli(capsys, "audit", "query", "--config", str(config), "--event", "admn")
    assert code == 2 and "invalid choice" in err


def test_jsonl_trails_filter_the_same_way(tmp_path: Path) -> None:
    from mcp_guard.audit.query import _matches

    admin = {"method": "cli/keys.create", "event": "admin", "decision": "allow"}
    call = {"method": "tools/call", "event": "request", "decision": "allow"}
    old = {"method": "tools/call", "decision": "allow"}  # a record from before ``event`` existed
    assert [_matches(r, Filters(kind="admin")) for r in (admin, call, old)] == [True, False, False]
    assert [_matches(r, Filters(kind="request")) for r in (admin, call, old)] == [False, True, True]
    assert [_matches(r, Filters(method="tools/*")) for r in (admin, call, old)] == [False, True, True]


class _Recorder:
    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    def record(self, event: AuditEvent) -> None:
        self.events.append(event)


def test_a_revoked_or_expired_keys_refusal_names_its_owner_and_a_forgery_names_nobody(tmp_path: Path) -> None:
    async def main() -> None:
        store = open_store(f"sqlite:///{tmp_path / 'state.db'}", base_dir=tmp_path)
        try:
            keys = ApiKeyAuthenticator(store=store)
            revoked, record = await create_api_key(store, "carol", roles={"clerk"}, tenant="acme")
            expired, _ = await create_api_key(store, "dave", roles={"clerk"}, expires_in=-1)
            assert await revoke_api_key(store, record.id)
            recorder = _Recorder()
            chain = AuthenticatorChain([keys], auditor=recorder)
            for token in (revoked, expired, revoked[:-4] + "AAAA"):
                with pytest.raises(AuthenticationError) as caught:
                    await chain.resolve(Credential(token, "http"))
                assert caught.value.public_message == "Authentication required"
            first, second, forged = recorder.events
            assert first.principal is not None and first.principal["subject"] == "carol"
            assert first.principal["tenant"] == "acme" and "revoked" in first.reasons[0]
            assert second.principal is not None and second.principal["subject"] == "dave"
            assert "expired" in second.reasons[0]
            assert forged.principal is None and "does not match" in forged.reasons[0]
        finally:
            await store.aclose()

    anyio.run(main)


def _group_from_a_task_group(*errors: BaseException) -> BaseException:
    """What a failed upstream connection raises: its causes wrapped by anyio's task groups."""

    async def fail(error: BaseException) -> None:
        raise error

    async def main() -> None:
        async with anyio.create_task_group() as outer, anyio.create_task_group() as inner:
            outer.start_soon(anyio.sleep, 0)
            for error in errors:
                inner.start_soon(fail, error)

    try:
        anyio.run(main)
    except BaseException as exc:
        return exc
    raise AssertionError("the task group did not fail")


def test_an_upstream_failure_names_its_cause_not_the_group() -> None:
    group = _group_from_a_task_group(ModuleNotFoundError("No module named 'mcp_server_time'"))
    assert "sub-exception" in str(group)  # what the log said before
    assert describe_failure(group) == "ModuleNotFoundError: No module named 'mcp_server_time'"
    assert describe_failure(ConnectionRefusedError("refused")) == "ConnectionRefusedError: refused"
    two = describe_failure(_group_from_a_task_group(ValueError("a"), OSError("b")))
    assert sorted(two.split("; ")) == ["OSError: b", "ValueError: a"]


def test_python_means_the_portals_interpreter_for_registered_servers_too() -> None:
    spec = UpstreamSection.model_validate({"name": "clock", "command": "python", "args": ["-m", "x"]})
    assert own_interpreter(spec).command == sys.executable
    other = UpstreamSection.model_validate({"name": "n", "command": "node"})
    assert own_interpreter(other) is other


def test_servers_add_prints_a_follow_up_that_works_from_anywhere(
    config: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = cli(
        capsys, "servers", "add", "clock", "--command", "python", "--arg=-m", "--config", str(config)
    )
    assert code == 0, err
    assert f"mcp-guard servers approve clock --config {config.resolve()}" in out
    stored = [e for e in events(config) if e["method"] == "cli/servers.add"]
    assert stored and json.dumps(stored[0])
