"""The cookies an HTTP upstream sets, kept for the lean upstream client (:mod:`.upstream_http`).

A balancer's affinity cookie keeps a session on one replica, so cookies the
upstream sets are sent back, as httpx2's client does. One jar serves one
upstream origin and path, so only names and values are kept. The jar is bounded
(RFC 6265's minimums: 50 cookies, 4096 bytes): an upstream setting new cookies on
every answer can neither grow the portal's memory nor every later request.
"""

from __future__ import annotations

import http.cookies

#: Cookies kept at most, and their total size as sent (``name=value; `` each).
MAX_COOKIES = 50
MAX_COOKIE_BYTES = 4096


class CookieJar:
    """Names and values the upstream set, within the bounds above; a cookie past them is ignored."""

    def __init__(self) -> None:
        self.cookies: dict[str, str] = {}

    def keep(self, header: str) -> None:
        """Take one ``Set-Cookie`` header; a malformed one is ignored, an expired one removes its cookie."""
        jar = http.cookies.SimpleCookie()
        try:
            jar.load(header)
        except http.cookies.CookieError:
            return
        for name, morsel in jar.items():
            if morsel["max-age"] in ("0", "-1") or not morsel.value:
                self.cookies.pop(name, None)
                continue
            kept = {**self.cookies, name: morsel.coded_value}
            if len(kept) <= MAX_COOKIES and _size(kept) <= MAX_COOKIE_BYTES:
                self.cookies = kept

    def header(self) -> bytes | None:
        """The ``Cookie`` header to send, or None while the jar is empty."""
        if not self.cookies:
            return None
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items()).encode("latin-1")


def _size(cookies: dict[str, str]) -> int:
    return sum(len(k) + len(v) + 3 for k, v in cookies.items())
