"""PDSA cycles end to end: the real bot over HTTP against the Slack stand-in, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlmodel import Session, select

from bot.core.equity.disclosure import check_text_for_disclosure
from handlers.blocks import ids
from storage.models import Answer, DataBatch, DataPoint, Measure, PdsaCycle, PdsaEntry, Project, ProjectMember
from tests.helpers import ANALYST, CHANNEL, LEAD, MIDWIFE, start_project

START, END = date(2025, 3, 1), date(2025, 5, 31)
MONTHS_BEFORE = [date(2024, 11, 1), date(2024, 12, 1), date(2025, 1, 1), date(2025, 2, 1)]
MONTHS_DURING = [date(2025, 3, 1), date(2025, 4, 1), date(2025, 5, 1)]
# Per month: (numerator, denominator). M and A have small monthly counts on purpose (raw 2, 3, 5).
PPH_BEFORE = {"N": (20, 160), "M": (5, 40), "A": (2, 100)}
PPH_DURING = {"N": (20, 160), "M": (3, 40), "A": (2, 100)}
CS_BEFORE = {"N": (30, 160), "A": (20, 100)}
CS_DURING = {"N": (45, 160), "A": (20, 100)}
RAW_SMALL = [2, 3, 5, 6, 9]
PARTNER = "U0PARTNER1"


def _project(engine: Any, channel: str = CHANNEL) -> Project:
    with Session(engine) as session:
        project = session.exec(select(Project).where(Project.channel_id == channel)).one()
        session.expunge(project)
        return project


def seed(engine: Any, channel: str = CHANNEL, *, with_data: bool = True) -> dict[str, int]:
    """Two measures (PPH outcome, emergency caesarean balancing) and monthly data by group."""
    project = _project(engine, channel)
    assert project.id is not None
    out: dict[str, int] = {}
    with Session(engine) as session, session.begin():
        for name, mtype, before, during in (
            ("PPH 1,000 ml or more", "outcome", PPH_BEFORE, PPH_DURING),
            ("Emergency caesarean", "balancing", CS_BEFORE, CS_DURING),
        ):
            measure = Measure(
                project_id=project.id,
                team_id=project.team_id,
                name=name,
                measure_type=mtype,
                kind="proportion",
                direction="lower",
                created_by=LEAD,
            )
            session.add(measure)
            session.flush()
            assert measure.id is not None
            out[mtype] = measure.id
            if not with_data:
                continue
            batch = DataBatch(measure_id=measure.id, team_id=project.team_id, source="log", user_id=ANALYST)
            session.add(batch)
            session.flush()
            assert batch.id is not None
            for months, counts in ((MONTHS_BEFORE, before), (MONTHS_DURING, during)):
                for month in months:
                    for code, (num, den) in counts.items():
                        session.add(
                            DataPoint(
                                measure_id=measure.id,
                                team_id=project.team_id,
                                period_start=month,
                                group_code=code,
                                numerator=num,
                                denominator=den,
                                batch_id=batch.id,
                            )
                        )
    return out


PLAN = {
    ids.B_PDSA_TITLE: "Interpreter at booking",
    ids.B_PDSA_CHANGE: "Offer a professional interpreter at booking for women whose first language is not English",
    ids.B_PDSA_QUESTION: "Will PPH fall for Black African women when interpreters are booked by default?",
    ids.B_PDSA_PREDICT_PREFIX + "ALL": "8% — small overall effect",
    ids.B_PDSA_PREDICT_PREFIX + "N": "9% — interpreters at booking reach more Black African women",
    ids.B_PDSA_PREDICT_PREFIX + "M": "better — risk is discussed earlier",
    ids.B_PDSA_PREDICT_PREFIX + "A": "same — most already speak English",
    ids.B_PDSA_WHO: "Grace Okafor and the booking midwives",
    ids.B_PDSA_WHERE: "Antenatal clinic, Preston",
    ids.B_PDSA_START: START.isoformat(),
    ids.B_PDSA_END: END.isoformat(),
    ids.B_PDSA_TASKS: "Brief booking midwives\nAdd interpreter flag to booking form",
    ids.B_PDSA_INVOLVEMENT: "Two Black African mothers from the Maternity Voices Partnership",
}


def plan(live: Any, measures: dict[str, int], *, user: str = LEAD, **overrides: Any) -> Any:
    view = live.driver.slash("/pdsa", "new", user=user, channel=CHANNEL).wait_view()
    values = {
        **PLAN,
        ids.B_PDSA_MEASURES: [str(measures["outcome"])],
        ids.B_PDSA_BALANCING: str(measures["balancing"]),
        **overrides,
    }
    values = {k: v for k, v in values.items() if v is not None}
    return view, live.driver.submit_view(view["id"], values, user=user)


def cycles(engine: Any) -> list[PdsaCycle]:
    with Session(engine) as session:
        return list(session.exec(select(PdsaCycle).order_by(PdsaCycle.number)))  # type: ignore[arg-type]


def entries(engine: Any, kind: str | None = None) -> list[PdsaEntry]:
    with Session(engine) as session:
        rows = list(session.exec(select(PdsaEntry).order_by(PdsaEntry.id)))  # type: ignore[arg-type]
    return [e for e in rows if kind is None or e.kind == kind]


def card(live: Any, number: int = 1) -> Any:
    found = [c for c in cycles(live.engine) if c.number == number][0]
    assert found.card_ts
    return live.standin.message(CHANNEL, found.card_ts)


def thread(live: Any, number: int = 1) -> list[Any]:
    found = [c for c in cycles(live.engine) if c.number == number][0]
    assert found.card_ts
    return list(live.standin.thread(CHANNEL, found.card_ts))


def wait_thread(live: Any, contains: str, number: int = 1) -> Any:
    return live.standin.wait_for(
        lambda: next((m for m in thread(live, number) if contains in m.text + str(m.blocks)), None)
    )


def last_ephemeral(live: Any, user: str = LEAD, after: int = 0) -> str:
    def found() -> str | None:
        items = live.standin.ephemerals(user)[after:]
        return items[-1].text + str(getattr(items[-1], "blocks", "")) if items else None

    return str(live.standin.wait_for(found))


def assert_safe(live: Any) -> None:
    """Every message the bot posted passes the disclosure check. Words the team typed themselves (who shaped the
    test: "Two Black African mothers ...") are quoted as typed, so they are taken out before checking the bot's own."""
    typed = [v for v in PLAN.values() if isinstance(v, str)]
    for message in live.standin.messages(CHANNEL):
        text = message.text + " " + str(message.blocks)
        for words in typed:
            text = text.replace(words, "")
        assert check_text_for_disclosure(text, RAW_SMALL) == [], text
    assert live.standin.violations == []


