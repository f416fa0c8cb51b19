"""A password login hands out a bearer token: it is on record, or it does not happen.

Found: ``POST /login`` audited every refusal but not a success, so a token was issued with
no event naming its holder, source or ``jti`` (the handle ``mcp-guard keys revoke --jti``
needs), and it was issued even while the trail could not take events.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import jwt
from starlette.applications import Starlette

from mcp_guard.authn import totp
from mcp_guard.authn.issuer import TokenIssuer
from mcp_guard.authn.lockout import Lockout
from mcp_guard.authn.login import LoginService
from mcp_guard.authn.passwords import hash_password
from mcp_guard.authn.routes import login_routes
from mcp_guard.authn.users import User, UsersFile
from mcp_guard.store import MemoryStore

from ..helpers import ListAuditor

PASSWORD = "a long and unusual passphrase"
SECRET = totp.new_secret()


def _client(tmp_path: Path, auditor: ListAuditor) -> httpx.AsyncClient:
    users = UsersFile(tmp_path / "users.json")
    users.put(User("alice", hash_password(PASSWORD, "scrypt"), SECRET, roles=("analyst",), tenant="acme"))
    store = MemoryStore()
    service = LoginService(users, TokenIssuer(tmp_path / "keys"), Lockout(store), store, auditor=auditor)
    transport = httpx.ASGITransport(app=Starlette(routes=login_routes(service)), client=("203.0.113.7", 1))
    return httpx.AsyncClient(transport=transport, base_url="http://guard")


def _form() -> dict[str, str]:
    return {"username": "alice", "password": PASSWORD, "totp": totp.code_at(SECRET, totp.current_step())}


async def test_a_successful_login_is_audited_with_its_token_id(tmp_path: Path) -> None:
    auditor = ListAuditor()
    async with _client(tmp_path, auditor) as http:
        answer = await http.post("/login", json=_form())
    assert answer.status_code == 200
    issued = [e for e in auditor.events if e.method == "login" and e.decision == "allow"]
    assert len(issued) == 1, [(e.method, e.decision) for e in auditor.events]
    (event,) = issued
    assert event.principal is not None and event.principal["subject"] == "alice"
    assert event.principal["tenant"] == "acme" and event.principal["mfa"] is True
    assert event.source_ip == "203.0.113.7" and event.event == "authn"
    claims = jwt.decode(answer.json()["access_token"], options={"verify_signature": False})
    assert event.target == claims["jti"]  # the handle `keys revoke --jti` takes


async def test_no_token_is_issued_while_the_trail_cannot_take_the_event(tmp_path: Path) -> None:
    auditor = ListAuditor()
    auditor.fail = True
    async with _client(tmp_path, auditor) as http:
        answer = await http.post("/login", json=_form())
    assert answer.status_code == 503, answer.text
    assert "access_token" not in answer.text
