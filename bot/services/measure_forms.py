"""Defining, listing and logging a project's measures: what the /measure forms show, and saving what they say.
Each use case opens and commits its own unit of work and returns plain values (a measure as its column dict)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from bot.core.extracts import period_start
from bot.services import measures as importing
from storage import measures_repo
from storage import repositories as repo
from storage.db import unit_of_work
from storage.models import Project

logger = logging.getLogger(__name__)

PROJECT_GONE = "This project no longer exists."
DATABASE_PROBLEM = (
    "We couldn't save this just now (a database problem). Everything you typed is still here: press the button "
    "again in a moment."
)


def local_today(project: Project) -> date:
    return datetime.now(ZoneInfo(project.timezone)).date()


def previous_period(today: date, period: str) -> date:
    """The start of the last complete period: what a team usually enters."""
    current = period_start(today, period)  # type: ignore[arg-type]
    return period_start(current - timedelta(days=1), period)  # type: ignore[arg-type]


def _project(
    session: Session, *, team_id: str, channel_id: str | None, project_id: int | None
) -> Project | None:
    if project_id is not None:
        return repo.get_project(session, team_id=team_id, project_id=project_id)
    return repo.project_for_channel(session, team_id=team_id, channel_id=channel_id or "")


def project_in_channel(engine: Engine, *, team_id: str, channel_id: str) -> int | None:
    with unit_of_work(engine) as session:
        project = repo.project_for_channel(session, team_id=team_id, channel_id=channel_id)
        return project.id if project is not None else None


# ---------------------------------------------------------------- /measure new


@dataclass(frozen=True)
class MeasureForm:
    project_id: int
    channel_id: str
    reference_group: str
    has_balancing: bool


def measure_form(
    engine: Engine, *, team_id: str, channel_id: str | None = None, project_id: int | None = None
) -> MeasureForm | None:
    """The measure form for the channel's project (or the project by id); None when there is none."""
    with unit_of_work(engine) as session:
        project = _project(session, team_id=team_id, channel_id=channel_id, project_id=project_id)
        if project is None or project.id is None:
            return None
        measures = measures_repo.measures_for_project(session, project_id=project.id)
        return MeasureForm(
            project.id,
            project.channel_id,
            project.reference_group,
            any(m.measure_type == "balancing" for m in measures),
        )


def focus_groups(engine: Engine, *, team_id: str, project_id: int) -> list[str] | str:
    """The project's focus groups, to read the measure form against; the words for the form when it is gone."""
    try:
        with unit_of_work(engine) as session:
            project = repo.get_project(session, team_id=team_id, project_id=project_id)
            return PROJECT_GONE if project is None or project.id is None else list(project.focus_groups)
    except SQLAlchemyError:
        logger.exception("Reading the measure's project failed")
        return DATABASE_PROBLEM


@dataclass(frozen=True)
class MeasureSaved:
    measure: dict[str, Any]
    has_balancing: bool
    project_id: int
    channel_id: str


def save_measure(
    engine: Engine, *, team_id: str, project_id: int, user_id: str, fields: dict[str, Any]
) -> MeasureSaved | str:
    """Create the measure, unless the project already has one by that name; one short unit of work, so the
    words for the form come back when it cannot be saved (a database failure included)."""
    try:
        with unit_of_work(engine) as session:
            project = repo.get_project(session, team_id=team_id, project_id=project_id)
            if project is None or project.id is None:
                return PROJECT_GONE
            if measures_repo.find_measure_by_name(session, project_id=project.id, name=fields["name"]):
                return (
                    f"This project already has a measure called “{fields['name']}”. Choose another name, "
                    "or use `/measure log` to add data to that one."
                )
            measure = measures_repo.create_measure(session, project=project, created_by=user_id, **fields)
            repo.audit(
                session,
                team_id=team_id,
                project_id=project.id,
                user_id=user_id,
                action="measure.create",
                detail={"measure_id": measure.id},
            )
            others = measures_repo.measures_for_project(session, project_id=project.id)
            has_balancing = any(m.measure_type == "balancing" for m in others)
            return MeasureSaved(measure.model_dump(), has_balancing, project.id, project.channel_id)
    except SQLAlchemyError:
        logger.exception("Saving the measure failed")
        return DATABASE_PROBLEM


