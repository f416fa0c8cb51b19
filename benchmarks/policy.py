"""Policy decision cost: mcp-guard's compiled policy against cedarpy and pycasbin on one generated policy.

The generated policy has 50 roles (with inheritance), 200 rules (allow and
deny, literal tool lists, prefix globs and any-tool rules, about a third
with a condition) over 500 tools on 20 servers. The same policy is written
in Cedar (one pre-parsed policy set per server, one pre-parsed entity store)
and as a casbin RBAC-with-domains model with deny-override (conditions left
out: casbin's RBAC model cannot express them, so it is compared only on
requests that no conditional rule could decide).

Run: ``.venv/bin/python benchmarks/policy.py`` (needs the ``bench`` extra:
cedarpy, casbin). Prints median microseconds per decision, ratios and how
many decisions each engine agrees on.
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcp_guard.model import AccessRequest, Principal, RequestContext
from mcp_guard.policy import CompiledPolicy, policy_from_dict

SEED = 20260101
N_ROLES, N_RULES, N_SERVERS, TOOLS_PER_SERVER = 50, 200, 20, 25
N_USERS, N_REQUESTS = 300, 4000

CONDITIONS = [
    ("principal.mfa", "context.mfa"),
    ("request.arguments.limit <= 100", "context.args.limit <= 100"),
    ('in_cidr(principal.ip, "10.0.0.0/8")', 'context.ip.isInRange(ip("10.0.0.0/8"))'),
    ("context.hour >= 9 && context.hour < 18", "context.hour >= 9 && context.hour < 18"),
]


@dataclass
class GenRule:
    id: str
    effect: str
    roles: list[str]
    server: str | None
    tools: list[str] | None  # None: every tool
    glob: bool
    condition: int | None


@dataclass
class GenRequest:
    user: str
    principal: Principal
    request: AccessRequest
    context: dict[str, Any]


def generate() -> tuple[
    list[str], dict[str, list[str]], list[GenRule], dict[str, list[str]], list[GenRequest]
]:
    rng = random.Random(SEED)
    roles = [f"r{i}" for i in range(N_ROLES)]
    inherits = {r: [f"r{i - i % 5}"] for i, r in enumerate(roles) if i % 5}
    servers = [f"s{i}" for i in range(N_SERVERS)]
    tools = [f"tool{j}" for j in range(TOOLS_PER_SERVER)]
    rules: list[GenRule] = []
    for k in range(N_RULES):
        effect = "deny" if k % 7 == 3 else "allow"
        shape = rng.random()
        if shape < 0.7:
            names, glob = rng.sample(tools, rng.randint(1, 4)), False
        elif shape < 0.9:
            names, glob = [f"tool{rng.randint(1, 2)}*"], True
        else:
            names, glob = None, False
        server = None if (effect == "deny" and rng.random() < 0.3) else rng.choice(servers)
        cond = rng.randrange(len(CONDITIONS)) if rng.random() < 0.33 else None
        rules.append(
            GenRule(f"rule-{k}", effect, rng.sample(roles, rng.randint(1, 2)), server, names, glob, cond)
        )
    users = {f"u{i}": rng.sample(roles, rng.randint(1, 3)) for i in range(N_USERS)}
    requests: list[GenRequest] = []
    for n in range(N_REQUESTS):
        if n % 2 == 0:  # aimed at a rule, so that many requests are allowed or denied by a rule
            rule = rng.choice(rules)
            server = rule.server or rng.choice(servers)
            if rule.tools is None:
                tool = rng.choice(tools)
            elif rule.glob:
                tool = rng.choice([t for t in tools if t.startswith(rule.tools[0][:-1])])
            else:
                tool = rng.choice(rule.tools)
            candidates = [u for u, rs in users.items() if set(rs) & set(rule.roles)] or list(users)
            user = rng.choice(candidates)
        else:
            server, tool, user = rng.choice(servers), rng.choice(tools), rng.choice(list(users))
        mfa = rng.random() < 0.5
        ip = f"10.{rng.randint(0, 255)}.1.{rng.randint(1, 254)}" if rng.random() < 0.5 else "192.168.1.7"
        hour = rng.randrange(24)
        limit = rng.randint(0, 200)
        principal = Principal(user, roles=frozenset(users[user]), mfa=mfa, ip=ip)
        when = datetime(2026, 1, 5, hour, 30, tzinfo=timezone.utc)
        request = AccessRequest(
            "tools/call", "call", server, "tool", tool, {"limit": limit}, RequestContext(when)
        )
        context = {
            "mfa": mfa,
            "ip": {"__extn": {"fn": "ip", "arg": ip}},
            "hour": hour,
            "args": {"limit": limit},
        }
        requests.append(GenRequest(user, principal, request, context))
    return roles, inherits, rules, users, requests


def ours(inherits: dict[str, list[str]], rules: list[GenRule]) -> CompiledPolicy:
    data: dict[str, Any] = {
        "version": 1,
        "roles": {r: {"inherits": p} for r, p in inherits.items()},
        "rules": [],
    }
    for rule in rules:
        spec: dict[str, Any] = {
            "id": rule.id,
            "effect": rule.effect,
            "roles": rule.roles,
            "actions": ["call"],
        }
        if rule.server is not None:
            spec["servers"] = [rule.server]
        if rule.tools is not None:
            spec["tools"] = rule.tools
        if rule.condition is not None:
            spec["when"] = CONDITIONS[rule.condition][0]
        data["rules"].append(spec)
    return policy_from_dict(data, "<generated>")


def cedar_setup(
    roles: list[str], inherits: dict[str, list[str]], rules: list[GenRule], users: dict[str, list[str]]
) -> tuple[Any, dict[str, Any]]:
    import cedarpy

    def policy_text(rule: GenRule) -> str:
        parts = [" || ".join(f'principal in Role::"{r}"' for r in rule.roles)]
        if rule.server is not None:
            parts.append(f'resource.server == "{rule.server}"')
        if rule.tools is not None:
            if rule.glob:
                parts.append(f'resource.name like "{rule.tools[0]}"')
            else:
                parts.append("[" + ", ".join(f'"{t}"' for t in rule.tools) + "].contains(resource.name)")
        if rule.condition is not None:
            parts.append(CONDITIONS[rule.condition][1])
        verb = "forbid" if rule.effect == "deny" else "permit"
        body = " && ".join(f"({p})" for p in parts)
        return f'{verb} (principal, action == Action::"call", resource) when {{ {body} }};'

    per_server = {}
    for s in range(N_SERVERS):
        server = f"s{s}"
        texts = [policy_text(r) for r in rules if r.server in (None, server)]
        per_server[server] = cedarpy.PolicySet.from_str("\n".join(texts))
    entities: list[dict[str, Any]] = []
    for user, rs in users.items():
        entities.append(
            {
                "uid": {"type": "User", "id": user},
                "attrs": {},
                "parents": [{"type": "Role", "id": r} for r in rs],
            }
        )
    for role in roles:
        parents = [{"type": "Role", "id": p} for p in inherits.get(role, [])]
        entities.append({"uid": {"type": "Role", "id": role}, "attrs": {}, "parents": parents})
    for s in range(N_SERVERS):
        for j in range(TOOLS_PER_SERVER):
            uid = {"type": "Tool", "id": f"s{s}/tool{j}"}
            entities.append({"uid": uid, "attrs": {"server": f"s{s}", "name": f"tool{j}"}, "parents": []})
    return cedarpy.Entities.from_json_str(json.dumps(entities)), per_server


def cedar_decide(cedar: tuple[Any, dict[str, Any]], req: GenRequest) -> bool:
    import cedarpy

    entities, per_server = cedar
    r = req.request
    query = {
        "principal": f'User::"{req.user}"',
        "action": 'Action::"call"',
        "resource": f'Tool::"{r.server}/{r.target}"',
        "context": req.context,
    }
    return bool(cedarpy.is_authorized(query, per_server[r.server], entities).allowed)


CASBIN_MODEL = """
[request_definition]
r = sub, dom, obj, act
[policy_definition]
p = sub, dom, obj, act, eft
[role_definition]
g = _, _
[policy_effect]
e = some(where (p.eft == allow)) && !some(where (p.eft == deny))
[matchers]
m = g(r.sub, p.sub) && (p.dom == "*" || r.dom == p.dom) && globMatch(r.obj, p.obj) && r.act == p.act
"""


def casbin_setup(inherits: dict[str, list[str]], rules: list[GenRule], users: dict[str, list[str]]) -> Any:
    import logging

    import casbin

    logging.getLogger("casbin").setLevel(logging.WARNING)
    model = casbin.Model()
    model.load_model_from_text(CASBIN_MODEL)
    enforcer = casbin.Enforcer(model)
    for rule in rules:
        if rule.condition is not None:
            continue
        for role in rule.roles:
            for tool in rule.tools or ["*"]:
                enforcer.add_policy(role, rule.server or "*", tool, "call", rule.effect)
    for user, rs in users.items():
        for role in rs:
            enforcer.add_grouping_policy(user, role)
    for role, parents in inherits.items():
        for parent in parents:
            enforcer.add_grouping_policy(role, parent)
    return enforcer


def touches_condition(policy: CompiledPolicy, req: GenRequest) -> bool:
    """Whether a conditional rule applies to this request apart from its condition."""
    r = req.request
    cands = policy._candidates(r.server, r.kind, r.target)
    view = policy._view(req.principal)
    for m in (*cands.denies, *cands.allows):
        if m.condition is not None and m.principal_ok(view.subject, view.roles, view.groups, view.tenant):
            return True
    return False


def per_decision_us(fn: Any, repeat: int) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat * 1e6


def main() -> None:
    roles, inherits, rules, users, requests = generate()
    policy = ours(inherits, rules)
    cedar = cedar_setup(roles, inherits, rules, users)
    enforcer = casbin_setup(inherits, rules, users)

    mine = [policy.decide(q.principal, q.request).allowed for q in requests]
    cond = [touches_condition(policy, q) for q in requests]
    cedar_out = [cedar_decide(cedar, q) for q in requests]
    casbin_out = [
        bool(enforcer.enforce(q.user, q.request.server, q.request.target, "call")) if not c else None
        for q, c in zip(requests, cond, strict=True)
    ]
    agree_cedar = sum(a == b for a, b in zip(mine, cedar_out, strict=True))
    casbin_pairs = [(a, b) for a, b in zip(mine, casbin_out, strict=True) if b is not None]
    agree_casbin = sum(a == b for a, b in casbin_pairs)

    # cold: the first decision for a (server, target) pays the index lookup
    fresh = ours(inherits, rules)
    cold = []
    for q in requests[:500]:
        start = time.perf_counter()
        fresh.decide(q.principal, q.request)
        cold.append((time.perf_counter() - start) * 1e6)

    sample = requests[:1500]
    bare = ours(inherits, rules)
    bare.memo_size = 0  # no decision memo: every call runs the candidate scan
    plain_t: list[float] = []
    cond_t: list[float] = []
    bare_plain_t: list[float] = []
    bare_cond_t: list[float] = []
    cedar_t: list[float] = []
    casbin_t: list[float] = []
    for q, c in zip(sample, cond, strict=False):
        t = per_decision_us(lambda q=q: policy.decide(q.principal, q.request), 50)
        (cond_t if c else plain_t).append(t)
        t = per_decision_us(lambda q=q: bare.decide(q.principal, q.request), 50)
        (bare_cond_t if c else bare_plain_t).append(t)
    for q in sample[:400]:
        cedar_t.append(per_decision_us(lambda q=q: cedar_decide(cedar, q), 3))
    for q in sample[:200]:
        r = q.request
        casbin_t.append(
            per_decision_us(lambda q=q, r=r: enforcer.enforce(q.user, r.server, r.target, "call"), 2)
        )

    # list filtering: one principal, all 500 tools across 20 servers
    all_tools = [(f"s{s}", f"tool{j}") for s in range(N_SERVERS) for j in range(TOOLS_PER_SERVER)]
    who = requests[0].principal

    def filter_all(p: CompiledPolicy) -> int:
        return sum(p.visible(who, server, "tool", name) for server, name in all_tools)

    warm_list = statistics.median(per_decision_us(lambda: filter_all(policy), 5) for _ in range(20)) / 1000
    bare_list = statistics.median(per_decision_us(lambda: filter_all(bare), 5) for _ in range(20)) / 1000
    cold_lists = []
    for _ in range(5):
        fresh = ours(inherits, rules)
        start = time.perf_counter()
        filter_all(fresh)
        cold_lists.append((time.perf_counter() - start) * 1000)
    visible_count = filter_all(policy)

    med = statistics.median
    m_plain, m_cond, m_cedar, m_casbin = med(plain_t), med(cond_t), med(cedar_t), med(casbin_t)
    m_all = med(plain_t + cond_t)
    allowed = sum(mine)
    conditional = sum(r.condition is not None for r in rules)
    denies = sum(r.effect == "deny" for r in rules)
    print(
        f"policy: {N_ROLES} roles, {len(rules)} rules ({conditional} conditional, {denies} deny),"
        f" {N_SERVERS * TOOLS_PER_SERVER} tools on {N_SERVERS} servers"
    )
    print(
        f"requests: {len(requests)} ({allowed} allowed, {len(requests) - allowed} denied; "
        f"{sum(cond)} touch a conditional rule)"
    )
    print()
    print(f"{'engine / case':<44}{'median us/decision':>20}{'vs mcp-guard':>14}")
    print("-" * 78)
    rows = [
        ("mcp-guard, no condition (memoised)", m_plain, None),
        ("mcp-guard, no condition, memo off", med(bare_plain_t), None),
        ("mcp-guard, with a condition evaluated", m_cond, None),
        ("mcp-guard, with a condition, memo off", med(bare_cond_t), None),
        ("mcp-guard, all requests", m_all, None),
        ("mcp-guard, first decision per target (cold)", med(cold), None),
        ("cedarpy (pre-parsed policy set per server)", m_cedar, m_cedar / m_all),
        ("pycasbin RBAC with domains, deny-override", m_casbin, m_casbin / m_all),
    ]
    for name, value, ratio in rows:
        print(f"{name:<44}{value:>20.2f}{(f'{ratio:.0f}x' if ratio else ''):>14}")
    print()
    print(
        f"cedarpy vs mcp-guard with a condition: {m_cedar / m_cond:.0f}x; without: {m_cedar / m_plain:.0f}x"
    )
    print(
        f"list filtering, 500 tools for one principal ({visible_count} visible): "
        f"{warm_list:.3f} ms memoised, {bare_list:.3f} ms memo off,"
        f" {med(cold_lists):.3f} ms cold (fresh policy)"
    )
    print()
    print(f"agreement with cedarpy: {agree_cedar}/{len(requests)} requests")
    print(f"agreement with pycasbin: {agree_casbin}/{len(casbin_pairs)} requests without a conditional rule")
    if agree_cedar != len(requests) or agree_casbin != len(casbin_pairs):
        for q, a, b in zip(requests, mine, cedar_out, strict=True):
            if a != b:
                print(
                    "  disagreement:",
                    q.user,
                    sorted(q.principal.roles),
                    q.request.server,
                    q.request.target,
                    q.context,
                    "mcp-guard",
                    a,
                    "cedar",
                    b,
                )
                break


if __name__ == "__main__":
    main()
