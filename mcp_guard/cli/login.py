"""``mcp-guard login``: password + TOTP -> a short-lived token for MCP_GUARD_TOKEN.

Locally (``--config``: the users file, lockout state and signing keys of that
config) or against a running login endpoint (``--url``).
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from ..errors import ConfigError, GuardError, RateLimited


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

            async def body(store: StateStore) -> IssuedToken:
                service = build_login_service(ctx.settings, store, ctx.base_dir)
                if service is None:
                    raise ConfigError(
                        "no [authn.passwords] table", file=str(ctx.config), field="authn.passwords"
                    )
                result: IssuedToken = await service.login(username, password, code, source="local")
                return result

            token = run_with_store(ctx, body).access_token
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
