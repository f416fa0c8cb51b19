"""Impact analysis cost: ``policy diff`` over 50 roles x 500 tools (goal: under 2 s).

Two generated policies: the old one has 50 roles (with inheritance) and 200
rules (allow and deny; literal tool lists, prefix globs and any-tool rules;
about a third with one of four conditions) over 500 tools on 20 servers; the
new one changes 10 of those rules (roles, tools, effect or condition). The
diff asks the engine about every role x tool in both policies, trying every
combination of the conditions each decision reaches.

Run: ``.venv/bin/python benchmarks/policy_impact.py``. Prints the median of
five in-process runs (policies already loaded), one run of the command as a
user starts it (``mcp-guard policy diff``, interpreter start-up and file
loading included), and how many changes were found.
"""

from __future__ import annotations

import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mcp_guard.policy import policy_from_dict  # noqa: E402
from mcp_guard.policy.impact import Item, diff, who_can  # noqa: E402

SEED = 20261203
N_ROLES, N_RULES, N_SERVERS, TOOLS_PER_SERVER, N_CHANGED = 50, 200, 20, 25, 10
CONDITIONS = [
    "principal.mfa",
    "request.arguments.limit <= 100",
    'in_cidr(principal.ip, "10.0.0.0/8")',
    "context.hour >= 9 && context.hour < 18",
]
VERBS = ["get", "list", "create", "update", "delete"]


def servers() -> dict[str, list[str]]:
    return {
        f"srv{s:02d}": [f"{VERBS[t % len(VERBS)]}_item{t:02d}" for t in range(TOOLS_PER_SERVER)]
        for s in range(N_SERVERS)
    }


def gen_rule(rng: random.Random, index: int, inventory: dict[str, list[str]]) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "id": f"rule{index:03d}",
        "effect": "deny" if rng.random() < 0.15 else "allow",
        "roles": sorted(rng.sample([f"role{r:02d}" for r in range(N_ROLES)], rng.randint(1, 3))),
    }
    server = rng.choice(sorted(inventory))
    shape = rng.random()
    if shape < 0.6:
        rule["servers"] = [server]
        rule["tools"] = sorted(rng.sample(inventory[server], rng.randint(1, 5)))
    elif shape < 0.9:
        rule["servers"] = [server]
        rule["tools"] = [rng.choice(VERBS) + "_*"]
    else:
        rule["tools"] = ["*"]
    if rng.random() < 0.33:
        rule["when"] = rng.choice(CONDITIONS)
    return rule


def gen_policies() -> tuple[dict[str, Any], dict[str, Any], dict[str, list[str]]]:
    rng = random.Random(SEED)
    inventory = servers()
    roles = {}
    for r in range(N_ROLES):  # acyclic: a role inherits only lower-numbered roles
        parents = rng.sample(range(r), min(r, rng.randint(0, 2)))
        roles[f"role{r:02d}"] = {"inherits": [f"role{p:02d}" for p in parents]}
    rules = [gen_rule(rng, i, inventory) for i in range(N_RULES)]
    changed = list(rules)
    for i in rng.sample(range(N_RULES), N_CHANGED):
        changed[i] = {**gen_rule(rng, i, inventory), "id": rules[i]["id"]}
    old = {"default": "deny", "roles": roles, "rules": rules}
    new = {"default": "deny", "roles": roles, "rules": changed}
    return old, new, inventory


def main() -> None:
    old_spec, new_spec, inventory = gen_policies()
    items = [Item(s, "tool", t) for s, tools in inventory.items() for t in tools]
    runs: list[float] = []
    found = 0
    for _ in range(5):
        old, new = policy_from_dict(old_spec), policy_from_dict(new_spec)  # cold caches every run
        t0 = time.perf_counter()
        found = len(diff(old, new, items))
        runs.append(time.perf_counter() - t0)
    roles = len(set(old.role_names()) | set(new.role_names()))
    t0 = time.perf_counter()
    for item in items[:50]:
        who_can(new, item)
    per_who = (time.perf_counter() - t0) / 50

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "old.json").write_text(json.dumps(old_spec))
        (base / "new.json").write_text(json.dumps(new_spec))
        inv = {"servers": {s: {"tools": tools} for s, tools in inventory.items()}}
        (base / "inventory.json").write_text(json.dumps(inv))
        args = ["--old", str(base / "old.json"), "--new", str(base / "new.json")]
        command = [sys.executable, "-m", "mcp_guard", "policy", "diff", *args]
        t0 = time.perf_counter()
        done = subprocess.run(
            [*command, "--inventory", str(base / "inventory.json"), "--json"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        cli = time.perf_counter() - t0
    assert done.returncode in (0, 1), done.stderr
    assert len(json.loads(done.stdout)["changes"]) == found

    print(f"policy diff, {roles} roles x {len(items)} tools ({roles * len(items)} pairs, two policies)")
    print(f"  in process, median of 5: {statistics.median(runs):.3f} s (min {min(runs):.3f} s); goal < 2 s")
    print(f"  mcp-guard policy diff command, end to end: {cli:.3f} s")
    print(f"  changes found: {found}")
    print(f"policy who-can, one tool over {roles} roles: {per_who * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
