"""Policy files: TOML, JSON and YAML equivalence, merging, and precise errors (file, line, field)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from mcp_guard.errors import PolicyError
from mcp_guard.model import AccessRequest, Principal
from mcp_guard.policy import load_policy, load_policy_text, policy_from_dict

TOML = """\
version = 1
default = "deny"

[roles.analyst]
inherits = ["viewer"]

[[rules]]
id = "q"
effect = "allow"
roles = ["viewer"]
servers = ["db"]
tools = ["query"]
when = 'principal.mfa'
redact = ["password"]

[[rules]]
id = "no-users"
effect = "deny"
tools = ["query"]
when = 'request.arguments.table == "users"'
"""

DATA = {
    "version": 1,
    "default": "deny",
    "roles": {"analyst": {"inherits": ["viewer"]}},
    "rules": [
        {
            "id": "q",
            "effect": "allow",
            "roles": ["viewer"],
            "servers": ["db"],
            "tools": ["query"],
            "when": "principal.mfa",
            "redact": ["password"],
        },
        {
            "id": "no-users",
            "effect": "deny",
            "tools": ["query"],
            "when": 'request.arguments.table == "users"',
        },
    ],
}

YAML = """\
version: 1
default: deny
roles:
  analyst:
    inherits: [viewer]
rules:
  - id: q
    effect: allow
    roles: [viewer]
    servers: [db]
    tools: [query]
    when: principal.mfa
    redact: [password]
  - id: no-users
    effect: deny
    tools: [query]
    when: 'request.arguments.table == "users"'
