"""Options several command groups share, declared without importing what the commands run.

``mcp-guard --help`` and ``mcp-guard SUB --help`` build every parser; keeping this
module free of the SDK, pydantic and the crypto libraries keeps them instant.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..config import GuardConfig
    from ..policy import CompiledPolicy

#: The state store when neither ``--state`` nor ``[guard] state`` names one.
DEFAULT_STATE = "sqlite:///.mcp-guard/state.db"
#: Where ``servers`` keeps the AES key of stored upstream credentials (beside the config).
SECRETS_KEY_FILE = ".mcp-guard/secrets.key"


def add_config_options(
    parser: argparse.ArgumentParser, *, state: bool = True, config_required: bool = False
) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        required=config_required,
        help="guard config (TOML) with an [authn] table",
    )
    if state:
        parser.add_argument(
            "--state",
            metavar="URL",
            help=f"state store URL (default: [guard] state of --config, else {DEFAULT_STATE})",
        )


def add_functions_option(parser: argparse.ArgumentParser) -> None:
    """``--functions MODULE:ATTR``: condition functions for a policy, without publishing a package."""
    parser.add_argument(
        "--functions",
        action="append",
        metavar="MODULE:ATTR",
        help="condition functions the policy calls: a function or a mapping of them, imported from"
        " the current directory or the Python path; repeat for several",
    )


def load_policies(
    args: argparse.Namespace, *paths: str | Path, config: GuardConfig | None = None
) -> CompiledPolicy:
    """Load policy files with the functions of ``--functions`` (and of ``config``'s ``[guard]``)."""
    from ..policy import load_policy
    from ..policy.functionrefs import import_functions

    functions: dict[str, Any] = {}
    if config is not None:
        refs = config.guard.policy_functions
        functions.update(import_functions(refs, config.base_dir, "guard.policy_functions"))
    functions.update(import_functions(getattr(args, "functions", None) or (), Path.cwd(), "--functions"))
    return load_policy(*paths, functions=functions or None)
