"""The calendar sweep: a year of scheduled deliveries, every day, on both databases.

One database per run, three projects and the scheduler's own engine (BotScheduler.run_due, the same code the
sync job runs) against the Slack stand-in. The clock steps through 23 December 2027 to 5 January 2029, which
holds both Christmases and New Years (with substitute days), Easter, every other bank holiday of England and
Scotland, a leap day (Tuesday 29 February 2028), both UK clock changes (26 March and 29 October 2028) and both
US ones (12 March and 5 November 2028), and a partner in New York whose fortnight runs across all of them.

The scheduler runs at each schedule's own wake-up time (as production does: one job per schedule), at each
time a DM or reminder is due in its recipient's zone and twice a day (standing in for the sync job), except in
four outages: two that end within the six-hour grace period (catch-up),
one that ends beyond it (missed) and one of two weeks (everything in it missed, the reminders too).

What is expected is worked out here, independently of bot.core.schedule_rules: gov.uk's lists of bank holidays typed
in, the schedule rule as the product documents it ("moved to the next working day at the same local time;
dropped if that reaches the next regular occurrence"), and zoneinfo for local time. The year is run once per
database (a module fixture, about 20 s); each test checks one promise against the ledger and the stand-in.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import time_machine
from sqlalchemy import Engine

from bot.config import load_settings
from bot.offline.standin import BOT_USER_ID, StandIn
from bot.scheduler import BotScheduler, ScheduleTrigger
from bot.services.delivery import CONSENT_KIND, DeliveryConfig
from bot.slack_client import ClientFactory
from storage import repositories as repo
from storage import schedule_repo as sched
from storage.db import make_engine, unit_of_work, upgrade
from storage.models import Delivery

START = datetime(2027, 12, 23, 12, 0, tzinfo=UTC)  # Thursday: the projects are set up
END = datetime(2029, 1, 5, 0, 0, tzinfo=UTC)
TICK = timedelta(hours=12)  # a sync twice a day, whatever the schedules say
GRACE = timedelta(hours=6)
REMIND_AFTER = timedelta(days=2)
REMIND_WINDOW = timedelta(days=1)
ANCHOR = date(
    2024, 1, 1
)  # week 0 of fortnightly schedules without an anchor (bot.core.schedule_rules.DEFAULT_ANCHOR)
LONDON = "Europe/London"

# gov.uk's bank holidays (https://www.gov.uk/bank-holidays), typed in rather than asked of the library.
ENGLAND = frozenset(
    {
        date(2027, 12, 27),
        date(2027, 12, 28),  # Christmas and Boxing Day 2027 fall at a weekend: substitute days
        date(2028, 1, 3),  # New Year's Day (substitute day)
        date(2028, 4, 14),
        date(2028, 4, 17),  # Good Friday, Easter Monday
        date(2028, 5, 1),
        date(2028, 5, 29),
        date(2028, 8, 28),
        date(2028, 12, 25),
        date(2028, 12, 26),
        date(2029, 1, 1),
    }
)
SCOTLAND = frozenset(
    {
        date(2027, 12, 27),
        date(2027, 12, 28),
        date(2028, 1, 3),
        date(2028, 1, 4),  # 1 and 2 January fall at the weekend: two substitute days
        date(2028, 4, 14),  # Good Friday; no Easter Monday in Scotland
        date(2028, 5, 1),
        date(2028, 5, 29),
        date(2028, 8, 7),  # summer: first Monday in August
        date(2028, 11, 30),  # St Andrew's Day
        date(2028, 12, 25),
        date(2028, 12, 26),
        date(2029, 1, 1),
        date(2029, 1, 2),
    }
)
HOLIDAYS = {"ENG": ENGLAND, "SCT": SCOTLAND}

# When the scheduler was not running: [from, to).
OUTAGES = (
    (
        datetime(2028, 1, 10, 7, tzinfo=UTC),
        datetime(2028, 1, 10, 13, tzinfo=UTC),
    ),  # catch-up: 3 h and 5 h late
    (datetime(2028, 6, 5, 6, tzinfo=UTC), datetime(2028, 6, 5, 17, tzinfo=UTC)),  # beyond grace: missed
    (datetime(2028, 7, 10, tzinfo=UTC), datetime(2028, 7, 24, tzinfo=UTC)),  # a fortnight down
    (
        datetime(2028, 10, 29, 3, tzinfo=UTC),
        datetime(2028, 10, 31, 12, tzinfo=UTC),
    ),  # after the autumn change
)

LEAD_ENG = "U0QILEAD01"  # Europe/London
LEAD_SCT = "U0LEADSCOT"
LEAD_DELHI = "U0LEADDELH"  # Asia/Kolkata: no daylight saving, 5 h 30 min ahead
PARTNER_LONDON = "U0PARTNERLN"
PARTNER_NY = "U0PARTNERNY"
CONSENT_AT = datetime(2028, 3, 6, 12, tzinfo=UTC)  # the New York partner says yes (pending until then)
TZ = {
    LEAD_ENG: LONDON,
    LEAD_SCT: LONDON,
    LEAD_DELHI: "Asia/Kolkata",
    PARTNER_LONDON: LONDON,
    PARTNER_NY: "America/New_York",
}


@dataclass(frozen=True)
class Rule:
    """A schedule as the sweep expects it to behave."""

    weekdays: tuple[int, ...]
    hour: int
    minute: int
    every_weeks: int = 1
    skip_bank_holidays: bool = True
    region: str = "ENG"


@dataclass(frozen=True)
class ProjectPlan:
    key: str
    channel: str
    region: str
    leads: tuple[str, ...]
    partners: dict[str, str]
    team: Rule
    nudge: Rule
    partner: Rule


PLANS = (
    # Defaults: Mondays 10:00, partners every other Wednesday 11:00 in their own zone, leads Fridays 09:00.
    ProjectPlan(
        "england",
        "C0SWEEPENG",
        "ENG",
        (LEAD_ENG,),
        {PARTNER_LONDON: "given", PARTNER_NY: "pending"},
        team=Rule((0,), 10, 0),
        nudge=Rule((4,), 9, 0),
        partner=Rule((2,), 11, 0, every_weeks=2),
    ),
    # Scotland, Mondays and Tuesdays 08:00: a moved Monday that reaches Tuesday is dropped, never doubled.
    ProjectPlan(
        "scotland",
        "C0SWEEPSCT",
        "SCT",
        (LEAD_SCT,),
        {},
        team=Rule((0, 1), 8, 0, region="SCT"),
        nudge=Rule((4,), 9, 0, region="SCT"),
        partner=Rule((2,), 11, 0, every_weeks=2, region="SCT"),
    ),
    # Sundays 01:30 London, sent on bank holidays too: 01:30 does not exist on 26 March and happens twice on
    # 29 October. The lead is in India.
    ProjectPlan(
        "night",
        "C0SWEEPNGT",
        "ENG",
        (LEAD_DELHI,),
        {},
        team=Rule((6,), 1, 30, skip_bank_holidays=False),
        nudge=Rule((4,), 9, 0),
        partner=Rule((2,), 11, 0, every_weeks=2),
    ),
)


# --- what is expected, worked out independently -------------------------------------------------------------


def _monday(d: date) -> date:
    return d - timedelta(days=d.weekday())


def expected_dates(rule: Rule, first: date, last: date) -> list[date]:
    """The local dates a rule fires on between first and last, by the documented rule."""
    holidays = HOLIDAYS[rule.region]
    day, regular = first - timedelta(days=21), []
    while day <= last + timedelta(days=21):
        weeks = (_monday(day) - _monday(ANCHOR)).days // 7
        if day.weekday() in rule.weekdays and weeks % rule.every_weeks == 0:
            regular.append(day)
        day += timedelta(days=1)
    fired = []
    for this, following in zip(regular, regular[1:], strict=False):
        if not (rule.skip_bank_holidays and this in holidays):
            fired.append(this)
            continue
        moved = this + timedelta(days=1)
        while moved in holidays or moved.weekday() >= 5:
            moved += timedelta(days=1)
        if moved < following:
            fired.append(moved)
    return [d for d in fired if first <= d <= last]


def local_instant(d: date, rule: Rule, tz: str) -> datetime:
    # fold=0: a local time that happens twice is the first; one that does not exist keeps the old offset.
    return datetime(d.year, d.month, d.day, rule.hour, rule.minute, tzinfo=ZoneInfo(tz), fold=0).astimezone(
        UTC
    )


def expected_occurrences(rule: Rule, tz: str) -> list[datetime]:
    dates = expected_dates(rule, START.date() - timedelta(days=1), END.date() + timedelta(days=1))
    return [t for t in (local_instant(d, rule, tz) for d in dates) if START < t <= END]


def down(instant: datetime) -> bool:
    return any(start <= instant < end for start, end in OUTAGES)


def run_instants(wakes: list[datetime]) -> list[datetime]:
    """When the scheduler runs, except during outages: at each schedule's wake-up (its own job), at each expected
    DM time in the recipient's zone and two days later (standing in for the sync job, which runs every 30 s:
    running it every 30 s for a year would take hours), twice a day whatever is due, when the scheduler comes
    back after an outage, and when the partner says yes."""
    instants = set(wakes) | {end for _, end in OUTAGES} | {CONSENT_AT}
    for plan in PLANS:
        for person in plan.leads:
            instants.update(expected_occurrences(plan.nudge, TZ[person]))
        for person in plan.partners:
            instants.update(
                o + delay
                for o in expected_occurrences(plan.partner, TZ[person])
                for delay in (timedelta(0), REMIND_AFTER)
            )
        instants.update(o + REMIND_AFTER for o in expected_occurrences(plan.team, LONDON))
    t = START
    while t <= END:
        instants.add(t)
        t += TICK
    return sorted(t for t in instants if START <= t <= END and not down(t))


def first_run_at_or_after(runs: list[datetime], instant: datetime) -> datetime | None:
    import bisect

    i = bisect.bisect_left(runs, instant)
    return runs[i] if i < len(runs) else None


# --- running the year ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """A ledger row, copied out of the database."""

    id: int
    project: str
    kind: str
    recipient: str
    occurrence: datetime
    status: str
    sent_at: datetime | None
    reminded_at: datetime | None
    channel_id: str | None
    message_ts: str | None
    prompt_id: str | None


@dataclass
class Year:
    rows: list[Row]
    runs: list[datetime]
    answered: set[int]  # delivery ids a partner answered
    top_level: dict[str, list[str]]  # conversation -> ts of the bot's top-level messages
    replies: dict[str, list[str]]  # conversation -> thread_ts of the bot's replies
    dm: dict[str, str]  # user -> DM conversation id
    trigger_times: dict[tuple[str, str], list[datetime]]  # (project, kind) -> the wake-up job's fire times
    seconds: float
    violations: list[Any]

    def of(self, project: str, kind: str, recipient: str | None = None) -> list[Row]:
        return [
            r
            for r in self.rows
            if r.project == project and r.kind == kind and (recipient is None or r.recipient == recipient)
        ]


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _make_projects(engine: Engine) -> dict[int, ProjectPlan]:
    made: dict[int, ProjectPlan] = {}
    with unit_of_work(engine) as session:
        for plan in PLANS:
            project = repo.create_project(
                session,
                team_id="T0MFIAR01",
                enterprise_id=None,
                channel_id=plan.channel,
                created_by=plan.leads[0],
                name=f"Sweep {plan.key}",
                aim="Reduce PPH among Black women from 12% to 6% by March 2029",
                focus_groups=["N"],
                reference_group="A",
                baseline="",
                target="",
                target_date=None,
                racism_context="",
                leads=list(plan.leads),
                partners=list(plan.partners),
                timezone=LONDON,
            )
            assert project.id is not None
            project.region = plan.region
            session.add(project)
            for member in repo.members(session, project_id=project.id, role="partner"):
                member.consent = plan.partners[member.user_id]
                session.add(member)
            rules = {"team_prompt": plan.team, "lead_nudge": plan.nudge, "partner_prompt": plan.partner}
            for schedule in sched.ensure_default_schedules(session, project=project, now=START):
                rule = rules.get(schedule.kind)
                if rule is None:
                    continue  # a kind the sweep does not cover keeps its defaults
                schedule.weekdays = list(rule.weekdays)
                schedule.hour, schedule.minute, schedule.every_weeks = (
                    rule.hour,
                    rule.minute,
                    rule.every_weeks,
                )
                schedule.skip_bank_holidays = rule.skip_bank_holidays
                session.add(schedule)
            made[project.id] = plan
    return made


def _trigger_times(engine: Engine, projects: dict[int, ProjectPlan]) -> dict[tuple[str, str], list[datetime]]:
    """What each schedule's wake-up job (the APScheduler trigger the scheduler builds) fires at over the year."""
    times: dict[tuple[str, str], list[datetime]] = {}
    with unit_of_work(engine) as session:
        for schedule in sched.all_schedules(session):
            plan = projects[schedule.project_id]
            trigger = ScheduleTrigger(sched.spec_for(schedule, region=plan.region))
            fired: list[datetime] = []
            previous: datetime | None = None
            now = START
            while True:
                fire = trigger.get_next_fire_time(previous, now)
                if fire is None or fire > END:
                    break
                fired.append(fire)
                previous, now = fire, fire + timedelta(microseconds=1)
            times[(plan.key, schedule.kind)] = fired
    return times


