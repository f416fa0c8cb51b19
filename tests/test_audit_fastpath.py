"""The flusher's fast path: a whole-event prefilter that must never let a secret past the redactor."""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import Any

import pytest
import re2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcp_guard.audit import AuditLog, detectors, redact_record
from mcp_guard.audit.canonical import canonical, encode, encode_string
from mcp_guard.audit.chain import Chainer
from mcp_guard.audit.fastrecord import fast_record
from mcp_guard.audit.keys import AuditKey, KeyRing
from mcp_guard.audit.redact import _any_match, _detailed, has_sensitive_key, might_need_redaction
from mcp_guard.model import AuditEvent, Finding, ResultSummary
from mcp_guard.sanitize import redact as shared

UNANCHORED = re2._re2.RE2.Anchor.UNANCHORED
KEYS = KeyRing([AuditKey("t", b"k" * 32)])

#: Pieces that make the detectors (and near misses) likely when glued together.
FRAGMENTS = [
    "AKIA", "ASIA", "ABIA", "ANPA", "AIza", "ghp_", "gho_", "github_pat_", "glpat-", "glagent-",
    "xoxb-", "xoxp-", "sk-", "sk-proj-", "sk_live_", "rk_live_", "npm_", "eyJ", "eyJhbGci.", ".eyJ",
    "-----BEGIN RSA PRIVATE KEY-----", "-----BEGIN PRIVATE KEY-----", "-----END PRIVATE KEY-----",
    "https://hooks.slack.com/services/", "postgres://", "://", "@", ":", "=", "&", "?", ";",
    "Bearer ", "bearer\t", "BEARER\n", "password", "passwd", "pwd", "pass", "passphrase", "secret",
    "token", "api_key", "api-key", "apikey", "access_key", "secret_key", "private_key", "auth_key",
    "client_secret", "auth_token", "session_id", "sessionid", "credential", "credentials",
    "aws_secret_access_key", "s", "'", '"', "\\", " ", "\t", "\n", "\x0b", "\x1c", "\x85", "\xa0",
    "\u2028", "\u3000", "\u0130", "\u0131", "\u017f", "\u212a", "\u00e9", "é", "\x00", "\x7f",
    "A1b2C3d4E5f6G7h8", "ABCDEFGHIJKLMNOP", "0123456789abcdef", "Zq9/+=~.xY", "a-b_c", "hunter2",
    "user", "host.example", "/path", "[REDACTED]", "null", "true",
    " is ", " was ", " ist ", " \u00e9 ", " est ", " \u2192 ", " -> ", "senha", "Passwort", "contrase\u00f1a",
    "mot de passe", "\u043f\u0430\u0440\u043e\u043b\u044c", "root", "admin", "login", " / ",
    "whsec_", "hf_", "pypi-AgE", "SG.", "shpat_", "dop_v1_", "hvs.", "sq0atp-", "PMAK-", "lin_api_", "dapi",
    "123456789:AA", "AGE-SECRET-KEY-1", "AC", "SK", "key-", "ya29.", "glc_", "xapp-1-", "0123456789abcdef",
    "https://discord.com/api/webhooks/1/", "https://", "Basic ", "basic\t", "AccountKey=", "SharedAccessKey=",
    "?sig=", "&X-Amz-Signature=", "login ", " password ", "machine host ",
]  # fmt: skip

text_strategy = st.lists(
    st.one_of(
        st.sampled_from(FRAGMENTS), st.text(max_size=6), st.from_regex(r"[A-Za-z0-9_-]{8,40}", fullmatch=True)
    ),
    max_size=12,
).map("".join)


def changed_by_any_detector(text: str) -> bool:
    return detectors.redact_text(text) != text or shared.redact_text(text) != text


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text_strategy)
def test_prefilter_catches_every_string_a_detector_would_change(text: str) -> None:
    if changed_by_any_detector(text):
        assert might_need_redaction(encode_string(text)), text
        assert might_need_redaction(encode({"k": [text], text: 1}))


