"""Planning the delivery ledger's work: what is due for every live schedule, in a fixed number of queries.

One transaction reads everything the plan needs (schedules, projects, catch-up marks, members, consent and
ledger state, the facts that choose each prompt: storage.planning_repo); the time-zone look-ups (users.info,
cached across runs) happen after it, never inside it; the decisions are bot.core.delivery_plan's; a second
short transaction records the occurrences that were missed. Rows already in the ledger are not planned again,
so a new leader resumes from the ledger instead of claiming everything a second time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from sqlmodel import Session

from bot.core.delivery_plan import (
    ROUND_WINDOW,
    TZ_SPREAD,
    ProjectFacts,
    project_state,
    read_back_since,
    reflection_due,
    round_prompt,
    split_due,
    utc,
    window_start,
)
from bot.core.prompts import Prompt, choose_prompt, reason_for
from bot.core.schedule_rules import ScheduleSpec, next_occurrence, occurrences_between
from bot.services.delivery.context import RunContext
from bot.services.delivery.model import CONSENT_KIND, CONSENT_OCCURRENCE, RunReport, Task
from storage import leader_repo, planning_repo
from storage import schedule_repo as sched
from storage.db import unit_of_work
from storage.models import Delivery, Project, ProjectMember, Schedule

if TYPE_CHECKING:
    from bot.services.delivery import Deliverer

logger = logging.getLogger(__name__)

FIRST_BATCH = 50  # a new leader's first batch
RESUME_LOOKBACK = timedelta(hours=1)  # a new leader plans schedules claimed within this last
PLAN_BATCH = (
    500  # live schedules planned per batch: the first posts do not wait for ten thousand to be planned
)


@dataclass
class _Candidate:
    """A live schedule with an occurrence possibly in its window (before anyone's time zone is known)."""

    schedule: Schedule
    project: Project
    spec: ScheduleSpec
    start: datetime
    people: list[ProjectMember]
    occurrences: list[datetime] = field(default_factory=list)  # a team prompt's, found with the pre-check


def partner_prompt(deliverer: Deliverer, prompt_id: str) -> Prompt:
    prompt = deliverer.catalogue.get(prompt_id)
    return replace(prompt, text=prompt.text_for("partner"))


def still_wanted(partner: ProjectMember) -> bool:
    return partner.consent == "given" and not partner.paused and not partner.stopped


# --- retries ------------------------------------------------------------------------------------------------


def retry_claims(
    deliverer: Deliverer, ctx: RunContext, report: RunReport, *, takeover_only: bool = False
) -> list[Task]:
    """Claims left unsent (this instance's 429s, stale claims of a dead or deposed owner): retried, given up on,
    or recorded as missed. A claim made under the current leader term by another instance is never touched.

    A leader takes over an earlier term's claims from `deliverer.takeover_at` on (the package docstring says why
    that is safe), not only once stale; before then it sets `report.takeover_at` and calls
    `deliverer.on_takeover_due`, so it wakes at that moment. `takeover_only`: just those claims (the wake itself).
    """
    config = deliverer.config
    tasks: list[Task] = []
    takeover_at = deliverer.takeover_at if ctx.term is not None else None
    ready = takeover_at is not None and ctx.now >= takeover_at
    with unit_of_work(deliverer.engine) as session:
        try:
            leader_repo.check_term(session, term=ctx.term, lock=True)
        except leader_repo.Deposed:
            ctx.deposed.set()
            return []
        current = leader_repo.current_term(session)
        if (
            takeover_at is not None
            and not ready
            and sched.has_older_term_claims(session, current_term=current or 0)
        ):
            report.takeover_at = takeover_at
        claims = (
            []
            if takeover_only and not ready
            else sched.retryable_claims(
                session,
                me=deliverer.instance_id,
                stale_before=ctx.now - config.stale_after,
                current_term=current,
                older_terms=ready,
                only_older_terms=takeover_only,
            )
        )
        tasks = _retry_tasks(deliverer, ctx, report, session, claims)
    if report.takeover_at is not None and deliverer.on_takeover_due is not None:
        deliverer.on_takeover_due(report.takeover_at)
    return tasks


def _retry_tasks(
    deliverer: Deliverer, ctx: RunContext, report: RunReport, session: Session, claims: list[Delivery]
) -> list[Task]:
    config = deliverer.config
    tasks: list[Task] = []
    if claims:
        schedules, projects = planning_repo.schedules_and_projects(
            session, schedule_ids={c.schedule_id for c in claims}
        )
        team = [
            projects[c.project_id] for c in claims if c.kind == "team_prompt" and c.project_id in projects
        ]
        members = planning_repo.members_by_project(session, project_ids={p.id or 0 for p in team})
        facts = planning_repo.project_facts(session, projects=team, members=members)
        for delivery in claims:
            assert delivery.id is not None
            late = delivery.kind != CONSENT_KIND and ctx.now - utc(delivery.occurrence) > config.grace_for(
                delivery.kind
            )
            if late:
                error = f"not sent in time: {delivery.error or 'interrupted'}"
                sched.mark_missed(session, delivery_id=delivery.id, error=error)
                report.add("missed")
                continue
            if delivery.attempts >= (config.max_attempts if delivery.error else config.max_interruptions):
                error = f"gave up after {delivery.attempts} attempts: {delivery.error or 'interrupted'}"
                sched.mark_failed(session, delivery_id=delivery.id, error=error)
                report.add("failed")
                continue
            since = None
            if config.read_back:
                since = read_back_since(
                    mine=delivery.claimed_by == deliverer.instance_id,
                    error=delivery.error,
                    claimed_at=delivery.claimed_at,
                    attempts=delivery.attempts,
                    occurrence=delivery.occurrence,
                    consent=delivery.kind == CONSENT_KIND,
                )
            if not sched.take_over_claim(
                session, delivery=delivery, claimed_by=deliverer.instance_id, now=ctx.now, fence=ctx.term
            ):
                continue
            schedule = schedules.get(delivery.schedule_id)
            reason = ""
            if delivery.kind == "team_prompt" and delivery.prompt_id and delivery.project_id in facts:
                state = project_state(facts[delivery.project_id], today=ctx.now.date())
                reason = reason_for(deliverer.catalogue.get(delivery.prompt_id).stage, state)
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


# --- new occurrences ----------------------------------------------------------------------------------------


def plan(
    deliverer: Deliverer, ctx: RunContext, report: RunReport, only: set[int] | None
) -> tuple[list[Task], dict[int, datetime]]:
    """Work out what is due for every live schedule, record what was missed; returns tasks and new marks."""
    marks, batches = plan_batches(deliverer, ctx, report, only)
    return [task for batch in batches for task in batch], marks


def plan_batches(
    deliverer: Deliverer, ctx: RunContext, report: RunReport, only: set[int] | None
) -> tuple[dict[int, datetime], Iterator[list[Task]]]:
    """The new marks, and the tasks in batches of PLAN_BATCH live schedules (a fixed number of queries each),
    so the first posts go out while the rest is still being planned."""
    with unit_of_work(deliverer.engine) as session:
        # Only live schedules' marks move on: a paused or stopped one starts again from its resumption (its edit
        # time), whatever its mark says. Rewriting every mark each sync was 30,000 rows at 10,000 projects.
        live_ids = [i for i in planning_repo.live_schedule_ids(session) if only is None or i in only]
        marks = dict.fromkeys(live_ids, ctx.now)
        if ctx.resume and live_ids:
            # A new leader's first run, perhaps in the middle of its predecessor's fan-out: schedules with nothing
            # in the ledger lately are planned first, so its first post does not wait for the planning of
            # everything the old leader already did (planned after them all the same, in case of catch-up).
            done = planning_repo.recently_claimed_schedule_ids(session, since=ctx.now - RESUME_LOOKBACK)
            live_ids = [i for i in live_ids if i not in done] + [i for i in live_ids if i in done]

    def batches() -> Iterator[list[Task]]:
        # Taking over: a small first batch, so the first post goes out after planning FIRST_BATCH schedules, not
        # PLAN_BATCH (the same queries, a tenth of the work); the pool posts while the rest are planned.
        start = min(FIRST_BATCH, PLAN_BATCH) if ctx.resume else 0
        if start and live_ids:
            yield _plan_batch(deliverer, ctx, report, live_ids[:start])
        for i in range(start, len(live_ids), PLAN_BATCH):
            yield _plan_batch(deliverer, ctx, report, live_ids[i : i + PLAN_BATCH])

    return marks, batches()


def _plan_batch(deliverer: Deliverer, ctx: RunContext, report: RunReport, ids: list[int]) -> list[Task]:
    deliverer.config.step_aside()  # for any acknowledgement due in this process, as each post does
    ids = _may_be_due(deliverer, ctx, ids)
    if not ids:
        return []
    config = deliverer.config
    tasks: list[Task] = []
    candidates: list[_Candidate] = []
    with unit_of_work(deliverer.engine) as session:
        schedules, projects = planning_repo.schedules_and_projects(session, schedule_ids=ids)
        live = [
            s
            for s in sorted(schedules.values(), key=lambda s: s.id or 0)
            if not s.paused and not s.disabled_reason and s.project_id in projects
        ]
        mark_of = planning_repo.marks(session, schedule_ids=[s.id or 0 for s in live])
        members = planning_repo.members_by_project(
            session, project_ids={s.project_id for s in live if s.kind != "team_prompt"}
        )
        consent_projects: dict[int, Schedule] = {}
        for schedule in live:
            project = projects[schedule.project_id]
            try:
                spec = sched.spec_for(schedule, region=project.region)
            except ValueError:
                logger.warning("Schedule %s is invalid; skipping it", schedule.id, exc_info=True)
                continue
            start = window_start(
                mark=mark_of.get(schedule.id or 0),
                updated_at=schedule.updated_at,
                now=ctx.now,
                max_catchup=config.max_catchup,
            )
            people = members.get(schedule.project_id, [])
            if schedule.kind == "partner_prompt":
                consent_projects[schedule.project_id] = schedule
                people = [m for m in people if m.role == "partner" and still_wanted(m)]
            elif schedule.kind == "lead_nudge":
                people = [m for m in people if m.role == "lead"]
            spread = timedelta(0) if schedule.kind == "team_prompt" else TZ_SPREAD
            if _not_yet(deliverer, schedule.id or 0, (spec, schedule.updated_at), start, ctx.now, spread):
                continue
            if schedule.kind == "team_prompt":  # the channel's own occurrences, worked out once
                found = occurrences_between(spec, start, ctx.now + timedelta(microseconds=1))
                if found:
                    candidates.append(_Candidate(schedule, project, spec, start, people, found))
            # Cheap pre-check in the schedule's own zone before anyone's time zone is looked up.
            elif occurrences_between(spec, start - TZ_SPREAD, ctx.now + TZ_SPREAD):
                candidates.append(_Candidate(schedule, project, spec, start, people))
        tasks += _consent_tasks(session, consent_projects, members)
        prompted = [c for c in candidates if c.schedule.kind in ("team_prompt", "partner_prompt")]
        facts = planning_repo.project_facts(
            session, projects=list({c.project.id: c.project for c in prompted}.values()), members=members
        )
        since = min((c.start for c in candidates), default=ctx.now)
        rounds = planning_repo.round_prompts(
            session,
            schedule_ids=[c.schedule.id or 0 for c in candidates if c.schedule.kind == "partner_prompt"],
            since=since - ROUND_WINDOW - TZ_SPREAD,
        )
        existing = {
            (s, utc(o), r)
            for s, o, r in planning_repo.ledger_keys(
                session, schedule_ids=[c.schedule.id or 0 for c in candidates], since=since
            )
        }
    # Out of the transaction: users.info (cached) for people's own time zones, then the decisions.
    missed: list[tuple[Schedule, datetime, str]] = []
    for candidate in candidates:
        due, late = _occurrences(ctx, candidate, existing, config.grace_for(candidate.schedule.kind))
        missed += [(candidate.schedule, occurrence, recipient) for occurrence, recipient in late]
        tasks += _tasks_for(deliverer, candidate, due, facts.get(candidate.project.id or 0), rounds)
    if missed:
        with unit_of_work(deliverer.engine) as session:
            for schedule, occurrence, recipient in missed:
                row = planning_repo.claim(
                    session,
                    schedule_id=schedule.id or 0,
                    project_id=schedule.project_id,
                    team_id=schedule.team_id,
                    kind=schedule.kind,
                    occurrence=occurrence,
                    recipient=recipient,
                    prompt_id=None,
                    claimed_by=deliverer.instance_id,
                    now=ctx.now,
                    fence=ctx.term,
                    status="missed",
                )
                if row is not None:
                    report.add("missed")
    return tasks


def _may_be_due(deliverer: Deliverer, ctx: RunContext, ids: list[int]) -> list[int]:
    """The live schedules of `ids` that may have something to send: any whose next firing is not after now (as
    _not_yet), and any partner schedule whose project has a partner yet to answer the consent question (partners
    added later are asked whenever partner questions are on).

    Read as columns, so a sync with nothing due loads no objects: at 10,000 projects it planned 20,000 objects
    every 30 s for nothing. A schedule whose timing cannot be read is kept: the full plan logs and skips it."""
    with unit_of_work(deliverer.engine) as session:
        rows = sched.live_timings(session, schedule_ids=ids)
        mark_of = planning_repo.marks(session, schedule_ids=[row[0] for row in rows])
        consent = planning_repo.awaiting_consent(
            session, schedule_ids=[row[0] for row in rows if row[1] == "partner_prompt"]
        )
    keep: list[int] = []
    for schedule_id, kind, updated_at, timing in rows:
        try:
            spec = sched.spec_of(timing)
        except ValueError:
            spec = None
        if schedule_id in consent or spec is None:
            keep.append(schedule_id)
            continue
        start = window_start(
            mark=mark_of.get(schedule_id),
            updated_at=updated_at,
            now=ctx.now,
            max_catchup=deliverer.config.max_catchup,
        )
        spread = timedelta(0) if kind == "team_prompt" else TZ_SPREAD
        if not _not_yet(deliverer, schedule_id, (spec, updated_at), start, ctx.now, spread):
            keep.append(schedule_id)
    kept = set(keep)
    return [i for i in ids if i in kept]  # in the order asked for (a new leader's puts the undone first)


def _not_yet(
    deliverer: Deliverer,
    schedule_id: int,
    key: tuple[ScheduleSpec, datetime],
    start: datetime,
    now: datetime,
    spread: timedelta,
) -> bool:
    """True when the schedule's next firing (remembered across syncs) is still after `now` (+ `spread`, the
    widest time-zone offset for DMs): then nothing in its window can be due and it costs no date arithmetic.

    The firing is remembered with the window start it was worked out from; a later start only narrows the
    window, so the answer stands until the spec or the schedule's edit time (`key`) changes, or the window has
    moved past the firing (then the next one is worked out: otherwise a schedule that had fired would count as
    possibly due at every sync until its spec changed).
    """
    cached = deliverer.next_firing.get(schedule_id)
    if cached is None or cached[0] != key or cached[1] > start or cached[2] < start - spread:
        cached = (key, start, next_occurrence(key[0], start - spread - timedelta(microseconds=1)))
        deliverer.next_firing[schedule_id] = cached
    return cached[2] >= now + spread + timedelta(microseconds=1)


def _occurrences(
    ctx: RunContext, candidate: _Candidate, existing: set[tuple[int, datetime, str]], grace: timedelta
) -> tuple[list[tuple[datetime, str]], list[tuple[datetime, str]]]:
    schedule, project = candidate.schedule, candidate.project
    end = ctx.now + timedelta(microseconds=1)
    wanted: list[tuple[datetime, str]] = []
    if schedule.kind == "team_prompt":
        wanted = [(o, project.channel_id) for o in candidate.occurrences]
    else:
        client = ctx.client(schedule.team_id, schedule.enterprise_id) if candidate.people else None
        for person in candidate.people:
            tz = ctx.timezone(client, person.user_id) if schedule.use_recipient_tz and client else None
            wanted += [
                (o, person.user_id) for o in occurrences_between(candidate.spec, candidate.start, end, tz=tz)
            ]
    fresh = [(o, r) for o, r in wanted if (schedule.id, utc(o), r) not in existing]
    return split_due(fresh, now=ctx.now, grace=grace)


def _tasks_for(
    deliverer: Deliverer,
    candidate: _Candidate,
    due: list[tuple[datetime, str]],
    facts: ProjectFacts | None,
    rounds: dict[int, list[tuple[datetime, str]]],
) -> list[Task]:
    schedule, project = candidate.schedule, candidate.project
    assert schedule.id is not None and project.id is not None
    chosen: dict[datetime, tuple[str, str]] = {}
    tasks: list[Task] = []
    for occurrence, recipient in due:
        prompt_id, reason = None, ""
        if schedule.kind in ("team_prompt", "partner_prompt"):
            prompt_id, reason = _prompt_for(
                deliverer, schedule, facts or ProjectFacts(), occurrence, chosen, rounds.get(schedule.id, [])
            )
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
                pinned=prompt_id is not None and facts is not None and prompt_id == facts.pin,
            )
        )
    return tasks


