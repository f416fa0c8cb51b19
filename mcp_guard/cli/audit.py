"""``mcp-guard audit``: verify the chain, query and tail the trail, rotate the HMAC key.

``verify`` is a contract (docs/audit.md): exit 0 with ``ok: N events``, exit 1
naming the first altered, missing or reordered event, or acknowledged events
still waiting in the spill file; exit 2 for a bad config. ``spill list|replay``
inspects the spill file and re-chains it into the SQLite store. Store paths
ending in ``.jsonl`` are read as JSON Lines, anything else as SQLite.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..audit.checkpoint import Checkpoint
    from ..audit.config import AuditConfig
    from ..audit.spill import Spill
    from ..audit.verify import VerifyResult
from ..errors import ConfigError
from ..model import EVENT_KINDS


def _count(text: str) -> int:
    """A count of events: SQLite and Python slices read 0 or a negative number differently, so refuse them."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be a whole number of at least 1")
    return value


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("audit", help="verify, query and tail the audit trail")
    sub = parser.add_subparsers(dest="audit_command", metavar="SUBCOMMAND")
    sub.required = True

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "path", nargs="?", help="audit store (default: from --config or ./.mcp-guard/audit.db)"
        )
        p.add_argument("--config", type=Path, help="guard config (TOML) giving [guard] audit and [audit]")

    verify = sub.add_parser("verify", help="check the HMAC chain and the anchor")
    common(verify)
    verify.add_argument("--anchor", type=Path, help="anchor file (default: beside the key file)")
    verify.add_argument("--no-anchor", action="store_true", help="skip the newest-events check")
    verify.add_argument("--checkpoints", type=Path, help="signed checkpoints file to check as well")
    verify.add_argument("--public-key", type=Path, help="Ed25519 public key (PEM) for --checkpoints")
    verify.add_argument("--spill", type=Path, help="spill file to check (default: from --config)")
    verify.add_argument("--no-spill", action="store_true", help="skip the spill-file check")
    verify.set_defaults(func=cmd_verify)

    spill = sub.add_parser("spill", help="inspect or re-chain events waiting in the spill file")
    spill_sub = spill.add_subparsers(dest="spill_command", metavar="ACTION")
    spill_sub.required = True
    for name, func, text in (
        ("list", cmd_spill_list, "show spilled events: pending, already stored, or REJECTED (bad MAC)"),
        ("replay", cmd_spill_replay, "re-chain pending spilled events onto the store's head (SQLite)"),
    ):
        action = spill_sub.add_parser(name, help=text)
        common(action)
        action.add_argument("--spill", type=Path, help="spill file (default: from --config)")
        if name == "list":
            action.add_argument("--json", action="store_true")
        action.set_defaults(func=func)

    cp = sub.add_parser("checkpoint", help="verify, then append an Ed25519-signed checkpoint of the head")
    common(cp)
    cp.add_argument("--signing-key", type=Path, required=True, help="Ed25519 private key (PEM)")
    cp.add_argument("--new-key", action="store_true", help="create the signing key (and KEY.pub) first")
    cp.add_argument(
        "--out", type=Path, help="checkpoints file (default: audit.checkpoints beside the anchor)"
    )
    cp.set_defaults(func=cmd_checkpoint)

    q = sub.add_parser("query", help="list events matching filters")
    common(q)
    q.add_argument("--subject")
    q.add_argument("--server")
    q.add_argument("--tool", help="target name: tool, prompt or resource URI")
    q.add_argument("--decision", choices=("allow", "deny", "error"))
    q.add_argument(
        "--method", help="MCP method, e.g. tools/call; a trailing * matches a prefix (cli/*: admin commands)"
    )
    q.add_argument(
        "--event",
        choices=EVENT_KINDS,
        help="record kind: calls (request), sign-ins (authn), console and admin-command actions, ...",
    )
    q.add_argument("--session")
    q.add_argument("--approval", metavar="ID", help="events of the calls an approval request was about")
    q.add_argument("--flow", metavar="ID", help="events of the calls a [[flows]] rule refused or held")
    q.add_argument("--id", metavar="EVENT", help="one event, by its id (e.g. a flow's after_event)")
    q.add_argument(
        "--since", help="ISO 8601, now, today, yesterday, or a time ago: 15m, 24h, 7d (or '15m ago')"
    )
    q.add_argument("--until", help="same forms as --since (exclusive)")
    q.add_argument("--limit", type=_count, help="at most N events: the oldest N that match")
    q.add_argument("--json", action="store_true", help="one JSON record per line")
    q.set_defaults(func=cmd_query)

    tail = sub.add_parser("tail", help="show the newest events (and follow)")
    common(tail)
    tail.add_argument("-n", "--lines", type=_count, default=20)
    tail.add_argument("-f", "--follow", action="store_true")
    tail.add_argument("--json", action="store_true")
    tail.set_defaults(func=cmd_tail)

    from .anomalies import register as register_anomalies

    register_anomalies(sub, common, store=_store, since=_time)

    rotate = sub.add_parser("rotate-key", help="add a new signing key (old keys keep verifying)")
    rotate.add_argument("--config", type=Path)
    rotate.set_defaults(func=cmd_rotate_key)


