"""Planning a PDSA cycle: what the plan form shows (new, next in a ramp, edit) and saving what it says."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from bot.services import drivers, drivers_edit
from bot.services.pdsa import (
    MeasureRef,
    cycle_and_project,
    local_today,
    measure_ref,
    project_groups,
    ref_of,
)
from storage import measures_repo, pdsa_repo
from storage import repositories as repo
from storage.db import unit_of_work

logger = logging.getLogger(__name__)


@dataclass
class PlanForm:
    """What the plan modal needs."""

    project_id: int
    channel_id: str
    groups: list[str]
    measures: list[MeasureRef]
    earlier_cycles: list[tuple[int, str]] = field(default_factory=list)
    initial: dict[str, Any] | None = None
    continues_ref: str | None = None  # "N.S" of the next step when continuing a ramp
    closed: bool = False  # editing a closed (acted-on) cycle, as one of its leads
    cycle_id: int | None = None  # the cycle being edited
    ideas: list[tuple[int, str]] = field(default_factory=list)  # the driver diagram's change ideas
    drivers: list[tuple[int, str]] = field(default_factory=list)  # and its drivers (to add a new idea under)


def new_plan_form(
    engine: Engine, *, team_id: str, project_id: int, continue_from: int | None = None
) -> PlanForm | None:
    """The plan form for a new cycle; with `continue_from`, pre-filled from that cycle as the next step of its
    ramp (starting the day after it ended, or today, and lasting as long)."""
    with unit_of_work(engine) as session:
        project = repo.get_project(session, team_id=team_id, project_id=project_id)
        if project is None or project.id is None:
            return None
        form = PlanForm(
            project_id=project.id,
            channel_id=project.channel_id,
            groups=project_groups(project),
            measures=[
                measure_ref(m) for m in measures_repo.measures_for_project(session, project_id=project_id)
            ],
        )
        if continue_from is not None:
            previous = pdsa_repo.get_cycle_by_id(session, team_id=team_id, cycle_id=continue_from)
            if previous is not None and previous.project_id == project_id:
                length = previous.end_date - previous.start_date
                start = max(previous.end_date + timedelta(days=1), local_today(project))
                form.initial = {
                    **pdsa_repo.plan_snapshot(previous),
                    "continue_cycle_id": previous.id,
                    "start_date": start,
                    "end_date": start + length,
                }
                form.continues_ref = (
                    f"{pdsa_repo.series_number(session, cycle=previous)}.{previous.ramp_step + 1}"
                )
        form.ideas, form.drivers = drivers.plan_choices(session, project_id=project.id)
        form.earlier_cycles = [
            (int(c.id or 0), f"PDSA {ref_of(session, c)}: {c.title}"[:75])
            for c in pdsa_repo.list_cycles(session, project_id=project_id)
        ]
    return form


@dataclass(frozen=True)
class Refused:
    """Someone may not do this; the text says why and what to do."""

    text: str


def edit_plan_form(engine: Engine, *, team_id: str, cycle_id: int, user_id: str) -> PlanForm | Refused | None:
    """The plan form filled in from the cycle; a closed cycle only for the project's leads."""
    with unit_of_work(engine) as session:
        cycle, project = cycle_and_project(session, team_id=team_id, cycle_id=cycle_id)
        if cycle is None or project is None or project.id is None:
            return None
        if cycle.status == "acted" and not repo.is_lead(session, project_id=project.id, user_id=user_id):
            return Refused(
                f"PDSA {ref_of(session, cycle)} is closed (the team has acted on it). Only the project's leads "
                "can change a closed cycle; ask one of them."
            )
        ideas, driver_choices = drivers.plan_choices(session, project_id=project.id)
        return PlanForm(
            project_id=project.id,
            channel_id=project.channel_id,
            groups=project_groups(project),
            measures=[
                measure_ref(m) for m in measures_repo.measures_for_project(session, project_id=project.id)
            ],
            initial=pdsa_repo.plan_snapshot(cycle),
            closed=cycle.status == "acted",
            cycle_id=cycle.id,
            ideas=ideas,
            drivers=driver_choices,
        )


