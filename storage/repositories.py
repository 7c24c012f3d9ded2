"""Queries and writes for projects, members, audit and event de-duplication. Callers own the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.core.pdsa import count_cycles
from storage import measures_repo
from storage.db import remembered
from storage.models import (
    Answer,
    AuditLog,
    DataPoint,
    PdsaCycle,
    ProcessedEvent,
    Project,
    ProjectHistory,
    ProjectMember,
    utcnow,
)

EDITABLE_FIELDS = (
    "name",
    "aim",
    "focus_groups",
    "reference_group",
    "baseline",
    "target",
    "target_date",
    "racism_context",
    "suppression_threshold",
)


def record_event(session: Session, *, event_id: str, team_id: str | None) -> bool:
    """Record an Events API delivery; False when it was already recorded (a retry, maybe on another instance)."""
    if session.get(ProcessedEvent, event_id) is not None:
        return False
    try:
        with session.begin_nested():
            session.add(ProcessedEvent(event_id=event_id, team_id=team_id))
    except IntegrityError:
        return False
    return True


def project_for_channel(session: Session, *, team_id: str, channel_id: str) -> Project | None:
    return session.exec(
        select(Project).where(Project.team_id == team_id, Project.channel_id == channel_id)
    ).first()


def get_project(session: Session, *, team_id: str, project_id: int) -> Project | None:
    """A project by id, only within its own workspace."""
    project = session.get(Project, project_id)
    return project if project is not None and project.team_id == team_id else None


def create_project(
    session: Session,
    *,
    team_id: str,
    enterprise_id: str | None,
    channel_id: str,
    created_by: str,
    name: str,
    aim: str,
    focus_groups: Sequence[str],
    reference_group: str,
    baseline: str,
    target: str,
    target_date: date | None,
    racism_context: str,
    suppression_threshold: int = 8,
    leads: Sequence[str],
    partners: Sequence[str],
    timezone: str,
) -> Project:
    project = Project(
        team_id=team_id,
        enterprise_id=enterprise_id,
        channel_id=channel_id,
        created_by=created_by,
        name=name,
        aim=aim,
        focus_groups=list(focus_groups),
        reference_group=reference_group,
        baseline=baseline,
        target=target,
        target_date=target_date,
        racism_context=racism_context,
        suppression_threshold=max(8, suppression_threshold),
        timezone=timezone,
    )
    session.add(project)
    session.flush()
    assert project.id is not None
    set_members(session, project=project, role="lead", user_ids=leads, added_by=created_by)
    set_members(session, project=project, role="partner", user_ids=partners, added_by=created_by)
    audit(session, team_id=team_id, project_id=project.id, user_id=created_by, action="project.create")
    return project


def update_project(session: Session, *, project: Project, changed_by: str, **fields: Any) -> dict[str, Any]:
    """Apply edits, keeping the previous values as history. Returns the fields that changed."""
    previous: dict[str, Any] = {}
    for name, value in fields.items():
        if name not in EDITABLE_FIELDS:
            raise ValueError(f"{name} is not an editable project field")
        old = getattr(project, name)
        if old != value:
            previous[name] = old.isoformat() if isinstance(old, date) else old
            setattr(project, name, value)
    if previous:
        assert project.id is not None
        session.add(
            ProjectHistory(
                project_id=project.id, team_id=project.team_id, changed_by=changed_by, previous=previous
            )
        )
        project.updated_at = utcnow()
        session.add(project)
        audit(
            session,
            team_id=project.team_id,
            project_id=project.id,
            user_id=changed_by,
            action="project.edit",
            detail={"fields": sorted(previous)},
        )
    return previous


def set_members(
    session: Session, *, project: Project, role: str, user_ids: Sequence[str], added_by: str | None
) -> None:
    """Make the project's members in `role` exactly `user_ids`, keeping consent state of those who stay."""
    assert project.id is not None
    existing = {
        m.user_id: m
        for m in session.exec(
            select(ProjectMember).where(ProjectMember.project_id == project.id, ProjectMember.role == role)
        )
    }
    for user_id in user_ids:
        if user_id not in existing:
            session.add(
                ProjectMember(
                    project_id=project.id,
                    team_id=project.team_id,
                    user_id=user_id,
                    role=role,
                    added_by=added_by,
                )
            )
    for user_id, member in existing.items():
        if user_id not in user_ids:
            session.delete(member)
    session.flush()


