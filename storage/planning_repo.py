"""Batched reads for the delivery ledger's planning: a fixed number of queries per sync, whatever the number of
schedules, projects or members (each query takes its ids in chunks of CHUNK, so one for up to that many).

The caller owns the transaction; nothing here calls Slack, and the caller should leave the transaction before
it does (time-zone look-ups happen between the reads and the writes).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import bindparam, func, update
from sqlalchemy import select as columns_select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from bot.core.delivery_plan import ProjectFacts, utc
from storage.db import among
from storage.models import (
    Delivery,
    Measure,
    PdsaCycle,
    Project,
    ProjectMember,
    PromptChoice,
    Schedule,
    SchedulerState,
    TeamReflection,
)

CHUNK = 5000  # well under SQLite's 32,766 bound parameters and PostgreSQL's 65,535
_LIVE = ("claimed", "sent")
_AUDIENCE = {"team_prompt": "team", "partner_prompt": "partner"}


def _chunks(ids: Iterable[int]) -> Iterator[list[int]]:
    ordered = sorted(set(ids))
    for i in range(0, len(ordered), CHUNK):
        yield ordered[i : i + CHUNK]


def live_schedule_ids(session: Session) -> list[int]:
    """Schedules neither paused nor stopped (an uninstalled workspace, a revoked token), in order."""
    query = (
        select(Schedule.id)
        .where(col(Schedule.paused).is_(False), col(Schedule.disabled_reason).is_(None))
        .order_by(col(Schedule.id))
    )
    return [i for i in session.exec(query) if i is not None]


def recently_claimed_schedule_ids(session: Session, *, since: datetime) -> set[int]:
    """Schedules with a ledger row claimed since `since`: what a leader that has just taken over finds done."""
    query = select(Delivery.schedule_id).where(col(Delivery.claimed_at) >= since).distinct()
    return set(session.exec(query))


def marks(session: Session, *, schedule_ids: Iterable[int]) -> dict[int, datetime]:
    """Each schedule's catch-up mark (SchedulerState.last_checked), read as columns."""
    found: dict[int, datetime] = {}
    for chunk in _chunks(schedule_ids):
        query = select(SchedulerState.schedule_id, SchedulerState.last_checked).where(
            among(session, col(SchedulerState.schedule_id), chunk)
        )
        found.update((schedule_id, when) for schedule_id, when in session.exec(query))
    return found


def awaiting_consent(session: Session, *, schedule_ids: Iterable[int]) -> set[int]:
    """The partner schedules among these whose project has a partner still to answer the consent question (not
    stopped): the ones a sync may owe a consent invitation, whatever their timing. One query per CHUNK of ids."""
    found: set[int] = set()
    for chunk in _chunks(schedule_ids):
        query = (
            select(Schedule.id)
            .join(ProjectMember, col(ProjectMember.project_id) == col(Schedule.project_id))
            .where(
                among(session, col(Schedule.id), chunk),
                Schedule.kind == "partner_prompt",
                ProjectMember.role == "partner",
                ProjectMember.consent == "pending",
                col(ProjectMember.stopped).is_(False),
            )
            .distinct()
        )
        found.update(i for i in session.exec(query) if i is not None)
    return found


def members_by_project(session: Session, *, project_ids: Iterable[int]) -> dict[int, list[ProjectMember]]:
    """Every lead and partner of these projects, in the order they were added."""
    found: dict[int, list[ProjectMember]] = defaultdict(list)
    for chunk in _chunks(project_ids):
        query = (
            select(ProjectMember)
            .where(
                among(session, col(ProjectMember.project_id), chunk),
                col(ProjectMember.role).in_(("lead", "partner")),
            )
            .order_by(col(ProjectMember.id))
        )
        for member in session.exec(query):
            found[member.project_id].append(member)
    return found


