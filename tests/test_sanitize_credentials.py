"""Credentials without a provider format: Docker ``auth`` values, passwords in prose, short values
in ``.env``-style assignments."""

from __future__ import annotations

import base64
import json

from hypothesis import given
from hypothesis import strategies as st

from mcp_guard.sanitize.credentials import credential_spans
from mcp_guard.sanitize.redact import find_secrets, redact_text


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def kinds(text: str, key: str | None = None) -> set[str]:
    return {m.kind for m in find_secrets(text, key)}


def test_docker_auth_is_base64_of_user_and_password() -> None:
    config = '{"auths": {"registry.corp.example": {"auth": "' + b64("ci-pusher:Vt7#qLm2pX9wKd") + '"}}}'
    assert kinds(config) == {"docker-auth"}
    assert "[REDACTED:docker-auth]" in redact_text(config)
    assert kinds(b64("deploybot:Rk4-hz8PqW!m2s"), key="auth") == {"docker-auth"}
    wrapped = b64(json.dumps({"auths": {"quay.example": {"auth": b64("robot:Zx81kLmQ0p")}}}))
    assert kinds(".dockerconfigjson: " + wrapped) == {"docker-auth"}
    # Placeholders and credential stores are not secrets.
    assert kinds('"auth": "<base64 of username:password>"') == set()
    assert kinds('{"auths": {"https://index.docker.io/v1/": {}}, "credsStore": "desktop"}') == set()
    assert kinds('"auth": "' + b64("user:password") + '"') == set()
    assert kinds('"auth": "' + b64("just some text") + '"') == set()


def test_a_password_in_prose_needs_a_secret_looking_token() -> None:
    assert kinds("The admin password is Tr0ub4dor&3x9 until Friday.") == {"prose-password"}
    assert kinds("Login for the VPN: user ops, pwd: Gh7!vQ2zLx. Log out after.") == {"prose-password"}
    assert kinds("The root password for the build box is set to zM4#kW8pQe and stays.") == {"prose-password"}
    assert kinds("Acceso: la contraseña es Kx7$mPq2Wz.") == {"prose-password"}
    assert kinds("sure, it's admin / Pr1nt3r!2024Q4") == {"prose-password"}
    for benign in (
        "The admin password is rotated every 90 days.",
        "Your new password is the one you just typed.",
        "The password is printed on the sticker under the device.",
        "pwd: the current working directory",
        "Password is 8-64 characters long.",
        "The password is SHA-256 hashed.",
        "The password is: ********",
        "password: ${DB_PASS}",
        "the admin / users page",
        # a URL or file path's segment after admin/, root/ or user/ is a path, not a password
        "GET /admin/no-such-page\x1b[31m answered 404",
        "https://app.example/admin/Reports2024-Q4",
        "/home/user/Downloads2024-Q4",
        "C:\\root/Build2024-Q4x",
    ):
        assert kinds(benign) == set(), benign


def test_short_values_in_env_style_assignments() -> None:
    assert kinds("SMTP_HOST=smtp.example\nSMTP_PASS=kettle42\n") == {"assigned-secret"}
    assert kinds("ADMIN_PASSWORD=sunflower9") == {"assigned-secret"}
    assert kinds("$db_pass = 'letmein2023';") == {"assigned-secret"}
    assert kinds("  secret_key: hunter2hunter") == {"assigned-secret"}
    for benign in (
        "SMTP_PASS=changeme",
        "SECRET_KEY=your-secret-key-here",
        "API_TOKEN=<your token>",
        "CACHE_TTL=300\nREGION=eu-west-1",
        "DB_PASSWORD=$DB_PASSWORD",
        "PASSWORD_POLICY=strict",
        "SORT_KEY=created_at",
        "password: required",
        "API_KEY=none",
    ):
        assert kinds(benign) == set(), benign


def test_cookie_jars_and_secret_columns() -> None:
    jar = ".shop.example\tTRUE\t/\tTRUE\t1799999999\tsession\tf88d3a5563367592055829ed0cdc29be"
    assert kinds("Cookie jar:\n" + jar) == {"cookie"}
    assert kinds(".shop.example\tTRUE\t/\tFALSE\t0\ttheme\tdark") == set()
    export = "name,url,username,password\nBank,https://bank.example,jdoe,p*nten9UeGL0Ss%6"
    assert kinds(export) == {"table-secret"}
    query = "id | email | api_key\n 1 | ana@acme.example | ak_live_fsTil4nKVjpFz6Hn"
    assert kinds(query) == {"table-secret"}
    assert kinds("name,password_policy\nadmins,strict-14chars") == set()
    assert kinds("user,password\nana,<hidden>\ntom,changeme") == set()
    assert kinds("Datadog status\nAPI key: 0281cf2c3661cbd5bf1fe6845b28024e") == {"assigned-secret"}
    assert kinds("Primary key: id\nSort key: created_at") == set()


@given(st.text(max_size=200))
def test_spans_are_inside_the_text_and_never_raise(text: str) -> None:
    for kind, start, end in credential_spans(text, None):
        assert 0 <= start < end <= len(text)
        assert kind in {"docker-auth", "prose-password", "assigned-secret", "cookie", "table-secret"}


@given(st.binary(max_size=60))
def test_any_auth_value_decodes_without_raising(raw: bytes) -> None:
    credential_spans(base64.b64encode(raw).decode(), "auth")


def test_the_jwt_io_sample_under_a_token_label_is_still_the_sample() -> None:
    sample = (
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0"
        "IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
    )
    assert kinds("token: " + sample) == set()
    claims = base64.urlsafe_b64encode(b'{"sub":"42","name":"Ana Lima","iat":1716239022}').decode().rstrip("=")
    assert kinds("token: " + sample.replace(sample.split(".")[1], claims)) != set()
