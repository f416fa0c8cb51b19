"""``mcp-guard keys``: API keys kept in the state store, token revocation, signing-key rotation."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from datetime import datetime, timezone
from typing import Any

from ..errors import ConfigError
from ._trail import audited, trail_of


def _when(epoch: float | None) -> str | None:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat(timespec="seconds") if epoch else None


def _expires(words: list[str] | None) -> float | None:
    """``--expires`` in seconds; the flag takes several words so an unquoted ``3 parsecs`` is
    reported here, naming the flag, instead of as a stray argument under the top-level usage."""
    from ..authn._util import parse_duration

    if not words:
        return None
    value = " ".join(words)
    try:
        return parse_duration(value)
    except ValueError:
        raise ConfigError(f"{value!r} is not a duration; use e.g. 30d, 12h, 90m", field="--expires") from None


def _granted(args: argparse.Namespace, expires_at: float | None) -> tuple[str, ...]:
    """What a created key may do, for its event: an admin key must not read like a viewer's."""

    def names(values: list[str]) -> str:
        return ",".join(sorted(set(values))) or "-"

    return (
        f"for subject {args.subject}",
        f"roles {names(args.role)}; groups {names(args.group)}; scopes {names(args.scope)}",
        f"tenant {args.tenant or '-'}; expires {_when(expires_at) or 'never'}",
    )


def _create(args: argparse.Namespace) -> int:
    from ..authn._cli import context, run_with_store
    from ..authn.api_keys import create_api_key
    from ..protocols import StateStore

    ctx = context(args)
    expires_in = _expires(args.expires)
    if not args.subject.strip():
        raise ConfigError("must not be empty", field="--subject")

    async def body(store: StateStore) -> tuple[str, str, float | None]:
        key, record = await create_api_key(
            store,
            args.subject,
            roles=args.role,
            groups=args.group,
            scopes=args.scope,
            tenant=args.tenant,
            expires_in=expires_in,
            description=args.description,
        )
        return key, record.id, record.expires_at

    key, key_id, expires_at = run_with_store(ctx, body)

    def undo() -> None:
        from ..authn.api_keys import revoke_api_key

        async def take_back(store: StateStore) -> None:
            await revoke_api_key(store, key_id)

        run_with_store(ctx, take_back)

    # Recorded before the key is shown: a key whose event fails is revoked and never printed.
    trail_of(args).done(kind="api_key", target=key_id, undo=undo, reasons=_granted(args, expires_at))
    if args.json:
        print(
            json.dumps({"key": key, "id": key_id, "subject": args.subject, "expires_at": _when(expires_at)})
        )
    else:
        print(key)
        print(
            f"id {key_id}, subject {args.subject}, expires {_when(expires_at) or 'never'}. "
            "Store the key now: only its hash was kept.",
            file=sys.stderr,
        )
    return 0


def _revoke(args: argparse.Namespace) -> int:
    from ..authn._cli import context, run_with_store
    from ..authn.api_keys import revoke_api_key
    from ..authn.revocation import RevocationList
    from ..protocols import StateStore

    ctx = context(args)

    async def body(store: StateStore) -> bool:
        if args.jti:
            await RevocationList(store).revoke(args.id)
            return True
        return await revoke_api_key(store, args.id)

    kind = "token" if args.jti else "api_key"
    if not run_with_store(ctx, body):
        trail_of(args).refused("no API key with that id", kind=kind, target=args.id)
        print(f"mcp-guard: no API key with id {args.id}", file=sys.stderr)
        return 1
    trail_of(args).done(kind=kind, target=args.id)
    print(f"revoked {'token' if args.jti else 'key'} {args.id}")
    return 0


def _list(args: argparse.Namespace) -> int:
    from ..authn._cli import context, run_with_store
    from ..authn.api_keys import list_api_keys

    ctx = context(args)
    rows = run_with_store(ctx, list_api_keys)
    out: list[dict[str, Any]] = [
        {
            "id": r.id,
            "subject": r.subject,
            "roles": list(r.roles),
            "tenant": r.tenant,
            "created": _when(r.created_at),
            "expires": _when(r.expires_at),
            "revoked": _when(r.revoked_at),
            "last_used": _when(used),
        }
        for r, used in rows
    ]
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    for row in out:
        state = "revoked" if row["revoked"] else "active"
        print(
            f"{row['id']}  {row['subject']!s:<16} {state:<8} roles={','.join(row['roles']) or '-'} "
            f"expires={row['expires'] or 'never'} last_used={row['last_used'] or 'never'}"
        )
    return 0


def _hash(args: argparse.Namespace) -> int:
    key = sys.stdin.readline().strip()
    if not key:
        raise ConfigError("no key on standard input")
    print(hashlib.sha256(key.encode()).hexdigest())
    return 0


def _rotate(args: argparse.Namespace) -> int:
    from ..authn._cli import context
    from ..authn.config import IssuerConfig, build_issuer

    ctx = context(args)
    issuer = build_issuer(ctx.settings.issuer or IssuerConfig(), ctx.base_dir)
    if args.retire:
        if not issuer.retire(args.retire):
            trail_of(args).refused("unknown key, or the active key", kind="signing_key", target=args.retire)
            print(f"mcp-guard: cannot retire {args.retire} (unknown, or the active key)", file=sys.stderr)
            return 1
        trail_of(args).done(kind="signing_key", target=args.retire, reasons=("retired",))
        print(f"retired {args.retire}")
        return 0
    kid = issuer.rotate()
    trail_of(args).done(kind="signing_key", target=kid, reasons=("rotated",))
    print(f"new signing key {kid}; verifying keys: {', '.join(issuer.kids)}")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from ._options import add_config_options

    group = subparsers.add_parser("keys", help="API keys, token revocation and signing keys")
    sub = group.add_subparsers(dest="keys_command", metavar="SUBCOMMAND")
    sub.required = True

    create = sub.add_parser("create", help="create an API key (printed once, only its hash is stored)")
    create.add_argument("--subject", required=True)
    create.add_argument("--role", action="append", default=[], help="repeatable")
    create.add_argument("--group", action="append", default=[], help="repeatable")
    create.add_argument("--scope", action="append", default=[], help="repeatable")
    create.add_argument("--tenant")
    create.add_argument(
        "--expires", nargs="+", metavar="DURATION", help="e.g. 30d, 12h, 90m (default: never)"
    )
    create.add_argument("--description", default="")
    create.add_argument("--json", action="store_true")
    add_config_options(create)
    create.set_defaults(func=audited("keys.create", _create))

    revoke = sub.add_parser("revoke", help="revoke an API key by id (or a token by jti with --jti)")
    revoke.add_argument("id")
    revoke.add_argument("--jti", action="store_true", help="ID is a token's jti")
    add_config_options(revoke)
    revoke.set_defaults(func=audited("keys.revoke", _revoke))

    listing = sub.add_parser("list", help="list stored API keys (never the keys themselves)")
    listing.add_argument("--json", action="store_true")
    add_config_options(listing)
    listing.set_defaults(func=_list)

    hashing = sub.add_parser("hash", help="print the key_sha256 of a key read from standard input")
    hashing.set_defaults(func=_hash)

    rotate = sub.add_parser("rotate-signing", help="new signing key for issued tokens (or --retire KID)")
    rotate.add_argument("--retire", metavar="KID")
    add_config_options(rotate, state=False)
    rotate.set_defaults(func=audited("keys.rotate-signing", _rotate))
