"""Data ownership: a project's rows for export, deleting a project, and stopping a workspace that uninstalled."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, cast

from slack_sdk.oauth.installation_store import Installation
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from sqlalchemy import ColumnElement, CursorResult, Engine, delete, or_, update
from sqlmodel import Session, SQLModel, col, select

from storage import answers_repo, registers_repo, schedule_repo
from storage.db import unit_of_work
from storage.models import (
    Answer,
    AuditLog,
    ChangeIdea,
    DataBatch,
    DataPoint,
    DataRevision,
    Delivery,
    Driver,
    DriverHistory,
    Measure,
    PdsaCycle,
    PdsaEntry,
    Project,
    ProjectHistory,
    ProjectMember,
    PromptChoice,
    Schedule,
    SchedulerState,
    ViewGrant,
    utcnow,
)
from storage.repositories import audit

logger = logging.getLogger(__name__)

# Tables a project's deletion never touches: the audit trail must outlive the project, and the rest are not
# per-project. A test checks every other table is covered by delete_project, so a new table cannot be forgotten.
NOT_PROJECT_DATA = frozenset(
    {
        "audit_log",
        "processed_event",
        "alembic_version",
        "slack_installations",
        "slack_bots",
        "slack_oauth_states",
        "welcome",
        "leader_term",  # the scheduler leader's fencing token: one row, no project in it
    }
)


def _rowcount(result: Any) -> int:
    return int(cast(CursorResult[Any], result).rowcount)


# --- export ---------------------------------------------------------------------------------------------------


def _dump(rows: Sequence[SQLModel]) -> list[dict[str, Any]]:
    return [row.model_dump() for row in rows]


def export_rows(session: Session, *, project_id: int) -> dict[str, list[dict[str, Any]]]:
    """Every row a project owns, as plain dicts keyed by table (read in one transaction, so they agree)."""
    project = session.get(Project, project_id)
    assert project is not None
    measures = list(
        session.exec(select(Measure).where(Measure.project_id == project_id).order_by(col(Measure.id)))
    )
    measure_ids = [m.id for m in measures]
    points = session.exec(
        select(DataPoint)
        .where(col(DataPoint.measure_id).in_(measure_ids))
        .order_by(col(DataPoint.measure_id), col(DataPoint.period_start), col(DataPoint.group_code))
    ).all()
    batches = session.exec(
        select(DataBatch).where(col(DataBatch.measure_id).in_(measure_ids)).order_by(col(DataBatch.id))
    ).all()
    revisions = session.exec(
        select(DataRevision)
        .where(col(DataRevision.measure_id).in_(measure_ids))
        .order_by(col(DataRevision.id))
    ).all()
    cycles = list(
        session.exec(
            select(PdsaCycle).where(PdsaCycle.project_id == project_id).order_by(col(PdsaCycle.number))
        )
    )
    entries = session.exec(
        select(PdsaEntry)
        .where(col(PdsaEntry.cycle_id).in_([c.id for c in cycles]))
        .order_by(col(PdsaEntry.id))
    ).all()
    return {
        "project": [project.model_dump()],
        "members": _dump(
            session.exec(
                select(ProjectMember)
                .where(ProjectMember.project_id == project_id)
                .order_by(col(ProjectMember.id))
            ).all()
        ),
        "history": _dump(
            session.exec(
                select(ProjectHistory)
                .where(ProjectHistory.project_id == project_id)
                .order_by(col(ProjectHistory.id))
            ).all()
        ),
        "measures": _dump(measures),
        "data": _dump(points),
        "batches": _dump(batches),
        "revisions": _dump(revisions),
        "pdsa_cycles": _dump(cycles),
        "pdsa_entries": _dump(entries),
        "drivers": _dump(
            session.exec(select(Driver).where(Driver.project_id == project_id).order_by(col(Driver.id))).all()
        ),
        "change_ideas": _dump(
            session.exec(
                select(ChangeIdea).where(ChangeIdea.project_id == project_id).order_by(col(ChangeIdea.id))
            ).all()
        ),
        "driver_history": _dump(
            session.exec(
                select(DriverHistory)
                .where(DriverHistory.project_id == project_id)
                .order_by(col(DriverHistory.id))
            ).all()
        ),
        "answers": _visible_answers(session, project),
        **registers_repo.export_rows(session, project_id=project_id),
        "schedules": _dump(
            session.exec(
                select(Schedule).where(Schedule.project_id == project_id).order_by(col(Schedule.id))
            ).all()
        ),
        "audit_log": _dump(
            session.exec(
                select(AuditLog).where(AuditLog.project_id == project_id).order_by(col(AuditLog.id))
            ).all()
        ),
    }


def _visible_answers(session: Session, project: Project) -> list[dict[str, Any]]:
    """Answers the team may see, oldest first; a pooled anonymous answer carries its pool's date, nothing finer."""
    rows = []
    for shown in reversed(answers_repo.visible_answers(session, project=project)):
        row = shown.answer.model_dump()
        if shown.answer.anonymous:
            row["created_at"] = shown.day
            row["occurrence_date"] = shown.day
        rows.append(row)
    return rows


# --- delete ---------------------------------------------------------------------------------------------------


def delete_where(session: Session, model: type[SQLModel], condition: ColumnElement[bool]) -> int:
    """Delete the rows of one table matching `condition`; returns how many went."""
    statement = delete(model).where(condition).execution_options(synchronize_session=False)
    return _rowcount(session.exec(statement))


