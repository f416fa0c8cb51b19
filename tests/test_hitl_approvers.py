"""Who may see and decide approval requests from the command line: tenant, roles, safe output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mcp_guard.approvals import ApprovalBook, ApprovalError
from mcp_guard.authn.api_keys import create_api_key
from mcp_guard.store import open_store

from .test_hitl_cli import cli

POLICY = """
[[rules]]
id = "transfers"
effect = "allow"
tools = ["transfer"]
approval = { approvers = ["admin"], timeout = "10m" }
"""


def key(subject: str, roles: str, tenant: str | None, n: int) -> str:
    line = (
        f'\n[[authn.api_keys]]\nsubject = "{subject}"\nkey_sha256 = "{f"{n:02x}" * 32}"\nroles = [{roles}]\n'
    )
    return line + (f'tenant = "{tenant}"\n' if tenant else "")


def setup(tmp_path: Path, extra: str = "") -> Path:
    (tmp_path / "policy.toml").write_text(POLICY)
    config = tmp_path / "guard.toml"
    config.write_text(
        '[guard]\npolicy = "policy.toml"\nstate = "sqlite:///state.db"\n\n[authn]\n'
        + extra
        + key("gus", '"admin"', "globex", 1)
        + key("ada", '"admin"', "acme", 2)
        + key("root", '"admin"', None, 3)
    )
    return config


async def open_request(
    tmp_path: Path, tenant: str | None, target: str = "transfer", subject: str = "olga"
) -> str:
    store = open_store("sqlite:///state.db", base_dir=tmp_path)
    try:
        args: dict[str, Any] = {"amount": 9999, "to": "x"}
        request = await ApprovalBook(store, notifiers=()).open_for(
            subject=subject,
            tenant=tenant,
            server="bank",
            kind="tool",
            target=target,
            arguments=args,
            shown_arguments=args,
            rule="transfers",
            approvers=("admin",),
            timeout=600.0,
        )
        return request.id
    finally:
        await store.aclose()


async def listed(capsys: pytest.CaptureFixture[str], config: Path, *extra: str) -> list[str]:
    code, out, _ = await cli(capsys, "approvals", "list", "--json", "--config", str(config), *extra)
    assert code == 0
    return [json.loads(line)["id"] for line in out.splitlines()]


async def test_approvers_decide_and_see_only_their_own_tenants_requests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = setup(tmp_path)
    acme = await open_request(tmp_path, "acme")
    untenanted = await open_request(tmp_path, None)

    assert sorted(await listed(capsys, config)) == sorted([acme, untenanted])  # the store's owner
    assert await listed(capsys, config, "--as", "gus") == []
    assert await listed(capsys, config, "--as", "ada") == [acme]
    assert await listed(capsys, config, "--as", "root") == [untenanted]
    assert await listed(capsys, config, "--as", "mallory") == []  # holds no approver role

    approve = ("approvals", "approve", acme, "--config", str(config))
    code, _, err = await cli(capsys, *approve, "--as", "gus")
    assert code == 1 and "tenant" in err and "globex" in err
    code, _, err = await cli(capsys, *approve, "--as", "root")  # no tenant: not a platform admin
    assert code == 1 and "tenant" in err
    code, out, _ = await cli(capsys, *approve, "--as", "ada")
    assert code == 0 and "approved by ada" in out
    code, _, err = await cli(
        capsys, "approvals", "approve", untenanted, "--as", "ada", "--config", str(config)
    )
    assert code == 1 and "tenant" in err


async def test_the_book_refuses_an_approver_of_another_tenant(tmp_path: Path) -> None:
    acme = await open_request(tmp_path, "acme")
    store = open_store("sqlite:///state.db", base_dir=tmp_path)
    book = ApprovalBook(store, notifiers=())
    try:
        with pytest.raises(ApprovalError, match="tenant"):
            await book.decide(acme, True, by="gus", roles={"admin"}, tenant="globex")
        with pytest.raises(ApprovalError, match="tenant"):
            await book.decide(acme, True, by="root", roles={"admin"})  # no tenant given: none
        decided = await book.decide(acme, True, by="ada", roles={"admin"}, tenant="acme")
        assert decided.status == "approved"
    finally:
        await store.aclose()


async def test_caller_chosen_text_is_escaped_in_the_listing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = setup(tmp_path)
    await open_request(
        tmp_path, None, target="x\x1b[2J\x1b[1;1Happroved\r\napr-fake  pending\u202e", subject="o\nlga"
    )
    code, out, _ = await cli(capsys, "approvals", "list", "--config", str(config))
    assert code == 0
    assert "\x1b" not in out and "\r" not in out and "\u202e" not in out
    assert "\\u001b[2J" in out and "\\u202e" in out
    assert len(out.splitlines()) == 3  # one request, three lines: nothing forged a line


async def test_stored_keys_give_no_approver_roles_when_the_guard_does_not_accept_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    acme = await open_request(tmp_path, None)
    store = open_store("sqlite:///state.db", base_dir=tmp_path)
    try:
        await create_api_key(store, "sam", roles=["admin"])
    finally:
        await store.aclose()
    approve = ("approvals", "approve", acme, "--as", "sam")
    config = setup(tmp_path, extra="stored_api_keys = false\n")
    code, _, err = await cli(capsys, *approve, "--config", str(config))
    assert code == 1 and "none of the approver roles" in err
    config = setup(tmp_path)  # stored keys accepted: sam holds admin through one
    code, out, _ = await cli(capsys, *approve, "--config", str(config))
    assert code == 0 and "approved by sam" in out
