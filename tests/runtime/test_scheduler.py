"""Tests for bot.scheduler and bot.services.delivery: what goes out, when, to whom; catch-up, 429s, reminders, time zones."""

from __future__ import annotations

import importlib
import json
import logging
import sys
import time
import types
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from slack_sdk import WebClient
from sqlalchemy import Engine, event
from sqlmodel import select

from bot.offline.standin import StandIn
from bot.scheduler import BotScheduler
from bot.services.delivery import CONSENT_KIND, DeliveryConfig, Throttle
from bot.slack_client import ClientFactory, make_client
from handlers.blocks import ids
from storage import repositories as repo
from storage import schedule_repo as sched
from storage.db import unit_of_work
from storage.models import Delivery, Project, PromptChoice, Schedule

CHANNEL = "C0MATERNITY"
LEAD = "U0QILEAD01"
PARTNER_LONDON = "U0PARTNERLN"
PARTNER_NY = "U0PARTNERNY"
PARTNER_PENDING = "U0PARTNERPD"

# Friday 13 June 2025 noon: the project is set up. Monday 16 June, 10:00 London (BST) = 09:00 UTC: the team prompt.
SETUP = datetime(2025, 6, 13, 12, 0, tzinfo=UTC)
MONDAY = datetime(2025, 6, 16, 9, 0, tzinfo=UTC)
WEDNESDAY_LONDON_11 = datetime(2025, 6, 18, 10, 0, tzinfo=UTC)  # fortnightly partner prompt, 11:00 BST
WEDNESDAY_NEW_YORK_11 = datetime(2025, 6, 18, 15, 0, tzinfo=UTC)  # 11:00 EDT
FRIDAY_NUDGE = datetime(2025, 6, 20, 8, 0, tzinfo=UTC)  # 09:00 BST


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


# --- fixtures and helpers shared with test_ledger.py ----------------------------------------------------------


@pytest.fixture(autouse=True)
def nudge_builder(monkeypatch: pytest.MonkeyPatch) -> None:
    """bot.services.nudge belongs to the prompts-UI work; until it exists, a minimal stand-in for the tests only."""
    try:
        importlib.import_module("bot.services.nudge")
    except ImportError:
        fake = types.ModuleType("bot.services.nudge")

        def build_lead_nudge(
            session: Any, *, project: Any, now: datetime
        ) -> tuple[list[dict[str, Any]], str]:
            text = f"Weekly equity nudge for {project.name}"
            return [{"type": "section", "text": {"type": "mrkdwn", "text": text}}], text

        fake.build_lead_nudge = build_lead_nudge  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "bot.services.nudge", fake)


@pytest.fixture
def standin() -> Iterator[StandIn]:
    server = StandIn().start()
    server.add_user(PARTNER_LONDON, "p.london", "Partner in London", tz="Europe/London")
    server.add_user(PARTNER_NY, "p.newyork", "Partner in New York", tz="America/New_York")
    server.add_user(PARTNER_PENDING, "p.pending", "Partner not yet asked", tz="Europe/London")
    yield server
    server.stop()


class QuickRetryFactory(ClientFactory):
    """Like production, but gives up on 429s after `retries` waits so 'retries exhausted' is quick to reach."""

    def __init__(self, base_url: str, retries: int) -> None:
        super().__init__(base_url, bot_token="xoxb-standin")
        self.retries = retries

    def for_team(self, team_id: str, enterprise_id: str | None = None) -> WebClient | None:
        return make_client(self.base_url, "xoxb-standin", max_rate_limit_retries=self.retries)


def make_scheduler(
    engine: Engine,
    standin: StandIn,
    *,
    factory: ClientFactory | None = None,
    instance_id: str = "test-instance",
    **config: Any,
) -> BotScheduler:
    config.setdefault("per_channel_interval", 0.0)
    config.setdefault("workers", 4)
    return BotScheduler(
        engine,
        factory or ClientFactory(standin.api_url, bot_token="xoxb-standin"),
        clock=lambda: SETUP,
        config=DeliveryConfig(**config),
        instance_id=instance_id,
    )