def members(session: Session, *, project_id: int, role: str | None = None) -> list[ProjectMember]:
    def read() -> list[ProjectMember]:
        query = select(ProjectMember).where(ProjectMember.project_id == project_id)
        if role is not None:
            query = query.where(ProjectMember.role == role)
        return list(session.exec(query.order_by(col(ProjectMember.id))))

    return remembered(session, ("members", project_id, role), read)


def projects_for_user(session: Session, *, team_id: str, user_id: str) -> list[tuple[Project, str]]:
    """Projects in this workspace where the user is a lead, member or partner, with their role."""
    rows = session.exec(
        select(Project, ProjectMember.role)
        .join(ProjectMember, col(ProjectMember.project_id) == col(Project.id))
        .where(Project.team_id == team_id, ProjectMember.user_id == user_id)
        .order_by(col(Project.created_at))
    ).all()
    return [(project, role) for project, role in rows]


def is_lead(session: Session, *, project_id: int, user_id: str) -> bool:
    return (
        session.exec(
            select(ProjectMember).where(
                ProjectMember.project_id == project_id,
                ProjectMember.user_id == user_id,
                ProjectMember.role == "lead",
            )
        ).first()
        is not None
    )


def set_card_ts(session: Session, *, project: Project, ts: str) -> None:
    project.card_ts = ts
    session.add(project)


def audit(
    session: Session,
    *,
    team_id: str,
    project_id: int | None,
    user_id: str | None,
    action: str,
    detail: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditLog(team_id=team_id, project_id=project_id, user_id=user_id, action=action, detail=detail or {})
    )


def project_history(session: Session, *, project_id: int) -> list[ProjectHistory]:
    return list(
        session.exec(
            select(ProjectHistory)
            .where(ProjectHistory.project_id == project_id)
            .order_by(col(ProjectHistory.id))
        )
    )


def all_projects(session: Session, *, team_id: str | None = None) -> list[Project]:
    """Every project (or one workspace's), oldest first: for the scheduler's runs and the command line."""
    query = select(Project)
    if team_id is not None:
        query = query.where(Project.team_id == team_id)
    return list(session.exec(query.order_by(col(Project.id))))


def project_progress(session: Session, *, project: Project, today: date | None = None) -> dict[str, Any]:
    """Counts that drive the project card's stage checklist and Home; cycles counted as the prompt chooser does.
    Read once per unit of work (every member's Home in a batch asks for it)."""
    assert project.id is not None
    today = today or utcnow().date()
    return dict(
        remembered(session, ("progress", project.id, today), lambda: _progress(session, project, today))
    )


def _progress(session: Session, project: Project, today: date) -> dict[str, Any]:
    assert project.id is not None
    measures = measures_repo.measures_for_project(session, project_id=project.id)
    measure_ids = [m.id for m in measures]
    with_data = 0
    if measure_ids:
        with_data = session.exec(
            select(func.count(func.distinct(DataPoint.measure_id))).where(
                col(DataPoint.measure_id).in_(measure_ids)
            )
        ).one()
    cycles = list(session.exec(select(PdsaCycle).where(PdsaCycle.project_id == project.id)))
    counts = count_cycles(((c.status, c.end_date) for c in cycles), today=today)
    answers_by_stage: dict[str, int] = {}
    for stage, count in session.exec(
        select(Answer.stage, func.count()).where(Answer.project_id == project.id).group_by(Answer.stage)
    ):
        answers_by_stage[stage] = count
    partners = members(session, project_id=project.id, role="partner")
    return {
        "measure_count": len(measures),
        "balancing_count": sum(1 for m in measures if m.measure_type == "balancing"),
        "measures_with_data": int(with_data),
        "open_cycles": counts.open,
        "cycles_awaiting_study": counts.awaiting_study,
        "studied_cycles": counts.studied,
        "acted_cycles": counts.acted,
        "cycles_with_involvement": sum(1 for c in cycles if c.involvement and not c.involvement_pending),
        "partner_count": sum(1 for p in partners if not p.stopped),
        "partners_consented": sum(1 for p in partners if p.consent == "given" and not p.stopped),
        "partners_waiting": sum(1 for p in partners if p.consent == "pending" and not p.stopped),
        "answers_by_stage": answers_by_stage,
    }
