"""``mcp-guard approvals`` and ``audit query --approval`` against a guard built from guard.toml."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from mcp_guard.authn.chain import AuthenticatorChain
from mcp_guard.cli.main import main
from mcp_guard.errors import APPROVAL_PENDING
from mcp_guard.guard import Guard
from mcp_guard.model import Principal

from .test_hitl_approvals import bank

POLICY = """\
[roles.admin]
subjects = ["root"]

[roles.finance-lead]
inherits = ["admin"]

[[rules]]
id = "transfers"
effect = "allow"
roles = ["ops"]
tools = ["transfer"]
approval = { approvers = ["admin"], timeout = "10m" }
"""


def setup(tmp_path: Path) -> Path:
    (tmp_path / "policy.toml").write_text(POLICY)
    config = tmp_path / "guard.toml"
    config.write_text(
        '[guard]\npolicy = "policy.toml"\nstate = "sqlite:///state.db"\naudit = ["sqlite:///audit.db"]\n\n'
        '[[authn.api_keys]]\nsubject = "lena"\nkey_sha256 = "' + "ab" * 32 + '"\nroles = ["finance-lead"]\n\n'
        '[[authn.api_keys]]\nsubject = "olga"\nkey_sha256 = "' + "cd" * 32 + '"\nroles = ["ops", "admin"]\n'
    )
    return config


async def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = await anyio.to_thread.run_sync(main, list(argv))  # the CLI runs its own event loop
    out, err = capsys.readouterr()
    return code, out, err


async def call(config: Path, args: dict[str, Any]) -> Any:
    olga = Principal("olga", roles=frozenset({"ops", "admin"}))
    guard = Guard.from_config(config, resolver=AuthenticatorChain((), olga))
    server = bank()
    guard.protect(server, read_env=False)
    try:
        async with Client(server) as client:
            try:
                return await client.call_tool("transfer", args)
            except MCPError as exc:
                return exc  # raised out of the client's task group it would come wrapped in a group
    finally:
        await guard.aclose()


async def refused(config: Path, args: dict[str, Any]) -> MCPError:
    outcome = await call(config, args)
    assert isinstance(outcome, MCPError), outcome
    return outcome


async def test_list_approve_deny_and_query(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = setup(tmp_path)
    args = {"amount": 5, "to": "bob", "password": "hunter2"}
    pending = await refused(config, args)
    assert pending.error.code == APPROVAL_PENDING
    request_id = pending.error.data["approvalId"]

    code, out, _ = await cli(capsys, "approvals", "list", "--config", str(config), "--json")
    (record,) = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and list(record) == [
        "id", "status", "subject", "tenant", "server", "target", "arguments", "arguments_truncated", "rule",
        "requested_at", "expires_at", "decided_by", "note",
    ]  # fmt: skip
    assert record["id"] == request_id and record["status"] == "pending"
    assert record["subject"] == "olga" and record["target"] == "transfer" and record["rule"] == "transfers"
    assert record["arguments"]["amount"] == 5 and record["arguments"]["password"] != "hunter2"

    approve = ("approvals", "approve", request_id, "--config", str(config))
    code, _, err = await cli(capsys, *approve, "--as", "olga")  # holds admin, but asked for it
    assert code == 1 and "their own request" in err
    code, _, err = await cli(capsys, *approve, "--as", "mallory")  # unknown: no roles at all
    assert code == 1 and "none of the approver roles" in err
    code, out, _ = await cli(capsys, *approve, "--as", "lena", "--note", "ticket 7")  # admin by inheritance
    assert code == 0 and f"{request_id} approved by lena" in out
    code, _, err = await cli(capsys, *approve, "--as", "root")
    assert code == 1 and "not pending" in err
    cfg = ("--config", str(config))
    code, _, err = await cli(capsys, "approvals", "deny", "apr-000000000000", "--as", "root", *cfg)
    assert code == 1 and "no approval request" in err

    result = await call(config, args)
    assert result.is_error is False
    code, out, _ = await cli(capsys, "approvals", "list", "--config", str(config))
    assert code == 0 and "no pending approval requests" in out
    code, out, _ = await cli(capsys, "approvals", "list", "--all", "--json", "--config", str(config))
    (used,) = [json.loads(line) for line in out.splitlines()]
    assert (used["status"], used["decided_by"], used["note"]) == ("used", "lena", "ticket 7")

    code, out, _ = await cli(capsys, "audit", "query", "--approval", request_id, "--json", *cfg)
    events = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [(e["decision"], e["approval"]["status"]) for e in events] == [
        ("deny", "pending"),
        ("allow", "approved"),  # the decision itself, audited by the command that made it
        ("allow", "used"),
    ]
    assert (events[1]["event"], events[1]["method"]) == ("admin", "cli/approvals.approve")
    assert events[2]["approval"]["decided_by"] == "lena" and events[2]["approval"]["requested_by"] == "olga"

    # A denial, decided by a member of the policy's [roles.admin] subjects.
    other = (await refused(config, {"amount": 9, "to": "eve"})).error.data["approvalId"]
    code, out, _ = await cli(
        capsys, "approvals", "deny", other, "--as", "root", "--note", "not today", "--json", *cfg
    )
    assert code == 0 and json.loads(out)["status"] == "denied"
    denied = (await refused(config, {"amount": 9, "to": "eve"})).error
    assert (
        denied.message == f"Access denied: approval {other} was denied: not today"
    )  # the note is for the caller
    assert denied.data == {"approvalId": other, "status": "denied"}
