"""guard.toml validation: precise errors naming file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcp_guard.config import load_config
from mcp_guard.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "guard.toml"
    p.write_text(text)
    return p


def test_defaults(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "[guard]\nserver = 'notes'\n"))
    assert cfg.guard.state == "sqlite:///.mcp-guard/state.db"
    assert cfg.guard.audit == ["sqlite:///.mcp-guard/audit.db"]
    assert cfg.listen.host == "127.0.0.1" and cfg.listen.port == 8787
    assert cfg.resolve_url("sqlite:///.mcp-guard/audit.db") == f"sqlite:///{tmp_path}/.mcp-guard/audit.db"


def test_unknown_key_names_file_line_field(tmp_path: Path) -> None:
    p = write(tmp_path, "[guard]\nserver = 'notes'\nmdoe = 'shadow'\n")
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    assert exc.value.file == str(p) and exc.value.line == 3 and exc.value.field == "guard.mdoe"


def test_bad_value_in_array_table(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        "[[servers]]\nname = 'a'\ncommand = 'x'\n\n[[servers]]\nname = 'b'\ncommand = 'y'\nurl = 'http://h'\n",
    )
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    assert exc.value.field == "servers[1]" and exc.value.line == 5
    assert "exactly one of" in str(exc.value)


def test_syntax_error_has_line(tmp_path: Path) -> None:
    p = write(tmp_path, "[guard]\nserver = \n")
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    assert exc.value.line == 2


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(tmp_path / "nope.toml")
    assert "nope.toml" in str(exc.value)


def test_mode_and_prefix(tmp_path: Path) -> None:
    cfg = load_config(
        write(
            tmp_path,
            "[guard]\nmode='shadow'\n[[servers]]\nname='time'\ncommand='x'\n[[servers]]\nname='b'\nurl='http://127.0.0.1:1/mcp'\nprefix=''\n",
        )
    )
    assert cfg.guard.mode == "shadow"
    assert [s.effective_prefix for s in cfg.servers] == ["time__", ""]


def test_sanitize_section_with_per_server_overrides(tmp_path: Path) -> None:
    cfg = load_config(
        write(
            tmp_path,
            "[sanitize]\non_flag = 'strip'\napprove_new = 'require'\n\n"
            "[sanitize.servers.legacy]\nshadow = true\n",
        )
    )
    policies = cfg.sanitize.to_config()
    assert policies.for_server("other").on_flag == "strip"
    legacy = policies.for_server("legacy")
    assert legacy.shadow and legacy.on_flag == "strip" and legacy.approve_new == "require"


def test_bad_sanitize_value_names_the_server_field(tmp_path: Path) -> None:
    p = write(tmp_path, "[sanitize]\n\n[sanitize.servers.legacy]\non_block = 'ignore'\n")
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    assert exc.value.field is not None and exc.value.field.startswith("sanitize.servers.legacy.on_block")


@pytest.mark.parametrize(
    ("table", "field"),
    [
        (
            "[[authn.api_keys]]\nsubject = 'a'\nkey_sha256 = '" + "a" * 64 + "'\nrole = ['r']\n",
            "authn.api_keys[0].role",
        ),
        ("[audit]\nmode = 'sometimes'\n", "audit.mode"),
    ],
)
def test_bad_authn_and_audit_tables_name_file_line_field(tmp_path: Path, table: str, field: str) -> None:
    p = write(tmp_path, "[guard]\nserver = 'notes'\n\n" + table)
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    assert exc.value.file == str(p) and exc.value.field == field
    assert exc.value.line is not None and exc.value.line >= 4
