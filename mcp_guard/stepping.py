"""Asking the caller for a fresh MFA at call time (policy ``step_up`` with a step-up page).

2025-11-25 sessions whose client can elicit get an ``elicitation/create`` in
URL mode pointing at the step-up page; the call then waits (up to
:data:`STEP_UP_WAIT`) for the sign-in to be recorded and runs. Otherwise, and
on 2026-07-28, the call fails with -32042 (URL elicitation required) naming
the page; the caller signs in there and retries. A subject that stepped up
recently enough passes without being asked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio

from .errors import AccessDenied, StepUpRequired
from .model import Principal
from .ratelimit import subject_key

if TYPE_CHECKING:
    from .authn.stepup import StepUps
    from .pipeline import Exchange

#: How long a 2025-11-25 call waits for the sign-in after the user accepted to open the page.
STEP_UP_WAIT = 120.0
POLL = 0.25

__all__ = ["STEP_UP_WAIT", "step_up"]


async def step_up(
    step_ups: StepUps, principal: Principal, max_age: float, why: str, exchange: Exchange | None
) -> None:
    """Return when ``principal`` has an MFA within ``max_age``; else ask for one, or raise."""
    person = subject_key(principal)  # two issuers' "gary" are two people, with two MFAs
    age = await step_ups.mfa_age(person)
    if age is not None and age <= max_age:
        return
    step_id = await step_ups.begin(principal.subject, person)
    url = step_ups.link(step_id)
    message = "This call needs a recent sign-in with your one-time code. Open the link, sign in, and retry."
    caller = exchange.caller if exchange is not None else None
    elicit_url = getattr(caller, "elicit_url", None)
    if caller is not None and caller.era == "legacy" and caller.can_elicit() and elicit_url is not None:
        answer = await elicit_url(message, url, step_id)
        if answer != "accept":
            raise AccessDenied(f"{why}; the caller answered {answer!r} to the step-up link")
        with anyio.move_on_after(STEP_UP_WAIT):
            while True:
                age = await step_ups.mfa_age(person)
                if age is not None and age <= max_age:
                    return
                await anyio.sleep(POLL)
        raise AccessDenied(f"{why}; the sign-in at the step-up page did not happen in time")
    raise StepUpRequired(f"{why}; sent the step-up link", url=url, elicitation_id=step_id, message=message)
