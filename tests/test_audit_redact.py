"""Redaction and escaping: raw secrets never reach a sink, and no argument can forge a log line."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_guard.audit import AuditLog, JsonlSink, LoggingSink, detectors, parse_path, redact_record
from mcp_guard.audit.canonical import printable
from mcp_guard.audit.keys import AuditKey, KeyRing
from mcp_guard.audit.redact import mask_fields, scrub
from mcp_guard.errors import ConfigError
from mcp_guard.model import AuditEvent, Finding, ResultSummary

KEYS = KeyRing([AuditKey("t", b"k" * 32)])

SECRETS = {
    "aws": "AKIAIOSFODNN7EXAMPLE",
    "github": "ghp_" + "a1B2" * 9,
    "slack": "xoxb-123456789012-abcdefghijkl",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlX2hlcmU",
    "pem": "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
    "openai": "sk-proj-abcdefghijklmnopqrstuvwxyz012345",
}


@pytest.mark.parametrize("name", sorted(SECRETS))
def test_builtin_detectors_mask_known_secret_shapes(name: str) -> None:
    secret = SECRETS[name]
    out = detectors.redact_text(f"before {secret} after")
    assert secret not in out and "[REDACTED]" in out and out.startswith("before ")


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("postgres://bob:hunter2pass@db.internal/app", "postgres://bob:[REDACTED]@db.internal/app"),
        ("password=hunter2 next", "password=[REDACTED] next"),
        ('{"api_key": "abcdef123456"}', '{"api_key": "[REDACTED]"}'),
        ("Authorization: Bearer abcdefghijklmnop1234", "Authorization: Bearer [REDACTED]"),
        ("SELECT id FROM orders WHERE id = 42", "SELECT id FROM orders WHERE id = 42"),
    ],
)
def test_builtin_detectors_keep_context(text: str, kept: str) -> None:
    assert detectors.redact_text(text) == kept


def test_field_paths_mask_whole_values() -> None:
    args: dict[str, Any] = {
        "password": "p",
        "creds": {"token": "t", "user": "u"},
        "items": [{"secret": 1, "keep": 2}, {"secret": 3}],
        "matrix": [[1, 2], [3, 4]],
        "a.b": "dotted",
    }
    out = mask_fields(
        args, ("password", "creds.user", "items[*].secret", "matrix[1][0]", '["a.b"]', "missing.x")
    )
    assert out == {
        "password": "[REDACTED]",
        "creds": {"token": "t", "user": "[REDACTED]"},
        "items": [{"secret": "[REDACTED]", "keep": 2}, {"secret": "[REDACTED]"}],
        "matrix": [[1, 2], ["[REDACTED]", 4]],
        "a.b": "[REDACTED]",
    }


def test_bad_path_is_a_config_error_and_fails_closed_at_runtime() -> None:
    with pytest.raises(ConfigError, match="redact path"):
        parse_path("a[")
    assert mask_fields({"x": "secret"}, ("a[",)) == {
        "[REDACTED]": "unparsable redact path; all arguments masked"
    }


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True),
            st.just("*"),
            st.integers(0, 5),
            st.just("[*]"),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_path_parser_round_trips(parts: list[Any]) -> None:
    text = ""
    for p in parts:
        if isinstance(p, int):
            text += f"[{p}]"
        elif p == "[*]":
            text += p
        else:
            text += ("." if text else "") + p
    steps = parse_path(text)
    assert len(steps) == len(parts)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(json_values, st.sampled_from(sorted(SECRETS.values())))
def test_scrub_never_leaks_a_planted_secret_and_is_json_safe(value: Any, secret: str) -> None:
    planted = {"payload": value, "note": f"token {secret} here", "nested": [{"x": secret}]}
    out = scrub(planted)
    text = json.dumps(out, allow_nan=False)
    assert secret not in text


def sink_lines(tmp_path: Path, *events: AuditEvent) -> list[str]:
    log = AuditLog(JsonlSink(tmp_path / "a.jsonl"), KEYS)
    for event in events:
        log.record(event)
    log.close()
    return (tmp_path / "a.jsonl").read_text().splitlines()


def test_raw_secrets_never_reach_a_sink(tmp_path: Path) -> None:
    ev = AuditEvent(
        method="tools/call",
        decision="deny",
        target="postgres://admin:s3cr3tpw@db/prod",
        arguments={"password": "hunter2", "q": f"use {SECRETS['aws']}", "cfg": {"refreshToken": "r-123"}},
        redact_fields=("q",),
        reasons=(f"found {SECRETS['github']} in arguments",),
        result=ResultSummary(findings=(Finding("secret", "high", "/x", f"leaked {SECRETS['slack']}"),)),
    )
    (line,) = sink_lines(tmp_path, ev)
    for raw in ("hunter2", SECRETS["aws"], "r-123", SECRETS["github"], SECRETS["slack"], "s3cr3tpw"):
        assert raw not in line
    record = json.loads(line)
    assert record["arguments"]["q"] == "[REDACTED]" and record["arguments"]["password"] == "[REDACTED]"


def test_record_fields_are_not_mistaken_for_secrets() -> None:
    out = redact_record({"session_id": "abc", "arguments": {"session_id": "abc"}}, ())
    assert out == {"session_id": "abc", "arguments": {"session_id": "[REDACTED]"}}


FORGED = 'x"}\n{"decision":"allow","subject":"admin"}\r\n\u2028\u0085\x1b[31mred\u202e'


def test_newlines_and_controls_cannot_forge_jsonl_lines(tmp_path: Path) -> None:
    ev = AuditEvent(
        method="tools/call", decision="deny", principal={"subject": FORGED}, arguments={"q": FORGED}
    )
    lines = sink_lines(tmp_path, ev)
    assert len(lines) == 1
    assert all(32 <= ord(c) < 127 for c in lines[0])
    assert json.loads(lines[0])["arguments"]["q"] == FORGED


def test_logging_sink_emits_one_escaped_line(caplog: pytest.LogCaptureFixture) -> None:
    log = AuditLog(LoggingSink("test.audit"), KEYS)
    with caplog.at_level(logging.INFO, logger="test.audit"):
        log.record(AuditEvent(method="tools/call", decision="deny", arguments={"q": FORGED}))
        log.close()
    (rec,) = [r for r in caplog.records if r.name == "test.audit"]
    message = rec.getMessage()
    assert "\n" not in message and "\r" not in message and "\x1b" not in message
    assert json.loads(message)["arguments"]["q"] == FORGED


def test_printable_escapes_terminal_controls() -> None:
    out = printable(FORGED)
    assert "\n" not in out and "\x1b" not in out and "\u202e" not in out and "\u2028" not in out
    assert "\\u000a" in out


def test_non_json_values_become_placeholders(tmp_path: Path) -> None:
    ev = AuditEvent(method="m", decision="allow", arguments={"b": b"\x00\x01", "f": float("inf"), 1: {2, 3}})
    (line,) = sink_lines(tmp_path, ev)
    args = json.loads(line)["arguments"]
    assert args["b"] == "[2 bytes]" and args["f"] == "inf" and isinstance(args["1"], str)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(
                ["password", "PWD", "api-key", "Client_Secret", "session_id", "token", "passphrase"]
            ),
            st.sampled_from(["=", ":", " = ", '": "', "' :", "\t:\n"]),
            st.text(alphabet="abcXYZ019_-\"' =:&;,\n", max_size=12),
        ),
        max_size=8,
    )
)
def test_cheap_gate_never_hides_a_key_value_secret(parts: list[str]) -> None:
    text = "".join(parts)
    if detectors._KV_PATTERN[0].search(text) is not None:
        assert detectors._kv_candidate(text.lower())
        assert detectors._KV_ID in detectors.find(text)


#: Shapes only the sanitizer's detectors know (the built-in ones do not), short and long.
SHARED_ONLY = ("glpat-" + "Xy7" * 8, "npm_" + "a1B2c3" * 6)


@pytest.mark.parametrize("secret", SHARED_ONLY)
def test_shared_detectors_mask_every_occurrence_in_every_event(secret: str, tmp_path: Path) -> None:
    from mcp_guard.audit import detectors as builtin

    assert not builtin.find(secret)  # only the shared detectors can catch it
    events = [
        AuditEvent(
            method="tools/call",
            decision="allow",
            target=secret,  # a short string on its own: must never be remembered as clean
            arguments={"q": secret, secret: "as a key", "long": "x" * 500 + f" {secret} " + "y" * 500},
        )
        for _ in range(3)
    ]
    lines = sink_lines(tmp_path, *events)
    assert len(lines) == 3
    for line in lines:
        assert secret not in line
        assert "[REDACTED:" in line
    # Turning the shared detectors off is the only way to let them through.
    assert redact_record({"target": secret}, (), shared=False)["target"] == secret
    assert redact_record({"target": secret}, (), shared=True)["target"] != secret


def test_clean_short_strings_are_remembered_but_secrets_are_not() -> None:
    from mcp_guard.audit import redact as module

    module._CLEAN.clear()
    secret = SHARED_ONLY[0]
    for _ in range(2):
        out = redact_record({"method": "tools/call", "arguments": {"v": secret}}, (), True)
        assert out["arguments"]["v"] != secret
    assert "tools/call" in module._CLEAN
    assert secret not in module._CLEAN
