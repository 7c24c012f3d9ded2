"""End to end: /mfi schedule, answering prompts, pins and skips, the leads' Home section and the CSV export."""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event
from sqlmodel import Session, select

from bot.core.prompts import choose_prompt, load_catalogue
from bot.core.schedule_rules import next_occurrence
from handlers.blocks import ids
from handlers.blocks import prompts as pb
from storage import schedule_repo as sched
from storage.models import Answer, Delivery, Project, PromptChoice, Schedule, ViewGrant
from tests.helpers import CHANNEL, LEAD, MIDWIFE, clock_now, start_project

PARTNER = "U0PARTNER1"


# --- helpers shared with test_partners and test_nudge ----------------------------------------------------------


def project_row(live: Any) -> Project:
    with Session(live.engine) as session:
        project = session.exec(select(Project)).one()
        session.expunge(project)
        return project


def schedule_rows(live: Any) -> dict[str, Schedule]:
    with Session(live.engine) as session:
        rows = {s.kind: s for s in session.exec(select(Schedule))}
        for row in rows.values():
            session.expunge(row)
        return rows


def next_run(live: Any, kind: str, after: datetime | None = None) -> datetime:
    """Just after the next occurrence of one of the project's schedules."""
    from storage.db import unit_of_work

    with unit_of_work(live.engine) as session:
        project = session.exec(select(Project)).one()
        schedule = next(s for s in sched.ensure_default_schedules(session, project=project) if s.kind == kind)
        spec = sched.spec_for(schedule, region=project.region)
    return next_occurrence(spec, after or clock_now()) + timedelta(minutes=1)


def run_scheduler(live: Any, now: datetime) -> Any:
    from bot.scheduler import BotScheduler

    return BotScheduler.for_app(live.settings, live.engine).run_due(now)


def deliver_team_prompt(live: Any) -> Any:
    """Let the delivery engine post the first team prompt; returns the channel message."""
    run_scheduler(live, next_run(live, "team_prompt"))
    return live.standin.wait_for(
        lambda: next((m for m in live.standin.messages(CHANNEL) if "This week's reflection" in m.text), None)
    )


def answer(live: Any, message: Any, user: str, text: str, options: list[str] | None = None) -> Any:
    live.driver.click(ids.A_ANSWER, user=user, message=message)
    view = live.standin.wait_for(
        lambda: next(
            (
                v
                for v in reversed(live.standin.views())
                if v.get("callback_id") == ids.CB_ANSWER and live.standin.is_open(v["id"])
            ),
            None,
        )
    )
    values: dict[str, Any] = {ids.B_ANSWER_TEXT: text}
    if options is not None:
        values[ids.B_ANSWER_OPTIONS] = options
    return view, live.driver.submit_view(view["id"], values, user=user)


def answers(live: Any) -> list[Answer]:
    with Session(live.engine) as session:
        rows = list(session.exec(select(Answer).order_by(Answer.id)))  # type: ignore[arg-type]
        for row in rows:
            session.expunge(row)
        return rows


def all_text(message_blocks: list[dict[str, Any]]) -> str:
    return json.dumps(message_blocks)


# --- /mfi schedule ---------------------------------------------------------------------------------------------


def open_schedule(live: Any, user: str = LEAD) -> dict[str, Any]:
    opened = live.driver.slash("/mfi", "schedule", user=user, channel=CHANNEL)
    view: dict[str, Any] = opened.wait_view()
    return view


def _initial(view: dict[str, Any], block_id: str) -> Any:
    block = next(b for b in view["blocks"] if b.get("block_id") == block_id)
    element = block["element"]
    if "initial_options" in element:
        return [o["value"] for o in element["initial_options"]]
    return (
        element.get("initial_option", {}).get("value")
        or element.get("initial_time")
        or element.get("initial_value")
    )