def make_project(
    engine: Engine,
    *,
    channel: str = CHANNEL,
    name: str = "Reducing PPH inequity",
    partners: dict[str, str] | None = None,
    racism_context: str = "",
) -> int:
    """A project as /mfi new leaves it, with partners in the given consent states, and its default schedules."""
    with unit_of_work(engine) as session:
        project = repo.create_project(
            session,
            team_id="T0MFIAR01",
            enterprise_id=None,
            channel_id=channel,
            created_by=LEAD,
            name=name,
            aim="Reduce PPH among Black women from 12% to 6% by March 2027",
            focus_groups=["N", "M"],
            reference_group="A",
            baseline="",
            target="",
            target_date=None,
            racism_context=racism_context,
            leads=[LEAD],
            partners=list(partners or {}),
            timezone="Europe/London",
        )
        assert project.id is not None
        for member in repo.members(session, project_id=project.id, role="partner"):
            member.consent = (partners or {})[member.user_id]
            session.add(member)
        sched.ensure_default_schedules(session, project=project, now=SETUP)
        return project.id


def prompts_in(standin: StandIn, channel: str) -> list[Any]:
    """Top-level bot messages (not thread replies) in a channel or a person's DM."""
    return [m for m in standin.messages(channel) if m.thread_ts is None]


def ledger(engine: Engine, **filters: Any) -> list[Delivery]:
    with unit_of_work(engine) as session:
        return sched.deliveries(session, **filters)


def answer_value(message: Any) -> dict[str, Any]:
    for block in message.blocks:
        for element in block.get("elements", []):
            if element.get("action_id") == ids.A_ANSWER:
                return dict(json.loads(element["value"]))
    raise AssertionError("no Answer button")


def set_schedule(engine: Engine, project_id: int, kind: str, **fields: Any) -> None:
    with unit_of_work(engine) as session:
        schedule = sched.get_schedule(session, project_id=project_id, kind=kind)
        assert schedule is not None
        for name, value in fields.items():
            setattr(schedule, name, value)
        session.add(schedule)


# --- jobs -----------------------------------------------------------------------------------------------------


def test_jobs_are_rebuilt_from_the_schedule_rows(engine: Engine, standin: StandIn) -> None:
    project_id = make_project(engine)
    scheduler = make_scheduler(engine, standin)
    with unit_of_work(engine) as session:
        team = sched.get_schedule(session, project_id=project_id, kind="team_prompt")
        nudge = sched.get_schedule(session, project_id=project_id, kind="lead_nudge")
        assert team is not None and nudge is not None
    assert scheduler.get_job(f"schedule:{team.id}").trigger.get_next_fire_time(None, SETUP) == MONDAY
    assert scheduler.get_job(f"schedule:{nudge.id}").trigger.get_next_fire_time(None, SETUP) == utc(
        2025, 6, 20, 8
    )
    assert scheduler.get_job("sync") is not None
    assert scheduler.role() == ("single" if engine.dialect.name == "sqlite" else "follower")

    set_schedule(engine, project_id, "team_prompt", paused=True)
    scheduler.build_jobs()
    assert scheduler.get_job(f"schedule:{team.id}") is None


def test_wake_up_jobs_follow_each_edit_and_schedules_with_one_timing_share_one(
    engine: Engine, standin: StandIn, caplog: pytest.LogCaptureFixture
) -> None:
    first, second = make_project(engine), make_project(engine, channel="C0OTHER01", name="Second")
    scheduler = make_scheduler(engine, standin)
    ids = {}
    with unit_of_work(engine) as session:
        for project_id in (first, second):
            schedule = sched.get_schedule(session, project_id=project_id, kind="team_prompt")
            assert schedule is not None and schedule.id is not None
            ids[project_id] = schedule.id

    def job(project_id: int) -> Any:
        return scheduler.get_job(f"schedule:{ids[project_id]}")

    assert job(first).id == job(second).id  # the default Monday 10:00: one job for both

    set_schedule(engine, second, "team_prompt", hour=14)
    scheduler.build_jobs()
    assert job(first).id != job(second).id
    assert job(second).trigger.get_next_fire_time(None, SETUP) == MONDAY + timedelta(hours=4)
    assert job(first).trigger.get_next_fire_time(None, SETUP) == MONDAY

    with unit_of_work(engine) as session:  # a project's bank-holiday calendar is part of its timing
        project = repo.get_project(session, team_id="T0MFIAR01", project_id=first)
        assert project is not None
        project.region = "SCT"
        session.add(project)
    shared = job(first).id
    scheduler.build_jobs()
    assert job(first).id != shared and job(first).trigger.spec.region == "SCT"
    assert scheduler._aps.get_job(shared) is None  # no schedule uses the old timing: its job is gone

    set_schedule(engine, second, "team_prompt", timezone="Mars/Olympus_Mons")  # only a bad row can hold this
    with caplog.at_level(logging.WARNING, logger="bot.scheduler"):
        scheduler.build_jobs()
        scheduler.build_jobs()
    assert job(second) is None and job(first) is not None
    assert [r.getMessage() for r in caplog.records] == [
        f"Schedule {ids[second]} has an invalid spec; no job for it"
    ]