def _answer_every_other_london_prompt(engine: Engine, answered: set[int], seen: set[int]) -> None:
    with unit_of_work(engine) as session:
        for delivery in sched.deliveries(session, status="sent", kind="partner_prompt"):
            assert delivery.id is not None
            if delivery.recipient != PARTNER_LONDON or delivery.id in seen:
                continue
            seen.add(delivery.id)
            if len(seen) % 2 == 1:
                delivery.answered = True  # what answering records for reminders (never which answer)
                session.add(delivery)
                answered.add(delivery.id)


def _give_consent(engine: Engine) -> None:
    from storage import answers_repo

    with unit_of_work(engine) as session:
        for project_id in sched_project_ids(session):
            partner = sched.member(session, project_id=project_id, user_id=PARTNER_NY, role="partner")
            if partner is not None:
                answers_repo.set_partner_state(session, partner=partner, consent="given")


def sched_project_ids(session: Any) -> list[int]:
    return sorted({s.project_id for s in sched.all_schedules(session)})


def run_year(engine: Engine) -> Year:
    standin = StandIn().start()
    traveller = time_machine.travel(START, tick=True)
    clock = traveller.start()
    try:
        for user, name in (
            (LEAD_SCT, "Morag Reid"),
            (LEAD_DELHI, "Priya Nair"),
            (PARTNER_LONDON, "Partner L"),
            (PARTNER_NY, "Partner NY"),
        ):
            standin.add_user(user, user.lower(), name, tz=TZ[user])
        for plan in PLANS:
            standin.add_channel(plan.channel, f"sweep-{plan.key}", members=list(plan.leads))
        projects = _make_projects(engine)
        key_of = {pid: plan.key for pid, plan in projects.items()}
        triggers = _trigger_times(engine, projects)
        runs = run_instants([t for fired in triggers.values() for t in fired])
        scheduler = BotScheduler(
            engine,
            ClientFactory(standin.api_url, bot_token="xoxb-standin"),
            config=DeliveryConfig(
                default_grace=GRACE,
                reminder_after=REMIND_AFTER,
                reminder_window=REMIND_WINDOW,
                per_channel_interval=0.0,
                workers=1,
            ),
            instance_id="sweep",
        )
        answered: set[int] = set()
        seen: set[int] = set()
        consented = False
        started = time.monotonic()
        for instant in runs:
            clock.move_to(instant)
            if not consented and instant >= CONSENT_AT:
                _give_consent(engine)
                consented = True
            scheduler.run_due(instant)
            _answer_every_other_london_prompt(engine, answered, seen)
        seconds = time.monotonic() - started
        scheduler.shutdown()
        with unit_of_work(engine) as session:
            rows = [
                Row(
                    d.id or 0,
                    key_of[d.project_id],
                    d.kind,
                    d.recipient,
                    _utc(d.occurrence) or START,
                    d.status,
                    _utc(d.sent_at),
                    _utc(d.reminded_at),
                    d.channel_id,
                    d.message_ts,
                    d.prompt_id,
                )
                for d in session.exec(sa.select(Delivery)).scalars()  # type: ignore[call-overload]
            ]
        top: dict[str, list[str]] = {}
        replies: dict[str, list[str]] = {}
        for message in standin.messages():
            if message.user != BOT_USER_ID:
                continue
            if message.thread_ts is None:
                top.setdefault(message.channel, []).append(message.ts)
            else:
                replies.setdefault(message.channel, []).append(message.thread_ts)
        dm = {user: standin.dm_channel(user) for user in TZ}
        return Year(rows, runs, answered, top, replies, dm, triggers, seconds, list(standin.violations))
    finally:
        traveller.stop()
        standin.stop()