def do(live: Any, what: str = "Interpreters booked for 14 women", planned: str = "partly") -> None:
    view = live.driver.slash("/pdsa", "do 1", user=MIDWIFE, channel=CHANNEL).wait_view()
    response = live.driver.submit_view(
        view["id"],
        {
            ids.B_PDSA_DO_WHAT: what,
            ids.B_PDSA_DO_AS_PLANNED: planned,
            ids.B_PDSA_DO_OBSERVATIONS: "Telephone interpreters were late",
        },
        user=MIDWIFE,
    )
    assert not response.body


def study(live: Any, ref: str = "1", values: dict[str, Any] | None = None) -> tuple[dict[str, Any], Any]:
    view = live.driver.slash("/pdsa", f"study {ref}", user=ANALYST, channel=CHANNEL).wait_view()
    response = live.driver.submit_view(
        view["id"], values or {ids.B_PDSA_STUDY_LEARNING: "It helped some, not all"}, user=ANALYST
    )
    return view, response


def act(live: Any, decision: str = "adapt", ref: str = "1", user: str = LEAD, **extra: Any) -> Any:
    view = live.driver.slash("/pdsa", f"act {ref}", user=user, channel=CHANNEL).wait_view()
    values = {
        ids.B_PDSA_DECISION: decision,
        ids.B_PDSA_ACT_REASON: "Works for Black Caribbean women, not yet for "
        "Black African women: add video interpreting",
        ids.B_PDSA_ACT_INVOLVED: "partly",
        ids.B_PDSA_ACT_WHO: "Maternity Voices Partnership reps",
        **extra,
    }
    return view, live.driver.submit_view(view["id"], values, user=user)


# ---------------------------------------------------------------- the full cycle


