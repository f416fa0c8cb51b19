"""A tenant's key named after another administrator cannot end that administrator's console sessions.

Each administrator has at most ``max_sessions_per_admin`` console sessions; signing in once more
ends their oldest. An admin bound to tenant ``acme`` may create keys for any subject name and
grant the roles they hold, an admin role included: a key named ``carol`` (the global
administrator) signing in again and again must count against its own sessions, not carol's.
"""

from __future__ import annotations

from pathlib import Path

from mcp_guard.authn.api_keys import create_api_key

from ..test_console import ADMIN_KEY, console_client, sign_in


async def test_a_namesakes_sign_ins_do_not_end_the_administrators_session(tmp_path: Path) -> None:
    console = "[console]\nmax_sessions_per_admin = 2\n"
    async with console_client(tmp_path, console=console) as (portal, http):
        store = portal.guard.store
        assert store is not None
        namesake, _ = await create_api_key(store, "carol", roles=["admin"], tenant="acme")

        assert (await sign_in(http, ADMIN_KEY)).status_code == 303
        carols = http.cookies["mcp_guard_console"]
        for _ in range(3):
            http.cookies.clear()
            assert (await sign_in(http, namesake)).status_code == 303

        http.cookies.clear()
        http.cookies.set("mcp_guard_console", carols, domain="127.0.0.1", path="/admin")
        assert (await http.get("/admin/approvals")).status_code == 200  # carol is still signed in
