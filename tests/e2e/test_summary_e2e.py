"""The summary grid end to end: `/equity` with no measure and the Home tab, through the stand-in, on both
databases; PDSA cycles loaded from storage onto the measure's chart."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest

from bot.core.equity.disclosure import check_text_for_disclosure
from bot.core.equity.summary import summarise
from bot.offline.demo.equity import DEMO_MEASURE, demo_rows
from bot.services import equity as service
from storage import pdsa_repo
from storage import repositories as repo
from storage.db import unit_of_work
from tests.e2e.test_equity_e2e import END, _all_text, assert_disclosure_safe, seed
from tests.helpers import CHANNEL, LEAD, start_project

pytestmark = pytest.mark.clock(datetime(2025, 7, 10, 9, 30, tzinfo=UTC))


def _cycle(live: Any, measure_id: int, **fields: Any) -> None:
    values: dict[str, Any] = {
        "title": "Interpreter at booking",
        "change_idea": "c",
        "question": "q",
        "measure_ids": [measure_id],
        "balancing_measure_id": None,
        "predictions": [],
        "plan": {},
        "start_date": date(2025, 3, 3),
        "end_date": date(2025, 4, 30),
        "involvement": "not yet",
        "involvement_pending": True,
    }
    values.update(fields)
    with unit_of_work(live.engine) as session:
        project = repo.project_for_channel(session, team_id="T0MFIAR01", channel_id=CHANNEL)
        assert project is not None
        pdsa_repo.create_cycle(session, project=project, created_by=LEAD, **values)


def test_equity_with_no_measure_shows_the_summary_grid_then_the_list(live: Any) -> None:
    start_project(live)
    rows = demo_rows(END)
    seed(live, rows)
    raw = [r["numerator"] for r in rows] + [r["denominator"] for r in rows]

    result = live.driver.slash("/equity", "", user=LEAD, channel=CHANNEL)
    assert result.response.status == 200
    reply = live.standin.wait_for(lambda: live.standin.responses() or None)[-1]
    body = reply.body
    assert body.get("response_type") == "ephemeral"
    text = _all_text(body.get("blocks", []))
    # The grid first: every focus group with its value, icon words and gap verdict; then the list, kept.
    assert "Equity summary for" in text and "Measures for" in text
    assert text.index("Equity summary for") < text.index("Measures for")
    assert "Black African" in text and "Black Caribbean" in text and "White British* (reference)" in text
    assert "Common cause variation" in text or "Special cause" in text
    assert "Gap " in text and ("established" in text or "not judged" in text or "too few" in text)
    assert "equity_view" in json.dumps(body)  # the measure list's Show buttons are still there
    assert len(body["blocks"]) <= 50
    # The PNG of the grid, uploaded unshared for the image block, with alt text that reads the table.
    image = next(b for b in body["blocks"] if b.get("type") == "image")
    stored = live.standin.file(image["slack_file"]["id"])
    assert stored is not None and stored.bytes.startswith(b"\x89PNG") and stored.channel is None
    assert "Black African" in (stored.alt_txt or "") and len(stored.alt_txt or "") <= 1000
    assert check_text_for_disclosure(text, raw) == []
    assert_disclosure_safe(live, raw)


def test_summary_grid_never_shows_a_small_groups_rate(live: Any) -> None:
    start_project(live)
    rows = demo_rows(END)
    seed(live, rows)
    found = service.channel_jobs(live.engine, team_id="T0MFIAR01", channel_id=CHANNEL)
    assert found is not None
    ca = service.analyse(found.jobs[0], window_months=3)
    [row] = summarise([ca], policy=found.jobs[0].policy, groups=["A", "N", "M", "P"])
    # The demo's Any other Black background group is small in the latest window: no rate, a reason instead.
    small = ca.analysis.window_counts["P"]
    assert 0 < small.numerator < 8
    [cell] = [c for c in row.cells if c.group == "P"]
    assert not cell.shown and cell.value == "not shown: fewer than 8 events"


def test_home_shows_the_summary_grid(live: Any) -> None:
    start_project(live)
    seed(live)
    live.driver.open_home(LEAD)
    home = live.standin.wait_for(
        lambda: (
            ((v := live.standin.home_view(LEAD)) and "Equity summary" in _all_text(v.get("blocks", [])) and v)
            or None
        ),
        timeout=30,
    )
    text = _all_text(home["blocks"])
    assert DEMO_MEASURE in text and "Black African" in text
    assert len(home["blocks"]) <= 100


def test_pdsa_cycles_on_the_measure_reach_its_chart(live: Any) -> None:
    start_project(live)
    measure_id = seed(live)
    _cycle(live, measure_id)  # planned, never studied: still running
    _cycle(live, measure_id + 999, title="Another measure's test")  # not on this measure
    _cycle(live, measure_id, start_date=date(2025, 9, 1), end_date=date(2025, 10, 1))  # not started yet
    job = service.channel_job(live.engine, team_id="T0MFIAR01", channel_id=CHANNEL, measure_id=measure_id)
    assert job is not None
    assert [(c.label, c.start, c.running) for c in job.cycles] == [("C1", date(2025, 3, 3), True)]
    assert job.cycles[0].end == date(2025, 7, 10)  # today where the project is
    ca = service.analyse(job, window_months=12)
    chart = service.render(ca, "groups", job.policy, 12, cycles=job.cycles)
    assert "PDSA cycle shaded: C1 (running since 3 Mar 2025)" in chart.alt_text
