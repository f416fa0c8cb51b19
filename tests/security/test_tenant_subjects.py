"""An admin of one tenant must not mint a key that is another tenant's person.

Budgets, flow marks and the cap on calls in flight are owned by the subject per issuer, and the
tenant is left out of that key on purpose (a person who may pick a tenant per token must not get
fresh counters with each). Stored API keys carry no issuer, and an admin bound to tenant ``acme``
may create keys for any subject name: a key for ``gary`` must not then spend ``globex``'s gary's
budget, arm flows that refuse his calls or fill his slots. A key of a tenant is vouched for by
that tenant's key book, so its subject is that tenant's person.
"""

from __future__ import annotations

from pathlib import Path

from mcp_guard.authn.api_keys import create_api_key, list_api_keys
from mcp_guard.inflight import InFlight
from mcp_guard.ratelimit import subject_key

from ..test_console import console_client, csrf, sign_in


async def test_a_tenant_admins_key_cannot_become_another_tenants_person(tmp_path: Path) -> None:
    async with console_client(tmp_path) as (portal, http):
        store = portal.guard.store
        assert store is not None
        admin_key, _ = await create_api_key(store, "tina", roles=["admin", "analyst"], tenant="acme")
        _, gary = await create_api_key(store, "gary", roles=["analyst"], tenant="globex")
        await sign_in(http, admin_key)
        token = csrf((await http.get("/admin/users")).text)
        form = {"subject": "gary", "roles": "analyst", "csrf": token}
        created = await http.post("/admin/keys", data=form)
        minted = [r for r, _ in await list_api_keys(store) if r.subject == "gary" and r.tenant == "acme"]
        if created.status_code != 200:
            assert not minted  # refused outright: nothing to share
            return
        (mine,) = minted
        victim, forged = gary.principal(), mine.principal()
        assert subject_key(forged) != subject_key(victim)  # budgets and flow marks
        assert InFlight.key(forged, "tickets") != InFlight.key(victim, "tickets")  # the cap