def leading_scheduler(engine: Engine, standin: StandIn, now: list[datetime]) -> BotScheduler:
    scheduler = BotScheduler(
        engine,
        ClientFactory(standin.api_url, bot_token="xoxb-standin"),
        clock=lambda: now[0],
        config=DeliveryConfig(per_channel_interval=0.0, workers=4),
        instance_id="leader-1",
    )
    scheduler.elector._leader = (
        True  # the election decided (PostgreSQL's lock; not what these tests are about)
    )
    return scheduler


def one_off_syncs(scheduler: BotScheduler) -> list[Any]:
    return [job for job in scheduler._aps.get_jobs() if job.id.startswith("sync-now-")]


def test_a_wake_while_the_sync_is_finishing_makes_it_go_round_again(engine: Engine, standin: StandIn) -> None:
    make_project(engine)
    now = [MONDAY - timedelta(minutes=1)]  # the first pass finds nothing due
    scheduler = leading_scheduler(engine, standin, now)
    rebuild = scheduler._refresh_schedule_jobs
    woken: list[int] = []

    def rebuild_then_wake() -> None:
        # The schedule's wake-up job fires while the sync is rebuilding the jobs, after its last pass.
        if not woken:
            woken.append(1)
            now[0] = MONDAY + timedelta(seconds=1)
            scheduler._wake()
        rebuild()

    scheduler._refresh_schedule_jobs = rebuild_then_wake  # type: ignore[method-assign]
    scheduler._sync()
    assert woken and len(prompts_in(standin, CHANNEL)) == 1  # the same sync went round again and posted
    assert one_off_syncs(scheduler) == []  # no second sync was needed


def test_a_wake_with_no_sync_running_starts_one_of_its_own_once(engine: Engine, standin: StandIn) -> None:
    make_project(engine)
    now = [MONDAY + timedelta(seconds=1)]
    scheduler = leading_scheduler(engine, standin, now)
    interval = scheduler._aps.get_job("sync").next_run_time
    for _ in range(3):  # every schedule due this minute wakes at once
        scheduler._wake()
    [job] = one_off_syncs(scheduler)
    assert scheduler._aps.get_job("sync").next_run_time == interval  # a job of its own, not the interval's
    job.func()
    assert len(prompts_in(standin, CHANNEL)) == 1
    scheduler._wake()  # the next wake, once that sync has begun, asks again
    assert len(one_off_syncs(scheduler)) == 2


def test_a_sync_asked_for_while_not_leading_is_asked_for_again_on_leading(
    engine: Engine, standin: StandIn
) -> None:
    make_project(engine)
    now = [MONDAY + timedelta(seconds=1)]
    scheduler = leading_scheduler(engine, standin, now)
    scheduler._sync_soon()  # say, the term began, then the lock was lost before the sync ran
    scheduler.elector._leader = False
    [job] = one_off_syncs(scheduler)
    job.func()
    assert prompts_in(standin, CHANNEL) == []  # a follower does not post
    scheduler.elector._leader = True
    scheduler._sync_soon()  # leading again: a sync of its own, not one taken as already asked for
    assert len(one_off_syncs(scheduler)) == 2
    one_off_syncs(scheduler)[-1].func()
    assert len(prompts_in(standin, CHANNEL)) == 1


def test_a_sync_with_nothing_due_loads_no_schedule_or_project(engine: Engine, standin: StandIn) -> None:
    """Whether anything is due is worked out from columns; only what may be due is loaded whole."""
    for i in range(3):
        standin.add_channel(f"C0IDLE{i:04d}", f"idle-{i}", members=[LEAD])
        # The last project has a partner yet to answer the consent question: a sync may owe them an invitation.
        partners = {"U0PARTNER9": "pending"} if i == 2 else None
        make_project(engine, channel=f"C0IDLE{i:04d}", name=f"Idle {i}", partners=partners)
    scheduler = make_scheduler(engine, standin)
    loaded: list[str] = []

    def note(target: Any, _context: Any) -> None:
        loaded.append(target.kind if isinstance(target, Schedule) else type(target).__name__)

    scheduler.deliverer.run(SETUP)  # the first sync: every mark set
    # Friday's lead nudge (09:00 in London) may be due to a lead far west until the window has moved past it.
    scheduler.deliverer.run(MONDAY - timedelta(days=1))
    event.listen(Schedule, "load", note)
    event.listen(Project, "load", note)
    try:
        assert scheduler.deliverer.run(MONDAY - timedelta(hours=1)).posted == 0
        idle = list(loaded)
        loaded.clear()
        assert scheduler.deliverer.run(MONDAY).posted == 3
    finally:
        event.remove(Schedule, "load", note)
        event.remove(Project, "load", note)
    assert sorted(idle) == [
        "Project",
        "partner_prompt",
    ]  # only the schedule that may owe a consent invitation
    assert sorted(k for k in loaded if k != "Project").count("team_prompt") == 3  # Monday 10:00 BST: due


