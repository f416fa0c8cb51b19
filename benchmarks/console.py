"""Admin console page times against a trail of N events and P pending approval requests.

The Audit page runs the newest-200 query; verifying the chain (on request) and the export read
every event, so their time grows with the trail. Measured
in process through httpx's ASGI transport (no network), median of 5 loads each.

Run: .venv/bin/python benchmarks/console.py [N] [P]
"""

from __future__ import annotations

import hashlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
import httpx

from mcp_guard.config import load_config
from mcp_guard.model import AuditEvent
from mcp_guard.portal import Portal

N = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
P = int(sys.argv[2]) if len(sys.argv) > 2 else 50
KEY = "bench-admin-key"
PAGES = (
    "/admin/overview",
    "/admin/servers",
    "/admin/pins",
    "/admin/users",
    "/admin/approvals",
    "/admin/audit",
    "/admin/audit?decision=deny",
    "/admin/audit/verify",
    "/admin/audit/export",
)


def config(root: Path) -> Path:
    path = root / "guard.toml"
    path.write_text(
        f"""
[guard]
state = "sqlite:///state.db"
audit = ["sqlite:///audit.db"]

[[authn.api_keys]]
subject = "admin"
key_sha256 = "{hashlib.sha256(KEY.encode()).hexdigest()}"
roles = ["admin"]
"""
    )
    return path


async def timed(http: httpx.AsyncClient, path: str) -> float:
    samples = []
    for _ in range(5):
        started = time.perf_counter()
        response = await http.get(path, headers={"Authorization": f"Bearer {KEY}"})
        samples.append(time.perf_counter() - started)
        assert response.status_code == 200, (path, response.status_code)
    return statistics.median(samples) * 1000


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        portal = Portal.from_guard_config(load_config(config(Path(tmp))))
        guard = portal.guard
        guard.approvals.notifiers = ()  # no log line per request
        for i in range(N):
            decision = "deny" if i % 7 == 0 else "allow"
            guard.record_nowait(
                AuditEvent(method="tools/call", decision=decision, server="notes", target=f"tool{i % 40}")
            )
        guard.auditor.flush()  # type: ignore[union-attr]
        for i in range(P):
            await guard.approvals.open_for(
                subject=f"user{i}",
                tenant=None,
                server="notes",
                kind="tool",
                target="delete_note",
                arguments={"id": i},
                shown_arguments={"id": i},
                rule="deletes-need-approval",
                approvers=["admin"],
                timeout=600,
            )
        transport = httpx.ASGITransport(app=portal.streamable_http_app())
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            print(f"trail: {N} events, {P} pending approval requests")
            for path in PAGES:
                print(f"GET {path:32} {await timed(http, path):8.1f} ms")
        await guard.aclose()


if __name__ == "__main__":
    anyio.run(main)
