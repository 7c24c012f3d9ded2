"""Tests for the delivery ledger: exactly once across restarts, crashes mid fan-out and concurrent instances."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

import bot.services.delivery.posting
from bot.offline.standin import StandIn
from bot.scheduler import BotScheduler
from bot.services.delivery import METADATA_EVENT, SimulatedCrash, delivery_key
from storage import schedule_repo as sched
from storage.db import make_engine, unit_of_work
from storage.models import Schedule
from tests.runtime import test_scheduler as base
from tests.runtime.test_scheduler import (
    CHANNEL,
    LEAD,
    MONDAY,
    PARTNER_LONDON,
    PARTNER_NY,
    SETUP,
    WEDNESDAY_NEW_YORK_11,
    QuickRetryFactory,
    ledger,
    make_project,
    make_scheduler,
    prompts_in,
)

# Fixtures shared with test_scheduler (pytest finds them by name in this module).
standin = base.standin
nudge_builder = base.nudge_builder

STALE = timedelta(minutes=2)


@pytest.fixture
def crash_on_post(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    """Make the Nth chat.postMessage of the run die after its claim was committed, like a SIGKILL."""
    plan = {"crash_at": 1, "calls": 0}
    real = bot.services.delivery.posting.post_message

    def post(client: Any, **kwargs: Any) -> tuple[str, str]:
        plan["calls"] += 1
        if plan["calls"] == plan["crash_at"]:
            raise SimulatedCrash
        return real(client, **kwargs)

    monkeypatch.setattr(bot.services.delivery.posting, "post_message", post)
    yield plan
    monkeypatch.setattr(bot.services.delivery.posting, "post_message", real)


@pytest.fixture
def crash_on_mark_sent(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Make the Nth write of sent marks die: Slack has accepted the posts, their ledger rows still say "claimed".
    plan["marks"] counts the marks written before it."""
    plan: dict[str, Any] = {"crash_at": 1, "calls": 0, "marks": 0}
    real = sched.mark_sent_many

    def mark_sent_many(session: Any, *, marks: Any) -> None:
        plan["calls"] += 1
        if plan["calls"] == plan["crash_at"]:
            raise SimulatedCrash
        real(session, marks=marks)
        plan["marks"] += len(marks)

    monkeypatch.setattr(sched, "mark_sent_many", mark_sent_many)
    plan["restore"] = lambda: monkeypatch.setattr(sched, "mark_sent_many", real)
    yield plan


def history_reads(standin: StandIn) -> int:
    return len(standin.calls("conversations.history"))


def test_a_claim_is_unique(engine: Engine) -> None:
    project_id = make_project(engine)
    with unit_of_work(engine) as session:
        schedule = sched.get_schedule(session, project_id=project_id, kind="team_prompt")
        assert schedule is not None
        first = sched.claim_delivery(
            session, schedule=schedule, occurrence=MONDAY, recipient="C1", claimed_by="a", now=MONDAY
        )
        second = sched.claim_delivery(
            session, schedule=schedule, occurrence=MONDAY, recipient="C1", claimed_by="b", now=MONDAY
        )
        other = sched.claim_delivery(
            session, schedule=schedule, occurrence=MONDAY, recipient="C2", claimed_by="b", now=MONDAY
        )
    assert first is not None and second is None and other is not None
    assert [(r.recipient, r.claimed_by) for r in ledger(engine)] == [("C1", "a"), ("C2", "b")]


