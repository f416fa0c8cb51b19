"""The anomaly monitor's ``lock`` holds the person who misbehaved, not everyone of that name.

An admin bound to tenant ``acme`` may create keys for any subject name. With ``[anomalies]
action = "lock"``, a key named after another tenant's person (or the global administrator) that
is denied again and again must not get that person locked out.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from mcp_guard.audit.anomaly import AnomalySettings, Detector, Finding, from_record, read_events
from mcp_guard.audit.anomaly.monitor import Monitor
from mcp_guard.audit.sinks.sqlite import SQLiteSink
from mcp_guard.authn import AuthenticatorChain
from mcp_guard.authn.issuer import TokenIssuer
from mcp_guard.authn.lockout import Lockout
from mcp_guard.authn.login import LoginService
from mcp_guard.authn.passwords import hash_password
from mcp_guard.authn.users import User, UsersFile
from mcp_guard.errors import RateLimited
from mcp_guard.model import AuditEvent, Principal
from mcp_guard.portal.anomalies import hold_targets
from mcp_guard.protocols import Credential
from mcp_guard.ratelimit import subject_key
from mcp_guard.store import MemoryStore, open_store

from ..helpers import ListAuditor

ADA = Principal("ada", roles=frozenset({"admin"}), auth_method="api_key")  # the global administrator
ACME_ADA = Principal("ada", roles=frozenset({"analyst"}), tenant="acme", auth_method="api_key")
PASSWORD = "correct horse staple 42"
IDP_GARY = Principal("gary", auth_method="jwt", issuer="https://idp.example")
OTHER_GARY = Principal("gary", auth_method="jwt", issuer="https://other.example")


class Keys:
    async def authenticate(self, credential: Credential) -> Principal | None:
        return {
            "tok-ada": ADA,
            "tok-acme-ada": ACME_ADA,
            "tok-gary": IDP_GARY,
            "tok-other-gary": OTHER_GARY,
        }.get(credential.token or "")


def _denials(who: Principal, n: int = 25) -> list[dict[str, Any]]:
    start = time.time() - 60
    return [
        AuditEvent(
            method="tools/call", decision="deny", principal=who.summary(), server="crm", target="export"
        ).as_dict()
        | {
            "id": f"{who.subject}-{who.tenant}-{who.issuer}-{i}",
            "time": start + i,
            "source_ip": "198.51.100.7",
        }
        for i in range(n)
    ]


async def _lock(found: list[Finding]) -> AuthenticatorChain:
    """Hold what each finding names, as ``action = "lock"`` does, and a chain that checks holds."""
    lockout = Lockout(MemoryStore())
    for finding in found:
        account, source = hold_targets(finding, [])
        await lockout.hold(account, source, 600)
    chain = AuthenticatorChain([Keys()], auditor=ListAuditor())
    chain.holds = lockout
    chain.held(time.time() + 600)
    return chain


async def _refused(chain: AuthenticatorChain, token: str) -> bool:
    try:
        await chain.resolve(Credential(token, "http", "10.0.0.1"))
    except RateLimited:
        return True
    return False


def _found(records: list[dict[str, Any]]) -> list[Finding]:
    events = [e for e in (from_record(r) for r in records) if e is not None]
    return Detector(AnomalySettings(kinds=["denial-burst"], action="lock").thresholds()).run(events)


async def test_a_namesakes_denial_burst_does_not_lock_out_the_person() -> None:
    start = time.time() - 60
    records = [
        AuditEvent(
            method="tools/call", decision="deny", principal=ACME_ADA.summary(), server="crm", target="export"
        ).as_dict()
        | {"time": start + i, "source_ip": "198.51.100.7"}
        for i in range(25)
    ]
    events = [e for e in (from_record(r) for r in records) if e is not None]
    found = Detector(AnomalySettings(kinds=["denial-burst"], action="lock").thresholds()).run(events)
    assert found, "the burst is found"
    lockout = Lockout(MemoryStore())
    for finding in found:
        account, source = hold_targets(finding, [])
        await lockout.hold(account, source, 600)
    chain = AuthenticatorChain([Keys()], auditor=ListAuditor())
    chain.holds = lockout
    chain.held(time.time() + 600)
    assert (await chain.resolve(Credential("tok-ada", "http", "10.0.0.1"))).subject == "ada"


async def test_the_person_is_still_locked_by_their_own_burst_and_only_they_are() -> None:
    found = _found(_denials(ADA))
    assert [(f.subject, f.vouched_by) for f in found] == [("ada", None)]
    chain = await _lock(found)
    assert await _refused(chain, "tok-ada")
    assert not await _refused(chain, "tok-acme-ada")  # the acme key of that name is someone else


async def test_a_tenants_key_is_held_by_its_own_burst_and_named_with_its_key_book() -> None:
    found = _found(_denials(ACME_ADA))
    assert [(f.subject, f.vouched_by, f.who) for f in found] == [
        ("ada", "api-keys/acme", "ada (api-keys/acme)")
    ]
    assert found[0].as_dict()["vouched_by"] == "api-keys/acme"
    chain = await _lock(found)
    assert await _refused(chain, "tok-acme-ada")
    assert not await _refused(chain, "tok-ada")


async def test_two_issuers_namesakes_are_counted_and_held_apart() -> None:
    # 15 denials each: 30 of "gary" in all, under the threshold of 20 for either person.
    mixed = sorted(_denials(IDP_GARY, 15) + _denials(OTHER_GARY, 15), key=lambda r: r["time"])
    assert _found(mixed) == []
    found = _found(_denials(IDP_GARY))
    assert [(f.subject, f.vouched_by) for f in found] == [("gary", "https://idp.example")]
    chain = await _lock(found)
    assert await _refused(chain, "tok-gary")
    assert not await _refused(chain, "tok-other-gary")


def test_a_record_keeps_the_issuer_and_an_old_record_without_one_still_reads() -> None:
    record = AuditEvent(method="tools/call", decision="deny", principal=IDP_GARY.summary()).as_dict()
    assert record["principal"]["issuer"] == "https://idp.example"
    assert "issuer" not in ADA.summary()  # nothing new in the records of principals without one
    old = record | {"time": 1000.0, "principal": {"subject": "gary", "auth_method": "jwt"}}
    event = from_record(old)
    assert event is not None and (event.subject, event.vouched_by) == ("gary", None)
    odd = old | {"principal": {"subject": "gary", "issuer": 7, "tenant": ["x"], "auth_method": None}}
    event = from_record(odd)
    assert event is not None and (event.subject, event.vouched_by) == ("gary", None)


def test_a_sqlite_trail_gives_the_detectors_who_vouches(tmp_path: Path) -> None:
    records = _denials(ACME_ADA, 3) + _denials(IDP_GARY, 2) + _denials(ADA, 1)
    sink = SQLiteSink(tmp_path / "audit.db")
    sink.write([r | {"seq": i + 1, "prev": "-", "key_id": "k", "mac": "-"} for i, r in enumerate(records)])
    got = {(e.subject, e.vouched_by) for e in read_events(tmp_path / "audit.db")}
    assert got == {("ada", "api-keys/acme"), ("gary", "https://idp.example"), ("ada", None)}


async def test_a_hold_on_a_local_users_calls_refuses_their_login_and_unlock_ends_it(tmp_path: Path) -> None:
    """The login names the user; the hold names the person their tokens are (our issuer's user)."""
    store = MemoryStore()
    users = UsersFile(tmp_path / "users.json")
    users.put(User("alice", hash_password(PASSWORD, "scrypt"), None, roles=("analyst",)))
    issuer = TokenIssuer(tmp_path / "keys", ttl=600)
    service = LoginService(users, issuer, Lockout(store), store, require_totp=False)
    token = await service.login("alice", PASSWORD, source="10.0.0.1")
    principal = await AuthenticatorChain([issuer.authenticator()]).resolve(Credential(token.access_token))
    assert principal.issuer == "mcp-guard" and subject_key(principal) == service.person("alice")
    (finding,) = _found(_denials(principal))
    account, _ = hold_targets(finding, [])
    assert account == service.person("alice")
    # A global key named alice that is held is someone else: alice still signs in.
    await service.lockout.hold("alice", None, 600)
    await service.login("alice", PASSWORD, source="10.0.0.1")
    await service.lockout.hold(account, None, 600)
    with pytest.raises(RateLimited, match="locked"):
        await service.login("alice", PASSWORD, source="10.0.0.1")
    assert f"hold:{account}" in await service.lockout.status("alice", person=account)
    assert f"hold:{account}" in await service.lockout.unlock("alice", person=account)
    await service.login("alice", PASSWORD, source="10.0.0.1")


async def test_the_monitor_names_who_vouches_in_its_alert_and_audit_event() -> None:
    auditor = ListAuditor()
    held: list[tuple[str | None, str | None]] = []

    async def lock(finding: Finding) -> list[str]:
        held.append(hold_targets(finding, []))
        return ["held"]

    monitor = Monitor(AnomalySettings(denials=3, action="lock"), auditor=auditor, lock=lock)
    records = [r | {"time": time.time() + i} for i, r in enumerate(_denials(ACME_ADA, 3))]
    async with anyio.create_task_group() as tg:
        for finding in monitor._detect(records):
            await monitor.handle(finding, tg)
    assert held == [("ada:api-keys/acme", None)]
    (alert,) = monitor.alerts
    assert (alert["subject"], alert["vouched_by"], alert["action"]) == ("ada", "api-keys/acme", "lock")
    (event,) = auditor.events
    assert event.principal == {"subject": "ada", "vouched_by": "api-keys/acme"}


def test_users_unlock_ends_the_hold_of_the_person_the_alert_names(tmp_path: Path) -> None:
    (tmp_path / "guard.toml").write_text(
        '[guard]\nstate = "sqlite:///state.db"\n\n[authn.passwords]\nusers_file = "users.json"\n'
    )
    store = open_store("sqlite:///state.db", tmp_path)
    lockout = Lockout(store)
    local, namesake = "alice:mcp-guard", "ada:api-keys/acme"

    async def hold() -> None:
        for person in (local, namesake, "ada"):
            await lockout.hold(person, None, 600)

    anyio.run(hold)
    cfg = ("--config", "guard.toml")
    plain = _cli("users", "unlock", "alice", *cfg, cwd=tmp_path)  # a local user: as our issuer vouches
    assert plain.returncode == 0 and f"hold:{local}" in plain.stdout, plain.stderr
    other = _cli("users", "unlock", "ada", "--vouched-by", "api-keys/acme", *cfg, cwd=tmp_path)
    assert other.returncode == 0 and f"hold:{namesake}" in other.stdout, other.stderr

    async def left() -> dict[str, float]:
        return await lockout.status("ada", person=namesake) | await lockout.status("alice", person=local)

    assert anyio.run(left) == {}  # NAME's own hold (a key of no tenant) ends with any unlock of NAME


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "mcp_guard.cli.main", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=60)
