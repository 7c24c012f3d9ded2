"""Data ownership: a lead's export, deleting a project, and stopping a workspace that removed the app.

Each use case opens and commits its own unit of work and returns plain values; the listeners in
handlers/ownership.py make the Slack calls (names, the DM, the files, the notice) outside any transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from storage import ownership_repo as own
from storage import repositories as repo
from storage.db import unit_of_work

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LeadCheck:
    """The channel's project for one of its leads: status "ok" (with project_id), "no_project" or "not_lead"
    (with the project's name and leads, to say whom to ask)."""

    status: str
    project_id: int | None = None
    project_name: str = ""
    leads: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExportData:
    rows: dict[str, list[dict[str, Any]]] = field(repr=False)  # the bundle's rows by table (bot.core.export)
    project_name: str = ""
    timezone: str = "Europe/London"


@dataclass(frozen=True)
class ProjectRef:
    project_id: int
    name: str
    channel_id: str


@dataclass(frozen=True)
class Deletion:
    """A delete request's result: status "deleted", "gone", "not_lead", "mismatch" or "failed" (database; nothing
    removed). `people` are the leads and members whose Home must be refreshed after a deletion."""

    status: str
    project_name: str = ""
    channel_id: str = ""
    leads: tuple[str, ...] = ()
    people: tuple[str, ...] = ()


def _leads(session: Session, project_id: int) -> tuple[str, ...]:
    return tuple(m.user_id for m in repo.members(session, project_id=project_id, role="lead"))


def lead_project(engine: Engine, *, team_id: str, channel_id: str, user_id: str) -> LeadCheck:
    with unit_of_work(engine) as session:
        project = repo.project_for_channel(session, team_id=team_id, channel_id=channel_id)
        if project is None or project.id is None:
            return LeadCheck("no_project")
        if not repo.is_lead(session, project_id=project.id, user_id=user_id):
            return LeadCheck("not_lead", project_name=project.name, leads=_leads(session, project.id))
        return LeadCheck("ok", project_id=project.id, project_name=project.name)


def is_lead(engine: Engine, *, project_id: int, user_id: str) -> bool:
    with unit_of_work(engine) as session:
        return repo.is_lead(session, project_id=project_id, user_id=user_id)


def export_data(engine: Engine, *, team_id: str, user_id: str, project_id: int) -> ExportData | None:
    """Everything the export bundle holds, for a lead of the project; None otherwise (or when it is gone)."""
    with unit_of_work(engine) as session:
        project = repo.get_project(session, team_id=team_id, project_id=project_id)
        if project is None or not repo.is_lead(session, project_id=project_id, user_id=user_id):
            return None
        return ExportData(own.export_rows(session, project_id=project_id), project.name, project.timezone)


def record_export(
    engine: Engine, *, team_id: str, user_id: str, project_id: int, project_name: str, detail: dict[str, Any]
) -> None:
    """The audit line for an export: who, when and which project, never the numbers themselves."""
    with unit_of_work(engine) as session:
        repo.audit(
            session,
            team_id=team_id,
            project_id=project_id,
            user_id=user_id,
            action="project.export",
            detail={"project_name": project_name, **detail},
        )


def project_ref(engine: Engine, *, team_id: str, project_id: int) -> ProjectRef | None:
    with unit_of_work(engine) as session:
        project = repo.get_project(session, team_id=team_id, project_id=project_id)
        return ProjectRef(project_id, project.name, project.channel_id) if project is not None else None


def delete_project(
    engine: Engine, *, team_id: str, project_id: int, user_id: str, typed_name: str
) -> Deletion:
    """Delete the project, in one transaction, when a lead typed its name exactly; a failure removes nothing."""
    try:
        with unit_of_work(engine) as session:
            project = repo.get_project(session, team_id=team_id, project_id=project_id)
            if project is None:
                return Deletion("gone")
            if not repo.is_lead(session, project_id=project_id, user_id=user_id):
                return Deletion("not_lead", project_name=project.name, leads=_leads(session, project_id))
            name, channel_id = project.name, project.channel_id
            if typed_name != name:
                return Deletion("mismatch", project_name=name)
            people = tuple(
                m.user_id
                for m in repo.members(session, project_id=project_id)
                if m.role in ("lead", "member")
            )
            own.delete_project(session, project_id=project_id, deleted_by=user_id)
    except SQLAlchemyError:
        logger.exception("Deleting project %s failed; nothing was removed", project_id)
        return Deletion("failed")
    return Deletion("deleted", project_name=name, channel_id=channel_id, people=people)


def record_user_tokens_revoked(engine: Engine, *, team_id: str, users: int) -> None:
    """Only people's user tokens went (the bot's still works): noted, and the schedules carry on."""
    with unit_of_work(engine) as session:
        repo.audit(
            session,
            team_id=team_id,
            project_id=None,
            user_id=None,
            action="workspace.user_tokens_revoked",
            detail={"users": users},
        )


def stop_workspace(
    engine: Engine, *, team_id: str | None, enterprise_id: str | None, reason: str, whole_enterprise: bool
) -> int:
    """Stop the workspace's (or enterprise's) schedules; its data stay until a lead deletes them."""
    with unit_of_work(engine) as session:
        return own.stop_workspace(
            session,
            team_id=team_id,
            enterprise_id=enterprise_id,
            reason=reason,
            whole_enterprise=whole_enterprise,
        )
