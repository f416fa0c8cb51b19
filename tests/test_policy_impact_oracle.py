"""Impact analysis against a brute-force oracle on generated policies.

The oracle asks the engine itself about concrete principals and requests: for
every role and item, a principal holding that role in each of the eight
worlds that make the generated conditions true or false (MFA or not, country
FR or DE, argument ``x`` 1 or 0). The conditions are independent of one
another, so access is conditional exactly when the worlds disagree, and
``who-can`` and ``diff`` must say precisely what the worlds say.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_guard.errors import PolicyError
from mcp_guard.model import AccessRequest, Decision, Principal
from mcp_guard.policy import CompiledPolicy, policy_from_dict
from mcp_guard.policy.engine import USE_ACTION
from mcp_guard.policy.impact import Access, Item, diff, parse_inventory, who_can

ROLES = ["r0", "r1", "r2", "r3"]
SERVERS = ["s0", "s1"]
NAMES = ["a", "ab", "b", "x/y"]
PATTERNS = ["a", "ab", "b", "a*", "*", "?", "x/*", "[ab]"]
KINDS = {"tool": "tools", "prompt": "prompts", "resource": "resources"}
CONDITIONS = ["principal.mfa", 'principal.country == "FR"', "request.arguments.x == 1"]
#: First world: every condition true; last: none.
WORLDS = list(itertools.product([True, False], ["FR", "DE"], [1, 0]))
ITEMS = [Item(s, k, n) for s in SERVERS for k in KINDS for n in NAMES]
METHODS = {"tool": "tools/call", "prompt": "prompts/get", "resource": "resources/read"}


@st.composite
def rule_specs(draw: Any, index: int) -> dict[str, Any]:
    spec: dict[str, Any] = {"id": f"rule{index}", "effect": draw(st.sampled_from(["allow", "allow", "deny"]))}
    if draw(st.booleans()):
        spec["roles"] = draw(st.lists(st.sampled_from([*ROLES, "r*"]), min_size=1, max_size=2, unique=True))
    if draw(st.booleans()):
        servers = st.sampled_from([*SERVERS, "s*"])
        spec["servers"] = draw(st.lists(servers, min_size=1, max_size=2, unique=True))
    for kind in draw(st.lists(st.sampled_from(list(KINDS)), max_size=2, unique=True)):
        spec[KINDS[kind]] = draw(st.lists(st.sampled_from(PATTERNS), min_size=1, max_size=2, unique=True))
    if draw(st.integers(0, 2)):
        spec["when"] = draw(st.sampled_from(CONDITIONS))
    if draw(st.integers(0, 9)) == 0:
        spec["shadow"] = True
    if draw(st.integers(0, 9)) == 0:
        spec["subjects"] = ["*"]
    return spec


@st.composite
def policies(draw: Any) -> dict[str, Any]:
    rules = [draw(rule_specs(i)) for i in range(draw(st.integers(0, 7)))]
    roles = {}
    for i, role in enumerate(ROLES[1:], start=1):  # acyclic: a role inherits only lower-numbered roles
        parents = draw(st.lists(st.sampled_from(ROLES[:i]), max_size=2, unique=True))
        if parents:
            roles[role] = {"inherits": parents}
    return {"default": draw(st.sampled_from(["deny", "deny", "allow"])), "roles": roles, "rules": rules}


def world_decisions(policy: CompiledPolicy, role: str, item: Item) -> list[Decision]:
    out = []
    for mfa, country, x in WORLDS:
        principal = Principal("", roles=frozenset((role,)), mfa=mfa, country=country)
        kind: Any = item.kind
        action = USE_ACTION[item.kind]
        request = AccessRequest(METHODS[item.kind], action, item.server, kind, item.name, {"x": x})
        out.append(policy.decide(principal, request))
    return out


def oracle(policy: CompiledPolicy, role: str, item: Item) -> tuple[bool, bool, Decision]:
    """(allowed in some world, conditional: the worlds disagree, the all-true world's decision)."""
    decisions = world_decisions(policy, role, item)
    allowed = [d.allowed for d in decisions]
    return any(allowed), any(allowed) and not all(allowed), decisions[0]


def expected_roles(spec: dict[str, Any]) -> list[str]:
    named = {r for rule in spec["rules"] for r in rule.get("roles", ()) if "*" not in r}
    for role, body in spec["roles"].items():
        named |= {role, *body["inherits"]}
    return sorted(named)


@settings(max_examples=150, deadline=None)
@given(policies(), st.sampled_from(ITEMS))
def test_who_can_matches_the_worlds(spec: dict[str, Any], item: Item) -> None:
    policy = policy_from_dict(spec)
    assert list(policy.role_names()) == expected_roles(spec)
    result = who_can(policy, item)
    seen = [e["role"] for e in result["allowed"]] + [e["role"] for e in result["denied_by"]]
    assert sorted(seen) == expected_roles(spec)
    for entry in result["allowed"]:
        allowed, conditional, first = oracle(policy, entry["role"], item)
        assert allowed and entry["conditional"] == conditional, (entry, spec)
        if not conditional:  # allowed everywhere: the rule that allows when no condition holds
            assert entry["rule"] == world_decisions(policy, entry["role"], item)[-1].rule
        elif first.allowed:  # otherwise the rule of the path where every condition holds
            assert entry["rule"] == first.rule
    for entry in result["denied_by"]:
        allowed, _, first = oracle(policy, entry["role"], item)
        assert not allowed, (entry, spec)
        assert entry["rule"] == first.rule


def state(allowed: bool, conditional: bool) -> str:
    return "denied" if not allowed else ("conditional" if conditional else "allowed")


TRANSITIONS = {
    ("denied", "allowed"): "granted",
    ("denied", "conditional"): "granted",
    ("allowed", "denied"): "revoked",
    ("conditional", "denied"): "revoked",
    ("allowed", "conditional"): "now-conditional",
    ("conditional", "allowed"): "now-unconditional",
}


@settings(max_examples=60, deadline=None)
@given(policies(), policies())
def test_diff_matches_the_worlds(old_spec: dict[str, Any], new_spec: dict[str, Any]) -> None:
    old, new = policy_from_dict(old_spec), policy_from_dict(new_spec)
    expected = []
    for role in sorted(set(expected_roles(old_spec)) | set(expected_roles(new_spec))):
        for item in sorted(ITEMS, key=lambda i: (i.server, list(KINDS).index(i.kind), i.name)):
            before = state(*oracle(old, role, item)[:2])
            after = state(*oracle(new, role, item)[:2])
            if before != after:
                expected.append((role, item, TRANSITIONS[before, after]))
    got = [(c.role, c.item, c.change) for c in diff(old, new, reversed(ITEMS))]
    assert got == expected


def test_a_policy_with_no_conditions_is_never_conditional() -> None:
    policy = policy_from_dict({"rules": [{"id": "a", "effect": "allow", "roles": ["r0"], "tools": ["a*"]}]})
    assert who_can(policy, Item("s0", "tool", "ab")) == {
        "allowed": [{"role": "r0", "rule": "a", "conditional": False}],
        "denied_by": [],
    }
    assert Access(True, "a") == Access(True, "a", conditional=False)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)
