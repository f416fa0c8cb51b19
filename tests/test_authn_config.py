"""The [authn] config: validation that makes forged-token setups impossible, docs examples, auth check."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import given
from hypothesis import strategies as st

from mcp_guard.authn._util import parse_duration
from mcp_guard.authn.config import AuthnSettings, load_config_file
from mcp_guard.errors import ConfigError

from .test_authn_jwt import RSA_KEY, JWKSServer, idp, public_jwk, server  # noqa: F401 - fixtures

ROOT = Path(__file__).resolve().parents[1]
BASE_JWT = {"issuer": "https://idp", "audience": "a", "jwks_file": "k.json", "algorithms": ["RS256"]}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"algorithms": ["none"]}, "'none' is never accepted"),
        ({"algorithms": ["HS256"]}, "HMAC algorithms are not accepted"),
        ({"algorithms": ["RS256", "hs512"]}, "HMAC"),
        ({"algorithms": []}, "at least one algorithm"),
        ({"algorithms": ["RS1"]}, "unsupported algorithm"),
        ({"audience": ""}, "audience must not be empty"),
        ({"jwks_url": "https://idp/keys"}, "exactly one of"),
        ({"jwks_file": None}, "exactly one of"),
        ({"leeway": "soon"}, "invalid duration"),
        ({"verify_signature": False}, "Extra inputs are not permitted"),
    ],
)
def test_unsafe_jwt_configs_rejected(change: dict[str, Any], message: str) -> None:
    raw = {**BASE_JWT, **change}
    raw = {k: v for k, v in raw.items() if v is not None}
    with pytest.raises(ValueError, match=message):
        AuthnSettings.model_validate({"jwt": [raw]})


def test_missing_algorithms_and_audience_rejected() -> None:
    for field in ("algorithms", "audience", "issuer"):
        raw = {k: v for k, v in BASE_JWT.items() if k != field}
        with pytest.raises(ValueError, match=field):
            AuthnSettings.model_validate({"jwt": [raw]})


def test_config_error_names_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "guard.toml"
    path.write_text(
        '[guard]\nmode = "enforce"\n\n[[authn.jwt]]\nissuer = "https://idp"\naudience = "a"\n'
        'jwks_file = "k.json"\nalgorithms = ["HS256"]\n'
    )
    with pytest.raises(ConfigError) as info:
        load_config_file(path)
    assert info.value.file == str(path)
    assert info.value.line == 8
    assert info.value.field == "authn.jwt[0].algorithms"
    path.write_text("[authn\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config_file(path)


def toml_blocks(text: str) -> list[str]:
    return re.findall(r"```toml\n(.*?)```", text, flags=re.S)


def test_documented_config_examples_are_valid() -> None:
    import tomllib

    docs = (ROOT / "docs" / "authentication.md").read_text()
    blocks = toml_blocks(docs)
    assert len(blocks) >= 5
    for block in blocks:
        document = tomllib.loads(block)
        AuthnSettings.model_validate(document.get("authn", {}))


@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(["", "s", "m", "h", "d", "w", "ms"]))
def test_parse_duration_units(n: int, unit: str) -> None:
    factor = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "ms": 0.001}[unit]
    assert parse_duration(f"{n}{unit}") == pytest.approx(n * factor)


@given(st.text(max_size=12))
def test_parse_duration_never_crashes_unexpectedly(text: str) -> None:
    with contextlib.suppress(ValueError):
        assert parse_duration(text) >= 0


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mcp_guard.cli.main", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_auth_check_cli_with_oidc_style_config(tmp_path: Path) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [public_jwk(key, "k1")]}))
    (tmp_path / "guard.toml").write_text(
        '[guard]\nstate = "memory://"\n\n[[authn.jwt]]\nissuer = "https://idp.example"\n'
        'audience = "mcp-guard"\n'
        'jwks_file = "jwks.json"\nalgorithms = ["EdDSA"]\nroles_claim = "realm_access.roles"\n'
    )
    now = int(time.time())
    claims = {
        "iss": "https://idp.example",
        "aud": "mcp-guard",
        "sub": "alice",
        "exp": now + 60,
        "realm_access": {"roles": ["analyst"]},
        "amr": ["pwd", "hwk"],
    }
    token = jwt.encode(claims, key, "EdDSA", headers={"kid": "k1"})
    ok = run("auth", "check", "--config", "guard.toml", "--token", token, cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    principal = json.loads(ok.stdout)
    assert principal["subject"] == "alice" and principal["roles"] == ["analyst"] and principal["mfa"] is True

    expired = jwt.encode({**claims, "exp": now - 100}, key, "EdDSA", headers={"kid": "k1"})
    bad = run("auth", "check", "--config", "guard.toml", "--token", expired, cwd=tmp_path)
    assert bad.returncode == 1
    assert bad.stderr.strip() == "refused: token expired" and bad.stdout == ""

    garbage = run("auth", "check", "--config", "guard.toml", "--token", "not-a-token", cwd=tmp_path)
    assert garbage.returncode == 1 and "not recognised" in garbage.stderr

    (tmp_path / "guard.toml").write_text(
        '[[authn.jwt]]\nissuer = "x"\naudience = "a"\nalgorithms = ["none"]\njwks_file = "jwks.json"\n'
    )
    broken = run("auth", "check", "--config", "guard.toml", "--token", token, cwd=tmp_path)
    assert broken.returncode == 2
    assert "guard.toml:4: authn.jwt[0].algorithms" in broken.stderr and "Traceback" not in broken.stderr


async def test_oidc_example_from_docs_works_against_a_local_idp(server: JWKSServer) -> None:  # noqa: F811
    """The first example of the docs, pointed at a local IdP, verifies that IdP's tokens."""
    import tomllib

    from mcp_guard.authn import build_authentication
    from mcp_guard.protocols import Credential
    from mcp_guard.store import MemoryStore

    example = toml_blocks((ROOT / "docs" / "authentication.md").read_text())[0]
    example = example.replace("https://login.example.com/realms/acme", server.url)
    document = tomllib.loads(example)
    document["authn"]["jwt"][0]["allow_insecure_loopback"] = True
    settings = AuthnSettings.model_validate(document["authn"])
    chain = build_authentication(settings, MemoryStore(), Path("."))
    claims = {
        "iss": server.url,
        "aud": "mcp-guard",
        "sub": "carol",
        "exp": int(time.time()) + 60,
        "realm_access": {"roles": ["analyst"]},
        "acr": "mfa",
        "org": "acme",
        "device": {"compliant": False},
    }
    server.issuer = server.url
    try:
        principal = await chain.resolve(
            Credential(jwt.encode(claims, RSA_KEY, "RS256", headers={"kid": "rsa-1"}))
        )
    finally:
        server.issuer = "https://idp.test"
    assert principal.roles == {"analyst"} and principal.mfa and principal.tenant == "acme"
    assert principal.attributes == {"device_compliant": False}


def test_documented_python_example_runs() -> None:
    docs = (ROOT / "docs" / "authentication.md").read_text()
    (example,) = re.findall(r"```python\n(.*?)```", docs, flags=re.S)
    result = subprocess.run([sys.executable, "-c", example], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "build-robot ['ci']"