def _store(args: argparse.Namespace, cfg: AuditConfig) -> Path:
    from ..audit.sinks import store_path

    if args.path:
        return Path(args.path)
    for url in cfg.urls:
        path = store_path(url, cfg.base_dir)
        if path is not None:
            return path
    raise ConfigError("no sqlite:// or jsonl:// store in [guard] audit; pass PATH", field="guard.audit")


def _verify(args: argparse.Namespace, cfg: AuditConfig, checkpoints: list[Checkpoint]) -> VerifyResult:
    from ..audit.chain import Anchor, AnchorError, read_anchor
    from ..audit.verify import StoreError, VerifyResult, spill_problem, store_rows, verify_rows

    keys = cfg.settings.key_ring(cfg.base_dir, create=False)
    path = _store(args, cfg)
    anchor: Anchor | None = None
    if not args.no_anchor:
        anchor_path: Path | None = args.anchor or cfg.settings.resolve(cfg.base_dir).anchor_file
        assert anchor_path is not None
        try:
            anchor = read_anchor(anchor_path, keys)  # read before the store: it may only lag behind it
        except AnchorError as exc:
            return VerifyResult(False, 0, str(exc))
    try:
        result = verify_rows(
            store_rows(path), keys, anchor, require_anchor=not args.no_anchor, checkpoints=checkpoints
        )
        if result.ok and not getattr(args, "no_spill", True):
            problem = spill_problem(_spill(args, cfg), path, keys)
            if problem is not None:
                return VerifyResult(False, result.count, f"{result.count} events verified, but {problem}")
        return result
    except StoreError as exc:
        return VerifyResult(False, 0, str(exc))


def _spill(args: argparse.Namespace, cfg: AuditConfig) -> Spill:
    from ..audit.spill import Spill

    path: Path | None = getattr(args, "spill", None) or cfg.settings.resolve(cfg.base_dir).spill_file
    assert path is not None
    return Spill(path)


def cmd_spill_list(args: argparse.Namespace) -> int:
    from ..audit.canonical import printable
    from ..audit.config import load_audit_config
    from ..audit.verify import StoreError, unstored_spill

    cfg = load_audit_config(args.config)
    keys = cfg.settings.key_ring(cfg.base_dir, create=False)
    spill = _spill(args, cfg)
    try:
        missing, present, rejected = unstored_spill(spill, _store(args, cfg), keys)
    except StoreError as exc:
        print(f"mcp-guard: {exc}", file=sys.stderr)
        return 1
    if not (missing or present or rejected):
        print(f"no spilled events in {spill.path}")
        return 0
    for status, records in (("pending", missing), ("stored", present)):
        for r in records:
            if args.json:
                print(json.dumps({"status": status, "record": r}, ensure_ascii=True))
            else:
                print(f"{status:8}  {format_event(r)}")
    for line in rejected:
        if args.json:
            print(json.dumps({"status": "rejected", "line": line}, ensure_ascii=True))
        else:
            print(f"REJECTED (MAC does not verify)  {printable(line)}")
    if not args.json:
        print(
            f"{len(missing)} pending, {len(present)} already stored, {len(rejected)} rejected "
            f"({spill.path}; rejected lines in {spill.rejected_path})"
        )
    return 0


