"""The authenticator chain: order, cache, expiry, revocation, anonymous, fail-closed."""

from __future__ import annotations

import pytest

from mcp_guard.authn import (
    AnonymousAuthenticator,
    AuthenticatorChain,
    FunctionAuthenticator,
    RevocationList,
    StaticAuthenticator,
)
from mcp_guard.errors import AuthenticationError, GuardUnavailable, RateLimited
from mcp_guard.model import Principal
from mcp_guard.protocols import Authenticator, Credential
from mcp_guard.store import MemoryStore

from .test_authn_jwt import Recorder


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Counting:
    """Accepts tokens starting with a prefix; counts calls to prove caching."""

    def __init__(self, prefix: str, principal: Principal, cache_ttl: float | None = None) -> None:
        self.prefix, self.principal, self.calls = prefix, principal, 0
        if cache_ttl is not None:
            self.cache_ttl = cache_ttl

    async def authenticate(self, credential: Credential) -> Principal | None:
        self.calls += 1
        if credential.token and credential.token.startswith(self.prefix):
            if credential.token.endswith("-bad"):
                raise AuthenticationError("bad one")
            return self.principal
        return None


def test_builtins_satisfy_protocol() -> None:
    p = Principal(subject="x")
    for auth in (StaticAuthenticator(p), AnonymousAuthenticator(), FunctionAuthenticator(lambda c: None)):  # type: ignore[arg-type,return-value]
        assert isinstance(auth, Authenticator)


async def test_order_and_first_claimant_wins() -> None:
    a = Counting("a", Principal(subject="from-a"))
    b = Counting("a", Principal(subject="from-b"))
    chain = AuthenticatorChain([a, b])
    assert (await chain.resolve(Credential("a1"))).subject == "from-a"
    assert b.calls == 0


async def test_cache_hit_skips_authenticators_and_expires() -> None:
    clock = Clock()
    a = Counting("t", Principal(subject="u", expires_at=clock.now + 100))
    chain = AuthenticatorChain([a], max_ttl=1000, clock=clock)
    for _ in range(3):
        await chain.resolve(Credential("tok"))
    assert a.calls == 1
    clock.now += 99
    await chain.resolve(Credential("tok"))
    assert a.calls == 1
    clock.now += 2  # past the principal's expiry: re-verified, and refused as expired
    with pytest.raises(AuthenticationError, match="expired"):
        await chain.resolve(Credential("tok"))
    assert a.calls == 2


async def test_max_ttl_and_authenticator_cache_ttl_bound_the_cache() -> None:
    clock = Clock()
    a = Counting("t", Principal(subject="u"), cache_ttl=5)
    chain = AuthenticatorChain([a], max_ttl=60, clock=clock)
    await chain.resolve(Credential("tok"))
    clock.now += 4
    await chain.resolve(Credential("tok"))
    assert a.calls == 1
    clock.now += 2
    await chain.resolve(Credential("tok"))
    assert a.calls == 2


async def test_revocation_takes_effect_on_cached_principal_across_processes() -> None:
    store = MemoryStore()
    revocations = RevocationList(store)
    a = Counting("t", Principal(subject="u", credential_id="cid-1"))
    chain = AuthenticatorChain([a], revocations=revocations)
    await chain.resolve(Credential("tok"))
    # Another process revokes through the store; our copy learns it on reload/pub-sub.
    await RevocationList(store).revoke("cid-1")
    await revocations.reload()
    with pytest.raises(AuthenticationError, match="revoked"):
        await chain.resolve(Credential("tok"))


async def test_revocation_via_background_pubsub() -> None:
    import anyio

    store = MemoryStore()
    a = Counting("t", Principal(subject="u", credential_id="cid-2"))
    chain = AuthenticatorChain([a], revocations=RevocationList(store, refresh_interval=30))
    async with chain:
        await chain.resolve(Credential("tok"))
        await RevocationList(store).revoke("cid-2")
        with anyio.fail_after(2):
            while "cid-2" not in chain.revocations:
                await anyio.sleep(0.01)
        with pytest.raises(AuthenticationError, match="revoked"):
            await chain.resolve(Credential("tok"))


async def test_uncached_path_checks_store_directly() -> None:
    store = MemoryStore()
    await RevocationList(store).revoke("cid-3")
    chain = AuthenticatorChain(
        [Counting("t", Principal(subject="u", credential_id="cid-3"))], revocations=RevocationList(store)
    )
    with pytest.raises(AuthenticationError, match="revoked"):
        await chain.resolve(Credential("tok"))


async def test_anonymous_only_without_credential() -> None:
    anon = Principal(subject="anonymous", roles=frozenset({"guest"}))
    chain = AuthenticatorChain([Counting("t", Principal(subject="u"))], anonymous=anon)
    assert (await chain.resolve(Credential(None))) is anon
    assert (await chain.resolve(Credential(""))) is anon
    with pytest.raises(AuthenticationError, match="not recognised"):
        await chain.resolve(Credential("garbage"))
    with pytest.raises(AuthenticationError, match="bad one"):
        await chain.resolve(Credential("t-bad"))


