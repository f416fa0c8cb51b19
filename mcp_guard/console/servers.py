"""The Servers page: configured and registered upstreams, their health and approval, Approve / Revoke.

It lists what ``mcp-guard servers list`` lists and acts as ``servers approve``
and ``servers revoke`` do, through the same functions
(:mod:`mcp_guard.portal.admin`) on the same registry in the state store, so
every replica sharing the store follows the change at once. Health is what
this portal's supervisor knows of each upstream (up, starting, down, restarts,
last error). Servers are shared by every tenant: an administrator bound to a
tenant may read the page but not change them. **Approve** binds the
definition the page showed (name, source, target, prefix): if the server was
re-registered differently meanwhile, it is refused with 409. **Revoke** needs no
such binding: stopping a server is always safe.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..portal.admin import configured_servers, server_rows, set_server_status
from ..portal.registry import Registry
from ..sanitize.pins import item_hash
from .core import Console, Refused
from .html import attr, csrf_field, esc, message, page, table, when
from .sessions import ConsoleSession

_ACTIONS = {"approve": "approved", "revoke": "revoked"}
_HASH = re.compile(r"[0-9a-f]{64}")


def registry_of(console: Console) -> Registry | None:
    """The portal's registry, or one over the guard's state store; None without a store."""
    if console.portal is not None and console.portal.registry is not None:
        return console.portal.registry
    return Registry(console.guard.store) if console.guard.store is not None else None


def tenant_of(session: ConsoleSession) -> str | None:
    tenant = session.principal.get("tenant")
    return tenant if isinstance(tenant, str) else None


def global_admin(
    console: Console, request: Request, session: ConsoleSession, method: str, target: str
) -> None:
    """Refuse (403, audited) an administrator bound to a tenant acting on what every tenant shares."""
    if tenant_of(session) is None:
        return
    reason = "shared by every tenant: only an administrator of no tenant may change it"
    console.record(method, "deny", session.principal, request, reasons=(reason,), target=target)
    raise Refused(message("Forbidden", f"{target} is {reason}", 403, session))


def _health(console: Console, name: str) -> str:
    upstream = console.portal.upstreams.get(name) if console.portal is not None else None
    if upstream is None:
        return "not running"
    d = upstream.describe()
    items = ", ".join(
        f"{n} {k.replace('_', ' ')}{'' if n == 1 else 's'}" for k, n in sorted(d["items"].items()) if n
    )
    text = f"{d['state']}" + (f" ({items})" if items else "")
    if d["restarts"]:
        text += f"; {d['restarts']} restart(s)"
    if d["last_error"]:
        text += f"; last error: {d['last_error']}"
    return text


def version(row: dict[str, Any]) -> str:
    """The hash of what the page shows of a server: an approval binds it (``version`` field)."""
    return item_hash({k: row[k] for k in ("name", "source", "target", "prefix")})


#: What a tenant-bound administrator sees instead of buttons that would only answer 403.
SHARED = "shared by every tenant: only an administrator of no tenant may approve or revoke"


def _buttons(row: dict[str, Any], session: ConsoleSession) -> str:
    name, status, csrf = row["name"], row["status"], session.csrf
    if not csrf:
        return ""
    if tenant_of(session) is not None:
        return f"<span>{esc(SHARED)}</span>"
    buttons = "".join(
        f' <button type="submit" name="action" value="{action}">{action.capitalize()}</button>'
        for action, becomes in _ACTIONS.items()
        if becomes != status
    )
    target = attr("/admin/servers/" + quote(name, safe=""))
    bound = f'<input type="hidden" name="version" value="{version(row)}">'
    return f'<form method="post" action={target}>{csrf_field(csrf)}{bound}{buttons}</form>'


async def servers_page(console: Console, request: Request) -> Response:
    session = await console.admin(request)
    registry = registry_of(console)
    if registry is None:
        return message("Servers", "no state store ([guard] state): the server registry is unavailable", 503)
    configured = configured_servers(console.portal) if console.portal is not None else []
    rows = [
        [
            f"<code>{esc(r['name'])}</code>",
            esc(r["source"]),
            esc(r["status"]),
            esc(_health(console, r["name"])),
            f"<code>{esc(r['prefix'])}</code>",
            f"<code>{esc(r['target'])}</code>",
            esc(r["changed_by"]) + (f" {esc(when(r['changed_at']))}" if r["changed_at"] else ""),
            _buttons(r, session),
        ]
        for r in await server_rows(registry, configured)
    ]
    body = (
        "<p>Configured servers are approved by being listed in guard.toml; servers registered with "
        "<code>mcp-guard servers add</code> wait as pending until approved. Revoking stops serving a "
        "server on every replica.</p>"
        + table(
            ["Name", "Source", "Status", "Health", "Prefix", "Target", "Last change", "Action"],
            rows,
            "No server is configured or registered.",
        )
    )
    return page("Servers", body, session)


async def change(console: Console, request: Request) -> Response:
    session = await console.admin(request, write=True)
    fields = await console.form(request, session)
    name = request.path_params["name"]
    action = fields.get("action", "")
    if action not in _ACTIONS:
        why = (f"unknown action {action[:40]!r}",)
        console.record("console/servers.change", "deny", session.principal, request, reasons=why, target=name)
        return message("Bad request", "choose Approve or Revoke", 400, session)
    method = f"console/servers.{action}"
    shown = fields.get("version", "")
    if action == "approve" and not _HASH.fullmatch(shown):  # approving binds the definition shown
        why = ("no version named",)
        console.record(method, "deny", session.principal, request, reasons=why, target=name)
        return message("Bad request", "the form names no version: reload the Servers page", 400, session)
    global_admin(console, request, session, method, name)
    registry = registry_of(console)
    if registry is None:
        return message("Unavailable", "no state store: the server registry is unavailable", 503, session)
    console.ready()
    specs = configured_servers(console.portal) if console.portal is not None else []
    configured = [s.name for s in specs]
    row = next((r for r in await server_rows(registry, specs) if r["name"] == name), None)
    if row is not None and row["status"] == _ACTIONS[action]:  # a second submission: the first stands
        why = (f"already {row['status']}",)
        console.record(method, "deny", session.principal, request, reasons=why, target=name)
        return message("Conflict", f"server {name!r} is already {row['status']}", 409, session)
    if action == "approve" and row is not None and version(row) != shown:
        why = ("the server's definition changed since the page was shown",)
        console.record(method, "deny", session.principal, request, reasons=why, target=name)
        return message(
            "Conflict",
            "the server's definition changed since the page was shown: review it again",
            409,
            session,
        )
    before = await registry.get(name)
    done = await set_server_status(
        registry,
        name,
        _ACTIONS[action],  # type: ignore[arg-type]
        by=session.subject,
        configured=configured,
    )
    if not done:
        console.record(method, "deny", session.principal, request, reasons=("no such server",), target=name)
        return message("Not found", f"no server named {name!r}", 404, session)
    await console.record_action(
        console.event(method, "allow", session.principal, request, server=name, target=name, kind="server"),
        lambda: registry.restore(name, before),
        session=session,
    )
    return RedirectResponse("/admin/servers", status_code=303)
