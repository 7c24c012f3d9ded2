"""Taking over a dead or deposed leader's claims: from the moment none of its posts can still be on their way
(bot.services.delivery, "Takeover"), not a stale period later, and never a claim of the term in force."""

from __future__ import annotations

import time
import urllib.error
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from sqlalchemy import Engine

import bot.services.delivery.context
import bot.services.delivery.posting
from bot.offline.standin import StandIn
from bot.scheduler import TAKEOVER_JOB, BotScheduler
from bot.services.delivery import DeliveryConfig, SimulatedCrash, planning
from bot.services.delivery.context import RunContext
from bot.slack_client import ClientFactory
from storage import schedule_repo as sched
from storage.db import unit_of_work
from tests.runtime import test_scheduler as base
from tests.runtime.test_scheduler import (
    CHANNEL,
    MONDAY,
    SETUP,
    ledger,
    make_project,
    make_scheduler,
    prompts_in,
)
from tests.services import test_ledger

standin = base.standin
nudge_builder = base.nudge_builder
crash_on_post = test_ledger.crash_on_post
crash_on_mark_sent = test_ledger.crash_on_mark_sent
history_reads = test_ledger.history_reads

STALE = timedelta(minutes=2)
BEGUN = MONDAY + timedelta(seconds=5)  # the old leader died mid-post at MONDAY; the new term begins 5 s later


def two_leaders(engine: Engine, standin: StandIn, **config: Any) -> tuple[BotScheduler, BotScheduler]:
    old = make_scheduler(engine, standin, instance_id="leader-1", stale_after=STALE, **config)
    new = make_scheduler(engine, standin, instance_id="leader-2", stale_after=STALE, **config)
    assert old.deliverer.begin_term(SETUP) == 1
    return old, new


def test_an_earlier_terms_claim_is_left_alone_until_the_bound_then_read_back_and_posted_once(
    engine: Engine, standin: StandIn, crash_on_post: dict[str, int]
) -> None:
    make_project(engine)
    old, new = two_leaders(engine, standin)
    with pytest.raises(SimulatedCrash):  # claimed, then killed before the post
        old.deliverer.run(MONDAY, fenced=True)
    assert new.deliverer.begin_term(BEGUN) == 2
    bound = new.deliverer.config.takeover_after
    assert bound == timedelta(seconds=0.5 + 3 * 10 + 2) and bound < STALE

    # Just before the bound the old leader's post could still be on its way: not touched, a wake is asked for.
    report = new.deliverer.run(BEGUN + bound - timedelta(seconds=1), fenced=True)
    assert (report.retried, report.posted, report.taken) == (0, 0, 0)
    assert report.takeover_at is not None
    assert BEGUN + bound <= report.takeover_at < BEGUN + bound + timedelta(seconds=1)
    [row] = ledger(engine, kind="team_prompt")
    assert (row.status, row.claimed_by, row.fence, row.attempts) == ("claimed", "leader-1", 1, 1)

    # From the bound on (well before it is stale) it is the new leader's: read back first, found nowhere, posted.
    report = new.deliverer.retry(report.takeover_at, fenced=True)
    assert (report.retried, report.posted, report.takeover_at) == (1, 1, None)
    assert history_reads(standin) == 1
    [row] = ledger(engine, kind="team_prompt")
    assert (row.status, row.claimed_by, row.fence, row.attempts) == ("sent", "leader-2", 2, 2)
    assert len(prompts_in(standin, CHANNEL)) == 1
    assert new.deliverer.run(BEGUN + STALE, fenced=True).posted == 0
    assert len(prompts_in(standin, CHANNEL)) == 1


def test_a_post_of_the_dead_leader_that_landed_is_adopted_not_posted_again(
    engine: Engine, standin: StandIn, crash_on_mark_sent: dict[str, Any]
) -> None:
    make_project(engine)
    old, new = two_leaders(engine, standin)
    with pytest.raises(SimulatedCrash):  # Slack accepted the post; killed before the row was marked sent
        old.deliverer.run(MONDAY, fenced=True)
    crash_on_mark_sent["restore"]()
    [posted] = prompts_in(standin, CHANNEL)
    new.deliverer.begin_term(BEGUN)
    report = new.deliverer.run(
        BEGUN + new.deliverer.config.takeover_after + timedelta(seconds=1), fenced=True
    )
    assert (report.retried, report.adopted, report.posted) == (1, 1, 0)
    assert prompts_in(standin, CHANNEL) == [posted]
    [row] = ledger(engine, kind="team_prompt")
    assert (row.status, row.message_ts, row.fence) == ("sent", posted.ts, 2)