async def test_no_credential_without_anonymous_refused_and_audited() -> None:
    auditor = Recorder()
    chain = AuthenticatorChain([], auditor=auditor)
    with pytest.raises(AuthenticationError, match="no credential"):
        await chain.resolve(Credential(None, source="stdio"))
    assert auditor.events[-1].transport == "stdio"


async def test_broken_authenticator_fails_closed() -> None:
    async def boom(credential: Credential) -> Principal | None:
        raise RuntimeError("database down")

    auditor = Recorder()
    fallback = Counting("", Principal(subject="should-not-happen"))
    chain = AuthenticatorChain([FunctionAuthenticator(boom), fallback], auditor=auditor)
    with pytest.raises(GuardUnavailable, match="FunctionAuthenticator failed: database down"):
        await chain.resolve(Credential("x"))
    assert fallback.calls == 0
    assert "database down" in auditor.events[-1].reasons[0]


async def test_rate_limited_passes_through_and_is_audited() -> None:
    async def locked(credential: Credential) -> Principal | None:
        raise RateLimited("locked", retry_after=3)

    auditor = Recorder()
    chain = AuthenticatorChain([FunctionAuthenticator(locked)], auditor=auditor)
    with pytest.raises(RateLimited):
        await chain.resolve(Credential("x"))
    assert auditor.events[-1].reasons == ("locked",)


async def test_oversized_and_non_text_credentials_refused() -> None:
    chain = AuthenticatorChain([Counting("", Principal(subject="u"))])
    with pytest.raises(AuthenticationError, match="larger than"):
        await chain.resolve(Credential("x" * 20_000))
    with pytest.raises(AuthenticationError, match="not valid text"):
        await chain.resolve(Credential("\ud800"))


async def test_cache_is_bounded() -> None:
    a = Counting("", Principal(subject="u"))
    chain = AuthenticatorChain([a], cache_size=10)
    for i in range(50):
        await chain.resolve(Credential(f"tok-{i}"))
    assert len(chain._cache) <= 10


async def test_static_authenticator_token_compare() -> None:
    p = Principal(subject="local")
    auth = StaticAuthenticator(p, token="sesame")
    assert await auth.authenticate(Credential("sesame")) is p
    assert await auth.authenticate(Credential("sesam")) is None
    assert await auth.authenticate(Credential(None)) is None


def test_credential_sources() -> None:
    from mcp_guard.authn import credential_from_authorization, credential_from_env

    assert credential_from_authorization("Bearer abc", "10.0.0.1") == Credential("abc", "http", "10.0.0.1")
    assert credential_from_authorization("bearer   abc ").token == "abc"
    assert credential_from_authorization(None).token is None
    assert credential_from_authorization("  ").token is None
    for bad in ("Basic dXNlcjpwdw==", "Bearer", "Bearer   ", "Token abc"):
        with pytest.raises(AuthenticationError):
            credential_from_authorization(bad)
    assert credential_from_env({"MCP_GUARD_TOKEN": " t0k "}) == Credential("t0k", "stdio")
    assert credential_from_env({}) == Credential(None, "stdio")


async def test_background_maintenance_refreshes_keys() -> None:
    import anyio

    class Maintained(Counting):
        def __init__(self) -> None:
            super().__init__("t", Principal(subject="u"))
            self.rounds = 0

        async def maintain(self) -> None:
            while True:
                self.rounds += 1
                await anyio.sleep(0.01)

    auth = Maintained()
    async with AuthenticatorChain([auth]):
        with anyio.fail_after(2):
            while auth.rounds < 3:
                await anyio.sleep(0.01)
    stopped = auth.rounds
    await anyio.sleep(0.05)
    assert auth.rounds == stopped  # cancelled with the context


async def test_tokens_alternating_each_resolve_to_their_own_principal() -> None:
    # The chain remembers the hash of the token string it saw last: a different token, an equal
    # token in another string object, and a revoked one must each still be looked up as such.
    a = Counting("a", Principal(subject="from-a", credential_id="ka"))
    b = Counting("b", Principal(subject="from-b", credential_id="kb"))
    revocations = RevocationList(None)
    chain = AuthenticatorChain([a, b], revocations=revocations)
    token_a = "a-" + "x" * 20
    for _ in range(3):
        assert (await chain.resolve(Credential(token_a))).subject == "from-a"
        assert (await chain.resolve(Credential("b-token"))).subject == "from-b"
    equal = "".join(["a-", "x" * 20])
    assert equal == token_a and equal is not token_a
    assert (await chain.resolve(Credential(equal))).subject == "from-a"
    assert (a.calls, b.calls) == (2, 1)  # each verified once (a also declined b-token once)
    assert (await chain.resolve(Credential(token_a))).subject == "from-a"
    await revocations.revoke("ka")
    with pytest.raises(AuthenticationError):
        await chain.resolve(Credential(token_a))  # the very string hashed last: still refused
    assert (await chain.resolve(Credential("b-token"))).subject == "from-b"
    with pytest.raises(AuthenticationError):
        await chain.resolve(Credential("c-unknown"))