def test_schedule_modal_shows_the_defaults_and_saves_with_next_occurrences(live: Any) -> None:
    start_project(live)
    view = open_schedule(live)
    assert _initial(view, ids.B_SCHEDULE_DAYS + "team_prompt") == ["0"]
    assert _initial(view, ids.B_SCHEDULE_TIME + "team_prompt") == "10:00"
    assert _initial(view, ids.B_SCHEDULE_EVERY + "team_prompt") == "1"
    assert _initial(view, ids.B_SCHEDULE_EVERY + "partner_prompt") == "2"
    assert _initial(view, ids.B_SCHEDULE_DAYS + "lead_nudge") == ["4"]
    assert _initial(view, ids.B_SCHEDULE_TIME + "lead_nudge") == "09:00"
    assert _initial(view, ids.B_SCHEDULE_TIMEZONE) == "Europe/London"
    assert set(_initial(view, ids.B_SCHEDULE_OPTIONS)) == {
        "recipient_tz",
        "skip_weekends",
        "skip_bank_holidays",
    }

    response = live.driver.submit_view(
        view["id"],
        {
            ids.B_SCHEDULE_DAYS + "team_prompt": ["1", "3"],
            ids.B_SCHEDULE_TIME + "team_prompt": "09:30",
            ids.B_SCHEDULE_EVERY + "partner_prompt": "1",
            ids.B_SCHEDULE_REGION: "SCT",
        },
        user=LEAD,
    )
    assert response.status == 200
    assert response.json["response_action"] == "update"
    saved = response.json["view"]
    text = all_text(saved["blocks"])
    assert "Tuesdays and Thursdays at 09:30 (Europe/London), every week" in text
    assert "in Scotland" in text
    assert text.count("Next: ") == 3 and text.count(", 09:30") == 3  # three upcoming team prompts

    rows = schedule_rows(live)
    assert rows["team_prompt"].weekdays == [1, 3] and (
        rows["team_prompt"].hour,
        rows["team_prompt"].minute,
    ) == (9, 30)
    assert rows["team_prompt"].updated_by == LEAD
    assert rows["partner_prompt"].every_weeks == 1
    assert project_row(live).region == "SCT"
    assert live.standin.violations == []


def test_schedule_errors_are_shown_inline_and_nothing_is_saved(live: Any) -> None:
    start_project(live)
    view = open_schedule(live)
    before = {k: (s.weekdays, s.timezone) for k, s in schedule_rows(live).items()}
    response = live.driver.submit_view(
        view["id"],
        {
            ids.B_SCHEDULE_DAYS + "team_prompt": [],
            ids.B_SCHEDULE_TIMEZONE: "Mars/Olympus_Mons",
        },
        user=LEAD,
    )
    assert response.json["response_action"] == "errors"
    errors = response.json["errors"]
    assert "Choose at least one day" in errors[ids.B_SCHEDULE_DAYS + "team_prompt"]
    assert "Europe/London" in errors[ids.B_SCHEDULE_TIMEZONE]
    assert {k: (s.weekdays, s.timezone) for k, s in schedule_rows(live).items()} == before
    # Ticking Paused makes an empty day list acceptable: the old days are kept for when it resumes.
    response = live.driver.submit_view(
        view["id"],
        {
            ids.B_SCHEDULE_DAYS + "team_prompt": [],
            ids.B_SCHEDULE_PAUSED + "team_prompt": ["paused"],
        },
        user=LEAD,
    )
    assert response.json["response_action"] == "update"
    rows = schedule_rows(live)
    assert rows["team_prompt"].paused and rows["team_prompt"].weekdays == [0]
    assert live.standin.violations == []


def test_a_form_sent_back_with_errors_takes_two_short_transactions(live: Any) -> None:
    """Before the acknowledgement a submission is checked against the bot's record of the form and claimed (so a
    double click saves once) in one transaction; errors free it again in a second. Three, before issue 17's
    last look at acknowledgements under load, plus the one to free it."""
    start_project(live)
    view = open_schedule(live)
    deadline = time.monotonic() + 10
    while True:  # the bot records the form it opened just after Slack answers views.open
        with Session(live.engine) as session:
            if session.get(ViewGrant, (live.driver.team_id, view["id"])) is not None:
                break
        assert time.monotonic() < deadline, "the form's grant was never recorded"
        time.sleep(0.02)
    threads: list[str] = []

    def began(_connection: Any) -> None:
        threads.append(threading.current_thread().name)

    event.listen(live.engine, "begin", began)
    # Work the command's listener still does after recording the grant would be counted too: wait until the
    # bot has begun no transaction for a while.
    seen = -1
    while seen != len(threads):
        assert time.monotonic() < deadline, "the bot never went quiet after opening the form"
        seen = len(threads)
        time.sleep(0.3)
    threads.clear()
    try:
        response = live.driver.submit_view(view["id"], {ids.B_SCHEDULE_DAYS + "team_prompt": []}, user=LEAD)
    finally:
        event.remove(live.engine, "begin", began)
    assert response.json["response_action"] == "errors"
    assert len(threads) == 2, threads
    # Freed: the corrected form saves.
    response = live.driver.submit_view(view["id"], {ids.B_SCHEDULE_DAYS + "team_prompt": ["2"]}, user=LEAD)
    assert response.json["response_action"] == "update"
    assert schedule_rows(live)["team_prompt"].weekdays == [2]


