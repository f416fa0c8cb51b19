"""Options several command groups share, declared without importing what the commands run.

``mcp-guard --help`` and ``mcp-guard SUB --help`` build every parser; keeping this
module free of the SDK, pydantic and the crypto libraries keeps them instant.
"""

from __future__ import annotations

import argparse
from pathlib import Path

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