def recipients_of_kind(session: Session, *, project_ids: Iterable[int], kind: str) -> dict[int, set[str]]:
    """Who already has a ledger row of `kind` in each project (consent invitations: asked once, ever)."""
    found: dict[int, set[str]] = defaultdict(set)
    for chunk in _chunks(project_ids):
        query = select(Delivery.project_id, Delivery.recipient).where(
            among(session, col(Delivery.project_id), chunk), Delivery.kind == kind
        )
        for project_id, recipient in session.exec(query):
            found[project_id].add(recipient)
    return found


def ledger_keys(
    session: Session, *, schedule_ids: Iterable[int], since: datetime
) -> set[tuple[int, datetime, str]]:
    """(schedule, occurrence, recipient) of every ledger row from `since` on: what is already claimed, sent or
    recorded, so a new leader resumes from the ledger instead of claiming everything again."""
    found: set[tuple[int, datetime, str]] = set()
    for chunk in _chunks(schedule_ids):
        query = select(Delivery.schedule_id, Delivery.occurrence, Delivery.recipient).where(
            among(session, col(Delivery.schedule_id), chunk), col(Delivery.occurrence) >= since
        )
        found.update((s, o, r) for s, o, r in session.exec(query))
    return found


def round_prompts(
    session: Session, *, schedule_ids: Iterable[int], since: datetime
) -> dict[int, list[tuple[datetime, str]]]:
    """The prompts already chosen for each schedule's rounds from `since` on (partners share their round's)."""
    found: dict[int, list[tuple[datetime, str]]] = defaultdict(list)
    for chunk in _chunks(schedule_ids):
        query = select(Delivery.schedule_id, Delivery.occurrence, Delivery.prompt_id).where(
            among(session, col(Delivery.schedule_id), chunk),
            col(Delivery.prompt_id).is_not(None),
            col(Delivery.occurrence) >= since,
        )
        for schedule_id, occurrence, prompt_id in session.exec(query):
            if prompt_id is not None:
                found[schedule_id].append((occurrence, prompt_id))
    return found