def test_full_cycle_plan_do_study_act_adapt_next(live: Any) -> None:
    start_project(live)
    measures = seed(live.engine)
    with Session(live.engine) as session, session.begin():
        project = session.exec(select(Project)).one()
        session.add(
            ProjectMember(
                project_id=project.id or 0,
                team_id=project.team_id,
                user_id=PARTNER,
                role="partner",
                consent="given",
                share_in_channel=False,
            )
        )
        for day in (date(2025, 3, 10), date(2025, 4, 2)):
            session.add(
                Answer(
                    project_id=project.id or 0,
                    team_id=project.team_id,
                    prompt_id="p",
                    stage="evaluation",
                    user_id=PARTNER,
                    from_partner=True,
                    text="Private reflection",
                    created_at=datetime.combine(day, datetime.min.time(), tzinfo=UTC),
                )
            )

    _, response = plan(live, measures)
    assert not response.body, response.body
    message = live.standin.wait_for(lambda: cycles(live.engine)[0].card_ts and card(live))
    texts = str(message.blocks)
    assert "PDSA 1.1: Interpreter at booking" in texts
    assert "9.0%" in texts and "interpreters at booking reach more Black African women" in texts
    assert "1 Mar 2025 to 31 May 2025" in texts
    assert {"Do", "Study", "Act"} <= {
        e["text"]["text"] for b in message.blocks if b["type"] == "actions" for e in b["elements"]
    }
    (cycle,) = cycles(live.engine)
    assert cycle.status == "planned" and cycle.series_id == cycle.id and cycle.ramp_step == 1
    assert cycle.plan["tasks"] == ["Brief booking midwives", "Add interpreter flag to booking form"]

    # Do, twice: from the card's button and from the command.
    live.driver.click(ids.A_PDSA_DO, user=MIDWIFE, message=message)
    do_view = live.standin.wait_for(
        lambda: next((v for v in live.standin.views() if v.get("callback_id") == ids.CB_PDSA_DO), None)
    )
    live.driver.submit_view(
        do_view["id"],
        {ids.B_PDSA_DO_WHAT: "Booked interpreters in week one", ids.B_PDSA_DO_AS_PLANNED: "yes"},
        user=MIDWIFE,
    )
    do(live)
    wait_thread(live, "Telephone interpreters were late")
    assert cycles(live.engine)[0].status == "doing"
    assert len(entries(live.engine, "do")) == 2

    # Study: the modal is pre-filled from the logged data for the window.
    view, response = study(live)
    initial = {
        b["block_id"]: b["element"].get("initial_value") for b in view["blocks"] if b["type"] == "input"
    }
    assert initial[ids.B_PDSA_OBSERVED_PREFIX + "N"] == "60/480"
    assert initial[ids.B_PDSA_OBSERVED_PREFIX + "M"] == "9/120"
    assert initial[ids.B_PDSA_OBSERVED_PREFIX + "ALL"] == "75/900"
    assert not response.body
    posted = wait_thread(live, "Predicted against observed")
    body = str(posted.blocks)
    assert "did *not* hold for Black or Black British - African (N)" in body
    assert "White - British (A)* — predicted same · observed <8 of 300" in body
    assert "could not be judged" in body
    # Harm first: the worsening balancing measure comes before the predictions and the verdict.
    assert "Emergency caesarean got worse for Black African" in body
    # The balancing section, which lists only what is not yet clear, says where the clear worsening went.
    balancing = body[body.index("*Balancing measure (Emergency caesarean)") :]
    assert "clearly got worse" in balancing and "Harm to check first*, above" in balancing
    assert "did not get worse for any group" not in body
    assert (
        body.index("Harm to check first")
        < body.index("Predicted against observed")
        < body.index("Did it work for everyone?")
        < body.index("Who did this not work for?")
    )
    assert "Fewer than 8 other partner reflections" in body and "Private reflection" not in body
    assert "Who did this not work for?" in body
    (study_entry,) = entries(live.engine, "study")
    outcomes = {s["group"]: s["outcome"] for s in study_entry.data["scores"]}
    assert outcomes == {"ALL": "held", "N": "not_held", "M": "held", "A": "not_judged"}
    assert cycles(live.engine)[0].status == "studied"

    # Act shows the harm signal and asks for a response before anything is adopted.
    view, refused = act(live, decision="adopt")
    assert "The Study found a harm signal" in str(view["blocks"]) and "Emergency caesarean" in str(
        view["blocks"]
    )
    assert "before adopting" in refused.json["errors"][ids.B_PDSA_ACT_HARM]
    assert cycles(live.engine)[0].status == "studied"
    # Act: adapt, then the next cycle pre-filled and continuing the ramp.
    _, response = act(live)
    assert not response.body
    act_post = wait_thread(live, "Act: adapt")
    assert cycles(live.engine)[0].status == "acted" and cycles(live.engine)[0].decision == "adapt"
    assert "Did those most affected take part in this decision?" in str(act_post.blocks)
    live.driver.click(ids.A_PDSA_NEXT, user=LEAD, message=act_post)
    next_view = live.standin.wait_for(
        lambda: next((v for v in live.standin.views() if v.get("callback_id") == ids.CB_PDSA_NEW), None)
    )
    prefilled = {b["block_id"]: b["element"] for b in next_view["blocks"] if b["type"] == "input"}
    assert prefilled[ids.B_PDSA_TITLE]["initial_value"] == "Interpreter at booking"
    assert prefilled[ids.B_PDSA_PREDICT_PREFIX + "N"]["initial_value"].startswith("9%")
    assert prefilled[ids.B_PDSA_CONTINUE]["initial_option"]["value"] == str(cycle.id)
    assert prefilled[ids.B_PDSA_START]["initial_date"] > END.isoformat()
    assert "PDSA 1.2" in str(next_view["blocks"])
    live.driver.submit_view(
        next_view["id"], {ids.B_PDSA_TITLE: "Interpreter at booking, with video"}, user=LEAD
    )
    live.standin.wait_for(lambda: len(cycles(live.engine)) == 2 and cycles(live.engine)[1].card_ts)
    second = cycles(live.engine)[1]
    assert (second.series_id, second.ramp_step, second.previous_cycle_id) == (cycle.id, 2, cycle.id)
    assert "PDSA 1.2: Interpreter at booking, with video" in str(card(live, 2).blocks)

    # The first cycle's thread holds its history, in order.
    kinds = [m.text for m in thread(live)]
    assert any("Do" in t for t in kinds) and any("Study of PDSA 1.1" in t for t in kinds)
    assert any(t.startswith("Act: adapt") for t in kinds)
    assert_safe(live)