def test_a_claim_of_the_term_in_force_is_never_taken_whatever_its_age(
    engine: Engine, standin: StandIn, crash_on_post: dict[str, int]
) -> None:
    make_project(engine)
    leader, other = two_leaders(engine, standin)
    with pytest.raises(SimulatedCrash):  # stuck between claim and post, still holding the lock (term 1)
        leader.deliverer.run(MONDAY, fenced=True)
    later = MONDAY + timedelta(hours=1)  # long past both the takeover bound and stale_after
    assert other.run_due(later).retried == 0  # unelected: stale, but its owner's term is in force
    assert other.deliverer.retry(later).retried == 0  # the takeover wake, unfenced
    assert other.deliverer.retry(later, fenced=True).retried == 0  # fenced without a term: nothing at all
    with unit_of_work(engine) as session:
        for older_terms in (False, True):
            assert (
                sched.retryable_claims(
                    session, me="leader-2", stale_before=later, current_term=1, older_terms=older_terms
                )
                == []
            )
        assert (
            sched.retryable_claims(
                session, me="leader-2", stale_before=later, current_term=1, only_older_terms=True
            )
            == []
        )
        assert not sched.has_older_term_claims(session, current_term=1)
    assert prompts_in(standin, CHANNEL) == []
    [row] = ledger(engine, kind="team_prompt")
    assert (row.status, row.claimed_by, row.attempts) == ("claimed", "leader-1", 1)


def test_an_unelected_run_still_waits_for_stale_after(
    engine: Engine, standin: StandIn, crash_on_post: dict[str, int]
) -> None:
    make_project(engine)
    old, new = two_leaders(engine, standin)
    with pytest.raises(SimulatedCrash):
        old.deliverer.run(MONDAY, fenced=True)
    new.deliverer.begin_term(BEGUN)
    bound = new.deliverer.config.takeover_after
    unelected = make_scheduler(engine, standin, instance_id="run-due", stale_after=STALE)
    assert unelected.run_due(BEGUN + bound + timedelta(seconds=1)).retried == 0
    assert unelected.run_due(MONDAY + STALE + timedelta(seconds=1)).posted == 1
    assert len(prompts_in(standin, CHANNEL)) == 1


def test_the_new_leader_wakes_at_the_bound_and_retries_alongside_a_running_fan_out(
    engine: Engine, standin: StandIn, crash_on_post: dict[str, int], clock: time_machine.Traveller
) -> None:
    make_project(engine)
    old, _ = two_leaders(engine, standin)
    with pytest.raises(SimulatedCrash):
        old.deliverer.run(MONDAY, fenced=True)
    clock.move_to(MONDAY + timedelta(seconds=5))
    new = BotScheduler(
        engine,
        ClientFactory(standin.api_url, bot_token="xoxb-standin"),
        config=DeliveryConfig(per_channel_interval=0.0, stale_after=STALE),
        instance_id="leader-2",
    )  # the production clock (datetime.now, fixed by the test's clock)
    new.deliverer.begin_term(new.clock())
    report = new.deliverer.run(new.clock(), fenced=True)
    assert report.retried == 0 and report.takeover_at is not None
    job = new.get_job(TAKEOVER_JOB)
    assert job is not None
    wake = job.trigger.run_date.astimezone(UTC)
    assert abs(wake - report.takeover_at) < timedelta(seconds=1)  # the same instant: one clock here

    new.elector._leader = True  # the election decided (PostgreSQL's lock; not what this test is about)
    clock.move_to(wake)
    job.func()  # the one-off job fires
    [row] = ledger(engine, kind="team_prompt")
    assert (row.status, row.claimed_by, row.fence) == ("sent", "leader-2", 2)
    assert len(prompts_in(standin, CHANNEL)) == 1 and history_reads(standin) == 1