@dataclass(frozen=True)
class PlanCheck:
    """What a submitted plan is read against: the project's groups and measures."""

    groups: list[str]
    measures: list[MeasureRef]


PROJECT_GONE = "This project no longer exists."
CYCLE_GONE = "This cycle no longer exists."
CLOSED = "This cycle is closed: only the project's leads can change it."
DATABASE_PROBLEM = "We couldn't save this just now (a database problem). Everything you typed is still here: try again in a moment."


def _may_edit(session: Session, *, team_id: str, project_id: int, cycle_id: int, user_id: str) -> str | None:
    cycle = pdsa_repo.get_cycle_by_id(session, team_id=team_id, cycle_id=cycle_id)
    if cycle is None or cycle.project_id != project_id:
        return CYCLE_GONE
    if cycle.status == "acted" and not repo.is_lead(session, project_id=project_id, user_id=user_id):
        return CLOSED
    return None


def check_plan(engine: Engine, *, team_id: str, project_id: int) -> PlanCheck | str:
    """The project's groups and measures for reading the form; the words for the form when it is gone."""
    try:
        with unit_of_work(engine) as session:
            project = repo.get_project(session, team_id=team_id, project_id=project_id)
            if project is None or project.id is None:
                return PROJECT_GONE
            measures = measures_repo.measures_for_project(session, project_id=project.id)
            return PlanCheck(project_groups(project), [measure_ref(m) for m in measures])
    except SQLAlchemyError:
        logger.exception("Reading the PDSA plan's project failed")
        return DATABASE_PROBLEM


@dataclass(frozen=True)
class SavedPlan:
    cycle_id: int
    project_id: int
    changed: list[str]  # the fields an edit changed (empty for a new cycle)


def save_plan(
    engine: Engine,
    *,
    team_id: str,
    project_id: int,
    user_id: str,
    fields: dict[str, Any],
    continue_id: int | None = None,
    cycle_id: int | None = None,
    idea_id: int | None = None,
    new_idea_under: int | None = None,
) -> SavedPlan | str | dict[str, str]:
    """Create the cycle (continuing `continue_id`'s ramp when it is this project's), or with `cycle_id` edit it
    with the earlier values kept. One short unit of work; the words for the form when it cannot be saved."""
    try:
        with unit_of_work(engine) as session:
            project = repo.get_project(session, team_id=team_id, project_id=project_id)
            if project is None or project.id is None:
                return PROJECT_GONE
            # The cycle hangs off a change idea of this project's diagram (or a new one the plan adds to it).
            link = drivers_edit.link_for_cycle(
                session,
                team_id=team_id,
                project_id=project.id,
                user_id=user_id,
                idea_id=idea_id,
                new_under_driver=new_idea_under,
                change_idea_text=str(fields.get("change_idea") or ""),
            )
            if isinstance(link, dict):
                return link  # nothing was written
            if link is not None or cycle_id is None:  # an edit that names no idea keeps the cycle's link
                fields = {**fields, "change_idea_id": link}
            if cycle_id is not None:
                problem = _may_edit(
                    session, team_id=team_id, project_id=project.id, cycle_id=cycle_id, user_id=user_id
                )
                if problem is not None:
                    return problem
                cycle = pdsa_repo.get_cycle_by_id(session, team_id=team_id, cycle_id=cycle_id)
                assert cycle is not None
                changed = sorted(pdsa_repo.update_cycle(session, cycle=cycle, changed_by=user_id, **fields))
            else:
                previous = (
                    pdsa_repo.get_cycle_by_id(session, team_id=team_id, cycle_id=continue_id)
                    if continue_id
                    else None
                )
                if previous is not None and previous.project_id != project.id:
                    previous = None
                cycle = pdsa_repo.create_cycle(
                    session, project=project, created_by=user_id, previous=previous, **fields
                )
                changed = []
            return SavedPlan(int(cycle.id or 0), project.id, changed)
    except SQLAlchemyError:
        logger.exception("Saving the PDSA cycle failed")
        return DATABASE_PROBLEM
