"""The console's HTML: one layout, small helpers, every value escaped on the way in.

Tool names, arguments, subjects and notes are chosen by callers and upstreams,
so nothing reaches a page without :func:`esc` (or :func:`attr` for an
attribute value); the helpers take plain values and return markup, and the
pages only concatenate their results. No script, no inline style: the CSP
(``default-src 'self'``) would refuse them, and the pages need neither.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from starlette.responses import HTMLResponse

from .sessions import ConsoleSession

#: Headers on every console response: no framing, no sniffing, no caching of admin pages, and no
#: referrer leaving the console (``same-origin``, not ``no-referrer``: under ``no-referrer`` browsers
#: send ``Origin: null`` with the console's own forms, which the cross-site check must refuse).
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'none'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

CSS = """
body { font-family: system-ui, sans-serif; margin: 0; color: #1d1d1f; background: #f6f6f8; }
header { background: #1d2a3a; color: #fff; padding: .6rem 1.2rem; display: flex; gap: 1.2rem;
  align-items: center; }
header a { color: #fff; text-decoration: none; font-weight: 600; }
header form { margin-left: auto; }
main { padding: 1rem 1.2rem; }
table { border-collapse: collapse; width: 100%; background: #fff; margin-bottom: 1.5rem; }
th, td { border: 1px solid #d8d8de; padding: .35rem .5rem; text-align: left; vertical-align: top;
  font-size: .9rem; }
th { background: #eceef3; }
code, pre { font-family: ui-monospace, monospace; font-size: .85rem; white-space: pre-wrap;
  word-break: break-all; }
.error { background: #fde8e8; border: 1px solid #e0a0a0; padding: .5rem; }
.ok { background: #e6f4ea; border: 1px solid #9fd0ab; padding: .5rem; }
.filters input, .filters select { margin-right: .5rem; }
button { cursor: pointer; }
"""


def esc(value: object) -> str:
    """Text content: every ``<``, ``>``, ``&`` and quote escaped; None is empty."""
    return "" if value is None else html.escape(str(value), quote=True)


def attr(value: object) -> str:
    """A quoted attribute value."""
    return '"' + esc(value) + '"'


def when(seconds: object) -> str:
    """An epoch time as ``YYYY-MM-DD HH:MM:SS UTC``."""
    if not isinstance(seconds, (int, float)):
        return ""
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def age(seconds: float) -> str:
    """A duration as ``42s``, ``5m``, ``3h``."""
    s = max(int(seconds), 0)
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m"
    return f"{s // 3600}h"


def as_json(value: Any) -> str:
    """A value as indented JSON text (ASCII only), escaped for a ``<pre>`` or ``<code>``."""
    return esc(json.dumps(value, indent=2, ensure_ascii=True, sort_keys=True, default=str))


def csrf_field(token: str) -> str:
    return f'<input type="hidden" name="csrf" value={attr(token)}>'


def table(headers: Iterable[str], rows: Iterable[Iterable[str]], empty: str) -> str:
    """A table of already-escaped cells (build cells with :func:`esc`)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    if not body:
        return f"<p>{esc(empty)}</p>"
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def page(title: str, body: str, session: ConsoleSession | None = None, status: int = 200) -> HTMLResponse:
    """The layout around ``body`` (markup); the navigation and sign-out form when signed in."""
    nav = ""
    if session is not None:
        nav = (
            '<a href="/admin/approvals">Approvals</a><a href="/admin/audit">Audit</a>'
            f'<form method="post" action="/admin/logout">{csrf_field(session.csrf)}'
            f'<span>{esc(session.subject)}</span> <button type="submit">Sign out</button></form>'
        )
    text = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)} - mcp-guard console</title>"
        '<link rel="stylesheet" href="/admin/static/console.css"></head>'
        f"<body><header><span>mcp-guard console</span>{nav}</header>"
        f"<main><h1>{esc(title)}</h1>{body}</main></body></html>"
    )
    return HTMLResponse(text, status_code=status)


def message(title: str, text: str, status: int, session: ConsoleSession | None = None) -> HTMLResponse:
    """A page that only says what went wrong (or right)."""
    css = "ok" if status < 400 else "error"
    return page(title, f'<p class="{css}">{esc(text)}</p>', session, status)
