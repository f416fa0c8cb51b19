"""What an operator does to a portal's servers and pins, once, for ``mcp-guard servers`` and the console.

The listing of configured and registered servers, and approving or revoking
one by name, live here so the CLI and the admin console's Servers page act
the same way on the same state store. :func:`follow_pin_approvals` is how a
pin approval made anywhere (``mcp-guard pins approve`` on another host, the
console) reaches a running portal: approvals are published on the pin
channel, and the portal re-screens what its upstreams serve, so a re-approved
tool is listed and callable again at once.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

import anyio

from ..config import UpstreamSection
from .registry import Registry, Status

if TYPE_CHECKING:
    from ..sanitize.pins import PinStore
    from .state import PortalState

logger = logging.getLogger("mcp_guard.portal")


def configured_servers(portal: PortalState) -> list[UpstreamSection]:
    """The servers ``portal`` was given in its config (approved by being listed)."""
    return list(portal._configured.values())


async def server_rows(registry: Registry, configured: Iterable[UpstreamSection]) -> list[dict[str, Any]]:
    """Every server with where it comes from and its approval state, configured ones first.

    A configured server is ``approved`` by being listed unless its registry entry revokes it;
    a registered one has the status of its entry.
    """
    entries = {e.name: e for e in await registry.entries()}
    rows: list[dict[str, Any]] = []
    for spec in configured:
        entry = entries.pop(spec.name, None)
        rows.append(
            {
                "name": spec.name,
                "source": "config",
                "status": entry.status if entry is not None and entry.status == "revoked" else "approved",
                "target": spec.url or " ".join([spec.command or "", *spec.args]).strip(),
                "prefix": spec.effective_prefix,
                "changed_by": entry.changed_by if entry is not None else None,
                "changed_at": entry.changed_at if entry is not None else None,
            }
        )
    for entry in entries.values():
        d = entry.definition
        rows.append(
            {
                "name": entry.name,
                "source": "registry",
                "status": entry.status,
                "target": d.get("url") or " ".join([d.get("command", ""), *d.get("args", [])]).strip(),
                "prefix": d.get("prefix", f"{entry.name}__"),
                "changed_by": entry.changed_by,
                "changed_at": entry.changed_at,
            }
        )
    return rows


async def set_server_status(
    registry: Registry, name: str, status: Status, *, by: str, configured: Iterable[str] = ()
) -> bool:
    """Approve or revoke the server ``name`` (configured or registered); False when there is none."""
    known = await registry.get(name) is not None or name in set(configured)
    if not known:
        return False
    await registry.set_status(name, status, by=by)
    return True


async def follow_pin_approvals(
    pins: PinStore, rebuild: Callable[[], Awaitable[None]], retry: float = 2.0
) -> None:
    """Until cancelled: on every pin approval announced in the store, re-screen the upstreams' lists.

    The guard's own pin cache of the approved server is dropped first (its follower of the same
    channel may not have run yet), so the re-screening sees the approval.
    """
    while True:
        try:
            async for server in pins.store.subscribe(pins.channel):
                pins.forget(server)
                await rebuild()
        except Exception:
            logger.warning("pin approval subscription failed; following it again", exc_info=True)
        await anyio.sleep(retry)


__all__ = ["configured_servers", "follow_pin_approvals", "server_rows", "set_server_status"]