def _truncate(engine: Engine) -> None:
    names = [n for n in sa.inspect(engine).get_table_names() if n != "alembic_version"]
    with engine.begin() as connection:
        connection.execute(
            sa.text("TRUNCATE " + ", ".join(f'"{n}"' for n in names) + " RESTART IDENTITY CASCADE")
        )


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def year(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Year]:
    """The year, run once per database."""
    if request.param == "sqlite":
        url = f"sqlite:///{Path(tmp_path_factory.mktemp('sweep')) / 'sweep.db'}"
        engine = make_engine(url)
        upgrade(engine)
    else:
        server: str = request.getfixturevalue("postgres_server")
        engine = make_engine(load_settings(_env_file=None, database_url=server).database_url)
        upgrade(engine)
        _truncate(engine)
    try:
        yield run_year(engine)
    finally:
        if request.param == "postgres":
            _truncate(engine)
        engine.dispose()


# --- the expectations ----------------------------------------------------------------------------------------


def expected_status(year: Year, occurrence: datetime) -> tuple[str, datetime]:
    run = first_run_at_or_after(year.runs, occurrence)
    assert run is not None
    return ("sent" if run - occurrence <= GRACE else "missed"), run


def check_schedule(
    year: Year, project: str, kind: str, recipient: str, rule: Rule, tz: str, since: datetime | None = None
) -> list[Row]:
    """The ledger for one schedule and recipient is exactly the expected occurrences, each settled once."""
    rows = sorted(year.of(project, kind, recipient), key=lambda r: r.occurrence)
    expected = expected_occurrences(rule, tz)
    if since is not None:
        expected = [o for o in expected if (first_run_at_or_after(year.runs, o) or END) >= since]
    assert [r.occurrence for r in rows] == expected, f"{project} {kind} to {recipient}"
    for row in rows:
        status, run = expected_status(year, row.occurrence)
        assert row.status == status, f"{project} {kind} {row.occurrence}: {row.status}, expected {status}"
        if status == "sent":
            assert row.sent_at is not None and timedelta(0) <= row.sent_at - run < timedelta(minutes=1)
            assert row.message_ts is not None
    return rows