# ---------------------------------------------------------------- /measure list


@dataclass(frozen=True)
class MeasureList:
    project_name: str
    rows: list[dict[str, Any]]  # each measure's columns, its latest period and its completeness


def measure_list(engine: Engine, *, team_id: str, channel_id: str) -> MeasureList | None:
    with unit_of_work(engine) as session:
        project = repo.project_for_channel(session, team_id=team_id, channel_id=channel_id)
        if project is None or project.id is None:
            return None
        rows: list[dict[str, Any]] = []
        for measure in measures_repo.measures_for_project(session, project_id=project.id):
            assert measure.id is not None
            rows.append(
                {
                    **measure.model_dump(),
                    "latest": measures_repo.latest_period(session, measure_id=measure.id),
                    "completeness": measures_repo.completeness(
                        session, measure_id=measure.id, kind=measure.kind
                    ),
                }
            )
        return MeasureList(project.name, rows)


# ---------------------------------------------------------------- /measure log


@dataclass(frozen=True)
class LogForm:
    """What the log form needs; `measures` is empty when the project has none yet."""

    project_id: int
    channel_id: str
    focus_groups: list[str]
    measures: list[dict[str, Any]] = field(default_factory=list)
    measure_id: int = 0  # the chosen measure (the first when none is chosen)
    reference_group: str = "A"  # the chosen measure's comparison group
    period_initial: date | None = None  # the last complete period of the chosen measure


def log_form(
    engine: Engine,
    *,
    team_id: str,
    channel_id: str | None = None,
    project_id: int | None = None,
    measure_id: int | None = None,
) -> LogForm | None:
    with unit_of_work(engine) as session:
        project = _project(session, team_id=team_id, channel_id=channel_id, project_id=project_id)
        if project is None or project.id is None:
            return None
        form = LogForm(project.id, project.channel_id, list(project.focus_groups))
        measures = measures_repo.measures_for_project(session, project_id=project.id)
        if not measures:
            return form
        measure = next((m for m in measures if m.id == measure_id), measures[0])
        return LogForm(
            form.project_id,
            form.channel_id,
            form.focus_groups,
            [m.model_dump() for m in measures],
            int(measure.id or 0),
            measure.reference_group,
            previous_period(local_today(project), measure.period),
        )


@dataclass(frozen=True)
class LogTarget:
    kind: str
    period: str
    today: date  # in the project's time zone: no figures for the future


def log_target(engine: Engine, *, team_id: str, project_id: int, measure_id: int) -> LogTarget | None:
    """The measure a log form saves into, when it is still this project's."""
    with unit_of_work(engine) as session:
        measure = measures_repo.get_measure(session, team_id=team_id, measure_id=measure_id)
        project = repo.get_project(session, team_id=team_id, project_id=project_id)
        if measure is None or project is None or measure.project_id != project.id:
            return None
        return LogTarget(measure.kind, measure.period, local_today(project))


@dataclass(frozen=True)
class Logged:
    outcome: importing.ImportOutcome
    blank: list[str]  # categories with no row for the period (not values)
    kind: str
    channel_id: str


def save_log(
    engine: Engine,
    *,
    team_id: str,
    project_id: int,
    measure_id: int,
    start: date,
    rows: dict[str, importing.LoggedRow],
    user_id: str,
) -> Logged | None:
    """Save one period's figures as one batch (replacing earlier ones, history kept). None when the measure went."""
    with unit_of_work(engine) as session:
        measure = measures_repo.get_measure(session, team_id=team_id, measure_id=measure_id)
        project = repo.get_project(session, team_id=team_id, project_id=project_id)
        if measure is None or project is None or measure.project_id != project.id:
            logger.info("Measure %s went away before its figures were saved", measure_id)
            return None
        outcome = importing.log_period(
            session, measure=measure, period_start=start, rows=rows, user_id=user_id
        )
        blank = (
            []
            if measure.kind == "value"
            else measures_repo.blank_missing_categories(
                session, measure_id=measure.id or 0, period_start=start
            )
        )
        return Logged(outcome, blank, measure.kind, project.channel_id)
