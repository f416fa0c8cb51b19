"""Property tests of the decision semantics against a direct reading of DESIGN.md section 3.

The reference below evaluates every rule in file order with no index, no
caches and no memo; the compiled policy must agree with it on every
generated policy and request.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_guard.model import AccessRequest, Principal
from mcp_guard.policy import policy_from_dict

ROLES = ["r0", "r1", "r2", "r3"]
SERVERS = ["s0", "s1"]
NAMES = ["a", "ab", "b", "x/y"]
PATTERNS = ["a", "ab", "b", "a*", "*", "?", "x/*", "[ab]"]
KINDS = {"tool": "tools", "prompt": "prompts", "resource": "resources"}
ACTIONS = {"tool": ["call"], "prompt": ["get", "complete"], "resource": ["read", "subscribe", "complete"]}


@st.composite
def rule_specs(draw: Any, index: int) -> dict[str, Any]:
    spec: dict[str, Any] = {"id": f"rule{index}", "effect": draw(st.sampled_from(["allow", "allow", "deny"]))}
    if draw(st.booleans()):
        spec["roles"] = draw(st.lists(st.sampled_from(ROLES), min_size=1, max_size=2, unique=True))
    if draw(st.booleans()):
        spec["servers"] = draw(
            st.lists(st.sampled_from([*SERVERS, "s*"]), min_size=1, max_size=2, unique=True)
        )
    kinds = draw(st.lists(st.sampled_from(list(KINDS)), max_size=2, unique=True))
    for kind in kinds:
        spec[KINDS[kind]] = draw(st.lists(st.sampled_from(PATTERNS), min_size=1, max_size=2, unique=True))
    if kinds and draw(st.booleans()):
        usable = sorted({a for k in kinds for a in ACTIONS[k]})
        spec["actions"] = draw(st.lists(st.sampled_from(usable), min_size=1, max_size=2, unique=True))
    return spec


@st.composite
def policies(draw: Any) -> dict[str, Any]:
    count = draw(st.integers(0, 6))
    rules = [draw(rule_specs(i)) for i in range(count)]
    roles = {}
    for i, role in enumerate(ROLES[1:], start=1):  # acyclic: a role inherits only lower-numbered roles
        parents = draw(st.lists(st.sampled_from(ROLES[:i]), max_size=2, unique=True))
        if parents:
            roles[role] = {"inherits": parents}
    return {"default": draw(st.sampled_from(["deny", "deny", "allow"])), "roles": roles, "rules": rules}


@st.composite
def requests(draw: Any) -> tuple[Principal, AccessRequest]:
    principal = Principal("p", roles=frozenset(draw(st.lists(st.sampled_from(ROLES), max_size=2))))
    kind = draw(st.sampled_from(list(KINDS)))
    action = draw(st.sampled_from(ACTIONS[kind]))
    request = AccessRequest("m", action, draw(st.sampled_from(SERVERS)), kind, draw(st.sampled_from(NAMES)))
    return principal, request


def closure(data: dict[str, Any], roles: frozenset[str]) -> set[str]:
    out, todo = set(), list(roles)
    while todo:
        role = todo.pop()
        if role not in out:
            out.add(role)
            todo.extend(data["roles"].get(role, {}).get("inherits", []))
    return out


def matches(data: dict[str, Any], rule: dict[str, Any], principal: Principal, request: AccessRequest) -> bool:
    if "roles" in rule and not closure(data, principal.roles) & set(rule["roles"]):
        return False
    if "servers" in rule and not any(fnmatchcase(request.server, s) for s in rule["servers"]):
        return False
    named = [k for k in KINDS if KINDS[k] in rule]
    if named:
        if request.kind not in named:
            return False
        if not any(fnmatchcase(request.target or "", p) for p in rule[KINDS[request.kind]]):
            return False
    return "actions" not in rule or request.action in rule["actions"]


def reference(data: dict[str, Any], principal: Principal, request: AccessRequest) -> tuple[bool, str | None]:
    matching = [r for r in data["rules"] if matches(data, r, principal, request)]
    for r in matching:
        if r["effect"] == "deny":
            return False, r["id"]
    for r in matching:
        return True, r["id"]
    return data["default"] == "allow", None


@settings(max_examples=300, deadline=None)
@given(policies(), st.lists(requests(), min_size=1, max_size=6))
def test_decisions_equal_the_reference_semantics(data: dict[str, Any], reqs: list[Any]) -> None:
    policy = policy_from_dict(data)
    for principal, request in reqs:
        for _ in range(2):  # the second call is answered from the memo
            d = policy.decide(principal, request)
            assert (d.allowed, d.rule) == reference(data, principal, request)


@settings(max_examples=200, deadline=None)
@given(policies(), st.lists(requests(), min_size=1, max_size=6))
def test_deny_overrides_and_default_deny(data: dict[str, Any], reqs: list[Any]) -> None:
    policy = policy_from_dict({**data, "default": "deny"})
    for principal, request in reqs:
        d = policy.decide(principal, request)
        matching = [r for r in data["rules"] if matches(data, r, principal, request)]
        if any(r["effect"] == "deny" for r in matching):
            assert not d.allowed
        if not matching:
            assert not d.allowed and d.rule is None


@settings(max_examples=200, deadline=None)
@given(policies(), st.lists(requests(), min_size=1, max_size=6))
def test_list_visibility_equals_callability(data: dict[str, Any], reqs: list[Any]) -> None:
    policy = policy_from_dict(data)
    use = {"tool": "call", "prompt": "get", "resource": "read"}
    for principal, request in reqs:
        assert request.kind is not None and request.target is not None
        used = AccessRequest("m", use[request.kind], request.server, request.kind, request.target)
        listed = policy.visible(principal, request.server, request.kind, request.target)
        assert listed == policy.decide(principal, used).allowed


@settings(max_examples=200, deadline=None)
@given(policies(), rule_specs(99), st.lists(requests(), min_size=1, max_size=6))
def test_adding_an_allow_rule_never_removes_access(
    data: dict[str, Any], extra: dict[str, Any], reqs: list[Any]
) -> None:
    before = policy_from_dict(data)
    after = policy_from_dict({**data, "rules": [*data["rules"], {**extra, "effect": "allow"}]})
    first = policy_from_dict({**data, "rules": [{**extra, "effect": "allow"}, *data["rules"]]})
    for principal, request in reqs:
        if before.decide(principal, request).allowed:
            assert after.decide(principal, request).allowed
            assert first.decide(principal, request).allowed
        if before.visible(principal, request.server, request.kind, request.target or ""):
            assert after.visible(principal, request.server, request.kind, request.target or "")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), max_size=10), st.integers(0, 5))
def test_role_inheritance_is_transitive(edges: list[tuple[int, int]], start: int) -> None:
    roles: dict[str, dict[str, list[str]]] = {}
    for child, parent in edges:
        if parent < child:  # keep the graph acyclic
            roles.setdefault(f"r{child}", {"inherits": []})["inherits"].append(f"r{parent}")
    rules = [{"id": f"to-r{i}", "effect": "allow", "roles": [f"r{i}"], "tools": [f"t{i}"]} for i in range(6)]
    policy = policy_from_dict({"roles": roles, "rules": rules})
    principal = Principal("p", roles={f"r{start}"})
    reachable = closure({"roles": roles}, frozenset({f"r{start}"}))
    for i in range(6):
        allowed = policy.decide(principal, AccessRequest("m", "call", "s", "tool", f"t{i}")).allowed
        assert allowed == (f"r{i}" in reachable)
    # transitivity: if a reaches b and b reaches c, a's principal gets c's access
    for role in reachable:
        assert closure({"roles": roles}, frozenset({role})) <= reachable
        assert policy.effective_roles(Principal("q", roles={role})) <= policy.effective_roles(principal)


@settings(max_examples=500, deadline=None)
@given(
    st.text(alphabet="ab/*?[]!-.", min_size=0, max_size=8),
    st.text(alphabet="ab/.-[]", min_size=0, max_size=8),
)
def test_glob_matching_agrees_with_fnmatchcase(pattern: str, name: str) -> None:
    from mcp_guard.policy.globs import NameSet

    assert NameSet([pattern]).match(name) == fnmatchcase(name, pattern), (pattern, name)