def test_the_sweep_covers_the_hard_days(year: Year) -> None:
    days = {d.date() for d in year.runs}
    for hard in (
        date(2028, 2, 29),
        date(2028, 3, 26),
        date(2028, 10, 29),
        date(2028, 12, 25),
        date(2029, 1, 1),
        date(2027, 12, 27),
        date(2028, 3, 12),
        date(2028, 11, 5),
    ):
        assert hard in days
    all_days = {START.date() + timedelta(days=i) for i in range((END - START).days + 1)}
    down_days = {
        d
        for d in all_days
        if all(down(datetime.combine(d, datetime.min.time(), UTC) + timedelta(hours=h)) for h in range(24))
    }
    assert all_days - down_days <= days | {END.date()}
    assert year.violations == []


def test_wake_up_jobs_fire_at_each_expected_local_time(year: Year) -> None:
    for plan in PLANS:
        for kind, rule in (
            ("team_prompt", plan.team),
            ("lead_nudge", plan.nudge),
            ("partner_prompt", plan.partner),
        ):
            assert year.trigger_times[(plan.key, kind)] == expected_occurrences(rule, LONDON), (
                plan.key,
                kind,
            )


def test_team_prompts_every_week_on_the_right_day_once(year: Year) -> None:
    for plan in PLANS:
        rows = check_schedule(year, plan.key, "team_prompt", plan.channel, plan.team, LONDON)
        sent = [r for r in rows if r.status == "sent"]
        assert len(sent) > 45
        # Exactly once in Slack too: one top-level message per sent row, none for missed ones.
        assert sorted(year.top_level.get(plan.channel, [])) == sorted(r.message_ts or "" for r in sent)


