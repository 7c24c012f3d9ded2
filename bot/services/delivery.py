"""Scheduled deliveries: which prompt goes to whom and when, posted exactly once through the delivery ledger.

The ledger (storage.models.Delivery, unique on schedule, occurrence and recipient) is the whole story:

1. Claim: insert the row in its own committed transaction *before* posting. An IntegrityError means another
   instance, or this one before a restart, already has that occurrence for that recipient: skip it.
2. Post, then mark the row "sent" with the message's ts, in a second short transaction.
3. A 429 that outlasts slack_sdk's own Retry-After waits, or a connection error, leaves the row "claimed" with
   the error noted; the next sync tries again (``max_attempts`` in all, then "failed").
4. A row left "claimed" by a process that died between claim and post is retried by the current leader once it
   is older than ``stale_after``, within the kind's grace period (later than that it becomes "missed").

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
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.error
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import Engine

from bot.core.blockkit import typed
from bot.core.prompts import Catalogue, Prompt, choose_prompt, load_catalogue, reason_for
from bot.core.schedule_rules import occurrences_between
from bot.services import team as team_service
from bot.services.nudge import build_lead_nudge
from bot.slack_client import ClientFactory
from storage import repositories as repo
from storage import schedule_repo as sched
from storage.db import unit_of_work
from storage.models import Project, ProjectMember, Schedule

logger = logging.getLogger(__name__)

Blocks = list[dict[str, Any]]
# Partner consent requests go out once per partner, whenever the partner is added: they have no real
# occurrence, so they all share this one, which keeps them unique per (schedule, partner).
CONSENT_OCCURRENCE = datetime(2000, 1, 1, tzinfo=UTC)
CONSENT_KIND = "partner_consent"
# Errors that mean the workspace's token no longer works: stop its schedules rather than retrying forever.
DEAD_TOKEN_ERRORS = {"invalid_auth", "account_inactive", "token_revoked", "not_authed", "team_not_found"}
# The widest offset between a schedule's zone and a person's (UTC-12 to UTC+14), for the cheap pre-check.
_TZ_SPREAD = timedelta(hours=27)
# Message metadata on every ledger post, so a retry can recognise a post its crashed predecessor made.
METADATA_EVENT = "mfi_ar_delivery"
# The read-back: 15 is the most a commercially distributed non-Marketplace app may ask for per page.
HISTORY_PAGE = 15
HISTORY_PAGES = 3
HISTORY_MARGIN = timedelta(seconds=60)  # our clock against Slack's
# A retry's own previous attempt ended in one of these: Slack refused it, so nothing can have been posted.
REFUSED_ERRORS = frozenset({"ratelimited", "429"})


class _CannotReadBack(Exception):
    """The read-back cannot tell whether an earlier attempt posted (the reason is the message)."""


class SimulatedCrash(BaseException):
    """Raised by tests (through `post_message`) to stop a run dead, like a SIGKILL between claim and post."""


@dataclass(frozen=True)
class DeliveryConfig:
    """Timings of the delivery engine; every field has a production default."""

    grace: Mapping[str, timedelta] = field(default_factory=dict)  # per kind; default_grace otherwise
    default_grace: timedelta = timedelta(hours=6)
    reminder_after: timedelta = timedelta(days=2)
    reminder_window: timedelta = timedelta(days=1)  # a reminder later than after+window is not worth sending
    stale_after: timedelta = timedelta(minutes=2)
    max_attempts: int = 3
    max_catchup: timedelta = timedelta(days=31)
    per_channel_interval: float = (
        1.0  # Slack's chat.postMessage limit: about 1 message per second per channel
    )
    workers: int = 8
    # How long a person's users.info (time zone, name) is reused across syncs. Without it every 30-second sync
    # near a DM's time asked again for every partner and lead, which Slack's Tier 4 limit would soon refuse.
    people_ttl: timedelta = timedelta(hours=1)
    # Read back recent messages before re-sending an interrupted delivery (needs the history scopes); off, it is
    # re-sent without looking, which may post it twice (MFI_CRASH_READBACK=false, manifest.minimal.yml).
    read_back: bool = True

    def grace_for(self, kind: str) -> timedelta:
        return self.grace.get(kind, self.default_grace)


@dataclass(frozen=True)
class Task:
    """One message to one recipient for one occurrence."""

    schedule_id: int
    project_id: int
    team_id: str
    enterprise_id: str | None
    kind: str
    occurrence: datetime
    recipient: str
    prompt_id: str | None = None
    reason: str = ""
    delivery_id: int | None = None  # set when retrying an existing claim
    read_back_since: datetime | None = None  # set when an earlier attempt may have posted it: look first


@dataclass
class RunReport:
    """What one run did; the counters add up across instances to the ledger's totals."""

    posted: int = 0
    missed: int = 0
    failed: int = 0
    retried: int = 0
    reminded: int = 0
    taken: int = 0  # claimed by someone else first
    adopted: int = (
        0  # an interrupted attempt had posted it: found by read-back, marked sent, not posted again
    )
    pending: int = 0  # left claimed for the next sync (rate limited, connection error)
    lock = threading.Lock()

    def add(self, name: str, n: int = 1) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + n)


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


