"""OAuth 2.0 token introspection (RFC 7662) for opaque access tokens.

The chain tries it last: every credential nothing else claimed is sent to the
authorization server. Answers are cached by the chain until the token's ``exp``
and at most ``cache_ttl`` seconds, so a token revoked at the server stops
working within that bound.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Literal

from ..errors import AuthenticationError
from ..model import Principal
from ..protocols import Credential
from .claims import ClaimMapping
from .fetch import FetchError, SafeFetcher


class IntrospectionAuthenticator:
    """Asks the authorization server whether a token is active, authenticating as a client.

    ``audience``/``issuer``, when set, must match the response's ``aud``/``iss``.
    """

    def __init__(
        self,
        endpoint: str,
        client_id: str,
        client_secret: str,
        *,
        fetcher: SafeFetcher | None = None,
        client_auth: Literal["client_secret_basic", "client_secret_post"] = "client_secret_basic",
        claims: ClaimMapping | None = None,
        audience: str | Iterable[str] | None = None,
        issuer: str | None = None,
        cache_ttl: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.endpoint = endpoint
        self.client_id = client_id
        self._secret = client_secret
        self.fetcher = fetcher or SafeFetcher()
        self.client_auth = client_auth
        self.claims = claims or ClaimMapping()
        self.audiences = (
            None if audience is None else ({audience} if isinstance(audience, str) else set(audience))
        )
        self.issuer = issuer
        self.cache_ttl = cache_ttl
        self._clock = clock

    async def authenticate(self, credential: Credential) -> Principal | None:
        token = credential.token
        if not token:
            return None
        form = {"token": token, "token_type_hint": "access_token"}
        auth: tuple[str, str] | None = (self.client_id, self._secret)
        if self.client_auth == "client_secret_post":
            form.update(client_id=self.client_id, client_secret=self._secret)
            auth = None
        try:
            answer = await self.fetcher.post_form(self.endpoint, form, auth=auth)
        except FetchError as exc:
            raise AuthenticationError(f"introspection unavailable: {exc}") from None
        if answer.get("active") is not True:
            raise AuthenticationError("token is not active (introspection)")
        exp = answer.get("exp")
        if exp is not None and (not isinstance(exp, (int, float)) or exp <= self._clock()):
            raise AuthenticationError("token expired (introspection)")
        if self.issuer is not None and answer.get("iss") != self.issuer:
            raise AuthenticationError("introspected token has a different issuer")
        if self.audiences is not None:
            aud = answer.get("aud")
            auds = {aud} if isinstance(aud, str) else set(aud) if isinstance(aud, list) else set()
            if not auds & self.audiences:
                raise AuthenticationError("introspected token has a different audience")
        jti = answer.get("jti")
        try:
            return self.claims.principal(
                answer,
                auth_method="introspection",
                issuer=answer.get("iss") if isinstance(answer.get("iss"), str) else self.issuer,
                credential_id=jti if isinstance(jti, str) else None,
            )
        except ValueError as exc:
            raise AuthenticationError(str(exc)) from None
