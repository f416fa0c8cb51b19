"""A 2025-11-25 session its client ends (``DELETE /mcp``) is on record, as one the cap ends is.

Found: the session gate audited a DELETE by anyone but the owner (refused) and a session the
per-principal cap closed, but not the owner's own DELETE: a session, with its subscriptions and
streams, ended and the trail never said when or from where.
"""

from __future__ import annotations

import httpx

from ..helpers import ListAuditor
from .test_session_binding import anonymous_server, delete, open_session, portal, post


def _ended(auditor: ListAuditor, session: str) -> list[tuple[str, str | None]]:
    return [
        (e.decision, e.principal["subject"] if e.principal else None)
        for e in auditor.events
        if e.session_id == session and e.method == "http/session" and e.decision == "allow"
    ]


async def test_a_session_its_owner_ends_is_audited_on_the_portal() -> None:
    auditor = ListAuditor()
    with portal(auditor) as url:
        async with httpx.AsyncClient(timeout=30) as http:
            session = await open_session(http, url, "tok-alice")
            assert await delete(http, url, "tok-alice", session) == 200
            assert await post(http, url, "tok-alice", session, "ping") == 404
    assert _ended(auditor, session) == [("allow", "alice")]
    (event,) = [e for e in auditor.events if e.session_id == session and e.method == "http/session"]
    assert event.source_ip == "127.0.0.1" and any("ended by its client" in r for r in event.reasons)


async def test_a_session_its_anonymous_owner_ends_is_audited_on_a_server() -> None:
    auditor = ListAuditor()
    with anonymous_server(auditor) as url:
        async with httpx.AsyncClient(timeout=30) as http:
            session = await open_session(http, url, None)
            assert await delete(http, url, None, session) == 200
    assert _ended(auditor, session) == [("allow", "anonymous")]
