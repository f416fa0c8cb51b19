"""``mcp-guard auth check``: what principal does this configuration make of this token?"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..model import Principal
from ..errors import AuthenticationError, GuardError


def principal_json(principal: Principal) -> dict[str, Any]:
    return {
        "subject": principal.subject,
        "tenant": principal.tenant,
        "roles": sorted(principal.roles),
        "groups": sorted(principal.groups),
        "scopes": sorted(principal.scopes),
        "auth_method": principal.auth_method,
        "mfa": principal.mfa,
        "amr": list(principal.amr),
        "auth_time": principal.auth_time.isoformat() if principal.auth_time else None,
        "expires_at": principal.expires_at,
        "credential_id": principal.credential_id,
        "issuer": principal.issuer,
        "attributes": dict(principal.attributes),
    }


def _check(args: argparse.Namespace) -> int:
    # The whole config as `serve` checks it (unknown tables, [guard] mode, the policy files), so a
    # config that answers here is one the guard starts with; an invalid one exits 2.
    from ..authn._cli import context, one_line, run_with_store
    from ..authn.config import build_authentication
    from ..config import check_policy_files, load_config
    from ..protocols import Credential, StateStore

    config = load_config(args.config)
    check_policy_files(config)
    ctx = context(args)
    token = sys.stdin.readline().strip() if args.token == "-" else args.token

    async def body(store: StateStore) -> Principal:
        authentication = build_authentication(ctx.settings, store, ctx.base_dir)
        await authentication.revocations.reload()
        return await authentication.resolve(Credential(token or None, source="explicit"))

    try:
        principal = run_with_store(ctx, body)
    except (AuthenticationError, GuardError) as exc:
        print(f"refused: {one_line(exc.reason)}", file=sys.stderr)
        return 1
    print(json.dumps(principal_json(principal), indent=2, default=str))
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from ._options import add_config_options

    group = subparsers.add_parser("auth", help="check authentication configuration")
    sub = group.add_subparsers(dest="auth_command", metavar="SUBCOMMAND")
    sub.required = True
    check = sub.add_parser("check", help="resolve a token to a principal with a config's [authn] table")
    add_config_options(check, config_required=True)
    check.add_argument("--token", required=True, help="the credential ('-' reads it from standard input)")
    check.set_defaults(func=_check)