# ---------------------------------------------------------------- bad input


def test_plan_errors_are_inline_and_nothing_is_saved(live: Any) -> None:
    start_project(live)
    measures = seed(live.engine, with_data=False)
    view, response = plan(
        live,
        measures,
        **{
            ids.B_PDSA_START: "2025-05-01",
            ids.B_PDSA_END: "2025-04-01",
            ids.B_PDSA_MEASURES: [],
            ids.B_PDSA_PREDICT_PREFIX + "M": "somewhat — no idea",
        },
    )
    errors = response.json["errors"]
    assert "before the start date" in errors[ids.B_PDSA_END]
    assert "needs a measure" in errors[ids.B_PDSA_MEASURES]
    assert "couldn't read" in errors[ids.B_PDSA_PREDICT_PREFIX + "M"]
    assert cycles(live.engine) == [] and entries(live.engine) == []
    assert live.standin.is_open(view["id"])


def test_no_measures_the_modal_says_how_and_a_prediction_is_an_error(live: Any) -> None:
    start_project(live)
    view = live.driver.slash("/pdsa", "new", user=LEAD, channel=CHANNEL).wait_view()
    assert "/measure new" in str(view["blocks"])
    values = dict(PLAN)
    response = live.driver.submit_view(view["id"], values, user=LEAD)
    assert "has none yet" in response.json["errors"][ids.B_PDSA_PREDICT_PREFIX + "ALL"]
    assert cycles(live.engine) == []


def test_project_card_button_opens_the_plan(live: Any) -> None:
    started = start_project(live)
    live.driver.click(ids.A_OPEN_PDSA_NEW, user=LEAD, message=started["message"])
    live.standin.wait_for(
        lambda: next((v for v in live.standin.views() if v.get("callback_id") == ids.CB_PDSA_NEW), None)
    )