def test_bank_holidays_move_the_prompt_and_never_double_it(year: Year) -> None:
    england = {r.occurrence.astimezone(ZoneInfo(LONDON)).date() for r in year.of("england", "team_prompt")}
    # Christmas 2027 substitute Monday -> Wednesday; Easter Monday -> Tuesday; Christmas 2028 -> Wednesday.
    assert {
        date(2027, 12, 29),
        date(2028, 4, 18),
        date(2028, 5, 2),
        date(2028, 12, 27),
        date(2029, 1, 2),
    } <= england
    assert not england & ENGLAND
    scotland = sorted(
        r.occurrence.astimezone(ZoneInfo(LONDON)).date() for r in year.of("scotland", "team_prompt")
    )
    # Monday 3 and Tuesday 4 January are both substitute days: one prompt, on Wednesday 5, not two.
    assert [d for d in scotland if date(2028, 1, 1) <= d <= date(2028, 1, 9)] == [date(2028, 1, 5)]
    # Scotland's summer holiday (7 August): the Monday prompt is dropped, not moved onto Tuesday's.
    assert [d for d in scotland if date(2028, 8, 7) <= d <= date(2028, 8, 8)] == [date(2028, 8, 8)]
    assert date(2028, 2, 29) in scotland  # the leap day is an ordinary Tuesday
    nudges = {r.occurrence.astimezone(ZoneInfo(LONDON)).date() for r in year.of("england", "lead_nudge")}
    assert (
        date(2028, 4, 18) in nudges and date(2028, 4, 14) not in nudges
    )  # Good Friday -> Tuesday after Easter


