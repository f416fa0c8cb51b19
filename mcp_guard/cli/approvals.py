"""``mcp-guard approvals list | approve | deny``: decide the calls that wait for a person.

Requests live in the state store (``--state URL``, else ``[guard] state`` of
``--config``, else ``sqlite:///.mcp-guard/state.db``), where the waiting guard
learns a decision at once.

An approver is named with ``--as SUBJECT`` (default: the operating-system user
running the command). Their roles are what the guard would give them when they
log in: the roles of every ``[[authn.api_keys]]`` entry and every stored key
(``mcp-guard keys create``) of that subject that is not revoked or expired,
and of their entry in the users file of ``[authn.passwords]``; then the
policy's role inheritance and ``[roles.X] subjects``/``groups`` memberships
apply. Their tenant is the tenant of those credentials. Someone who holds none
of the request's approver roles, who asked for the call, or whose tenant is
not the request's (no tenant decides only requests without one) cannot
decide it.

Trust boundary: nothing here authenticates the person at the terminal. Whoever
can write the state store, and point the command at a config and policy, can
decide as any subject; the state store is the approvers' credential. Stored
keys (``mcp-guard keys create``) count only while ``[authn] stored_api_keys``
is on, as for the guard itself.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TypeVar

from ._options import add_config_options
from ._trail import audited, trail_of

if TYPE_CHECKING:  # the commands import what they run when they run (``--help`` stays instant)
    from ..approvals import ApprovalBook, ApprovalRequest, Approver
    from ..authn._cli import CliContext
    from ..protocols import StateStore

T = TypeVar("T")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("approvals", help="list, approve and deny calls waiting for approval")
    sub = parser.add_subparsers(dest="approvals_command", metavar="ACTION")
    sub.required = True

    p_list = sub.add_parser("list", help="pending approval requests (--all: decided and expired too)")
    p_list.add_argument("--all", action="store_true", help="also approved, denied, expired and used ones")
    p_list.add_argument("--json", action="store_true", help="one JSON object per line")
    p_list.add_argument(
        "--as",
        dest="subject",
        metavar="SUBJECT",
        help="only the requests SUBJECT may decide or asked for, in their tenant",
    )
    add_config_options(p_list)
    p_list.set_defaults(func=_list)

    for name, verb in (("approve", "approve"), ("deny", "deny")):
        p = sub.add_parser(name, help=f"{verb} a pending request (exit 1: unknown or not pending)")
        p.add_argument("id", help="request id, as in 'approvals list' or the caller's -32004 error")
        p.add_argument(
            "--as", dest="subject", metavar="SUBJECT", help="who decides (default: your login name)"
        )
        p.add_argument("--note", help="a reason, shown to the caller and kept in the audit trail")
        p.add_argument("--json", action="store_true", help="print the decided request as JSON")
        add_config_options(p)
        p.set_defaults(func=audited(f"approvals.{name}", _decide), approve=name == "approve")


def _with_book(
    args: argparse.Namespace, body: Callable[[ApprovalBook, StateStore, CliContext], Awaitable[T]]
) -> T:
    from ..approvals import ApprovalBook
    from ..authn._cli import context, run_with_store

    ctx = context(args)
    return run_with_store(ctx, lambda store: body(ApprovalBook(store), store, ctx))


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _list(args: argparse.Namespace) -> int:
    async def body(book: ApprovalBook, store: StateStore, ctx: CliContext) -> list[ApprovalRequest]:
        viewer = await approver(args.subject, ctx, store) if args.subject else None
        return await book.list(everything=args.all, viewer=viewer)

    from ..approvals import ApprovalError
    from ..audit.canonical import printable

    try:
        requests = _with_book(args, body)
    except ApprovalError as exc:
        print(f"mcp-guard: {exc}", file=sys.stderr)
        return 1
    if args.json:
        for r in requests:
            sys.stdout.write(json.dumps(r.record(), ensure_ascii=True) + "\n")
        return 0
    if not requests:
        print("no pending approval requests" if not args.all else "no approval requests")
        return 0
    for r in requests:
        # Subject, target and rule come from callers and configs: escaped, so no text can forge
        # a line or drive the terminal (the arguments are JSON with ASCII escapes already).
        who = f" by {printable(r.decided_by)}" if r.decided_by else ""
        tenant = f" (tenant {printable(r.tenant)})" if r.tenant else ""
        print(
            f"{r.id}  {r.status}{who}  {printable(r.subject)}{tenant} -> "
            f"{printable(r.server)}/{printable(str(r.target))}  rule {printable(str(r.rule))}"
        )
        print(f"    arguments {json.dumps(r.arguments, ensure_ascii=True)}")
        if r.truncated:
            print("    (arguments shown truncated: nested too deep; the approval binds the complete ones)")
        print(f"    requested {_when(r.requested_at)} UTC, until {_when(r.expires_at)} UTC")
    return 0


async def approver(subject: str, ctx: CliContext, store: StateStore) -> Approver:
    """``subject`` as the guard would see them: tenant and effective roles (see the module doc)."""
    from ..approvals import ApprovalError, Approver
    from ..authn.api_keys import list_api_keys
    from ..authn.config import resolve_path
    from ..authn.users import UsersFile
    from ..model import Principal

    roles: set[str] = set()
    groups: set[str] = set()
    tenants: set[str | None] = set()
    for key in ctx.settings.api_keys:
        if key.subject == subject and (key.expires_at is None or key.expires_at > time.time()):
            roles.update(key.roles)
            groups.update(key.groups)
            tenants.add(key.tenant)
    # Stored keys count only where the guard accepts them (``[authn] stored_api_keys``).
    for record, _ in await list_api_keys(store) if ctx.settings.stored_api_keys else ():
        live = record.revoked_at is None and (record.expires_at is None or record.expires_at > time.time())
        if record.subject == subject and live:
            roles.update(record.roles)
            groups.update(record.groups)
            tenants.add(record.tenant)
    if ctx.settings.passwords is not None:
        user = UsersFile(resolve_path(ctx.base_dir, ctx.settings.passwords.users_file)).get(subject)
        if user is not None and not user.disabled:
            roles.update(user.roles)
            groups.update(user.groups)
            tenants.add(user.tenant)
    if len(tenants) > 1:
        named = ", ".join(sorted(t or "(none)" for t in tenants))
        raise ApprovalError(f"{subject!r} has credentials of several tenants ({named}): fix them first")
    tenant = next(iter(tenants), None)
    principal = Principal(subject, tenant=tenant, roles=frozenset(roles), groups=frozenset(groups))
    if ctx.config is not None:
        from ..config import load_config
        from ..policy import load_policy
        from ..policy.functionrefs import import_functions

        config = load_config(ctx.config)
        paths = [config.resolve(p) for p in config.guard.policy_paths()]
        if paths:
            refs = config.guard.policy_functions
            functions = import_functions(refs, config.base_dir, "guard.policy_functions") or None
            policy = load_policy(*paths, functions=functions)
            return Approver(subject, tenant, policy.effective_roles(principal))
    return Approver(subject, tenant, principal.roles)


def _decide(args: argparse.Namespace) -> int:
    from ..approvals import ApprovalError

    subject = args.subject or getpass.getuser()

    async def body(book: ApprovalBook, store: StateStore, ctx: CliContext) -> ApprovalRequest:
        who = await approver(subject, ctx, store)
        return await book.decide(
            args.id, args.approve, by=subject, roles=who.roles, tenant=who.tenant, note=args.note
        )

    try:
        decided = _with_book(args, body)
    except ApprovalError as exc:
        trail_of(args).refused(str(exc), kind="approval", target=args.id)
        print(f"mcp-guard: {exc}", file=sys.stderr)
        return 1
    # The decision already reached the waiting call: it stands even if its event cannot be written.
    trail_of(args).done(
        kind="approval",
        target=decided.id,
        server=decided.server,
        rule=decided.rule,
        reasons=(decided.status, *((args.note,) if args.note else ())),
        approval=decided.audit(),
    )
    if args.json:
        sys.stdout.write(json.dumps(decided.record(), ensure_ascii=True) + "\n")
    else:
        print(f"{decided.id} {decided.status} by {subject}")
    return 0