NAMES_ST = st.text(min_size=1, max_size=8)


@settings(max_examples=300, deadline=None)
@given(JSON | st.fixed_dictionaries({"servers": st.dictionaries(st.text(max_size=4), JSON, max_size=3)}))
def test_inventory_parser_answers_any_json_with_items_or_a_located_error(value: Any) -> None:
    try:
        items = parse_inventory(json.dumps(value), "inv.json")
    except PolicyError as exc:
        assert exc.file == "inv.json"
        return
    assert all(isinstance(i, Item) and i.kind in KINDS and i.name for i in items)


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(
        NAMES_ST,
        st.fixed_dictionaries(
            {},
            optional={
                "tools": st.lists(NAMES_ST | st.builds(lambda n: {"name": n, "inputSchema": {}}, NAMES_ST)),
                "prompts": st.lists(NAMES_ST),
                "resources": st.lists(NAMES_ST | st.builds(lambda u: {"uri": u}, NAMES_ST)),
            },
        ),
        max_size=3,
    )
)
def test_inventory_parser_reads_names_and_list_result_objects(servers: dict[str, Any]) -> None:
    expected = [
        Item(server, kind, entry if isinstance(entry, str) else entry.get("name", entry.get("uri")))
        for server, lists in servers.items()
        for key, entries in lists.items()
        for kind in [key.removesuffix("s")]
        for entry in entries
    ]
    assert parse_inventory(json.dumps({"servers": servers})) == expected