def test_study_with_no_data_says_what_is_missing(live: Any) -> None:
    start_project(live)
    measures = seed(live.engine, with_data=False)
    plan(live, measures)
    live.standin.wait_for(lambda: cycles(live.engine) and cycles(live.engine)[0].card_ts)
    view, response = study(live)
    shown = str(view["blocks"])
    assert "No data logged for PPH 1,000 ml or more" in shown and "Mar 2025, Apr 2025, May 2025" in shown
    assert "/measure log" in shown and "/measure import" in shown
    error = response.json["errors"][ids.B_PDSA_OBSERVED_PREFIX + "ALL"]
    assert "No data logged" in error and "/measure import" in error
    assert entries(live.engine, "study") == [] and cycles(live.engine)[0].status == "planned"
    # Results typed by hand are accepted, and bad ones are inline errors.
    response = live.driver.submit_view(
        view["id"], {ids.B_PDSA_OBSERVED_PREFIX + "N": "70 of sixty"}, user=ANALYST
    )
    assert "events/total" in response.json["errors"][ids.B_PDSA_OBSERVED_PREFIX + "N"]
    response = live.driver.submit_view(
        view["id"],
        {ids.B_PDSA_OBSERVED_PREFIX + "N": "40/480", ids.B_PDSA_OBSERVED_PREFIX + "A": "3/300"},
        user=ANALYST,
    )
    assert not response.body
    wait_thread(live, "Predicted against observed")
    assert cycles(live.engine)[0].status == "studied"
    assert_safe(live)


def test_acting_before_study_records_a_warning(live: Any) -> None:
    start_project(live)
    measures = seed(live.engine)
    plan(live, measures)
    live.standin.wait_for(lambda: cycles(live.engine) and cycles(live.engine)[0].card_ts)
    view, response = act(live, decision="adopt")
    assert "hasn't been studied yet" in str(view["blocks"])
    assert not response.body
    posted = wait_thread(live, "Warning recorded")
    assert "before the cycle was studied" in str(posted.blocks)
    (warning,) = entries(live.engine, "warning")
    assert warning.data["code"] == "act_before_study"
    assert cycles(live.engine)[0].status == "acted"


def test_act_validation_and_rebase(live: Any) -> None:
    start_project(live)
    measures = seed(live.engine)
    plan(live, measures)
    live.standin.wait_for(lambda: cycles(live.engine) and cycles(live.engine)[0].card_ts)
    view, response = act(live, decision="adapt", **{ids.B_PDSA_REBASE: ["rebase"], ids.B_PDSA_ACT_WHO: None})
    errors = response.json["errors"]
    assert "Only an adopted change" in errors[ids.B_PDSA_REBASE]
    assert "Say who took part" in errors[ids.B_PDSA_ACT_WHO]
    assert entries(live.engine, "act") == [] and entries(live.engine, "warning") == []
    assert cycles(live.engine)[0].status == "planned"
    values = {
        ids.B_PDSA_DECISION: "adopt",
        ids.B_PDSA_ACT_REASON: "Worked for every group",
        ids.B_PDSA_ACT_INVOLVED: "no",
        ids.B_PDSA_REBASE: ["rebase"],
    }
    response = live.driver.submit_view(view["id"], values, user=LEAD)
    assert "Choose the date" in response.json["errors"][ids.B_PDSA_REBASE_DATE]
    response = live.driver.submit_view(
        view["id"], {**values, ids.B_PDSA_REBASE_DATE: "2025-06-01"}, user=LEAD
    )
    assert not response.body
    wait_thread(live, "recalculated from 2025-06-01")
    with Session(live.engine) as session:
        measure = session.get(Measure, measures["outcome"])
        assert measure is not None and measure.rebase_dates == ["2025-06-01"]


def test_editing_a_closed_cycle_leads_only_history_kept(live: Any) -> None:
    start_project(live)
    measures = seed(live.engine)
    plan(live, measures)
    live.standin.wait_for(lambda: cycles(live.engine) and cycles(live.engine)[0].card_ts)
    study(live)
    act(live, decision="abandon")
    live.standin.wait_for(lambda: cycles(live.engine)[0].status == "acted")
    seen = len(live.standin.ephemerals(MIDWIFE))
    live.driver.slash("/pdsa", "edit 1", user=MIDWIFE, channel=CHANNEL)
    assert "Only the project's leads" in last_ephemeral(live, MIDWIFE, seen)
    view = live.driver.slash("/pdsa", "edit 1", user=LEAD, channel=CHANNEL).wait_view()
    assert "This cycle is closed" in str(view["blocks"])
    response = live.driver.submit_view(
        view["id"], {ids.B_PDSA_TITLE: "Interpreter at booking (all languages)"}, user=LEAD
    )
    assert not response.body
    wait_thread(live, "edited the plan")
    (edit,) = entries(live.engine, "edit")
    assert edit.data["previous"] == {"title": "Interpreter at booking"}
    assert cycles(live.engine)[0].title == "Interpreter at booking (all languages)"
    assert "Interpreter at booking (all languages)" in str(card(live).blocks)
    # /pdsa show lists the history, the edit included.
    seen = len(live.standin.ephemerals(LEAD))
    live.driver.slash("/pdsa", "show 1", user=LEAD, channel=CHANNEL)
    shown = last_ephemeral(live, LEAD, seen)
    assert "edited title" in shown and "Act: *abandon*" in shown