def delivery_key(schedule_id: int, occurrence: datetime, recipient: str) -> str:
    """The ledger's unique key as text: "<schedule>:<occurrence, ISO UTC>:<recipient>"."""
    return f"{schedule_id}:{_utc(occurrence).isoformat()}:{recipient}"


def delivery_metadata(delivery_id: int, key: str) -> dict[str, Any]:
    """The Slack message metadata a ledger post carries (invisible to people; read back only after a crash)."""
    return {"event_type": METADATA_EVENT, "event_payload": {"delivery_id": delivery_id, "key": key}}


def _utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; the ledger stores UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _is_delivery_message(message: Mapping[str, Any], *, bot_id: str, delivery_id: int, key: str) -> bool:
    metadata = message.get("metadata") or {}
    payload = metadata.get("event_payload") or {}
    return (
        message.get("bot_id") == bot_id
        and metadata.get("event_type") == METADATA_EVENT
        and str(payload.get("delivery_id")) == str(delivery_id)
        and payload.get("key") == key
    )


class DeliveryMessages(Protocol):
    """The Block Kit messages a delivery posts. The listeners that answer their buttons own them
    (`handlers.blocks.prompts`); `bot.app.delivery_messages()` hands them in, so this service never imports handlers.
    """

    def team_prompt_message(
        self, prompt: Prompt, *, project_name: str, reason: str, delivery_id: int
    ) -> tuple[Blocks, str]: ...

    def partner_prompt_message(
        self, prompt: Prompt, *, about: str, delivery_id: int, anonymous_default: bool
    ) -> tuple[Blocks, str]: ...

    def partner_consent_message(
        self, *, about: str, lead_names: list[str], project_id: int
    ) -> tuple[Blocks, str]: ...

    def reminder_message(
        self,
        prompt: Prompt,
        *,
        project_name: str,
        delivery_id: int,
        audience: str = "team",
        permalink: str | None = None,
        about: str = "",
    ) -> tuple[Blocks, str]: ...