def project_facts(
    session: Session, *, projects: Sequence[Project], members: dict[int, list[ProjectMember]]
) -> dict[int, ProjectFacts]:
    """What choosing each project's next prompt needs (bot.core.delivery_plan.project_state), in five queries."""
    facts = {
        p.id: ProjectFacts(
            has_aim_for_whom=bool(p.focus_groups),
            racism_context_recorded=bool(p.racism_context.strip()),
            has_partners=any(m.role == "partner" and not m.stopped for m in members.get(p.id, [])),
        )
        for p in projects
        if p.id is not None
    }
    for chunk in _chunks(facts):
        for project_id, measure_type in session.exec(
            select(Measure.project_id, Measure.measure_type).where(
                among(session, col(Measure.project_id), chunk), col(Measure.archived).is_(False)
            )
        ):
            facts[project_id].measure_types.append(measure_type)
        for project_id, status, end_date, updated_at in session.exec(
            select(
                col(PdsaCycle.project_id),
                col(PdsaCycle.status),
                col(PdsaCycle.end_date),
                col(PdsaCycle.updated_at),
            ).where(among(session, col(PdsaCycle.project_id), chunk))
        ):
            facts[project_id].cycles.append((status, end_date, updated_at))
        for project_id, last in session.exec(
            select(Delivery.project_id, func.max(Delivery.sent_at))
            .where(
                among(session, col(Delivery.project_id), chunk),
                Delivery.kind == "team_prompt",
                Delivery.status == "sent",
            )
            .group_by(col(Delivery.project_id))
        ):
            facts[project_id].last_team_sent = last
        used_query = (
            select(Delivery.project_id, Delivery.kind, Delivery.prompt_id)
            .where(
                among(session, col(Delivery.project_id), chunk),
                col(Delivery.kind).in_(tuple(_AUDIENCE)),
                col(Delivery.status).in_(_LIVE),
                col(Delivery.prompt_id).is_not(None),
            )
            .order_by(col(Delivery.occurrence), col(Delivery.id))
        )
        for project_id, kind, prompt_id in session.exec(used_query):
            used = facts[project_id].used.setdefault(_AUDIENCE[kind], [])
            # A partner round has one row per partner; count it once (as schedule_repo.used_prompt_ids does).
            if prompt_id is not None and (not used or used[-1] != prompt_id):
                used.append(prompt_id)
        # Who the team has now (every role: members_by_project holds only leads and partners), for the reflection.
        people: dict[int, set[str]] = defaultdict(set)
        for project_id, user_id, role, stopped, consent in session.execute(
            columns_select(
                col(ProjectMember.project_id),
                col(ProjectMember.user_id),
                col(ProjectMember.role),
                col(ProjectMember.stopped),
                col(ProjectMember.consent),
            ).where(among(session, col(ProjectMember.project_id), chunk))
        ):  # columns, not objects: a member object costs more to build than the rest of its project's facts
            if not stopped and (role != "partner" or consent == "given"):
                people[project_id].add(user_id)
        for project_id in chunk:
            facts[project_id].people = frozenset(people.get(project_id, ()))
        for project_id, seen in session.exec(
            select(TeamReflection.project_id, TeamReflection.members_seen).where(
                among(session, col(TeamReflection.project_id), chunk)
            )
        ):
            facts[project_id].team_seen = frozenset(seen or ())
        pins: dict[int, list[str]] = defaultdict(list)
        for project_id, prompt_id, choice, spent in session.exec(
            select(
                col(PromptChoice.project_id),
                col(PromptChoice.prompt_id),
                col(PromptChoice.choice),
                col(PromptChoice.used),
            )
            .where(among(session, col(PromptChoice.project_id), chunk))
            .order_by(col(PromptChoice.created_at))
        ):
            if choice == "pin" and not spent:
                pins[project_id].append(prompt_id)
            elif choice == "skip":
                facts[project_id].skipped.append(prompt_id)
        for project_id, pinned in pins.items():
            facts[project_id].pin = pinned[-1]
    return facts


def schedules_and_projects(
    session: Session, *, schedule_ids: Iterable[int]
) -> tuple[dict[int, Schedule], dict[int, Project]]:
    """These schedules and their projects, two queries (a retry of many claims reads them at once)."""
    schedules: dict[int, Schedule] = {}
    for chunk in _chunks(schedule_ids):
        schedules.update(
            (s.id or 0, s)
            for s in session.exec(select(Schedule).where(among(session, col(Schedule.id), chunk)))
        )
    projects: dict[int, Project] = {}
    for chunk in _chunks(s.project_id for s in schedules.values()):
        projects.update(
            (p.id or 0, p)
            for p in session.exec(select(Project).where(among(session, col(Project.id), chunk)))
        )
    return schedules, projects


_CLAIM_COLUMNS = (
    "schedule_id",
    "project_id",
    "team_id",
    "occurrence",
    "recipient",
    "kind",
    "prompt_id",
    "status",
    "claimed_by",
    "claimed_at",
    "attempts",
    "answered",
    "fence",
)


@cache
def _claim_statement(postgres: bool) -> Any:
    """The claim's INSERT, built once per dialect with bound parameters (compiled once, then cached)."""
    table: Any = getattr(Delivery, "__table__")  # noqa: B009 (SQLModel does not declare it)
    values = {name: bindparam(name, type_=table.c[name].type) for name in _CLAIM_COLUMNS}
    return (
        (pg_insert if postgres else sqlite_insert)(table)
        .values(values)
        .on_conflict_do_nothing(index_elements=["schedule_id", "occurrence", "recipient"])
        .returning(table.c.id)
    )


