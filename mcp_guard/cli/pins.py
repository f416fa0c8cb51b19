"""``mcp-guard pins list | diff | approve``: review and approve changed tool definitions.

Pins live in the state store (``--state URL``, else ``[guard] state`` of
``--config``, else ``sqlite:///.mcp-guard/state.db``), where running guards
pick approvals up within seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from ..errors import ConfigError
from ._trail import audited, trail_of

T = TypeVar("T")
DEFAULT_STATE = "sqlite:///.mcp-guard/state.db"
_KINDS = ("tool", "prompt", "resource", "resource_template")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "pins", help="list, diff and approve pinned tool/prompt/resource definitions"
    )
    sub = parser.add_subparsers(dest="pins_command", metavar="ACTION")
    sub.required = True

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--state", help="state store URL (memory://, sqlite:///PATH, redis://HOST:PORT/DB)")
        p.add_argument("--config", type=Path, help="guard.toml whose [guard] state to use")
        p.add_argument("--json", action="store_true", help="machine-readable output")

    p_list = sub.add_parser("list", help="pinned and pending items with their status")
    p_list.add_argument("--server", help="only this server")
    common(p_list)
    p_list.set_defaults(func=_list)

    p_diff = sub.add_parser("diff", help="per-field diff between the approved and the pending version")
    p_diff.add_argument("server")
    p_diff.add_argument(
        "name", nargs="?", help="item name or URI (default: every pending item of the server)"
    )
    p_diff.add_argument("--kind", choices=_KINDS, help="item kind (default: any)")
    common(p_diff)
    p_diff.set_defaults(func=_diff)

    p_approve = sub.add_parser("approve", help="approve pending versions so guards serve them again")
    p_approve.add_argument("server")
    p_approve.add_argument("name", nargs="?", help="item name or URI")
    p_approve.add_argument("--kind", choices=_KINDS, help="item kind (default: any)")
    p_approve.add_argument("--all", action="store_true", help="approve every pending item of the server")
    common(p_approve)
    p_approve.set_defaults(func=audited("pins.approve", _approve))


def _state_url(args: argparse.Namespace) -> tuple[str, Path]:
    """The store URL and the directory its relative ``sqlite:///`` path resolves against: the
    config file's directory whenever ``--config`` is given (also for ``--state``), as in every
    other command group; else the current directory."""
    if args.config is not None:
        from ..config import load_config

        config = load_config(args.config)
        return args.state or config.guard.state, config.base_dir
    return args.state or DEFAULT_STATE, Path.cwd()


def _run(args: argparse.Namespace, body: Callable[[Any], Awaitable[T]]) -> T:
    import anyio

    try:
        from ..store import open_store
    except ImportError as exc:  # pragma: no cover - depends on the build
        raise ConfigError(f"state stores are not available: {exc}") from None
    from ..sanitize.pins import PinStore

    url, base = _state_url(args)

    async def main() -> T:
        store = open_store(url, base_dir=base)
        try:
            return await body(PinStore(store))
        finally:
            await store.aclose()

    return anyio.run(main)


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=True)
    return text if len(text) <= 200 else text[:197] + "..."


def _list(args: argparse.Namespace) -> int:
    entries = _run(args, lambda pins: pins.list(args.server))
    if args.json:
        for e in entries:
            record = {"server": e.server, "kind": e.kind, "name": e.name, "status": e.status}
            record |= {"hash": e.hash, "pending_hash": e.pending_hash}
            sys.stdout.write(json.dumps(record) + "\n")
        return 0
    if not entries:
        print("no pins")
        return 0
    for e in entries:
        print(f"{e.server:<20} {e.kind:<17} {e.status:<8} {json.dumps(e.name, ensure_ascii=True)}")
    return 0


def _diff(args: argparse.Namespace) -> int:
    async def body(pins: Any) -> list[tuple[str, str, Any]]:
        targets = [
            (e.kind, e.name)
            for e in await pins.list(args.server)
            if e.status != "pinned"
            and (args.kind is None or e.kind == args.kind)
            and (args.name is None or e.name == args.name)
        ]
        return [(kind, name, await pins.diff(args.server, kind, name)) for kind, name in targets]

    diffs = _run(args, body)
    if not diffs:
        target = f"{args.name!r} of " if args.name else ""
        print(f"nothing pending for {target}server {args.server!r}", file=sys.stderr)
        return 1
    for kind, name, changes in diffs:
        if args.json:
            for c in changes or []:
                record = {
                    "server": args.server,
                    "kind": kind,
                    "name": name,
                    "path": c.path,
                    "change": c.change,
                }
                record |= {"old": c.old, "new": c.new}
                sys.stdout.write(json.dumps(record) + "\n")
            continue
        print(f"{kind} {json.dumps(name, ensure_ascii=True)}:")
        for c in changes or []:
            print(f"  {c.change:<8} {c.path or '/'}")
            if c.change != "added":
                print(f"    - {_show(c.old)}")
            if c.change != "removed":
                print(f"    + {_show(c.new)}")
    return 0


def _approve(args: argparse.Namespace) -> int:
    if args.name is None and not args.all:
        raise ConfigError(
            "name an item to approve, or pass --all to approve every pending item", field="name"
        )
    done = _run(args, lambda pins: pins.approve(args.server, args.kind, args.name))
    what = {"server": args.server, "kind": args.kind or "pin", "target": args.name or "*"}
    if not done:
        trail_of(args).refused("nothing pending", **what)
        print(f"nothing pending to approve for server {args.server!r}", file=sys.stderr)
        return 1
    # Guards may already serve the approved versions: the approval stands even if unrecorded.
    trail_of(args).done(reasons=tuple(f"approved {kind} {name}" for kind, name in done), **what)
    for kind, name in done:
        if args.json:
            sys.stdout.write(
                json.dumps({"server": args.server, "kind": kind, "name": name, "approved": True}) + "\n"
            )
        else:
            print(f"approved {kind} {json.dumps(name, ensure_ascii=True)} on {args.server}")
    return 0
