"""The fan-out's shared database work: claims made in batches, the term checked once for many posts, sent marks
written many at a time. Each keeps the ledger's guarantees; only the number of round trips changes.

- `claim_batch`: one transaction for a batch of fresh tasks: the term checked under its share lock (as a single
  claim does), one multi-row INSERT .. ON CONFLICT DO NOTHING RETURNING, one read of their projects' names, then every
  message built. A task someone else has is "taken"; a message that cannot be built is recorded as failed.
- `TermGate`: every post still waits for a check of the leader term that *began after the post asked for it*,
  so a post never goes out on an older check than it would have made itself; posts asking at the same time
  share one check (one query instead of one per post).
- `SentMarks`: a post's "sent" mark is queued and written with the others every `mark_flush_interval` seconds in
  one statement. A crash before the write leaves the row "claimed" with the post in Slack, exactly as a crash
  between a post and its mark always could: the retry reads the conversation back and adopts the post.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine
from sqlmodel import Session

from bot.core.delivery_plan import utc
from bot.services.delivery.content import PROMPT_KINDS, content, prompt_content  # one set of builders
from bot.services.delivery.model import CONSENT_KIND, RunReport, Task, delivery_key
from bot.services.shared_reads import SharedReads
from storage import leader_repo, planning_repo
from storage import schedule_repo as sched
from storage.db import unit_of_work

if TYPE_CHECKING:
    from bot.services.delivery import Deliverer
    from bot.services.delivery.context import RunContext
    from bot.services.delivery.posting import _Job

logger = logging.getLogger(__name__)

Mark = tuple[int, str | None, str | None, datetime]  # delivery id, channel id, message ts, sent at


def batchable(task: Task) -> bool:
    """A fresh claim whose message needs nothing from Slack first (a consent invitation asks users.info for the
    leads' names, which must not happen inside the claim's transaction; a retry may read back first)."""
    return task.delivery_id is None and task.kind != CONSENT_KIND


def claim_batch(deliverer: Deliverer, ctx: RunContext, jobs: list[_Job], report: RunReport) -> list[_Job]:
    """Claim and build `jobs` (fresh, batchable) in one transaction; the jobs that are ready to post.

    Raises leader_repo.Deposed when the term has ended and IntegrityError when a schedule was removed since the
    plan; either way nothing was claimed (the caller then claims them one by one to find which)."""
    now = ctx.clock()
    ready: list[_Job] = []
    with unit_of_work(deliverer.engine) as session:
        # Under a share lock: a new leader's term begins after this commits, or the batch is refused.
        leader_repo.check_term(session, term=ctx.term, lock=True)
        claimed = planning_repo.claim_many(
            session,
            claims=[
                {
                    "schedule_id": j.task.schedule_id,
                    "project_id": j.task.project_id,
                    "team_id": j.task.team_id,
                    "kind": j.task.kind,
                    "occurrence": j.task.occurrence,
                    "recipient": j.task.recipient,
                    "prompt_id": j.task.prompt_id,
                    "claimed_by": deliverer.instance_id,
                    "now": now,
                    "fence": ctx.term,
                }
                for j in jobs
            ],
        )
        names = planning_repo.project_names(session, project_ids={j.task.project_id for j in jobs})
        for job in jobs:
            task = job.task
            job.delivery_id = claimed.get((task.schedule_id, utc(task.occurrence), task.recipient))
            if job.delivery_id is None:
                report.add("taken")
                continue
            job.key = delivery_key(task.schedule_id, task.occurrence, task.recipient)
            if task.pinned and task.prompt_id is not None:
                planning_repo.use_pin(session, project_id=task.project_id, prompt_id=task.prompt_id)
            try:  # the claim stands even if its message cannot be built: recorded as failed
                if task.kind in PROMPT_KINDS and task.project_id in names:
                    name, about = names[task.project_id]
                    job.blocks, job.text = prompt_content(
                        deliverer, task, job.delivery_id, name=name, about=about
                    )
                else:  # a lead's nudge reads the database: its own savepoint
                    with session.begin_nested():
                        job.blocks, job.text = content(
                            deliverer, session, ctx, task, job.delivery_id, lead_names=[]
                        )
            except Exception as exc:  # one bad message must not stop the rest of the fan-out
                logger.exception("Could not build the %s for delivery %s", task.kind, job.delivery_id)
                sched.mark_failed(
                    session, delivery_id=job.delivery_id, error=f"could not build the message: {exc!r}"
                )
                report.add("failed")
                continue
            job.ready = True
            ready.append(job)
    # Committed: from here on no other instance will post these occurrences.
    return ready


class TermGate:
    """The check of the leader term before each post, shared by the posts that ask at the same time.

    `check()` returns once a check that began after the call has finished (bot/services/shared_reads.py): True
    while the term is current, False once it has ended (and from then on, as after a check that failed). Whoever
    asks while no check is running runs the next one for everyone waiting (no extra thread); an unelected run
    (term None) is not fenced.
    """

    def __init__(self, engine: Engine, term: int | None) -> None:
        self.engine = engine
        self.term = term
        self._shared: SharedReads[bool] = SharedReads()
        self._ended = False
        self.checks = 0  # how many queries were made (for the tests and the log)
        # One connection for the run's checks, in autocommit: a check is one SELECT, no BEGIN or COMMIT, and
        # no transaction stays open between checks. Used by one checker at a time.
        self._connection: Connection | None = None

    def check(self) -> bool:
        if self.term is None:
            return True
        if self._ended:
            return False
        return self._shared.read(None, self._read)

    def _read(self) -> bool:
        if self._ended:  # a check that failed has ended the gate: its waiters are not posting either
            return False
        self.checks += 1
        try:
            self._check()
            return True
        except leader_repo.Deposed:
            self._ended = True
            return False
        except BaseException:
            self._ended = True
            self.close()  # a broken connection: the next check opens another
            raise

    def _check(self) -> None:
        if self.engine.dialect.name != "postgresql":  # SQLite: no round trips to save (and a memory database
            with unit_of_work(self.engine) as session:  # shares its one connection, which must stay as it is)
                leader_repo.check_term(session, term=self.term)
            return
        if self._connection is None:
            self._connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        with Session(self._connection) as session:
            leader_repo.check_term(session, term=self.term)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class SentMarks:
    """Sent marks queued by the posting threads and written together, every `interval` seconds, by one thread.

    `close(flush=True)` writes what is left; `close(flush=False)` drops it, as a killed process would. A write
    that fails is kept and tried again; a SimulatedCrash (or any BaseException) in a write is the process dying:
    nothing more is written and `fatal` holds it, for the posting threads to stop on.
    """

    def __init__(self, engine: Engine, interval: float) -> None:
        self.engine = engine
        self.interval = interval
        self._pending: list[Mark] = []
        self._lock = threading.Lock()  # guards _pending
        self._write_lock = threading.Lock()  # one write at a time, in order
        self._stop = threading.Event()
        self.fatal: BaseException | None = None
        self.writes = 0
        self._thread = threading.Thread(target=self._loop, name="deliver-marks", daemon=True)
        self._thread.start()

    def add(self, mark: Mark) -> None:
        with self._lock:
            self._pending.append(mark)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()

    def flush(self) -> None:
        with self._write_lock:
            if self.fatal is not None:
                return
            with self._lock:
                marks, self._pending = self._pending, []
            if not marks:
                return
            try:
                with unit_of_work(self.engine) as session:
                    sched.mark_sent_many(session, marks=marks)
                self.writes += 1
            except Exception:
                logger.warning("Could not mark %s deliveries sent; trying again", len(marks), exc_info=True)
                with self._lock:
                    self._pending[:0] = marks
            except BaseException as exc:  # the process is dying (a SimulatedCrash in the tests)
                self.fatal = exc

    def close(self, *, flush: bool = True) -> None:
        self._stop.set()
        self._thread.join()
        if flush:
            self.flush()
            with self._lock:
                left = len(self._pending)
            if left and self.fatal is None:  # the retry reads these back and adopts them
                logger.warning("%s deliveries were posted but could not be marked sent", left)
        if self.fatal is not None:
            raise self.fatal