def claim(
    session: Session,
    *,
    schedule_id: int,
    project_id: int,
    team_id: str,
    kind: str,
    occurrence: datetime,
    recipient: str,
    prompt_id: str | None,
    claimed_by: str,
    now: datetime,
    fence: int | None,
    status: str = "claimed",
    uses_pin: bool = False,
) -> int | None:
    """schedule_repo.claim_delivery in one statement (INSERT .. ON CONFLICT DO NOTHING RETURNING id, on both
    databases): the new row's id, or None when the occurrence already has its row (someone has it).
    `uses_pin`: the prompt is the lead's pin, which this delivery uses up."""
    params = {
        "schedule_id": schedule_id,
        "project_id": project_id,
        "team_id": team_id,
        "occurrence": occurrence,
        "recipient": recipient,
        "kind": kind,
        "prompt_id": prompt_id,
        "status": status,
        "claimed_by": claimed_by,
        "claimed_at": now,
        "attempts": 1 if status == "claimed" else 0,
        "answered": False,
        "fence": fence,
    }
    statement = _claim_statement(session.get_bind().dialect.name == "postgresql")
    row = session.execute(statement, params).first()
    if row is None:
        return None
    if uses_pin and prompt_id is not None and status == "claimed":
        use_pin(session, project_id=project_id, prompt_id=prompt_id)
    return int(row[0])


def project_names(session: Session, *, project_ids: Iterable[int]) -> dict[int, tuple[str, str]]:
    """Each project's (name, partner description), what a prompt shows of it; one query per CHUNK of ids."""
    found: dict[int, tuple[str, str]] = {}
    for chunk in _chunks(project_ids):
        query = select(Project.id, Project.name, Project.partner_description).where(
            among(session, col(Project.id), chunk)
        )
        found.update((int(i or 0), (name, about)) for i, name, about in session.exec(query))
    return found


ClaimKey = tuple[int, datetime, str]  # (schedule, occurrence in UTC, recipient): the ledger's unique key


@cache
def _claim_many_statement(postgres: bool) -> Any:
    """The claim's INSERT returning its key too, so that one executemany (SQLAlchemy's "insertmanyvalues": one
    multi-row INSERT .. ON CONFLICT DO NOTHING RETURNING per 1,000 rows) says which rows were new."""
    table: Any = getattr(Delivery, "__table__")  # noqa: B009 (SQLModel does not declare it)
    values = {name: bindparam(name, type_=table.c[name].type) for name in _CLAIM_COLUMNS}
    return (
        (pg_insert if postgres else sqlite_insert)(table)
        .values(values)
        .on_conflict_do_nothing(index_elements=["schedule_id", "occurrence", "recipient"])
        .returning(table.c.id, table.c.schedule_id, table.c.occurrence, table.c.recipient)
    )


def claim_many(session: Session, *, claims: Sequence[dict[str, Any]]) -> dict[ClaimKey, int]:
    """claim() for many rows in one statement: each new row's id by its key (occurrence in UTC); a key missing
    from the answer already had its row (someone has it). Each claim is a dict of claim()'s keyword arguments
    schedule_id .. fence (no status, no uses_pin): the caller uses up pins for the rows it got."""
    if not claims:
        return {}
    params = [
        {
            **{name: c[name] for name in _CLAIM_COLUMNS if name in c},
            "claimed_at": c["now"],
            "status": "claimed",
            "attempts": 1,
            "answered": False,
        }
        for c in claims
    ]
    statement = _claim_many_statement(session.get_bind().dialect.name == "postgresql")
    rows = session.execute(statement, params).all()
    return {(int(s), utc(o), str(r)): int(i) for i, s, o, r in rows}


def use_pin(session: Session, *, project_id: int, prompt_id: str) -> None:
    """The lead's pin of this prompt is used up (claim()'s `uses_pin`)."""
    session.execute(
        update(PromptChoice)
        .where(
            col(PromptChoice.project_id) == project_id,
            col(PromptChoice.prompt_id) == prompt_id,
            col(PromptChoice.choice) == "pin",
            col(PromptChoice.used).is_(False),
        )
        .values(used=True)
    )
