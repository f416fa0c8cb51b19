"""``mcp-guard servers``: the portal's server registry (list, add, approve, revoke, remove, credentials).

Servers in the config file are approved by being listed; servers added here
wait as ``pending`` until approved. Changes land in the state store, where
running portals pick them up. ``servers credentials`` keeps per-user (or
per-tenant) upstream secrets, sealed with AES-GCM before they are stored.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from ..config import GuardConfig
    from ..portal.credentials import CredentialBroker, Scope
    from ..portal.registry import Registry

from ..errors import ConfigError
from ._trail import audited, trail_of

T = TypeVar("T")


def _config(args: argparse.Namespace) -> GuardConfig | None:
    from ..config import load_config

    path: Path | None = args.config
    return load_config(path) if path is not None else None


def _run(args: argparse.Namespace, body: Callable[[Registry, GuardConfig | None], Awaitable[T]]) -> T:
    import anyio

    from ..config import DEFAULT_STATE
    from ..portal.registry import Registry
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


def _broker(args: argparse.Namespace, registry: Registry, config: GuardConfig | None) -> CredentialBroker:
    from ..portal.credentials import DEFAULT_KEY_FILE, CredentialBroker, SecretBox, load_key

    if config is None:
        path = args.secrets_key or Path.cwd() / DEFAULT_KEY_FILE
        return CredentialBroker(registry.store, SecretBox(load_key(path)), cache_ttl=0)
    path = args.secrets_key or config.resolve(config.portal.secrets_key_file)
    declared = {s.name: s.credentials for s in config.servers if s.credentials != "shared"}
    return CredentialBroker(registry.store, SecretBox(load_key(path)), cache_ttl=0, declared=declared)


def _owner(args: argparse.Namespace) -> tuple[Scope, str]:
    if args.subject:
        from ..portal.credentials import subject_owner

        return "subject", subject_owner(args.subject, args.issuer)
    if args.issuer:
        raise ConfigError("--issuer names who vouches for a --subject; give --subject too", field="--issuer")
    return "tenant", args.tenant


def _secret_pairs(values: list[str] | None, flag: str) -> dict[str, str]:
    """KEY=VALUE pairs; ``KEY=@FILE`` reads the value from a file (keeps it out of shell history)."""
    out = _pairs(values, flag)
    for key, value in out.items():
        if value.startswith("@"):
            path = Path(value[1:])
            try:
                out[key] = path.read_text(encoding="utf-8").rstrip("\r\n")
            except (OSError, UnicodeDecodeError) as exc:
                why = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
                raise ConfigError(f"{key}: cannot read {path}: {why}", field=flag) from None
    return out


def _cred_set(args: argparse.Namespace) -> int:
    scope, owner = _owner(args)
    env, headers = _secret_pairs(args.env, "--env"), _secret_pairs(args.header, "--header")

    async def body(registry: Registry, config: GuardConfig | None) -> tuple[bytes | None, bytes | None]:
        broker = _broker(args, registry, config)
        before = await broker.sealed(args.name, scope, owner)
        await broker.set(args.name, scope, owner, env=env, headers=headers)
        return before

    before = _run(args, body)

    async def take_back(registry: Registry, config: GuardConfig | None) -> None:
        await _broker(args, registry, config).put_back(args.name, scope, owner, before)

    # The owner is recorded, never the secret. A secret that gives its owner a way in is not left
    # in place unrecorded: the earlier one (still sealed, never opened here) is put back.
    trail_of(args).done(
        kind="credentials", server=args.name, target=f"{scope}:{owner}", undo=lambda: _run(args, take_back)
    )
    print(f"{args.name}: credentials stored for {scope} {owner!r} ({len(env)} env, {len(headers)} headers)")
    return 0


def _cred_list(args: argparse.Namespace) -> int:
    async def body(registry: Registry, config: GuardConfig | None) -> dict[str, Any]:
        broker = _broker(args, registry, config)
        owners = {o: await broker.names(args.name, o) for o in await broker.owners(args.name)}
        return {"server": args.name, "scope": await broker.scope(args.name), "owners": owners}

    data = _run(args, body)
    if args.json:
        print(json.dumps(data, indent=2))
    elif data["scope"] is None:
        print(f"{args.name}: no per-user credentials (the server's own env/headers are used)")
    else:
        for owner, names in data["owners"].items():
            env, headers = ",".join(names["env"]), ",".join(names["headers"])
            print(f"{data['scope']} {owner:<20} env={env} headers={headers}")
    return 0


def _cred_delete(args: argparse.Namespace) -> int:
    owner = _owner(args)[1] if args.subject or args.tenant or args.issuer else None

    async def body(registry: Registry, config: GuardConfig | None) -> int:
        return await _broker(args, registry, config).delete(args.name, owner)

    removed = _run(args, body)
    target = f"{'subject' if args.subject else 'tenant'}:{owner}" if owner else None
    if not removed:
        trail_of(args).refused("no such credentials", kind="credentials", server=args.name, target=target)
        print(f"mcp-guard: no credentials of {owner or 'anyone'!r} for {args.name!r}", file=sys.stderr)
        return 1
    trail_of(args).done(kind="credentials", server=args.name, target=target or "*")
    print(f"{args.name}: {removed} credential set(s) deleted")
    return 0


def _who() -> str:
    """The account the registry notes beside a change: the trail's actor, not ``$USER``."""
    from ._trail import operator

    return operator()["subject"]


