"""The Pins page: changed or new definitions waiting for re-approval, each with a per-field diff.

It shows what ``mcp-guard pins diff`` shows, as a unified diff per changed
field (lines removed from the approved version marked ``-``, lines added in
the pending one ``+``), and what the sanitizers find in the pending version.
**Approve** does what ``mcp-guard pins approve SERVER NAME --kind KIND`` does,
through the guard's own pin store: the approval is announced on the store's
pin channel, and every running portal sharing the store re-screens its
upstreams' lists, so callers see the approved definition at once. A decision
names the version the page showed (its hash): if the upstream changed the
definition again meanwhile, it is refused with 409 and nothing is approved. **Keep
withheld** only puts the administrator's decision on record: the item stays
pending and withheld, as it is until someone approves it.

Descriptions and schemas come from upstreams and may be written to attack
whoever reads them; every line is escaped, and shown as text, never markup.
"""

from __future__ import annotations

import difflib
import json
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..sanitize.pins import FieldChange, PinEntry, PinStore
from .core import Console
from .html import attr, csrf_field, esc, message, page, table
from .servers import SHARED, global_admin, tenant_of

_KINDS = ("tool", "prompt", "resource", "resource_template")
#: The most lines of one field's diff shown (a schema can be long; the CLI has the rest).
MAX_LINES = 400
#: The SHA-256 of the pending version a decision is about (``PinEntry.pending_hash``).
_HASH = re.compile(r"[0-9a-f]{64}")


def _lines(value: Any) -> list[str]:
    """A field's value as lines: text as written, anything else as indented JSON."""
    if value is None:
        return []
    if isinstance(value, str):
        return value.splitlines() or [""]
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
    return text.splitlines() or [""]


def field_diff(change: FieldChange) -> str:
    """One field's unified diff as escaped markup: ``-`` lines removed, ``+`` lines added."""
    old, new = _lines(change.old), _lines(change.new)
    out: list[str] = []
    for line in list(difflib.unified_diff(old, new, "approved", "pending", n=3, lineterm=""))[2:]:
        if len(out) >= MAX_LINES:
            out.append('<span class="hunk">... (more lines: see mcp-guard pins diff)</span>')
            break
        css = {"+": "add", "-": "del", "@": "hunk"}.get(line[:1])
        text = esc(line)
        out.append(f'<span class="{css}">{text}</span>' if css else f"<span>{text}</span>")
    return '<pre class="diff">' + "\n".join(out) + "</pre>"


def _findings(console: Console, kind: str, item: Any) -> str:
    if not isinstance(item, dict):
        return ""
    try:
        found = console.guard.scan_item(kind, item).findings
    except Exception as exc:  # a failing sanitizer is a finding too: the item stays withheld
        return f'<p class="error">the sanitizers could not scan it ({esc(type(exc).__name__)})</p>'
    if not found:
        return "<p>Sanitizers: no finding in the pending version.</p>"
    rows = [[esc(f.severity), esc(f.rule), f"<code>{esc(f.field)}</code>", esc(f.message)] for f in found]
    return "<p>Sanitizers' findings in the pending version:</p>" + table(
        ["Severity", "Rule", "Field", "Finding"], rows, ""
    )


def _form(entry: PinEntry, csrf: str) -> str:
    if not csrf:
        return ""
    hidden = "".join(
        f'<input type="hidden" name="{k}" value={attr(v)}>'
        for k, v in (
            ("server", entry.server),
            ("kind", entry.kind),
            ("name", entry.name),
            ("hash", entry.pending_hash),
        )
    )
    return (
        f'<form method="post" action="/admin/pins">{csrf_field(csrf)}{hidden}'
        '<button type="submit" name="decision" value="approve">Approve</button>'
        ' <button type="submit" name="decision" value="withhold">Keep withheld</button></form>'
    )


async def _item(console: Console, pins: PinStore, entry: PinEntry, csrf: str) -> str:
    changes = await pins.diff(entry.server, entry.kind, entry.name) or []
    _, pending = await pins.versions(entry.server, entry.kind, entry.name)
    head = (
        f"<h3><code>{esc(entry.server)}</code> {esc(entry.kind)} <code>{esc(entry.name)}</code> "
        f"({'changed since approval' if entry.status == 'changed' else 'new, never approved'})</h3>"
    )
    rows = [[f"<code>{esc(c.path or '/')}</code>", esc(c.change), field_diff(c)] for c in changes]
    return (
        head
        + table(["Field", "Change", "Diff (- approved, + pending)"], rows, "No field differs.")
        + _findings(console, entry.kind, pending)
        + _form(entry, csrf)
    )


async def pins_page(console: Console, request: Request) -> Response:
    session = await console.admin(request)
    pins = console.guard.pins
    if pins is None:
        return message("Pins", "pinning is off ([sanitize] pin): nothing is pinned", 200, session)
    entries = await pins.list()
    waiting = [e for e in entries if e.status != "pinned"]
    # An administrator bound to a tenant may read what waits but not decide it (403): no buttons.
    bound = tenant_of(session) is not None
    parts = [await _item(console, pins, e, "" if bound else session.csrf) for e in waiting]
    summary = f"<p>{len(waiting)} item(s) withheld until approved; {len(entries) - len(waiting)} pinned.</p>"
    if bound and waiting:
        summary += f"<p>Pins are {esc(SHARED)}.</p>"
    body = summary + ("".join(parts) if parts else "<p>Nothing waits for re-approval.</p>")
    return page("Pins", body, session)


async def decide(console: Console, request: Request) -> Response:
    session = await console.admin(request, write=True)
    fields = await console.form(request, session)
    server, kind, name = fields.get("server", ""), fields.get("kind", ""), fields.get("name", "")
    decision, shown = fields.get("decision"), fields.get("hash", "")
    if decision not in ("approve", "withhold") or kind not in _KINDS or not server or not name:
        why = ("the form names no pending item or decision",)
        target = name[:200]
        console.record("console/pins.decide", "deny", session.principal, request, reasons=why, target=target)
        return message("Bad request", "name a pending item and choose Approve or Keep withheld", 400, session)
    method = f"console/pins.{decision}"
    what = {"server": server, "kind": kind, "target": name}
    if not _HASH.fullmatch(shown):  # a decision binds the exact version the page showed
        console.record(method, "deny", session.principal, request, reasons=("no version named",), **what)
        return message("Bad request", "the form names no version: reload the Pins page", 400, session)
    global_admin(console, request, session, method, f"{kind} {name!r} of {server!r}")
    pins = console.guard.pins
    if pins is None:
        return message("Unavailable", "pinning is off", 503, session)
    console.ready()
    current = {(e.kind, e.name): e.pending_hash for e in await pins.list(server)}.get((kind, name))
    if current is None:
        console.record(method, "deny", session.principal, request, reasons=("nothing pending",), **what)
        return message("Not found", f"nothing pending for {kind} {name!r} of {server!r}", 404, session)
    # ``digest`` binds the approval itself too: a change landing between these lines is not approved.
    changed = current != shown
    if not changed and decision == "approve":
        changed = not await pins.approve(server, kind, name, digest=shown)
    if changed:
        why = ("the pending version changed since the page was shown",)
        console.record(method, "deny", session.principal, request, reasons=why, **what)
        return message(
            "Conflict", "the definition changed since the page was shown: review it again", 409, session
        )
    await console.record_action(
        console.event(method, "allow", session.principal, request, **what), session=session
    )
    return RedirectResponse("/admin/pins", status_code=303)
