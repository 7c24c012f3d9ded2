"""Blank is unknown: a Not stated (Z) or Not known (99) box left empty in `/measure log` is "not entered".

It is stored as no row (a typed 0 is a row of zero), and every place that reports how complete ethnicity
recording is says "unknown" for that period, with a warning, never 100%: the log confirmation, `/measure list`
and `/equity missing`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
import pytest

from bot.core.equity import missing
from handlers.blocks import ids
from tests.e2e.test_equity_e2e import _all_text
from tests.e2e.test_measures_e2e import (
    CHANNEL,
    LEAD,
    MIDWIFE,
    PPH,
    add_measure,
    open_log,
    points,
    start_project,
)

ROW = ids.B_LOG_ROW_PREFIX
FEBRUARY, JANUARY = date(2026, 2, 1), date(2026, 1, 1)


def _log(live: Any, period: date, rows: dict[str, str], user: str = MIDWIFE) -> Any:
    before = len(live.standin.messages(CHANNEL))
    view = open_log(live, user=user)
    response = live.driver.submit_view(view["id"], {ids.B_LOG_PERIOD: period, **rows}, user=user)
    assert not (response.json or {}).get("errors"), response.body
    # This entry's confirmation ("… entered <period> for …"), not a late message from an earlier step.
    return live.standin.wait_for(
        lambda: [m for m in live.standin.messages(CHANNEL)[before:] if " entered " in m.text] or None
    )[-1]


def _listing(live: Any) -> str:
    before = len(live.standin.responses())
    live.driver.slash("/measure", "list", user=LEAD, channel=CHANNEL)
    found = live.standin.wait_for(
        lambda: [r for r in live.standin.responses()[before:] if PPH in str(r.body.get("blocks"))] or None
    )
    return str(found[-1].body["blocks"])


def _missing_report(live: Any) -> str:
    before = len(live.standin.messages(CHANNEL))
    live.driver.slash("/equity", "missing", user=LEAD, channel=CHANNEL)
    report = live.standin.wait_for(
        lambda: next(
            (m for m in live.standin.messages(CHANNEL)[before:] if m.text.startswith("Ethnicity recording")),
            None,
        ),
        timeout=30,
    )
    return _all_text(report.blocks)


@pytest.mark.e2e
@pytest.mark.clock(datetime(2026, 3, 10, 9, 30, tzinfo=UTC))  # February's figures are in, March's are not
def test_a_midwife_who_leaves_not_stated_and_not_known_blank_is_told_completeness_is_unknown(
    live: Any,
) -> None:
    start_project(live)
    add_measure(live)
    # The form says what a blank Not stated or Not known box means, and how to say "none".
    hints = {
        b["block_id"]: b.get("hint", {}).get("text", "")
        for b in open_log(live)["blocks"]
        if b["type"] == "input"
    }
    assert "Type 0/0 if there were none" in hints[ROW + "Z"] and "not entered" in hints[ROW + "99"]
    assert hints[ROW + "N"] == ""
    # The midwife fills in the groups and leaves Not stated and Not known empty.
    reply = _log(
        live,
        FEBRUARY,
        {ROW + "N": "14/230", ROW + "M": "9/120", ROW + "A": "12/300", ROW + "OTHERS": "9/150"},
    )
    assert {g for (_, g) in points(live.engine)} == {"N", "M", "A", "OTHERS"}  # nothing stored for the blanks
    text = reply.text + _all_text(reply.blocks)
    assert "Not stated (Z) and Not known (99) were left blank" in text
    assert "unknown" in text and "not zero" in text

    listing = _listing(live)
    assert "100.0%" not in listing
    assert "unknown" in listing and "left blank" in listing

    report = _missing_report(live)
    assert "100.0%" not in report and "No data-quality warnings" not in report
    assert "completeness unknown" in report.lower()
    # No chart of shares for a period whose shares are unknown (it would draw, and describe, 0%).
    assert [f for f in live.standin.files() if f.filename.startswith("completeness")] == []

    # Typing 0 is an answer: the period's completeness is then known, and the warnings go.
    reply = _log(live, FEBRUARY, {ROW + "Z": "0/0", ROW + "99": "0/0"}, user=LEAD)
    assert "left blank" not in reply.text + _all_text(reply.blocks)
    listing = _listing(live)
    assert "100.0% with a stated ethnicity" in listing and "unknown" not in listing

    # A second period with only Not known left blank: unknown for that one, the first still counted.
    reply = _log(live, JANUARY, {ROW + "N": "10/200", ROW + "A": "10/300", ROW + "Z": "8/40"})
    text = reply.text + _all_text(reply.blocks)
    assert (
        "Not known (99) was left blank" in text and "Not stated (Z)" not in text.split("left blank")[0][-40:]
    )
    listing = _listing(live)
    assert "unknown for 1 of 2 periods" in listing
    report = _missing_report(live)
    assert "unknown for 1 period" in report and "No data-quality warnings" not in report
    [chart] = [f for f in live.standin.files() if f.filename.startswith("completeness")]
    assert "Feb" in (chart.alt_txt or "") and "Jan" not in (chart.alt_txt or ""), chart.alt_txt


def _frame(rows: list[tuple[date, str, int, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["period", "group", "numerator", "denominator"])


def test_completeness_leaves_out_periods_with_a_blank_missing_category() -> None:
    frame = _frame(
        [
            (JANUARY, "A", 10, 300),
            (JANUARY, "N", 10, 200),
            (JANUARY, "Z", 0, 50),
            (JANUARY, "99", 0, 50),
            (FEBRUARY, "A", 10, 300),
            (FEBRUARY, "N", 10, 200),  # Z and 99 not entered
        ]
    )
    summary = missing.summarise_missing(frame)
    assert summary.unknown_periods == [FEBRUARY]
    assert summary.valid_share == pytest.approx(500 / 600)  # January only
    assert [p.valid_share for p in summary.by_period] == [pytest.approx(500 / 600), None]
    warnings = missing.missing_warnings(frame, today=date(2026, 3, 10), period="month")
    unknown = [w for w in warnings if w.code == "COMPLETENESS_UNKNOWN"]
    assert len(unknown) == 1 and "February 2026" in unknown[0].message and unknown[0].severity == "warning"

    only_blank = _frame([(FEBRUARY, "A", 10, 300), (FEBRUARY, "N", 10, 200)])
    summary = missing.summarise_missing(only_blank)
    assert summary.valid_share is None and summary.unknown_periods == [FEBRUARY]
    codes = [w.code for w in missing.missing_warnings(only_blank, today=date(2026, 3, 10), period="month")]
    assert "COMPLETENESS_UNKNOWN" in codes and "COMPLETENESS_OK" not in codes
