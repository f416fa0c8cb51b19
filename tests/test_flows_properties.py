"""Property tests: label matching and flow evaluation against simple oracles."""

from __future__ import annotations

import fnmatch
from datetime import datetime, timezone

import anyio
from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_guard.errors import AccessDenied
from mcp_guard.flowstate import FlowTracker
from mcp_guard.model import AccessRequest, Decision, Principal, RequestContext
from mcp_guard.policy import policy_from_dict
from mcp_guard.store import MemoryStore

SERVERS = ["web", "mail", "db"]
LABELS = ["a", "b", "c"]
names = st.text(alphabet="fsx_", min_size=1, max_size=4)
patterns = st.one_of(names, names.map(lambda n: n + "*"), st.just("*"), names.map(lambda n: "?" + n))
tags = st.fixed_dictionaries(
    {"labels": st.lists(st.sampled_from(LABELS), min_size=1, max_size=2, unique=True)},
    optional={
        "servers": st.lists(st.sampled_from(SERVERS), min_size=1, max_size=2, unique=True),
        "tools": st.lists(patterns, min_size=1, max_size=2),
    },
).filter(lambda t: "servers" in t or "tools" in t)


def oracle_labels(entries: list[dict[str, list[str]]], server: str, tool: str) -> set[str]:
    out: set[str] = set()
    for entry in entries:
        if "servers" in entry and server not in entry["servers"]:
            continue
        if "tools" in entry and not any(fnmatch.fnmatchcase(tool, p) for p in entry["tools"]):
            continue
        out |= set(entry["labels"])
    return out


@settings(max_examples=150, deadline=None)
@given(
    entries=st.lists(tags, min_size=1, max_size=4),
    rule_labels=st.lists(st.sampled_from(LABELS), min_size=1, max_size=2, unique=True),
    server=st.sampled_from(SERVERS),
    tool=names,
)
def test_labels_and_label_rules_match_the_oracle(
    entries: list[dict[str, list[str]]], rule_labels: list[str], server: str, tool: str
) -> None:
    declared = {label for e in entries for label in e["labels"]}
    rule_labels = [label for label in rule_labels if label in declared] or [sorted(declared)[0]]
    policy = policy_from_dict(
        {"labels": entries, "rules": [{"id": "r", "effect": "allow", "labels": rule_labels}]}
    )
    expected = oracle_labels(entries, server, tool)
    assert policy.labels_of(server, "tool", tool) == expected
    request = AccessRequest("tools/call", "call", server, "tool", tool)
    allowed = policy.decide(Principal("p"), request).allowed
    assert allowed == bool(expected & set(rule_labels))
    assert policy.visible(Principal("p"), server, "tool", tool) == allowed


steps = st.lists(
    st.tuples(st.sampled_from(["fetch", "send", "other"]), st.integers(min_value=0, max_value=40)),
    max_size=25,
)


@settings(max_examples=100, deadline=None)
@given(steps=steps, window=st.integers(min_value=1, max_value=60))
def test_flow_evaluation_matches_the_oracle(steps: list[tuple[str, int]], window: int) -> None:
    policy = policy_from_dict(
        {
            "labels": [
                {"tools": ["fetch"], "labels": ["in"]},
                {"tools": ["send"], "labels": ["out"]},
            ],
            "flows": [{"id": "f", "after": ["in"], "deny": ["out"], "window": window}],
        }
    )
    now = [0.0]
    tracker = FlowTracker(MemoryStore(clock=lambda: now[0]))
    alice = Principal("alice")

    async def run() -> None:
        last_fetch: float | None = None
        for tool, advance in steps:
            now[0] += advance
            ctx = RequestContext(time=datetime.fromtimestamp(now[0], timezone.utc))
            request = AccessRequest("tools/call", "call", "s", "tool", tool, {}, ctx)
            plan = policy.flow_plan(request)
            expect_refused = tool == "send" and last_fetch is not None and now[0] - last_fetch < window
            try:
                await tracker.check(alice, request, plan, Decision(True, "x"))
                refused = False
            except AccessDenied:
                refused = True
            assert refused == expect_refused, (tool, now[0], last_fetch)
            if not refused:
                await tracker.arm(alice, request, plan, f"e{now[0]}")
                if tool == "fetch":
                    last_fetch = now[0]

    anyio.run(run)


def test_impact_analysis_sees_labels_and_annotations() -> None:
    from mcp_guard.policy.impact import Item, diff, who_can

    labels = [
        {"servers": ["web"], "tools": ["fetch*"], "labels": ["untrusted-input"]},
        {"servers": ["mail"], "tools": ["send_*"], "labels": ["external-output"]},
    ]
    rules = [
        {"id": "staff-web", "effect": "allow", "roles": ["staff"], "labels": ["untrusted-input"]},
        {
            "id": "ro",
            "effect": "allow",
            "roles": ["viewer"],
            "tools": ["*"],
            "annotations": {"readOnlyHint": True},
        },
    ]
    old = policy_from_dict({"labels": labels, "rules": rules})
    fetch, send = Item("web", "tool", "fetch_page"), Item("mail", "tool", "send_mail")
    assert who_can(old, fetch)["allowed"] == [
        {"role": "staff", "rule": "staff-web", "conditional": False},
        {"role": "viewer", "rule": "ro", "conditional": True},
    ]
    assert [a["role"] for a in who_can(old, send)["allowed"]] == ["viewer"]
    grown = [{**rules[0], "labels": ["untrusted-input", "external-output"]}, rules[1]]
    new = policy_from_dict({"labels": labels, "rules": grown})
    changes = diff(old, new, [fetch, send])
    assert [(c.role, c.item.name, c.change) for c in changes] == [("staff", "send_mail", "granted")]