def test_a_new_project_gets_its_default_schedules_from_the_scan(engine: Engine, standin: StandIn) -> None:
    with unit_of_work(engine) as session:
        project = repo.create_project(
            session,
            team_id="T0MFIAR01",
            enterprise_id=None,
            channel_id=CHANNEL,
            created_by=LEAD,
            name="New",
            aim="An aim",
            focus_groups=["N"],
            reference_group="A",
            baseline="",
            target="",
            target_date=None,
            racism_context="",
            leads=[LEAD],
            partners=[],
            timezone="Europe/London",
        )
        project_id = project.id
    make_scheduler(engine, standin).run_due(SETUP)
    with unit_of_work(engine) as session:
        kinds = {s.kind for s in sched.schedules_for_project(session, project_id=project_id or 0)}
    assert kinds == {"team_prompt", "partner_prompt", "lead_nudge"}


# --- the team prompt ------------------------------------------------------------------------------------------


def test_team_prompt_goes_out_once_at_its_time(engine: Engine, standin: StandIn) -> None:
    make_project(engine)
    scheduler = make_scheduler(engine, standin)
    assert scheduler.run_due(MONDAY - timedelta(minutes=1)).posted == 0
    assert prompts_in(standin, CHANNEL) == []

    report = scheduler.run_due(MONDAY)
    assert report.posted == 1
    [message] = prompts_in(standin, CHANNEL)
    [row] = ledger(engine, kind="team_prompt")
    assert answer_value(message) == {"delivery_id": row.id}
    assert (row.status, row.recipient, row.occurrence, row.message_ts) == (
        "sent",
        CHANNEL,
        MONDAY,
        message.ts,
    )
    assert "this week starts with naming it" in json.dumps(message.blocks)  # no racism context recorded yet

    # Later syncs the same day, and a restarted scheduler, find it done.
    assert scheduler.run_due(MONDAY + timedelta(minutes=5)).posted == 0
    assert (
        make_scheduler(engine, standin, instance_id="restarted").run_due(MONDAY + timedelta(hours=1)).posted
        == 0
    )
    assert len(prompts_in(standin, CHANNEL)) == 1
    assert standin.violations == []


def test_each_week_brings_the_next_prompt_and_a_pin_wins_once(engine: Engine, standin: StandIn) -> None:
    project_id = make_project(engine)
    scheduler = make_scheduler(engine, standin)
    scheduler.run_due(MONDAY)
    scheduler.run_due(MONDAY + timedelta(weeks=1))
    with unit_of_work(engine) as session:
        used = sched.used_prompt_ids(session, project_id, "team")
        session.add(
            PromptChoice(
                project_id=project_id,
                team_id="T0MFIAR01",
                prompt_id="data.by-ethnicity",
                choice="pin",
                chosen_by=LEAD,
            )
        )
    assert len(used) == 2 and used[0] != used[1]
    scheduler.run_due(MONDAY + timedelta(weeks=2))
    scheduler.run_due(MONDAY + timedelta(weeks=3))
    rows = ledger(engine, kind="team_prompt")
    assert [r.prompt_id for r in rows][2] == "data.by-ethnicity"
    assert rows[3].prompt_id != "data.by-ethnicity"
    with unit_of_work(engine) as session:
        assert session.exec(select(PromptChoice)).one().used is True


