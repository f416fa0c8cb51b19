"""``mcp-guard policy``: check, explain, test, validate and reload policy files; analyse their impact.

``check`` is a contract (DESIGN.md section 3): it prints
``{"decision", "rule", "reasons"}`` and exits 0 for any decision, 2 for an
invalid policy or request. The decision is the effective one: "allow" only
when the guard would run the call; an obligation that refuses or holds it
(``step_up``, ``confirm``, ``approval``) adds ``"obligation"`` and ``"outcome"``.
``test`` runs expected outcomes for a user's CI (exit 1 on any mismatch);
``validate`` loads and compiles without deciding.
``reload`` asks every running guard that shares the config's state store to
re-read its policy files now. ``who-can``, ``diff`` and ``coverage`` live in
:mod:`.impact`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import PolicyError
from ._options import add_functions_option, load_policies
from ._trail import audited, trail_of

# The policy package (pydantic models, the cel extension) is imported inside the commands:
# every other ``mcp-guard`` command registers this group too and should not pay for it.


def _read_request(path: str) -> tuple[str, str]:
    if path == "-":
        return sys.stdin.read(), "<stdin>"
    from ..policy.loader import read_text_file

    return read_text_file(path, "request file"), path


def _check(args: argparse.Namespace) -> int:
    from ..policy.requests import outcome_of, parse_request_with_history
    from .flowcheck import replay

    policy = load_policies(args, *args.policy)
    principal, request, history = parse_request_with_history(*_read_request(args.request))
    decision, flow, _ = replay(policy, history, principal, request)
    outcome = outcome_of(principal, request, decision)
    out: dict[str, Any] = {
        "decision": "allow" if outcome.runs else "deny",
        "rule": decision.rule,
        "reasons": list(outcome.reasons),
    }
    if outcome.obligation is not None:
        out["outcome"] = outcome.effect
        out["obligation"] = outcome.obligation
        if outcome.then:
            out["then"] = list(outcome.then)
    if flow is not None:
        out["flow"] = flow
    print(json.dumps(out))
    return 0


def _explain(args: argparse.Namespace) -> int:
    from ..policy.requests import outcome_of, parse_request_with_history
    from .flowcheck import render_state, replay

    policy = load_policies(args, *args.policy)
    principal, request, history = parse_request_with_history(*_read_request(args.request))
    explanation = policy.explain(principal, request)
    from ._budgets import budget_report, render_budgets

    budgets = budget_report(policy, principal, request, args.state)
    decision, flow, state = replay(policy, history, principal, request)
    # What the caller meets: the decision after the flows, read through its obligations.
    outcome = outcome_of(principal, request, decision)
    if args.json:
        data = {
            **explanation.as_dict(),
            "outcome": {
                "effect": outcome.effect,
                "obligation": outcome.obligation,
                "summary": outcome.summary,
                "reasons": list(outcome.reasons),
                "then": list(outcome.then),
            },
            "budgets": budgets,
        }
        if policy.flows:
            data["flows"] = state
            data["flow_decision"] = {
                "decision": decision.effect,
                "reasons": list(decision.reasons),
                "flow": flow,
            }
        print(json.dumps(data, indent=2))
    else:
        print(explanation.render() + ("\n" + render_budgets(budgets) if budgets else ""))
        why = f" ({outcome.reasons[0]})" if outcome.obligation and outcome.reasons else ""
        print(f"outcome: {'allow' if outcome.runs else outcome.effect}: {outcome.summary}{why}")
        if policy.flows:
            print(render_state(state))
            if flow is not None:
                print(f"after the history: {decision.effect} ({'; '.join(decision.reasons)})")
    return 0


def _test(args: argparse.Namespace) -> int:
    from ..model import Decision
    from ..policy.loader import FORMATS
    from ..policy.requests import Case, load_cases, run_cases

    policy = load_policies(args, *args.policy)
    path = Path(args.cases)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise PolicyError(
            "cannot tell the case file format from its extension: use .toml, .json, .yaml", file=str(path)
        )
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"cannot read case file: {exc.strerror or exc}", file=str(path)) from None
    from .flowcheck import replay

    def decide(case: Case) -> Decision:  # the policy's decision; run_cases reads its obligations
        # A case with a ``history`` is decided as ``policy check`` decides it: after the flows replay it.
        if not case.history:
            return policy.decide(case.principal, case.request)
        return replay(policy, list(case.history), case.principal, case.request)[0]

    results = run_cases(policy, load_cases(text, fmt, str(path)), decide)
    failed = 0
    for result in results:
        if result.passed:
            if not args.quiet:
                print(f"PASS {result.case.name}: {result.detail}")
        else:
            failed += 1
            print(f"FAIL {result.case.name} ({result.case.where}): {result.detail}")
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


def _validate(args: argparse.Namespace) -> int:
    files = [*args.files, *(args.policy or [])]
    if not files:
        raise PolicyError("name at least one policy file (positional or --policy)")

    policy = load_policies(args, *files)
    shadow = sum(1 for r in policy.rules if r.shadow)
    conditional = sum(1 for r in policy.rules if r.when)
    summary: dict[str, Any] = {
        "rules": len(policy.rules),
        "conditional": conditional,
        "shadow_rules": shadow,
        "limits": len(policy.limits),
        "budgets": len(policy.budgets),
        # Labels and flows are counted so a user sees their "policy that remembers" was loaded.
        "labels": len({name for tag in policy.labeler.tags for name in tag.labels}),
        "flows": len(policy.flows),
        "mode": policy.mode,
        "default": policy.default,
    }
    print("ok: " + ", ".join(f"{k} {v}" for k, v in summary.items()))
    for warning in policy.warnings:  # likely typos, not errors: the exit stays 0
        print(f"mcp-guard: warning: {warning}", file=sys.stderr)
    return 0


def _reload(args: argparse.Namespace) -> int:
    import anyio

    from ..config import load_config
    from ..errors import GuardUnavailable

    config = load_config(args.config)
    url, base = (args.state, Path.cwd()) if args.state else (config.guard.state, config.base_dir)
    paths = [config.resolve(p) for p in config.guard.policy_paths()]
    if paths and not args.no_check:
        load_policies(args, *paths, config=config)  # an invalid policy stops here, naming file and line
    from ..policy.reloading import publish_reload
    from ..store import open_store

    async def main() -> None:
        store = open_store(url, base_dir=base)
        try:
            await publish_reload(store, "cli")
        finally:
            await store.aclose()

    try:
        anyio.run(main)
    except GuardUnavailable as exc:
        trail_of(args).refused(f"reload not published: {exc}", kind="policy", target=str(args.config))
        print(f"mcp-guard: reload not published: {exc}", file=sys.stderr)
        return 1
    # Guards may already have reloaded: the signal cannot be taken back.
    trail_of(args).done(kind="policy", target=str(args.config), reasons=tuple(str(p) for p in paths))
    checked = f"{len(paths)} policy file(s) valid; " if paths and not args.no_check else ""
    print(f"{checked}reload published on the state store of {args.config}")
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "policy", help="check, explain, test, validate and reload policy files; who-can, diff, coverage"
    )
    sub = parser.add_subparsers(dest="policy_command", metavar="SUBCOMMAND")
    sub.required = True

    def policy_arg(p: argparse.ArgumentParser, required: bool = True) -> None:
        p.add_argument(
            "--policy",
            action="append",
            required=required,
            metavar="FILE",
            help="policy file (.toml, .json, .yaml); repeat to merge several",
        )
        add_functions_option(p)

    check = sub.add_parser("check", help="decide one request; prints {decision, rule, reasons}")
    policy_arg(check)
    check.add_argument("--request", required=True, metavar="FILE|-", help="request JSON (see docs/policy.md)")
    check.set_defaults(func=_check)

    explain = sub.add_parser(
        "explain", help="show every rule considered for a request and why it matched or not"
    )
    policy_arg(explain)
    explain.add_argument("--request", required=True, metavar="FILE|-")
    explain.add_argument("--json", action="store_true", help="machine-readable output")
    explain.add_argument(
        "--state", metavar="URL", help="state store URL: also show each budget's use (read only)"
    )
    explain.set_defaults(func=_explain)

    test = sub.add_parser("test", help="run expected decisions from a case file; exit 1 on any mismatch")
    policy_arg(test)
    test.add_argument("--cases", required=True, metavar="FILE", help="case file (.toml, .json, .yaml)")
    test.add_argument("-q", "--quiet", action="store_true", help="print failures and the summary only")
    test.set_defaults(func=_test)

    validate = sub.add_parser(
        "validate", help="load and compile policy files; exit 2 naming the first problem"
    )
    validate.add_argument("files", nargs="*", metavar="FILE")
    policy_arg(validate, required=False)
    validate.set_defaults(func=_validate)

    reload = sub.add_parser(
        "reload",
        help="make every guard sharing the config's state store re-read its policy files now",
    )
    reload.add_argument("--config", required=True, type=Path, metavar="FILE", help="guard.toml")
    reload.add_argument("--state", metavar="URL", help="state store URL (default: [guard] state of --config)")
    reload.add_argument(
        "--no-check",
        action="store_true",
        help="publish without first validating the policy files named by the config",
    )
    reload.set_defaults(func=audited("policy.reload", _reload))

    from .impact import add_commands

    add_commands(sub, policy_arg)