def _prompt_for(
    deliverer: Deliverer,
    schedule: Schedule,
    facts: ProjectFacts,
    occurrence: datetime,
    chosen: dict[datetime, tuple[str, str]],
    rounds: list[tuple[datetime, str]],
) -> tuple[str, str]:
    """One prompt per round of a schedule: partners in other time zones get the same question."""
    for other, picked in chosen.items():
        if abs(other - occurrence) < ROUND_WINDOW:
            return picked
    catalogue = deliverer.catalogue
    state = project_state(facts, today=occurrence.date())
    existing = round_prompt(rounds, occurrence) if schedule.kind == "partner_prompt" else None
    if existing is not None:
        try:
            picked = (existing, reason_for(catalogue.get(existing).stage, state))
            chosen[occurrence] = picked
            return picked
        except KeyError:
            pass  # the catalogue dropped it since; choose afresh
    audience: Literal["team", "partner"] = "team" if schedule.kind == "team_prompt" else "partner"
    pinned = facts.pin
    if pinned is None and audience == "team":
        pinned = reflection_due(facts)  # the team has changed since it last reflected: back to `/mfi team`
    prompt = choose_prompt(
        catalogue,
        state,
        audience=audience,
        used=facts.used.get(audience, []),
        pinned=pinned,
        skipped=facts.skipped,
    )
    picked = (prompt.id, reason_for(prompt.stage, state))
    chosen[occurrence] = picked
    return picked


