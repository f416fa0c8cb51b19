"""Decisions, visibility, tenancy, obligations, shadow and limits (DESIGN.md section 3)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from mcp_guard.model import AccessRequest, Obligation, Principal, RequestContext
from mcp_guard.policy import AllowListPolicy, CompiledPolicy, load_policy_text, policy_from_dict
from mcp_guard.protocols import PolicyEngine

CONTRACT = """
version = 1
default = "deny"
[roles.analyst]
inherits = ["viewer"]
[[rules]]
id = "analysts-query-orders"
effect = "allow"
roles = ["analyst"]
servers = ["db"]
tools = ["query", "list_*"]
actions = ["call"]
shadow = false
when = 'principal.mfa && request.arguments.table != "users"'
[[limits]]
id = "per-user-per-server"
per = ["subject", "server"]
requests = 100
window = "1m"
servers = ["db"]
"""

NOON = RequestContext(datetime(2026, 3, 4, 12, 0, tzinfo=timezone.utc))


def who(subject: str = "alice", **kw: Any) -> Principal:
    return Principal(subject, **kw)


def call(server: str, tool: str, **arguments: Any) -> AccessRequest:
    return AccessRequest("tools/call", "call", server, "tool", tool, arguments, NOON)


def req(action: str, server: str, kind: Any, target: Any, **arguments: Any) -> AccessRequest:
    return AccessRequest("x", action, server, kind, target, arguments, NOON)


def rules(*specs: dict[str, Any], **top: Any) -> CompiledPolicy:
    return policy_from_dict({"version": 1, **top, "rules": list(specs)})


def test_contract_example_decisions() -> None:
    p = load_policy_text(CONTRACT)
    analyst = who(roles={"analyst"}, mfa=True)
    d = p.decide(analyst, call("db", "query", table="orders"))
    assert (d.allowed, d.rule) == (True, "analysts-query-orders")
    assert not p.decide(analyst, call("db", "query", table="users")).allowed
    assert not p.decide(who(roles={"analyst"}, mfa=False), call("db", "query", table="orders")).allowed
    assert p.decide(analyst, call("db", "list_tables", table="x")).allowed
    assert not p.decide(analyst, call("other", "query", table="orders")).allowed
    assert not p.decide(who(roles={"viewer"}, mfa=True), call("db", "query", table="x")).allowed
    default = p.decide(who(), call("db", "drop"))
    assert (default.allowed, default.rule) == (False, None)
    assert isinstance(p, PolicyEngine)


def test_deny_overrides_allow_and_reports_first_matching_rule_of_winning_effect() -> None:
    p = rules(
        {"id": "a1", "effect": "allow", "tools": ["*"]},
        {"id": "d1", "effect": "deny", "tools": ["rm"], "roles": ["intern"]},
        {"id": "a2", "effect": "allow", "tools": ["rm"]},
        {"id": "d2", "effect": "deny", "tools": ["r*"]},
    )
    assert p.decide(who(), call("s", "ls")).rule == "a1"
    d = p.decide(who(roles={"intern"}), call("s", "rm"))
    assert (d.allowed, d.rule) == (False, "d1")
    d = p.decide(who(), call("s", "rm"))
    assert (d.allowed, d.rule) == (False, "d2")


def test_default_allow_still_honours_denies() -> None:
    p = rules({"id": "no-rm", "effect": "deny", "tools": ["rm"]}, default="allow")
    assert p.decide(who(), call("s", "ls")).allowed
    assert p.decide(who(), call("s", "ls")).rule is None
    assert not p.decide(who(), call("s", "rm")).allowed
    assert p.visible(who(), "s", "tool", "ls") and not p.visible(who(), "s", "tool", "rm")


def test_a_rule_applies_only_to_the_kinds_it_names() -> None:
    p = rules({"id": "t", "effect": "allow", "tools": ["*"]})
    assert p.decide(who(), call("s", "x")).allowed
    assert not p.decide(who(), req("get", "s", "prompt", "x")).allowed
    assert not p.decide(who(), req("read", "s", "resource", "file:///x")).allowed
    assert not p.visible(who(), "s", "prompt", "x")


def test_a_rule_naming_no_kind_covers_every_target_of_its_servers() -> None:
    p = rules(
        {"id": "all", "effect": "allow", "servers": ["s"]},
        {"id": "lockdown", "effect": "deny", "servers": ["locked"]},
        {"id": "any", "effect": "allow", "servers": ["locked"], "tools": ["*"]},
    )
    for kind, action, target in (
        ("tool", "call", "x"),
        ("prompt", "get", "p"),
        ("resource", "read", "a://b"),
    ):
        assert p.decide(who(), req(action, "s", kind, target)).allowed
        assert not p.decide(who(), req(action, "other", kind, target)).allowed
    assert p.decide(who(), call("locked", "x")).rule == "lockdown"
    assert not p.visible(who(), "locked", "tool", "x")


def test_non_targeted_requests_get_default_deny_unless_a_kindless_rule_allows() -> None:
    p = rules({"id": "t", "effect": "allow", "tools": ["*"]})
    d = p.decide(who(), req("session", "s", None, None))
    assert (d.allowed, d.rule) == (False, None)
    p2 = rules({"id": "any", "effect": "allow", "servers": ["s"]})
    assert p2.decide(who(), req("session", "s", None, None)).allowed


@pytest.mark.parametrize(
    ("pattern", "name", "expected"),
    [
        ("file:///data/*", "file:///data/a/b/c.txt", True),
        ("file:///data/*.txt", "file:///data/sub/c.txt", True),
        ("file:///data/?", "file:///data/a", True),
        ("file:///data/?", "file:///data/ab", False),
        ("report_[0-9]", "report_7", True),
        ("report_[!0-9]", "report_7", False),
        ("Query", "query", False),
        ("caf\u00e9", "cafe\u0301", True),  # NFC: decomposed name matches composed pattern
        ("a.b", "axb", False),  # dots are literal
        ("x[", "x[", True),  # an unclosed bracket is literal
    ],
)
def test_glob_matching(pattern: str, name: str, expected: bool) -> None:
    p = rules({"id": "r", "effect": "allow", "resources": [pattern], "tools": [pattern]})
    assert p.decide(who(), req("read", "s", "resource", name)).allowed is expected
    assert p.decide(who(), call("s", name)).allowed is expected


def test_actions_filter_and_list_visibility_follows_the_use_action() -> None:
    p = rules(
        {"id": "sub", "effect": "allow", "resources": ["feed://*"], "actions": ["subscribe"]},
        {"id": "read", "effect": "allow", "resources": ["doc://*"], "actions": ["read"]},
        {"id": "comp", "effect": "allow", "prompts": ["p"], "actions": ["complete"]},
    )
    assert p.decide(who(), req("subscribe", "s", "resource", "feed://x")).allowed
    assert not p.decide(who(), req("read", "s", "resource", "feed://x")).allowed
    assert not p.visible(who(), "s", "resource", "feed://x")
    assert p.visible(who(), "s", "resource", "doc://x")
    assert p.visible(who(), "s", "resource_template", "doc://{id}")
    assert p.decide(who(), req("complete", "s", "prompt", "p")).allowed
    assert not p.visible(who(), "s", "prompt", "p")
    assert not p.visible(who(), "s", "widget", "p")


def test_visibility_ignores_conditions_of_allows_and_of_denies() -> None:
    p = rules(
        {"id": "mfa", "effect": "allow", "tools": ["pay"], "when": "principal.mfa"},
        {"id": "hide", "effect": "deny", "tools": ["secret"]},
        {"id": "all", "effect": "allow", "tools": ["*"]},
        {"id": "night", "effect": "deny", "tools": ["deploy"], "when": "context.hour < 6"},
    )
    alice = who()
    assert p.visible(alice, "s", "tool", "pay")  # allow with a when: listed, checked at use
    assert not p.visible(alice, "s", "tool", "secret")  # unconditional deny hides
    assert p.visible(alice, "s", "tool", "deploy")  # conditional deny does not hide
    assert p.decide(alice, call("s", "pay")).allowed  # 'all' allows without condition
    assert not p.decide(alice, call("s", "secret")).allowed


def test_role_inheritance_is_transitive_and_membership_grants_roles() -> None:
    p = policy_from_dict(
        {
            "roles": {
                "admin": {"inherits": ["editor"]},
                "editor": {"inherits": ["viewer"]},
                "oncall": {"subjects": ["bob"], "groups": ["sre"]},
            },
            "rules": [
                {"id": "view", "effect": "allow", "roles": ["viewer"], "tools": ["read"]},
                {"id": "page", "effect": "allow", "roles": ["oncall"], "tools": ["page"]},
            ],
        }
    )
    assert p.decide(who(roles={"admin"}), call("s", "read")).allowed
    assert not p.decide(who(roles={"admin"}), call("s", "page")).allowed
    assert p.decide(who("bob"), call("s", "page")).allowed
    assert p.decide(who("carol", groups={"sre"}), call("s", "page")).allowed
    assert p.effective_roles(who(roles={"admin"})) == {"admin", "editor", "viewer"}


def test_principal_selectors_subjects_groups_tenants_with_globs() -> None:
    p = rules(
        {"id": "s", "effect": "allow", "subjects": ["*@acme.com"], "tools": ["a"]},
        {"id": "g", "effect": "allow", "groups": ["eng"], "tools": ["b"]},
        {"id": "t", "effect": "allow", "tenants": ["acme"], "tools": ["c"]},
    )
    assert p.decide(who("ann@acme.com"), call("s", "a")).allowed
    assert not p.decide(who("ann@evil.com"), call("s", "a")).allowed
    assert p.decide(who(groups={"eng"}), call("s", "b")).allowed
    assert not p.decide(who(groups={"ops"}), call("s", "b")).allowed
    assert p.decide(who(tenant="acme"), call("s", "c")).allowed
    assert not p.decide(who(), call("s", "c")).allowed


def test_tenant_isolation_and_cross_tenant_rules() -> None:
    p = policy_from_dict(
        {
            "servers": {"acme-db": {"tenant": "acme"}},
            "tenants": {"globex": {"resources": ["file:///tenants/globex/*"]}},
            "rules": [
                {"id": "everyone", "effect": "allow", "tools": ["*"], "resources": ["*"]},
                {
                    "id": "support",
                    "effect": "allow",
                    "roles": ["support"],
                    "servers": ["acme-db"],
                    "cross_tenant": True,
                },
            ],
        }
    )
    acme, globex = who(tenant="acme"), who("g", tenant="globex")
    assert p.decide(acme, call("acme-db", "q")).allowed
    d = p.decide(globex, call("acme-db", "q"))
    assert not d.allowed and any("tenant isolation" in r for r in d.reasons)
    assert not p.visible(globex, "acme-db", "tool", "q")
    assert not p.visible(who("nobody"), "acme-db", "tool", "q")
    assert p.decide(who("s", tenant="globex", roles={"support"}), call("acme-db", "q")).allowed
    assert p.decide(globex, req("read", "files", "resource", "file:///tenants/globex/a")).allowed
    assert not p.decide(acme, req("read", "files", "resource", "file:///tenants/globex/a")).allowed
    assert p.decide(acme, req("read", "files", "resource", "file:///public/a")).allowed


def test_obligations_on_allow_are_merged() -> None:
    p = rules(
        {"id": "pay", "effect": "allow", "tools": ["pay"], "redact": ["card.number"], "step_up": "15m"},
        {"id": "pay-audit", "effect": "allow", "tools": ["pay"], "redact": ["cvv"], "step_up": 300},
        {"id": "plain", "effect": "allow", "tools": ["ls"]},
    )
    d = p.decide(who(), call("s", "pay"))
    assert d.rule == "pay"
    assert d.obligations == (
        Obligation("redact", {"fields": ("card.number", "cvv")}),
        Obligation("step_up", {"max_age": 300.0}),
    )
    assert p.decide(who(), call("s", "ls")).obligations == ()


def test_shadow_rule_is_reported_but_not_enforced() -> None:
    p = rules(
        {"id": "new-deny", "effect": "deny", "tools": ["export"], "shadow": True},
        {"id": "ok", "effect": "allow", "tools": ["*"]},
        {"id": "trial", "effect": "allow", "prompts": ["beta"], "shadow": True},
    )
    d = p.decide(who(), call("s", "export"))
    assert d.allowed and d.rule == "ok" and d.shadow and d.would_allow is False
    assert any("new-deny" in r for r in d.reasons)
    assert p.visible(who(), "s", "tool", "export")  # a shadow deny hides nothing
    d = p.decide(who(), req("get", "s", "prompt", "beta"))
    assert not d.allowed and d.shadow and d.would_allow is True
    assert not p.visible(who(), "s", "prompt", "beta")  # a shadow allow lists nothing
    plain = p.decide(who(), call("s", "ls"))
    assert plain.allowed and not plain.shadow and plain.would_allow is None


def test_global_shadow_mode_enforces_nothing() -> None:
    p = rules({"id": "no", "effect": "deny", "tools": ["rm"]}, mode="shadow")
    assert p.mode == "shadow"
    d = p.decide(who(), call("s", "rm"))
    assert d.allowed and d.shadow and d.would_allow is False and d.rule == "no"
    d = p.decide(who(), call("s", "other"))
    assert d.allowed and d.shadow and d.would_allow is False and d.rule is None
    assert p.visible(who(), "s", "tool", "rm")


def test_limits_for_uses_rule_matching() -> None:
    p = policy_from_dict(
        {
            "roles": {"analyst": {"inherits": ["viewer"]}},
            "limits": [
                {
                    "id": "db",
                    "requests": 100,
                    "window": "1m",
                    "per": ["subject", "server"],
                    "servers": ["db"],
                },
                {"id": "viewers", "requests": 5, "window": 10, "roles": ["viewer"], "tools": ["export*"]},
                {"id": "reads", "requests": 9, "window": "1h", "actions": ["read"]},
            ],
        }
    )
    ids = [s.id for s in p.limits_for(who(roles={"analyst"}), call("db", "export_csv"))]
    assert ids == ["db", "viewers"]
    spec = p.limits_for(who(), call("db", "x"))[0]
    assert (spec.requests, spec.window, spec.per, spec.servers) == (100, 60.0, ("subject", "server"), ("db",))
    assert [s.id for s in p.limits_for(who(), req("read", "fs", "resource", "a://b"))] == ["reads"]
    assert p.limits_for(who(), call("fs", "x")) == ()


def test_explain_lists_every_rule_with_a_reason() -> None:
    p = load_policy_text(CONTRACT + '\n[[rules]]\nid = "no-drop"\neffect = "deny"\ntools = ["drop"]\n')
    e = p.explain(who(roles={"analyst"}, mfa=True), call("db", "query", table="orders"))
    assert e.decision.rule == "analysts-query-orders"
    assert [(t.rule, t.matched) for t in e.traces] == [("analysts-query-orders", True), ("no-drop", False)]
    assert "condition is true" in e.traces[0].reason and "drop" in e.traces[1].reason
    e = p.explain(who(roles={"analyst"}), call("db", "query"))
    assert "could not be evaluated" in e.traces[0].reason or "false" in e.traces[0].reason
    assert "decision: deny" in e.render()
    assert e.as_dict()["rules"][1]["rule"] == "no-drop"


def test_decide_fails_closed_on_internal_error() -> None:
    p = rules({"id": "a", "effect": "allow", "tools": ["*"]})
    bad = AccessRequest("tools/call", "call", None, "tool", "x")  # type: ignore[arg-type]
    d = p.decide(who(), bad)
    assert not d.allowed and "failed" in d.reasons[0]
    assert p.visible(who(), None, "tool", "x") is False  # type: ignore[arg-type]


def test_memoised_decisions_do_not_leak_between_principals_or_conditions() -> None:
    p = rules({"id": "mfa", "effect": "allow", "tools": ["pay"], "when": "principal.mfa"})
    assert p.decide(who(mfa=True), call("s", "pay")).allowed
    assert not p.decide(who(mfa=False), call("s", "pay")).allowed
    q = rules({"id": "ops", "effect": "allow", "roles": ["ops"], "tools": ["x"]})
    assert q.decide(who(roles={"ops"}), call("s", "x")).allowed
    assert not q.decide(who(roles={"dev"}), call("s", "x")).allowed
    assert q.version != p.version


def test_allow_list_policy() -> None:
    p = AllowListPolicy(tools=["get_*"], resources=["file:///pub/*"])
    assert p.decide(who(), call("any", "get_time")).allowed
    assert not p.decide(who(), call("any", "delete")).allowed
    assert p.visible(who(), "any", "resource", "file:///pub/a/b")
    assert not p.visible(who(), "any", "prompt", "get_x")
    nothing = AllowListPolicy()
    assert not nothing.decide(who(), call("s", "x")).allowed
    scoped = AllowListPolicy(tools=["*"], servers=["time"])
    assert scoped.decide(who(), call("time", "now")).allowed
    assert not scoped.decide(who(), call("db", "now")).allowed


def test_a_false_when_is_named_in_the_reason_not_no_rule_matched() -> None:
    p = load_policy_text(CONTRACT)
    d = p.decide(who(roles={"analyst"}, mfa=True), call("db", "query", table="users"))
    assert (d.allowed, d.rule) == (False, None)
    assert d.reasons[0] == "rule analysts-query-orders matched but its `when` was false; default deny"
    # A caller no rule is written for still gets the plain default.
    d = p.decide(who(roles={"guest"}), call("db", "query", table="orders"))
    assert d.reasons == ("no rule matched; default deny",)
    two = rules(
        {"id": "a", "effect": "allow", "tools": ["t"], "when": "false"},
        {"id": "b", "effect": "allow", "tools": ["t"], "when": "1 > 2"},
    )
    assert two.decide(who(), call("s", "t")).reasons[0] == (
        "rules a, b matched but their `when` was false; default deny"
    )


@pytest.mark.parametrize(
    "obligation",
    [
        {"approval": {"approvers": ["admin"], "timeout": "10m"}},
        {"confirm": "Transfer {amount}?"},
        {"step_up": "15m"},
        {"redact": ["amount"]},
    ],
)
def test_an_obligation_is_never_dropped_by_a_condition_that_cannot_be_evaluated(
    obligation: dict[str, Any],
) -> None:
    """A string where the condition expects a number must not turn 'allow with approval' into 'allow'."""
    policy = rules(
        {"id": "ops", "effect": "allow", "roles": ["ops"], "tools": ["transfer"]},
        {"id": "big", "effect": "allow", "roles": ["ops"], "tools": ["transfer"],
         "when": "request.arguments.amount > 1000", **obligation},
    )  # fmt: skip
    ops = who(roles=frozenset({"ops"}))
    big = policy.decide(ops, call("bank", "transfer", amount=5000))
    assert big.allowed and {o.kind for o in big.obligations} == set(obligation)
    small = policy.decide(ops, call("bank", "transfer", amount=5))
    assert small.allowed and small.rule == "ops" and not small.obligations
    odd = policy.decide(ops, call("bank", "transfer", amount="5000"))
    assert not odd.allowed and odd.rule == "big" and "refused rather than run without" in odd.reasons[0]