def test_clock_changes_both_ways(year: Year) -> None:
    london = ZoneInfo(LONDON)
    england = [r.occurrence for r in year.of("england", "team_prompt")]
    assert (
        datetime(2028, 3, 20, 10, tzinfo=UTC) in england and datetime(2028, 3, 27, 9, tzinfo=UTC) in england
    )
    assert (
        datetime(2028, 10, 23, 9, tzinfo=UTC) in england or datetime(2028, 10, 24, 9, tzinfo=UTC) in england
    )
    assert datetime(2028, 11, 6, 10, tzinfo=UTC) in england
    assert all(o.astimezone(london).time().isoformat() == "10:00:00" for o in england)
    night = {r.occurrence.astimezone(london).date(): r.occurrence for r in year.of("night", "team_prompt")}
    # 01:30 does not exist on 26 March (it fires at 02:30 BST, 01:30 UTC); on 29 October it happens twice and
    # fires once, at the first (BST). Every Sunday has exactly one.
    assert night[date(2028, 3, 26)] == datetime(2028, 3, 26, 1, 30, tzinfo=UTC)
    assert night[date(2028, 10, 29)] == datetime(2028, 10, 29, 0, 30, tzinfo=UTC)
    sundays = [
        d
        for d in (START.date() + timedelta(days=i) for i in range(380))
        if d.weekday() == 6 and START < local_instant(d, PLANS[2].team, LONDON) <= END
    ]
    assert sorted(night) == sundays


