"""Secret detection and redaction (results, and arguments before they reach the audit trail)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_guard.sanitize import find_secrets, redact_secrets
from mcp_guard.sanitize.redact import redact_text

PEM = (
    "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5mE\n-----END EC PRIVATE KEY-----"
)

SECRETS = [
    ("aws-access-key-id", "key AKIA2IBYYURL7B6KJ6HB in the config"),
    ("aws-secret-access-key", "AWS_SECRET_ACCESS_KEY: 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"),
    ("github-token", "Authorization: token ghp_oFogNCAI3Ao3pxTnHyf6t5YdIngBaVbVJBMQ"),
    ("gitlab-token", "PRIVATE-TOKEN: glpat-xK9f2LmQ7rT4vW1zY8aB"),
    ("slack-token", "SLACK=xoxb-48334402717-625112133290-ee214e69886dd9078d3fe0a0"),
    (
        "slack-webhook",
        "post to https://hooks.slack.com/services/T0AAA1111/B0BBB2222/abcdefghijklmnopqrstuvwx",
    ),
    ("private-key", PEM),
    (
        "jwt",
        "Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ1aWQiOjQ0NzF9."
        "wsNAwiEEyemmfwpU7naOZirfIfIkUuhu_K44qThbfho",
    ),
    ("connection-string-password", "DATABASE_URL=postgres://app:S3cr3t-Pa55@db.internal:5432/app"),
    ("password-parameter", "jdbc:mysql://db:3306/sales?user=report&password=W1nter2025!Sales"),
    ("generic-secret", 'config = {"client_secret": "q8Zt3LmN0pRv7XyB2cD5"}'),
    ("stripe-key", "STRIPE=sk_live_51HxYzAbCdEfGhIjKlMnOpQrSt"),
    ("google-api-key", "maps key AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q"),
]


@pytest.mark.parametrize(("kind", "text"), SECRETS)
def test_each_secret_kind_is_found_and_masked(kind: str, text: str) -> None:
    found = find_secrets(text)
    assert kind in {s.kind for s in found}, found
    masked = redact_text(text)
    assert f"[REDACTED:{kind}]" in masked
    assert find_secrets(masked) == []


@pytest.mark.parametrize(
    "text",
    [
        "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "AKIAIOSFODNN7EXAMPLE",
        "Stripe test placeholder: sk_test_XXXXXXXXXXXXXXXXXXXXXXXX",
        "password=${DB_PASSWORD}",
        "token: <your-token-here>",
        "The page_token field paginates results.",
        "api_key = 'xxxxxxxxxxxxxxxxxxxx'",
        "commit 9c1e2f4a7b3d and sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "https://example.com/docs?page=2&sort=asc",
    ],
)
def test_placeholders_and_ordinary_text_are_not_secrets(text: str) -> None:
    assert find_secrets(text) == []


def test_nested_json_values_keep_their_shape() -> None:
    value = {
        "args": ["ok", {"headers": {"Authorization": "token ghp_oFogNCAI3Ao3pxTnHyf6t5YdIngBaVbVJBMQ"}}],
        "n": 3,
    }
    redacted = redact_secrets(value)
    assert redacted["n"] == 3 and redacted["args"][0] == "ok"
    assert redacted["args"][1]["headers"]["Authorization"] == "token [REDACTED:github-token]"
    assert "ghp_" in json.dumps(value)  # input untouched
    assert redact_secrets("plain") == "plain" and redact_secrets(None) is None


_token_chars = st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")


_bodies = st.text(_token_chars, min_size=36, max_size=36).filter(lambda b: len(set(b)) > 12)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80), _bodies, st.text(max_size=80))
def test_redaction_removes_every_token_and_is_idempotent(before: str, body: str, after: str) -> None:
    """Realistic (high-entropy) tokens; runs like ``ghp_000...`` are placeholders by design."""
    text = f"{before} ghp_{body} {after}"
    once = redact_text(text)
    assert f"ghp_{body}" not in once
    assert redact_text(once) == once


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_find_secrets_spans_are_inside_the_text(text: str) -> None:
    for match in find_secrets(text):
        assert 0 <= match.start < match.end <= len(text)


@pytest.mark.parametrize(
    "text, key",
    [
        ("REDIS_URL=redis://:Wq81mZt4LxPa0ke9Rv2Ys7Hc@cache-01.internal:6379/0", None),
        ("machine api.host.test\n  login ops\n  password 9f1c2e7a-55d0-4b8e-a1f3-6c0d2b9e7f41", None),
        ("dsn: https://8c2e4f9a1b7d3e6f0a5c9b2d4e8f1a3c@o4412.ingest.tracker.test/77", None),
        ("Qk7vN2pX9sLm4RtY8wZc3HbF", "webhook_secret"),
        ("Authorization: Bearer 7fQ2mZ9xLp4vN8kR3tY6wC1bH5jD0sGa", None),
    ],
)
def test_secret_formats_without_a_provider_prefix(text: str, key: str | None) -> None:
    assert find_secrets(text, key), text


@pytest.mark.parametrize(
    "text, key",
    [
        ("DATABASE_URL=postgres://USER:PASSWORD@localhost:5432/app_dev", None),
        ("Server=myServerAddress;Database=myDataBase;User Id=myUsername;Password=myPassword;", None),
        ("change-me", "session_secret"),
        ("a value with spaces in it", "token"),
    ],
)
def test_placeholders_in_secret_formats_are_left_alone(text: str, key: str | None) -> None:
    assert not find_secrets(text, key), text