def cmd_spill_replay(args: argparse.Namespace) -> int:
    """Re-chain the spill's verified events onto the store's head, under the same locks as the guard."""
    from ..audit.chain import advance_anchor, relink
    from ..audit.config import load_audit_config
    from ..audit.sinks import SQLiteSink

    cfg = load_audit_config(args.config)
    keys = cfg.settings.key_ring(cfg.base_dir, create=False)
    spill = _spill(args, cfg)
    path = _store(args, cfg)
    if path.suffix == ".jsonl":
        print(
            "mcp-guard: spill replay writes SQLite stores; a guard restart replays into JSONL",
            file=sys.stderr,
        )
        return 1
    if not path.is_file():
        print(f"mcp-guard: no audit store at {path}", file=sys.stderr)
        return 1
    sink = SQLiteSink(path)
    try:
        with spill.lock():
            good, bad = spill.split(keys)
            if bad:
                spill.reject(bad)
                spill.rewrite(good)
            written, head = sink.write_linked(good, lambda s, m, rs: relink(keys, s, m, rs), replay=True)
            spill.clear()
    finally:
        sink.close()
    anchor_file = cfg.settings.resolve(cfg.base_dir).anchor_file
    if head is not None and anchor_file is not None:
        advance_anchor(anchor_file, keys, *head)
    span = f" (now #{written[0]['seq']}..#{written[-1]['seq']})" if written else ""
    print(f"{len(written)} events re-chained into {path}{span}, {len(good) - len(written)} already stored")
    if bad:
        print(f"{len(bad)} lines failed their MAC check and were NOT written: kept in {spill.rejected_path}")
    return 1 if bad else 0


def cmd_verify(args: argparse.Namespace) -> int:
    from ..audit.checkpoint import CheckpointError, load_checkpoints
    from ..audit.config import load_audit_config

    cfg = load_audit_config(args.config)
    checkpoints: list[Checkpoint] = []
    if args.checkpoints or args.public_key:
        if not (args.checkpoints and args.public_key):
            raise ConfigError("--checkpoints and --public-key go together", field="--checkpoints")
        try:
            checkpoints = load_checkpoints(args.checkpoints, args.public_key)
        except CheckpointError as exc:
            print(f"FAIL: {exc}")
            return 1
    result = _verify(args, cfg, checkpoints)
    print(result.message if result.ok else f"FAIL: {result.message}")
    return 0 if result.ok else 1


def cmd_checkpoint(args: argparse.Namespace) -> int:
    from ..audit.checkpoint import generate_signing_key, sign_checkpoint
    from ..audit.config import load_audit_config

    cfg = load_audit_config(args.config)
    if args.new_key:
        try:
            print(f"public key written to {generate_signing_key(args.signing_key)}")
        except FileExistsError:
            raise ConfigError(
                "already exists; drop --new-key to use it", file=str(args.signing_key)
            ) from None
    args.anchor, args.no_anchor = None, False
    result = _verify(args, cfg, [])
    if not result.ok or result.head is None:
        print(f"FAIL: {result.message}" if not result.ok else "nothing to checkpoint: the store is empty")
        return 1
    anchor_file = cfg.settings.resolve(cfg.base_dir).anchor_file
    assert anchor_file is not None
    out = args.out or anchor_file.with_name("audit.checkpoints")
    seq, mac, first = result.head
    try:
        sign_checkpoint(out, args.signing_key, seq, mac, first)
    except OSError as exc:
        print(f"mcp-guard: cannot write {out}: {exc.strerror}", file=sys.stderr)
        return 1
    print(f"checkpoint #{seq} appended to {out}")
    return 0