def test_partner_prompts_fortnightly_in_each_partners_zone_only_after_consent(year: Year) -> None:
    plan = PLANS[0]
    london = check_schedule(year, "england", "partner_prompt", PARTNER_LONDON, plan.partner, LONDON)
    new_york = check_schedule(
        year, "england", "partner_prompt", PARTNER_NY, plan.partner, TZ[PARTNER_NY], since=CONSENT_AT
    )
    assert new_york and all(r.occurrence > CONSENT_AT for r in new_york)
    assert all(r.occurrence.astimezone(ZoneInfo(TZ[PARTNER_NY])).hour == 11 for r in new_york)
    # Across the weeks when only one country has changed its clocks, New York is 4 hours behind, not 5.
    assert datetime(2028, 3, 22, 15, tzinfo=UTC) in {r.occurrence for r in new_york} | {
        r.occurrence for r in year.of("england", "partner_prompt", PARTNER_NY)
    } or all(r.occurrence.date() != date(2028, 3, 22) for r in london)
    # Both partners are asked the same question in each round.
    by_day = {r.occurrence.date(): r.prompt_id for r in london if r.status == "sent"}
    for row in new_york:
        if row.status == "sent" and row.occurrence.date() in by_day:
            assert row.prompt_id == by_day[row.occurrence.date()]
    # The consent request: once at most, never after the partner said yes; nobody who had already said yes gets one.
    consent = year.of("england", CONSENT_KIND)
    assert [r.recipient for r in consent] in ([], [PARTNER_NY])
    assert all(r.sent_at is not None and r.sent_at <= CONSENT_AT for r in consent)
    dm = year.top_level.get(year.dm[PARTNER_NY], [])
    assert len(dm) == len(consent) + len([r for r in new_york if r.status == "sent"])
    # The projects without partners never DM anyone a prompt.
    assert year.of("scotland", "partner_prompt") == [] and year.of("night", "partner_prompt") == []


def test_lead_nudges_on_fridays_in_each_leads_zone(year: Year) -> None:
    for plan in PLANS:
        for lead in plan.leads:
            rows = check_schedule(year, plan.key, "lead_nudge", lead, plan.nudge, TZ[lead])
            assert all(
                r.occurrence.astimezone(ZoneInfo(TZ[lead])).time().isoformat() == "09:00:00" for r in rows
            )
    delhi = [r.occurrence for r in year.of("night", "lead_nudge")]
    assert datetime(2028, 6, 2, 3, 30, tzinfo=UTC) in delhi  # 09:00 in India all year: no clock change there


