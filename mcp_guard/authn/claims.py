"""Mapping of token claims (JWT or introspection response) to a :class:`Principal`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..model import Principal
from ._util import claim, string_set

#: RFC 8176 method references that imply a second factor was used.
DEFAULT_MFA_AMR: frozenset[str] = frozenset({"mfa", "otp", "hwk", "sms", "fido", "face", "fpt", "iris"})


@dataclass(frozen=True, slots=True)
class ClaimMapping:
    """Which claims become which principal fields; paths may be dotted (``realm_access.roles``).

    ``attributes`` maps an attribute name (e.g. ``device_compliant``) to a claim
    path; device-posture claims land there for policies to test. MFA is true
    when ``amr`` holds one of ``mfa_amr`` or ``acr`` is one of ``mfa_acr``.
    """

    subject: str = "sub"
    roles: str | None = "roles"
    groups: str | None = "groups"
    tenant: str | None = None
    scopes: str | None = "scope"
    amr: str = "amr"
    acr: str = "acr"
    mfa_amr: frozenset[str] = DEFAULT_MFA_AMR
    mfa_acr: frozenset[str] = frozenset()
    attributes: Mapping[str, str] = field(default_factory=dict)

    def principal(
        self, claims: Mapping[str, Any], *, auth_method: str, issuer: str | None, credential_id: str | None
    ) -> Principal:
        """Raises ValueError on a missing subject or a claim of the wrong type."""
        subject = claim(claims, self.subject)
        if not isinstance(subject, str) or not subject:
            raise ValueError(f"claim {self.subject!r} (subject) missing or not a string")
        tenant = claim(claims, self.tenant) if self.tenant else None
        if tenant is not None and not isinstance(tenant, str):
            raise ValueError(f"claim {self.tenant!r} (tenant) must be a string")
        scopes = string_set(claim(claims, self.scopes), self.scopes) if self.scopes else frozenset()
        if not scopes and self.scopes == "scope" and "scp" in claims:
            scopes = string_set(claims["scp"], "scp")
        amr_value = claim(claims, self.amr)
        amr = tuple(sorted(string_set(amr_value, self.amr))) if amr_value is not None else ()
        acr = claim(claims, self.acr)
        mfa = bool(self.mfa_amr.intersection(amr)) or (isinstance(acr, str) and acr in self.mfa_acr)
        auth_time_value = claims.get("auth_time")
        auth_time = None
        if auth_time_value is not None:
            if not isinstance(auth_time_value, (int, float)) or isinstance(auth_time_value, bool):
                raise ValueError("claim 'auth_time' must be a number")
            auth_time = datetime.fromtimestamp(auth_time_value, tz=timezone.utc)
        exp = claims.get("exp")
        if exp is not None and (not isinstance(exp, (int, float)) or isinstance(exp, bool)):
            raise ValueError("claim 'exp' must be a number")
        return Principal(
            subject=subject,
            tenant=tenant,
            roles=string_set(claim(claims, self.roles), self.roles) if self.roles else frozenset(),
            groups=string_set(claim(claims, self.groups), self.groups) if self.groups else frozenset(),
            scopes=scopes,
            auth_method=auth_method,
            mfa=mfa,
            amr=amr,
            auth_time=auth_time,
            attributes={name: claim(claims, path) for name, path in self.attributes.items()},
            expires_at=float(exp) if exp is not None else None,
            credential_id=credential_id,
            issuer=issuer,
        )
