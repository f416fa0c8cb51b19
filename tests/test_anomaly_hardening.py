"""Attacks on anomaly detection, alerting and the lock action, and what stops each of them."""

from __future__ import annotations

import pytest

from mcp_guard.audit.anomaly import Finding
from mcp_guard.portal.anomalies import hold_targets


def _finding(kind: str, subject: str | None, source: str | None) -> Finding:
    return Finding(kind, subject, source, None, None, 1.0, 0.0, 0.0, ("e1",), "why")


# -- the lock action cannot be turned against others ----------------------------------------------


def test_failing_credentials_for_a_user_never_locks_that_user() -> None:
    # Anyone can fail a login "as" admin from anywhere: the account must not be held for it
    # (the login lockout's own capped account counter deals with distributed guessing).
    account, source = hold_targets(_finding("auth-failures", "admin", "203.0.113.9"), [])
    assert account is None and source is None


def test_failing_credentials_from_one_address_holds_that_address() -> None:
    assert hold_targets(_finding("auth-failures", None, "203.0.113.9"), []) == (None, "203.0.113.9")


def test_a_subject_who_is_denied_again_and_again_is_held() -> None:
    assert hold_targets(_finding("denial-burst", "eve", "203.0.113.9"), []) == ("eve", None)


@pytest.mark.parametrize("source", ["127.0.0.1", "::1", "::ffff:127.0.0.1", "10.0.0.5", "10.9.9.9"])
def test_loopback_and_proxy_addresses_are_never_held(source: str) -> None:
    # Behind a reverse proxy every caller has the proxy's address: holding it locks everyone.
    assert hold_targets(_finding("auth-failures", None, source), ["10.0.0.5", "10.9.0.0/16"]) == (
        None,
        None,
    )


def test_a_public_source_is_held_even_with_proxies_configured() -> None:
    assert hold_targets(_finding("auth-failures", None, "198.51.100.7"), ["10.0.0.5"]) == (
        None,
        "198.51.100.7",
    )
