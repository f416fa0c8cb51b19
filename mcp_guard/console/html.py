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
body { font-family: system-ui, sans-serif; margin: 0; color: #1d1d1f; background: #f6f6f8; line-height: 1.4; }
header { background: #1d2a3a; color: #fff; padding: .6rem 1.2rem; display: flex; gap: 1.2rem;
  align-items: center; }
header > span { font-weight: 700; letter-spacing: .02em; margin-right: .6rem; }
header a { color: #cfe0f5; text-decoration: none; font-weight: 600; }
header a:hover { color: #fff; }
header form { margin-left: auto; display: flex; gap: .6rem; align-items: center; }
main { padding: .4rem 1.2rem 1.5rem; max-width: 90rem; }
h1 { font-size: 1.5rem; margin: .8rem 0; }
h2 { font-size: 1.15rem; margin: 1.2rem 0 .5rem; }
table { border-collapse: collapse; width: 100%; background: #fff; margin-bottom: 1.5rem; }
th, td { border: 1px solid #d8d8de; padding: .35rem .5rem; text-align: left; vertical-align: top;
  font-size: .9rem; }
th { background: #eceef3; }
tbody tr:nth-child(even) { background: #fafafc; }
code, pre { font-family: ui-monospace, monospace; font-size: .85rem; white-space: pre-wrap;
  overflow-wrap: break-word; }
pre { margin: 0; }
main > pre { background: #fff; border: 1px solid #d8d8de; border-radius: 6px; padding: .6rem .8rem; }
input[type=text], input[type=password], select { padding: .3rem .4rem; border: 1px solid #b8bcc6;
  border-radius: 4px; font: inherit; font-size: .9rem; }
button { cursor: pointer; padding: .3rem .8rem; border: 1px solid #8a93a6; border-radius: 4px;
  background: #fff; font: inherit; font-size: .9rem; }
button[value=approve] { background: #1f7a3a; border-color: #1f7a3a; color: #fff; }
button[value=deny] { background: #fff; border-color: #b42318; color: #b42318; }
header button { background: transparent; color: #fff; border-color: #6d7d93; }
td form { display: flex; flex-wrap: wrap; gap: .3rem; }
td form input[name=note] { flex: 1 1 10rem; }
main > form[action="/admin/login"] { background: #fff; border: 1px solid #d8d8de; border-radius: 6px;
  padding: .4rem 1rem; max-width: 26rem; }
main > form[action="/admin/login"] input { width: 100%; box-sizing: border-box; margin-top: .2rem; }
main > form[action="/admin/login"] label { display: block; }
.error { background: #fde8e8; border: 1px solid #e0a0a0; padding: .5rem; }
.ok { background: #e6f4ea; border: 1px solid #9fd0ab; padding: .5rem; }
pre.diff { white-space: normal; }  /* one block per line: no blank line between them */
.diff span { display: block; white-space: pre-wrap; }
.diff .add { background: #e6f4ea; display: block; }
.diff .del { background: #fde8e8; display: block; }
.diff .hunk { color: #6b6b75; display: block; }
.chart { background: #fff; border: 1px solid #d8d8de; max-width: 100%; height: auto; }
.chart .calls { fill: #5b7db1; }
.chart .denials { fill: #c0392b; }
.chart .axis { stroke: #8a8a94; }
.chart text { fill: #4a4a52; font-size: 11px; }
.key { font-family: ui-monospace, monospace; font-size: 1rem; background: #fff8db; border: 1px solid #e0c96b;
  padding: .5rem; }
.filters { display: flex; flex-wrap: wrap; gap: .4rem 1rem; align-items: center; }
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
            '<a href="/admin/overview">Overview</a><a href="/admin/approvals">Approvals</a>'
            '<a href="/admin/servers">Servers</a><a href="/admin/pins">Pins</a>'
            '<a href="/admin/users">Users and keys</a><a href="/admin/audit">Audit</a>'
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
