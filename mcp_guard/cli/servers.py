"""``mcp-guard servers``: the portal's server registry (list, add, approve, revoke, remove).

Servers in the config file are approved by being listed; servers added here
wait as ``pending`` until approved. Changes land in the state store, where
running portals pick them up.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio

from ..config import DEFAULT_STATE, GuardConfig, load_config
from ..errors import ConfigError
from ..portal.registry import Registry

T = TypeVar("T")


def _config(args: argparse.Namespace) -> GuardConfig | None:
    path: Path | None = args.config
    return load_config(path) if path is not None else None


def _run(args: argparse.Namespace, body: Callable[[Registry, GuardConfig | None], Awaitable[T]]) -> T:
    from ..store import open_store

    config = _config(args)
    url = args.state or (config.guard.state if config is not None else DEFAULT_STATE)
    base = config.base_dir if config is not None else Path.cwd()

    async def main() -> T:
        store = open_store(url, base_dir=base)
        try:
            return await body(Registry(store), config)
        finally:
            await store.aclose()

    return anyio.run(main)


def _who() -> str:
    return os.environ.get("SUDO_USER") or os.environ.get("USER") or "cli"


def _list(args: argparse.Namespace) -> int:
    async def body(registry: Registry, config: GuardConfig | None) -> list[dict[str, Any]]:
        entries = {e.name: e for e in await registry.entries()}
        rows: list[dict[str, Any]] = []
        for spec in config.servers if config is not None else []:
            entry = entries.pop(spec.name, None)
            rows.append(
                {
                    "name": spec.name,
                    "source": "config",
                    "status": entry.status if entry is not None and entry.status == "revoked" else "approved",
                    "target": spec.url or " ".join([spec.command or "", *spec.args]).strip(),
                    "prefix": spec.effective_prefix,
                }
            )
        for entry in entries.values():
            d = entry.definition
            rows.append(
                {
                    "name": entry.name,
                    "source": "registry",
                    "status": entry.status,
                    "target": d.get("url") or " ".join([d.get("command", ""), *d.get("args", [])]).strip(),
                    "prefix": d.get("prefix", f"{entry.name}__"),
                }
            )
        return rows

    rows = _run(args, body)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            print(f"{r['name']:<20} {r['status']:<9} {r['source']:<9} {r['prefix']:<14} {r['target']}")
    return 0


def _pairs(values: list[str] | None, flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values or []:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise ConfigError(f"expected KEY=VALUE, got {value!r}", field=flag)
        out[key] = val
    return out


def _add(args: argparse.Namespace) -> int:
    definition: dict[str, Any] = {"name": args.name}
    if args.command:
        definition["command"] = args.command
        definition["args"] = list(args.arg or [])
    if args.url:
        definition["url"] = args.url
    if args.prefix is not None:
        definition["prefix"] = args.prefix
    if args.env:
        definition["env"] = _pairs(args.env, "--env")
    if args.header:
        definition["headers"] = _pairs(args.header, "--header")

    async def body(registry: Registry, config: GuardConfig | None) -> Any:
        if config is not None and any(s.name == args.name for s in config.servers):
            raise ConfigError(f"server {args.name!r} is already in the config file", field="--name")
        if args.url:
            from ..portal.upstream import check_upstream_url

            check_upstream_url(args.url, field="--url")
        return await registry.add(definition, by=_who())

    entry = _run(args, body)
    print(f"{entry.name}: pending (run `mcp-guard servers approve {entry.name}` to serve it)")
    return 0


def _status(status: str) -> Callable[[argparse.Namespace], int]:
    def command(args: argparse.Namespace) -> int:
        async def body(registry: Registry, config: GuardConfig | None) -> bool:
            known = await registry.get(args.name) is not None or (
                config is not None and any(s.name == args.name for s in config.servers)
            )
            if not known:
                return False
            await registry.set_status(args.name, status, by=_who())  # type: ignore[arg-type]
            return True

        if not _run(args, body):
            print(f"mcp-guard: no server named {args.name!r}")
            return 1
        print(f"{args.name}: {status}")
        return 0

    return command


def _remove(args: argparse.Namespace) -> int:
    async def body(registry: Registry, config: GuardConfig | None) -> bool:
        if await registry.get(args.name) is None:
            return False
        await registry.remove(args.name)
        return True

    if not _run(args, body):
        print(f"mcp-guard: no registered server named {args.name!r}")
        return 1
    print(f"{args.name}: removed")
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("servers", help="the portal's upstream server registry and approvals")
    sub = parser.add_subparsers(dest="servers_command", metavar="ACTION")
    sub.required = True

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", type=Path, metavar="FILE", help="guard config (its [guard] state is used)")
        p.add_argument("--state", metavar="URL", help="state store URL (overrides the config)")

    p = sub.add_parser("list", help="configured and registered servers with their approval status")
    common(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_list)

    p = sub.add_parser("add", help="register a server; it is served once approved")
    common(p)
    p.add_argument("name")
    transport = p.add_mutually_exclusive_group(required=True)
    transport.add_argument("--command", help="stdio upstream: program to start")
    transport.add_argument("--url", help="streamable HTTP upstream URL")
    p.add_argument("--arg", action="append", help="argument for --command (repeat)")
    p.add_argument("--env", action="append", metavar="KEY=VALUE", help="environment for --command")
    p.add_argument("--header", action="append", metavar="KEY=VALUE", help="HTTP header for --url")
    p.add_argument("--prefix", help="name prefix (default NAME__)")
    p.set_defaults(func=_add)

    for action, status, text in (
        ("approve", "approved", "serve a registered server (or re-enable a revoked one)"),
        ("revoke", "revoked", "stop serving a server, configured or registered"),
    ):
        p = sub.add_parser(action, help=text)
        common(p)
        p.add_argument("name")
        p.set_defaults(func=_status(status))

    p = sub.add_parser("remove", help="delete a registered server from the registry")
    common(p)
    p.add_argument("name")
    p.set_defaults(func=_remove)
