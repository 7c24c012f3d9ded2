"""The team reflection: who is on the team, how its make-up may shape the work, and who else to involve."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from bot.core import registers as rules
from bot.services.registers import ProjectRef, ref
from storage import registers_repo
from storage import repositories as repo
from storage.db import unit_of_work
from storage.models import Project

ROLE_NAMES = {"lead": "lead", "member": "team member", "partner": "service-user partner"}


@dataclass(frozen=True)
class TeamView:
    project: ProjectRef
    roles: str = ""
    composition: str = ""
    missing_voices: str = ""
    who_else: str = ""
    people: list[tuple[str, str]] = field(
        default_factory=list
    )  # (user id, role); partners only once they said yes
    updated_by: str | None = None
    updated_at: datetime | None = None
    team_changed: bool = False  # people joined or left since the team last reflected
    partner_description: bool = False  # partners can be invited (they are told what the project is about)


@dataclass(frozen=True)
class TeamSaved:
    errors: dict[str, str] = field(default_factory=dict)
    view: TeamView | None = None
    staff_added: list[str] = field(default_factory=list)
    partners_added: list[str] = field(default_factory=list)


def _current_people(session: Session, project_id: int) -> list[tuple[str, str]]:
    return [
        (m.user_id, m.role)
        for m in repo.members(session, project_id=project_id)
        if not m.stopped and (m.role != "partner" or m.consent == "given")
    ]


def _view(session: Session, project: Project, *, user_id: str) -> TeamView:
    assert project.id is not None
    row = registers_repo.get_team(session, project_id=project.id)
    people = _current_people(session, project.id)
    seen = set(row.members_seen) if row is not None else set()
    return TeamView(
        project=ref(session, project, user_id=user_id),
        roles=row.roles if row else "",
        composition=row.composition if row else "",
        missing_voices=row.missing_voices if row else "",
        who_else=row.who_else if row else "",
        people=people,
        updated_by=row.updated_by if row else None,
        updated_at=row.updated_at if row else None,
        team_changed=row is not None and seen != {u for u, _ in people},
        partner_description=bool(project.partner_description.strip()),
    )


def team_view(engine: Engine, *, team_id: str, project_id: int, user_id: str) -> TeamView | None:
    with unit_of_work(engine) as session:
        project = repo.get_project(session, team_id=team_id, project_id=project_id)
        return _view(session, project, user_id=user_id) if project is not None else None


def team_view_in(session: Session, project: Project) -> TeamView:
    """The reflection read inside the caller's unit of work (App Home)."""
    return _view(session, project, user_id="")


def save_team(
    engine: Engine, *, team_id: str, project_id: int, user_id: str, raw: dict[str, Any]
) -> TeamSaved:
    """Save the reflection (an edit keeps the earlier version) and add the people a lead invited.

    Staff join as team members; service-user partners join as partners whose consent is still to be asked
    (the caller then sends the partners' consent message through the existing consent flow).
    """
    with unit_of_work(engine) as session:
        project = repo.get_project(session, team_id=team_id, project_id=project_id)
        if project is None or project.id is None:
            return TeamSaved(errors={"roles": "This project no longer exists, so nothing was saved."})
        leads = [m.user_id for m in repo.members(session, project_id=project.id, role="lead")]
        fields, errors = rules.parse_team(raw, leads=leads, may_invite=user_id in leads)
        if errors:
            return TeamSaved(errors=errors)
        staff = registers_repo.add_people(
            session, project=project, role="member", user_ids=fields["invite_staff"], added_by=user_id
        )
        partners = registers_repo.add_people(
            session, project=project, role="partner", user_ids=fields["invite_partners"], added_by=user_id
        )
        people = [u for u, _ in _current_people(session, project.id)]
        registers_repo.save_team(
            session, project=project, changed_by=user_id, fields=fields, members_seen=people
        )
        return TeamSaved(
            view=_view(session, project, user_id=user_id), staff_added=staff, partners_added=partners
        )
