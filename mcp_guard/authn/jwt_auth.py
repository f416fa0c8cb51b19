"""JWT bearer tokens from a configured issuer (an OIDC provider, or our own token issuer).

Everything that decides trust is configuration, never the token: the issuer,
the audience, the algorithm allow-list and where keys come from. Header fields
that point at keys (``jku``, ``x5u``, ``jwk``, ``x5c``) are ignored; ``crit`` is
refused because we implement no extensions; ``exp`` is required.
"""

from __future__ import annotations

import binascii
import json
import time
from collections.abc import Callable, Iterable
from typing import Any

import jwt

from ..errors import AuthenticationError
from ..model import Principal
from ..protocols import Credential
from .claims import ClaimMapping
from .jwks import KID_PATTERN, KeySource, check_algorithms

MAX_TOKEN_BYTES = 16 * 1024


def _segment(token: str, index: int) -> dict[str, Any] | None:
    """Decode one JWT segment without trusting it (used only to route the token)."""
    try:
        part = token.split(".")[index]
        value = json.loads(jwt.utils.base64url_decode(part.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error, IndexError):
        return None
    return value if isinstance(value, dict) else None


class JWTAuthenticator:
    """Verifies JWTs whose (unverified) ``iss`` names this issuer; others are "not mine".

    ``audience`` is required: without it any token the IdP minted for any other
    application would be accepted here.
    """

    def __init__(
        self,
        issuer: str,
        audience: str | Iterable[str],
        algorithms: Iterable[str],
        keys: KeySource,
        *,
        claims: ClaimMapping | None = None,
        leeway: float = 30.0,
        required_claims: Iterable[str] = (),
        max_token_bytes: int = MAX_TOKEN_BYTES,
        auth_method: str = "jwt",
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not issuer:
            raise ValueError("issuer is required")
        audiences = [audience] if isinstance(audience, str) else list(audience)
        if not audiences or not all(audiences):
            raise ValueError("audience is required")
        self.issuer = issuer
        self.audiences = audiences
        self.algorithms = check_algorithms(algorithms)
        self.keys = keys
        self.claims = claims or ClaimMapping()
        self.leeway = leeway
        self.required = sorted({"exp", "iss", "aud", *required_claims})
        self.max_token_bytes = max_token_bytes
        self.auth_method = auth_method
        self._clock = clock

    async def maintain(self) -> None:
        """Background upkeep of the key source (refresh before expiry), if it has any."""
        maintain = getattr(self.keys, "maintain", None)
        if maintain is not None:
            await maintain()

    async def authenticate(self, credential: Credential) -> Principal | None:
        token = credential.token
        if not token or token.count(".") != 2:
            return None
        if len(token) > self.max_token_bytes:
            raise AuthenticationError(f"token larger than {self.max_token_bytes} bytes")
        header = _segment(token, 0)
        payload = _segment(token, 1)
        if header is None or payload is None or payload.get("iss") != self.issuer:
            return None
        return await self._verify(token, header)

    async def _verify(self, token: str, header: dict[str, Any]) -> Principal:
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise AuthenticationError(f"algorithm {alg!r} not allowed for issuer {self.issuer}")
        if "crit" in header:
            raise AuthenticationError("token carries critical header extensions (not supported)")
        kid = header.get("kid")
        if kid is not None and (not isinstance(kid, str) or not KID_PATTERN.match(kid)):
            raise AuthenticationError("malformed kid header")
        key = await self.keys.key(kid, alg)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self.audiences,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": self.required, "verify_sub": False, "verify_jti": False},
            )
        except jwt.ExpiredSignatureError:
            raise AuthenticationError("token expired") from None
        except jwt.ImmatureSignatureError:
            raise AuthenticationError("token not yet valid (nbf/iat in the future)") from None
        except jwt.InvalidAudienceError:
            raise AuthenticationError("token audience does not match") from None
        except jwt.InvalidIssuerError:
            raise AuthenticationError("token issuer does not match") from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthenticationError(f"token lacks required claim {exc.claim!r}") from None
        except jwt.InvalidSignatureError:
            raise AuthenticationError("bad token signature") from None
        except jwt.PyJWTError as exc:
            raise AuthenticationError(f"invalid token: {exc}") from None
        jti = claims.get("jti")
        if jti is not None and not isinstance(jti, str):
            raise AuthenticationError("claim 'jti' must be a string")
        try:
            return self.claims.principal(
                claims, auth_method=self.auth_method, issuer=self.issuer, credential_id=jti
            )
        except ValueError as exc:
            raise AuthenticationError(str(exc)) from None