def _consent_tasks(
    session: Session, schedules: dict[int, Schedule], members: dict[int, list[ProjectMember]]
) -> list[Task]:
    """Consent invitations for partners added since the project's invitations began (one query for all)."""
    waiting = {
        project_id: [m for m in members.get(project_id, []) if _awaiting(m)] for project_id in schedules
    }
    waiting = {k: v for k, v in waiting.items() if v}
    if not waiting:
        return []
    asked = planning_repo.recipients_of_kind(session, project_ids=waiting, kind=CONSENT_KIND)
    tasks: list[Task] = []
    for project_id, people in waiting.items():
        replied = any(m.role == "partner" and m.consent != "pending" for m in members.get(project_id, []))
        if not asked.get(project_id) and not replied:
            # Nobody asked yet: the first invitations go when a lead chooses (`/mfi partners`) or turns partner
            # questions on (`/mfi schedule`), not the moment a partner is named. Later partners are asked here.
            continue
        schedule = schedules[project_id]
        assert schedule.id is not None
        tasks += [
            Task(
                schedule_id=schedule.id,
                project_id=project_id,
                team_id=schedule.team_id,
                enterprise_id=schedule.enterprise_id,
                kind=CONSENT_KIND,
                occurrence=CONSENT_OCCURRENCE,
                recipient=m.user_id,
            )
            for m in people
            if m.user_id not in asked.get(project_id, set())
        ]
    return tasks


def _awaiting(member: ProjectMember) -> bool:
    return member.role == "partner" and member.consent == "pending" and not member.stopped
