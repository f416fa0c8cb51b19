"""``[anomalies]`` in guard.toml: detector thresholds, live alerting and the optional lock action.

Validated like every other section (unknown keys refused with a "did you mean", each error with
file, line and field) and turned into the plain :class:`~.detect.Thresholds` the detectors take.
"""

from __future__ import annotations

import ipaddress
import socket
from datetime import timezone, tzinfo
from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ...authn.fetch import address_allowed
from .detect import KINDS, Kind, Thresholds

#: Kinds that lock by default: someone guessing credentials or probing what they may do.
_LOCKING: tuple[Kind, ...] = ("auth-failures", "denial-burst")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class WebhookSettings(_Model):
    """One ``[[anomalies.webhooks]]``: alerts POSTed as JSON, under the outbound SSRF rules."""

    url: str = Field(min_length=1)
    #: Also private, shared and unique-local addresses (a receiver on the internal network).
    allow_private_addresses: bool = False
    #: Plain ``http://`` to a loopback address (a local relay).
    allow_insecure_loopback: bool = False
    #: Further attempts after a failed delivery, ``backoff`` seconds apart, doubling each time.
    retries: int = Field(3, ge=0, le=10)
    backoff: float = Field(1.0, gt=0, le=300)
    timeout: float = Field(5.0, gt=0, le=60)

    @model_validator(mode="after")
    def _url(self) -> WebhookSettings:
        """What can be judged without resolving the name is refused at load, not at the first alert."""
        parts = urlsplit(self.url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError(f"url {self.url!r} must be an https:// URL with a host")
        if parts.username is not None or parts.password is not None:
            raise ValueError("url must not carry credentials (they would end up in logs)")
        host = parts.hostname
        literal = _literal(host)
        loopback = host == "localhost" or (literal is not None and literal.is_loopback)
        if parts.scheme == "http" and not (self.allow_insecure_loopback and loopback):
            raise ValueError(
                "plain http:// only to a loopback address, with allow_insecure_loopback = true; use https://"
            )
        if literal is not None and not address_allowed(
            literal, private=self.allow_private_addresses, loopback=self.allow_insecure_loopback
        ):
            hint = (
                ""
                if self.allow_private_addresses
                else " (allow_private_addresses = true for an internal one)"
            )
            raise ValueError(f"url {self.url!r} points at a non-public address{hint}")
        return self


def _literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address ``host`` spells, also in the numeric IPv4 forms resolvers accept
    (``2130706433``, ``0x7f000001``, ``127.1``), so they are judged at load like dotted ones."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if host[:1].isdigit() and all(c in "0123456789abcdefxABCDEFX." for c in host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


class AnomalySettings(_Model):
    """Thresholds of the detectors (``docs/audit.md``) and what ``mcp-guard serve`` does with findings."""

    #: The kinds to look for (default: all).
    kinds: list[Kind] = Field(default_factory=lambda: list(KINDS))
    auth_failures: int = Field(10, ge=1)
    auth_window: float = Field(60.0, gt=0)
    denials: int = Field(20, ge=1)
    denial_window: float = Field(300.0, gt=0)
    rate_window: float = Field(300.0, gt=0)
    rate_factor: float = Field(10.0, gt=1)
    rate_min: int = Field(50, ge=1)
    rate_history: int = Field(5, ge=1)
    min_history: int = Field(50, ge=1)
    off_hours_share: float = Field(0.01, gt=0, lt=1)
    #: IANA time zone the hours of ``off-hours`` are counted in.
    timezone: str = "UTC"
    #: ``mcp-guard serve`` runs the detectors on the events it writes.
    live: bool = True
    #: Days of the trail read when serve starts, to know the subjects' habits.
    history_days: float = Field(14.0, ge=0)
    #: ``lock``: a finding's subject (and, for refused credentials, source address) is locked out.
    action: Literal["none", "lock"] = "none"
    #: Seconds a lock lasts.
    lock_for: float = Field(900.0, gt=0)
    #: The kinds whose findings lock (with ``action = "lock"``).
    lock_kinds: list[Kind] = Field(default_factory=lambda: list(_LOCKING))
    webhooks: list[WebhookSettings] = Field(default_factory=list)
    #: Installed alert sink plugins (entry points of group ``mcp_guard.alert_sinks``) by name.
    sinks: list[str] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        zone_of(value)
        return value

    def thresholds(self) -> Thresholds:
        return Thresholds(
            kinds=frozenset(self.kinds),
            auth_failures=self.auth_failures,
            auth_window=self.auth_window,
            denials=self.denials,
            denial_window=self.denial_window,
            rate_window=self.rate_window,
            rate_factor=self.rate_factor,
            rate_min=self.rate_min,
            rate_history=self.rate_history,
            min_history=self.min_history,
            off_hours_share=self.off_hours_share,
            timezone=zone_of(self.timezone),
        )


def zone_of(name: str) -> tzinfo:
    if name.upper() == "UTC":
        return timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r} (use an IANA name such as Europe/Berlin, or UTC)"
        ) from None
