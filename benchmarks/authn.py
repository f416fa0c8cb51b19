"""Cost of authenticating one request: cold JWT verification per algorithm, the cached path, API keys.

Run: .venv/bin/python benchmarks/authn.py   (about 10 s)
"""

from __future__ import annotations

import hashlib
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from mcp_guard.authn import (
    ApiKeyAuthenticator,
    AuthenticatorChain,
    JWTAuthenticator,
    KeySet,
    StaticKeys,
    create_api_key,
)
from mcp_guard.authn.api_keys import ConfiguredKey
from mcp_guard.protocols import Credential
from mcp_guard.store import MemoryStore

ISSUER = "https://idp.bench"


def jwk(key: Any, kid: str) -> dict[str, Any]:
    pub = key.public_key()
    if isinstance(pub, rsa.RSAPublicKey):
        data = jwt.algorithms.RSAAlgorithm.to_jwk(pub, as_dict=True)
    elif isinstance(pub, ec.EllipticCurvePublicKey):
        data = jwt.algorithms.ECAlgorithm.to_jwk(pub, as_dict=True)
    else:
        data = jwt.algorithms.OKPAlgorithm.to_jwk(pub, as_dict=True)
    return {**data, "kid": kid}


async def measure(fn: Callable[[], Awaitable[object]], seconds: float = 1.0) -> tuple[float, float, int]:
    """(median us, p99 us, iterations) over batches of 100 calls."""
    for _ in range(50):
        await fn()
    samples: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        for _ in range(100):
            await fn()
        samples.append((time.perf_counter() - start) / 100 * 1e6)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1], len(samples) * 100


async def main() -> None:
    keys = {
        "RS256": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ES256": ec.generate_private_key(ec.SECP256R1()),
        "EdDSA": ed25519.Ed25519PrivateKey.generate(),
    }
    keyset = KeySet({"keys": [jwk(k, alg) for alg, k in keys.items()]}, list(keys))
    verifier = JWTAuthenticator(ISSUER, "mcp-guard", list(keys), StaticKeys(keyset))
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": "mcp-guard",
        "sub": "alice",
        "exp": now + 3600,
        "iat": now,
        "jti": "j1",
        "roles": ["analyst", "viewer"],
        "groups": ["eng"],
        "amr": ["pwd", "otp"],
        "scope": "mcp read",
    }
    rows: list[tuple[str, float, float, int]] = []
    for alg, key in keys.items():
        token = jwt.encode(claims, key, alg, headers={"kid": alg})
        credential = Credential(token, source="http")
        rows.append(
            (
                f"JWT {alg} cold (full verification)",
                *await measure(lambda c=credential: verifier.authenticate(c)),
            )
        )

    token = jwt.encode(claims, keys["EdDSA"], "EdDSA", headers={"kid": "EdDSA"})
    chain = AuthenticatorChain([verifier])
    credential = Credential(token, source="http")
    await chain.resolve(credential)
    rows.append(
        (
            "JWT cached (AuthenticatorChain.resolve, same token)",
            *await measure(lambda: chain.resolve(credential)),
        )
    )

    api_key = "a-configured-api-key-" + "x" * 32
    configured = ApiKeyAuthenticator([ConfiguredKey(hashlib.sha256(api_key.encode()).hexdigest(), "bot")])
    key_credential = Credential(api_key)
    rows.append(
        ("API key (config digest) cold", *await measure(lambda: configured.authenticate(key_credential)))
    )
    store = MemoryStore()
    stored_key, _ = await create_api_key(store, "bot", roles=["reader"])
    stored = ApiKeyAuthenticator([], store)
    stored_credential = Credential(stored_key)
    rows.append(
        ("API key (state store, memory) cold", *await measure(lambda: stored.authenticate(stored_credential)))
    )
    key_chain = AuthenticatorChain([stored])
    await key_chain.resolve(stored_credential)
    rows.append(
        (
            "API key cached (AuthenticatorChain.resolve)",
            *await measure(lambda: key_chain.resolve(stored_credential)),
        )
    )

    width = max(len(r[0]) for r in rows)
    print(f"{'case':<{width}}  {'median us':>10}  {'p99 us':>10}  {'calls':>9}")
    print("-" * (width + 35))
    for name, median, p99, n in rows:
        print(f"{name:<{width}}  {median:>10.2f}  {p99:>10.2f}  {n:>9}")
    cached = rows[3][1]
    print(f"\ncached path goal <= 5 us: {'met' if cached <= 5 else 'NOT met'} ({cached:.2f} us)")


if __name__ == "__main__":
    anyio.run(main)
