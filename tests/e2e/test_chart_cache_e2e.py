"""End to end through the stand-in: the analysis and chart cache shares a chart between the members who ask for it,
and never shows a stale one (issue 17): a data point logged through `/measure log` gives the next `/equity` a
new chart and new words."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from bot.offline.demo.equity import DEMO_MEASURE
from bot.offline.standin.server import Message
from bot.services import chart_cache
from handlers.blocks import ids
from tests.e2e.test_equity_e2e import _all_text, _details_ts, chart_file, seed
from tests.helpers import CHANNEL, LEAD, MIDWIFE, start_project

NEW_MONTH = date(2026, 1, 1)  # the clock says 10 March 2026; the seeded data end in December 2025


def monthly(months: int = 24) -> list[dict[str, Any]]:
    """Monthly counts large enough to be shown month by month (no grouping to quarters), to December 2025."""
    rows = []
    for i in range(months):
        period = date(2024 + i // 12, i % 12 + 1, 1)
        for group, events, births in (("A", 45 + i % 5, 900), ("N", 30 + i % 4, 300), ("M", 25 + i % 3, 250)):
            rows.append(
                {"period": period, "group": group, "numerator": events, "denominator": births, "value": None}
            )
    return rows


def headlines(live: Any) -> list[Message]:
    """The /equity headline posts in the channel, oldest first, once their details are posted."""
    return [
        m
        for m in live.standin.messages(CHANNEL)
        if '"equity_views"' in json.dumps(m.blocks) and m.thread_ts is None and _details_ts(m)
    ]


def ask(live: Any, user: str) -> Message:
    before = len(headlines(live))
    live.driver.slash("/equity", DEMO_MEASURE, user=user, channel=CHANNEL)
    found: list[Message] = live.standin.wait_for(lambda: headlines(live)[before:] or None, timeout=30)
    return found[0]


def words(message: Message) -> str:
    """What a reader reads in the headline (not the buttons or the image block, which carry ids)."""
    return _all_text([b for b in message.blocks if b.get("type") not in ("actions", "image")])


def test_two_members_get_the_same_chart_and_a_new_data_point_gives_a_new_one(live: Any) -> None:
    start_project(live)
    seed(live, monthly())

    first = ask(live, LEAD)
    drawn = chart_cache.CACHE.stats().misses
    second = ask(live, MIDWIFE)
    one, two = chart_file(live, first), chart_file(live, second)
    assert two.bytes == one.bytes and two.alt_txt == one.alt_txt and two.title == one.title
    assert words(second) == words(first)
    assert chart_cache.CACHE.stats().misses == drawn  # the second member was served, nothing worked out again
    assert "Jan 2026" not in (one.alt_txt or "") + words(first)

    # A lead logs January 2026 through the form: the next /equity shows it, not the cached chart.
    view = live.driver.slash("/measure", "log", user=LEAD, channel=CHANNEL).wait_view()
    row = ids.B_LOG_ROW_PREFIX
    response = live.driver.submit_view(
        view["id"],
        {ids.B_LOG_PERIOD: NEW_MONTH, row + "N": "40/210", row + "A": "30/900", row + "OTHERS": "20/400"},
        user=LEAD,
    )
    assert response.status == 200 and not response.body, response.body
    live.standin.wait_for(
        lambda: next((m for m in live.standin.messages(CHANNEL) if ids.A_UNDO_BATCH in str(m.blocks)), None)
    )
    third = ask(live, MIDWIFE)
    three = chart_file(live, third)
    assert three.bytes != two.bytes
    assert "Jan 2026" in (three.alt_txt or "") + words(third)
    assert chart_cache.CACHE.stats().misses > drawn
    assert live.standin.violations == []
