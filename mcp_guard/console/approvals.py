"""The Approvals page: pending requests with Approve / Deny, decided ones below.

Decisions go through the guard's :class:`~mcp_guard.approvals.ApprovalBook`,
as ``mcp-guard approvals approve`` does: the book refuses a request that is no
longer pending, one the administrator asked for themselves, and an
administrator holding none of its approver roles; a caller waiting on the
request wakes as soon as it is decided.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..approvals import ApprovalError, ApprovalRequest, Approver
from .core import Console
from .html import age, as_json, attr, csrf_field, esc, message, page, table, when
from .sessions import ConsoleSession

#: The longest note kept with a decision.
MAX_NOTE = 1000


def _target(r: ApprovalRequest) -> str:
    return f"<code>{esc(r.target)}</code>" + (f" ({esc(r.kind)})" if r.kind and r.kind != "tool" else "")


def _buttons(r: ApprovalRequest, csrf: str) -> str:
    return (
        f'<form method="post" action={attr("/admin/approvals/" + quote(r.id, safe=""))}>{csrf_field(csrf)}'
        '<input type="text" name="note" placeholder="note (optional)" maxlength="1000">'
        ' <button type="submit" name="decision" value="approve">Approve</button>'
        ' <button type="submit" name="decision" value="deny">Deny</button></form>'
    )


def approver_of(session: ConsoleSession) -> Approver:
    """Who the admin is to the approval book (what `approvals list --as` would name)."""
    tenant = session.principal.get("tenant")
    return Approver(session.subject, tenant if isinstance(tenant, str) else None, frozenset(session.roles))


async def approvals_page(console: Console, request: Request) -> Response:
    session = await console.admin(request)
    # The same view as ``approvals list --as``: the admin's tenant, what they asked for or may decide.
    everything = await console.guard.approvals.list(everything=True, viewer=approver_of(session))
    now = console.clock()
    pending = [r for r in everything if r.status == "pending"]
    decided = sorted(
        (r for r in everything if r.status != "pending"), key=lambda r: -(r.decided_at or r.requested_at)
    )
    pending_rows = [
        [
            f"<code>{esc(r.id)}</code>",
            esc(r.subject),
            esc(r.server),
            _target(r),
            f"<pre>{as_json(dict(r.arguments))}</pre>",
            esc(r.rule),
            esc(age(now - r.requested_at)),
            _buttons(r, session.csrf) if session.csrf else "",
        ]
        for r in pending
    ]
    decided_rows = [
        [
            f"<code>{esc(r.id)}</code>",
            esc(r.status),
            esc(r.subject),
            esc(r.server),
            _target(r),
            esc(r.rule),
            esc(r.decided_by),
            esc(when(r.decided_at)),
            esc(r.note),
        ]
        for r in decided
    ]
    body = (
        "<h2>Pending</h2>"
        + table(
            ["Id", "Subject", "Server", "Tool", "Arguments", "Rule", "Age", "Decision"],
            pending_rows,
            "No request waits for a decision.",
        )
        + "<h2>Decided</h2>"
        + table(
            ["Id", "Status", "Subject", "Server", "Tool", "Rule", "Decided by", "At", "Note"],
            decided_rows,
            "No decided request is kept.",
        )
    )
    return page("Approvals", body, session)


async def decide(console: Console, request: Request) -> Response:
    session = await console.admin(request, write=True)
    fields = await console.form(request, session)
    request_id = request.path_params["request_id"]
    verdict = fields.get("decision")
    note = fields.get("note", "").strip()[:MAX_NOTE] or None
    if verdict not in ("approve", "deny"):
        return message("Bad request", "choose Approve or Deny", 400, session)
    console.ready()
    method = f"console/approvals.{verdict}"
    try:
        decided = await console.guard.approvals.decide(
            request_id,
            verdict == "approve",
            by=session.subject,
            roles=frozenset(session.roles),
            note=note,
            tenant=approver_of(session).tenant,  # tenants bound approvals here as in the CLI
        )
    except ApprovalError as exc:
        console.record(method, "deny", session.principal, request, reasons=(str(exc),), target=request_id)
        return message("Not decided", str(exc), 404 if exc.unknown else 409, session)
    await console.record_action(
        console.event(
            method,
            "allow",
            session.principal,
            request,
            server=decided.server,
            kind=decided.kind,
            target=decided.target,
            rule=decided.rule,
            reasons=(note,) if note else (),
            approval=decided.audit(),
        ),
        session=session,  # a decision already reached a waiting call: it stands (the call is audited)
    )
    return RedirectResponse("/admin/approvals", status_code=303)