def test_skipped_prompts_are_never_sent(engine: Engine, standin: StandIn) -> None:
    project_id = make_project(engine)
    scheduler = make_scheduler(engine, standin)
    scheduler.run_due(MONDAY)
    [first] = ledger(engine, kind="team_prompt")
    assert first.prompt_id is not None
    # A second project in the same state would get the same first prompt; a skip takes it out of the running.
    other = make_project(engine, channel="C0OTHERQI", name="Other")
    standin.add_channel("C0OTHERQI", "other-qi", members=[LEAD])
    with unit_of_work(engine) as session:
        session.add(
            PromptChoice(
                project_id=other,
                team_id="T0MFIAR01",
                prompt_id=first.prompt_id,
                choice="skip",
                chosen_by=LEAD,
            )
        )
    scheduler.run_due(MONDAY + timedelta(minutes=1))
    [second] = ledger(engine, kind="team_prompt", project_id=other)
    assert second.prompt_id != first.prompt_id and project_id != other


# --- catch-up and the grace period ----------------------------------------------------------------------------


def test_within_grace_delivered_once_beyond_grace_missed(engine: Engine, standin: StandIn) -> None:
    make_project(engine)
    scheduler = make_scheduler(engine, standin)
    scheduler.run_due(SETUP)  # the scheduler saw Friday, then was down over the weekend and Monday morning
    report = scheduler.run_due(MONDAY + timedelta(hours=5, minutes=59))
    assert report.posted == 1 and report.missed == 0

    # Down for the whole of the next Monday (and more): recorded as missed, never posted late.
    report = scheduler.run_due(MONDAY + timedelta(weeks=1, hours=7))
    assert report.posted == 0 and report.missed == 2  # the team prompt, and Friday's nudge to the lead
    statuses = [(r.occurrence, r.status) for r in ledger(engine, kind="team_prompt")]
    assert statuses == [(MONDAY, "sent"), (MONDAY + timedelta(weeks=1), "missed")]
    assert len(prompts_in(standin, CHANNEL)) == 1


def test_catch_up_after_weeks_of_downtime(engine: Engine, standin: StandIn) -> None:
    make_project(engine)
    scheduler = make_scheduler(engine, standin)
    scheduler.run_due(SETUP)
    # Back up on the third Monday, an hour after the prompt was due: two missed, the third delivered once.
    scheduler.run_due(MONDAY + timedelta(weeks=2, hours=1))
    scheduler.run_due(MONDAY + timedelta(weeks=2, hours=1, seconds=30))
    statuses = [r.status for r in ledger(engine, kind="team_prompt")]
    assert statuses == ["missed", "missed", "sent"]
    assert len(prompts_in(standin, CHANNEL)) == 1


def test_paused_schedule_sends_nothing_and_resumes_from_then(engine: Engine, standin: StandIn) -> None:
    project_id = make_project(engine)
    scheduler = make_scheduler(engine, standin)
    with unit_of_work(engine) as session:
        schedule = sched.get_schedule(session, project_id=project_id, kind="team_prompt")
        assert schedule is not None
        sched.pause(session, schedule=schedule, by=LEAD, now=SETUP)
    assert scheduler.run_due(MONDAY).posted == 0
    assert scheduler.run_due(MONDAY + timedelta(weeks=1)).posted == 0
    with unit_of_work(engine) as session:
        schedule = sched.get_schedule(session, project_id=project_id, kind="team_prompt")
        assert schedule is not None
        sched.resume(session, schedule=schedule, by=LEAD, now=MONDAY + timedelta(weeks=1, hours=2))
    # Paused weeks are not "missed": nobody was meant to get them.
    assert scheduler.run_due(MONDAY + timedelta(weeks=1, hours=3)).missed == 0
    assert scheduler.run_due(MONDAY + timedelta(weeks=2)).posted == 1
    assert [r.occurrence for r in ledger(engine, kind="team_prompt")] == [MONDAY + timedelta(weeks=2)]


def test_bank_holiday_moves_the_prompt_to_the_next_working_day(engine: Engine, standin: StandIn) -> None:
    make_project(engine)
    scheduler = make_scheduler(engine, standin)
    summer_bank_holiday = utc(2025, 8, 25, 9)  # Monday, England
    scheduler.run_due(summer_bank_holiday - timedelta(days=1))
    assert scheduler.run_due(summer_bank_holiday).posted == 0
    assert scheduler.run_due(summer_bank_holiday + timedelta(days=1)).posted == 1
    [row] = [r for r in ledger(engine, kind="team_prompt") if r.status == "sent"]
    assert row.occurrence == utc(2025, 8, 26, 9)


