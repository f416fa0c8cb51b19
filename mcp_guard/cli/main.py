"""Entry point of the ``mcp-guard`` command.

Each command group lives in its own module of this package exposing
``register(subparsers)``; the module sets ``func`` on its parsers. Groups are
discovered from a fixed list so a missing optional group never breaks the rest.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from ..errors import ConfigError

#: Command-group modules, in help order.
GROUPS: tuple[str, ...] = (
    "demo",
    "serve",
    "policy",
    "scan",
    "auth",
    "keys",
    "users",
    "login",
    "audit",
    "servers",
    "pins",
    "approvals",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mcp-guard", description="Access control, policy, sanitizing and audit for MCP sessions."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in GROUPS:
        module_name = f"{__package__}.{name}"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            raise
        module.register(sub)
    return parser


#: Exit status when the reader of standard output went away (``| head``): 128 + SIGPIPE, as a
#: shell reports for a program the signal ended.
EXIT_BROKEN_PIPE = 141


def _drop_stdout() -> None:
    """Point standard output at /dev/null so the interpreter's last flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # stdout replaced by an object without a descriptor
        pass


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # inside the try: a reader that has gone away shows here, not at exit
        return code
    except BrokenPipeError:
        _drop_stdout()
        return EXIT_BROKEN_PIPE
    except ConfigError as exc:
        for line in str(exc).splitlines() or [""]:  # several errors of one file: one line each
            print(f"mcp-guard: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