def test_only_leads_can_change_the_schedule(live: Any) -> None:
    start_project(live)
    live.driver.slash("/mfi", "schedule", user=MIDWIFE, channel=CHANNEL)
    reply = live.standin.wait_for(
        lambda: next((r for r in live.standin.responses() if "Only the project's leads" in r.text), None)
    )
    assert f"<@{LEAD}>" in reply.text
    assert not [v for v in live.standin.views() if v.get("callback_id") == ids.CB_SCHEDULE]
    assert live.standin.violations == []


def test_schedule_pause_and_resume_shortcuts(live: Any) -> None:
    start_project(live)
    live.driver.slash("/mfi", "schedule pause", user=LEAD, channel=CHANNEL)
    live.standin.wait_for(
        lambda: next((r for r in live.standin.responses() if r.text.startswith("Paused.")), None)
    )
    assert len(schedule_rows(live)) == 3 and all(s.paused for s in schedule_rows(live).values())
    live.driver.slash("/mfi", "schedule resume team", user=LEAD, channel=CHANNEL)
    live.standin.wait_for(
        lambda: next((r for r in live.standin.responses() if r.text.startswith("Resumed.")), None)
    )
    rows = schedule_rows(live)
    assert rows["partner_prompt"].paused and rows["lead_nudge"].paused
    # A paused schedule sends nothing when its time comes.
    run_scheduler(live, next_run(live, "lead_nudge"))
    assert not live.standin.messages(live.standin.dm_channel(LEAD))
    assert live.standin.violations == []


# --- answering -------------------------------------------------------------------------------------------------


def test_team_prompt_arrives_with_reason_and_principle(live: Any) -> None:
    start_project(live)
    message = deliver_team_prompt(live)
    text = all_text(message.blocks)
    assert "Why this prompt now" in text and "Framework principle" in text
    assert ids.A_ANSWER in text


def test_a_team_answer_goes_in_the_thread_under_a_name_only_when_the_person_asks(live: Any) -> None:
    start_project(live)
    message = deliver_team_prompt(live)
    view, response = answer(live, message, MIDWIFE, "Interpreters are booked late for women who need them.")
    assert response.status == 200 and not response.body
    options = next(b for b in view["blocks"] if b.get("block_id") == ids.B_ANSWER_OPTIONS)["element"]
    assert "initial_options" not in options  # nothing ticked: not in the thread, not anonymous
    assert "nothing goes in the thread unless you tick that box" in all_text(view["blocks"])
    thanks = live.standin.wait_for(
        lambda: next((e for e in live.standin.ephemerals(MIDWIFE) if e.text.startswith("Thank you")), None)
    )
    assert "Only the project leads will see it" in thanks.text
    assert [m for m in live.standin.thread(CHANNEL, message.ts) if m.ts != message.ts] == []

    answer(live, message, MIDWIFE, "And the leaflets are English only.", ["share"])
    thread = live.standin.wait_for(
        lambda: [m for m in live.standin.thread(CHANNEL, message.ts) if m.ts != message.ts] or None
    )
    assert thread[0].text.startswith(f"<@{MIDWIFE}> answered:") and "leaflets" in thread[0].text
    stored = answers(live)
    assert [(r.user_id, r.shared, r.anonymous, r.from_partner) for r in stored] == [
        (MIDWIFE, False, False, False),
        (MIDWIFE, True, False, False),
    ]
    with Session(live.engine) as session:
        delivery = session.exec(select(Delivery).where(Delivery.kind == "team_prompt")).one()
        assert stored[0].prompt_id == delivery.prompt_id and stored[0].audience == "team"
        assert stored[0].stage == load_catalogue().get(delivery.prompt_id or "").stage
        assert delivery.crowd == 4  # the four people in the channel, counted when the form opened
        assert not delivery.answered  # a channel's delivery records nothing about who answered
    assert live.standin.violations == []


def test_anonymous_answer_keeps_nothing_that_leads_to_a_person(live: Any) -> None:
    start_project(live)
    message = deliver_team_prompt(live)
    answer(live, message, MIDWIFE, "We rarely say racism out loud in handover.", ["anonymous", "share"])
    thread = live.standin.wait_for(
        lambda: [m for m in live.standin.thread(CHANNEL, message.ts) if m.ts != message.ts] or None
    )
    assert thread[0].text.startswith("Anonymous answer:")
    assert MIDWIFE not in thread[0].text
    row = answers(live)[0]
    assert row.user_id is None and row.anonymous and row.cycle_id is None
    assert MIDWIFE not in json.dumps(row.model_dump(), default=str)
    assert not hasattr(row, "delivery_id")
    created = row.created_at.replace(tzinfo=UTC) if row.created_at.tzinfo is None else row.created_at
    assert (created.hour, created.minute, created.second, created.microsecond) == (0, 0, 0, 0)  # the day only
    assert row.occurrence_date == created.date()
    # Answering again adds a new answer and keeps the first.
    answer(live, message, MIDWIFE, "Adding: the board paper says 'variation'.", ["anonymous"])
    live.standin.wait_for(lambda: len(answers(live)) == 2 or None)
    assert [a.shared for a in answers(live)] == [True, False]
    assert live.standin.violations == []