def test_schedule_edits_apply_from_the_edit(engine: Engine, standin: StandIn) -> None:
    project_id = make_project(engine)
    scheduler = make_scheduler(engine, standin)
    scheduler.run_due(SETUP)
    with unit_of_work(engine) as session:
        schedule = sched.get_schedule(session, project_id=project_id, kind="team_prompt")
        assert schedule is not None
        changed = sched.update_schedule(
            session,
            schedule=schedule,
            updated_by=LEAD,
            now=MONDAY + timedelta(hours=2),
            weekdays=[0, 3],
            hour=14,
        )
        assert changed == {"weekdays": [0], "hour": 10}
        assert schedule.updated_by == LEAD
        with pytest.raises(ValueError, match="invalid time"):
            sched.update_schedule(session, schedule=schedule, updated_by=LEAD, hour=25)
    # Monday 10:00 (before the edit) is neither sent nor missed; Monday 14:00 BST is.
    scheduler.run_due(MONDAY + timedelta(hours=6))
    assert [(r.occurrence, r.status) for r in ledger(engine, kind="team_prompt")] == [
        (utc(2025, 6, 16, 13), "sent")
    ]


# --- partners, leads and time zones ---------------------------------------------------------------------------


def test_partner_dm_at_eleven_in_the_partners_own_time_zone(engine: Engine, standin: StandIn) -> None:
    make_project(engine, partners={PARTNER_LONDON: "given", PARTNER_NY: "given"})
    scheduler = make_scheduler(engine, standin)
    scheduler.run_due(WEDNESDAY_LONDON_11)
    assert len(prompts_in(standin, PARTNER_LONDON)) == 1
    assert prompts_in(standin, PARTNER_NY) == []
    scheduler.run_due(WEDNESDAY_NEW_YORK_11 - timedelta(minutes=1))
    assert prompts_in(standin, PARTNER_NY) == []
    scheduler.run_due(WEDNESDAY_NEW_YORK_11)
    [dm] = prompts_in(standin, PARTNER_NY)
    rows = {r.recipient: r for r in ledger(engine, kind="partner_prompt")}
    assert rows[PARTNER_NY].occurrence == WEDNESDAY_NEW_YORK_11
    assert rows[PARTNER_NY].occurrence.astimezone(ZoneInfo("America/New_York")).hour == 11
    # One round, one question: both partners are asked the same thing, in plain words.
    assert rows[PARTNER_NY].prompt_id == rows[PARTNER_LONDON].prompt_id
    assert answer_value(dm) == {"delivery_id": rows[PARTNER_NY].id}
    assert standin.violations == []


def test_time_zones_are_looked_up_once_an_hour_not_at_every_sync(engine: Engine, standin: StandIn) -> None:
    make_project(engine, partners={PARTNER_LONDON: "given", PARTNER_NY: "given"})
    scheduler = make_scheduler(engine, standin)
    # Syncs every 30 seconds around the partners' prompt: each partner's users.info once, not once per sync.
    for seconds in range(0, 300, 30):
        scheduler.run_due(WEDNESDAY_LONDON_11 - timedelta(minutes=2) + timedelta(seconds=seconds))

    def partner_lookups() -> list[Any]:
        return [c.args.get("user") for c in standin.calls("users.info") if c.args.get("user") != LEAD]

    assert sorted(partner_lookups()) == sorted([PARTNER_LONDON, PARTNER_NY])
    assert len(prompts_in(standin, PARTNER_LONDON)) == 1
    # Once the cached answer is older than people_ttl, the next sync asks again (a person may have moved).
    stale = make_scheduler(engine, standin, people_ttl=timedelta(0))
    stale.run_due(WEDNESDAY_LONDON_11 + timedelta(minutes=5))
    stale.run_due(WEDNESDAY_LONDON_11 + timedelta(minutes=6))
    assert len(partner_lookups()) == 2 + 2 * 2


def test_only_consenting_active_partners_get_prompts_and_pending_ones_are_asked_once(
    engine: Engine, standin: StandIn
) -> None:
    standin.add_user("U0PARTNERDC", "p.declined", "Declined")
    standin.add_user("U0PARTNERPS", "p.paused", "Paused")
    project_id = make_project(
        engine,
        partners={
            PARTNER_LONDON: "given",
            PARTNER_PENDING: "pending",
            "U0PARTNERDC": "declined",
            "U0PARTNERPS": "given",
        },
    )
    with unit_of_work(engine) as session:
        paused = sched.member(session, project_id=project_id, user_id="U0PARTNERPS", role="partner")
        assert paused is not None
        paused.paused = True
        session.add(paused)
    scheduler = make_scheduler(engine, standin)
    scheduler.run_due(SETUP)
    [consent] = prompts_in(standin, PARTNER_PENDING)
    assert "Aisha Shah" in json.dumps(consent.blocks)
    scheduler.run_due(WEDNESDAY_LONDON_11)
    assert len(prompts_in(standin, PARTNER_LONDON)) == 1
    assert len(prompts_in(standin, PARTNER_PENDING)) == 1  # still just the consent request
    assert prompts_in(standin, "U0PARTNERDC") == [] and prompts_in(standin, "U0PARTNERPS") == []
    assert [r.recipient for r in ledger(engine, kind=CONSENT_KIND)] == [PARTNER_PENDING]