def test_a_deposed_leader_whose_last_check_is_older_than_the_gap_checks_again_and_does_not_post(
    engine: Engine, standin: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_project(engine)
    old, new = two_leaders(engine, standin, recheck_after=0.05)
    real = RunContext.poster

    def slow_poster(self: RunContext, *args: Any) -> Any:
        found = real(self, *args)
        new.deliverer.begin_term(MONDAY)  # the lock changes hands after the claim's check ...
        time.sleep(0.1)  # ... and the old leader stalls for longer than the gap before sending
        return found

    monkeypatch.setattr(bot.services.delivery.context.RunContext, "poster", slow_poster)
    report = old.deliverer.run(MONDAY, fenced=True)
    assert (report.posted, report.deposed) == (0, 1)
    assert standin.calls("chat.postMessage") == []
    [row] = ledger(engine, kind="team_prompt")
    assert (row.status, row.claimed_by, row.fence) == ("claimed", "leader-1", 1)


def test_fan_out_posts_have_the_short_timeout_and_the_client_never_re_sends_one(
    engine: Engine, standin: StandIn
) -> None:
    make_project(engine)
    scheduler = make_scheduler(engine, standin, post_timeout=1)
    ctx = RunContext(scheduler.deliverer, MONDAY, time.monotonic())
    client = scheduler.deliverer.factory.for_team("T0MFIAR01")
    assert client is not None and client.timeout == 30 and client.retry_handlers
    poster, refusals = ctx.poster(client, "T0MFIAR01", None)
    assert (poster.timeout, poster.retry_handlers, refusals) == (1, [], 5)

    # Slack takes longer than the timeout and posts it anyway: the client gives up and does not send it again ...
    standin.slow("chat.postMessage", 1.5)
    report = scheduler.run_due(MONDAY)
    assert (report.posted, report.pending) == (0, 1)
    assert len(standin.calls("chat.postMessage")) == 1
    [row] = ledger(engine, kind="team_prompt")
    assert row.status == "claimed" and "timed out" in (row.error or "")
    deadline = time.monotonic() + 5
    while not prompts_in(standin, CHANNEL) and time.monotonic() < deadline:
        time.sleep(0.05)
    # ... and the ledger's retry reads back first and adopts the post that landed late.
    report = scheduler.run_due(MONDAY + timedelta(minutes=1))
    assert (report.retried, report.adopted, report.posted) == (1, 1, 0)
    assert len(prompts_in(standin, CHANNEL)) == 1 and len(standin.calls("chat.postMessage")) == 1


def test_a_5xx_is_left_for_the_ledger_to_retry_after_a_read_back(engine: Engine, standin: StandIn) -> None:
    make_project(engine)
    scheduler = make_scheduler(engine, standin)
    standin.inject("chat.postMessage", status=500, times=1)
    report = scheduler.run_due(MONDAY)
    assert (report.posted, report.pending) == (0, 1)
    assert len(standin.calls("chat.postMessage")) == 1  # not re-sent behind the ledger's back
    report = scheduler.run_due(MONDAY + timedelta(minutes=1))
    assert (report.retried, report.posted) == (1, 1)
    assert history_reads(standin) == 1 and len(prompts_in(standin, CHANNEL)) == 1


def test_the_bound_counts_from_the_new_terms_commit_and_ends_with_the_term(
    engine: Engine, standin: StandIn
) -> None:
    make_project(engine)
    _, new = two_leaders(engine, standin)
    started = datetime(2025, 6, 16, 9, 0, 5, tzinfo=UTC)
    new.deliverer.begin_term(started)
    assert new.deliverer.takeover_at is not None
    assert timedelta(0) <= new.deliverer.takeover_at - (started + new.deliverer.config.takeover_after)
    assert new.deliverer.takeover_at - (started + new.deliverer.config.takeover_after) < timedelta(seconds=5)
    new.deliverer.end_term()
    assert new.deliverer.takeover_at is None


@pytest.mark.parametrize("deposed_meanwhile", [False, True])
def test_a_post_that_never_reached_slack_is_tried_again_in_the_run_after_a_term_check(
    engine: Engine, standin: StandIn, monkeypatch: pytest.MonkeyPatch, deposed_meanwhile: bool
) -> None:
    make_project(engine)
    old, new = two_leaders(engine, standin)
    real = bot.services.delivery.posting.post_message
    failures: list[str] = []

    def post(client: Any, **kwargs: Any) -> tuple[str, str]:
        if not failures:  # could not connect: urllib raises URLError, Slack never saw the request
            failures.append(kwargs["channel"])
            if deposed_meanwhile:
                new.deliverer.begin_term(MONDAY)
            raise urllib.error.URLError(TimeoutError("timed out"))
        return real(client, **kwargs)

    monkeypatch.setattr(bot.services.delivery.posting, "post_message", post)
    report = old.deliverer.run(MONDAY, fenced=True)
    [row] = ledger(engine, kind="team_prompt")
    if deposed_meanwhile:  # the second try checked the term first
        assert (report.posted, report.deposed, report.pending) == (0, 1, 0)
        assert row.status == "claimed" and prompts_in(standin, CHANNEL) == []
    else:
        assert (report.posted, report.pending) == (1, 0)
        assert (row.status, row.attempts) == ("sent", 1) and len(prompts_in(standin, CHANNEL)) == 1


def test_a_prompt_whose_leaders_are_killed_three_times_in_a_row_is_still_posted_once(
    engine: Engine, standin: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_project(engine)
    real = bot.services.delivery.posting.post_message
    kills: list[int] = []

    def post(client: Any, **kwargs: Any) -> tuple[str, str]:
        if len(kills) < 3:  # each leader in turn dies between its claim (or take-over) and the post
            kills.append(1)
            raise SimulatedCrash
        return real(client, **kwargs)

    monkeypatch.setattr(bot.services.delivery.posting, "post_message", post)
    now = MONDAY
    for n in range(1, 5):
        leader = make_scheduler(engine, standin, instance_id=f"leader-{n}", stale_after=STALE)
        assert leader.deliverer.begin_term(now) == n
        now += leader.deliverer.config.takeover_after + timedelta(seconds=1)
        if n < 4:
            with pytest.raises(SimulatedCrash):
                leader.deliverer.run(now, fenced=True)
        else:
            assert leader.deliverer.run(now, fenced=True).posted == 1
        now += timedelta(seconds=5)
    [row] = ledger(engine, kind="team_prompt")
    # Interrupted three times without an error: not "gave up after 3 attempts" (max_attempts counts errors).
    assert (row.status, row.attempts, row.claimed_by) == ("sent", 4, "leader-4")
    assert len(prompts_in(standin, CHANNEL)) == 1


def test_a_new_leaders_first_run_plans_what_the_ledger_lacks_first(
    engine: Engine, standin: StandIn, monkeypatch: pytest.MonkeyPatch, crash_on_post: dict[str, int]
) -> None:
    channels = [f"C0RESUME{i}" for i in range(3)]
    for channel in channels:
        standin.add_channel(channel, channel.lower(), members=[base.LEAD])
        make_project(engine, channel=channel, name=f"Project {channel}")
    old, new = two_leaders(engine, standin, workers=1, claim_batch=1)  # claims made one at a time
    crash_on_post["crash_at"] = 2  # the old leader posts to one channel, claims a second, dies
    with pytest.raises(SimulatedCrash):
        old.deliverer.run(MONDAY, fenced=True)
    claimed = {r.schedule_id for r in ledger(engine)}
    assert len(claimed) == 2

    planned: list[list[int]] = []
    real = planning._plan_batch

    def plan_batch(deliverer: Any, ctx: Any, report: Any, ids: list[int]) -> Any:
        planned.append(list(ids))
        return real(deliverer, ctx, report, ids)

    monkeypatch.setattr(planning, "PLAN_BATCH", 1)
    monkeypatch.setattr(planning, "_plan_batch", plan_batch)
    new.deliverer.begin_term(BEGUN)
    new.deliverer.run(BEGUN, fenced=True)
    order = [ids[0] for ids in planned]
    assert set(order[-2:]) == claimed and not claimed & set(order[:-2])  # the old leader's, last
    assert len(prompts_in(standin, channels[2])) == 1

    planned.clear()
    new.deliverer.run(BEGUN + timedelta(seconds=30), fenced=True)  # later runs of the term: in order
    assert [ids[0] for ids in planned] == sorted(order)


def test_a_new_leaders_first_batch_is_small_so_its_first_post_is_soon(
    engine: Engine, standin: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(3):
        channel = f"C0FIRST{i}"
        standin.add_channel(channel, channel.lower(), members=[base.LEAD])
        make_project(engine, channel=channel, name=f"Project {channel}")
    leader = make_scheduler(engine, standin, instance_id="leader-1", stale_after=STALE)
    sizes: list[int] = []
    real = planning._plan_batch

    def plan_batch(deliverer: Any, ctx: Any, report: Any, ids: list[int]) -> Any:
        sizes.append(len(ids))
        return real(deliverer, ctx, report, ids)

    monkeypatch.setattr(planning, "FIRST_BATCH", 2)
    monkeypatch.setattr(planning, "_plan_batch", plan_batch)
    leader.deliverer.begin_term(MONDAY)
    assert leader.deliverer.run(MONDAY, fenced=True).posted == 3
    live = sum(sizes)
    assert sizes == [2, live - 2]  # then PLAN_BATCH at a time
    sizes.clear()
    leader.deliverer.run(MONDAY + timedelta(minutes=1), fenced=True)
    assert sizes == [live]  # the term's later runs: PLAN_BATCH from the start
