"""``mcp-guard policy who-can | diff | coverage``: what a policy grants, what a change alters, what is used.

The analysis lives in :mod:`mcp_guard.policy.impact` and
:mod:`mcp_guard.policy.coverage`; this module reads the inputs (policy files,
an inventory file or the pinned items of a state store, the audit trail) and
prints. ``diff`` exits 1 when access changes, so it can gate a pull request.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..errors import ConfigError, PolicyError
from ._options import add_functions_option, load_policies

KINDS = ("tool", "prompt", "resource")


def _inventory(args: argparse.Namespace) -> list[Any]:
    from ..policy.impact import parse_inventory
    from ..policy.loader import read_text_file

    if args.inventory is not None:
        path = Path(args.inventory)
        items = parse_inventory(read_text_file(path, "inventory"), str(path))
        if not items:
            raise PolicyError("the inventory holds no items: there is nothing to compare", file=str(path))
        return items
    items = _pinned(args.config)
    if not items:
        raise ConfigError(
            "no approved pins in the config's state store, so there is nothing to compare"
            " (a guard pins a server's items when it first lists them; see `mcp-guard pins list`),"
            " or pass --inventory FILE",
            file=str(args.config),
            field="guard.state",
        )
    return items


def _pinned(config_path: Path) -> list[Any]:
    """The approved items of every server in the config's state store (pending versions left out)."""
    import anyio

    from ..config import load_config
    from ..policy.impact import Item
    from ..sanitize.pins import PinStore
    from ..store import open_store

    config = load_config(config_path)

    async def main() -> list[Any]:
        store = open_store(config.guard.state, base_dir=config.base_dir)
        try:
            entries = await PinStore(store).list()
        finally:
            await store.aclose()
        return [
            Item(e.server, "resource" if e.kind == "resource_template" else e.kind, e.name)
            for e in entries
            if e.hash is not None and e.kind in (*KINDS, "resource_template")
        ]

    try:
        return anyio.run(main)
    except ConfigError:
        raise
    except Exception as exc:  # an unreachable or unreadable store: say which, never a traceback
        raise ConfigError(
            f"cannot read the pins of state store {config.guard.state!r}: {type(exc).__name__}: {exc}",
            file=str(config_path),
            field="guard.state",
        ) from None


def _who_can(args: argparse.Namespace) -> int:
    from ..policy.impact import Item, who_can

    policy = load_policies(args, *args.policy)
    result = who_can(policy, Item(args.server, args.kind, args.name))
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{args.kind} {args.name!r} on server {args.server!r}:")
    if not result["allowed"] and not result["denied_by"]:
        print("  the policy names no roles")
    for entry in result["allowed"]:
        how = " if its condition holds" if entry["conditional"] else ""
        held = f", with {', '.join(entry['obligations'])}" if entry.get("obligations") else ""
        print(f"  allowed  {entry['role']:<20} by {_rule(entry['rule'])}{how}{held}")
    for entry in result["denied_by"]:
        print(f"  denied   {entry['role']:<20} by {_rule(entry['rule'])}")
    for flow in result.get("flows", ()):
        print(f"  flow {flow['flow']} ({flow['effect']}) {flow['role']} this target")
    return 0


def _rule(rule: str | None) -> str:
    return "the default" if rule is None else f"rule {rule}"


def _diff(args: argparse.Namespace) -> int:
    from ..policy.impact import diff, render_diff_markdown

    old = load_policies(args, *args.old)
    new = load_policies(args, *args.new)
    changes = diff(old, new, _inventory(args))
    if args.json:
        print(json.dumps({"changes": [c.as_dict() for c in changes]}))
    elif args.markdown:
        print(render_diff_markdown(changes), end="")
    elif not changes:
        print("no change: every role keeps exactly the access it had")
    else:
        for c in changes:
            rules = f"{_rule(c.old_rule)} -> {_rule(c.new_rule)}"
            change = (
                f"{c.change} (conditional)" if c.conditional and not c.change.startswith("now") else c.change
            )
            note = f": {c.obligation_note}" if c.obligation_note else ""
            print(f"{change:<21} {c.role:<16} {c.item.server}/{c.item.kind}/{c.item.name}  ({rules}){note}")
        print(f"{len(changes)} change(s)")
    return 1 if changes else 0


