"""The Audit page: filtered events, one event's detail, chain verification, export as JSON lines.

It reads the store ``mcp-guard audit query`` reads (the first ``sqlite://`` or
``jsonl://`` URL of ``[guard] audit``) with the same filters, and verifies the
chain as ``mcp-guard audit verify`` does, against the anchor, when asked (it reads
every event, so a page load does not pay for it; the page shows the last result). Stored records
are already redacted; what callers chose (tool names, arguments, subjects) is
escaped like everything else on the console's pages.

An administrator bound to a tenant reads only events whose principal belongs to
that tenant (a tenant filter in the store's query, so a page is full and the
export still streams); another tenant's event answers 404 like an unknown id.
Chain verification stays global: it tells whether the whole trail is intact,
never what an event holds.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote, urlencode

import anyio
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ..audit.chain import AnchorError, read_anchor
from ..audit.query import Filters, pages, parse_time, query
from ..audit.verify import StoreError, store_rows, verify_rows
from ..errors import ConfigError
from .core import AuditSource, Console
from .html import as_json, attr, esc, message, page, table, when
from .servers import tenant_of
from .sessions import ConsoleSession

#: Events one page shows (the newest matching ones).
PAGE = 200
#: Events the export reads and sends at a time.
EXPORT_PAGE = 500
DECISIONS = ("allow", "deny", "error")
_TEXT_FIELDS = ("subject", "server", "tool", "since", "until")


@dataclass(frozen=True, slots=True)
class Verification:
    ok: bool
    message: str
    anchor: str
    #: When it ran (epoch seconds).
    at: float = 0.0


def verify(source: AuditSource) -> Verification:
    """The chain's state as ``mcp-guard audit verify`` reports it, and the anchor it was checked against."""
    if source.path is None:
        return Verification(False, "no sqlite:// or jsonl:// store in [guard] audit", "")
    try:
        keys = source.settings.key_ring(source.base_dir, create=False)
        anchor_file = source.settings.resolve(source.base_dir).anchor_file
        assert anchor_file is not None
        anchor = read_anchor(anchor_file, keys)
        result = verify_rows(store_rows(source.path), keys, anchor)
    except (AnchorError, StoreError, ConfigError, OSError, ValueError) as exc:
        return Verification(False, str(exc), "")
    seen = f"event #{anchor.seq}, written {when(anchor.time)}" if anchor is not None else "none yet"
    return Verification(result.ok, result.message, seen)


def _verification(checked: Verification | None) -> str:
    """The last verification's outcome and a link that runs it again."""
    again = '<a href="/admin/audit/verify">Verify the chain now</a>'
    if checked is None:
        return f"<p>Chain verification: not run since the console started. {again}</p>"
    css = "ok" if checked.ok else "error"
    anchor = f" (anchor: {esc(checked.anchor)})" if checked.anchor else ""
    return (
        f'<p class="{css}">Chain verification at {esc(when(checked.at))}: {esc(checked.message)}{anchor}. '
        f"{again}</p>"
    )


async def verify_page(console: Console, request: Request) -> Response:
    """Verify the whole chain now (it reads every event: run on request, not on every page load)."""
    session = await console.admin(request)
    if console.audit is None:
        return message("Chain verification", "no audit store to verify", 503, session)
    checked = await anyio.to_thread.run_sync(verify, console.audit)
    console.verified = replace(checked, at=console.clock())
    back = '<p><a href="/admin/audit">Back to the audit trail</a></p>'
    return page("Chain verification", _verification(console.verified) + back, session)


def scoped(filters: Filters, session: ConsoleSession) -> Filters:
    """What ``session`` may read: an administrator bound to a tenant only events whose principal
    belongs to it (its callers' and its administrators' own console events); one of no tenant all."""
    return replace(filters, tenant=tenant_of(session))


def _filters(request: Request, session: ConsoleSession) -> tuple[Filters, dict[str, str]]:
    """The page's filters from the query string (also what the form shows), scoped to what the
    signed-in administrator may read; ConfigError for a bad time."""
    shown = {k: request.query_params.get(k, "").strip()[:256] for k in (*_TEXT_FIELDS, "decision")}
    decision = shown["decision"] if shown["decision"] in DECISIONS else ""
    shown["decision"] = decision
    since = parse_time(shown["since"]) if shown["since"] else None
    until = parse_time(shown["until"]) if shown["until"] else None
    filters = Filters(
        subject=shown["subject"] or None,
        server=shown["server"] or None,
        tool=shown["tool"] or None,
        decision=decision or None,
        since=since,
        until=until,
    )
    return scoped(filters, session), shown


def _form(shown: dict[str, str]) -> str:
    inputs = "".join(
        f'<label>{esc(name)} <input type="text" name={attr(name)} value={attr(shown[name])}></label> '
        for name in _TEXT_FIELDS
    )
    options = "".join(
        f"<option value={attr(d)}{' selected' if shown['decision'] == d else ''}>{esc(d or 'any')}</option>"
        for d in ("", *DECISIONS)
    )
    return (
        f'<form class="filters" method="get" action="/admin/audit">{inputs}'
        f'<label>decision <select name="decision">{options}</select></label> '
        '<button type="submit">Filter</button></form>'
        "<p>Times: ISO 8601, <code>today</code>, <code>yesterday</code>, or a time ago "
        "(<code>15m</code>, <code>24h</code>, <code>7d</code>).</p>"
    )