def _when(t: Any) -> str:
    if not isinstance(t, (int, float)):
        return "?"
    return datetime.fromtimestamp(t).astimezone().isoformat(timespec="seconds")


def format_event(r: dict[str, Any]) -> str:
    """One readable line; every field is escaped so stored text cannot forge lines or colours."""
    from ..audit.canonical import printable

    principal = r.get("principal") or {}
    subject = principal.get("subject", "-") if isinstance(principal, dict) else "-"
    target = f"{r.get('server') or '-'}/{r.get('target') or '-'}"
    parts = [
        _when(r.get("time")),
        f"#{r.get('seq')}",
        str(subject),
        str(r.get("decision")) + (" (shadow)" if r.get("shadow") else ""),
        str(r.get("method")),
        target,
    ]
    if r.get("rule"):
        parts.append(f"rule={r['rule']}")
    approval = r.get("approval")
    if isinstance(approval, dict):
        # Who decided matters more than who ran the command (the line's subject is the OS user).
        by = f" by {approval['decided_by']}" if approval.get("decided_by") else ""
        asked = f" (requested by {approval['requested_by']})" if approval.get("requested_by") else ""
        parts.append(f"approval={approval.get('id')} {approval.get('status')}{by}{asked}")
    if r.get("reasons"):
        parts.append("reasons=" + json.dumps(r["reasons"], ensure_ascii=False))
    if r.get("arguments") is not None:
        parts.append("args=" + json.dumps(r["arguments"], ensure_ascii=False, sort_keys=True))
    return printable("  ".join(parts))


def _emit(records: list[dict[str, Any]], as_json: bool) -> None:
    for r in records:
        print(json.dumps(r, ensure_ascii=True) if as_json else format_event(r))


def _time(value: str | None, flag: str) -> float | None:
    from ..audit.query import parse_time

    if not value:
        return None
    try:
        return parse_time(value)
    except ConfigError as exc:
        raise ConfigError(exc.detail, field=flag) from None


def cmd_query(args: argparse.Namespace) -> int:
    from ..audit.config import load_audit_config
    from ..audit.query import Filters, query
    from ..audit.verify import StoreError

    cfg = load_audit_config(args.config)
    filters = Filters(
        subject=args.subject,
        server=args.server,
        tool=args.tool,
        decision=args.decision,
        method=args.method,
        session=args.session,
        approval=args.approval,
        flow=args.flow,
        event_id=args.id,
        kind=args.event,
        since=_time(args.since, "--since"),
        until=_time(args.until, "--until"),
    )
    try:
        _emit(query(_store(args, cfg), filters, args.limit), args.json)
    except StoreError as exc:
        print(f"mcp-guard: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_tail(args: argparse.Namespace) -> int:
    from ..audit.config import load_audit_config
    from ..audit.query import Filters, after, query
    from ..audit.verify import StoreError

    cfg = load_audit_config(args.config)
    path = _store(args, cfg)
    try:
        records = query(path, Filters(), max(args.lines, 0), newest=True)
        _emit(records, args.json)
        last = int(records[-1]["seq"]) if records else 0
        while args.follow:
            sys.stdout.flush()
            time.sleep(0.5)
            for r in after(path, last):
                _emit([r], args.json)
                last = int(r["seq"])
    except StoreError as exc:
        print(f"mcp-guard: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_rotate_key(args: argparse.Namespace) -> int:
    from ..audit.config import load_audit_config
    from ..audit.keys import rotate_key_file

    cfg = load_audit_config(args.config)
    settings = cfg.settings
    if settings.key is not None or (settings.key_file is None and os.environ.get(settings.key_env)):
        raise ConfigError(
            f"keys come from [audit] key or ${settings.key_env}; rotate them there", field="audit.key"
        )
    key_file = settings.resolve(cfg.base_dir).key_file
    assert key_file is not None
    print(f"new signing key {rotate_key_file(key_file)} in {key_file}")
    return 0
