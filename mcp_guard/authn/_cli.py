"""Shared plumbing of the authentication command groups (auth, keys, users, login)."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import anyio

from ..errors import ConfigError
from ..protocols import StateStore
from ._store import DEFAULT_STATE, open_state
from .config import AuthnSettings, load_config_file

T = TypeVar("T")


@dataclass
class CliContext:
    settings: AuthnSettings
    state_url: str
    base_dir: Path
    config: Path | None


def context(args: argparse.Namespace) -> CliContext:
    config: Path | None = getattr(args, "config", None)
    if config is not None:
        settings, state, base = load_config_file(config)
    else:
        settings, state, base = AuthnSettings(), DEFAULT_STATE, Path.cwd()
    override = getattr(args, "state", None)
    if override:
        state = override
    return CliContext(settings, state, base, config)


def run_with_store(ctx: CliContext, body: Callable[[StateStore], Awaitable[T]]) -> T:
    async def main() -> T:
        store = open_state(ctx.state_url, ctx.base_dir)
        try:
            return await body(store)
        finally:
            await store.aclose()

    return anyio.run(main)


def read_secret(prompt: str, *, from_stdin: bool, confirm: bool = False) -> str:
    """A password from stdin (one line) or an interactive prompt without echo."""
    if from_stdin or not sys.stdin.isatty():
        line = sys.stdin.readline()
        if not line:
            raise ConfigError("no password on standard input")
        return line.rstrip("\r\n")
    first = getpass.getpass(prompt)
    if confirm and getpass.getpass("again: ") != first:
        raise ConfigError("passwords do not match")
    return first


def one_line(text: str) -> str:
    return " ".join(text.split())
