"""Opening the state store named by a URL, for the command-line tools."""

from __future__ import annotations

from pathlib import Path

from ..protocols import StateStore

DEFAULT_STATE = "sqlite:///.mcp-guard/state.db"


def open_state(url: str, base_dir: Path | None = None) -> StateStore:
    """Open ``url`` (relative sqlite paths against ``base_dir``); errors are ConfigError."""
    from ..store import open_store

    return open_store(url, base_dir, field="guard.state")