def test_an_empty_answer_is_refused_inline(live: Any) -> None:
    start_project(live)
    message = deliver_team_prompt(live)
    _, response = answer(live, message, MIDWIFE, " .")
    assert response.json["response_action"] == "errors"
    assert ids.B_ANSWER_TEXT in response.json["errors"]
    assert answers(live) == []


# --- pins, skips, Home and export ------------------------------------------------------------------------------


def test_prompts_list_offers_pin_and_skip_and_home_selects_steer_the_chooser(live: Any) -> None:
    start_project(live)
    live.driver.slash("/mfi", "prompts naming", user=LEAD, channel=CHANNEL)
    listing = live.standin.wait_for(
        lambda: next((r for r in live.standin.responses() if r.text.startswith("Prompts for")), None)
    )
    naming = load_catalogue().for_stage("naming", "team")
    buttons = [e for b in listing.body["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert {json.loads(e["value"])["prompt_id"] for e in buttons if e["action_id"] == ids.A_PROMPT_PIN} == {
        p.id for p in naming
    }
    assert len([e for e in buttons if e["action_id"] == ids.A_PROMPT_SKIP]) == len(naming)

    # The stand-in cannot click inside an ephemeral message, so pin and skip through the Home selects.
    published = len(live.standin.calls("views.publish"))
    live.driver.open_home(LEAD)
    # Click in the view this visit published, not an earlier one still being replaced.
    live.standin.wait_for(lambda: len(live.standin.calls("views.publish")) > published or None)
    home = live.standin.wait_for(lambda: live.standin.home_view(LEAD))
    live.driver.click(ids.A_PROMPT_PIN, user=LEAD, view_id=home["id"], selected_option=naming[2].id)
    live.standin.wait_for(lambda: _pinned(live) == naming[2].id or None)
    home = live.standin.wait_for(
        lambda: (h := live.standin.home_view(LEAD)) and "Pinned for next time" in json.dumps(h) and h or None
    )
    live.driver.click(ids.A_PROMPT_SKIP, user=LEAD, view_id=home["id"], selected_option=naming[0].id)

    def choices() -> dict[str, str] | None:
        with Session(live.engine) as session:
            rows = {r.prompt_id: r.choice for r in session.exec(select(PromptChoice))}
        return rows if len(rows) == 2 else None

    assert live.standin.wait_for(choices) == {naming[2].id: "pin", naming[0].id: "skip"}
    with Session(live.engine) as session:
        project = session.exec(select(Project)).one()
        pinned, skipped = sched.prompt_choices(session, project_id=project.id or 0)
        state = sched.project_state(session, project)
    assert pinned == naming[2].id
    catalogue = load_catalogue()
    assert (
        choose_prompt(catalogue, state, audience="team", used=[], pinned=pinned, skipped=skipped).id
        == naming[2].id
    )
    # Once the pin has been delivered the chooser moves on, and never picks the skipped prompt.
    used: list[str] = [naming[2].id]
    for _ in range(12):
        chosen = choose_prompt(catalogue, state, audience="team", used=used, pinned=pinned, skipped=skipped)
        assert chosen.id != naming[0].id
        used.append(chosen.id)
    # The scheduler's next team prompt is the pinned one.
    message = deliver_team_prompt(live)
    assert naming[2].text in message.text
    # Non-leads cannot list or change prompts.
    live.driver.slash("/mfi", "prompts", user=MIDWIFE, channel=CHANNEL)
    live.standin.wait_for(
        lambda: next((r for r in live.standin.responses() if "Only the project's leads" in r.text), None)
    )
    assert live.standin.violations == []


def test_home_section_export_and_pin_from_home(live: Any) -> None:
    live.standin.add_user(PARTNER, "amara", "Amara (service-user partner)")
    start_project(live)
    message = deliver_team_prompt(live)
    answer(live, message, MIDWIFE, "Named answer about booking.")
    answer(live, message, "U0OBSTET01", "=SUM(A1) anonymous thought", ["anonymous"])
    live.standin.wait_for(lambda: len(answers(live)) == 2 or None)

    live.driver.open_home(LEAD)
    home = live.standin.wait_for(
        lambda: (
            (h := live.standin.home_view(LEAD))
            and "_Anonymous_" in json.dumps(h)
            and f"<@{MIDWIFE}>" in json.dumps(h)
            and h
            or None
        )
    )
    text = json.dumps(home)
    assert "This week's prompt" in text and "Anonymous" in text and f"<@{MIDWIFE}>" in text
    assert "U0OBSTET01" not in text
    live.driver.open_home(MIDWIFE)
    midwife_home = live.standin.wait_for(lambda: live.standin.home_view(MIDWIFE))
    assert "Recent answers" not in json.dumps(midwife_home)

    # The pin and skip lists hold the current stage's prompts only, each cut at a whole word within Slack's 75.
    catalogue = load_catalogue()
    [pin_select] = [
        e
        for b in home["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e.get("action_id") == ids.A_PROMPT_PIN
    ]
    options = [o for g in pin_select["option_groups"] for o in g["options"]]
    assert {o["value"] for o in options} == {p.id for p in catalogue.for_stage("naming", "team")}
    for o in options:
        shown, full = o["text"]["text"], catalogue.get(o["value"]).text
        assert len(shown) <= 75
        if shown != full:
            kept = shown.removesuffix("…")
            assert shown.endswith("…") and full.startswith(kept) and full[len(kept)] in " ,;:-", (shown, full)
    assert "/mfi prompts" in text

    # Pin from the Home select.
    target = catalogue.for_stage("naming", "team")[-1].id
    live.driver.click(ids.A_PROMPT_PIN, user=LEAD, view_id=home["id"], selected_option=target)
    live.standin.wait_for(lambda: _pinned(live) == target or None)

    # Export: a CSV by DM; the anonymous answer stays anonymous.
    home = live.standin.home_view(LEAD)
    assert home is not None
    live.driver.click(ids.A_EXPORT_ANSWERS, user=LEAD, view_id=home["id"])
    stored = live.standin.wait_for(
        lambda: next((f for f in live.standin.files() if f.filename.endswith(".csv")), None)
    )
    assert stored.channel == live.standin.dm_channel(LEAD)
    rows = list(csv.DictReader(io.StringIO(stored.bytes.decode())))
    assert [r["from"] for r in rows] == ["Grace Okafor", "Anonymous"]
    assert rows[1]["answer"].startswith("'=SUM")  # spreadsheet formulas are defused
    assert set(rows[0]) == {"date", "stage", "prompt", "answer", "from", "shared"}
    assert "U0OBSTET01" not in stored.bytes.decode() and "Tom Evans" not in stored.bytes.decode()
    assert live.standin.violations == []


def _pinned(live: Any) -> str | None:
    with Session(live.engine) as session:
        row = session.exec(select(PromptChoice).where(PromptChoice.choice == "pin")).first()
        return row.prompt_id if row else None


# --- pure builders ---------------------------------------------------------------------------------------------


def test_builders_stay_within_block_kit_limits_and_say_what_they_must() -> None:
    catalogue = load_catalogue()
    prompt = catalogue.for_stage("involvement", "team")[0]
    team_blocks, team_text = pb.team_prompt_message(
        prompt, project_name="PPH", reason="Because.", delivery_id=7
    )
    assert prompt.text in team_text and "Because." in all_text(team_blocks)
    partner = catalogue.for_stage("involvement", "partner")[0]
    about = "We want to make care after birth safer for women of every background."
    partner_view = pb.partner_prompt_message(
        type(partner)(**{**partner.__dict__, "text": partner.plain or ""}),
        about=about,
        delivery_id=7,
        anonymous_default=True,
    )
    action_ids = {e["action_id"] for b in partner_view[0] if b["type"] == "actions" for e in b["elements"]}
    assert action_ids == {ids.A_ANSWER, ids.A_PARTNER_PAUSE, ids.A_PARTNER_STOP}
    assert about in all_text(partner_view[0])
    consent, _ = pb.partner_consent_message(about=about, lead_names=["Aisha"], project_id=1)
    words = all_text(consent)
    # Who sees what, in plain words: the words, never the name; nothing that links; held back until enough asked.
    for phrase in (
        "anonymous",
        "can read your words, but not your name",
        "keep nothing that links your answer",
        "keep those answers back until more people have been asked",
        "channel if you say yes",
        "pause or stop at any time",
        about,
    ):
        assert phrase in words
    assert (
        pb.answers_csv(
            [{"date": "d", "stage": "s", "prompt": "p", "answer": "+1", "from": "Anonymous", "shared": "no"}]
        ).splitlines()[1]
        == "d,s,p,'+1,Anonymous,no"
    )
