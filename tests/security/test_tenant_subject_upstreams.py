"""A key a tenant's admin names after another tenant's person gets nothing of that person upstream.

An admin bound to tenant ``acme`` may create keys for any subject name; such a key's ``gary`` is
acme's gary (``vouched_by``: the tenant's key book), not globex's. Budgets, flow marks and the cap
on calls in flight already key the person that way. These tests try the two places of the portal
that are still per subject name: the cap on a person's upstream sessions (at the cap, the
person's least recently used idle session is closed to make room) and per-user upstream secrets.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mcp_guard.guard import Guard
from mcp_guard.model import Principal
from mcp_guard.portal import Portal
from mcp_guard.portal.credentials import CredentialBroker, SecretBox, subject_owner
from mcp_guard.protocols import Credential
from mcp_guard.store import MemoryStore

from ..helpers import ListAuditor
from ..test_portal_credentials import whoami_stdio
from ..test_portal_support import ServerPolicy, portal_http, stdio
from .test_upstream_caps import caller_sessions, connections, pid_of, whoami_pid

STAFF = frozenset({"staff"})
PEOPLE = {
    "tok-gary": Principal("gary", roles=STAFF, tenant="globex", auth_method="api_key"),
    "tok-acme-gary": Principal("gary", roles=STAFF, tenant="acme", auth_method="api_key"),
}


class People:
    async def authenticate(self, credential: Credential) -> Principal | None:
        return PEOPLE.get(credential.token or "")


def guard(auditor: ListAuditor) -> Guard:
    policy = ServerPolicy({"staff": {("lab", "*"), ("whoami", "*")}})
    return Guard(policy=policy, authenticators=[People()], auditor=auditor, server="portal")


async def test_another_tenants_namesake_does_not_close_the_persons_upstream_session() -> None:
    portal = Portal(
        guard(ListAuditor()), [stdio("lab", "lab_server.py")], callbacks=["lab"], private_per_principal=1
    )
    with portal_http(portal) as url:
        async with connections(url, "tok-gary", "tok-acme-gary") as (gary, namesake):
            mine = await pid_of(gary)
            theirs = await pid_of(namesake)  # one session each: two people, one name
            assert theirs != mine
            assert caller_sessions(portal, "lab") == 2
            assert await pid_of(gary) == mine  # gary's session was not closed to make room


async def test_another_tenants_namesake_is_not_handed_the_persons_upstream_secret() -> None:
    broker = CredentialBroker(MemoryStore(), SecretBox(bytes(range(32))))
    for owner in ("gary", subject_owner("gary", "api-keys/globex")):  # by bare name, and qualified
        await broker.set("whoami", "subject", owner, env={"SERVICE_TOKEN": "svc-globex-gary"})
    portal = Portal(guard(ListAuditor()), [whoami_stdio()], credentials=broker)
    with portal_http(portal) as url:
        async with connections(url, "tok-acme-gary") as (namesake,):
            try:
                result = await namesake.call_tool("whoami__whoami", {})
            except Exception:
                return  # refused: nothing handed out
            assert result.is_error or "svc-globex-gary" not in str(result.structured_content)


async def test_the_person_still_gets_their_own_upstream_secret() -> None:
    broker = CredentialBroker(MemoryStore(), SecretBox(bytes(range(32))))
    owner = subject_owner("gary", "api-keys/globex")  # servers credentials set --subject gary --issuer ...
    await broker.set("whoami", "subject", owner, env={"SERVICE_TOKEN": "svc-globex-gary"})
    portal = Portal(guard(ListAuditor()), [whoami_stdio()], credentials=broker)
    with portal_http(portal) as url:
        async with connections(url, "tok-gary") as (gary,):
            assert await whoami_pid(gary) > 0


async def test_owners_by_bare_name_serve_identity_provider_users_and_untenanted_keys_only() -> None:
    broker = CredentialBroker(MemoryStore(), SecretBox(bytes(range(32))))
    await broker.set("gh", "subject", "gary", env={"T": "bare"})
    await broker.set("gh", "subject", subject_owner("gary", "https://idp.example"), env={"T": "idp"})
    untenanted = Principal("gary", roles=STAFF, auth_method="api_key")
    from_idp = Principal("gary", roles=STAFF, issuer="https://idp.example", auth_method="oidc")
    other_idp = Principal("gary", roles=STAFF, issuer="https://other.example", auth_method="oidc")
    tenant_key = Principal("gary", roles=STAFF, tenant="acme", auth_method="api_key")
    got = [await broker.for_principal("gh", p) for p in (untenanted, from_idp, other_idp, tenant_key)]
    assert [c.env["T"] if c else None for c in got] == ["bare", "idp", "bare", None]


def test_the_cli_stores_a_subject_with_who_vouches_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from mcp_guard.cli.main import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MCP_GUARD_SECRETS_KEY", bytes(range(32)).hex())
    state = ["--state", f"sqlite:///{tmp_path / 'state.db'}"]
    argv = ["servers", "credentials", "set", "gh", "--subject", "gary", "--issuer", "api-keys/acme"]
    assert main([*argv, "--env", "T=x", *state]) == 0
    capsys.readouterr()
    assert main(["servers", "credentials", "list", "gh", "--json", *state]) == 0
    assert list(json.loads(capsys.readouterr().out)["owners"]) == ["gary (vouched by api-keys/acme)"]
    # --issuer alone must not widen a delete to every owner
    assert main(["servers", "credentials", "delete", "gh", "--issuer", "api-keys/acme", *state]) == 2
    assert main(["servers", "credentials", "delete", "gh", "--subject", "gary", *state]) == 1
    delete = ["servers", "credentials", "delete", "gh", "--subject", "gary", "--issuer", "api-keys/acme"]
    assert main([*delete, *state]) == 0
