"""Stumbles a newcomer hit with the command line and ``guard.toml``, each reproduced and fixed.

A bad ``--expires`` names the flag instead of printing the top-level usage; ``users add`` refuses a
config without ``[authn.passwords]``; ``auth check`` validates the whole config like ``serve``;
scalar settings are not coerced from strings; every validation error of a file is shown; ``serve``
on a port in use says so before claiming to serve.
"""

from __future__ import annotations

import io
import socket
from pathlib import Path

import pytest

from mcp_guard.cli.main import main
from mcp_guard.config import config_from_dict, load_config
from mcp_guard.errors import ConfigError


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


# -- 1. keys create --expires --------------------------------------------------------------------


@pytest.mark.parametrize("value", [["3 parsecs"], ["3", "parsecs"]])
def test_expires_not_a_duration_names_the_flag(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, value: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the default audit trail is opened in the current directory
    code, out, err = _run(
        capsys,
        "keys",
        "create",
        "--subject",
        "a",
        "--expires",
        *value,
        "--state",
        f"sqlite:///{tmp_path}/s.db",
    )
    assert code == 2
    assert "mcp-guard: --expires: '3 parsecs' is not a duration; use e.g. 30d, 12h, 90m" in err
    assert "usage: mcp-guard [-h] COMMAND" not in err
    assert out == ""


def test_expires_valid_duration_still_works(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the default audit trail is written in the current directory
    code, out, err = _run(
        capsys,
        "keys",
        "create",
        "--subject",
        "a",
        "--expires",
        "30d",
        "--state",
        f"sqlite:///{tmp_path}/s.db",
    )
    assert code == 0, err
    assert out.strip()


# -- 2. users add without [authn.passwords] ------------------------------------------------------


def test_users_add_refuses_config_without_passwords_table(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "guard.toml"
    cfg.write_text('[guard]\nstate = "sqlite:///state.db"\n')
    monkeypatch.setattr("sys.stdin", io.StringIO("river stone lantern 7\n"))
    code, _, err = _run(capsys, "users", "add", "bob", "--no-totp", "--password-stdin", "--config", str(cfg))
    assert code == 2
    assert "has no [authn.passwords] table" in err
    assert str(cfg) in err
    assert not (tmp_path / "users.json").exists()


# -- 3. auth check validates the whole config ----------------------------------------------------


def _auth_check(capsys: pytest.CaptureFixture[str], cfg: Path) -> tuple[int, str, str]:
    return _run(capsys, "auth", "check", "--config", str(cfg), "--token", "T")


def test_auth_check_refuses_unknown_table_with_hint(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cfg = tmp_path / "guard.toml"
    cfg.write_text('[gaurd]\nstate = "sqlite:///state.db"\n')
    code, _, err = _auth_check(capsys, cfg)
    assert code == 2
    assert f"{cfg}:1: gaurd:" in err
    assert "did you mean `guard`" in err


def test_unknown_key_in_section_has_hint(tmp_path: Path) -> None:
    cfg = tmp_path / "guard.toml"
    cfg.write_text('[guard]\nstate = "sqlite:///state.db"\n\n[listen]\nprot = 8790\n')
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    assert info.value.line == 5
    assert info.value.field == "listen.prot"
    assert "did you mean `port`" in str(info.value)


def test_auth_check_refuses_missing_policy_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cfg = tmp_path / "guard.toml"
    cfg.write_text('[guard]\nstate = "sqlite:///state.db"\npolicy = "nope.toml"\n')
    code, _, err = _auth_check(capsys, cfg)
    assert code == 2
    assert f"{cfg}:3: guard.policy:" in err
    assert "nope.toml" in err
    assert "does not exist" in err


def test_auth_check_refuses_invalid_policy(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "policy.toml").write_text("[[rules]]\nnonsense = 1\n")
    cfg = tmp_path / "guard.toml"
    cfg.write_text('[guard]\nstate = "sqlite:///state.db"\npolicy = "policy.toml"\n')
    code, _, err = _auth_check(capsys, cfg)
    assert code == 2
    assert "policy.toml" in err


def test_auth_check_refuses_invalid_mode(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cfg = tmp_path / "guard.toml"
    cfg.write_text('[guard]\nstate = "sqlite:///state.db"\nmode = "enforcing"\n')
    code, _, err = _auth_check(capsys, cfg)
    assert code == 2
    assert f"{cfg}:3: guard.mode:" in err
    assert "'enforce' or 'shadow'" in err


def test_auth_check_still_refuses_bad_token_with_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cfg = tmp_path / "guard.toml"
    cfg.write_text('[guard]\nstate = "sqlite:///state.db"\n')
    code, _, err = _auth_check(capsys, cfg)
    assert code == 1
    assert err.startswith("refused:")


# -- 4. no coercion of scalar types --------------------------------------------------------------


def test_port_as_string_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "guard.toml"
    cfg.write_text('[listen]\nport = "8790"\n')
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    assert info.value.line == 2
    assert info.value.field == "listen.port"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"listen": {"allow_public_bind": "yes"}}, "listen.allow_public_bind"),
        ({"guard": {"policy_poll": "2"}}, "guard.policy_poll"),
        ({"portal": {"page_size": 10.0}}, "portal.page_size"),
    ],
)
def test_other_scalars_are_not_coerced(data: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict(data)
    assert info.value.field == field


def test_legitimate_values_still_load(tmp_path: Path) -> None:
    cfg = tmp_path / "guard.toml"
    cfg.write_text(
        '[guard]\npolicy_poll = 1\nstate = "sqlite:///s.db"\n\n[listen]\nport = 8790\nread_timeout = 5\n'
        '\n[[servers]]\nname = "a"\ncommand = "true"\ntimeout = 3\n'
        '\n[authn.passwords]\nusers_file = "users.json"\n[authn.passwords.lockout]\nwindow = "10m"\n'
    )
    config = load_config(cfg)
    assert config.listen.port == 8790
    assert config.guard.policy_poll == 1.0
    assert config.servers[0].timeout == 3.0


# -- 5. every error of a file --------------------------------------------------------------------

TWO_ERRORS = """# guard config
[guard]
mode = "enforcing"
state = "sqlite:///state.db"

[listen]
host = "127.0.0.1"

port = "8790"
"""


def test_all_errors_are_shown_with_line_and_field(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cfg = tmp_path / "guard.toml"
    cfg.write_text(TWO_ERRORS)
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    lines = str(info.value).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{cfg}:3: guard.mode: ")
    assert lines[1].startswith(f"{cfg}:9: listen.port: ")
    assert info.value.line == 3  # the first error is still the exception's own location
    code, _, err = _auth_check(capsys, cfg)
    assert code == 2
    assert err.splitlines() == [f"mcp-guard: {line}" for line in lines]


# -- 6. serve on a port in use -------------------------------------------------------------------


def test_serve_port_in_use(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cfg = tmp_path / "guard.toml"
    cfg.write_text('[guard]\nstate = "sqlite:///state.db"\naudit = ["sqlite:///audit.db"]\n')
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = _run(capsys, "serve", "--config", str(cfg), "--port", str(port))
    assert code == 3
    assert f"port {port} is in use" in err
    assert "portal on" not in err


def test_demo_clip_cuts_between_words_with_an_ellipsis() -> None:
    from mcp_guard.cli.demo import clip

    reason = "no served tool 'wx_weather_alerts' (unknown, withheld, colliding or upstream down)"
    assert clip(reason, 200) == reason
    cut = clip(reason, 70)
    assert cut.endswith("\u2026") and len(cut) <= 70
    assert reason.startswith(cut[:-1]) and reason[len(cut) - 1] == " "  # never mid-word
    assert clip("a\nb   c", 10) == "a b c"


def test_help_builds_every_parser_without_the_heavy_libraries() -> None:
    """``mcp-guard --help`` and ``mcp-guard SUB --help`` must not import the SDK, the HTTP stack or crypto."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys\n"
        "from mcp_guard.cli.main import build_parser\n"
        "build_parser()\n"
        "heavy = ('mcp', 'mcp_types', 'starlette', 'uvicorn', 'cryptography', 'httpx', 'jwt', 'pydantic')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(heavy)))\n"
    )
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=root, env={"PYTHONPATH": str(root)}
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", done.stdout


@pytest.mark.parametrize(
    ("verbosity", "sdk", "guard"), [(0, "WARNING", "WARNING"), (1, "WARNING", "INFO"), (2, "INFO", "INFO")]
)
def test_serve_v_keeps_per_request_library_lines_for_vv(verbosity: int, sdk: str, guard: str) -> None:
    import logging

    from mcp_guard.cli.serve import configure_logging

    root = logging.getLogger()
    saved = (root.level, {n: logging.getLogger(n).level for n in ("mcp", "uvicorn.access", "httpx")})
    try:
        configure_logging(verbosity)
        for name in ("mcp.server.streamable_http_manager", "uvicorn.access", "httpx"):
            assert logging.getLevelName(logging.getLogger(name).getEffectiveLevel()) == sdk, name
        assert logging.getLevelName(logging.getLogger("mcp_guard.portal").getEffectiveLevel()) == guard
    finally:
        root.setLevel(saved[0])
        for name, level in saved[1].items():
            logging.getLogger(name).setLevel(level)