def test_lead_nudge_goes_to_each_lead(engine: Engine, standin: StandIn) -> None:
    make_project(engine)
    scheduler = make_scheduler(engine, standin)
    scheduler.run_due(SETUP)
    scheduler.run_due(FRIDAY_NUDGE)
    assert len(prompts_in(standin, LEAD)) == 1
    [row] = ledger(engine, kind="lead_nudge")
    assert (row.recipient, row.status) == (LEAD, "sent")


def test_uninstalled_workspace_stops_its_schedules(engine: Engine, standin: StandIn) -> None:
    class Uninstalled(ClientFactory):
        def for_team(self, team_id: str, enterprise_id: str | None = None) -> WebClient | None:
            return None

    make_project(engine)
    scheduler = make_scheduler(engine, standin, factory=Uninstalled(standin.api_url))
    assert scheduler.run_due(MONDAY).posted == 0
    with unit_of_work(engine) as session:
        reasons = {s.disabled_reason for s in session.exec(select(Schedule))}
    assert reasons == {"app_uninstalled"}
    assert standin.calls("chat.postMessage") == []


# --- rate limits ----------------------------------------------------------------------------------------------


def test_429s_are_waited_out_and_posted_once(engine: Engine, standin: StandIn) -> None:
    make_project(engine)
    standin.inject("chat.postMessage", status=429, retry_after=1, times=2)
    report = make_scheduler(engine, standin).run_due(MONDAY)
    assert report.posted == 1
    assert [c.ok for c in standin.calls("chat.postMessage")] == [False, False, True]
    assert len(prompts_in(standin, CHANNEL)) == 1


def test_429_beyond_the_retries_is_kept_and_retried_next_sync_then_bounded(
    engine: Engine, standin: StandIn
) -> None:
    make_project(engine)
    scheduler = make_scheduler(
        engine, standin, factory=QuickRetryFactory(standin.api_url, retries=0), max_attempts=2
    )
    standin.inject("chat.postMessage", status=429, retry_after=1, times=1)
    report = scheduler.run_due(MONDAY)
    assert (report.posted, report.pending) == (0, 1)
    [row] = ledger(engine, kind="team_prompt")
    assert (row.status, row.attempts, row.error) == ("claimed", 1, "ratelimited")
    report = scheduler.run_due(MONDAY + timedelta(seconds=30))
    assert (report.retried, report.posted) == (1, 1)
    [row] = ledger(engine, kind="team_prompt")
    assert (row.status, row.attempts) == ("sent", 2)
    assert len(prompts_in(standin, CHANNEL)) == 1

    # A channel that keeps refusing is given up on after max_attempts, with the reason kept.
    standin.inject("chat.postMessage", status=429, retry_after=1, times=10)
    for minutes in (0, 1, 2):
        scheduler.run_due(MONDAY + timedelta(weeks=1, minutes=minutes))
    [_, last] = ledger(engine, kind="team_prompt")
    assert last.status == "failed" and "gave up after 2 attempts" in (last.error or "")


def test_throttle_spaces_posts_to_one_channel_only() -> None:
    throttle = Throttle(0.2)
    started = time.monotonic()
    throttle.wait("C1")
    throttle.wait("C2")
    assert time.monotonic() - started < 0.1
    throttle.wait("C1")
    assert time.monotonic() - started >= 0.19


# --- reminders ------------------------------------------------------------------------------------------------


