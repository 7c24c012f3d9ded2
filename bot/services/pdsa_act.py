"""Doing and acting on a PDSA cycle: the Do and Act forms' data, checking a submission, and saving it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import Engine

from bot.services.pdsa import CycleInfo, cycle_and_project, cycle_info, local_today, primary_measure, ref_of
from storage import pdsa_repo
from storage import repositories as repo
from storage.db import unit_of_work

CYCLE_GONE = "This cycle no longer exists."


# ---------------------------------------------------------------- Do


def cycle_exists(engine: Engine, *, team_id: str, cycle_id: int) -> bool:
    with unit_of_work(engine) as session:
        return pdsa_repo.get_cycle_by_id(session, team_id=team_id, cycle_id=cycle_id) is not None


@dataclass(frozen=True)
class DoSaved:
    cycle_id: int
    project_id: int
    ref: str
    started: bool  # the cycle moved from planned to doing
    involvement_pending: bool


def save_do(
    engine: Engine,
    *,
    team_id: str,
    cycle_id: int,
    user_id: str,
    what: str,
    as_planned: str,
    observations: str,
) -> DoSaved | None:
    """Record what happened; the first Do starts the cycle. None when the cycle is gone."""
    with unit_of_work(engine) as session:
        cycle = pdsa_repo.get_cycle_by_id(session, team_id=team_id, cycle_id=cycle_id)
        if cycle is None:
            return None
        pdsa_repo.add_entry(
            session,
            cycle=cycle,
            kind="do",
            user_id=user_id,
            data={"what": what, "as_planned": as_planned, "observations": observations},
        )
        started = cycle.status == "planned"
        if started:
            pdsa_repo.set_status(session, cycle=cycle, status="doing")
        return DoSaved(
            int(cycle.id or 0), cycle.project_id, ref_of(session, cycle), started, cycle.involvement_pending
        )


# ---------------------------------------------------------------- Act


CLOSED = "The team has already acted on this cycle; only the project's leads can change a closed cycle."
CLOSED_ON_SUBMIT = "The team has already acted on this cycle; only the project's leads can change it."
ACT_BEFORE_STUDY = (
    "Decided before the cycle was studied: the decision does not rest on the results for each group. "
    "Study it when the data are in, and revisit the decision if they tell a different story."
)


@dataclass(frozen=True)
class ActForm:
    info: CycleInfo
    measure_name: str | None
    harm: list[str] = field(default_factory=list)  # the latest Study's harm signal, for the form to answer


def act_form(engine: Engine, *, team_id: str, cycle_id: int, user_id: str) -> ActForm | str | None:
    """The Act form's data; the refusal's words when the cycle is closed and the person is not a lead."""
    with unit_of_work(engine) as session:
        cycle, project = cycle_and_project(session, team_id=team_id, cycle_id=cycle_id)
        if cycle is None or project is None or project.id is None:
            return None
        if cycle.status == "acted" and not repo.is_lead(session, project_id=project.id, user_id=user_id):
            return CLOSED
        info = cycle_info(session, cycle, today=local_today(project), with_driver=True)
        measure = primary_measure(session, cycle)
        study = pdsa_repo.latest_study(session, cycle_id=cycle_id)
        harm = [str(h) for h in ((study.data or {}).get("harm") or [])] if study is not None else []
        return ActForm(info, measure.name if measure else None, harm)


def check_act(engine: Engine, *, team_id: str, cycle_id: int, user_id: str) -> str | None:
    """The words for the form when this person cannot act on the cycle now."""
    with unit_of_work(engine) as session:
        cycle = pdsa_repo.get_cycle_by_id(session, team_id=team_id, cycle_id=cycle_id)
        if cycle is None:
            return CYCLE_GONE
        if cycle.status == "acted" and not repo.is_lead(
            session, project_id=cycle.project_id, user_id=user_id
        ):
            return CLOSED_ON_SUBMIT
        return None


@dataclass(frozen=True)
class ActSaved:
    cycle_id: int
    project_id: int
    next_step: int  # the ramp step a next cycle would be
    warning: str | None  # recorded when the team acted before studying
    rebase_note: str | None  # the measure whose SPC limits restart, and from when


def save_act(
    engine: Engine,
    *,
    team_id: str,
    cycle_id: int,
    user_id: str,
    decision: str,
    reason: str,
    involved: str,
    who: str,
    rebase_on: date | None,
    harm_response: str,
) -> ActSaved | None:
    """Record the decision (keeping a changed one), close the cycle, and move the measure to a new level when an
    adopted change asks for it. None when the cycle is gone."""
    with unit_of_work(engine) as session:
        cycle = pdsa_repo.get_cycle_by_id(session, team_id=team_id, cycle_id=cycle_id)
        if cycle is None:
            return None
        warning: str | None = None
        if cycle.status in ("planned", "doing"):
            warning = ACT_BEFORE_STUDY
            pdsa_repo.add_entry(
                session,
                cycle=cycle,
                kind="warning",
                user_id=user_id,
                data={"code": "act_before_study", "message": warning},
            )
        previous_decision = cycle.decision if cycle.status == "acted" else None
        rebase_note: str | None = None
        if rebase_on is not None:
            measure = primary_measure(session, cycle)
            if measure is not None:
                pdsa_repo.add_rebase_date(session, measure=measure, on=rebase_on)
                rebase_note = (
                    f"{measure.name}'s SPC limits will be recalculated from {rebase_on.isoformat()}."
                )
        pdsa_repo.add_entry(
            session,
            cycle=cycle,
            kind="act",
            user_id=user_id,
            data={
                "decision": decision,
                "reason": reason,
                "involved": involved,
                "who": who,
                "rebase": rebase_on.isoformat() if rebase_on else None,
                "previous_decision": previous_decision,
                "harm_response": harm_response or None,
            },
        )
        pdsa_repo.set_status(session, cycle=cycle, status="acted", decision=decision)
        return ActSaved(int(cycle.id or 0), cycle.project_id, cycle.ramp_step + 1, warning, rebase_note)
