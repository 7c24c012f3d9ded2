"""The prompt use cases without Slack, on both databases: schedules, answers, pins and skips, the export."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bot.core.prompts import load_catalogue
from bot.services import answers, schedules
from storage import schedule_repo
from storage.db import unit_of_work
from storage.models import Delivery, Project
from tests.services.helpers import CHANNEL, LEAD, MEMBER, TEAM, make_project

NOW = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)


def _delivery(engine: Any, project_id: int) -> tuple[int, str]:
    """A team prompt posted in the channel, as the ledger records it."""
    prompt = load_catalogue().for_stage("naming", "team")[0]
    with unit_of_work(engine) as session:
        project = session.get(Project, project_id)
        assert project is not None
        schedule = next(
            s
            for s in schedule_repo.ensure_default_schedules(session, project=project)
            if s.kind == "team_prompt"
        )
        delivery = Delivery(
            schedule_id=schedule.id or 0,
            project_id=project_id,
            team_id=TEAM,
            occurrence=NOW,
            recipient=CHANNEL,
            kind="team_prompt",
            prompt_id=prompt.id,
            status="sent",
            channel_id=CHANNEL,
            message_ts="111.222",
        )
        session.add(delivery)
        session.flush()
        return delivery.id or 0, prompt.id


def test_schedules_for_leads_only_pause_and_save(engine: Any) -> None:
    make_project(engine, leads=(LEAD,))
    refused = schedules.schedule_command(engine, team_id=TEAM, channel_id=CHANNEL, user_id=MEMBER, now=NOW)
    assert refused == schedules.NotLead("PPH equity", [LEAD])
    assert schedules.schedule_command(engine, team_id=TEAM, channel_id="C9", user_id=LEAD, now=NOW) is None
    form = schedules.schedule_command(engine, team_id=TEAM, channel_id=CHANNEL, user_id=LEAD, now=NOW)
    assert isinstance(form, schedules.ScheduleForm)
    assert [k.kind for k in form.kinds] == ["team_prompt", "partner_prompt", "lead_nudge"]
    paused = schedules.schedule_command(
        engine, team_id=TEAM, channel_id=CHANNEL, user_id=LEAD, now=NOW, pause=True, kinds=["lead_nudge"]
    )
    assert isinstance(paused, schedules.Paused)
    assert [(line.kind, line.paused) for line in paused.lines] == [
        ("team_prompt", False),
        ("partner_prompt", False),
        ("lead_nudge", True),
    ]
    assert all(len(line.upcoming) == 3 and line.upcoming[0] > NOW for line in paused.lines)

    kinds = {
        k.kind: {
            "weekdays": [1],
            "hour": 10,
            "minute": 30,
            "every_weeks": 1,
            "paused": k.kind == "partner_prompt",
        }
        for k in form.kinds
    }
    settings = {
        "kinds": kinds,
        "timezone": "Europe/London",
        "use_recipient_tz": True,
        "skip_weekends": True,
        "skip_bank_holidays": True,
        "region": "ENG",
    }
    assert (
        schedules.save_schedule(
            engine, team_id=TEAM, project_id=form.project_id, user_id=MEMBER, settings=settings, now=NOW
        )
        == schedules.NOT_LEAD_TO_SAVE
    )
    saved = schedules.save_schedule(
        engine, team_id=TEAM, project_id=form.project_id, user_id=LEAD, settings=settings, now=NOW
    )
    assert isinstance(saved, schedules.ScheduleSaved) and not saved.partners_on
    team = saved.lines[0]
    assert team.upcoming[0].astimezone(UTC) == datetime(2026, 3, 10, 10, 30, tzinfo=UTC)  # Tuesday 10:30, GMT
    assert [line.paused for line in saved.lines] == [False, True, False]


def test_answering_a_team_prompt(engine: Any) -> None:
    project_id = make_project(engine)
    delivery_id, prompt_id = _delivery(engine, project_id)
    assert answers.answerable(engine, team_id=TEAM, delivery_id=delivery_id) == answers.Delivery(CHANNEL)
    assert answers.answerable(engine, team_id="T2", delivery_id=delivery_id) is None
    asked = answers.answer_form(engine, team_id=TEAM, delivery_id=delivery_id, user_id=MEMBER, crowd_now=12)
    assert asked is not None and asked.prompt_id == prompt_id and not asked.partner and asked.can_share
    saved = answers.save_answer(
        engine,
        team_id=TEAM,
        delivery_id=delivery_id,
        user_id=MEMBER,
        text="We have not asked the women themselves",
        anonymous=False,
        share=True,
    )
    assert isinstance(saved, answers.AnswerSaved) and saved.shared and not saved.held
    assert (saved.post_channel, saved.post_thread, saved.thanks_channel) == (CHANNEL, "111.222", CHANNEL)
    gone = answers.save_answer(
        engine,
        team_id=TEAM,
        delivery_id=delivery_id + 99,
        user_id=MEMBER,
        text="x y",
        anonymous=False,
        share=False,
    )
    assert gone == answers.QUESTION_GONE
    export = answers.export_answers(engine, team_id=TEAM, project_id=project_id, user_id=LEAD)
    assert export is not None and [(r.text, r.author, r.shared) for r in export.rows] == [
        ("We have not asked the women themselves", MEMBER, True)
    ]
    assert answers.export_answers(engine, team_id=TEAM, project_id=project_id, user_id=MEMBER) is None


def test_pinning_and_skipping_prompts(engine: Any) -> None:
    project_id = make_project(engine)
    naming = load_catalogue().for_stage("naming", "team")
    assert isinstance(
        answers.prompts_listing(engine, team_id=TEAM, channel_id=CHANNEL, user_id=MEMBER, stage=None),
        answers.NotLead,
    )
    listing = answers.prompts_listing(engine, team_id=TEAM, channel_id=CHANNEL, user_id=LEAD, stage="naming")
    assert (
        isinstance(listing, answers.PromptsListing)
        and listing.states == {}
        and "naming" not in listing.other_stages
    )
    pinned = answers.choose_prompt(
        engine, team_id=TEAM, project_id=project_id, user_id=LEAD, prompt_id=naming[0].id, choice="pin"
    )
    assert isinstance(pinned, answers.PromptsListing) and pinned.states == {naming[0].id: "pin"}
    skipped = answers.choose_prompt(
        engine, team_id=TEAM, project_id=project_id, user_id=LEAD, prompt_id=naming[1].id, choice="skip"
    )
    assert isinstance(skipped, answers.PromptsListing)
    assert skipped.states == {naming[0].id: "pin", naming[1].id: "skip"}
    cleared = answers.choose_prompt(
        engine, team_id=TEAM, project_id=project_id, user_id=LEAD, prompt_id=naming[0].id, choice=None
    )
    assert isinstance(cleared, answers.PromptsListing) and cleared.states == {naming[1].id: "skip"}
    assert isinstance(
        answers.choose_prompt(
            engine, team_id=TEAM, project_id=project_id, user_id=MEMBER, prompt_id=naming[0].id, choice="pin"
        ),
        answers.NotLead,
    )
    assert (
        answers.choose_prompt(
            engine, team_id=TEAM, project_id=project_id, user_id=LEAD, prompt_id="nope", choice="pin"
        )
        is None
    )