@pytest.mark.parametrize(
    "text",
    [
        "AKIAIOSFODNN7EXAMPLE",
        "ghp_" + "a1B2" * 9,
        "glpat-a1B2c3D4e5F6g7H8i9J0",
        "xoxb-123456789012-abcdefghijkl",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlX2hlcmU",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----",
        "sk-proj-abcdefghijklmnopqrstuvwxyz012345",
        "postgres://bob:hunter2pass@db.internal/app",
        "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXX",
        "Authorization: Bearer abcdefghijklmnop1234",
        'config {"password": "hunter2"}',
        "password\t:\u00a0hunter2",
        "TO\u212aEN: abcdefghijklmnop",
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYzQ9rT2mKEYxx",
        "x=1&password=hunter22",
        # passwords written in a sentence, in the shared detector's languages
        "my password is Xy8kd92kdk",
        "a senha \u00e9 Xy8kd92kdk",
        "password \u00e9Xy8kd92kdk",
        "Passwort ist Xy8kd92kdk",
        "\u041f\u0410\u0420\u041e\u041b\u042c: Xy8kd92kdk",
        "the mot de passe est Xy8kd92kdk",
        "root / Xy8kd92kdk",
        "password \u2192 Xy8kd92kdk",
    ],
)
def test_prefilter_fires_on_known_secret_shapes(text: str) -> None:
    assert changed_by_any_detector(text)
    assert might_need_redaction(encode_string(text))


@pytest.mark.parametrize(
    "text",
    [
        "SELECT id FROM orders WHERE status = 'open' AND region = 'emea'",
        "Quarterly review of open orders for the EMEA region.",
        "https://example.com/docs?page=2",
        "12:30:00",
    ],
)
def test_prefilter_lets_ordinary_text_through(text: str) -> None:
    assert not might_need_redaction(encode({"sql": text, "session_id": "0" * 32, "auth_method": "api_key"}))


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text_strategy)
def test_one_pass_filter_is_looser_than_the_detailed_tests(text: str) -> None:
    encoded = encode_string(text)
    if _detailed(encoded):
        assert _any_match(UNANCHORED, encoded.encode(), 0, len(encoded))[0][0] >= 0, text


@pytest.mark.parametrize("word", ["password", "passwd", "passphrase", "pass", "pwd", "secret", "token",
    "credential", "api_key", "apikey", "access-key", "secret_key", "privatekey", "auth_key", "session_id",
    "SessionId", "Passwords", "TOKENS"])  # fmt: skip
@pytest.mark.parametrize("sep", [":", "=", " :", "\\t=", '\\":', "' =", "\\u00a0:"])
def test_one_pass_filter_sees_every_keyword_before_a_separator(word: str, sep: str) -> None:
    text = f'"x {word}{sep}v"'
    assert _detailed(text), text
    assert _any_match(UNANCHORED, text.encode(), 0, len(text))[0][0] >= 0, text


def test_mask_is_never_changed_by_a_detector() -> None:
    assert not changed_by_any_detector(detectors.MASK)


def test_prefilter_covers_every_known_pattern() -> None:
    # A new detector needs a matching test in redact.might_need_redaction; this fails until then.
    assert {name for name, _, _ in detectors._DETECTORS} == {
        "pem", "aws", "github", "slack", "slack_hook", "jwt", "sk", "rk", "google", "urlcred",
    }  # fmt: skip
    assert {name for name, _, _ in shared._PATTERNS} == {
        "private-key", "aws-access-key-id", "aws-secret-access-key", "github-token", "gitlab-token",
        "slack-token", "slack-webhook", "stripe-key", "google-api-key", "openai-key", "npm-token", "jwt",
        "connection-string-password", "password-parameter", "generic-secret", "url-credential",
        "webhook-secret", "discord-webhook", "provider-token", "bearer-token", "azure-key", "signed-url",
        "netrc-password",
    }  # fmt: skip


key_strategy = st.lists(
    st.one_of(
        st.sampled_from([*detectors._SENSITIVE_SUFFIXES, "_", "-", "X", "user", "\u212a", "Key"]),
        st.text(max_size=3),
    ),
    max_size=5,
).map("".join)


@settings(max_examples=2000, deadline=None)
@given(key_strategy, st.one_of(st.none(), st.text(max_size=5), st.integers(), st.just(detectors.MASK)))
def test_sensitive_key_check_is_a_superset(key: str, value: Any) -> None:
    if value is not None and value != detectors.MASK and detectors.sensitive_key(key):
        assert has_sensitive_key(encode({"outer": [{key: value}]})), key


