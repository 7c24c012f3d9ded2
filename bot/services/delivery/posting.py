"""Posting the delivery ledger's work at Slack's pace: claim, build, post, mark, on a small pool of threads.

Posts to different channels go out concurrently; posts to one channel are spaced by `per_channel_interval`
(chat.postMessage: about one a second per channel). A 429 holds back only its own channel for its Retry-After
and the job waits in the queue, not on a thread, so the other channels keep going. Every claim and every post
is checked against the run's leader term first: a deposed leader neither claims nor posts.
"""

from __future__ import annotations

import logging
import time
import urllib.error
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.exc import IntegrityError

from bot.services.delivery.batching import SentMarks, TermGate, batchable, claim_batch
from bot.services.delivery.content import content, lead_names
from bot.services.delivery.context import CannotReadBack, RunContext
from bot.services.delivery.model import (
    CONSENT_KIND,
    DEAD_TOKEN_ERRORS,
    Blocks,
    RunReport,
    SimulatedCrash,
    Task,
    delivery_key,
    delivery_metadata,
    is_delivery_message,
)
from bot.services.delivery.pool import dispatch
from storage import leader_repo, planning_repo
from storage import schedule_repo as sched
from storage.db import unit_of_work

if TYPE_CHECKING:
    from bot.services.delivery import Deliverer

logger = logging.getLogger(__name__)

# The read-back: 15 is the most a commercially distributed non-Marketplace app may ask for per page.
HISTORY_PAGE = 15
HISTORY_PAGES = 3
HISTORY_MARGIN = 60.0  # seconds: our clock against Slack's
DEFAULT_RETRY_AFTER = 1.0
# A post that failed to connect or send is tried again this often within the run (as slack_sdk would), after a wait.
UNSENT_RETRIES = 2
UNSENT_DELAY = 0.5  # seconds

Item = TypeVar("Item")


