"""PDSA pure logic (parsing, windows, scoring, the record) and the repository on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlmodel import Session

from bot.core import pdsa
from bot.core.equity.disclosure import check_text_for_disclosure
from bot.core.equity.types import GroupCounts
from handlers.blocks import ids
from handlers.blocks import pdsa as pb
from storage import pdsa_repo
from storage import repositories as repo
from storage.models import Answer, DataBatch, DataPoint, Measure, ProjectMember

# ---------------------------------------------------------------- parsing predictions


@pytest.mark.parametrize(
    ("text", "kind", "value", "direction", "reason"),
    [
        (
            "9% — interpreters at booking reach more Black African women",
            "proportion",
            0.09,
            None,
            "interpreters at booking reach more Black African women",
        ),
        ("0.09: fewer missed warning signs", "proportion", 0.09, None, "fewer missed warning signs"),
        ("9 per 1,000 because blood loss is weighed", "rate_per_1000", 0.009, None, "blood loss is weighed"),
        ("9 per 1000 - weighed", "proportion", 0.009, None, "weighed"),
        ("12 - read as the measure's unit", "proportion", 0.12, None, "read as the measure's unit"),
        ("4.5 - per 1,000 by default", "rate_per_1000", 0.0045, None, "per 1,000 by default"),
        ("better — risk is discussed earlier", "proportion", None, "better", "risk is discussed earlier"),
        ("Same; most already speak English", "proportion", None, "same", "most already speak English"),
        ("lower, fewer late escalations", "proportion", None, "lower", "fewer late escalations"),
    ],
)
def test_parse_prediction(
    text: str, kind: str, value: float | None, direction: str | None, reason: str
) -> None:
    parsed = pdsa.parse_prediction(text, group="N", kind=kind)
    assert parsed.value == pytest.approx(value) if value is not None else parsed.value is None
    assert parsed.direction == direction and parsed.reason == reason and parsed.group == "N"
    assert pdsa.Prediction.from_dict(parsed.as_dict()) == parsed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "Write a value"),
        ("9%", "Say why"),
        ("somewhat — no idea", "couldn't read"),
        ("150% — x", "more than 100%"),
    ],
)
def test_parse_prediction_errors_say_how(text: str, message: str) -> None:
    with pytest.raises(pdsa.PredictionError, match=message) as caught:
        pdsa.parse_prediction(text, group="A")
    assert "9%" in str(caught.value) or message == "more than 100%"


def test_parse_counts() -> None:
    assert pdsa.parse_counts("12/140") == (12, 140)
    assert pdsa.parse_counts(" 1,200 of 9,000 ") == (1200, 9000)
    for bad in ("12", "twelve/140", "150/140"):
        with pytest.raises(ValueError, match="events/total"):
            pdsa.parse_counts(bad)


# ---------------------------------------------------------------- windows


def test_periods_and_windows() -> None:
    assert pdsa.expected_periods(date(2025, 3, 15), date(2025, 5, 2), "month") == [
        date(2025, 3, 1),
        date(2025, 4, 1),
        date(2025, 5, 1),
    ]
    assert pdsa.expected_periods(date(2025, 2, 1), date(2025, 7, 1), "quarter") == [
        date(2025, 1, 1),
        date(2025, 4, 1),
        date(2025, 7, 1),
    ]
    assert pdsa.expected_periods(date(2025, 3, 5), date(2025, 3, 12), "week") == [
        date(2025, 3, 3),
        date(2025, 3, 10),
    ]
    assert pdsa.periods_before(date(2025, 3, 1), date(2025, 5, 31), "month") == (
        date(2024, 12, 1),
        date(2025, 2, 28),
    )
    assert pdsa.periods_before(date(2025, 3, 5), date(2025, 3, 12), "week") == (
        date(2025, 2, 17),
        date(2025, 3, 2),
    )
    assert pdsa.baseline_window(date(2025, 3, 1), date(2025, 3, 10)) == (date(2025, 2, 19), date(2025, 2, 28))
    assert pdsa.period_end(date(2025, 2, 1), "month") == date(2025, 2, 28)
    assert pdsa.period_end(date(2025, 10, 1), "quarter") == date(2025, 12, 31)
    assert pdsa.overlaps(date(2025, 2, 1), "month", date(2025, 2, 28), date(2025, 3, 5))
    assert not pdsa.overlaps(date(2025, 1, 1), "month", date(2025, 2, 1), date(2025, 3, 5))


def test_overdue_and_next_step() -> None:
    today = date(2025, 6, 10)
    assert pdsa.is_overdue("doing", date(2025, 6, 9), today)
    assert not pdsa.is_overdue("studied", date(2025, 6, 9), today)
    assert not pdsa.is_overdue("planned", date(2025, 6, 10), today)
    assert "OVERDUE" in pdsa.next_step("planned", "1.1", date(2025, 6, 1), today)
    assert "/pdsa act 2.1" in pdsa.next_step("studied", "2.1", date(2025, 6, 1), today)
    assert pdsa.next_step("acted", "1.1", date(2025, 6, 1), today, "adopt") == "Closed: adopt"


# ---------------------------------------------------------------- scoring


def _p(text: str, group: str = "N") -> pdsa.Prediction:
    return pdsa.parse_prediction(text, group=group)


def test_value_prediction_held_when_inside_the_interval() -> None:
    result = pdsa.score_prediction(_p("12% — x"), GroupCounts("N", 60, 480), None)
    assert result.outcome == "held" and result.interval is not None
    assert result.interval[0] < 0.12 < result.interval[1]
    assert pdsa.score_prediction(_p("9% — x"), GroupCounts("N", 60, 480), None).outcome == "not_held"


def test_direction_prediction_uses_the_window_before() -> None:
    observed, before = GroupCounts("M", 30, 400), GroupCounts("M", 60, 400)
    assert pdsa.score_prediction(_p("better — x", "M"), observed, before).outcome == "held"
    assert pdsa.score_prediction(_p("worse — x", "M"), observed, before).outcome == "not_held"
    assert (
        pdsa.score_prediction(_p("lower — x", "M"), observed, before, measure_direction="neither").outcome
        == "held"
    )
    higher_is_better = pdsa.score_prediction(
        _p("better — x", "M"), observed, before, measure_direction="higher"
    )
    assert higher_is_better.outcome == "not_held"
    assert pdsa.score_prediction(_p("same — x", "M"), GroupCounts("M", 58, 400), before).outcome == "held"
    assert pdsa.score_prediction(_p("better — x", "M"), observed, None).outcome == "not_judged"
    neither = pdsa.score_prediction(_p("better — x", "M"), observed, before, measure_direction="neither")
    assert neither.outcome == "not_judged" and "no better direction" in neither.reason


def test_suppressed_or_missing_results_are_not_judged_and_show_no_interval() -> None:
    small = pdsa.score_prediction(_p("2% — x", "A"), GroupCounts("A", 6, 300), None)
    assert small.outcome == "not_judged" and small.interval is None and small.observed is not None
    assert small.observed.numerator.shown == "<8"
    assert pdsa.score_prediction(_p("2% — x", "A"), None, None).outcome == "not_judged"
    assert pdsa.score_prediction(_p("0% — x", "A"), GroupCounts("A", 0, 300), None).outcome == "not_judged"


def test_scores_use_the_shown_counts() -> None:
    # 9/120 is shown as 10 of 120: the verdict and the posted interval both come from the rounded counts.
    result = pdsa.score_prediction(_p("8.3% — x", "M"), GroupCounts("M", 9, 120), None)
    assert result.observed is not None and result.observed.rate == pytest.approx(10 / 120)
    assert result.outcome == "held"


def test_result_lines_and_verdict_are_disclosure_safe() -> None:
    predictions = [_p("8% — x", "ALL"), _p("9% — x", "N"), _p("better — x", "M"), _p("same — x", "A")]
    observed = {
        "ALL": GroupCounts("ALL", 75, 900),
        "N": GroupCounts("N", 60, 480),
        "M": GroupCounts("M", 9, 120),
        "A": GroupCounts("A", 6, 300),
    }
    before = {"M": GroupCounts("M", 15, 120), "A": GroupCounts("A", 6, 300)}
    results = pdsa.score_all(predictions, ["ALL", "N", "M", "A"], observed, before)
    assert [r.outcome for r in results] == ["held", "not_held", "held", "not_judged"]
    text = "\n".join(pdsa.result_line(r) for r in results) + pdsa.worked_for_everyone(results)
    assert check_text_for_disclosure(text, [6, 9]) == []
    assert "<8 of 300" in text and "95% CI" in text
    assert "did *not* hold for Black or Black British - African (N)" in text
    a_line = pdsa.result_line(results[3])
    assert "CI" not in a_line


def test_prediction_record_counts_cycles() -> None:
    scores = [
        {"group": "A", "outcome": "held", "predicted": True},
        {"group": "A", "outcome": "held", "predicted": True},
        {"group": "A", "outcome": "held", "predicted": True},
        {"group": "N", "outcome": "not_held", "predicted": True},
        {"group": "N", "outcome": "not_held", "predicted": True},
        {"group": "N", "outcome": "not_held", "predicted": True},
        {"group": "M", "outcome": "not_judged", "predicted": True},
        {"group": "ALL", "outcome": "held", "predicted": False},
    ]
    text = pdsa.prediction_record(scores).text()
    assert text is not None
    assert (
        "White - British (A) 3 times out of 3" in text
        and "Black or Black British - African (N) 0 times out of 3" in text
    )
    assert "Caribbean" not in text and "overall" not in text
    assert check_text_for_disclosure(text, [3]) == []
    assert pdsa.prediction_record([]).text() is None


# ---------------------------------------------------------------- builders


def _info(**overrides: Any) -> pb.CycleInfo:
    values: dict[str, Any] = {
        "id": 1,
        "number": 1,
        "ref": "1.1",
        "title": "Interpreter at booking",
        "change_idea": "c",
        "question": "q",
        "predictions": [_p("9% — x").as_dict()],
        "plan": {"who": "Grace", "where": "", "tasks": ["a"]},
        "start_date": date(2025, 3, 1),
        "end_date": date(2025, 5, 31),
        "involvement": "not yet",
        "involvement_pending": True,
        "status": "planned",
        "decision": None,
        "measures": ["PPH"],
        "balancing": None,
        "kind": "proportion",
        "today": date(2025, 6, 2),
    }
    values.update(overrides)
    return pb.CycleInfo(**values)


def test_plan_modal_fits_and_says_when_there_are_no_measures() -> None:
    groups = ["ALL", *"ABCDEFGHJKLMNPRS", "HL:Black", "HL:Asian"]
    view = pb.plan_modal(callback_id=ids.CB_PDSA_NEW, groups=groups, measures=[], metadata={"project_id": 1})
    assert len(view["blocks"]) <= 100
    assert "no measures yet" in str(view["blocks"]) and "/measure new" in str(view["blocks"])
    assert "No balancing measure yet" in str(view["blocks"])


def test_card_list_and_home() -> None:
    info = _info()
    card = pb.cycle_card(info)
    assert card[0]["text"]["text"] == "PDSA 1.1: Interpreter at booking"
    assert "Not yet" in str(card) and "OVERDUE" in str(card)
    listing = pb.list_blocks(
        [info, _info(id=2, number=2, ref="1.2", status="acted", decision="adopt")],
        record="Predictions held for x",
    )
    assert "OVERDUE" in str(listing) and "Closed: adopt" in str(listing)
    home = pb.home_section([info], record=None)
    assert "Open PDSA cycles" in str(home) and "Still to involve" in str(home)
    assert pb.home_section([], record=None) == []


# ---------------------------------------------------------------- repository, on both databases


def _project(session: Session) -> Any:
    return repo.create_project(
        session,
        team_id="T1",
        enterprise_id=None,
        channel_id="C1",
        created_by="U1",
        name="PPH",
        aim="Reduce PPH among Black women",
        focus_groups=["N", "M"],
        reference_group="A",
        baseline="",
        target="",
        target_date=None,
        racism_context="",
        leads=["U1"],
        partners=[],
        timezone="Europe/London",
    )


def _fields(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "title": "Interpreter",
        "change_idea": "c",
        "question": "q",
        "measure_ids": [],
        "balancing_measure_id": None,
        "predictions": [],
        "plan": {},
        "start_date": date(2025, 3, 1),
        "end_date": date(2025, 5, 31),
        "involvement": "not yet",
        "involvement_pending": True,
    }
    values.update(overrides)
    return values


def test_repo_cycles_ramps_edits_and_scores(engine: Any) -> None:
    with Session(engine) as session, session.begin():
        project = _project(session)
        first = pdsa_repo.create_cycle(session, project=project, created_by="U1", **_fields())
        second = pdsa_repo.create_cycle(
            session, project=project, created_by="U1", previous=first, **_fields()
        )
        third = pdsa_repo.create_cycle(session, project=project, created_by="U1", **_fields(title="Videos"))
        assert (first.number, second.number, third.number) == (1, 2, 3)
        assert second.series_id == first.id and second.ramp_step == 2 and third.series_id == third.id
        assert pdsa_repo.find_cycle(session, project_id=project.id, ref="1.2") is second
        assert pdsa_repo.find_cycle(session, project_id=project.id, ref="3") is third
        # One numbering: "1" is PDSA 1, at its latest ramp step (1.2), the one the team is working on; a number
        # that starts no series (cycle 2 is PDSA 1.2) still finds that cycle.
        assert pdsa_repo.find_cycle(session, project_id=project.id, ref="1") is second
        assert pdsa_repo.find_cycle(session, project_id=project.id, ref="1.1") is first
        assert pdsa_repo.find_cycle(session, project_id=project.id, ref="2") is second
        assert pdsa_repo.find_cycle(session, project_id=project.id, ref="9") is None
        assert pdsa_repo.find_cycle(session, project_id=project.id, ref="x.y") is None
        assert pdsa_repo.series_number(session, cycle=second) == 1
        previous = pdsa_repo.update_cycle(
            session, cycle=first, changed_by="U1", title="Interpreter (all)", start_date=date(2025, 3, 2)
        )
        assert previous == {"title": "Interpreter", "start_date": "2025-03-01"}
        assert pdsa_repo.update_cycle(session, cycle=first, changed_by="U1", title="Interpreter (all)") == {}
        with pytest.raises(ValueError, match="not an editable"):
            pdsa_repo.update_cycle(session, cycle=first, changed_by="U1", status="acted")
        pdsa_repo.add_entry(
            session,
            cycle=first,
            kind="study",
            user_id="U1",
            data={"scores": [{"group": "N", "outcome": "held", "predicted": True}]},
        )
        pdsa_repo.add_entry(
            session,
            cycle=first,
            kind="study",
            user_id="U1",
            data={"scores": [{"group": "N", "outcome": "not_held", "predicted": True}]},
        )
        # Only the latest study of each cycle counts in the record.
        assert pdsa_repo.study_scores(session, project_id=project.id) == [
            {"group": "N", "outcome": "not_held", "predicted": True}
        ]
        kinds = [e.kind for e in pdsa_repo.entries(session, cycle_id=first.id or 0)]
        assert kinds == ["plan", "edit", "study", "study"]


def test_repo_window_counts_rebase_and_partner_reflections(engine: Any) -> None:
    with Session(engine) as session, session.begin():
        project = _project(session)
        measure = Measure(
            project_id=project.id,
            team_id="T1",
            name="PPH",
            measure_type="outcome",
            kind="proportion",
            created_by="U1",
        )
        session.add(measure)
        session.flush()
        batch = DataBatch(measure_id=measure.id or 0, team_id="T1", source="log")
        session.add(batch)
        session.flush()
        for month, n_num in ((date(2025, 2, 1), 5), (date(2025, 3, 1), 10), (date(2025, 4, 1), 12)):
            for code, num in (("N", n_num), ("M", 2), ("P", 1)):
                session.add(
                    DataPoint(
                        measure_id=measure.id or 0,
                        team_id="T1",
                        period_start=month,
                        group_code=code,
                        numerator=num,
                        denominator=100,
                        batch_id=batch.id or 0,
                    )
                )
        session.flush()
        counts, periods, missing = pdsa_repo.window_counts(
            session,
            measure=measure,
            groups=["ALL", "N", "HL:Black", "A"],
            start=date(2025, 3, 1),
            end=date(2025, 5, 31),
        )
        assert counts["N"] == GroupCounts("N", 22, 200)
        assert counts["HL:Black"] == GroupCounts("HL:Black", 28, 600)
        assert counts["ALL"] == GroupCounts("ALL", 28, 600)
        assert "A" not in counts and missing["A"] == periods
        assert periods == [date(2025, 3, 1), date(2025, 4, 1), date(2025, 5, 1)] and missing["N"] == [
            date(2025, 5, 1)
        ]

        assert pdsa_repo.add_rebase_date(session, measure=measure, on=date(2025, 6, 1))
        assert not pdsa_repo.add_rebase_date(session, measure=measure, on=date(2025, 6, 1))
        assert measure.rebase_dates == ["2025-06-01"]

        for user, share in (("UP1", True), ("UP2", False)):
            session.add(
                ProjectMember(
                    project_id=project.id or 0,
                    team_id="T1",
                    user_id=user,
                    role="partner",
                    consent="given",
                    share_in_channel=share,
                )
            )
        for user, text, day in (
            ("UP1", "Shared words", 10),
            ("UP2", "Private words", 11),
            ("UP1", "Too late", 28),
        ):
            answer_month = 3 if text != "Too late" else 6
            session.add(
                Answer(
                    project_id=project.id or 0,
                    team_id="T1",
                    prompt_id="p",
                    stage="evaluation",
                    user_id=user,
                    from_partner=True,
                    text=text,
                    created_at=datetime(2025, answer_month, day, 12, tzinfo=UTC),
                )
            )
        session.add(
            Answer(
                project_id=project.id or 0,
                team_id="T1",
                prompt_id="p",
                stage="evaluation",
                user_id=None,
                from_partner=True,
                anonymous=True,
                text="Anonymous",
                audience="partner",
                occurrence_date=date(2025, 4, 1),
                created_at=datetime(2025, 4, 1, tzinfo=UTC),
            )
        )
        session.flush()
        shared, others = pdsa_repo.partner_reflections(
            session, project_id=project.id or 0, start=date(2025, 3, 1), end=date(2025, 5, 31)
        )
        # No round asked of enough partners: the anonymous answer is not even counted (a count would out its author).
        assert shared == ["Shared words"] and others == 1
        from storage import schedule_repo
        from storage.models import Delivery

        schedule = next(
            s
            for s in schedule_repo.ensure_default_schedules(session, project=project)
            if s.kind == "partner_prompt"
        )
        for user in ("UP1", "UP2", "UP3"):
            session.add(
                Delivery(
                    schedule_id=schedule.id or 0,
                    project_id=project.id or 0,
                    team_id="T1",
                    occurrence=datetime(2025, 4, 1, 10, tzinfo=UTC),
                    recipient=user,
                    kind="partner_prompt",
                    prompt_id="p",
                    status="sent",
                )
            )
        session.flush()
        shared, others = pdsa_repo.partner_reflections(
            session, project_id=project.id or 0, start=date(2025, 3, 1), end=date(2025, 5, 31)
        )
        assert shared == ["Shared words"] and others == 2


def test_count_cycles_splits_open_into_running_and_awaiting_study() -> None:
    today = date(2025, 6, 10)
    counts = pdsa.count_cycles(
        [
            ("planned", date(2025, 6, 30)),
            ("doing", date(2025, 6, 10)),
            ("doing", date(2025, 5, 31)),
            ("studied", date(2025, 4, 30)),
            ("acted", date(2025, 3, 31)),
        ],
        today=today,
    )
    assert counts == pdsa.CycleCounts(open=3, running=1, awaiting_study=2, studied=2, acted=1)
    assert counts.running + counts.awaiting_study == counts.open


def test_project_progress_and_the_prompt_chooser_agree_on_cycles(engine: Any) -> None:
    """Both read models count open cycles and cycles awaiting study the same way (they once disagreed:
    the card's progress counted every open cycle as awaiting study, even one still running its test)."""
    from storage import schedule_repo

    today = date(2025, 6, 10)
    with Session(engine) as session, session.begin():
        project = _project(session)
        pdsa_repo.create_cycle(
            session, project=project, created_by="U1", **_fields(end_date=date(2025, 6, 30))
        )
        past = pdsa_repo.create_cycle(
            session, project=project, created_by="U1", **_fields(end_date=date(2025, 5, 31))
        )
        pdsa_repo.set_status(session, cycle=past, status="doing")
        done = pdsa_repo.create_cycle(
            session, project=project, created_by="U1", **_fields(end_date=date(2025, 4, 30))
        )
        pdsa_repo.set_status(session, cycle=done, status="studied")
        progress = repo.project_progress(session, project=project, today=today)
        state = schedule_repo.project_state(session, project, today=today)
    assert progress["open_cycles"] == 2
    assert progress["cycles_awaiting_study"] == 1 == state.cycles_awaiting_study
    assert state.open_cycle_count == progress["open_cycles"] - progress["cycles_awaiting_study"] == 1
    assert progress["studied_cycles"] == 1