json_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), text_strategy
)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(text_strategy, key_strategy), inner, max_size=4),
    ),
    max_leaves=20,
)
paths = st.lists(
    st.sampled_from(["password", "creds.token", "items[*]", "items[0].secret", "*", "a[", "x.y"]), max_size=3
)


def _event(arguments: Any, fields: list[str], extra: str) -> AuditEvent:
    return AuditEvent(
        method="tools/call",
        decision="allow",
        session_id=extra,
        principal=MappingProxyType({"subject": extra, "tenant": "acme", "roles": ["a", extra], "mfa": True}),
        client_name=extra,
        target="query",
        reasons=(extra,),
        arguments=arguments,
        redact_fields=tuple(fields),
        result=ResultSummary(size=3, findings=(Finding("r", "low", extra, "m"),)),
        latency_ms=1.5,
    )


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.one_of(text_strategy, key_strategy), json_value, max_size=5), paths, text_strategy)
def test_fast_path_stores_exactly_what_the_full_redactor_stores(
    arguments: dict[str, Any], fields: list[str], extra: str
) -> None:
    event = _event(arguments, fields, extra)
    fast = fast_record(event, event.redact_fields)
    if fast is None:
        return
    record, text = fast
    for use_shared in (False, True):
        slow = redact_record(event.as_dict(), event.redact_fields, use_shared)
        assert record == slow
        assert text == canonical(slow)


def test_fast_path_applies_field_rules_and_sensitive_keys_without_touching_the_event() -> None:
    args = {
        "password": "hunter2",
        "creds": {"token": "t", "user": "u"},
        "items": ({"secret": 1},),
        "note": None,
    }
    event = _event(MappingProxyType(args), ["creds.user", "items[*].secret"], "s")
    fast = fast_record(event, event.redact_fields)
    assert fast is not None
    record, text = fast
    assert record["arguments"] == {
        "password": "[REDACTED]",
        "creds": {"token": "[REDACTED]", "user": "[REDACTED]"},
        "items": [{"secret": "[REDACTED]"}],
        "note": None,
    }
    assert "hunter2" not in text and '"u"' not in text
    assert args["password"] == "hunter2" and args["creds"] == {"token": "t", "user": "u"}  # event untouched
    assert record == redact_record(event.as_dict(), event.redact_fields)


def _nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "arguments",
    [
        {"blob": b"\x00\x01"},
        {"ratio": float("nan")},
        {"obj": object()},
        {True: "x"},
        {"deep": _nested(70)},
        {"token": "ghp_" + "a1B2" * 9},
    ],
)
def test_values_the_walk_converts_take_the_full_path(arguments: dict[Any, Any]) -> None:
    event = _event(arguments, [], "s")
    assert fast_record(event, ()) is None


def test_link_with_text_matches_link_without() -> None:
    event = _event({"q": "x"}, [], "s")
    fast = fast_record(event, ())
    assert fast is not None
    a, b = Chainer(KEYS), Chainer(KEYS)
    one = a.link(fast[0].copy(), fast[1])
    two = b.link(redact_record(event.as_dict(), ()))
    assert one.line == two.line and one == two and a.prev == b.prev


class ListSink:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, records: Any) -> None:
        self.lines.extend(r.line for r in records)

    def close(self) -> None:
        pass


def test_audit_log_output_is_the_same_with_and_without_the_fast_path() -> None:
    events = [
        _event(
            {"q": f"SELECT {i}", "password": "hunter2" if i % 3 == 0 else None},
            ["q"] if i % 2 else [],
            f"s{i}",
        )
        for i in range(30)
    ]
    events.append(_event({"k": "AKIAIOSFODNN7EXAMPLE"}, [], "aws"))
    outputs = []
    for fast in (True, False):
        sink = ListSink()
        audit = AuditLog(sink, KEYS, flush_interval=60)
        audit.fast_path = fast
        for ev in events:
            audit.record(ev)
        audit.close()
        outputs.append(sink.lines)
    assert outputs[0] == outputs[1] and len(outputs[0]) == len(events)
    joined = "\n".join(outputs[0])
    assert "hunter2" not in joined and "AKIAIOSFODNN7EXAMPLE" not in joined
    assert re.search(r'"password":"\[REDACTED\]"', joined)
