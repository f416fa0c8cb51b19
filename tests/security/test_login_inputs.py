"""Every login input ends in a counted, audited refusal (or a success): never an HTTP 500.

Regression: ``str.isdigit`` accepts non-ASCII digits (Arabic-Indic, fullwidth, ...) and
``hmac.compare_digest`` raises on non-ASCII ``str``, so such a one-time code answered 500 before
the lockout counted the attempt or the audit recorded it.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette

from mcp_guard.authn import login_routes, totp
from mcp_guard.authn.issuer import TokenIssuer
from mcp_guard.authn.lockout import Lockout, LockoutPolicy
from mcp_guard.authn.login import LoginService
from mcp_guard.authn.passwords import hash_password
from mcp_guard.authn.routes import MAX_BODY
from mcp_guard.authn.users import User, UsersFile
from mcp_guard.store import MemoryStore

from ..test_authn_jwt import Recorder

SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
PASSWORD = "correct horse staple 42"
SOURCE = "203.0.113.5"
NOW = 1_700_000_000.0

NON_ASCII_DIGITS = [
    "\u0661\u0662\u0663\u0664\u0665\u0666",  # Arabic-Indic
    "\uff11\uff12\uff13\uff14\uff15\uff16",  # fullwidth
    "\u06f1\u06f2\u06f3\u06f4\u06f5\u06f6",  # extended Arabic-Indic
    "\u07c0\u07c1\u07c2\u07c3\u07c4\u07c5",  # NKo
    "\U0001d7cf\U0001d7d0\U0001d7d1\U0001d7d2\U0001d7d3\U0001d7d4",  # mathematical bold (one code point each)
    "\u00b9\u00b2\u00b3\u2074\u2075\u2076",  # superscripts: isdigit() but not isdecimal()
    "12345\u0666",  # one non-ASCII digit is enough
]

_DIR = Path(tempfile.mkdtemp(prefix="mcp-guard-login-inputs-"))
_USERS = UsersFile(_DIR / "users.json")
_USERS.put(User("alice", hash_password(PASSWORD, "scrypt"), SECRET))
_USERS.put(User("nototp", hash_password(PASSWORD, "scrypt"), None))
_ISSUER = TokenIssuer(_DIR / "keys", ttl=600, clock=lambda: NOW)


def valid_code() -> str:
    return totp.code_at(SECRET, totp.current_step(NOW))


def make_service(policy: LockoutPolicy) -> tuple[LoginService, Recorder]:
    store = MemoryStore()
    auditor = Recorder()
    service = LoginService(
        _USERS, _ISSUER, Lockout(store, policy, clock=lambda: NOW), store, auditor=auditor, clock=lambda: NOW
    )
    return service, auditor


def client_for(service: LoginService) -> httpx.AsyncClient:
    app = Starlette(routes=login_routes(service))
    transport = httpx.ASGITransport(app=app, client=(SOURCE, 1234))
    return httpx.AsyncClient(transport=transport, base_url="http://guard")


def denies(auditor: Recorder) -> int:
    return sum(1 for e in auditor.events if e.decision == "deny")


def test_totp_accepts_ascii_digits_only() -> None:
    for code in NON_ASCII_DIGITS:
        assert totp.match_step(SECRET, code, now=NOW) is None
    assert totp.match_step(SECRET, valid_code(), now=NOW) == totp.current_step(NOW)


@pytest.mark.parametrize("code", NON_ASCII_DIGITS)
async def test_non_ascii_digits_are_a_counted_audited_refusal(code: str) -> None:
    service, auditor = make_service(LockoutPolicy(max_failures=3, source_max_failures=10))
    async with client_for(service) as client:
        for i in range(3):
            answer = await client.post(
                "/login", json={"username": "alice", "password": PASSWORD, "totp": code}
            )
            assert answer.status_code == 401, answer.text
            assert answer.json()["error"] == "invalid_grant"
            assert denies(auditor) == i + 1
        # Three counted failures: the right password and code from that address are now locked out.
        locked = await client.post(
            "/login", json={"username": "alice", "password": PASSWORD, "totp": valid_code()}
        )
        assert locked.status_code == 429
        assert denies(auditor) == 4


@pytest.mark.parametrize("field", ["username", "password", "totp"])
async def test_lone_surrogates_are_a_counted_audited_refusal(field: str) -> None:
    service, auditor = make_service(LockoutPolicy(max_failures=1, source_max_failures=1))
    body = {"username": "alice", "password": PASSWORD, "totp": valid_code()}
    body[field] = "\ud800x"
    async with client_for(service) as client:
        raw = json.dumps(body).encode()  # ensure_ascii: the surrogate travels as \ud800
        answer = await client.post("/login", content=raw, headers={"content-type": "application/json"})
        assert answer.status_code == 401, answer.text
        assert denies(auditor) == 1
        principal = auditor.events[-1].principal
        assert principal is not None
        principal["subject"].encode("utf-8")  # audit sinks can write it
        locked = await client.post(
            "/login", json={"username": "alice", "password": PASSWORD, "totp": valid_code()}
        )
        assert locked.status_code == 429


async def test_a_crashing_credential_check_is_a_counted_audited_refusal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def explode(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(totp, "match_step", explode)
    service, auditor = make_service(LockoutPolicy(max_failures=1, source_max_failures=1))
    async with client_for(service) as client:
        answer = await client.post(
            "/login", json={"username": "alice", "password": PASSWORD, "totp": valid_code()}
        )
        assert answer.status_code == 401
        assert denies(auditor) == 1 and "RuntimeError" in auditor.events[-1].reasons[0]
        monkeypatch.undo()
        locked = await client.post(
            "/login", json={"username": "alice", "password": PASSWORD, "totp": valid_code()}
        )
        assert locked.status_code == 429


async def test_malformed_requests_are_audited_and_counted() -> None:
    service, auditor = make_service(LockoutPolicy(max_failures=10, source_max_failures=6))
    async with client_for(service) as client:
        bad = [
            dict(json={"username": 1, "password": "x"}),
            dict(content=b"[1]", headers={"content-type": "application/json"}),
            dict(content=b"{not json", headers={"content-type": "application/json"}),
            dict(content=b"x" * (MAX_BODY + 1), headers={"content-type": "application/json"}),
            dict(data={"username": "alice"}),  # form-encoded: 415
            # nested deeper than the JSON parser recurses (RecursionError, not ValueError)
            dict(content=b"[" * 4000 + b"]" * 4000, headers={"content-type": "application/json"}),
        ]
        for i, request in enumerate(bad):
            answer = await client.post("/login", **request)  # type: ignore[arg-type]
            assert answer.status_code in (400, 413, 415), answer.text
            assert denies(auditor) == i + 1
        locked = await client.post(
            "/login", json={"username": "alice", "password": PASSWORD, "totp": valid_code()}
        )
        assert locked.status_code == 429


# -- fuzzing the form fields -----------------------------------------------------------------------

_json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)
)
_wrong_types = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.lists(_json_scalars, max_size=3),
    st.dictionaries(st.text(max_size=5), _json_scalars, max_size=3),
)
_texts = st.one_of(
    st.text(),  # arbitrary unicode, surrogate-free
    st.text(min_size=200, max_size=1500),
    st.text(alphabet=st.characters(categories=["Nd", "No"]), min_size=1, max_size=8),
    st.integers(min_value=1, max_value=12_000).map(lambda n: "7" * n),
    st.just(""),
)
_VALID = {"username": "alice", "password": PASSWORD, "totp": "VALID"}
_string_fields = st.fixed_dictionaries(
    {
        "username": st.one_of(st.sampled_from(["alice", "nototp", "mallory"]), _texts),
        "password": st.one_of(st.just(PASSWORD), _texts),
        "totp": st.one_of(st.none(), st.just("VALID"), st.sampled_from(NON_ASCII_DIGITS), _texts),
    }
)
_any_fields = st.fixed_dictionaries(
    {},
    optional={
        "username": st.one_of(st.just("alice"), _texts, _wrong_types),
        "password": st.one_of(st.just(PASSWORD), _texts, _wrong_types),
        "totp": st.one_of(st.just("VALID"), _texts, _wrong_types),
    },
)
# One field of a valid login replaced (or dropped, for ...): the closest misses.
_near_valid = st.tuples(st.sampled_from(sorted(_VALID)), st.one_of(_texts, _wrong_types, st.just(...))).map(
    lambda swap: {
        k: (swap[1] if k == swap[0] else v)
        for k, v in _VALID.items()
        if not (k == swap[0] and swap[1] is ...)
    }
)
_SHAPES = {"strings": _string_fields, "near": _near_valid, "any": _any_fields, "wrong": _wrong_types}
_bodies = st.one_of(
    st.sampled_from(["strings"] * 4 + ["near"] * 3 + ["any"] * 2 + ["wrong"]).flatmap(_SHAPES.__getitem__),
    st.just(_VALID),
)


def _expected_success(body: Any) -> bool:
    return (
        isinstance(body, dict)
        and body.get("username") == "alice"
        and body.get("password") == PASSWORD
        and body.get("totp") == valid_code()
    )


async def _fuzz_one(body: Any) -> None:
    if isinstance(body, dict) and body.get("totp") == "VALID":
        body = {**body, "totp": valid_code()}
    service, auditor = make_service(LockoutPolicy(max_failures=1, source_max_failures=1))
    raw = json.dumps(body).encode()
    async with client_for(service) as client:
        answer = await client.post("/login", content=raw, headers={"content-type": "application/json"})
        assert answer.status_code != 500, answer.text
        event(f"HTTP {answer.status_code}")
        if _expected_success(body) and len(raw) <= MAX_BODY:
            assert answer.status_code == 200, answer.text
            assert denies(auditor) == 0
            return
        assert answer.status_code in (400, 401, 413), answer.text
        assert "access_token" not in answer.text
        assert denies(auditor) == 1
        # The refusal was counted: the right credentials from that address are now locked out.
        locked = await client.post(
            "/login", json={"username": "alice", "password": PASSWORD, "totp": valid_code()}
        )
        assert locked.status_code == 429


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_bodies)
def test_login_form_fuzz_never_500_and_every_refusal_counted_and_audited(body: Any) -> None:
    anyio.run(_fuzz_one, body)