class Throttle:
    """Spaces posts to the same channel (a DM is its own channel) by `interval` seconds, across threads."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    def wait(self, channel: str) -> None:
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next.get(channel, 0.0))
            self._next[channel] = slot + self.interval
        if slot > now:
            time.sleep(slot - now)


def _retryable(exc: SlackApiError) -> bool:
    status = getattr(exc.response, "status_code", 200)
    return (
        status == 429 or status >= 500 or exc.response.get("error") in ("ratelimited", "service_unavailable")
    )


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
        self.people: dict[
            str, tuple[float, dict[str, Any]]
        ] = {}  # user id -> (monotonic time, users.info user)
        self.people_lock = threading.Lock()

    # --- the whole run ------------------------------------------------------------------------------

    def run(self, now: datetime, *, schedule_ids: Iterable[int] | None = None) -> RunReport:
        """Deliver everything due at `now`: retries, new occurrences (with catch-up), consent requests, reminders."""
        with self._run_lock:
            return self._run(now, None if schedule_ids is None else set(schedule_ids))

    def _run(self, now: datetime, only: set[int] | None) -> RunReport:
        report = RunReport()
        started = time.monotonic()
        ctx = _RunContext(self, now, started)
        with unit_of_work(self.engine) as session:
            for project in sched.projects_without_schedules(session):
                sched.ensure_default_schedules(session, project=project, now=now)
        tasks = self._retry_claims(ctx, report)
        new_tasks, marks = self._plan(ctx, report, only)
        tasks += new_tasks
        self._execute_all(ctx, tasks, report)
        with unit_of_work(self.engine) as session:
            sched.set_last_checked_many(session, marks=marks)
        self._remind(ctx, report)
        return report

    def _execute_all(self, ctx: _RunContext, tasks: list[Task], report: RunReport) -> None:
        if not tasks:
            return
        if self.config.workers <= 1 or len(tasks) == 1:
            for task in tasks:
                self._execute(ctx, task, report)
            return
        with ThreadPoolExecutor(max_workers=self.config.workers, thread_name_prefix="deliver") as pool:
            futures = [pool.submit(self._execute, ctx, task, report) for task in tasks]
            for future in futures:
                future.result()  # re-raises (a simulated crash stops the run, as a kill would)

    # --- retries ------------------------------------------------------------------------------------

    def _retry_claims(self, ctx: _RunContext, report: RunReport) -> list[Task]:
        tasks: list[Task] = []
        with unit_of_work(self.engine) as session:
            claims = sched.retryable_claims(
                session, me=self.instance_id, stale_before=ctx.now - self.config.stale_after
            )
            for delivery in claims:
                assert delivery.id is not None
                late = (
                    delivery.kind != CONSENT_KIND
                    and ctx.now - delivery.occurrence > self.config.grace_for(delivery.kind)
                )
                if late:
                    sched.mark_missed(
                        session,
                        delivery_id=delivery.id,
                        error=f"not sent in time: {delivery.error or 'interrupted'}",
                    )
                    report.add("missed")
                elif delivery.attempts >= self.config.max_attempts:
                    sched.mark_failed(
                        session,
                        delivery_id=delivery.id,
                        error=f"gave up after {delivery.attempts} attempts: {delivery.error or 'interrupted'}",
                    )
                    report.add("failed")
                else:
                    since = self._read_back_since(delivery) if self.config.read_back else None
                    if not sched.take_over_claim(
                        session, delivery=delivery, claimed_by=self.instance_id, now=ctx.now
                    ):
                        continue
                    schedule = session.get(Schedule, delivery.schedule_id)
                    project = session.get(Project, delivery.project_id)
                    reason = ""
                    if delivery.kind == "team_prompt" and delivery.prompt_id and project is not None:
                        state = sched.project_state(session, project, today=ctx.now.date())
                        reason = reason_for(self.catalogue.get(delivery.prompt_id).stage, state)
                    tasks.append(
                        Task(
                            schedule_id=delivery.schedule_id,
                            project_id=delivery.project_id,
                            team_id=delivery.team_id,
                            enterprise_id=schedule.enterprise_id if schedule else None,
                            kind=delivery.kind,
                            occurrence=delivery.occurrence,
                            recipient=delivery.recipient,
                            prompt_id=delivery.prompt_id,
                            reason=reason,
                            delivery_id=delivery.id,
                            read_back_since=since,
                        )
                    )
                    report.add("retried")
        return tasks

    def _read_back_since(self, delivery: Any) -> datetime | None:
        """From when an earlier attempt may have posted this delivery; None when none can have.

        This instance's own claim whose last attempt Slack refused (a 429 outlasted the retries) was never
        posted. Anything else (a stale claim of a dead process, a connection error, an exception after the
        post) may have been. One earlier attempt posted after its claim; after several, any attempt since the
        occurrence may have (a consent request has no real occurrence: a day back is plenty for a DM).
        """
        if delivery.claimed_by == self.instance_id and (delivery.error or "") in REFUSED_ERRORS:
            return None
        since = _utc(delivery.claimed_at)
        if delivery.attempts > 1:
            since = (
                since - timedelta(days=1)
                if delivery.kind == CONSENT_KIND
                else min(since, _utc(delivery.occurrence))
            )
        return since

    # --- planning -----------------------------------------------------------------------------------

    def _plan(
        self, ctx: _RunContext, report: RunReport, only: set[int] | None
    ) -> tuple[list[Task], dict[int, datetime]]:
        """Work out what is due for every live schedule, record what was missed; returns tasks and new marks."""
        tasks: list[Task] = []
        marks: dict[int, datetime] = {}
        with unit_of_work(self.engine) as session:
            schedules = [s for s in sched.all_schedules(session) if only is None or s.id in only]
            projects = {p.id: p for p in repo.all_projects(session)}
            for schedule in schedules:
                assert schedule.id is not None
                project = projects.get(schedule.project_id)
                if project is None:
                    continue
                marks[schedule.id] = ctx.now
                if schedule.paused or schedule.disabled_reason:
                    continue
                start = self._window_start(session, schedule, ctx.now)
                try:
                    spec = sched.spec_for(schedule, region=project.region)
                except ValueError:
                    logger.warning("Schedule %s is invalid; skipping it", schedule.id, exc_info=True)
                    continue
                if schedule.kind == "partner_prompt":
                    tasks += self._consent_tasks(session, ctx, schedule, project)
                # Cheap pre-check in the schedule's own zone before anyone's time zone is looked up.
                if not occurrences_between(spec, start - _TZ_SPREAD, ctx.now + _TZ_SPREAD):
                    continue
                tasks += self._plan_schedule(session, ctx, report, schedule, project, start)
        return tasks, marks

    def _window_start(self, session: Any, schedule: Schedule, now: datetime) -> datetime:
        assert schedule.id is not None
        mark = sched.last_checked(session, schedule_id=schedule.id)
        start = max(mark or schedule.updated_at, schedule.updated_at, now - self.config.max_catchup)
        # Occurrences strictly after the mark: the mark itself was dealt with by the run that set it.
        return start + timedelta(microseconds=1)

    def _plan_schedule(
        self,
        session: Any,
        ctx: _RunContext,
        report: RunReport,
        schedule: Schedule,
        project: Project,
        start: datetime,
    ) -> list[Task]:
        assert schedule.id is not None and project.id is not None
        spec = sched.spec_for(schedule, region=project.region)
        end = ctx.now + timedelta(microseconds=1)
        wanted: list[tuple[datetime, str]] = []
        if schedule.kind == "team_prompt":
            wanted = [(occ, project.channel_id) for occ in occurrences_between(spec, start, end)]
        else:
            people = (
                sched.partners_to_prompt(session, project_id=project.id)
                if schedule.kind == "partner_prompt"
                else sched.leads(session, project_id=project.id)
            )
            client = ctx.client(schedule.team_id, schedule.enterprise_id)
            for person in people:
                tz = ctx.timezone(client, person.user_id) if schedule.use_recipient_tz and client else None
                wanted += [(occ, person.user_id) for occ in occurrences_between(spec, start, end, tz=tz)]
        tasks: list[Task] = []
        chosen: dict[datetime, tuple[str, str]] = {}
        grace = self.config.grace_for(schedule.kind)
        for occurrence, recipient in sorted(wanted):
            if ctx.now - occurrence > grace:
                missed = sched.claim_delivery(
                    session,
                    schedule=schedule,
                    occurrence=occurrence,
                    recipient=recipient,
                    claimed_by=self.instance_id,
                    now=ctx.now,
                    status="missed",
                )
                if missed is not None:
                    report.add("missed")
                continue
            prompt_id, reason = None, ""
            if schedule.kind in ("team_prompt", "partner_prompt"):
                prompt_id, reason = self._prompt_for(session, ctx, schedule, project, occurrence, chosen)
            tasks.append(
                Task(
                    schedule_id=schedule.id,
                    project_id=project.id,
                    team_id=schedule.team_id,
                    enterprise_id=schedule.enterprise_id,
                    kind=schedule.kind,
                    occurrence=occurrence,
                    recipient=recipient,
                    prompt_id=prompt_id,
                    reason=reason,
                )
            )
        return tasks

    def _prompt_for(
        self,
        session: Any,
        ctx: _RunContext,
        schedule: Schedule,
        project: Project,
        occurrence: datetime,
        chosen: dict[datetime, tuple[str, str]],
    ) -> tuple[str, str]:
        """One prompt per round of a schedule: partners in other time zones get the same question."""
        assert schedule.id is not None and project.id is not None
        window = timedelta(hours=36)
        for other, picked in chosen.items():
            if abs(other - occurrence) < window:
                return picked
        state = sched.project_state(session, project, today=occurrence.date())
        existing = None
        if schedule.kind == "partner_prompt":
            existing = sched.round_prompt_id(
                session, schedule_id=schedule.id, occurrence=occurrence, window=window
            )
        if existing is not None:
            try:
                picked = (existing, reason_for(self.catalogue.get(existing).stage, state))
                chosen[occurrence] = picked
                return picked
            except KeyError:
                pass  # the catalogue dropped it since; choose afresh
        audience: Literal["team", "partner"] = "team" if schedule.kind == "team_prompt" else "partner"
        pinned, skipped = sched.prompt_choices(session, project_id=project.id)
        used = sched.used_prompt_ids(session, project.id, audience)
        if pinned is None and audience == "team":
            # Issue 14: the team has changed since it last reflected: come back to `/mfi team`.
            pinned = team_service.reflection_prompt_due(session, project, used=used, skipped=skipped)
        prompt = choose_prompt(
            self.catalogue,
            state,
            audience=audience,
            used=used,
            pinned=pinned,
            skipped=skipped,
        )
        picked = (prompt.id, reason_for(prompt.stage, state))
        chosen[occurrence] = picked
        return picked

    def _consent_tasks(
        self, session: Any, ctx: _RunContext, schedule: Schedule, project: Project
    ) -> list[Task]:
        assert schedule.id is not None and project.id is not None
        waiting = sched.partners_awaiting_consent(session, project_id=project.id)
        if not waiting:
            return []
        asked = {d.recipient for d in sched.deliveries(session, project_id=project.id, kind=CONSENT_KIND)}
        if not asked and not sched.partners_have_replied(session, project_id=project.id):
            # Nobody asked yet: the first invitations go when a lead chooses (`/mfi partners`) or turns partner
            # questions on (`/mfi schedule`), not the moment a partner is named. Later partners are asked here.
            return []
        return [
            Task(
                schedule_id=schedule.id,
                project_id=project.id,
                team_id=schedule.team_id,
                enterprise_id=schedule.enterprise_id,
                kind=CONSENT_KIND,
                occurrence=CONSENT_OCCURRENCE,
                recipient=member.user_id,
            )
            for member in waiting
            if member.user_id not in asked
        ]

    # --- one delivery -------------------------------------------------------------------------------

    def _execute(self, ctx: _RunContext, task: Task, report: RunReport) -> None:
        client = ctx.client(task.team_id, task.enterprise_id)
        if client is None:
            return
        delivery_id = task.delivery_id
        if delivery_id is None:
            with unit_of_work(self.engine) as session:
                schedule = session.get(Schedule, task.schedule_id)
                if schedule is None:
                    return
                delivery = sched.claim_delivery(
                    session,
                    schedule=schedule,
                    occurrence=task.occurrence,
                    recipient=task.recipient,
                    kind=task.kind,
                    prompt_id=task.prompt_id,
                    claimed_by=self.instance_id,
                    now=ctx.clock(),
                )
                if delivery is None:
                    report.add("taken")
                    return
                delivery_id = delivery.id
            # The claim is committed: from here on no other instance will post this occurrence.
        assert delivery_id is not None
        key = delivery_key(task.schedule_id, task.occurrence, task.recipient)
        if task.read_back_since is not None:
            found = self._read_back(ctx, client, task, delivery_id, key)
            if found is not None:
                logger.info(
                    "Delivery %s was posted before an interruption (ts %s); not posting it again",
                    delivery_id,
                    found[1],
                )
                with unit_of_work(self.engine) as session:
                    sched.mark_sent(
                        session,
                        delivery_id=delivery_id,
                        channel_id=found[0],
                        message_ts=found[1],
                        now=ctx.clock(),
                    )
                report.add("adopted")
                return
        try:
            lead_names = self._lead_names(ctx, task) if task.kind == CONSENT_KIND else []
            with unit_of_work(self.engine) as session:
                blocks, text = self._content(session, ctx, task, delivery_id, lead_names=lead_names)
        except Exception as exc:  # one bad message must not stop the rest of the fan-out
            logger.exception("Could not build the %s for delivery %s", task.kind, delivery_id)
            with unit_of_work(self.engine) as session:
                sched.mark_failed(
                    session, delivery_id=delivery_id, error=f"could not build the message: {exc!r}"
                )
            report.add("failed")
            return
        self.throttle.wait(task.recipient)
        try:
            channel, ts = post_message(
                client,
                channel=task.recipient,
                text=text,
                blocks=blocks,
                metadata=delivery_metadata(delivery_id, key),
            )
        except SlackApiError as exc:
            self._post_failed(task, delivery_id, exc, report)
            return
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            logger.warning("Delivery %s: connection problem (%s); will retry", delivery_id, exc)
            with unit_of_work(self.engine) as session:
                sched.note_retryable_error(session, delivery_id=delivery_id, error=f"connection: {exc!r}")
            report.add("pending")
            return
        with unit_of_work(self.engine) as session:
            sched.mark_sent(
                session, delivery_id=delivery_id, channel_id=channel, message_ts=ts, now=ctx.clock()
            )
        report.add("posted")

    def _read_back(
        self, ctx: _RunContext, client: WebClient, task: Task, delivery_id: int, key: str
    ) -> tuple[str, str] | None:
        """(conversation id, ts) of the bot's message carrying this delivery's metadata; None means post it.

        Reads at most HISTORY_PAGES pages of HISTORY_PAGE messages, newest first, back to read_back_since.
        """
        assert task.read_back_since is not None
        conversation = task.recipient
        try:
            conversation = ctx.conversation(client, task.recipient)
            bot_id = ctx.bot_id(client, task.team_id)
            oldest = f"{(task.read_back_since - HISTORY_MARGIN).timestamp():.6f}"
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
                    if _is_delivery_message(message, bot_id=bot_id, delivery_id=delivery_id, key=key):
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
        except (urllib.error.URLError, OSError, TimeoutError, _CannotReadBack) as exc:
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

    def _post_failed(self, task: Task, delivery_id: int, exc: SlackApiError, report: RunReport) -> None:
        error = str(exc.response.get("error") or getattr(exc.response, "status_code", "error"))
        with unit_of_work(self.engine) as session:
            if _retryable(exc):
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

    def _lead_names(self, ctx: _RunContext, task: Task) -> list[str]:
        """The leads' names for a consent invitation: ids read in one short transaction, names asked of Slack
        (users.info) after it, so a slow Slack call never holds a database transaction open."""
        with unit_of_work(self.engine) as session:
            lead_ids = [m.user_id for m in sched.leads(session, project_id=task.project_id)]
        client = ctx.client(task.team_id, task.enterprise_id)
        return [ctx.real_name(client, user_id) for user_id in lead_ids]

    def _content(
        self, session: Any, ctx: _RunContext, task: Task, delivery_id: int, *, lead_names: list[str]
    ) -> tuple[Blocks, str]:
        project = session.get(Project, task.project_id)
        assert project is not None
        if task.kind == "team_prompt":
            assert task.prompt_id is not None
            return self.messages.team_prompt_message(
                self.catalogue.get(task.prompt_id),
                project_name=project.name,
                reason=task.reason,
                delivery_id=delivery_id,
            )
        if task.kind == "partner_prompt":
            assert task.prompt_id is not None
            return self.messages.partner_prompt_message(
                self._partner_prompt(task.prompt_id),
                about=project.partner_description or project.name,
                delivery_id=delivery_id,
                # Partners' answers are anonymous unless they say otherwise (the consent message promises it).
                anonymous_default=True,
            )
        if task.kind == CONSENT_KIND:
            return self.messages.partner_consent_message(
                about=project.partner_description or project.name,
                lead_names=lead_names,
                project_id=task.project_id,
            )
        if task.kind == "lead_nudge":
            return build_lead_nudge(session, project=project, now=ctx.now)
        raise ValueError(f"unknown delivery kind {task.kind!r}")

    def _partner_prompt(self, prompt_id: str) -> Prompt:
        prompt = self.catalogue.get(prompt_id)
        return replace(prompt, text=prompt.text_for("partner"))

    # --- reminders ----------------------------------------------------------------------------------

    def _remind(self, ctx: _RunContext, report: RunReport) -> None:
        """One follow-up per prompt: in the thread for the team, by DM to partners who have not answered."""
        sent_before = ctx.now - self.config.reminder_after
        with unit_of_work(self.engine) as session:
            candidates = sched.reminder_candidates(
                session,
                kinds=("team_prompt", "partner_prompt"),
                sent_before=sent_before,
                sent_after=sent_before - self.config.reminder_window,
            )
            due: list[tuple[int, str, str, str, str, str | None, str, str]] = []
            for delivery in candidates:
                assert delivery.id is not None
                schedule = session.get(Schedule, delivery.schedule_id)
                project = session.get(Project, delivery.project_id)
                if schedule is None or project is None or schedule.paused or schedule.disabled_reason:
                    continue
                if not delivery.prompt_id or not delivery.channel_id or not delivery.message_ts:
                    continue
                if sched.newer_round_sent(session, delivery=delivery):
                    # The next prompt is already out; a reminder about the old one is noise.
                    sched.settle_reminder(session, delivery_id=delivery.id, now=ctx.now)
                    continue
                if delivery.kind == "partner_prompt":
                    partner = sched.member(
                        session, project_id=project.id or 0, user_id=delivery.recipient, role="partner"
                    )
                    if (
                        sched.has_answered(session, delivery_id=delivery.id, user_id=delivery.recipient)
                        or partner is None
                        or not _still_wanted(partner)
                    ):
                        # Settled like the reminded ones, at the same moment: the ledger keeps no trace of who
                        # had answered (the flag is cleared, and reminded_at is set either way).
                        sched.settle_reminder(session, delivery_id=delivery.id, now=ctx.now)
                        continue
                due.append(
                    (
                        delivery.id,
                        delivery.kind,
                        delivery.prompt_id,
                        delivery.channel_id,
                        delivery.message_ts,
                        schedule.enterprise_id,
                        project.name,
                        project.partner_description or project.name,
                    )
                )
        for delivery_id, kind, prompt_id, channel_id, message_ts, enterprise_id, project_name, about in due:
            with unit_of_work(self.engine) as session:
                row = sched.get_delivery(session, delivery_id)
                assert row is not None
                team_id = row.team_id
                # Its own key, so a reminder is never mistaken for the prompt it follows up.
                reminder_key = delivery_key(row.schedule_id, row.occurrence, row.recipient) + ":reminder"
                if not sched.claim_reminder(session, delivery_id=delivery_id, now=ctx.now):
                    continue
            client = ctx.client(team_id, enterprise_id)
            if client is None:
                continue
            to_partner = kind == "partner_prompt"
            prompt = self._partner_prompt(prompt_id) if to_partner else self.catalogue.get(prompt_id)
            # For the team the reminder goes to everyone in the thread and names nobody: answers can be
            # anonymous, so who has answered is not something the channel may learn.
            blocks, text = self.messages.reminder_message(
                prompt,
                project_name=project_name,
                delivery_id=delivery_id,
                audience="partner" if to_partner else "team",
                about=about,
            )
            self.throttle.wait(channel_id)
            try:
                post_message(
                    client,
                    channel=channel_id,
                    text=text,
                    blocks=blocks,
                    thread_ts=message_ts,
                    metadata=delivery_metadata(delivery_id, reminder_key),
                )
            except (SlackApiError, urllib.error.URLError, OSError) as exc:
                logger.warning("Reminder for delivery %s not sent: %s", delivery_id, exc)
                continue
            report.add("reminded")


def _still_wanted(partner: ProjectMember) -> bool:
    return partner.consent == "given" and not partner.paused and not partner.stopped


class _RunContext:
    """Per-run caches: one client per workspace, each person's time zone and name (users.info once per run)."""

    def __init__(self, deliverer: Deliverer, now: datetime, started: float) -> None:
        self.deliverer = deliverer
        self.now = now
        self._started = started
        self._clients: dict[tuple[str, str | None], WebClient | None] = {}
        self._users: dict[str, dict[str, Any]] = {}
        self._conversations: dict[str, str] = {}
        self._bot_ids: dict[str, str] = {}
        self._lock = threading.Lock()

    def clock(self) -> datetime:
        """`now` moved on by the time this run has taken, so claims made late in a long run look their age."""
        return self.now + timedelta(seconds=time.monotonic() - self._started)

    def client(self, team_id: str, enterprise_id: str | None) -> WebClient | None:
        key = (team_id, enterprise_id)
        with self._lock:
            if key in self._clients:
                return self._clients[key]
        client = self.deliverer.factory.for_team(team_id, enterprise_id)
        if client is None:
            # Uninstalled: stop this workspace's schedules (they resume if it is installed again).
            with unit_of_work(self.deliverer.engine) as session:
                stopped = sched.disable_for_team(session, team_id, "app_uninstalled")
            logger.warning("No installation for team %s: stopped %s schedules", team_id, stopped)
        with self._lock:
            self._clients[key] = client
        return client

    def conversation(self, client: WebClient, recipient: str) -> str:
        """The conversation a post to `recipient` lands in: the channel itself, or the bot's D… DM with a person."""
        if recipient[:1] not in ("U", "W"):
            return recipient
        with self._lock:
            if recipient in self._conversations:
                return self._conversations[recipient]
        channel = str(client.conversations_open(users=recipient)["channel"]["id"])
        with self._lock:
            self._conversations[recipient] = channel
        return channel

    def bot_id(self, client: WebClient, team_id: str) -> str:
        """Our bot's B… id in a workspace (auth.test once per run), to recognise its own messages."""
        with self._lock:
            if team_id in self._bot_ids:
                return self._bot_ids[team_id]
        response = client.auth_test()
        bot_id = str(response.get("bot_id") or "")
        if not bot_id:
            raise _CannotReadBack("auth.test gave no bot_id: not a bot token")
        with self._lock:
            self._bot_ids[team_id] = bot_id
        return bot_id

    def _user(self, client: WebClient | None, user_id: str) -> dict[str, Any]:
        with self._lock:
            if user_id in self._users:
                return self._users[user_id]
        deliverer = self.deliverer
        ttl = deliverer.config.people_ttl.total_seconds()
        with deliverer.people_lock:
            cached = deliverer.people.get(user_id)
        if cached is not None and time.monotonic() - cached[0] < ttl:
            info = cached[1]
        else:
            info = {}
            if client is not None:
                try:
                    info = dict(client.users_info(user=user_id).get("user") or {})
                except (SlackApiError, urllib.error.URLError, OSError) as exc:
                    logger.warning(
                        "users.info for %s failed (%s); using the schedule's time zone", user_id, exc
                    )
            if info:  # a failed look-up is tried again at the next sync
                with deliverer.people_lock:
                    deliverer.people[user_id] = (time.monotonic(), info)
        with self._lock:
            self._users[user_id] = info
        return info

    def timezone(self, client: WebClient | None, user_id: str) -> str | None:
        tz = self._user(client, user_id).get("tz")
        if not isinstance(tz, str) or not tz:
            return None
        try:
            from zoneinfo import ZoneInfo

            ZoneInfo(tz)
        except (KeyError, ValueError):
            return None
        return tz

    def real_name(self, client: WebClient | None, user_id: str) -> str:
        info = self._user(client, user_id)
        profile = info.get("profile") or {}
        name = profile.get("real_name") or info.get("real_name") or info.get("name")
        # A display name is typed by its owner: it goes into mrkdwn escaped, like anything else a person typed.
        return typed(str(name)) if name else f"<@{user_id}>"


def make_instance_id() -> str:
    import os
    import socket
    import uuid

    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"[:64]


__all__ = [
    "CONSENT_KIND",
    "CONSENT_OCCURRENCE",
    "Deliverer",
    "DeliveryMessages",
    "DeliveryConfig",
    "RunReport",
    "SimulatedCrash",
    "Task",
    "delivery_key",
    "delivery_metadata",
    "make_instance_id",
    "post_message",
]