def test_unknown_cycle_gets_ephemeral_help(live: Any) -> None:
    start_project(live)
    result = live.driver.slash("/pdsa", "do 7", user=LEAD, channel=CHANNEL)
    text = str(result.response.body) + last_ephemeral(live)
    assert "no cycles yet" in text or "There's no PDSA cycle" in text


def test_involvement_not_yet_reminds_and_lists_on_home(live: Any) -> None:
    start_project(live)
    measures = seed(live.engine)
    plan(live, measures, **{ids.B_PDSA_INVOLVEMENT: "Not yet", ids.B_PDSA_BALANCING: None})
    live.standin.wait_for(lambda: cycles(live.engine) and cycles(live.engine)[0].card_ts)
    assert cycles(live.engine)[0].involvement_pending
    wait_thread(live, "no one from the communities most affected has shaped this test yet")
    wait_thread(live, "no balancing measure")
    live.driver.open_home(LEAD)
    home = live.standin.wait_for(
        lambda: "Still to involve" in str(live.standin.home_view(LEAD)) and live.standin.home_view(LEAD)
    )
    assert "PDSA 1.1" in str(home)


@pytest.mark.clock(datetime(2025, 2, 20, 10, tzinfo=UTC))
def test_overdue_listing_and_prediction_record(live: Any, clock: Any) -> None:
    start_project(live)
    measures = seed(live.engine)
    plan(live, measures)  # planned in February for March to May
    live.standin.wait_for(lambda: cycles(live.engine) and cycles(live.engine)[0].card_ts)
    clock.move_to(datetime(2025, 6, 10, 10, tzinfo=UTC))  # ended 31 May 2025: overdue until studied
    seen = len(live.standin.ephemerals(LEAD))
    live.driver.slash("/pdsa", "list", user=LEAD, channel=CHANNEL)
    listing = last_ephemeral(live, LEAD, seen)
    assert "OVERDUE" in listing and "PDSA 1.1" in listing
    live.driver.open_home(LEAD)
    live.standin.wait_for(lambda: "OVERDUE" in str(live.standin.home_view(LEAD)))
    study(live)
    live.standin.wait_for(lambda: cycles(live.engine)[0].status == "studied")
    seen = len(live.standin.ephemerals(LEAD))
    live.driver.slash("/pdsa", "list", user=LEAD, channel=CHANNEL)
    listing = last_ephemeral(live, LEAD, seen)
    assert "OVERDUE" not in listing
    assert "for Black or Black British - African (N) 0 times out of 1" in listing
    assert "for Black or Black British - Caribbean (M) 1 time out of 1" in listing
    live.driver.open_home(LEAD)
    live.standin.wait_for(lambda: "0 times out of 1" in str(live.standin.home_view(LEAD)))


def test_cycles_are_isolated_per_channel(live: Any) -> None:
    live.standin.add_channel("C0SECONDQI", "second-qi", members=[LEAD, MIDWIFE])
    start_project(live)
    measures = seed(live.engine)
    plan(live, measures)
    message = live.standin.wait_for(
        lambda: cycles(live.engine) and cycles(live.engine)[0].card_ts and card(live)
    )
    start_project(live, channel="C0SECONDQI")
    seen = len(live.standin.ephemerals(LEAD))
    live.driver.slash("/pdsa", "show 1", user=LEAD, channel="C0SECONDQI")
    assert "no cycles yet" in last_ephemeral(live, LEAD, seen)
    seen = len(live.standin.ephemerals(LEAD))
    live.driver.slash("/pdsa", "list", user=LEAD, channel="C0SECONDQI")
    assert "Interpreter at booking" not in last_ephemeral(live, LEAD, seen)
    # A cycle id from another channel's card is refused.
    other = live.standin.add_user_message("C0SECONDQI", LEAD, "copy")
    other.blocks = message.blocks
    live.driver.click(ids.A_PDSA_DO, user=LEAD, message=other)
    assert "another channel" in last_ephemeral(live, LEAD, seen + 1)
    assert not any(v.get("callback_id") == ids.CB_PDSA_DO for v in live.standin.views())