def test_reminders_once_only_to_those_who_have_not_answered_and_only_while_worth_it(year: Year) -> None:
    # A prompt's reminder round is settled once, at the first run after the reminder delay (within the window):
    # reminded_at is set for every row of the round, reminded or not, so that the ledger never shows who had
    # answered (anonymity) or which rounds were superseded. Whether a reminder actually went is read from Slack.
    reminded: set[int] = set()
    for row in year.rows:
        if row.kind not in ("team_prompt", "partner_prompt"):
            assert row.reminded_at is None
            continue
        settled: datetime | None = None
        if row.status == "sent":
            assert row.sent_at is not None and row.id is not None
            run = first_run_at_or_after(year.runs, row.sent_at + REMIND_AFTER)
            if run is not None and run < row.sent_at + REMIND_AFTER + REMIND_WINDOW:
                settled = run
                newer = [
                    r
                    for r in year.of(row.project, row.kind, row.recipient)
                    if r.occurrence > row.occurrence
                    and r.status == "sent"
                    and r.sent_at is not None
                    and r.sent_at <= run + timedelta(minutes=1)
                ]
                if not newer and row.id not in year.answered:
                    reminded.add(row.id)
        assert row.reminded_at == settled, f"{row.project} {row.kind} {row.recipient} {row.occurrence}"
    assert len(reminded) > 100
    # In Slack: one thread reply per reminder, under its own prompt, and nothing for superseded or answered ones.
    for plan in PLANS:
        rows = [r for r in year.of(plan.key, "team_prompt") if r.id in reminded]
        assert sorted(year.replies.get(plan.channel, [])) == sorted(r.message_ts or "" for r in rows)
    london_dm = year.dm[PARTNER_LONDON]
    partner_rows = [r for r in year.of("england", "partner_prompt", PARTNER_LONDON) if r.id in reminded]
    assert partner_rows and not any(r.id in year.answered for r in partner_rows)
    assert sorted(year.replies.get(london_dm, [])) == sorted(r.message_ts or "" for r in partner_rows)


def test_catch_up_after_downtime_within_grace_and_missed_beyond(year: Year) -> None:
    england = {r.occurrence: r for r in year.of("england", "team_prompt")}
    scotland = {r.occurrence: r for r in year.of("scotland", "team_prompt")}
    # Down 07:00 to 13:00 on Monday 10 January: both Monday prompts go out at 13:00, late but once.
    for row in (
        england[datetime(2028, 1, 10, 10, tzinfo=UTC)],
        scotland[datetime(2028, 1, 10, 8, tzinfo=UTC)],
    ):
        assert row.status == "sent" and row.sent_at is not None
        assert row.sent_at - datetime(2028, 1, 10, 13, tzinfo=UTC) < timedelta(minutes=1)
    # Down 06:00 to 17:00 on Monday 5 June: beyond the grace period, recorded as missed, never posted late.
    assert england[datetime(2028, 6, 5, 9, tzinfo=UTC)].status == "missed"
    assert scotland[datetime(2028, 6, 5, 7, tzinfo=UTC)].status == "missed"
    # A fortnight down in July: everything in it missed, then the next Monday goes out on time.
    july = [
        r
        for o, r in england.items()
        if datetime(2028, 7, 10, tzinfo=UTC) <= o < datetime(2028, 7, 24, tzinfo=UTC)
    ]
    assert [r.status for r in july] == ["missed", "missed"]
    assert england[datetime(2028, 7, 24, 9, tzinfo=UTC)].status == "sent"
    # Down from 03:00 on the night the clocks go back to Tuesday noon: the Sunday prompt went out once, at the
    # first 01:30 (the second 01:30 is not a second occurrence); Monday's are missed; Tuesday's 08:00 GMT
    # Scotland prompt goes out 4 hours late.
    night = [r for r in year.of("night", "team_prompt") if r.occurrence.date() == date(2028, 10, 29)]
    assert [(r.occurrence, r.status) for r in night] == [(datetime(2028, 10, 29, 0, 30, tzinfo=UTC), "sent")]
    assert england[datetime(2028, 10, 30, 10, tzinfo=UTC)].status == "missed"
    assert scotland[datetime(2028, 10, 30, 8, tzinfo=UTC)].status == "missed"
    assert scotland[datetime(2028, 10, 31, 8, tzinfo=UTC)].status == "sent"
    missed = [r for r in year.rows if r.status == "missed"]
    assert missed and all(r.message_ts is None for r in missed)
    assert not [r for r in year.rows if r.status not in ("sent", "missed")]