def test_crash_between_claim_and_post_is_posted_once_after_restart(
    engine: Engine, standin: StandIn, crash_on_post: dict[str, int]
) -> None:
    make_project(engine)
    before = make_scheduler(engine, standin, instance_id="before-crash", stale_after=STALE)
    with pytest.raises(SimulatedCrash):
        before.run_due(MONDAY)
    [row] = ledger(engine, kind="team_prompt")
    assert (row.status, row.claimed_by) == ("claimed", "before-crash")
    assert prompts_in(standin, "C0MATERNITY") == []

    after = make_scheduler(engine, standin, instance_id="after-restart", stale_after=STALE)
    # The claim is young: it may still be in flight somewhere, so nobody touches it yet.
    assert after.run_due(MONDAY + timedelta(minutes=1)).posted == 0
    report = after.run_due(MONDAY + STALE + timedelta(minutes=1))
    assert (report.retried, report.posted) == (1, 1)
    assert after.run_due(MONDAY + STALE + timedelta(minutes=2)).posted == 0
    [row] = ledger(engine, kind="team_prompt")
    assert (row.status, row.claimed_by, row.attempts) == ("sent", "after-restart", 2)
    assert len(prompts_in(standin, "C0MATERNITY")) == 1
    # The retry looked first (the crashed attempt might have posted), found nothing, and posted.
    assert history_reads(standin) == 1


def test_crash_in_the_middle_of_a_fan_out(
    engine: Engine, standin: StandIn, crash_on_post: dict[str, int]
) -> None:
    people = [f"U0FANOUT{i:02d}" for i in range(6)]
    for user in people:
        standin.add_user(user, user.lower(), f"Partner {user[-2:]}")
    make_project(engine, partners=dict.fromkeys(people, "given"))
    crash_on_post["crash_at"] = 3
    with pytest.raises(SimulatedCrash):
        make_scheduler(engine, standin, instance_id="first", workers=1, stale_after=STALE).run_due(
            WEDNESDAY_NEW_YORK_11 - timedelta(hours=5)
        )
    sent_before = sum(len(prompts_in(standin, u)) for u in people)
    assert sent_before == 2

    restarted = make_scheduler(engine, standin, instance_id="second", workers=3, stale_after=STALE)
    restarted.run_due(WEDNESDAY_NEW_YORK_11 - timedelta(hours=4, minutes=59))  # the rest, not the crashed one
    restarted.run_due(WEDNESDAY_NEW_YORK_11 - timedelta(hours=4) + STALE)  # the crashed one, once stale
    assert {u: len(prompts_in(standin, u)) for u in people} == dict.fromkeys(people, 1)
    assert Counter(r.status for r in ledger(engine, kind="partner_prompt")) == {"sent": 6}


def test_a_stale_claim_past_its_grace_is_missed_not_posted_late(
    engine: Engine, standin: StandIn, crash_on_post: dict[str, int]
) -> None:
    make_project(engine)
    with pytest.raises(SimulatedCrash):
        make_scheduler(engine, standin, instance_id="before").run_due(MONDAY)
    make_scheduler(engine, standin, instance_id="after").run_due(MONDAY + timedelta(hours=7))
    [row] = ledger(engine, kind="team_prompt")
    assert row.status == "missed" and "not sent in time" in (row.error or "")
    assert prompts_in(standin, "C0MATERNITY") == []


