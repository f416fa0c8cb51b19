"""``mcp-guard login``: password + TOTP -> a short-lived token for MCP_GUARD_TOKEN.

Locally (``--config``: the users file, lockout state and signing keys of that
config) or against a running login endpoint (``--url``).
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import TYPE_CHECKING

from ..errors import ConfigError, GuardError, RateLimited

if TYPE_CHECKING:
    from ..audit import AuditLog
    from ..model import AuditEvent


def _remote(url: str, username: str, password: str, code: str | None) -> str:
    import anyio
    import httpx

    from ..authn.fetch import FetchError, FetchPolicy, SafeFetcher

    async def post() -> str:
        fetcher = SafeFetcher(FetchPolicy(allow_insecure_loopback=True))
        try:
            await fetcher.check_url(url)
        except FetchError as exc:
            raise ConfigError(str(exc), field="--url") from None
        try:
            async with httpx.AsyncClient(trust_env=False, follow_redirects=False, timeout=10) as client:
                response = await client.post(
                    url, json={"username": username, "password": password, "totp": code}
                )
        except httpx.HTTPError as exc:
            raise GuardError(f"login failed: cannot reach {url}: {exc or type(exc).__name__}") from None
        if response.status_code != 200:
            try:
                detail = response.json().get("error_description", response.text)
            except ValueError:
                detail = response.text
            raise GuardError(f"login refused (HTTP {response.status_code}): {detail}")
        token = response.json().get("access_token")
        if not isinstance(token, str):
            raise GuardError("login endpoint returned no access_token")
        return token

    return anyio.run(post)


class _Trail:
    """The config's audit trail as the login service's auditor, committing each event before the
    service goes on: a token is printed only once its ``login`` event is in the trail, as the
    login endpoint hands one out only then. Refusals are recorded too (best effort)."""

    def __init__(self, log: AuditLog) -> None:
        self._log = log

    @property
    def synchronous(self) -> bool:
        return True

    def record(self, event: AuditEvent) -> None:
        self._log.record(event)

    async def record_sync(self, event: AuditEvent) -> None:
        await self._log.record_sync(event)

    async def aclose(self) -> None:
        self._log.close()

    def close(self) -> None:
        self._log.close()


def _trail(args: argparse.Namespace) -> _Trail:
    """The trail of ``--config``; a login that cannot be recorded is refused before it is tried."""
    from ..audit import load_audit_config, open_auditor

    cfg = load_audit_config(args.config)
    try:
        log = open_auditor(cfg.urls, cfg.settings, cfg.base_dir)
    except ConfigError:
        raise
    except Exception as exc:
        raise GuardError(f"the audit trail cannot be opened ({exc}), so no login was tried") from None
    return _Trail(log)


def _login(args: argparse.Namespace) -> int:
    from ..authn._cli import context, one_line, read_secret, run_with_store
    from ..authn.config import build_login_service
    from ..authn.issuer import IssuedToken
    from ..protocols import StateStore

    username = args.username or os.environ.get("USER") or getpass.getuser()
    password = read_secret(f"password for {username}: ", from_stdin=args.password_stdin)
    code = args.totp
    if code is None and not args.password_stdin and sys.stdin.isatty():
        code = input("one-time code: ").strip() or None
    try:
        if args.url:
            token = _remote(args.url, username, password, code)
        else:
            if args.config is None:
                raise ConfigError("give --config (local login) or --url (login endpoint)")
            ctx = context(args)
            trail = _trail(args)

            async def body(store: StateStore) -> IssuedToken:
                service = build_login_service(ctx.settings, store, ctx.base_dir, auditor=trail)
                if service is None:
                    raise ConfigError(
                        "no [authn.passwords] table", file=str(ctx.config), field="authn.passwords"
                    )
                result: IssuedToken = await service.login(username, password, code, source="local")
                return result

            try:
                token = run_with_store(ctx, body).access_token
            finally:
                trail.close()
    except RateLimited as exc:
        print(f"mcp-guard: login locked, retry in {exc.retry_after or 0:.0f}s", file=sys.stderr)
        return 1
    except GuardError as exc:
        print(f"mcp-guard: {one_line(exc.reason)}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        print(f"mcp-guard: login failed: {one_line(str(exc))}", file=sys.stderr)
        return 1
    print(f"export MCP_GUARD_TOKEN={token}" if args.export else token)
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from ._options import add_config_options

    parser = subparsers.add_parser("login", help="log in with password + TOTP and print a token")
    parser.add_argument("--username", "-u")
    parser.add_argument("--totp", metavar="CODE", help="one-time code (prompted when omitted on a terminal)")
    parser.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    parser.add_argument("--url", help="login endpoint of a running guard, e.g. https://host/login")
    parser.add_argument("--export", action="store_true", help="print as a shell export of MCP_GUARD_TOKEN")
    add_config_options(parser)
    parser.set_defaults(func=_login)
