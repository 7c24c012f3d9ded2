"""The scheduler: APScheduler jobs rebuilt from the database, run by the elected leader through the delivery ledger."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from slack_bolt import App
from sqlalchemy import Engine

from bot.ack_first import ACK_FIRST, POST_STEP_ASIDE
from bot.app import client_factory_for, delivery_messages
from bot.config import Settings
from bot.core.schedule_rules import ScheduleSpec, describe, next_occurrence, zone_info
from bot.leader import LeaderElector
from bot.services.delivery import Deliverer, DeliveryConfig, DeliveryMessages, RunReport, make_instance_id
from bot.slack_client import ClientFactory
from storage import answers_repo, housekeeping
from storage import schedule_repo as sched
from storage.db import unit_of_work

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
SYNC_JOB = "sync"
TAKEOVER_JOB = "takeover"  # a one-off wake: the moment an earlier leader's claims may be taken over
NIGHTLY_JOB = "nightly"
NIGHTLY_HOUR_UTC = 2  # answers past their project's retention are removed at 02:30 UTC, by the leader only


def real_clock() -> datetime:
    return datetime.now(UTC)


class ScheduleTrigger(BaseTrigger):  # type: ignore[misc]  # APScheduler 3.x ships no type hints
    """APScheduler 3.x trigger that fires on a ScheduleSpec (optionally in a person's own tz)."""

    __slots__ = ("spec", "tz")

    def __init__(self, spec: ScheduleSpec, *, tz: str | None = None) -> None:
        if tz is not None:
            zone_info(tz)
        self.spec = spec
        self.tz = tz

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        # Like CronTrigger: continue from the previous fire time if it is earlier than now,
        # so the scheduler itself decides about missed runs (misfire_grace_time, coalesce).
        # A firing exactly at `now` still counts, hence "strictly after now - 1 µs".
        after = now - timedelta(microseconds=1)
        if previous_fire_time is not None:
            after = min(after, previous_fire_time)
        return next_occurrence(self.spec, after, tz=self.tz)

    def __str__(self) -> str:
        where = f", for {self.tz}" if self.tz else ""
        return f"schedule[{describe(self.spec)}{where}]"

    def __repr__(self) -> str:
        return f"<ScheduleTrigger (spec={self.spec!r}, tz={self.tz!r})>"


class BotScheduler:
    """Every instance builds the same jobs; only the leader's jobs do anything.

    Jobs live in APScheduler's in-memory store and are rebuilt from the Schedule rows at start-up and on
    every sync (never SQLAlchemyJobStore: it would pickle the engine and the Slack client). There are two
    kinds:

    - ``schedule:<id>``: fires at the schedule's own time and wakes the sync job, so a prompt goes out on
      the minute rather than up to one sync interval late;
    - ``sync`` (every ``sync_seconds``): re-reads schedules (new projects, edits, pauses), then delivers
      everything due: catch-up after downtime, people in other time zones, retries, reminders.

    :param clock: returns the aware UTC "now" deliveries are judged against; the demo and tests move it.
    """

    def __init__(
        self,
        engine: Engine,
        factory: ClientFactory,
        *,
        clock: Clock | None = None,
        sync_seconds: float = 30.0,
        leader_poll_seconds: float = 5.0,
        config: DeliveryConfig | None = None,
        instance_id: str | None = None,
        messages: DeliveryMessages | None = None,
    ) -> None:
        self.engine = engine
        self.clock: Clock = clock or real_clock
        self.sync_seconds = sync_seconds
        self.instance_id = instance_id or make_instance_id()
        self.deliverer = Deliverer(
            engine,
            factory,
            instance_id=self.instance_id,
            messages=messages or delivery_messages(),
            config=config,
        )
        self.deliverer.on_takeover_due = self._takeover_due
        self.elector = LeaderElector(
            engine, poll_seconds=leader_poll_seconds, on_change=self._on_leader_change
        )
        # APScheduler logs every job run at INFO: with a sync every 30 s and a job per schedule that drowns the log.
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
        self._aps = BackgroundScheduler(
            timezone=UTC, job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
        )
        self._started = False
        self._again = threading.Event()  # a sync was asked for (a wake, a new term) and has not yet begun
        self._sync_state = threading.Lock()  # guards _again's setting and clearing against _syncing
        self._syncing = False
        self._sync_requests = 0
        self._schedule_jobs: dict[int, str] = {}  # schedule id -> its wake-up job's id
        # Each timing in use -> its wake-up job's id and spec (None for an impossible timing, logged once).
        self._timing_jobs: dict[sched.Timing, tuple[str, ScheduleSpec] | None] = {}
        self.last_report: RunReport | None = None
        self.build_jobs()

    @classmethod
    def for_app(
        cls, settings: Settings, engine: Engine, app: App | None = None, clock: Clock | None = None
    ) -> BotScheduler:
        """The production scheduler for `settings` (the App itself is not needed: jobs have no request)."""
        config = DeliveryConfig(
            default_grace=timedelta(hours=settings.mfi_delivery_grace_hours),
            stale_after=timedelta(seconds=settings.mfi_delivery_stale_seconds),
            workers=settings.mfi_delivery_workers,
            post_timeout=settings.mfi_delivery_post_timeout_seconds,
            read_back=settings.mfi_crash_readback,
            step_aside=lambda: ACK_FIRST.step_aside(POST_STEP_ASIDE),
        )
        return cls(
            engine,
            client_factory_for(settings, engine),
            clock=clock,
            sync_seconds=settings.mfi_scheduler_sync_seconds,
            leader_poll_seconds=settings.mfi_leader_poll_seconds,
            config=config,
        )

    # --- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> BotScheduler:
        if self._started:
            return self
        self.elector.start()
        if self.elector.single:
            self._begin_term()  # the one instance (SQLite) leads from the start: its term fences its predecessor's
        self._aps.start()
        self._started = True
        logger.info("Scheduler started as %s (%s)", self.role(), self.instance_id)
        return self

    def shutdown(self) -> None:
        if self._started:
            # Waits for a fan-out in progress, so no claim is left behind for the next leader to retry.
            self._aps.shutdown(wait=True)
            self._started = False
        self.elector.stop()

    def role(self) -> str:
        """ "leader" | "follower" (PostgreSQL, several instances) or "single" (SQLite)."""
        return self.elector.role()

    @property
    def is_leader(self) -> bool:
        return self.elector.is_leader

    # --- jobs ---------------------------------------------------------------------------------------

    def build_jobs(self) -> None:
        """Declare the sync job and one wake-up job per live schedule; drop jobs of removed or paused ones."""
        self._aps.add_job(
            self._sync,
            "interval",
            seconds=self.sync_seconds,
            id=SYNC_JOB,
            replace_existing=True,
            next_run_time=datetime.now(UTC),
        )
        self._aps.add_job(
            self._nightly, "cron", hour=NIGHTLY_HOUR_UTC, minute=30, id=NIGHTLY_JOB, replace_existing=True
        )
        self._refresh_schedule_jobs()

    def _nightly(self) -> None:
        if not self.is_leader:
            return
        try:
            self.run_nightly(self.clock())
        except Exception:
            logger.exception("The nightly clean-up failed; it will run again tomorrow")

    def run_nightly(self, now: datetime | None = None) -> dict[int, int]:
        """Remove answers older than each project's retention setting, forget who answered once their reminder
        can no longer be due, and forget Events API deliveries older than a day (Slack retries within minutes). Returns answers removed per project. Deterministic: used by the tests."""
        now = now or self.clock()
        config = self.deliverer.config
        with unit_of_work(self.engine) as session:
            removed = answers_repo.delete_expired(session, now=now)
            cleared = answers_repo.clear_answered_flags(
                session, sent_before=now - config.reminder_after - config.reminder_window - timedelta(days=1)
            )
            events = housekeeping.prune_processed_events(session, now=now)
        if events:
            logger.info("Nightly clean-up: %s processed-event records older than a day removed", events)
        if removed or cleared:
            logger.info(
                "Nightly clean-up: %s answers past retention removed; %s answered flags cleared",
                sum(removed.values()),
                cleared,
            )
        return removed

    def _refresh_schedule_jobs(self) -> None:
        """One wake-up job per distinct spec, not per schedule: ten thousand projects on the default Monday 10:00
        share one job, so APScheduler works out one next fire time for them, not ten thousand at that minute.

        Runs after every sync, so it reads plain columns and works out each distinct timing's spec once, keeping
        the answers while the timing stays in use (60 ms at 10,000 projects on PostgreSQL, from 1.4 s)."""
        with unit_of_work(self.engine) as session:
            rows = sched.live_timings(session)
        known = self._timing_jobs
        seen: dict[sched.Timing, tuple[str, ScheduleSpec] | None] = {}
        wanted: dict[str, ScheduleSpec] = {}
        jobs: dict[int, str] = {}
        for schedule_id, _kind, _edited, timing in rows:
            if timing not in seen:
                seen[timing] = known[timing] if timing in known else self._job_for(schedule_id, timing)
            found = seen[timing]
            if found is not None:
                wanted[found[0]] = found[1]
                jobs[schedule_id] = found[0]
        self._timing_jobs = seen  # timings no longer in use are forgotten
        self._schedule_jobs = jobs
        for job in self._aps.get_jobs():
            if job.id.startswith("wake:") and job.id not in wanted:
                self._aps.remove_job(job.id)
        for job_id, spec in wanted.items():
            if self._aps.get_job(job_id) is None:  # same id, same spec: keep its next fire time
                self._aps.add_job(self._wake, ScheduleTrigger(spec), id=job_id)

    @staticmethod
    def _job_for(schedule_id: int, timing: sched.Timing) -> tuple[str, ScheduleSpec] | None:
        try:
            spec = sched.spec_of(timing)
        except ValueError:
            logger.warning("Schedule %s has an invalid spec; no job for it", schedule_id)
            return None
        return "wake:" + hashlib.sha1(repr(spec).encode()).hexdigest()[:16], spec

    def _wake(self) -> None:
        # Every schedule due this minute has its own wake-up job and they all fire together: the first asks for
        # a sync, the rest find it asked for. A sync already running, even one finishing, goes round once more.
        if self.is_leader:
            self._sync_soon()

    def _sync_soon(self) -> None:
        """A sync that begins after this call: the one running goes round again before it ends, or a new one
        starts at once.

        The new one is a one-off job of its own, not the interval job brought forward: APScheduler skips a job
        whose previous run has not quite finished (max_instances), so bringing the interval job forward while a
        sync was ending lost the wake until the next interval (a first post 5 s late in bench fanout; up to
        MFI_SCHEDULER_SYNC_SECONDS in production).
        """
        with self._sync_state:
            if self._again.is_set():
                return  # asked for already, and not yet begun
            self._again.set()
            if self._syncing:
                return  # the running sync sees `_again` before it ends
            self._sync_requests += 1
            job_id = f"{SYNC_JOB}-now-{self._sync_requests}"
        self._aps.add_job(self._sync, "date", run_date=datetime.now(UTC), id=job_id)

    def _begin_term(self) -> bool:
        try:
            term = self.deliverer.begin_term(self.clock())
        except Exception:
            logger.exception("Could not begin a leader term; not delivering until the next try")
            return False
        logger.info("Leader term %s begun (%s)", term, self.instance_id)
        return True

    def _on_leader_change(self, leading: bool) -> None:
        if not leading:
            self.deliverer.end_term()  # a fan-out in progress stops posting at once
            return
        # A new term first: from its commit no earlier leader can claim or post (bot.services.delivery).
        if self._begin_term():
            self._sync_soon()  # take over at once rather than at the next interval

    def _takeover_due(self, when: datetime) -> None:
        """Wake at `when` (the deliverer's clock) to retry an earlier leader's claims, alongside any fan-out still
        running, rather than at the first sync after it."""
        delay = when - self.clock()
        run_date = datetime.now(UTC) + delay  # read after the clock: never before `when`
        self._aps.add_job(self._take_over, "date", run_date=run_date, id=TAKEOVER_JOB, replace_existing=True)

    def _take_over(self) -> None:
        if not self.is_leader:
            return
        try:
            report = self.deliverer.retry(self.clock(), fenced=True)
        except Exception:
            logger.exception("Retrying the previous leader's claims failed; the next sync tries again")
            return
        if report.retried:
            logger.info(
                "Took over %s claims of an earlier leader: %s posted, %s found already posted, %s missed",
                report.retried,
                report.posted,
                report.adopted,
                report.missed,
            )

    def _sync(self) -> None:
        with self._sync_state:
            if self._syncing:
                return  # one sync at a time; a wake meanwhile has asked the running one to go round again
            if not self.is_leader:
                self._again.clear()  # nothing to do; leading again asks for a sync of its own
                return
            self._syncing = True
        try:
            if self.deliverer.term is None and not self._begin_term():
                with self._sync_state:
                    self._syncing = False
                    self._again.clear()  # the interval's next sync tries the term again
                return
            while True:
                self._again.clear()
                report = self.deliverer.run(self.clock(), fenced=True)
                if self._again.is_set():
                    continue
                # The wake-up jobs are for the next occurrences: rebuilt after the posts, not before the first one.
                self._refresh_schedule_jobs()
                self.last_report = report
                if report.posted or report.missed or report.failed or report.reminded:
                    logger.info(
                        "Deliveries: %s posted, %s reminders, %s missed, %s failed, %s retried, %s waiting to retry",
                        report.posted,
                        report.reminded,
                        report.missed,
                        report.failed,
                        report.retried,
                        report.pending,
                    )
                with self._sync_state:
                    if not self._again.is_set():  # nothing asked for a sync since this pass began: done
                        self._syncing = False
                        return
        except Exception:
            logger.exception("Scheduler sync failed; it will run again in %s s", self.sync_seconds)
            with self._sync_state:
                self._syncing = False
                self._again.clear()  # the interval's next sync is the one that goes round again
        except BaseException:
            with self._sync_state:
                self._syncing = False
            raise

    def run_due(self, now: datetime | None = None) -> RunReport:
        """Deliver everything due at `now` (default: the clock) in this thread, whatever this instance's role.

        Deterministic: used by the tests and the demo. Safe alongside a running leader: the ledger decides.
        """
        report = self.deliverer.run(now or self.clock())
        self.last_report = report
        return report

    def get_job(self, job_id: str) -> Any:
        """An APScheduler job by id; "schedule:<id>" finds the wake-up job that schedule shares."""
        if job_id.startswith("schedule:"):
            found = self._schedule_jobs.get(int(job_id.split(":", 1)[1]))
            return self._aps.get_job(found) if found else None
        return self._aps.get_job(job_id)
