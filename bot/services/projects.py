"""A channel's improvement project: starting, editing and showing it, as plain values.

Each use case opens and commits its own unit of work and returns frozen values; the listeners in
handlers/projects.py build the card and the modal from them and make the Slack calls afterwards.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from bot.core.checklist import StageCheck, done_map
from bot.services import checklist as checklist_service
from storage import repositories as repo
from storage import schedule_repo
from storage.db import unit_of_work
from storage.models import Project

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProjectCard:
    """What the project card shows, copied out of the session."""

    project_id: int
    fields: dict[str, Any]  # the project's columns (name, aim, focus_groups, target, ...)
    leads: tuple[str, ...]
    partner_count: int  # partners taking part (they said yes)
    stages_done: dict[str, bool]
    measure_count: int
    open_cycles: int
    channel_id: str
    card_ts: str | None
    checks: tuple[StageCheck, ...] = ()  # the framework's stages, each ticked only by its evidence (issue 14)
    racism_context: str = ""  # the lead's answer to "where might racism be operating here?"
    partners_waiting: int = 0  # partners named who have not said yes or no yet


@dataclass(frozen=True)
class EditForm:
    """The edit form's starting values, or why the person cannot edit: status "ok", "no_project" or "not_lead"."""

    status: str
    fields: dict[str, Any]
    leads: tuple[str, ...] = ()
    partners: tuple[str, ...] = ()


@dataclass(frozen=True)
class Saved:
    """The result of saving the project form: status "saved", "exists", "not_lead" or "failed" (database)."""

    status: str
    project_id: int | None = None


def card_data(session: Session, project: Project) -> ProjectCard:
    """The card's values, inside the caller's unit of work."""
    assert project.id is not None
    progress = repo.project_progress(session, project=project)
    checks = tuple(checklist_service.checklist_for(session, project, progress=progress))
    return ProjectCard(
        project_id=project.id,
        fields=project.model_dump(),
        leads=tuple(m.user_id for m in repo.members(session, project_id=project.id, role="lead")),
        partner_count=progress["partners_consented"],
        stages_done=done_map(list(checks)),
        measure_count=progress["measure_count"],
        open_cycles=progress["open_cycles"],
        channel_id=project.channel_id,
        card_ts=project.card_ts,
        checks=checks,
        racism_context=project.racism_context,
        partners_waiting=progress["partners_waiting"],
    )


def channel_card(engine: Engine, *, team_id: str, channel_id: str) -> ProjectCard | None:
    """The channel's project card, or None when the channel has no project."""
    with unit_of_work(engine) as session:
        project = repo.project_for_channel(session, team_id=team_id, channel_id=channel_id)
        return card_data(session, project) if project is not None else None


def project_card(engine: Engine, *, team_id: str, project_id: int) -> ProjectCard | None:
    """The workspace's project's card, or None."""
    with unit_of_work(engine) as session:
        project = repo.get_project(session, team_id=team_id, project_id=project_id)
        return card_data(session, project) if project is not None else None


def channel_project_name(engine: Engine, *, team_id: str, channel_id: str) -> str | None:
    with unit_of_work(engine) as session:
        project = repo.project_for_channel(session, team_id=team_id, channel_id=channel_id)
        return project.name if project is not None else None


def project_channel(engine: Engine, *, team_id: str, project_id: int) -> str | None:
    """The channel of the workspace's project, or None."""
    with unit_of_work(engine) as session:
        project = repo.get_project(session, team_id=team_id, project_id=project_id)
        return project.channel_id if project is not None else None


def edit_form(engine: Engine, *, team_id: str, channel_id: str, user_id: str) -> EditForm:
    """The channel's project as the edit form shows it, for one of its leads."""
    with unit_of_work(engine) as session:
        project = repo.project_for_channel(session, team_id=team_id, channel_id=channel_id)
        if project is None or project.id is None:
            return EditForm("no_project", {})
        if not repo.is_lead(session, project_id=project.id, user_id=user_id):
            return EditForm("not_lead", {})
        return EditForm(
            "ok",
            project.model_dump(),
            leads=tuple(m.user_id for m in repo.members(session, project_id=project.id, role="lead")),
            partners=tuple(m.user_id for m in repo.members(session, project_id=project.id, role="partner")),
        )


def save_project(
    engine: Engine,
    *,
    team_id: str,
    enterprise_id: str | None,
    channel_id: str,
    user_id: str,
    is_new: bool,
    project_id: int | None,
    fields: dict[str, Any],
    timezone: str,
) -> Saved:
    """Create the channel's project or apply a lead's edits (with leads and partners), in one unit of work."""
    fields = dict(fields)
    leads, partners = fields.pop("leads"), fields.pop("partners")
    try:
        with unit_of_work(engine) as session:
            if is_new:
                if repo.project_for_channel(session, team_id=team_id, channel_id=channel_id) is not None:
                    return Saved("exists")
                project = repo.create_project(
                    session,
                    team_id=team_id,
                    enterprise_id=enterprise_id,
                    channel_id=channel_id,
                    created_by=user_id,
                    leads=leads,
                    partners=partners,
                    timezone=timezone,
                    **fields,
                )
            else:
                found = repo.get_project(session, team_id=team_id, project_id=project_id or 0)
                if (
                    found is None
                    or found.id is None
                    or not repo.is_lead(session, project_id=found.id, user_id=user_id)
                ):
                    return Saved("not_lead")
                project = found
                repo.update_project(session, project=project, changed_by=user_id, **fields)
                repo.set_members(session, project=project, role="lead", user_ids=leads, added_by=user_id)
                repo.set_members(
                    session, project=project, role="partner", user_ids=partners, added_by=user_id
                )
            saved_id = project.id
    except SQLAlchemyError:
        logger.exception("Saving the project failed")
        return Saved("failed")
    return Saved("saved", saved_id)


def ensure_schedules(engine: Engine, *, team_id: str, project_id: int) -> None:
    """The project's default schedules, created if missing."""
    with unit_of_work(engine) as session:
        saved = repo.get_project(session, team_id=team_id, project_id=project_id)
        if saved is not None:
            schedule_repo.ensure_default_schedules(session, project=saved)


def record_card(engine: Engine, *, team_id: str, project_id: int, ts: str) -> None:
    """Remember where the project card was posted."""
    with unit_of_work(engine) as session:
        found = repo.get_project(session, team_id=team_id, project_id=project_id)
        if found is not None:
            repo.set_card_ts(session, project=found, ts=ts)


def loggable_projects(session: Session, *, team_id: str, user_id: str) -> list[Project]:
    """Projects where the person is a lead or team member (partners do not log data), oldest first, once each."""
    seen: dict[int, Project] = {}
    for project, role in repo.projects_for_user(session, team_id=team_id, user_id=user_id):
        if role in ("lead", "member") and project.id is not None:
            seen.setdefault(project.id, project)
    return list(seen.values())
