"""Scheduled deliveries: which prompt goes to whom and when, posted exactly once through the delivery ledger.

The ledger (storage.models.Delivery, unique on schedule, occurrence and recipient) is the whole story:

1. Claim: insert the row in its own committed transaction *before* posting. A row that is already there means
   another instance, or this one before a restart, has that occurrence for that recipient: skip it. Fresh
   claims are made a batch at a time (DeliveryConfig.claim_batch: one transaction, one multi-row INSERT .. ON
   CONFLICT DO NOTHING RETURNING), just ahead of the posting threads (batching.py).
2. Post, then mark the row "sent" with the message's ts. The marks of many posts are written together, in one
   statement every `mark_flush_interval`; a crash before that write is one more "crash between post and mark",
   recovered by the read-back below.
3. A 429 that outlasts slack_sdk's own Retry-After waits, or a connection error, leaves the row "claimed" with
   the error noted; the next sync tries again (``max_attempts`` in all, then "failed"). An attempt cut short
   without an error (its leader died or was deposed between claim and post) counts against
   ``max_interruptions`` instead, so a few restarts in a row do not lose a prompt; the grace period still ends it.
4. A row left "claimed" by a process that died between claim and post is retried by the current leader once it
   is older than ``stale_after``, or sooner when it was claimed under an earlier leader term (Takeover, below),
   within the kind's grace period (later than that it becomes "missed").

Idempotency by read-back, only on recovery: every post carries Slack message metadata naming its ledger row
(``mfi_ar_delivery``: delivery id and schedule:occurrence:recipient key). A process killed after Slack accepted
a post but before the row was marked sent leaves a claim that looks unsent; before posting it again, the retry
reads the bot's recent messages in that conversation (one bounded conversations.history page, a few more at
most) and, if one carries this delivery's metadata, adopts its ts instead of posting. The first attempt makes
no extra call. History reads are heavily rate limited for distributed apps (slack-platform.md 3.4), which is
why they happen only here. If the read fails (scope not granted, not in the channel, 429 after retries) the
retry posts as before and says why in the log: a possible duplicate is better than a lost prompt.
Reminders are at most once: their marker is set before posting, so a crash there loses the reminder.

Catch-up: each schedule has a mark (SchedulerState.last_checked). Every sync looks at the occurrences between
the mark and now; those within the grace period are delivered, older ones are recorded as "missed" (so the
Home tab and the leads' nudge can say so), then the mark moves on. Occurrences from before the schedule was
last edited (or resumed) are neither sent nor counted.

Fencing: only the elected leader runs the scheduled fan-out (bot.leader), and leadership can be lost part-way
through one. Each instance that becomes leader begins a new term (storage.leader_repo, one row in leader_term);
every claim of a leader's run carries its term (Delivery.fence) and is made in a transaction that first checks,
under a share lock, that the term is still current, and every post checks it again just before the call (posts
asking at the same moment share one check, but each waits for a check that began after it asked). So a
deposed leader, which may not know yet that it lost the lock, cannot claim or post; what it had claimed stays
claimed and the new leader retries it, reading back first. A claim made under the current term by another
instance belongs to the leader holding the lock and is never taken over. A run outside the election (tests, the
demo, `run_due`) has no term and is not fenced; the ledger's unique key still makes it safe.

Takeover, and why it does not post twice. The danger is an old leader's post reaching Slack *after* the new
leader's read-back found nothing: both would then be posted. So the new leader may retry a claim of an earlier
term only once no post of that term can still be on its way. That moment is bounded:

- Once the new term's begin_term has committed (``T``), every check of the old term fails. The commit, not the
  instant passed in, is the start: begin_term may have waited for a claim holding the share lock.
- The old leader checks its term immediately before every post; if more than ``recheck_after`` seconds passed
  since the last check (content built, a channel's slot waited for), it checks again first. So its last
  successful check was before ``T`` and its post's HTTP call began before ``T + recheck_after``.
- Fan-out posts use a client with ``post_timeout`` and no retry handlers (context.RunContext.poster): urllib
  applies the timeout to connecting, to sending the request and to waiting for the answer, each in turn. So the
  request has reached Slack or been abandoned by ``T + recheck_after + 2 * post_timeout``, and a post Slack
  makes within ``post_timeout`` of receiving it (any post whose answer we did not give up on) has landed by
  ``T + recheck_after + 3 * post_timeout``. Nothing re-sends it behind the ledger's back: a 429, a 5xx or a
  dropped connection after sending leaves the claim for a retry that checks the term and reads back; a
  connection that failed before the request was sent whole (URLError) is tried again after a new check.
- ``takeover_margin`` covers the rest: Slack taking a little longer than our timeout, a thread descheduled
  between its last check and the send, the clock's resolution. A post Slack makes later still, after we gave
  up waiting for it, is the one case the read-back cannot close (as with a crash after the post, above).

So from ``T + takeover_after`` (DeliveryConfig.takeover_after, 32.5 s with the defaults, against 2 minutes of
``stale_after``) the leader of term ``T`` retries every claim of an earlier term, after the read-back as always,
which adopts a post that landed. Until then it leaves them alone and wakes at that moment (a one-off job,
bot.scheduler), alongside a fan-out that may still be running (Deliverer.retry), rather than at the next sync.
``stale_after`` still governs claims without a term (unelected runs) and anything an unelected run retries; a
leader's own claims are retried at its next sync as before (its runs do not overlap, and a run's retries wait
for a take-over in progress, so none is in flight). A new leader resumes from the ledger: its first run plans
the schedules with nothing claimed in the last hour first, in a small first batch, so its first post does not
wait for re-planning what its predecessor did.

The modules: planning.py (what is due, read in a fixed number of queries, with bot.core.delivery_plan's
decisions), posting.py (claims and posts on a small thread pool at Slack's per-channel pace), batching.py (batched claims, the
shared term check, the sent marks' writer), reminders.py,
context.py (per-run caches), model.py (configuration, tasks, reports).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from bot.core.prompts import Catalogue, load_catalogue
from bot.services.delivery import planning, posting, reminders
from bot.services.delivery.context import RunContext
from bot.services.delivery.model import (
    CONSENT_KIND,
    CONSENT_OCCURRENCE,
    METADATA_EVENT,
    DeliveryConfig,
    DeliveryMessages,
    RunReport,
    SimulatedCrash,
    Task,
    Throttle,
    delivery_key,
    delivery_metadata,
    make_instance_id,
)
from bot.services.delivery.posting import post_message
from bot.slack_client import ClientFactory
from storage import leader_repo
from storage import schedule_repo as sched
from storage.db import unit_of_work

logger = logging.getLogger(__name__)


class Deliverer:
    """Runs deliveries against the database and Slack; safe to run in several instances at once.

    :param instance_id: written to Delivery.claimed_by; unique per process start.
    """

    def __init__(
        self,
        engine: Engine,
        factory: ClientFactory,
        *,
        instance_id: str,
        messages: DeliveryMessages,
        config: DeliveryConfig | None = None,
        catalogue: Catalogue | None = None,
    ) -> None:
        self.engine = engine
        self.messages = messages
        self.factory = factory
        self.instance_id = instance_id
        self.config = config or DeliveryConfig()
        self.catalogue = catalogue or load_catalogue()
        self.throttle = Throttle(self.config.per_channel_interval)
        self._run_lock = threading.Lock()
        self.people: dict[str, tuple[float, dict[str, Any]]] = {}  # user id -> (monotonic time, users.info)
        self.people_lock = threading.Lock()
        self.term: int | None = None  # the leader term this instance holds, if it leads
        # From when (this instance's clock) no claim of an earlier term can still be on its way to Slack.
        self.takeover_at: datetime | None = None
        self._term_lock = threading.Lock()
        self._retry_lock = threading.Lock()
        self._resumed: int | None = None  # the last term a run was made under
        # Called with the instant claims of an earlier term become safe to retry (the scheduler wakes then).
        self.on_takeover_due: Callable[[datetime], None] | None = None
        # Each schedule's next firing, remembered across syncs (planning._not_yet): most syncs find nothing due.
        self.next_firing: dict[int, tuple[Any, datetime, datetime]] = {}

    # --- leadership ---------------------------------------------------------------------------------

    def begin_term(self, now: datetime) -> int:
        """This instance has become leader: a new term, which ends every earlier leader's claims and posts.
        Once per leadership: while it holds a term, asking again returns that term."""
        with self._term_lock:
            if self.term is None:
                started = time.monotonic()
                with unit_of_work(self.engine) as session:
                    term = leader_repo.begin_term(session, holder=self.instance_id, now=now)
                # Committed: any check of the term from here on fails for older terms. Counted from the commit,
                # not from `now`: begin_term may have waited for a claim holding the share lock.
                committed = now + timedelta(seconds=time.monotonic() - started)
                self.takeover_at = committed + self.config.takeover_after
                self.term = term
            return self.term

    def end_term(self) -> None:
        """This instance has stepped down: a fan-out in progress stops posting."""
        with self._term_lock:
            self.term = None
            self.takeover_at = None

    # --- the whole run ------------------------------------------------------------------------------

    def run(
        self, now: datetime, *, schedule_ids: Iterable[int] | None = None, fenced: bool = False
    ) -> RunReport:
        """Deliver everything due at `now`: retries, new occurrences (with catch-up), consent requests, reminders.

        `fenced`: run as the elected leader, under this instance's term (nothing happens without one).
        """
        with self._run_lock:
            term = self.term
            if fenced and term is None:
                return RunReport()
            return self._run(
                now, None if schedule_ids is None else set(schedule_ids), term if fenced else None
            )

    def retry(self, now: datetime, *, fenced: bool = False) -> RunReport:
        """Only the claims of earlier terms that have become safe to take over, alongside a fan-out that may still
        be running (the new leader's one-off wake). Never this instance's own claims of its current term: the
        running fan-out may be posting them."""
        with self._retry_lock:  # held while its posts are made: a run's retries wait for them (see _run)
            term = self.term
            if fenced and term is None:
                return RunReport()
            report = RunReport()
            ctx = RunContext(self, now, time.monotonic(), term if fenced else None)
            tasks = planning.retry_claims(self, ctx, report, takeover_only=True)
            posting.execute_all(self, ctx, tasks, report)
            return report

    def _run(self, now: datetime, only: set[int] | None, term: int | None) -> RunReport:
        report = RunReport()
        ctx = RunContext(self, now, time.monotonic(), term)
        ctx.resume = term is not None and term != self._resumed
        self._resumed = term
        with unit_of_work(self.engine) as session:
            for project in sched.projects_without_schedules(session):
                sched.ensure_default_schedules(session, project=project, now=now)
        # A run retries this instance's own claims too: never while a take-over (retry) may be posting them.
        with self._retry_lock:
            tasks = planning.retry_claims(self, ctx, report)
        marks, batches = planning.plan_batches(self, ctx, report, only)
        planned: list[int] = []

        def counted() -> Iterator[list[Task]]:
            for batch in batches:
                planned.append(len(batch))
                if len(planned) == 1:
                    logger.debug(
                        "First batch planned (%s) after %.2f s", len(batch), time.monotonic() - ctx.started
                    )
                yield batch

        posting.execute_all(self, ctx, tasks, report, more=counted())
        logger.debug(
            "%s deliveries planned (%s retries); the run took %.2f s",
            sum(planned),
            len(tasks),
            time.monotonic() - ctx.started,
        )
        if ctx.deposed.is_set():
            return report  # the new leader moves the marks on
        with unit_of_work(self.engine) as session:
            sched.set_last_checked_many(session, marks=marks)
        reminders.remind(self, ctx, report)
        return report


__all__ = [
    "CONSENT_KIND",
    "CONSENT_OCCURRENCE",
    "METADATA_EVENT",
    "Deliverer",
    "DeliveryConfig",
    "DeliveryMessages",
    "RunReport",
    "SimulatedCrash",
    "Task",
    "Throttle",
    "delivery_key",
    "delivery_metadata",
    "make_instance_id",
    "post_message",
]