def post_message(
    client: WebClient,
    *,
    channel: str,
    text: str,
    blocks: Blocks | None = None,
    thread_ts: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> tuple[str, str]:
    """chat.postMessage; returns (channel id, ts). Module-level so tests can simulate a crash right here."""
    response = client.chat_postMessage(
        channel=channel, text=text, blocks=blocks, thread_ts=thread_ts, metadata=metadata
    )
    return str(response["channel"]), str(response["ts"])


def retryable(exc: SlackApiError) -> bool:
    status = getattr(exc.response, "status_code", 200)
    return (
        status == 429 or status >= 500 or exc.response.get("error") in ("ratelimited", "service_unavailable")
    )


def retry_after(exc: SlackApiError) -> float | None:
    """Seconds a 429 asks us to wait (Retry-After), or None when it is not a 429."""
    response = exc.response
    if getattr(response, "status_code", 200) != 429 and response.get("error") != "ratelimited":
        return None
    headers = getattr(response, "headers", None) or {}
    value = next((v for k, v in headers.items() if str(k).lower() == "retry-after"), None)
    if isinstance(value, list):
        value = value[0] if value else None
    try:
        return max(0.0, float(value)) if value is not None else DEFAULT_RETRY_AFTER
    except ValueError:
        return DEFAULT_RETRY_AFTER


@dataclass
class _Job:
    task: Task
    delivery_id: int | None = None
    key: str = ""
    blocks: Blocks | None = None
    text: str = ""
    refusals: int = 0  # 429s met so far
    ready: bool = False  # claimed and built: only the post is left
    checked: float = 0.0  # time.monotonic() just before the leader term was last checked for this job
    unsent: int = 0  # connection failures before the request was sent, so far


def execute_all(
    deliverer: Deliverer,
    ctx: RunContext,
    tasks: list[Task],
    report: RunReport,
    more: Iterable[list[Task]] = (),
) -> None:
    """Post `tasks`, and the batches `more` yields (the planning of the rest) as they come.

    Fresh claims are made `claim_batch` at a time (batching.claim_batch), the term is checked before every post
    (batching.TermGate) and sent marks are written together (batching.SentMarks)."""
    config = deliverer.config
    gate = TermGate(deliverer.engine, ctx.term)
    marks = SentMarks(deliverer.engine, config.mark_flush_interval)
    try:
        dispatch(
            [_Job(task) for task in tasks],
            lambda job: _step(deliverer, ctx, job, report, gate, marks),
            workers=config.workers,
            more=([_Job(task) for task in batch] for batch in more),
            prepare=lambda jobs: _prepare_batch(deliverer, ctx, jobs, report),
            batch_size=config.claim_batch,
            claimers=1,
        )
    except BaseException as exc:
        # A crash (simulated in the tests) loses the marks not yet written, as a killed process would; the
        # retry adopts those posts by reading back. Anything else: what was posted is marked first.
        marks.close(flush=not isinstance(exc, SimulatedCrash))
        raise
    finally:
        gate.close()
    marks.close()
    logger.debug("%s term checks and %s sent-mark writes", gate.checks, marks.writes)


def _prepare_batch(deliverer: Deliverer, ctx: RunContext, jobs: list[_Job], report: RunReport) -> list[_Job]:
    """Claim and build the batchable jobs together; the others (retries, consent invitations) go on to _step,
    which claims them one at a time as before."""
    if _stepped_down(deliverer, ctx):
        report.add("deposed", len(jobs))
        return []
    jobs = [j for j in jobs if ctx.client(j.task.team_id, j.task.enterprise_id) is not None]
    batch = [j for j in jobs if batchable(j.task)]
    single = [j for j in jobs if not batchable(j.task)]
    if not batch:
        return single
    try:
        return single + claim_batch(deliverer, ctx, batch, report)
    except leader_repo.Deposed:
        for job in batch:
            _deposed(ctx, job, report)
        return single
    except IntegrityError:  # a schedule was removed since the plan: one at a time finds which
        return single + batch


def _stepped_down(deliverer: Deliverer, ctx: RunContext) -> bool:
    if ctx.term is not None and deliverer.term != ctx.term and not ctx.deposed.is_set():
        logger.warning("Stepped down as leader (term %s) during a fan-out: not posting the rest", ctx.term)
        ctx.deposed.set()
    return ctx.deposed.is_set()


def _step(
    deliverer: Deliverer,
    ctx: RunContext,
    job: _Job,
    report: RunReport,
    gate: TermGate,
    marks: SentMarks,
) -> float | None:
    task = job.task
    if marks.fatal is not None:
        raise marks.fatal
    if _stepped_down(deliverer, ctx):
        report.add("deposed")
        return None
    client = ctx.client(task.team_id, task.enterprise_id)
    if client is None:
        return None
    if not job.ready:
        if not _prepare(deliverer, ctx, client, job, report):  # its claim checked the term (job.checked)
            return None
        job.ready = True
    wait = deliverer.throttle.slot(task.recipient)
    if wait > 0:
        return wait
    assert job.delivery_id is not None and job.blocks is not None
    deliverer.config.step_aside()  # for any acknowledgement due in this process (bot.ack_first); then the term check
    poster, refusals_allowed = ctx.poster(client, task.team_id, task.enterprise_id)
    # Last thing before sending, the term is checked again unless the last check is recent (a claim just made, by
    # _prepare): how long a deposed leader's post can still be on its way is bounded from that check (the package
    # docstring). Posts asking at the same moment share one check that began after each of them asked (TermGate).
    if time.monotonic() - job.checked > deliverer.config.recheck_after:
        asked = time.monotonic()
        if not gate.check():
            _deposed(ctx, job, report)
            return None
        job.checked = asked
    try:
        channel, ts = post_message(
            poster,
            channel=task.recipient,
            text=job.text,
            blocks=job.blocks,
            metadata=delivery_metadata(job.delivery_id, job.key),
        )
    except SlackApiError as exc:
        delay = retry_after(exc)
        if delay is not None and job.refusals < refusals_allowed:
            # Slack refused it (nothing posted): only this channel waits; the job goes back in the queue.
            job.refusals += 1
            deliverer.throttle.hold(task.recipient, delay)
            return delay
        _post_failed(deliverer, task, job.delivery_id, exc, report)
        return None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        if isinstance(exc, urllib.error.URLError) and job.unsent < UNSENT_RETRIES:
            # urllib raises URLError only while connecting or sending: Slack never had the whole request, so it is
            # tried again (the client itself no longer does), after the term is checked again.
            job.unsent += 1
            logger.info("Delivery %s: not sent (%s); trying again", job.delivery_id, exc)
            return UNSENT_DELAY
        logger.warning("Delivery %s: connection problem (%s); will retry", job.delivery_id, exc)
        with unit_of_work(deliverer.engine) as session:
            sched.note_retryable_error(session, delivery_id=job.delivery_id, error=f"connection: {exc!r}")
        report.add("pending")
        return None
    marks.add((job.delivery_id, channel, ts, ctx.clock()))
    report.add("posted")
    return None


def _deposed(ctx: RunContext, job: _Job, report: RunReport) -> None:
    if not ctx.deposed.is_set():
        logger.warning(
            "Leader term %s has ended: another instance leads; not posting (delivery %s stays claimed for it)",
            ctx.term,
            job.delivery_id,
        )
    ctx.deposed.set()
    report.add("deposed")


def _prepare(deliverer: Deliverer, ctx: RunContext, client: WebClient, job: _Job, report: RunReport) -> bool:
    """Claim and build in one short transaction (a retry of an existing claim reads back first if an earlier
    attempt may have posted it). False when there is nothing to post: taken, adopted, failed to build, deposed.
    """
    task = job.task
    job.key = delivery_key(task.schedule_id, task.occurrence, task.recipient)
    leads = lead_names(deliverer, ctx, task) if task.kind == CONSENT_KIND else []  # users.info first
    if task.delivery_id is not None:
        job.delivery_id = task.delivery_id
        if task.read_back_since is not None:
            found = _read_back(ctx, client, task, task.delivery_id, job.key)
            if found is not None:
                logger.info(
                    "Delivery %s was posted before an interruption (ts %s); not posting it again",
                    task.delivery_id,
                    found[1],
                )
                with unit_of_work(deliverer.engine) as session:
                    sched.mark_sent(
                        session,
                        delivery_id=task.delivery_id,
                        channel_id=found[0],
                        message_ts=found[1],
                        now=ctx.clock(),
                    )
                report.add("adopted")
                return False
    error: Exception | None = None
    try:
        with unit_of_work(deliverer.engine) as session:
            # Under a share lock: a new leader's term begins after this commits, or this claim is refused.
            job.checked = time.monotonic()
            leader_repo.check_term(session, term=ctx.term, lock=job.delivery_id is None)
            if job.delivery_id is None:
                job.delivery_id = planning_repo.claim(
                    session,
                    schedule_id=task.schedule_id,
                    project_id=task.project_id,
                    team_id=task.team_id,
                    kind=task.kind,
                    occurrence=task.occurrence,
                    recipient=task.recipient,
                    prompt_id=task.prompt_id,
                    claimed_by=deliverer.instance_id,
                    now=ctx.clock(),
                    fence=ctx.term,
                    uses_pin=task.pinned,
                )
                if job.delivery_id is None:
                    report.add("taken")
                    return False
            try:  # the claim stands even if its message cannot be built: recorded as failed below
                with session.begin_nested():
                    job.blocks, job.text = content(
                        deliverer, session, ctx, task, job.delivery_id, lead_names=leads
                    )
            except Exception as exc:  # one bad message must not stop the rest of the fan-out
                logger.exception("Could not build the %s for delivery %s", task.kind, job.delivery_id)
                sched.mark_failed(
                    session, delivery_id=job.delivery_id, error=f"could not build the message: {exc!r}"
                )
                error = exc
        # Committed: from here on no other instance will post this occurrence.
    except leader_repo.Deposed:
        _deposed(ctx, job, report)
        return False
    except IntegrityError:  # the schedule was removed since the plan
        report.add("taken")
        return False
    if error is not None:
        report.add("failed")
        return False
    return True


def _read_back(
    ctx: RunContext, client: WebClient, task: Task, delivery_id: int, key: str
) -> tuple[str, str] | None:
    """(conversation id, ts) of the bot's message carrying this delivery's metadata; None means post it.

    Reads at most HISTORY_PAGES pages of HISTORY_PAGE messages, newest first, back to read_back_since.
    """
    assert task.read_back_since is not None
    conversation = task.recipient
    try:
        conversation = ctx.conversation(client, task.recipient)
        bot_id = ctx.bot_id(client, task.team_id)
        oldest = f"{task.read_back_since.timestamp() - HISTORY_MARGIN:.6f}"
        cursor: str | None = None
        for _ in range(HISTORY_PAGES):
            page = client.conversations_history(
                channel=conversation,
                oldest=oldest,
                limit=HISTORY_PAGE,
                cursor=cursor,
                include_all_metadata=True,
            )
            for message in page.get("messages") or []:
                if is_delivery_message(message, bot_id=bot_id, delivery_id=delivery_id, key=key):
                    return conversation, str(message["ts"])
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not page.get("has_more") or cursor is None:
                return None  # everything since the claim was read: it was never posted
    except SlackApiError as exc:
        error = exc.response.get("error") or getattr(exc.response, "status_code", "error")
        needed = exc.response.get("needed")
        logger.warning(
            "Delivery %s: could not read back %s to check for an earlier post (%s%s); posting it again, "
            "which may duplicate it",
            delivery_id,
            conversation,
            error,
            f", needs {needed}: reinstall the app" if needed else "",
        )
        return None
    except (urllib.error.URLError, OSError, TimeoutError, CannotReadBack) as exc:
        logger.warning(
            "Delivery %s: could not read back %s (%s); posting it again, which may duplicate it",
            delivery_id,
            conversation,
            exc,
        )
        return None
    logger.warning(
        "Delivery %s: not among the last %s messages in %s; posting it again, which may duplicate it",
        delivery_id,
        HISTORY_PAGE * HISTORY_PAGES,
        conversation,
    )
    return None


def _post_failed(
    deliverer: Deliverer, task: Task, delivery_id: int, exc: SlackApiError, report: RunReport
) -> None:
    error = str(exc.response.get("error") or getattr(exc.response, "status_code", "error"))
    with unit_of_work(deliverer.engine) as session:
        if retryable(exc):
            logger.warning(
                "Delivery %s: %s after retries; will try again at the next sync", delivery_id, error
            )
            sched.note_retryable_error(session, delivery_id=delivery_id, error=error)
            report.add("pending")
            return
        logger.warning("Delivery %s to %s failed: %s", delivery_id, task.recipient, error)
        sched.mark_failed(session, delivery_id=delivery_id, error=error)
        if error in DEAD_TOKEN_ERRORS:
            sched.disable_for_team(session, task.team_id, error)
    report.add("failed")
