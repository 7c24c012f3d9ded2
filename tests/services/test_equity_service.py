"""The /equity use cases without Slack, on both databases: loaders open their own unit of work and return frozen
values; the analysis and the chart are drawn from those values (no session in sight)."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest
from sqlalchemy import Engine

from bot.core.equity import analysis as an
from bot.services import equity
from tests.services.helpers import CHANNEL, TEAM, make_measure, make_project, monthly_rows

ROWS = monthly_rows(12, date(2025, 3, 1))  # March 2025 to February 2026; the clock says 10 March 2026


def test_the_list_counts_each_measures_data_and_leaves_out_archived_measures(engine: Engine) -> None:
    assert equity.measure_listing(engine, team_id=TEAM, channel_id=CHANNEL) is None  # no project yet
    project_id = make_project(engine)
    make_measure(engine, project_id, name="PPH", rows=ROWS)
    make_measure(engine, project_id, name="Caesarean", measure_type="balancing")
    make_measure(engine, project_id, name="Old PPH", archived=True, rows=ROWS)
    listing = equity.measure_listing(engine, team_id=TEAM, channel_id=CHANNEL)
    assert listing is not None and listing.project_name == "PPH equity"
    assert [(m.name, m.measure_type, m.points, m.last_period) for m in listing.measures] == [
        ("PPH", "outcome", len(ROWS), date(2026, 2, 1)),
        ("Caesarean", "balancing", 0, None),
    ]
    with pytest.raises(dataclasses.FrozenInstanceError):
        listing.measures[0].points = 0  # type: ignore[misc]
    assert equity.measure_listing(engine, team_id="T2", channel_id=CHANNEL) is None  # another workspace


def test_look_up_finds_a_measure_by_number_name_or_unique_part_and_otherwise_says_what_there_is(
    engine: Engine,
) -> None:
    project_id = make_project(engine)
    for name in ("PPH 500 ml", "PPH 1000 ml", "Caesarean"):
        make_measure(engine, project_id, name=name, rows=ROWS if name == "PPH 1000 ml" else ())

    def look(text: str) -> equity.Lookup:
        found = equity.look_up(engine, team_id=TEAM, channel_id=CHANNEL, text=text)
        assert found is not None
        return found

    assert look("2").job is not None and look("2").job.name == "PPH 1000 ml"  # type: ignore[union-attr]
    assert look("pph 500 ML").job.name == "PPH 500 ml"  # type: ignore[union-attr]
    assert look("caes").job.name == "Caesarean"  # type: ignore[union-attr]
    assert look("1000 ml").job.name == "PPH 1000 ml"  # type: ignore[union-attr]
    assert look("1000").job is None  # a number is a place in the list, and there are only three
    ambiguous = look("pph")
    assert ambiguous.job is None and ambiguous.candidates == ("PPH 500 ml", "PPH 1000 ml")
    for nothing in ("9", "0", "blood loss", "²"):
        missing = look(nothing)
        assert missing.job is None and missing.candidates == ()
        assert missing.names == ("PPH 500 ml", "PPH 1000 ml", "Caesarean")
    assert equity.look_up(engine, team_id=TEAM, channel_id="C-OTHER", text="1") is None


def test_a_job_carries_the_measure_and_project_settings_and_the_data_as_plain_values(engine: Engine) -> None:
    project_id = make_project(engine, suppression_threshold=10)
    measure_id = make_measure(
        engine, project_id, rows=ROWS, reference_group="HL:WHITE", rebase_dates=["N=2025-06-01", "2025-09-01"]
    )
    job = equity.load_job(engine, team_id=TEAM, project_id=project_id, measure_id=measure_id)
    assert job is not None
    assert (job.name, job.kind, job.period, job.reference, job.focus) == (
        "PPH",
        "proportion",
        "month",
        "HL:WHITE",
        ["N", "M"],
    )
    assert job.rebase == {"N": [date(2025, 6, 1)], an.TOTAL: [date(2025, 9, 1)]}
    assert (job.channel_id, job.project_name, job.policy.threshold) == (CHANNEL, "PPH equity", 10)
    assert len(job.frame) == len(ROWS) and set(job.frame["group"]) == {"A", "N", "M", "Z", "99"}
    assert job.today == date(2026, 3, 10)
    with pytest.raises(dataclasses.FrozenInstanceError):
        job.name = "changed"  # type: ignore[misc]


def test_unreadable_rebase_dates_are_ignored_rather_than_failing_the_chart(engine: Engine) -> None:
    project_id = make_project(engine)
    measure_id = make_measure(engine, project_id, rows=ROWS, rebase_dates=["N=last spring"])
    job = equity.channel_job(engine, team_id=TEAM, channel_id=CHANNEL, measure_id=measure_id)
    assert job is not None and job.rebase == {}
    assert equity.parse_rebase(["2025-04-01", "M = 2025-05-01"]) == {
        an.TOTAL: [date(2025, 4, 1)],
        "M": [date(2025, 5, 1)],
    }


def test_a_measure_is_only_loaded_through_its_own_channel_and_workspace(engine: Engine) -> None:
    ours = make_project(engine)
    theirs = make_project(engine, channel="C2", name="Another team")
    our_measure = make_measure(engine, ours, rows=ROWS)
    their_measure = make_measure(engine, theirs, rows=ROWS)
    archived = make_measure(engine, ours, name="Archived", archived=True)
    assert equity.channel_job(engine, team_id=TEAM, channel_id=CHANNEL, measure_id=our_measure) is not None
    for measure_id in (their_measure, archived, 999_999):
        assert equity.channel_job(engine, team_id=TEAM, channel_id=CHANNEL, measure_id=measure_id) is None
    assert equity.load_job(engine, team_id="T2", project_id=ours, measure_id=our_measure) is None
    assert equity.load_job(engine, team_id=TEAM, project_id=ours, measure_id=their_measure) is None
    jobs = equity.load_jobs(engine, team_id=TEAM, project_id=ours)
    assert jobs is not None and [j.measure_id for j in jobs.jobs] == [our_measure]
    by_channel = equity.channel_jobs(engine, team_id=TEAM, channel_id="C2")
    assert by_channel is not None and by_channel.project_name == "Another team"
    assert [j.measure_id for j in by_channel.jobs] == [their_measure]
    assert equity.channel_jobs(engine, team_id=TEAM, channel_id="C3") is None


def test_the_analysis_and_charts_come_from_the_job_alone_with_small_counts_held_back(engine: Engine) -> None:
    project_id = make_project(engine)
    measure_id = make_measure(engine, project_id, rows=ROWS)
    job = equity.channel_job(engine, team_id=TEAM, channel_id=CHANNEL, measure_id=measure_id)
    assert job is not None
    ca = equity.analyse(job, window_months=3)
    assert ca.analysis.name == "PPH" and ca.analysis.reference_group == "A"
    stats = {s.code: s for s in equity.safe_stats(ca.analysis, job.policy)}
    # Black Caribbean: 2 a month, 6 over the window: under 8, so no rate and no interval beside it.
    assert stats["M"].rate is None and stats["M"].ci_low is None and stats["M"].ci_high is None
    assert stats["N"].rate == pytest.approx(0.1, abs=0.01) and stats["N"].ci_low is not None
    assert stats["A"].is_reference
    assert equity.first_view(ca, "groups") == "groups"  # recording is complete enough
    for view in ("groups", "gaps", "completeness"):
        chart = equity.render(ca, view, job.policy, 3)
        assert chart.png.startswith(b"\x89PNG") and chart.alt_text and len(chart.alt_text) <= 1000
    assert "dot plot" in equity.render(ca, "gaps", job.policy, 3).alt_text.lower()


def test_under_80_percent_recording_the_completeness_chart_comes_first(engine: Engine) -> None:
    rows = [(p, g, n, d * 40 if g == "Z" else d) for p, g, n, d in ROWS]  # most records "not stated"
    measure_id = make_measure(engine, make_project(engine), rows=rows)
    job = equity.channel_job(engine, team_id=TEAM, channel_id=CHANNEL, measure_id=measure_id)
    assert job is not None
    ca = equity.analyse(job, window_months=3)
    assert ca.analysis.recording_critical
    assert equity.first_view(ca, "groups") == "completeness"
    assert equity.first_view(ca, "gaps") == "gaps"  # a chosen view stays chosen