@pytest.mark.clock(datetime(2026, 3, 10, 9, 30, tzinfo=UTC))
def test_a_cycle_planned_after_its_dates_is_not_overdue_and_asks_what_happened(live: Any) -> None:
    # Today is 10 March 2026; the test ran March to May 2025 and is being written up now. That is normal.
    start_project(live)
    measures = seed(live.engine)
    plan(live, measures)
    message = live.standin.wait_for(lambda: cycles(live.engine)[0].card_ts and card(live))
    posted = str(message.blocks)
    assert "OVERDUE" not in posted
    assert "This test has already run: log what happened (`/pdsa do 1.1`)" in posted
    seen = len(live.standin.ephemerals(LEAD))
    live.driver.slash("/pdsa", "list", user=LEAD, channel=CHANNEL)
    listing = last_ephemeral(live, LEAD, seen)
    assert "OVERDUE" not in listing and "already run" in listing
    live.driver.open_home(LEAD)
    home = live.standin.wait_for(
        lambda: "PDSA 1.1" in str(live.standin.home_view(LEAD)) and live.standin.home_view(LEAD)
    )
    assert "OVERDUE" not in str(home)
    # Logging what happened moves it on to the Study, still without the alarm.
    do(live)
    live.standin.wait_for(lambda: cycles(live.engine)[0].status == "doing")
    seen = len(live.standin.ephemerals(LEAD))
    live.driver.slash("/pdsa", "list", user=LEAD, channel=CHANNEL)
    listing = last_ephemeral(live, LEAD, seen)
    assert "OVERDUE" not in listing and "/pdsa study 1.1" in listing


def test_one_numbering_on_the_card_list_and_errors(live: Any) -> None:
    start_project(live)
    measures = seed(live.engine)
    plan(live, measures)
    first = live.standin.wait_for(lambda: cycles(live.engine)[0].card_ts and card(live))
    assert "PDSA 1.1" in str(first.blocks) and "Cycle 1" not in str(first.blocks)
    # A second, separate test: cycle number 2, shown as PDSA 2.1 everywhere, never "Cycle 2".
    plan(live, measures, **{ids.B_PDSA_TITLE: "Video interpreting"})
    second = live.standin.wait_for(
        lambda: len(cycles(live.engine)) == 2 and cycles(live.engine)[1].card_ts and card(live, 2)
    )
    text = str(second.blocks)
    assert "PDSA 2.1" in text and "Cycle 2" not in text and "ramp step" not in text
    seen = len(live.standin.ephemerals(LEAD))
    live.driver.slash("/pdsa", "show 9", user=LEAD, channel=CHANNEL)
    error = last_ephemeral(live, LEAD, seen)
    assert "1.1, 2.1" in error and "cycle 1" not in error.lower().replace("pdsa cycle", "")


def test_a_study_is_acknowledged_before_it_is_scored(live: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Slack waits 3 seconds for the acknowledgement: the form is validated, acknowledged, and only then scored,
    checked for harm and saved (while scoring is held back here, the submission has already been answered)."""
    import threading

    from bot.core import pdsa as core_pdsa

    start_project(live)
    measures = seed(live.engine)
    plan(live, measures)
    live.standin.wait_for(lambda: cycles(live.engine)[0].card_ts)
    scoring, release = threading.Event(), threading.Event()
    real_score_all = core_pdsa.score_all

    def held_back(*args: Any, **kwargs: Any) -> Any:
        scoring.set()
        release.wait(20)
        return real_score_all(*args, **kwargs)

    monkeypatch.setattr(core_pdsa, "score_all", held_back)
    try:
        _, response = study(live)  # returns when the bot has acknowledged the submission
        assert not response.body
        assert scoring.wait(10)
        assert entries(live.engine, "study") == []  # acknowledged while the scoring is still running
    finally:
        release.set()
    wait_thread(live, "Predicted against observed")
    assert len(entries(live.engine, "study")) == 1
