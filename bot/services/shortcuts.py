"""The shortcuts' use cases: a message saved as an observation in a PDSA cycle's Do log, and the projects a person
may log a measure for.

Each opens and commits its own unit of work and returns plain values; handlers/shortcuts.py builds the forms and
makes the Slack calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from bot.services.pdsa import local_today
from bot.services.projects import loggable_projects
from storage import measures_repo, pdsa_repo
from storage import repositories as repo
from storage.db import unit_of_work
from storage.models import Project


@dataclass(frozen=True)
class OpenCycle:
    id: int
    ref: str  # "N.S": series number and ramp step
    title: str


@dataclass(frozen=True)
class ChannelCycles:
    """The channel's project (None: the channel has none) and its planned or running cycles."""

    project_id: int | None
    cycles: tuple[OpenCycle, ...] = ()


@dataclass(frozen=True)
class LogTarget:
    """A project a person may log a measure for, with what the log form needs."""

    project_id: int
    name: str
    channel_id: str
    focus_groups: tuple[str, ...]
    today: date  # in the project's time zone
    measures: tuple[dict[str, Any], ...]  # the project's measures' columns, in list order


def channel_cycles(engine: Engine, *, team_id: str, channel_id: str) -> ChannelCycles:
    with unit_of_work(engine) as session:
        project = repo.project_for_channel(session, team_id=team_id, channel_id=channel_id)
        if project is None or project.id is None:
            return ChannelCycles(None)
        cycles = tuple(
            OpenCycle(
                cycle.id, f"{pdsa_repo.series_number(session, cycle=cycle)}.{cycle.ramp_step}", cycle.title
            )
            for cycle in pdsa_repo.list_cycles(session, project_id=project.id)
            if cycle.status in pdsa_repo.OPEN_STATUSES and cycle.id is not None
        )
        return ChannelCycles(project.id, cycles)


def add_observation(
    engine: Engine, *, team_id: str, user_id: str, cycle_id: int, project_id: int | None, text: str
) -> OpenCycle | None:
    """Save the words in the cycle's Do log (not who wrote the message). The cycle is a claim from the form: it must
    be an open cycle of the project the form was opened for; None (nothing saved) otherwise."""
    with unit_of_work(engine) as session:
        cycle = pdsa_repo.get_cycle_by_id(session, team_id=team_id, cycle_id=cycle_id)
        if (
            cycle is None
            or cycle.id is None
            or cycle.project_id != project_id
            or cycle.status not in pdsa_repo.OPEN_STATUSES
        ):
            return None
        pdsa_repo.add_entry(
            session,
            cycle=cycle,
            kind="do",
            user_id=user_id,
            data={"observations": text, "from_message": True},
        )
        ref = f"{pdsa_repo.series_number(session, cycle=cycle)}.{cycle.ramp_step}"
        return OpenCycle(cycle.id, ref, cycle.title)


def only_loggable_project(session: Session, *, team_id: str, user_id: str) -> int | None:
    """The person's one loggable project, inside the access check's unit of work (none or several: None)."""
    projects = loggable_projects(session, team_id=team_id, user_id=user_id)
    return int(projects[0].id or 0) if len(projects) == 1 else None


def _target(session: Session, project: Project) -> LogTarget:
    assert project.id is not None
    measures = measures_repo.measures_for_project(session, project_id=project.id)
    return LogTarget(
        project_id=project.id,
        name=project.name,
        channel_id=project.channel_id,
        focus_groups=tuple(project.focus_groups or ()),
        today=local_today(project),
        measures=tuple(m.model_dump() for m in measures),
    )


def log_targets(engine: Engine, *, team_id: str, user_id: str) -> tuple[LogTarget, ...]:
    """Projects where the person is a lead or team member (partners do not log data), oldest first, once each."""
    with unit_of_work(engine) as session:
        return tuple(
            _target(session, p) for p in loggable_projects(session, team_id=team_id, user_id=user_id)
        )


def log_target(engine: Engine, *, team_id: str, user_id: str, project_id: int) -> LogTarget | None:
    """One of those projects, chosen by id (a claim): None unless the person may log data for it."""
    with unit_of_work(engine) as session:
        chosen = next(
            (p for p in loggable_projects(session, team_id=team_id, user_id=user_id) if p.id == project_id),
            None,
        )
        return _target(session, chosen) if chosen is not None else None