def _list(args: argparse.Namespace) -> int:
    from ..portal.admin import server_rows

    async def body(registry: Registry, config: GuardConfig | None) -> list[dict[str, Any]]:
        rows = await server_rows(registry, config.servers if config is not None else [])
        return [{k: r[k] for k in ("name", "source", "status", "target", "prefix")} for r in rows]

    rows = _run(args, body)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            print(f"{r['name']:<20} {r['status']:<9} {r['source']:<9} {r['prefix']:<14} {r['target']}")
    return 0


def _pairs(values: list[str] | None, flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for n, value in enumerate(values or [], 1):
        key, sep, val = value.partition("=")
        if not sep or not key:
            # The text is not repeated: it is often the secret itself, typed without its name, and
            # this message also goes into the audit trail.
            raise ConfigError(f"value #{n} is not KEY=VALUE (no name, or no '=')", field=flag)
        out[key] = val
    return out


def _again(args: argparse.Namespace, command: str, name: str) -> str:
    """The command line of a follow-up ``servers`` command on the same store, ready to paste anywhere."""
    words = ["mcp-guard", "servers", command, name]
    if args.config is not None:
        words += ["--config", str(args.config.resolve())]
    if args.state:
        words += ["--state", args.state]
    return shlex.join(words)


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

    before: list[Any] = []

    async def body(registry: Registry, config: GuardConfig | None) -> Any:
        if config is not None and any(s.name == args.name for s in config.servers):
            raise ConfigError(f"server {args.name!r} is already in the config file", field="NAME")
        if args.url:
            from ..portal.upstream import check_upstream_url

            check_upstream_url(args.url, field="--url")
        before.append(await registry.get(args.name))  # a status kept for the name is put back
        return await registry.add(definition, by=_who())

    entry = _run(args, body)

    async def take_back(registry: Registry, config: GuardConfig | None) -> None:
        await registry.restore(entry.name, before[0])

    trail_of(args).done(
        kind="server", server=entry.name, target=entry.name, undo=lambda: _run(args, take_back)
    )
    print(f"{entry.name}: pending (run `{_again(args, 'approve', entry.name)}` to serve it)")
    return 0


def _status(status: str) -> Callable[[argparse.Namespace], int]:
    def command(args: argparse.Namespace) -> int:
        from ..portal.admin import set_server_status

        before: list[Any] = []

        async def body(registry: Registry, config: GuardConfig | None) -> bool:
            configured = [s.name for s in config.servers] if config is not None else []
            before.append(await registry.get(args.name))
            return await set_server_status(
                registry,
                args.name,
                status,  # type: ignore[arg-type]
                by=_who(),
                configured=configured,
            )

        trail = trail_of(args)
        if not _run(args, body):
            trail.refused("no server of that name", kind="server", server=args.name, target=args.name)
            print(f"mcp-guard: no server named {args.name!r}", file=sys.stderr)
            return 1

        async def take_back(registry: Registry, config: GuardConfig | None) -> None:
            await registry.restore(args.name, before[0])

        # An approval that cannot be recorded is put back; a revocation only takes access away.
        undo = (lambda: _run(args, take_back)) if status == "approved" else None
        trail.done(kind="server", server=args.name, target=args.name, reasons=(status,), undo=undo)
        print(f"{args.name}: {status}")
        return 0

    return command


def _remove(args: argparse.Namespace) -> int:
    async def body(registry: Registry, config: GuardConfig | None) -> bool:
        configured = config is not None and any(s.name == args.name for s in config.servers)
        return await registry.remove(args.name, configured=configured)

    if not _run(args, body):
        trail_of(args).refused(
            "no registered server of that name", kind="server", server=args.name, target=args.name
        )
        print(f"mcp-guard: no registered server named {args.name!r}", file=sys.stderr)
        return 1
    trail_of(args).done(kind="server", server=args.name, target=args.name)
    print(f"{args.name}: removed")
    return 0


def register(subparsers: Any) -> None:
    from ._options import SECRETS_KEY_FILE as DEFAULT_KEY_FILE

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
    transport.add_argument(
        "--command", help="stdio upstream: program to start (python: the portal's own interpreter)"
    )
    transport.add_argument("--url", help="streamable HTTP upstream URL")
    p.add_argument(
        "--arg",
        action="append",
        help="argument for --command (repeat; one starting with '-' is written --arg=-m)",
    )
    p.add_argument("--env", action="append", metavar="KEY=VALUE", help="environment for --command")
    p.add_argument("--header", action="append", metavar="KEY=VALUE", help="HTTP header for --url")
    p.add_argument("--prefix", help="name prefix (default NAME__)")
    p.set_defaults(func=audited("servers.add", _add))

    for action, status, text in (
        ("approve", "approved", "serve a registered server (or re-enable a revoked one)"),
        ("revoke", "revoked", "stop serving a server, configured or registered"),
    ):
        p = sub.add_parser(action, help=text)
        common(p)
        p.add_argument("name")
        p.set_defaults(func=audited(f"servers.{action}", _status(status)))

    p = sub.add_parser(
        "remove", help="delete a server registered with `servers add` (configured ones can only be revoked)"
    )
    common(p)
    p.add_argument("name")
    p.set_defaults(func=audited("servers.remove", _remove))

    creds = sub.add_parser("credentials", help="per-user upstream secrets (sealed with AES-GCM)")
    csub = creds.add_subparsers(dest="credentials_command", metavar="ACTION")
    csub.required = True

    def ccommon(p: argparse.ArgumentParser, owner_required: bool) -> None:
        common(p)
        p.add_argument("name", help="upstream server name")
        p.add_argument(
            "--secrets-key",
            type=Path,
            metavar="FILE",
            help=f"AES key file (default {DEFAULT_KEY_FILE} beside the config; MCP_GUARD_SECRETS_KEY wins)",
        )
        who = p.add_mutually_exclusive_group(required=owner_required)
        who.add_argument("--subject", help="the user these credentials belong to")
        who.add_argument("--tenant", help="the tenant these credentials belong to")
        p.add_argument(
            "--issuer",
            help="with --subject: who vouches for the name (an identity provider's iss, or "
            "api-keys/TENANT for the API keys of a tenant)",
        )

    p = csub.add_parser("set", help="store (replace) one user's or tenant's credentials for a server")
    ccommon(p, True)
    p.add_argument(
        "--env", action="append", metavar="KEY=VALUE", help="stdio upstream env (VALUE @FILE reads a file)"
    )
    p.add_argument("--header", action="append", metavar="KEY=VALUE", help="URL upstream header (@FILE too)")
    p.set_defaults(func=audited("servers.credentials.set", _cred_set))

    p = csub.add_parser("list", help="who has credentials for a server (names only, never values)")
    ccommon(p, False)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cred_list)

    p = csub.add_parser("delete", help="delete one owner's credentials, or all of a server's")
    ccommon(p, False)
    p.set_defaults(func=audited("servers.credentials.delete", _cred_delete))
