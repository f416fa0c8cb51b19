"""A fresh MFA is the person's who signed in on the step-up page, not every holder of their name.

An admin bound to tenant ``acme`` may create a key for any subject name, and two identity
providers may each name someone ``gary``. When gary steps up (password and one-time code on the
step-up page), a rule's ``step_up`` must then pass for gary's own calls only: a key named
``gary`` that another tenant's admin minted, or another issuer's gary, still has to step up, and
only gary's password completes that.
"""

from __future__ import annotations

import httpx
import pytest

from mcp_guard.authn.stepup import StepUps
from mcp_guard.errors import StepUpRequired
from mcp_guard.model import Principal
from mcp_guard.stepping import step_up
from mcp_guard.store import MemoryStore

LOCAL_GARY = Principal("gary", issuer="mcp-guard", auth_method="password")
ACME_KEY_GARY = Principal("gary", tenant="acme", auth_method="api_key")
OTHER_ISSUER_GARY = Principal("gary", issuer="https://idp-b.example", auth_method="jwt")


async def _step(step_ups: StepUps, who: Principal) -> str:
    with pytest.raises(StepUpRequired) as asked:
        await step_up(step_ups, who, 900.0, "needs MFA", None)
    return httpx.URL(asked.value.url).params["id"]


@pytest.mark.parametrize("namesake", [ACME_KEY_GARY, OTHER_ISSUER_GARY])
async def test_a_namesake_does_not_ride_on_the_persons_step_up(namesake: Principal) -> None:
    step_ups = StepUps(MemoryStore(), "http://guard.test/login/step-up")
    step_id = await _step(step_ups, LOCAL_GARY)
    assert await step_ups.complete(step_id, "gary")  # gary signed in on the page
    await step_up(step_ups, LOCAL_GARY, 900.0, "needs MFA", None)  # gary's retry runs

    await _step(step_ups, namesake)  # the namesake is asked, as anyone without an MFA


async def test_a_namesakes_step_up_is_completed_only_by_the_person() -> None:
    step_ups = StepUps(MemoryStore(), "http://guard.test/login/step-up")
    step_id = await _step(step_ups, ACME_KEY_GARY)
    assert not await step_ups.complete(step_id, "mallory")
    step_id = await _step(step_ups, ACME_KEY_GARY)
    assert await step_ups.complete(step_id, "gary")
    await step_up(step_ups, ACME_KEY_GARY, 900.0, "needs MFA", None)