def _principal(record: dict[str, Any]) -> Any:
    principal = record.get("principal")
    return principal.get("subject") if isinstance(principal, dict) else None


def _event_url(record: dict[str, Any]) -> str:
    return "/admin/audit/events/" + quote(str(record.get("id", "")), safe="")


def _rows(records: list[dict[str, Any]]) -> list[list[str]]:
    return [
        [
            f"<a href={attr(_event_url(r))}>{esc(r.get('seq'))}</a>",
            esc(when(r.get("time"))),
            esc(_principal(r)),
            esc(r.get("method")),
            esc(r.get("server")),
            f"<code>{esc(r.get('target'))}</code>",
            esc(r.get("decision")),
            esc(r.get("rule")),
            esc("; ".join(str(x) for x in r.get("reasons") or ())),
        ]
        for r in records
    ]


async def _query(console: Console, filters: Filters, limit: int | None, newest: bool) -> list[dict[str, Any]]:
    source = console.audit
    if source is None or source.path is None:
        raise StoreError("no sqlite:// or jsonl:// store in [guard] audit to read")
    path = source.path
    return await anyio.to_thread.run_sync(lambda: query(path, filters, limit=limit, newest=newest))


async def audit_page(console: Console, request: Request) -> Response:
    session = await console.admin(request)
    try:
        filters, shown = _filters(request, session)
    except ConfigError as exc:
        return message("Audit", exc.detail, 400, session)
    try:
        records = await _query(console, filters, PAGE, newest=True)
    except StoreError as exc:
        return message("Audit", str(exc), 503, session)
    status = _verification(console.verified)
    if filters.tenant is not None:
        status += f"<p>Events of tenant <code>{esc(filters.tenant)}</code> only.</p>"
    export = "/admin/audit/export?" + urlencode({k: v for k, v in shown.items() if v})
    body = (
        status
        + _form(shown)
        + f"<p>{len(records)} newest matching events (at most {PAGE}). "
        + f"<a href={attr(export)}>Export matching events as JSON lines</a></p>"
        + table(
            ["Seq", "Time", "Subject", "Method", "Server", "Target", "Decision", "Rule", "Reasons"],
            _rows(list(reversed(records))),
            "No event matches.",
        )
    )
    return page("Audit", body, session)


async def event_page(console: Console, request: Request) -> Response:
    session = await console.admin(request)
    event_id = request.path_params["event_id"]
    try:
        found = await _query(console, scoped(Filters(event_id=event_id), session), 1, newest=False)
    except StoreError as exc:
        return message("Audit event", str(exc), 503, session)
    if not found:  # another tenant's event answers as an unknown one does
        return message("Audit event", f"no event {event_id}", 404, session)
    return page("Audit event", f"<pre>{as_json(found[0])}</pre>", session)


async def export(console: Console, request: Request) -> Response:
    """The matching events as JSON lines, streamed :data:`EXPORT_PAGE` at a time (a trail of
    millions of events never sits in memory).

    The export is audited, with its filters, before the first line is sent
    (``console/audit.export``), and again when it ends: ``console/audit.exported`` with the number
    of events sent, or, when the store fails part-way, a last line ``{"error": ..., "events": N}``
    in the download and a ``console/error`` event, so a short file never passes for a whole one.
    """
    session = await console.admin(request)
    try:
        filters, shown = _filters(request, session)
    except ConfigError as exc:
        return message("Audit", exc.detail, 400, session)
    source = console.audit
    if source is None or source.path is None:
        return message("Audit", "no sqlite:// or jsonl:// store in [guard] audit to read", 503, session)
    path = source.path
    batches = pages(path, filters, EXPORT_PAGE)
    try:  # the first page before the 200: an unreadable store is still a 503 page
        first = await anyio.to_thread.run_sync(next, batches, None)
    except StoreError as exc:
        return message("Audit", str(exc), 503, session)
    console.ready()
    started = console.event(
        "console/audit.export",
        "allow",
        session.principal,
        request,
        reasons=(f"filters {json.dumps(shown, sort_keys=True)}",),
    )
    await console.record_action(started, _nothing_sent, session=session)  # not on record: not sent

    async def lines() -> AsyncIterator[bytes]:
        batch, sent = first, 0
        try:
            while batch is not None:
                yield "".join(
                    json.dumps(r, ensure_ascii=True, separators=(",", ":")) + "\n" for r in batch
                ).encode()
                sent += len(batch)
                batch = await anyio.to_thread.run_sync(next, batches, None)
        except StoreError as exc:  # the headers are gone: the download and the trail say it ended short
            trailer = {"error": f"the export ended early: {exc}", "events": sent}
            console.record(
                "console/error",
                "error",
                session.principal,
                request,
                reasons=(f"audit export ended after {sent} events: {exc}",),
            )
            yield (json.dumps(trailer, ensure_ascii=True, separators=(",", ":")) + "\n").encode()
            return
        finally:
            batches.close()
        console.record(
            "console/audit.exported",
            "allow",
            session.principal,
            request,
            reasons=(f"{sent} events sent (export of event {started.id})",),
        )

    return StreamingResponse(
        lines(),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": 'attachment; filename="audit.jsonl"'},
    )


async def _nothing_sent() -> None:
    """An export whose start cannot be audited is not started: there is nothing to take back."""