def test_two_instances_at_once_post_every_prompt_exactly_once(
    database_url: str, engine: Engine, standin: StandIn
) -> None:
    channels = [f"C0LOAD{i:04d}" for i in range(30)]
    for channel in channels:
        standin.add_channel(channel, channel.lower(), members=["U0QILEAD01"])
        make_project(engine, channel=channel, name=f"Project {channel}")
    make_project(engine, channel="C0MATERNITY", partners={PARTNER_LONDON: "given", PARTNER_NY: "given"})
    engines = [make_engine(database_url) for _ in range(2)]
    schedulers = [
        make_scheduler(e, standin, instance_id=f"instance-{i}", workers=4) for i, e in enumerate(engines)
    ]
    reports: list[Any] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def run(scheduler: BotScheduler, when: Any) -> None:
        barrier.wait()
        try:
            reports.append(scheduler.run_due(when))
        except BaseException as exc:  # collected and re-raised in the test thread
            errors.append(exc)

    for when in (MONDAY, WEDNESDAY_NEW_YORK_11):
        threads = [threading.Thread(target=run, args=(s, when)) for s in schedulers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        barrier.reset()
    for e in engines:
        e.dispose()
    assert errors == []
    calls = [c for c in standin.calls("chat.postMessage") if c.ok]
    posts = Counter(c.args.get("channel") for c in calls if not c.args.get("thread_ts"))
    assert posts == Counter(
        {**dict.fromkeys(channels, 1), "C0MATERNITY": 1, PARTNER_LONDON: 1, PARTNER_NY: 1}
    )
    # Wednesday afternoon is two days after Monday's prompts: each gets its one reminder, once.
    reminders = Counter(c.args.get("channel") for c in calls if c.args.get("thread_ts"))
    assert reminders == Counter({**dict.fromkeys(channels, 1), "C0MATERNITY": 1})
    assert sum(r.posted for r in reports) == len(channels) + 3
    assert Counter(r.status for r in ledger(engine) if r.kind != "lead_nudge") == {"sent": len(channels) + 3}


def test_a_schedule_removed_mid_run_is_skipped(engine: Engine, standin: StandIn) -> None:
    project_id = make_project(engine)
    scheduler = make_scheduler(engine, standin)
    with unit_of_work(engine) as session:
        schedule = sched.get_schedule(session, project_id=project_id, kind="team_prompt")
        assert schedule is not None
        schedule.disabled_reason = "tokens_revoked"
        session.add(schedule)
    assert scheduler.run_due(MONDAY).posted == 0
    with unit_of_work(engine) as session:
        assert sched.disable_for_team(session, "T0MFIAR01", "app_uninstalled") == 2
        assert {s.disabled_reason for s in sched.all_schedules(session)} == {
            "tokens_revoked",
            "app_uninstalled",
        }
        assert isinstance(sched.all_schedules(session)[0], Schedule)
    assert SETUP < MONDAY


# --- idempotency by read-back: a post Slack accepted just before a crash is adopted, not repeated --------------


def test_every_ledger_post_carries_its_metadata_and_the_first_attempt_reads_nothing(
    engine: Engine, standin: StandIn
) -> None:
    make_project(engine, partners={PARTNER_LONDON: "given"})
    scheduler = make_scheduler(engine, standin)
    scheduler.run_due(MONDAY)
    scheduler.run_due(WEDNESDAY_NEW_YORK_11)  # the partner's prompt and the team's reminder
    rows = {r.kind: r for r in ledger(engine)}
    prompt = standin.message(CHANNEL, rows["team_prompt"].message_ts or "")
    dm = prompts_in(standin, PARTNER_LONDON)[0]
    assert prompt is not None and dm.metadata is not None
    assert prompt.metadata == {
        "event_type": METADATA_EVENT,
        "event_payload": {
            "delivery_id": rows["team_prompt"].id,
            "key": delivery_key(rows["team_prompt"].schedule_id, MONDAY, CHANNEL),
        },
    }
    assert dm.metadata["event_payload"]["delivery_id"] == rows["partner_prompt"].id
    [reminder] = standin.thread(CHANNEL, prompt.ts)
    assert reminder.metadata is not None and reminder.metadata["event_payload"]["key"].endswith(":reminder")
    assert history_reads(standin) == 0 and standin.calls("auth.test") == []
    assert standin.violations == []


def test_crash_after_slack_accepted_the_post_is_adopted_not_posted_again(
    engine: Engine, standin: StandIn, crash_on_mark_sent: dict[str, Any]
) -> None:
    make_project(engine)
    with pytest.raises(SimulatedCrash):
        make_scheduler(engine, standin, instance_id="before-crash", stale_after=STALE).run_due(MONDAY)
    [posted] = prompts_in(standin, CHANNEL)
    [row] = ledger(engine, kind="team_prompt")
    assert (row.status, row.message_ts) == ("claimed", None)
    crash_on_mark_sent["restore"]()
    # People keep talking after the crash: the prompt is no longer on the first page of history.
    for i in range(20):
        standin.add_user_message(CHANNEL, LEAD, f"Message {i}")

    after = make_scheduler(engine, standin, instance_id="after-restart", stale_after=STALE)
    report = after.run_due(MONDAY + STALE + timedelta(minutes=1))
    assert (report.retried, report.adopted, report.posted) == (1, 1, 0)
    assert [m for m in prompts_in(standin, CHANNEL) if m.bot_id] == [posted]
    [row] = ledger(engine, kind="team_prompt")
    assert (row.status, row.channel_id, row.message_ts, row.attempts) == ("sent", CHANNEL, posted.ts, 2)
    assert history_reads(standin) == 2  # 15 people's messages on the first page, the prompt on the second
    assert after.run_due(MONDAY + STALE + timedelta(minutes=2)).posted == 0
    assert standin.violations == []


def test_crash_mid_fan_out_of_dms_after_a_post_is_adopted(
    engine: Engine, standin: StandIn, crash_on_mark_sent: dict[str, Any]
) -> None:
    people = [f"U0FANOUT{i:02d}" for i in range(6)]
    for user in people:
        standin.add_user(user, user.lower(), f"Partner {user[-2:]}")
    make_project(engine, partners=dict.fromkeys(people, "given"))
    wednesday = WEDNESDAY_NEW_YORK_11 - timedelta(hours=5)
    # Nothing is written until the run ends (the marks wait a minute), and that write dies: all six were posted.
    first = make_scheduler(
        engine, standin, instance_id="first", workers=1, stale_after=STALE, mark_flush_interval=60
    )
    with pytest.raises(SimulatedCrash):
        first.run_due(wednesday)
    assert sum(len(prompts_in(standin, u)) for u in people) == 6
    assert Counter(r.status for r in ledger(engine, kind="partner_prompt")) == {"claimed": 6}
    crash_on_mark_sent["restore"]()

    restarted = make_scheduler(engine, standin, instance_id="second", workers=3, stale_after=STALE)
    assert restarted.run_due(wednesday + timedelta(minutes=1)).posted == 0  # young claims: left alone
    report = restarted.run_due(wednesday + STALE + timedelta(minutes=1))
    assert (report.retried, report.adopted, report.posted) == (6, 6, 0)
    assert {u: len(prompts_in(standin, u)) for u in people} == dict.fromkeys(people, 1)
    rows = ledger(engine, kind="partner_prompt")
    assert Counter(r.status for r in rows) == {"sent": 6}
    for row in rows:
        [dm] = prompts_in(standin, row.recipient)
        assert (row.channel_id, row.message_ts) == (dm.channel, dm.ts)


def test_a_crash_after_a_batch_is_posted_but_before_its_marks_are_written_is_adopted_by_the_next_leader(
    engine: Engine, standin: StandIn, crash_on_mark_sent: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two batches of three: the first batch's marks are written; the process dies at the next write, after
    some of the second batch went out. The next leader adopts what was posted and posts the rest: once each."""
    channels = [f"C0BATCH{i:02d}" for i in range(6)]
    for channel in channels:
        standin.add_channel(channel, channel.lower(), members=[LEAD])
        make_project(engine, channel=channel, name=f"Project {channel}")
    old, new = leaders(engine, standin, workers=1, claim_batch=3, mark_flush_interval=0.02)
    crash_on_mark_sent["crash_at"] = 0  # the writes go through until the first batch is out
    real = bot.services.delivery.posting.post_message
    posts: list[str] = []

    def post(client: Any, **kwargs: Any) -> tuple[str, str]:
        if len(posts) == 3:  # the first batch is out: let its marks be written; the next write dies
            deadline = time.monotonic() + 30
            while crash_on_mark_sent["marks"] < 3 and time.monotonic() < deadline:
                time.sleep(0.01)
            crash_on_mark_sent["crash_at"] = crash_on_mark_sent["calls"] + 1
        found = real(client, **kwargs)
        posts.append(kwargs["channel"])
        return found

    monkeypatch.setattr(bot.services.delivery.posting, "post_message", post)
    with pytest.raises(SimulatedCrash):
        old.deliverer.run(MONDAY, fenced=True)
    monkeypatch.setattr(bot.services.delivery.posting, "post_message", real)
    crash_on_mark_sent["restore"]()
    rows = ledger(engine, kind="team_prompt")
    assert len(rows) == 6 and {r.fence for r in rows} == {1}  # both batches were claimed under term 1
    assert sorted(r.recipient for r in rows if r.status == "sent") == sorted(posts[:3])
    assert 4 <= len(posts) <= 6  # the dying write stops the posting of the rest

    assert new.deliverer.begin_term(MONDAY) == 2
    # Until the old term's posts can no longer be on their way, its claims are left alone; then taken over.
    assert new.deliverer.run(MONDAY + timedelta(seconds=1), fenced=True).posted == 0
    later = MONDAY + new.deliverer.config.takeover_after + timedelta(seconds=1)
    report = new.deliverer.run(later, fenced=True)
    assert (report.retried, report.adopted, report.posted) == (3, len(posts) - 3, 6 - len(posts))
    assert {c: len(prompts_in(standin, c)) for c in channels} == dict.fromkeys(channels, 1)
    assert Counter(r.status for r in ledger(engine, kind="team_prompt")) == {"sent": 6}


def test_history_not_readable_falls_back_to_posting_with_a_warning(
    engine: Engine, standin: StandIn, crash_on_post: dict[str, int], caplog: pytest.LogCaptureFixture
) -> None:
    make_project(engine)
    team = standin.team()
    team.scopes = ",".join(
        s for s in team.scopes.split(",") if s != "channels:history"
    )  # installed before the upgrade
    with pytest.raises(SimulatedCrash):
        make_scheduler(engine, standin, instance_id="before", stale_after=STALE).run_due(MONDAY)
    with caplog.at_level(logging.WARNING, logger="bot.services.delivery"):
        report = make_scheduler(engine, standin, instance_id="after", stale_after=STALE).run_due(
            MONDAY + STALE + timedelta(minutes=1)
        )
    assert (report.adopted, report.posted) == (0, 1)
    assert len(prompts_in(standin, CHANNEL)) == 1
    assert [c.error for c in standin.calls("conversations.history")] == ["missing_scope"]
    warning = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "missing_scope" in warning and "channels:history" in warning and "posting it again" in warning
    assert [r.status for r in ledger(engine, kind="team_prompt")] == ["sent"]


def test_retry_of_a_post_slack_refused_does_not_read_back(engine: Engine, standin: StandIn) -> None:
    make_project(engine)
    scheduler = make_scheduler(engine, standin, factory=QuickRetryFactory(standin.api_url, retries=0))
    standin.inject("chat.postMessage", status=429, retry_after=1, times=1)
    assert scheduler.run_due(MONDAY).pending == 1
    report = scheduler.run_due(MONDAY + timedelta(minutes=1))
    assert (report.retried, report.posted) == (1, 1)
    assert history_reads(standin) == 0 and len(prompts_in(standin, CHANNEL)) == 1


# --- fencing: a deposed leader neither claims nor posts; a claim under the current term is its owner's ---------


def leaders(engine: Engine, standin: StandIn, **config: Any) -> tuple[BotScheduler, BotScheduler]:
    """Two instances; the first has begun its leader term, the second has not (yet)."""
    first = make_scheduler(engine, standin, instance_id="leader-1", stale_after=STALE, **config)
    second = make_scheduler(engine, standin, instance_id="leader-2", stale_after=STALE, **config)
    assert first.deliverer.begin_term(SETUP) == 1
    return first, second


def test_a_deposed_leader_can_neither_claim_nor_post(engine: Engine, standin: StandIn) -> None:
    make_project(engine)
    old, new = leaders(engine, standin)
    assert new.deliverer.begin_term(SETUP) == 2  # the lock changed hands; the old leader has not noticed
    report = old.deliverer.run(MONDAY, fenced=True)
    assert (report.posted, report.deposed) == (0, 1)
    assert ledger(engine, kind="team_prompt") == [] and prompts_in(standin, CHANNEL) == []
    report = new.deliverer.run(MONDAY, fenced=True)
    assert report.posted == 1
    [row] = ledger(engine, kind="team_prompt")
    assert (row.status, row.claimed_by, row.fence) == ("sent", "leader-2", 2)
    assert len(prompts_in(standin, CHANNEL)) == 1


def test_a_leader_deposed_while_a_post_waits_does_not_post_it_and_the_new_leader_does_once(
    engine: Engine, standin: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_project(engine)
    old, new = leaders(engine, standin)
    real = bot.services.delivery.posting.post_message
    deposed: list[int] = []

    def post(client: Any, **kwargs: Any) -> tuple[str, str]:
        try:
            return real(client, **kwargs)
        finally:
            if (
                not deposed
            ):  # Slack answered 429; while the post waits out Retry-After, the lock changes hands
                deposed.append(new.deliverer.begin_term(MONDAY))

    monkeypatch.setattr(bot.services.delivery.posting, "post_message", post)
    standin.inject("chat.postMessage", status=429, retry_after=1, times=1)
    report = old.deliverer.run(MONDAY, fenced=True)
    assert (report.posted, report.deposed, deposed) == (0, 1, [2])
    assert [c.ok for c in standin.calls("chat.postMessage")] == [False]  # the wait ended in no post
    [row] = ledger(engine, kind="team_prompt")
    assert (row.status, row.claimed_by, row.fence) == ("claimed", "leader-1", 1)

    # The new leader resumes from the ledger: the young claim is left alone, nothing is claimed twice ...
    takeover_after = new.deliverer.config.takeover_after
    report = new.deliverer.run(MONDAY + takeover_after - timedelta(seconds=1), fenced=True)
    assert (report.posted, report.retried, report.taken) == (0, 0, 0)
    # ... and once the old term's posts can no longer be on their way it is the new leader's, read back first
    # (the old one might have posted it).
    report = new.deliverer.run(MONDAY + takeover_after + timedelta(seconds=1), fenced=True)
    assert (report.retried, report.posted) == (1, 1)
    [row] = ledger(engine, kind="team_prompt")
    assert (row.status, row.claimed_by, row.fence) == ("sent", "leader-2", 2)
    assert len(prompts_in(standin, CHANNEL)) == 1 and history_reads(standin) == 1


def test_a_stale_claim_of_the_leader_holding_the_lock_is_never_taken_over(
    engine: Engine, standin: StandIn, crash_on_post: dict[str, int]
) -> None:
    make_project(engine)
    leader, other = leaders(engine, standin)
    with pytest.raises(SimulatedCrash):  # stuck between claim and post, still holding the lock
        leader.deliverer.run(MONDAY, fenced=True)
    [row] = ledger(engine, kind="team_prompt")
    assert (row.status, row.fence) == ("claimed", 1)
    # An unelected run (run_due) sees a stale claim, but its owner's term is current: not its to take.
    report = other.run_due(MONDAY + STALE + timedelta(minutes=1))
    assert (report.retried, report.posted) == (0, 0)
    # A fenced run without a term does nothing at all.
    assert other.deliverer.run(MONDAY + STALE + timedelta(minutes=1), fenced=True).posted == 0
    # Once the other instance leads (a new term), the old term's stale claim is retried, once.
    other.deliverer.begin_term(SETUP)
    report = other.deliverer.run(MONDAY + STALE + timedelta(minutes=2), fenced=True)
    assert (report.retried, report.posted) == (1, 1)
    assert len(prompts_in(standin, CHANNEL)) == 1


def test_a_leader_that_steps_down_mid_fan_out_posts_nothing_more(
    engine: Engine, standin: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    channels = [f"C0STEP{i:02d}" for i in range(4)]
    for channel in channels:
        standin.add_channel(channel, channel.lower(), members=[LEAD])
        make_project(engine, channel=channel, name=f"Project {channel}")
    leader, _ = leaders(engine, standin, workers=1)
    real = bot.services.delivery.posting.post_message

    def post(client: Any, **kwargs: Any) -> tuple[str, str]:
        posted = real(client, **kwargs)
        leader.deliverer.end_term()  # the lock connection failed: the elector steps down
        return posted

    monkeypatch.setattr(bot.services.delivery.posting, "post_message", post)
    report = leader.deliverer.run(MONDAY, fenced=True)
    assert (report.posted, report.deposed) == (1, 3)
    assert sum(len(prompts_in(standin, c)) for c in channels) == 1
    # The batch was claimed together; what was not posted stays claimed under the old term for the new leader.
    rows = ledger(engine, kind="team_prompt")
    assert sorted(r.status for r in rows) == ["claimed", "claimed", "claimed", "sent"]
    assert {r.fence for r in rows} == {1}


def test_a_leader_deposed_mid_batch_posts_nothing_more_and_the_new_leader_posts_the_rest_once(
    engine: Engine, standin: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lock changes hands after the first post of a claimed batch, and the old leader has not noticed (its
    own term is unchanged): the check before each post finds the new term, so nothing more goes out."""
    channels = [f"C0MID{i:02d}" for i in range(5)]
    for channel in channels:
        standin.add_channel(channel, channel.lower(), members=[LEAD])
        make_project(engine, channel=channel, name=f"Project {channel}")
    old, new = leaders(engine, standin, workers=1)
    real = bot.services.delivery.posting.post_message

    def post(client: Any, **kwargs: Any) -> tuple[str, str]:
        found = real(client, **kwargs)
        if old.deliverer.term == 1 and new.deliverer.term is None:
            new.deliverer.begin_term(SETUP)
        return found

    monkeypatch.setattr(bot.services.delivery.posting, "post_message", post)
    report = old.deliverer.run(MONDAY, fenced=True)
    assert (report.posted, report.deposed) == (1, 4)
    assert old.deliverer.term == 1  # it never heard: the database said so
    assert len([c for c in standin.calls("chat.postMessage") if c.ok]) == 1
    rows = ledger(engine, kind="team_prompt")
    assert sorted(r.status for r in rows) == ["claimed"] * 4 + ["sent"]
    monkeypatch.setattr(bot.services.delivery.posting, "post_message", real)

    report = new.deliverer.run(MONDAY + STALE + timedelta(minutes=1), fenced=True)
    assert (report.retried, report.adopted, report.posted) == (4, 0, 4)
    assert {c: len(prompts_in(standin, c)) for c in channels} == dict.fromkeys(channels, 1)
    assert Counter(r.status for r in ledger(engine, kind="team_prompt")) == {"sent": 5}


def test_a_429_in_a_batch_holds_back_only_its_channel(engine: Engine, standin: StandIn) -> None:
    channels = [f"C0RATE{i:02d}" for i in range(4)]
    for channel in channels:
        standin.add_channel(channel, channel.lower(), members=[LEAD])
        make_project(engine, channel=channel, name=f"Project {channel}")
    standin.inject("chat.postMessage", status=429, retry_after=1, times=1)
    report = make_scheduler(engine, standin, workers=2, claim_batch=4).run_due(MONDAY)
    assert report.posted == 4
    calls = standin.calls("chat.postMessage")
    [refused] = [c for c in calls if not c.ok]
    held = refused.args["channel"]
    [retried] = [c for c in calls if c.ok and c.args["channel"] == held]
    others = [c for c in calls if c.ok and c.args["channel"] != held]
    # The other channels went out while the refused one waited out its Retry-After, and only it waited.
    assert len(others) == 3 and all(c.time < retried.time for c in others)
    assert retried.time - refused.time >= 1.0
    assert {c: len(prompts_in(standin, c)) for c in channels} == dict.fromkeys(channels, 1)
    assert Counter(r.status for r in ledger(engine, kind="team_prompt")) == {"sent": 4}
