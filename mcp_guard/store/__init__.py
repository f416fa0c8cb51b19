"""State stores: where counters, revocations, pins and approvals live.

Each implements :class:`~mcp_guard.protocols.StateStore`.
"""

from .memory import MemoryStore

__all__ = ["MemoryStore"]
