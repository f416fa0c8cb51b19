"""``mcp-guard users``: local users for the login endpoint (password + TOTP), and lockout admin."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..authn._cli import CliContext
    from ..authn.config import PasswordsConfig
    from ..authn.users import UsersFile
from ..errors import ConfigError
from ._trail import audited, trail_of


def _passwords(ctx: CliContext) -> PasswordsConfig:
    from ..authn.config import PasswordsConfig

    return ctx.settings.passwords or PasswordsConfig()


def _users_file(args: argparse.Namespace, ctx: CliContext) -> UsersFile:
    from ..authn.config import resolve_path
    from ..authn.users import UsersFile

    if args.users_file is not None:
        return UsersFile(args.users_file)
    return UsersFile(resolve_path(ctx.base_dir, _passwords(ctx).users_file))


def _new_password(args: argparse.Namespace, ctx: CliContext, name: str) -> str:
    from ..authn._cli import read_secret
    from ..authn.passwords import password_problems

    password = read_secret(f"password for {name}: ", from_stdin=args.password_stdin, confirm=True)
    problems = password_problems(password, min_length=_passwords(ctx).min_length, username=name)
    if problems:
        raise ConfigError("password " + "; ".join(problems), field="password")
    return password


def _require_passwords(ctx: CliContext) -> None:
    """Refuse to write users for a config that never logs anyone in with a password."""
    if ctx.config is not None and ctx.settings.passwords is None:
        raise ConfigError(
            "the config has no [authn.passwords] table, so no login would accept this user; "
            "add one (docs/authentication.md, 'Local users') and run the command again",
            file=str(ctx.config),
        )


def _enrol(name: str, issuer: str) -> str:
    from ..authn import totp

    secret = totp.new_secret()
    print(f"TOTP secret for {name}: {secret}")
    print(f"otpauth URI: {totp.provisioning_uri(secret, name, issuer)}")
    return secret


def _add(args: argparse.Namespace) -> int:
    from ..authn._cli import context
    from ..authn.passwords import hash_password
    from ..authn.users import User

    ctx = context(args)
    _require_passwords(ctx)
    users = _users_file(args, ctx)
    if users.get(args.name) is not None:
        raise ConfigError(f"user {args.name!r} already exists", file=str(users.path))
    password = _new_password(args, ctx, args.name)
    secret = None if args.no_totp else _enrol(args.name, args.issuer)
    users.put(
        User(
            name=args.name,
            password_hash=hash_password(password, _passwords(ctx).hash),
            totp_secret=secret,
            roles=tuple(args.role),
            groups=tuple(args.group),
            tenant=args.tenant,
        )
    )
    granted = (
        f"roles {','.join(sorted(set(args.role))) or '-'}; groups {','.join(sorted(set(args.group))) or '-'}",
        f"tenant {args.tenant or '-'}; {'one-time code enrolled' if secret else 'no one-time code'}",
    )
    trail_of(args).done(kind="user", target=args.name, undo=lambda: users.remove(args.name), reasons=granted)
    print(f"added {args.name} to {users.path}", file=sys.stderr)
    return 0


def _passwd(args: argparse.Namespace) -> int:
    from ..authn._cli import context
    from ..authn.passwords import hash_password

    ctx = context(args)
    _require_passwords(ctx)
    users = _users_file(args, ctx)
    old = users.get(args.name)
    if old is None:
        raise ConfigError(f"no user {args.name!r}", file=str(users.path))
    password = _new_password(args, ctx, args.name)
    users.update(args.name, password_hash=hash_password(password, _passwords(ctx).hash))
    trail_of(args).done(
        kind="user", target=args.name, undo=lambda: users.update(args.name, password_hash=old.password_hash)
    )
    print(f"password of {args.name} changed", file=sys.stderr)
    return 0


def _totp(args: argparse.Namespace) -> int:
    from ..authn._cli import context

    ctx = context(args)
    _require_passwords(ctx)
    users = _users_file(args, ctx)
    old = users.get(args.name)
    if old is None:
        raise ConfigError(f"no user {args.name!r}", file=str(users.path))
    users.update(args.name, totp_secret=_enrol(args.name, args.issuer))
    trail_of(args).done(
        kind="user", target=args.name, undo=lambda: users.update(args.name, totp_secret=old.totp_secret)
    )
    return 0


def _remove(args: argparse.Namespace) -> int:
    from ..authn._cli import context

    ctx = context(args)
    users = _users_file(args, ctx)
    if not users.remove(args.name):
        trail_of(args).refused("no user of that name", kind="user", target=args.name)
        print(f"mcp-guard: no user {args.name!r}", file=sys.stderr)
        return 1
    trail_of(args).done(kind="user", target=args.name)
    print(f"removed {args.name}")
    return 0


def _list(args: argparse.Namespace) -> int:
    from ..authn._cli import context

    ctx = context(args)
    rows = [
        {
            "name": u.name,
            "roles": list(u.roles),
            "groups": list(u.groups),
            "tenant": u.tenant,
            "totp": bool(u.totp_secret),
            "disabled": u.disabled,
        }
        for u in _users_file(args, ctx).all()
    ]
    print(json.dumps(rows, indent=2))
    return 0


def _unlock(args: argparse.Namespace) -> int:
    from ..authn._cli import context, run_with_store
    from ..authn.config import issuer_settings
    from ..authn.lockout import Lockout
    from ..protocols import StateStore
    from ..ratelimit import person_key

    ctx = context(args)
    policy = _passwords(ctx).lockout
    # An anomaly hold names the person: by default the local user, as our issuer vouches for them.
    issuer = issuer_settings(ctx.settings)
    by = args.vouched_by if args.vouched_by is not None else issuer.issuer if issuer is not None else None
    person = person_key(args.name, by) if by else None

    async def body(store: StateStore) -> list[str]:
        from ..authn.lockout import LockoutPolicy

        lockout = Lockout(store, LockoutPolicy(**policy.model_dump()))
        return await lockout.unlock(args.name, args.source, person=person)

    cleared = run_with_store(ctx, body)
    trail_of(args).done(kind="user", target=args.name, reasons=tuple(f"cleared {c}" for c in cleared))
    print(f"unlocked {args.name}" + (f" (cleared: {', '.join(cleared)})" if cleared else ""))
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from ._options import add_config_options

    group = subparsers.add_parser("users", help="local users (password + TOTP) and lockouts")
    sub = group.add_subparsers(dest="users_command", metavar="SUBCOMMAND")
    sub.required = True

    def common(parser: argparse.ArgumentParser, *, state: bool = False) -> None:
        add_config_options(parser, state=state)
        parser.add_argument(
            "--users-file",
            type=Path,
            metavar="FILE",
            help="users file (default: [authn.passwords] users_file of --config)",
        )

    add = sub.add_parser("add", help="add a user: password (policy-checked) and TOTP enrolment")
    add.add_argument("name")
    add.add_argument("--role", action="append", default=[], help="repeatable")
    add.add_argument("--group", action="append", default=[], help="repeatable")
    add.add_argument("--tenant")
    add.add_argument("--no-totp", action="store_true", help="no second factor (refused at login if required)")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add.add_argument("--issuer", default="mcp-guard", help="label shown in authenticator apps")
    common(add)
    add.set_defaults(func=audited("users.add", _add))

    passwd = sub.add_parser("passwd", help="set a new password")
    passwd.add_argument("name")
    passwd.add_argument("--password-stdin", action="store_true")
    common(passwd)
    passwd.set_defaults(func=audited("users.passwd", _passwd))

    reset = sub.add_parser("totp", help="enrol a new TOTP secret (the old one stops working)")
    reset.add_argument("name")
    reset.add_argument("--issuer", default="mcp-guard")
    common(reset)
    reset.set_defaults(func=audited("users.totp", _totp))

    remove = sub.add_parser("remove", help="delete a user")
    remove.add_argument("name")
    common(remove)
    remove.set_defaults(func=audited("users.remove", _remove))

    listing = sub.add_parser("list", help="list users (no secrets)")
    common(listing)
    listing.set_defaults(func=_list)

    unlock = sub.add_parser("unlock", help="clear lockouts of a user (and optionally one source address)")
    unlock.add_argument("name")
    unlock.add_argument("--source", metavar="IP")
    unlock.add_argument(
        "--vouched-by",
        metavar="VOUCHER",
        help="end the anomaly hold of NAME as VOUCHER vouches for it: an issuer or api-keys/TENANT, as the "
        "anomaly alert names it (default: our own issuer, whose tokens local users get)",
    )
    add_config_options(unlock)
    unlock.set_defaults(func=audited("users.unlock", _unlock))
