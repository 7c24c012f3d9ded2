"""What the register surfaces share: the project a request is about, as plain values."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlmodel import Session

from storage import registers_repo
from storage import repositories as repo
from storage.db import unit_of_work
from storage.models import Project


@dataclass(frozen=True)
class ProjectRef:
    id: int
    team_id: str
    name: str
    channel_id: str
    is_lead: bool
    racism_context: str = ""


def ref(session: Session, project: Project, *, user_id: str) -> ProjectRef:
    assert project.id is not None
    return ProjectRef(
        id=project.id,
        team_id=project.team_id,
        name=project.name,
        channel_id=project.channel_id,
        is_lead=repo.is_lead(session, project_id=project.id, user_id=user_id),
        racism_context=project.racism_context,
    )


def project_here(engine: Engine, *, team_id: str, channel_id: str, user_id: str) -> ProjectRef | None:
    """The channel's project (None when it has none)."""
    with unit_of_work(engine) as session:
        project = repo.project_for_channel(session, team_id=team_id, channel_id=channel_id)
        return ref(session, project, user_id=user_id) if project is not None else None


def project_by_id(engine: Engine, *, team_id: str, project_id: int, user_id: str) -> ProjectRef | None:
    """A project of this workspace (the caller has authorised the person for it)."""
    with unit_of_work(engine) as session:
        project = repo.get_project(session, team_id=team_id, project_id=project_id)
        return ref(session, project, user_id=user_id) if project is not None else None


@dataclass(frozen=True)
class RegistersSummary:
    """What App Home shows of the registers (read inside the caller's unit of work)."""

    bias_total: int
    bias_open_actions: int
    missing_total: int
    missing_without_plan: int


def summary(session: Session, project: Project) -> RegistersSummary:
    assert project.id is not None
    bias = registers_repo.list_bias(session, project_id=project.id)
    missing = registers_repo.list_missing(session, project_id=project.id)
    return RegistersSummary(
        bias_total=len(bias),
        bias_open_actions=sum(1 for b in bias if b.action and b.status in ("open", "in_progress")),
        missing_total=len(missing),
        missing_without_plan=sum(
            1 for m in missing if not m.how_to_hear and m.status in ("open", "in_progress")
        ),
    )