def test_one_reminder_only_to_partners_who_have_not_answered(engine: Engine, standin: StandIn) -> None:
    make_project(engine, partners={PARTNER_LONDON: "given", PARTNER_NY: "given"})
    scheduler = make_scheduler(engine, standin)
    scheduler.run_due(WEDNESDAY_NEW_YORK_11)
    rows = {r.recipient: r for r in ledger(engine, kind="partner_prompt")}
    with unit_of_work(engine) as session:
        # An anonymous answer still flags the partner's own delivery (no link to the answer's text).
        row = session.get(Delivery, rows[PARTNER_LONDON].id)
        assert row is not None
        row.answered = True
        session.add(row)
    assert scheduler.run_due(WEDNESDAY_NEW_YORK_11 + timedelta(days=1)).reminded == 0
    assert scheduler.run_due(WEDNESDAY_NEW_YORK_11 + timedelta(days=2, minutes=1)).reminded == 1
    assert scheduler.run_due(WEDNESDAY_NEW_YORK_11 + timedelta(days=2, hours=1)).reminded == 0
    [prompt] = prompts_in(standin, PARTNER_NY)
    [reminder] = [m for m in standin.messages(PARTNER_NY) if m.thread_ts]
    assert reminder.thread_ts == prompt.ts
    assert [m for m in standin.messages(PARTNER_LONDON) if m.thread_ts] == []
    # Both rows are settled at the same moment and the flag is gone: the ledger no longer says who had answered.
    settled = WEDNESDAY_NEW_YORK_11 + timedelta(days=2, minutes=1)
    assert {(r.recipient, r.reminded_at, r.answered) for r in ledger(engine, kind="partner_prompt")} == {
        (PARTNER_LONDON, settled, False),
        (PARTNER_NY, settled, False),
    }


def test_team_reminder_is_one_thread_reply_naming_nobody(engine: Engine, standin: StandIn) -> None:
    make_project(engine)
    scheduler = make_scheduler(engine, standin)
    scheduler.run_due(MONDAY)
    scheduler.run_due(MONDAY + timedelta(days=2, minutes=1))
    scheduler.run_due(MONDAY + timedelta(days=2, minutes=2))
    [prompt] = prompts_in(standin, CHANNEL)
    replies = [m for m in standin.messages(CHANNEL) if m.thread_ts == prompt.ts]
    assert len(replies) == 1
    assert "<@" not in replies[0].text and "<@" not in json.dumps(replies[0].blocks)
    [row] = ledger(engine, kind="team_prompt")
    assert row.reminded_at == MONDAY + timedelta(days=2, minutes=1)
    assert standin.violations == []


def test_no_reminder_once_the_next_prompt_is_out(engine: Engine, standin: StandIn) -> None:
    make_project(engine)
    scheduler = make_scheduler(
        engine, standin, reminder_after=timedelta(days=8), reminder_window=timedelta(days=2)
    )
    scheduler.run_due(MONDAY)
    scheduler.run_due(MONDAY + timedelta(weeks=1))
    assert scheduler.run_due(MONDAY + timedelta(days=8, hours=1)).reminded == 0


# --- end to end through the real app --------------------------------------------------------------------------


@pytest.mark.e2e
def test_a_project_made_in_slack_gets_its_monday_prompt(live: Any) -> None:
    from tests.helpers import clock_now, start_project

    start_project(live)
    today = clock_now().date()
    next_monday = today + timedelta(days=7 - today.weekday())
    due = sched.spec_for(Schedule(project_id=0, team_id="T", kind="team_prompt", weekdays=[0], hour=10))
    from bot.core.schedule_rules import next_occurrence

    when = next_occurrence(due, datetime.combine(next_monday - timedelta(days=1), datetime.min.time(), UTC))
    scheduler = BotScheduler.for_app(live.settings, live.engine, live.runtime.app, clock=lambda: when)
    try:
        report = scheduler.run_due(when)
    finally:
        scheduler.shutdown()
    assert report.posted >= 1, report
    prompt = live.standin.wait_for(
        lambda: [m for m in prompts_in(live.standin, CHANNEL) if "reflection" in m.text]
    )
    assert answer_value(prompt[0])["delivery_id"] > 0
    assert live.standin.violations == []


def test_losing_the_race_to_create_default_schedules_still_returns_every_kind(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    project_id = make_project(engine)
    # Another caller created the schedules after this one looked: its read of the existing rows came back empty.
    monkeypatch.setattr(sched, "schedules_for_project", lambda session, *, project_id: [])
    with unit_of_work(engine) as session:
        project = session.get(Project, project_id)
        assert project is not None
        kinds = [s.kind for s in sched.ensure_default_schedules(session, project=project)]
    assert sorted(kinds) == sorted(sched.KINDS)
    with unit_of_work(engine) as session:
        assert len(list(session.exec(select(Schedule).where(Schedule.project_id == project_id)))) == len(
            sched.KINDS
        )