def delete_project(session: Session, *, project_id: int, deleted_by: str) -> dict[str, int]:
    """Delete every row of a project, children first; returns the number of rows deleted per table.

    The caller's transaction makes it all or nothing. An AuditLog row records who, when, the project's name and the
    counts (never the data itself); earlier audit rows for the project are kept as its trail.
    """
    project = session.get(Project, project_id)
    assert project is not None
    team_id, name = project.team_id, project.name
    measures = select(Measure.id).where(Measure.project_id == project_id)
    batches = select(DataBatch.id).where(col(DataBatch.measure_id).in_(measures))
    cycles = select(PdsaCycle.id).where(PdsaCycle.project_id == project_id)
    schedules = select(Schedule.id).where(Schedule.project_id == project_id)
    deliveries = select(Delivery.id).where(
        or_(col(Delivery.project_id) == project_id, col(Delivery.schedule_id).in_(schedules))
    )
    steps: list[tuple[str, type[SQLModel], ColumnElement[bool]]] = [
        *registers_repo.deletion_steps(project_id),
        ("answer", Answer, or_(col(Answer.project_id) == project_id, col(Answer.cycle_id).in_(cycles))),
        ("delivery", Delivery, col(Delivery.id).in_(deliveries)),
        ("scheduler_state", SchedulerState, col(SchedulerState.schedule_id).in_(schedules)),
        ("schedule", Schedule, col(Schedule.project_id) == project_id),
        ("prompt_choice", PromptChoice, col(PromptChoice.project_id) == project_id),
        ("pdsa_entry", PdsaEntry, col(PdsaEntry.cycle_id).in_(cycles)),
        ("pdsa_cycle", PdsaCycle, col(PdsaCycle.project_id) == project_id),
        ("driver_history", DriverHistory, col(DriverHistory.project_id) == project_id),
        ("change_idea", ChangeIdea, col(ChangeIdea.project_id) == project_id),
        ("driver", Driver, col(Driver.project_id) == project_id),
        (
            "data_revision",
            DataRevision,
            or_(col(DataRevision.measure_id).in_(measures), col(DataRevision.batch_id).in_(batches)),
        ),
        ("data_point", DataPoint, col(DataPoint.measure_id).in_(measures)),
        ("data_batch", DataBatch, col(DataBatch.measure_id).in_(measures)),
        ("measure", Measure, col(Measure.project_id) == project_id),
        ("project_member", ProjectMember, col(ProjectMember.project_id) == project_id),
        ("project_history", ProjectHistory, col(ProjectHistory.project_id) == project_id),
        ("project", Project, col(Project.id) == project_id),
    ]
    session.expunge(project)
    counts = {table: delete_where(session, model, condition) for table, model, condition in steps}
    delete_where(
        session, ViewGrant, col(ViewGrant.project_id) == project_id
    )  # open forms' bookkeeping, not data
    audit(
        session,
        team_id=team_id,
        project_id=project_id,
        user_id=deleted_by,
        action="project.delete",
        detail={"project_name": name, "project_id": project_id, "rows_deleted": counts},
    )
    session.flush()
    return counts


# --- workspaces -----------------------------------------------------------------------------------------------


def stop_workspace(
    session: Session,
    *,
    team_id: str | None,
    enterprise_id: str | None,
    reason: str,
    whole_enterprise: bool = False,
) -> int:
    """Stop a workspace's schedules (its data stays until a lead exports or deletes it) and audit it.

    `whole_enterprise` covers an org-wide (Enterprise Grid) install, whose events may carry no team id.
    Returns how many schedules were stopped.
    """
    stopped = 0
    if team_id:
        stopped += schedule_repo.disable_for_team(session, team_id=team_id, reason=reason)
    if whole_enterprise and enterprise_id:
        result = session.exec(
            update(Schedule)
            .where(col(Schedule.enterprise_id) == enterprise_id, col(Schedule.disabled_reason).is_(None))
            .values(disabled_reason=reason[:64], updated_at=utcnow())
        )
        stopped += _rowcount(result)
    audit(
        session,
        team_id=team_id or enterprise_id or "",
        project_id=None,
        user_id=None,
        action=f"workspace.{reason}",
        detail={"enterprise_id": enterprise_id, "schedules_stopped": stopped},
    )
    return stopped


class ReinstallAwareInstallationStore(SQLAlchemyInstallationStore):
    """slack_sdk's SQLAlchemy store, plus: installing the app again restarts schedules an uninstall stopped."""

    def __init__(self, client_id: str, engine: Engine) -> None:
        super().__init__(client_id=client_id, engine=engine)
        self._engine = engine

    def save(self, installation: Installation) -> None:
        super().save(installation)
        team_id, enterprise_id = installation.team_id, installation.enterprise_id
        with unit_of_work(self._engine) as session:
            resumed = schedule_repo.enable_for_team(session, team_id=team_id) if team_id else 0
            if installation.is_enterprise_install and enterprise_id:
                result = session.exec(
                    update(Schedule)
                    .where(
                        col(Schedule.enterprise_id) == enterprise_id,
                        col(Schedule.disabled_reason).is_not(None),
                    )
                    .values(disabled_reason=None, updated_at=utcnow())
                )
                resumed += _rowcount(result)
            audit(
                session,
                team_id=team_id or enterprise_id or "",
                project_id=None,
                user_id=installation.user_id,
                action="workspace.installed",
                detail={"enterprise_id": enterprise_id, "schedules_resumed": resumed},
            )