def _coverage(args: argparse.Namespace) -> int:
    from ..audit.config import load_audit_config
    from ..audit.query import Filters, parse_time, query
    from ..audit.sinks import store_path
    from ..audit.verify import StoreError
    from ..policy.coverage import coverage

    policy_files = args.policy
    config = None
    if not policy_files:
        from ..config import load_config

        config = load_config(args.config)
        policy_files = [config.resolve(p) for p in config.guard.policy_paths()]
        if not policy_files:
            raise ConfigError("the config names no policy files; pass --policy", file=str(args.config))
    policy = load_policies(args, *policy_files, config=config)
    since = None
    if args.since:
        try:
            since = parse_time(args.since)
        except ConfigError as exc:
            raise ConfigError(exc.detail, field="--since") from None
    cfg = load_audit_config(args.config)
    path = Path(args.audit) if args.audit else None
    for url in cfg.urls if path is None else ():
        path = store_path(url, cfg.base_dir)
        if path is not None:
            break
    if path is None:
        raise ConfigError(
            "no sqlite:// or jsonl:// store in [guard] audit; pass --audit PATH", field="guard.audit"
        )
    try:
        records = query(path, Filters(since=since))
    except StoreError as exc:
        raise ConfigError(str(exc), field="--audit" if args.audit else "guard.audit") from None
    report = coverage(policy, records)
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"{report['events']} audit event(s)" + (f" since {args.since}" if args.since else ""))
    print(f"{'rule':<28} {'effect':<6} {'decisions':>9} {'allow':>6} {'deny':>6}  last hit")
    for r in report["rules"]:
        row = f"{r['id']:<28} {r['effect']:<6} {r['decisions']:>9} {r['allow']:>6} {r['deny']:>6}"
        shadow = f" (+{r['shadow_hits']} as shadow)" if r["shadow_hits"] else ""
        print(f"{row}  {r['last_hit'] or 'never'}{shadow}")
    print("never hit: " + (", ".join(report["never_hit"]) or "none"))
    print(f"denied by the default: {report['default_denials']}")
    # A refused allow keeps its rule on the audit event: its deny column is not the rule's doing.
    refused = [r for r in report["rules"] if r["effect"] == "allow" and r["deny"]]
    if refused:
        print(
            "refused after an allow (counted in the allow rule's deny column: a step-up, rate limit,"
            " budget, confirmation, approval, flow or withheld result refused the call the rule allowed):"
        )
        for r in refused:
            print(f"  {r['id']}: {r['deny']} call(s) it allowed were then refused")
    for rule_id, n in report["unknown_rules"].items():
        print(f"rule {rule_id!r} (not in this policy) decided {n} event(s)")
    return 0


def add_commands(sub: Any, policy_arg: Any) -> None:
    """Register ``who-can``, ``diff`` and ``coverage`` under ``mcp-guard policy``."""
    who = sub.add_parser(
        "who-can", help="which roles may use one tool, prompt or resource, and by which rule"
    )
    policy_arg(who)
    who.add_argument("--server", required=True)
    who.add_argument("--kind", required=True, choices=KINDS)
    who.add_argument("--name", required=True, help="tool or prompt name, or resource URI")
    who.add_argument("--json", action="store_true", help='one object {"allowed": [...], "denied_by": [...]}')
    who.set_defaults(func=_who_can)

    d = sub.add_parser(
        "diff", help="what a policy change grants or revokes per role and item; exit 1 if anything changes"
    )
    d.add_argument(
        "--old", action="append", required=True, metavar="FILE", help="policy before; repeat to merge"
    )
    d.add_argument(
        "--new", action="append", required=True, metavar="FILE", help="policy after; repeat to merge"
    )
    source = d.add_mutually_exclusive_group(required=True)
    source.add_argument("--inventory", metavar="FILE", help='JSON {"servers": {NAME: {"tools": [...], ...}}}')
    source.add_argument(
        "--config", type=Path, metavar="FILE", help="guard.toml: the approved pins of its state"
    )
    out = d.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help='one object {"changes": [...]}')
    out.add_argument("--markdown", action="store_true", help="a Markdown summary (for a pull request)")
    add_functions_option(d)
    d.set_defaults(func=_diff)

    cov = sub.add_parser("coverage", help="decisions per rule in the audit trail, rules never hit")
    cov.add_argument("--policy", action="append", metavar="FILE", help="policy file (default: the config's)")
    cov.add_argument("--config", type=Path, required=True, metavar="FILE", help="guard.toml: its audit store")
    cov.add_argument("--audit", metavar="PATH", help="audit store (default: from --config)")
    cov.add_argument("--since", help="ISO 8601, now, today, yesterday, or a time ago: 15m, 24h, 7d")
    cov.add_argument("--json", action="store_true", help="one JSON object")
    add_functions_option(cov)
    cov.set_defaults(func=_coverage)
