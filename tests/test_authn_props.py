"""Property tests: no mutation of a valid token verifies, and claim parsing never crashes the chain."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import jwt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcp_guard.authn import AuthenticatorChain, build_authentication
from mcp_guard.authn._util import claim, string_set
from mcp_guard.authn.config import AuthnSettings
from mcp_guard.errors import AuthenticationError
from mcp_guard.protocols import Credential
from mcp_guard.store import MemoryStore

from .test_authn_jwt import ED_KEY, public_jwk

ISSUER = "https://idp.props"


def make_chain(tmp: Path) -> AuthenticatorChain:
    import json

    (tmp / "jwks.json").write_text(json.dumps({"keys": [public_jwk(ED_KEY, "ed-1")]}))
    raw = {
        "issuer": ISSUER,
        "audience": "mcp-guard",
        "jwks_file": "jwks.json",
        "algorithms": ["EdDSA", "RS256"],
    }
    return build_authentication(AuthnSettings.model_validate({"jwt": [raw]}), MemoryStore(), tmp)


def valid_token() -> str:
    claims = {
        "iss": ISSUER,
        "aud": "mcp-guard",
        "sub": "alice",
        "exp": int(time.time()) + 3600,
        "roles": ["r"],
    }
    return jwt.encode(claims, ED_KEY, "EdDSA", headers={"kid": "ed-1"})


TOKEN = valid_token()


def resolve(chain: AuthenticatorChain, token: str) -> str | None:
    async def go() -> str | None:
        try:
            return (await chain.resolve(Credential(token))).subject
        except AuthenticationError:
            return None

    return anyio.run(go)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    position=st.integers(min_value=0, max_value=len(TOKEN) - 1),
    char=st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.="),
)
def test_single_character_mutations_never_verify(tmp_path: Path, position: int, char: str) -> None:
    chain = make_chain(tmp_path)
    mutated = TOKEN[:position] + char + TOKEN[position + 1 :]
    result = resolve(chain, mutated)
    # Base64 padding bits can make a different string decode to the same bytes; only then may it pass.
    if mutated != TOKEN and result is not None:
        assert [jwt.utils.base64url_decode(p) for p in mutated.split(".")] == [
            jwt.utils.base64url_decode(p) for p in TOKEN.split(".")
        ]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=400))
def test_arbitrary_credentials_are_refused_cleanly(tmp_path: Path, text: str) -> None:
    assert resolve(make_chain(tmp_path), text) is None or text == TOKEN


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@given(st.dictionaries(st.text(max_size=6), JSONISH, max_size=5), st.text(max_size=12))
def test_claim_lookup_total(claims: dict[str, object], path: str) -> None:
    claim(claims, path)  # never raises


@given(JSONISH)
def test_string_set_accepts_only_names(value: object) -> None:
    try:
        result = string_set(value, "roles")
    except ValueError:
        assert not (
            value is None
            or isinstance(value, str)
            or (isinstance(value, list) and all(isinstance(v, str) for v in value))
        )
    else:
        assert all(isinstance(v, str) for v in result)
