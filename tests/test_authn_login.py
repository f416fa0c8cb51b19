"""Passwords, TOTP (RFC 6238), lockout, the login service, issued tokens and the login routes."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import jwt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette

from mcp_guard.authn import AuthenticatorChain, login_routes, totp
from mcp_guard.authn.config import AuthnSettings, build_authentication, build_login_service
from mcp_guard.authn.issuer import TokenIssuer
from mcp_guard.authn.lockout import Lockout, LockoutPolicy
from mcp_guard.authn.login import INVALID, LoginService
from mcp_guard.authn.passwords import hash_password, password_problems, verify_password
from mcp_guard.authn.users import User, UsersFile
from mcp_guard.errors import AuthenticationError, RateLimited
from mcp_guard.protocols import Credential
from mcp_guard.store import MemoryStore

from .test_authn_jwt import Recorder

SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"  # RFC 6238 test key "12345678901234567890"
PASSWORD = "correct horse staple 42"


def test_totp_rfc6238_vectors() -> None:
    # RFC 6238 appendix B, SHA-1, truncated to 6 digits.
    for t, code in [(59, "287082"), (1111111109, "081804"), (1234567890, "005924"), (2000000000, "279037")]:
        assert totp.code_at(SECRET, t // 30) == code
        assert totp.match_step(SECRET, code, now=t) == t // 30


def test_totp_window_and_format() -> None:
    now = 1_700_000_000.0
    step = totp.current_step(now)
    assert totp.match_step(SECRET, totp.code_at(SECRET, step - 1), now=now) == step - 1
    assert totp.match_step(SECRET, totp.code_at(SECRET, step - 3), now=now) is None
    for bad in ["", "12345", "1234567", "abcdef", "12 456"]:
        assert totp.match_step(SECRET, bad, now=now) is None
    assert totp.provisioning_uri(SECRET, "alice").startswith("otpauth://totp/mcp-guard:alice?secret=")


@settings(max_examples=30, deadline=None)
@given(st.integers(min_value=0, max_value=2**33))
def test_totp_codes_always_six_digits_and_roundtrip(step: int) -> None:
    code = totp.code_at(SECRET, step)
    assert len(code) == 6 and code.isdigit()
    assert totp.match_step(SECRET, code, now=step * 30 + 1, window=0) == step


@pytest.mark.parametrize("scheme", ["argon2id", "scrypt"])
def test_password_hashes(scheme: str) -> None:
    encoded = hash_password(PASSWORD, scheme)
    assert encoded.startswith("$argon2id$" if scheme == "argon2id" else "$scrypt$")
    assert verify_password(encoded, PASSWORD)
    assert not verify_password(encoded, PASSWORD + "!")
    assert not verify_password("$scrypt$ln=40,r=8,p=1$AAAA$AAAA", PASSWORD)  # absurd cost refused
    assert not verify_password("plaintext", "plaintext")


def test_password_policy() -> None:
    assert password_problems(PASSWORD) == []
    assert "at least 12" in password_problems("short")[0]
    assert any("common" in p for p in password_problems("Password1234"))
    assert any("common" in p for p in password_problems("correcthorsebatterystaple"))
    assert any("user name" in p for p in password_problems("alice-the-admin", username="alice-the-admin"))
    assert any("distinct" in p for p in password_problems("aaaaaaaaaaaaaaab"))


@pytest.fixture
def world(tmp_path: Path) -> tuple[LoginService, MemoryStore, Recorder, list[float]]:
    clock = [1_700_000_000.0]
    users = UsersFile(tmp_path / "users.json")
    users.put(User("alice", hash_password(PASSWORD, "scrypt"), SECRET, roles=("analyst",), tenant="acme"))
    users.put(User("nototp", hash_password(PASSWORD, "scrypt"), None))
    store = MemoryStore()
    auditor = Recorder()
    policy = LockoutPolicy(
        max_failures=3,
        source_max_failures=10,
        account_max_failures=8,
        window=600,
        base_lock=30,
        max_lock=3600,
        account_max_lock=120,
    )
    service = LoginService(
        users,
        TokenIssuer(tmp_path / "keys", ttl=600, clock=lambda: clock[0]),
        Lockout(store, policy, clock=lambda: clock[0]),
        store,
        auditor=auditor,
        clock=lambda: clock[0],
    )
    return service, store, auditor, clock


def code(clock: list[float], offset: int = 0) -> str:
    return totp.code_at(SECRET, totp.current_step(clock[0]) + offset)


async def test_login_issues_verifiable_token(
    world: tuple[LoginService, MemoryStore, Recorder, list[float]],
) -> None:
    service, _store, _, clock = world
    token = await service.login("alice", PASSWORD, code(clock), source="10.0.0.1")
    header = jwt.get_unverified_header(token.access_token)
    assert header["alg"] == "EdDSA" and header["kid"] == service.issuer.active_kid
    claims = jwt.decode(token.access_token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 600 and claims["jti"] == token.jti
    assert claims["amr"] == ["mfa", "otp", "pwd"]
    chain = AuthenticatorChain([service.issuer.authenticator()])
    # The issuer's clock is fixed in the past: verify with a current-time token instead.
    fresh = TokenIssuer(service.issuer.keys_dir, ttl=600)
    real = fresh.issue(
        User("alice", "", roles=("analyst",), tenant="acme").principal(), amr=["pwd", "otp", "mfa"]
    )
    principal = await chain.resolve(Credential(real.access_token))
    assert principal.subject == "alice" and principal.mfa and principal.tenant == "acme"
    assert principal.roles == {"analyst"} and principal.credential_id == real.jti


async def test_same_error_for_unknown_user_wrong_password_wrong_code(
    world: tuple[LoginService, MemoryStore, Recorder, list[float]],
) -> None:
    service, _, auditor, clock = world
    attempts = [
        ("mallory", PASSWORD, code(clock)),
        ("alice", "wrong password!!", code(clock)),
        ("alice", PASSWORD, "000000"),
        ("nototp", PASSWORD, None),
    ]
    durations = []
    for username, password, otp in attempts:
        start = time.perf_counter()
        with pytest.raises(AuthenticationError) as info:
            await service.login(username, password, otp, source=f"10.0.0.{len(durations) + 2}")
        durations.append(time.perf_counter() - start)
        assert info.value.reason == INVALID
    reasons = [e.reasons[0] for e in auditor.events]
    assert reasons == [
        "unknown user",
        "wrong password",
        "wrong one-time code",
        "user has no TOTP enrolled and TOTP is required",
    ]
    # Unknown users cost a hash verification too (similar timing, within a generous factor).
    assert durations[0] > durations[1] / 4


async def test_totp_code_reuse_refused(
    world: tuple[LoginService, MemoryStore, Recorder, list[float]],
) -> None:
    service, _, auditor, clock = world
    otp = code(clock)
    await service.login("alice", PASSWORD, otp, source="10.0.0.1")
    with pytest.raises(AuthenticationError):
        await service.login("alice", PASSWORD, otp, source="10.0.0.1")
    assert auditor.events[-1].reasons == ("one-time code already used",)
    # An older (still in-window) code after a newer one was accepted is refused as well.
    clock[0] += 30
    await service.login("alice", PASSWORD, code(clock), source="10.0.0.1")
    with pytest.raises(AuthenticationError):
        await service.login("alice", PASSWORD, code(clock, -1), source="10.0.0.1")


async def test_lockout_after_failures_with_growing_backoff(
    world: tuple[LoginService, MemoryStore, Recorder, list[float]],
) -> None:
    service, _, auditor, clock = world
    for _ in range(3):
        with pytest.raises(AuthenticationError):
            await service.login("alice", "bad guess number 1", code(clock), source="203.0.113.9")
    with pytest.raises(RateLimited) as info:
        await service.login(
            "alice", PASSWORD, code(clock), source="203.0.113.9"
        )  # right password, still locked
    assert info.value.retry_after == pytest.approx(30, abs=1)
    assert auditor.events[-1].reasons[0].startswith("login locked")
    # The real user from another address is not affected.
    await service.login("alice", PASSWORD, code(clock), source="198.51.100.1")
    clock[0] += 31
    for _ in range(3):
        with pytest.raises(AuthenticationError):
            await service.login("alice", "bad guess number 2", code(clock), source="203.0.113.9")
    with pytest.raises(RateLimited) as info:
        await service.login("alice", PASSWORD, code(clock), source="203.0.113.9")
    assert info.value.retry_after == pytest.approx(60, abs=1)  # doubled


async def test_distributed_guessing_locks_account_only_briefly(
    world: tuple[LoginService, MemoryStore, Recorder, list[float]],
) -> None:
    service, _, _, clock = world
    for i in range(8):  # account_max_failures, each from a different address
        with pytest.raises(AuthenticationError):
            await service.login("alice", "distributed guess", "123456", source=f"192.0.2.{i}")
    with pytest.raises(RateLimited) as info:
        await service.login("alice", PASSWORD, code(clock), source="198.51.100.1")
    assert info.value.retry_after is not None and info.value.retry_after <= 120
    clock[0] += 121
    await service.login("alice", PASSWORD, code(clock), source="198.51.100.1")


async def test_known_source_is_never_locked_out_by_a_distributed_attack(
    world: tuple[LoginService, MemoryStore, Recorder, list[float]],
) -> None:
    service, _, auditor, clock = world
    await service.login("alice", PASSWORD, code(clock), source="198.51.100.1")  # the user's usual address
    clock[0] += 30
    for i in range(8):  # account_max_failures, each from a different address
        with pytest.raises(AuthenticationError):
            await service.login("alice", "distributed guess", "123456", source=f"192.0.2.{i}")
    # A new address is slowed down (and the refusal audited) ...
    with pytest.raises(RateLimited):
        await service.login("alice", PASSWORD, code(clock), source="203.0.113.50")
    assert auditor.events[-1].reasons[0] == "login locked (acct)"
    # ... the address the user logged in from before is not.
    assert await service.lockout.known_source("alice", "198.51.100.1")
    await service.login("alice", PASSWORD, code(clock), source="198.51.100.1")
    # Its own tight counter still applies: a guesser sharing that address is locked as usual.
    for _ in range(3):
        with pytest.raises(AuthenticationError):
            await service.login("alice", "bad guess number 9", "123456", source="198.51.100.1")
    with pytest.raises(RateLimited):
        await service.login("alice", PASSWORD, code(clock, 1), source="198.51.100.1")


def test_unknown_users_are_checked_against_a_hash_of_the_users_scheme(tmp_path: Path) -> None:
    users = UsersFile(tmp_path / "users.json")
    users.put(User("alice", hash_password(PASSWORD, "scrypt"), SECRET))
    service = LoginService(users, TokenIssuer(tmp_path / "keys"), Lockout(MemoryStore()), MemoryStore())
    assert service._dummy().startswith("$scrypt$")
    argon = tmp_path / "argon.json"
    UsersFile(argon).put(User("bob", hash_password(PASSWORD, "argon2id"), SECRET))
    service = LoginService(UsersFile(argon), service.issuer, Lockout(MemoryStore()), MemoryStore())
    assert service._dummy().startswith("$argon2id$")
    empty = LoginService(
        UsersFile(tmp_path / "none.json"),
        service.issuer,
        Lockout(MemoryStore()),
        MemoryStore(),
        hash_scheme="scrypt",
    )
    assert empty._dummy().startswith("$scrypt$")  # no users yet: the configured scheme


async def test_unlock_clears_locks(world: tuple[LoginService, MemoryStore, Recorder, list[float]]) -> None:
    service, _, _, clock = world
    for _ in range(3):
        with pytest.raises(AuthenticationError):
            await service.login("alice", "bad guess number 3", "123456", source="203.0.113.9")
    assert await service.lockout.status("alice")
    cleared = await service.lockout.unlock("alice")
    assert "pair:alice|203.0.113.9" in cleared
    await service.login("alice", PASSWORD, code(clock), source="203.0.113.9")


async def test_issuer_rotation_and_retire(tmp_path: Path) -> None:
    issuer = TokenIssuer(tmp_path / "keys", ttl=300)
    chain_auth = issuer.authenticator()
    p = User("bob", "").principal()
    old = issuer.issue(p)
    other = TokenIssuer(tmp_path / "keys", ttl=300)  # another process rotates
    time.sleep(1.1)  # key ids are second-stamped
    new_kid = other.rotate()
    new = other.issue(p)
    assert jwt.get_unverified_header(new.access_token)["kid"] == new_kid
    assert len(issuer.jwks()["keys"]) == 1 and len(other.jwks()["keys"]) == 2
    assert all("d" not in k for k in other.jwks()["keys"])
    assert await chain_auth.authenticate(Credential(new.access_token)) is not None  # reloaded on unknown kid
    assert await chain_auth.authenticate(Credential(old.access_token)) is not None
    assert other.retire(jwt.get_unverified_header(old.access_token)["kid"])
    assert not other.retire(new_kid)  # the active key cannot be retired
    verifier = TokenIssuer(tmp_path / "keys").authenticator()
    with pytest.raises(AuthenticationError, match="no EdDSA key"):
        await verifier.authenticate(Credential(old.access_token))


async def test_issued_token_revocation_by_jti(tmp_path: Path) -> None:
    s = AuthnSettings.model_validate({"issuer": {"keys_dir": "keys"}, "stored_api_keys": False})
    store = MemoryStore()
    chain = build_authentication(s, store, tmp_path)
    token = TokenIssuer(tmp_path / "keys").issue(User("bob", "").principal())
    await chain.resolve(Credential(token.access_token))
    await chain.revocations.revoke(token.jti)
    with pytest.raises(AuthenticationError, match="revoked"):
        await chain.resolve(Credential(token.access_token))


async def test_login_routes(tmp_path: Path) -> None:
    users = UsersFile(tmp_path / "users.json")
    users.put(User("alice", hash_password(PASSWORD, "scrypt"), SECRET))
    s = AuthnSettings.model_validate(
        {
            "passwords": {"users_file": "users.json", "lockout": {"max_failures": 2}},
            "issuer": {"keys_dir": "keys"},
        }
    )
    store = MemoryStore()
    service = build_login_service(s, store, tmp_path)
    app = Starlette(routes=login_routes(service))
    transport = httpx.ASGITransport(app=app, client=("203.0.113.5", 1234))
    async with httpx.AsyncClient(transport=transport, base_url="http://guard") as client:
        otp = totp.code_at(SECRET, totp.current_step())
        ok = await client.post("/login", json={"username": "alice", "password": PASSWORD, "totp": otp})
        assert ok.status_code == 200, ok.text
        body = ok.json()
        assert body["token_type"] == "Bearer" and body["expires_in"] == 900
        assert ok.headers["cache-control"] == "no-store"
        chain = build_authentication(s, store, tmp_path)
        assert (await chain.resolve(Credential(body["access_token"]))).subject == "alice"

        jwks = await client.get("/.well-known/jwks.json")
        assert jwks.status_code == 200 and jwks.json()["keys"][0]["kty"] == "OKP"

        for _ in range(2):
            bad = await client.post(
                "/login", json={"username": "alice", "password": "nope nope nope", "totp": otp}
            )
            assert bad.status_code == 401 and bad.json()["error"] == "invalid_grant"
        locked = await client.post("/login", json={"username": "alice", "password": PASSWORD, "totp": otp})
        assert locked.status_code == 429 and int(locked.headers["retry-after"]) >= 1

        assert (
            await client.post("/login", content=b"x" * 9000, headers={"content-type": "application/json"})
        ).status_code == 413
        assert (
            await client.post("/login", content=b"[1]", headers={"content-type": "application/json"})
        ).status_code == 400
        assert (await client.post("/login", data={"username": "a"})).status_code == 415
        assert (await client.post("/login", json={"username": 1, "password": "x"})).status_code == 400
