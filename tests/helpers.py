"""Helpers shared by end-to-end tests: start a project the way a lead would."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import time_machine

# The traveller of the running test's clock (the autouse `clock` fixture in conftest.py sets it).
TEST_CLOCK: list[time_machine.Traveller] = []

LEAD = "U0QILEAD01"
MIDWIFE = "U0MIDWIFE1"
ANALYST = "U0ANALYST1"
CHANNEL = "C0MATERNITY"
OTHER_CHANNEL = "C0OTHERTEAM"

PROJECT_FORM = {
    "project_name": "Reducing PPH inequity",
    "project_aim": "Reduce PPH among Black women from 12% to 6% by March 2027",
    "project_focus_groups": ["N", "M"],
}


def clock_now() -> datetime:
    """The instant the running test's own clock shows: the fixed start it chose (DEFAULT_NOW unless marked), plus
    the time the test has run. Fails outside a test, so no helper can quietly read today's date."""
    assert TEST_CLOCK, "no test clock is running: use the clock fixture"
    return datetime.fromtimestamp(TEST_CLOCK[-1].time_ns() / 1e9, UTC)


def start_project(live: Any, channel: str = CHANNEL, lead: str = LEAD, **form: Any) -> dict[str, Any]:
    """Run /mfi new and submit a valid form; returns the card message's payload."""
    # The bot must be in the channel (Slack's stand-in seeds it there; add_channel(bot_is_member=...) says so):
    # otherwise /mfi new answers with how to invite it and opens no form.
    assert live.standin.team().bot_user_id in live.standin.channel(channel).members, (
        f"the bot is not in {channel}"
    )
    opened = live.driver.slash("/mfi", "new", user=lead, channel=channel)
    view = opened.wait_view()
    response = live.driver.submit_view(view["id"], {**PROJECT_FORM, **form}, user=lead)
    assert response.status == 200 and not response.body, response.body
    message = live.standin.wait_for(lambda: live.standin.last_message(channel))
    return {"view": view, "message": message}