"""


def _outcomes(path: Path) -> list[tuple[bool, str | None]]:
    p = load_policy(path)
    out = []
    for mfa in (True, False):
        for table in ("orders", "users"):
            r = AccessRequest("tools/call", "call", "db", "tool", "query", {"table": table})
            d = p.decide(Principal("a", roles={"analyst"}, mfa=mfa), r)
            out.append((d.allowed, d.rule))
    return out


def test_toml_json_yaml_are_equivalent(tmp_path: Path) -> None:
    (tmp_path / "p.toml").write_text(TOML)
    (tmp_path / "p.json").write_text(json.dumps(DATA, indent=2))
    (tmp_path / "p.yaml").write_text(YAML)
    expected = [(True, "q"), (False, "no-users"), (False, None), (False, "no-users")]
    for name in ("p.toml", "p.json", "p.yaml"):
        assert _outcomes(tmp_path / name) == expected, name
    assert load_policy(tmp_path / "p.toml").rules == load_policy(tmp_path / "p.toml").rules


def _error(tmp_path: Path, name: str, text: str) -> PolicyError:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert info.value.file == str(path)
    return info.value


def test_toml_errors_name_line_and_field(tmp_path: Path) -> None:
    e = _error(tmp_path, "a.toml", TOML.replace('tools = ["query"]\nwhen', 'tool = ["query"]\nwhen'))
    assert (e.line, e.field) == (12, "rules[0].tool") and "unknown field" in str(e)
    e = _error(tmp_path, "b.toml", TOML.replace('effect = "deny"', 'effect = "block"'))
    assert (e.line, e.field) == (18, "rules[1].effect")
    e = _error(tmp_path, "c.toml", TOML.replace("principal.mfa'", "principal.mfaa'"))
    assert (e.line, e.field) == (13, "rules[0].when") and "mfaa" in str(e)
    e = _error(tmp_path, "d.toml", TOML.replace('inherits = ["viewer"]', 'inherits = "viewer"'))
    assert (e.line, e.field) == (5, "roles.analyst.inherits")
    e = _error(tmp_path, "e.toml", TOML.replace("version = 1", "version = 1\nversion = 2"))
    assert e.line == 2 and "invalid TOML" in str(e)
    e = _error(tmp_path, "f.toml", TOML.replace('roles = ["viewer"]', "roles = []"))
    assert e.field == "rules[0].roles" and "empty list" in str(e)
    e = _error(tmp_path, "g.toml", TOML.replace('id = "no-users"', 'id = "q"'))
    assert (e.line, e.field) == (17, "rules[1].id") and "duplicate rule id" in str(e)
    e = _error(tmp_path, "h.toml", TOML.replace('redact = ["password"]', 'shadow = "yes"'))
    assert e.field == "rules[0].shadow"
    e = _error(
        tmp_path,
        "i.toml",
        TOML + '\n[[rules]]\nid = "x"\neffect = "allow"\ntools = ["a"]\nactions = ["read"]\n',
    )
    assert e.field == "rules[2]" and "never applies to tools" in str(e)
    e = _error(tmp_path, "j.toml", TOML + '\n[[rules]]\nid = "x"\neffect = "deny"\nredact = ["a"]\n')
    assert e.field == "rules[2]" and "obligation" in str(e)
    assert str(e).startswith(f"{tmp_path / 'j.toml'}:")


def test_limits_validation(tmp_path: Path) -> None:
    base = '[[limits]]\nid = "l"\nrequests = 10\nwindow = "1m"\n'
    assert load_policy_text(base).limits[0].window == 60.0
    e = _error(tmp_path, "l1.toml", base.replace('"1m"', '"soon"'))
    assert (e.line, e.field) == (4, "limits[0].window")
    e = _error(tmp_path, "l2.toml", base.replace("10", "0"))
    assert e.field == "limits[0].requests"
    e = _error(tmp_path, "l3.toml", base + 'per = ["user"]\n')
    assert e.field == "limits[0].per[0]"


def test_json_and_yaml_errors_name_lines(tmp_path: Path) -> None:
    bad = json.loads(json.dumps(DATA))
    bad["rules"][1]["when"] = "request.nope"
    e = _error(tmp_path, "p.json", json.dumps(bad, indent=2))
    assert e.field == "rules[1].when" and e.line is not None
    assert '"when"' in (tmp_path / "p.json").read_text().splitlines()[e.line - 1]
    e = _error(tmp_path, "q.json", '{"rules": [}')
    assert e.line == 1 and "invalid JSON" in str(e)
    e = _error(tmp_path, "p.yaml", YAML.replace("effect: deny", "effect: nope"))
    assert (e.line, e.field) == (15, "rules[1].effect")
    e = _error(tmp_path, "q.yaml", "rules: [\n")
    assert "invalid YAML" in str(e) and e.line is not None


def test_yaml_without_pyyaml_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "yaml", None)
    e = _error(tmp_path, "p.yaml", YAML)
    assert "mcp-guard[yaml]" in str(e)


def test_multiple_files_merge_in_order(tmp_path: Path) -> None:
    (tmp_path / "base.toml").write_text(
        '[roles.admin]\ninherits = ["ops"]\n'
        '[[rules]]\nid = "ops"\neffect = "allow"\nroles = ["ops"]\ntools = ["*"]\n'
    )
    (tmp_path / "extra.json").write_text(
        json.dumps(
            {
                "roles": {"admin": {"inherits": ["audit"]}},
                "rules": [{"id": "no-rm", "effect": "deny", "tools": ["rm"]}],
            }
        )
    )
    p = load_policy(tmp_path / "base.toml", tmp_path / "extra.json")
    assert [r.id for r in p.rules] == ["ops", "no-rm"]
    assert [r.source for r in p.rules] == [str(tmp_path / "base.toml"), str(tmp_path / "extra.json")]
    assert p.effective_roles(Principal("a", roles={"admin"})) == {"admin", "ops", "audit"}
    assert not p.decide(
        Principal("a", roles={"admin"}), AccessRequest("m", "call", "s", "tool", "rm")
    ).allowed
    (tmp_path / "dup.toml").write_text('[[rules]]\nid = "ops"\neffect = "deny"\n')
    with pytest.raises(PolicyError, match="duplicate rule id 'ops'"):
        load_policy(tmp_path / "base.toml", tmp_path / "dup.toml")
    (tmp_path / "shadow.toml").write_text('mode = "shadow"\n')
    (tmp_path / "enforce.toml").write_text('mode = "enforce"\n')
    with pytest.raises(PolicyError, match="conflicts"):
        load_policy(tmp_path / "shadow.toml", tmp_path / "enforce.toml")
    assert load_policy(tmp_path / "shadow.toml", tmp_path / "base.toml").mode == "shadow"


def test_role_cycles_are_rejected() -> None:
    with pytest.raises(PolicyError) as info:
        policy_from_dict(
            {"roles": {"a": {"inherits": ["b"]}, "b": {"inherits": ["c"]}, "c": {"inherits": ["a"]}}}
        )
    assert "cycle" in str(info.value) and "a -> b -> c -> a" in str(info.value)
    with pytest.raises(PolicyError, match="cycle"):
        policy_from_dict({"roles": {"a": {"inherits": ["a"]}}})


def test_other_top_level_validation(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="unknown time zone"):
        policy_from_dict({"timezone": "Mars/Base"})
    with pytest.raises(PolicyError, match="version"):
        policy_from_dict({"version": 2})
    with pytest.raises(PolicyError, match="tagged with tenant"):
        load_policy_text('[servers.db]\ntenant = "a"\n')  # fine alone
        (tmp_path / "a.toml").write_text('[servers.db]\ntenant = "a"\n')
        (tmp_path / "b.toml").write_text('[servers.db]\ntenant = "b"\n')
        load_policy(tmp_path / "a.toml", tmp_path / "b.toml")
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "missing.toml")
    with pytest.raises(PolicyError, match="extension"):
        load_policy(tmp_path / "policy.txt")
    with pytest.raises(PolicyError, match="no policy file"):
        load_policy()
    with pytest.raises(PolicyError, match="top level"):
        load_policy_text("[1, 2]", fmt="json")


@pytest.mark.parametrize(
    ("typo", "known"),
    [
        ('rolez = ["x"]', "roles"),
        ('tool = ["query"]', "tools"),
        ('efect = "allow"', "effect"),
    ],
)
def test_unknown_rule_field_suggests_the_known_one(tmp_path: Path, typo: str, known: str) -> None:
    text = 'version = 1\n[[rules]]\nid = "a"\neffect = "allow"\ntools = ["t"]\n' + typo + "\n"
    e = _error(tmp_path, "p.toml", text)
    assert e.line == 6 and f"did you mean `{known}`?" in str(e), str(e)


def test_every_unknown_key_of_a_policy_file_is_shown_with_its_line(tmp_path: Path) -> None:
    text = (
        'version = 1\ndefualt = "deny"\n[roles.analyst]\ninherit = ["viewer"]\n'
        '[[rules]]\nid = "a"\neffect = "allow"\ntools = ["t"]\n'
        '[[limits]]\nid = "l"\nper = ["subject"]\nrequests = 1\nwindw = "1m"\n'
    )
    e = _error(tmp_path, "p.toml", text)
    lines = str(e).splitlines()
    assert len(lines) == 4 and lines[2].endswith("limits[0].window: required field is missing"), lines
    del lines[2]
    for line, (no, typo, known) in zip(
        lines, [(2, "defualt", "default"), (4, "inherit", "inherits"), (13, "windw", "window")], strict=True
    ):
        assert line.startswith(f"{e.file}:{no}: ") and typo in line and f"did you mean `{known}`?" in line


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("HR://users/%63eo/*", "did you mean 'hr://users/ceo/*'"),
        ("hr://users/ceo%2F*", "always refused"),
        ("hr://users/../ceo/*", "always refused"),
    ],
)
def test_resource_patterns_must_be_in_the_canonical_spelling(pattern: str, message: str) -> None:
    rule = {"id": "r", "effect": "deny", "resources": [pattern]}
    with pytest.raises(PolicyError, match=re.escape(message)):
        policy_from_dict({"rules": [rule]})
    tenant = {"tenants": {"acme": {"resources": [pattern]}}}
    with pytest.raises(PolicyError, match=re.escape(message)):
        policy_from_dict({**tenant, "rules": []})
    for fine in ("hr://users/ceo/*", "file:///data/[!.]*", "*", "notes://note/?"):
        policy_from_dict({"rules": [{**rule, "resources": [fine]}]})
