"""The PDSA use cases without Slack, on both databases: each opens and commits its own unit of work and returns
plain values."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlmodel import Session

from bot.core import pdsa
from bot.core.equity.types import GroupCounts
from bot.services import pdsa as cycles
from bot.services import pdsa_act, pdsa_plan, pdsa_study
from storage import pdsa_repo
from storage import repositories as repo
from storage.models import DataBatch, DataPoint, Measure

LEAD, MEMBER = "U0LEAD", "U0MEMBER"
START, END = date(2025, 3, 1), date(2025, 5, 31)


def _setup(engine: Any, *, data: bool = True) -> tuple[int, int, int]:
    """A project (focus groups N and M, reference A), an outcome and a balancing measure, and monthly data."""
    with Session(engine) as session, session.begin():
        project = repo.create_project(
            session,
            team_id="T1",
            enterprise_id=None,
            channel_id="C1",
            created_by=LEAD,
            name="PPH",
            aim="Reduce PPH among Black African women",
            focus_groups=["N", "M"],
            reference_group="A",
            baseline="",
            target="",
            target_date=None,
            racism_context="",
            leads=[LEAD],
            partners=[],
            timezone="Europe/London",
        )
        ids = []
        for name, mtype in (("PPH", "outcome"), ("Caesarean", "balancing")):
            measure = Measure(
                project_id=project.id or 0,
                team_id="T1",
                name=name,
                measure_type=mtype,
                kind="proportion",
                direction="lower",
                created_by=LEAD,
            )
            session.add(measure)
            session.flush()
            ids.append(measure.id or 0)
            if not data:
                continue
            batch = DataBatch(measure_id=measure.id or 0, team_id="T1", source="log")
            session.add(batch)
            session.flush()
            for month in (
                date(2024, 12, 1),
                date(2025, 1, 1),
                date(2025, 2, 1),
                *pdsa.expected_periods(START, END, "month"),
            ):
                for code, (num, den) in {"N": (20, 160), "M": (10, 80), "A": (12, 100)}.items():
                    session.add(
                        DataPoint(
                            measure_id=measure.id or 0,
                            team_id="T1",
                            period_start=month,
                            group_code=code,
                            numerator=num,
                            denominator=den,
                            batch_id=batch.id or 0,
                        )
                    )
        return project.id or 0, ids[0], ids[1]


def _fields(outcome: int, balancing: int | None, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "title": "Interpreter at booking",
        "change_idea": "Book interpreters by default",
        "question": "Will PPH fall?",
        "measure_ids": [outcome],
        "balancing_measure_id": balancing,
        "predictions": [
            pdsa.parse_prediction(
                "better - risk is discussed earlier", group="N", kind="proportion"
            ).as_dict()
        ],
        "plan": {"who": "Midwives", "where": "Clinic", "tasks": []},
        "start_date": START,
        "end_date": END,
        "involvement": "not yet",
        "involvement_pending": True,
    }
    values.update(overrides)
    return values


def _plan(engine: Any, project_id: int, outcome: int, balancing: int | None = None, **kw: Any) -> int:
    saved = pdsa_plan.save_plan(
        engine, team_id="T1", project_id=project_id, user_id=LEAD, fields=_fields(outcome, balancing), **kw
    )
    assert isinstance(saved, pdsa_plan.SavedPlan)
    return saved.cycle_id


def test_plan_forms_save_and_continue_a_ramp(engine: Any) -> None:
    project_id, outcome, balancing = _setup(engine, data=False)
    form = pdsa_plan.new_plan_form(engine, team_id="T1", project_id=project_id)
    assert form is not None and form.groups == ["ALL", "N", "M", "A"] and form.channel_id == "C1"
    assert [(m.name, m.measure_type) for m in form.measures] == [
        ("PPH", "outcome"),
        ("Caesarean", "balancing"),
    ]
    assert form.initial is None and form.earlier_cycles == []
    assert pdsa_plan.new_plan_form(engine, team_id="T2", project_id=project_id) is None  # another workspace's
    assert pdsa_plan.check_plan(engine, team_id="T2", project_id=project_id) == pdsa_plan.PROJECT_GONE

    first = _plan(engine, project_id, outcome, balancing)
    ramp = pdsa_plan.new_plan_form(engine, team_id="T1", project_id=project_id, continue_from=first)
    assert ramp is not None and ramp.continues_ref == "1.2" and ramp.initial is not None
    # The next step starts the day after the last one ended (or today, if later) and lasts as long.
    assert ramp.initial["continue_cycle_id"] == first
    assert ramp.initial["end_date"] - ramp.initial["start_date"] == END - START
    assert ramp.earlier_cycles == [(first, "PDSA 1.1: Interpreter at booking")]
    second = _plan(engine, project_id, outcome, balancing, continue_id=first)
    info = cycles.show_cycle(engine, team_id="T1", cycle_id=second)
    assert (
        info is not None and info.ref == "1.2" and info.balancing == "Caesarean" and info.measures == ["PPH"]
    )
    found = cycles.find_cycle(engine, team_id="T1", project_id=project_id, ref="9")
    assert found.cycle_id is None and found.refs == ["1.1", "1.2"]
    assert cycles.find_cycle(engine, team_id="T1", project_id=project_id, ref="1.1").cycle_id == first


def test_editing_keeps_history_and_a_closed_cycle_is_for_leads(engine: Any) -> None:
    project_id, outcome, balancing = _setup(engine, data=False)
    cycle_id = _plan(engine, project_id, outcome)
    edited = pdsa_plan.save_plan(
        engine,
        team_id="T1",
        project_id=project_id,
        user_id=MEMBER,
        fields=_fields(outcome, balancing, title="Interpreters for all"),
        cycle_id=cycle_id,
    )
    assert isinstance(edited, pdsa_plan.SavedPlan) and edited.changed == ["balancing_measure_id", "title"]
    form = pdsa_plan.edit_plan_form(engine, team_id="T1", cycle_id=cycle_id, user_id=MEMBER)
    assert isinstance(form, pdsa_plan.PlanForm) and not form.closed
    assert form.initial is not None and form.initial["title"] == "Interpreters for all"

    saved = pdsa_act.save_act(
        engine,
        team_id="T1",
        cycle_id=cycle_id,
        user_id=LEAD,
        decision="abandon",
        reason="Did not help",
        involved="no",
        who="",
        rebase_on=None,
        harm_response="",
    )
    assert saved is not None and saved.warning == pdsa_act.ACT_BEFORE_STUDY
    refused = pdsa_plan.edit_plan_form(engine, team_id="T1", cycle_id=cycle_id, user_id=MEMBER)
    assert isinstance(refused, pdsa_plan.Refused) and "Only the project's leads" in refused.text
    as_lead = pdsa_plan.edit_plan_form(engine, team_id="T1", cycle_id=cycle_id, user_id=LEAD)
    assert isinstance(as_lead, pdsa_plan.PlanForm) and as_lead.closed
    again = pdsa_plan.save_plan(
        engine,
        team_id="T1",
        project_id=project_id,
        user_id=MEMBER,
        fields=_fields(outcome, balancing, title="Changed after the act"),
        cycle_id=cycle_id,
    )
    assert again == pdsa_plan.CLOSED
    info = cycles.show_cycle(engine, team_id="T1", cycle_id=cycle_id, with_history=True)
    assert info is not None and info.title == "Interpreters for all" and info.status == "acted"
    assert any("edited balancing_measure_id, title" in line for line in info.history)


def test_do_starts_the_cycle_and_act_records_the_decision(engine: Any) -> None:
    project_id, outcome, _ = _setup(engine, data=False)
    cycle_id = _plan(engine, project_id, outcome)
    assert pdsa_act.cycle_exists(engine, team_id="T1", cycle_id=cycle_id)
    assert not pdsa_act.cycle_exists(engine, team_id="T2", cycle_id=cycle_id)
    kw = {"user_id": MEMBER, "what": "Booked 14", "as_planned": "partly", "observations": ""}
    first = pdsa_act.save_do(engine, team_id="T1", cycle_id=cycle_id, **kw)
    second = pdsa_act.save_do(engine, team_id="T1", cycle_id=cycle_id, **kw)
    assert first is not None and first.started and first.ref == "1.1" and first.involvement_pending
    assert second is not None and not second.started
    assert pdsa_act.save_do(engine, team_id="T2", cycle_id=cycle_id, **kw) is None

    assert pdsa_act.check_act(engine, team_id="T1", cycle_id=cycle_id, user_id=MEMBER) is None
    assert pdsa_act.check_act(engine, team_id="T1", cycle_id=0, user_id=MEMBER) == pdsa_act.CYCLE_GONE
    form = pdsa_act.act_form(engine, team_id="T1", cycle_id=cycle_id, user_id=MEMBER)
    assert isinstance(form, pdsa_act.ActForm) and form.measure_name == "PPH" and form.harm == []
    saved = pdsa_act.save_act(
        engine,
        team_id="T1",
        cycle_id=cycle_id,
        user_id=LEAD,
        decision="adopt",
        reason="Worked for every group",
        involved="yes",
        who="MVP reps",
        rebase_on=date(2025, 6, 1),
        harm_response="",
    )
    assert saved is not None and saved.next_step == 2 and saved.warning == pdsa_act.ACT_BEFORE_STUDY
    assert saved.rebase_note == "PPH's SPC limits will be recalculated from 2025-06-01."
    assert (
        pdsa_act.check_act(engine, team_id="T1", cycle_id=cycle_id, user_id=MEMBER)
        == pdsa_act.CLOSED_ON_SUBMIT
    )
    assert pdsa_act.check_act(engine, team_id="T1", cycle_id=cycle_id, user_id=LEAD) is None
    assert pdsa_act.act_form(engine, team_id="T1", cycle_id=cycle_id, user_id=MEMBER) == pdsa_act.CLOSED
    with Session(engine) as session:
        measure = session.get(Measure, outcome)
        assert measure is not None and measure.rebase_dates == ["2025-06-01"]
        (act,) = pdsa_repo.entries(session, cycle_id=cycle_id, kind="act")
        assert act.data["decision"] == "adopt" and act.data["rebase"] == "2025-06-01"


def test_study_form_check_and_save(engine: Any) -> None:
    project_id, outcome, balancing = _setup(engine)
    cycle_id = _plan(engine, project_id, outcome, balancing)
    form = pdsa_study.study_form(engine, team_id="T1", cycle_id=cycle_id)
    assert isinstance(form, pdsa_study.StudyForm) and form.measure.name == "PPH"
    assert form.prefill["N"] == (60, 480) and form.prefill["ALL"] == (126, 1020)
    assert form.missing.have_any and form.missing.missing["N"] == []

    check = pdsa_study.check_study(
        engine, team_id="T1", cycle_id=cycle_id, measure_id=outcome, user_id=MEMBER
    )
    assert check.problem is None and check.groups == ["ALL", "N", "M", "A"]
    gone = pdsa_study.check_study(engine, team_id="T1", cycle_id=cycle_id, measure_id=0, user_id=MEMBER)
    assert gone.problem == "This cycle or its measure no longer exists."

    observed = {"N": GroupCounts("N", 30, 480), "A": GroupCounts("A", 36, 300)}
    outcome_ = pdsa_study.save_study(
        engine,
        team_id="T1",
        cycle_id=cycle_id,
        measure_id=outcome,
        user_id=MEMBER,
        groups=check.groups,
        observed=observed,
        learning="It helped",
    )
    assert outcome_ is not None and outcome_.ref == "1.1" and outcome_.measure_name == "PPH"
    assert outcome_.window == "1 Mar 2025 to 31 May 2025" and outcome_.balancing_name == "Caesarean"
    by_group = {r.group: r for r in outcome_.results}
    assert by_group["N"].outcome == "held"  # predicted better; 6.25% against 12.5% before
    assert by_group["M"].prediction is None
    with Session(engine) as session:
        (entry,) = pdsa_repo.entries(session, cycle_id=cycle_id, kind="study")
        assert (
            entry.data["observed"] == {"N": [30, 480], "A": [36, 300]}
            and entry.data["learning"] == "It helped"
        )
        assert entry.data["baseline_window"] == ["2024-12-01", "2025-02-28"]
    info = cycles.show_cycle(engine, team_id="T1", cycle_id=cycle_id)
    assert info is not None and info.status == "studied"
    # The study was saved once the form was checked; a cycle gone by then saves nothing.
    assert (
        pdsa_study.save_study(
            engine,
            team_id="T2",
            cycle_id=cycle_id,
            measure_id=outcome,
            user_id=MEMBER,
            groups=check.groups,
            observed=observed,
            learning="",
        )
        is None
    )


def test_study_form_without_a_measure_or_data(engine: Any) -> None:
    project_id, outcome, _ = _setup(engine, data=False)
    cycle_id = _plan(engine, project_id, outcome)
    form = pdsa_study.study_form(engine, team_id="T1", cycle_id=cycle_id)
    assert isinstance(form, pdsa_study.StudyForm) and not form.missing.have_any and form.prefill == {}
    missing = pdsa_study.missing_data(
        engine, team_id="T1", cycle_id=cycle_id, measure_id=outcome, groups=["ALL", "N"]
    )
    assert missing is not None and missing.periods == [date(2025, 3, 1), date(2025, 4, 1), date(2025, 5, 1)]
    assert missing.missing["N"] == missing.periods
    with Session(engine) as session, session.begin():
        cycle = pdsa_repo.get_cycle_by_id(session, team_id="T1", cycle_id=cycle_id)
        assert cycle is not None
        cycle.measure_ids = []
        session.add(cycle)
    no_measure = pdsa_study.study_form(engine, team_id="T1", cycle_id=cycle_id)
    assert isinstance(no_measure, cycles.CycleInfo) and no_measure.ref == "1.1"


def test_the_card_and_the_list(engine: Any) -> None:
    project_id, outcome, _ = _setup(engine, data=False)
    cycle_id = _plan(engine, project_id, outcome)
    card = cycles.card(engine, team_id="T1", cycle_id=cycle_id, new=True)
    assert card is not None and card.card_ts is None and card.balancing_exists and card.channel_id == "C1"
    cycles.set_card_ts(engine, team_id="T1", cycle_id=cycle_id, ts="123.456")
    place = cycles.cycle_place(engine, team_id="T1", cycle_id=cycle_id)
    assert place == cycles.CyclePlace(cycle_id, project_id, "C1", "123.456")
    assert cycles.cycle_place(engine, team_id="T2", cycle_id=cycle_id) is None
    infos, record = cycles.list_cycles(engine, team_id="T1", project_id=project_id)
    assert [i.ref for i in infos] == ["1.1"] and record is None  # no study yet, so no prediction record
    assert cycles.channel_project_id(engine, team_id="T1", channel_id="C1") == project_id
    assert cycles.channel_project_id(engine, team_id="T1", channel_id="C2") is None
