"""PDSA cycles as plain values: the read model (CycleInfo, read inside a unit of work, rendered after it) and the
reads the /pdsa command, the card and the thread need, each in its own short unit of work."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlmodel import Session

from bot.core import pdsa
from bot.core.blockkit import typed
from storage import drivers_repo, measures_repo, pdsa_repo
from storage import repositories as repo
from storage.db import unit_of_work
from storage.models import Measure, PdsaCycle, PdsaEntry, Project


@dataclass
class CycleInfo:
    """A cycle as plain values (read inside the unit of work, rendered after it)."""

    id: int
    number: int
    ref: str  # "N.S": series number and ramp step
    title: str
    change_idea: str
    question: str
    predictions: list[dict[str, Any]]
    plan: dict[str, Any]
    start_date: date
    end_date: date
    involvement: str
    involvement_pending: bool
    status: str
    decision: str | None
    measures: list[str]
    balancing: str | None
    kind: str
    today: date
    ramp_step: int = 1
    history: list[str] = field(default_factory=list)
    retrospective: bool = False  # planned after its end date: a test that already ran, recorded afterwards
    driver: str = ""  # the driver of the gap its change idea hangs under on the diagram ("" when not linked)

    @property
    def overdue(self) -> bool:
        return pdsa.is_overdue(self.status, self.end_date, self.today, retrospective=self.retrospective)

    @property
    def next_step(self) -> str:
        return pdsa.next_step(
            self.status, self.ref, self.end_date, self.today, self.decision, retrospective=self.retrospective
        )


def local_today(project: Project) -> date:
    """Today where the project is (its time zone), for due dates and overdue cycles."""
    try:
        return datetime.now(ZoneInfo(project.timezone)).date()
    except (KeyError, ValueError):
        return date.today()


def as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def cycle_info(
    session: Session,
    cycle: PdsaCycle,
    *,
    today: date,
    with_history: bool = False,
    with_driver: bool = False,
) -> CycleInfo:
    """A cycle as plain values; `with_driver` (one cycle's card) also names the driver its idea hangs under."""
    assert cycle.id is not None
    measures = [
        measures_repo.get_measure(session, project_id=cycle.project_id, measure_id=int(i))
        for i in cycle.measure_ids
    ]
    named = [m for m in measures if m is not None]
    balancing = (
        measures_repo.get_measure(session, project_id=cycle.project_id, measure_id=cycle.balancing_measure_id)
        if cycle.balancing_measure_id
        else None
    )
    info = CycleInfo(
        id=cycle.id,
        number=cycle.number,
        ref=f"{pdsa_repo.series_number(session, cycle=cycle)}.{cycle.ramp_step}",
        title=cycle.title,
        change_idea=cycle.change_idea,
        question=cycle.question,
        predictions=list(cycle.predictions),
        plan=dict(cycle.plan),
        start_date=cycle.start_date,
        end_date=cycle.end_date,
        involvement=cycle.involvement,
        involvement_pending=cycle.involvement_pending,
        status=cycle.status,
        decision=cycle.decision,
        measures=[m.name for m in named],
        balancing=balancing.name if balancing else None,
        kind=named[0].kind if named else "proportion",
        today=today,
        ramp_step=cycle.ramp_step,
        retrospective=as_utc(cycle.created_at).date() > cycle.end_date,
    )
    if with_history:
        info.history = [history_line(e) for e in pdsa_repo.entries(session, cycle_id=cycle.id)]
    if with_driver:
        info.driver = driver_of(session, cycle)
    return info


def driver_of(session: Session, cycle: PdsaCycle) -> str:
    """The words of the driver the cycle's change idea hangs under ("" when the cycle is not on the diagram)."""
    if cycle.change_idea_id is None:
        return ""
    idea = drivers_repo.get_idea(session, team_id=cycle.team_id, idea_id=cycle.change_idea_id)
    if idea is None or idea.project_id != cycle.project_id:
        return ""
    driver = drivers_repo.get_driver(session, team_id=cycle.team_id, driver_id=idea.driver_id)
    return driver.text if driver is not None and driver.project_id == cycle.project_id else ""


def history_line(entry: PdsaEntry) -> str:
    when = f"{entry.created_at.day} {entry.created_at:%b %Y}"
    who = f" <@{entry.user_id}>" if entry.user_id else ""
    data = entry.data
    if entry.kind == "plan":
        text = "planned the cycle"
    elif entry.kind == "do" and "what" not in data:  # an observation saved from a message (a shortcut)
        text = f"Do observation: {typed(str(data.get('observations', ''))[:120])}"
    elif entry.kind == "do":
        text = (
            f"Do (ran as planned: {typed(data.get('as_planned'))}): {typed(str(data.get('what', ''))[:120])}"
        )
    elif entry.kind == "study":
        failed = [
            pdsa.group_name(s["group"]) for s in data.get("scores", []) if s.get("outcome") == "not_held"
        ]
        text = "Study: " + (
            f"the prediction did not hold for {', '.join(failed)}" if failed else "predictions compared"
        )
    elif entry.kind == "act":
        text = f"Act: *{typed(data.get('decision'))}*: {typed(str(data.get('reason', ''))[:120])}"
    elif entry.kind == "edit":
        text = "edited " + ", ".join(sorted(data.get("previous", {}))) + " (earlier values kept)"
    else:
        text = f":warning: {typed(data.get('message', entry.kind))}"
    return f"• {when}{who}: {text}"


# ---------------------------------------------------------------- small shared reads


@dataclass(frozen=True)
class MeasureRef:
    """A measure as the PDSA forms show it."""

    id: int
    name: str
    measure_type: str
    kind: str


def measure_ref(measure: Measure) -> MeasureRef:
    return MeasureRef(int(measure.id or 0), measure.name, measure.measure_type, measure.kind)


def project_groups(project: Project) -> list[str]:
    """Overall, each focus group, then the reference group: the rows of every prediction and study."""
    return list(dict.fromkeys([pdsa.OVERALL, *project.focus_groups, project.reference_group]))


def cycle_and_project(
    session: Session, *, team_id: str, cycle_id: int
) -> tuple[PdsaCycle | None, Project | None]:
    """A cycle and its project, both only within this workspace."""
    cycle = pdsa_repo.get_cycle_by_id(session, team_id=team_id, cycle_id=cycle_id)
    project = repo.get_project(session, team_id=team_id, project_id=cycle.project_id) if cycle else None
    return cycle, project


def primary_measure(session: Session, cycle: PdsaCycle) -> Measure | None:
    """The first of the cycle's measures that still exists: the one its predictions are judged against."""
    for measure_id in cycle.measure_ids:
        measure = measures_repo.get_measure(session, project_id=cycle.project_id, measure_id=int(measure_id))
        if measure is not None:
            return measure
    return None


def ref_of(session: Session, cycle: PdsaCycle) -> str:
    """The cycle as the card shows it: series number and ramp step ("1.2")."""
    return f"{pdsa_repo.series_number(session, cycle=cycle)}.{cycle.ramp_step}"


# ---------------------------------------------------------------- the /pdsa command's reads


def channel_project_id(engine: Engine, *, team_id: str, channel_id: str) -> int | None:
    with unit_of_work(engine) as session:
        project = repo.project_for_channel(session, team_id=team_id, channel_id=channel_id)
        return project.id if project else None


@dataclass(frozen=True)
class FoundCycle:
    """A cycle found by the reference someone typed; when there is none, the references there are."""

    cycle_id: int | None
    refs: list[str] = field(default_factory=list)


def find_cycle(engine: Engine, *, team_id: str, project_id: int, ref: str) -> FoundCycle:
    with unit_of_work(engine) as session:
        project = repo.get_project(session, team_id=team_id, project_id=project_id)
        if project is None:
            return FoundCycle(None)
        cycle = pdsa_repo.find_cycle(session, project_id=project_id, ref=ref)
        if cycle is not None:
            return FoundCycle(int(cycle.id or 0))
        return FoundCycle(
            None, [ref_of(session, c) for c in pdsa_repo.list_cycles(session, project_id=project_id)]
        )


def list_cycles(engine: Engine, *, team_id: str, project_id: int) -> tuple[list[CycleInfo], str | None]:
    """Every cycle of the project, and the team's prediction record in words."""
    with unit_of_work(engine) as session:
        project = repo.get_project(session, team_id=team_id, project_id=project_id)
        if project is None:
            return [], ""
        today = local_today(project)
        infos = [
            cycle_info(session, c, today=today) for c in pdsa_repo.list_cycles(session, project_id=project_id)
        ]
        record = pdsa.prediction_record(pdsa_repo.study_scores(session, project_id=project_id)).text()
    return infos, record


def show_cycle(
    engine: Engine, *, team_id: str, cycle_id: int, with_history: bool = False
) -> CycleInfo | None:
    with unit_of_work(engine) as session:
        cycle, project = cycle_and_project(session, team_id=team_id, cycle_id=cycle_id)
        if cycle is None or project is None:
            return None
        return cycle_info(
            session, cycle, today=local_today(project), with_history=with_history, with_driver=True
        )


@dataclass(frozen=True)
class CyclePlace:
    """Where a cycle lives: its project, its channel and its card (None until posted)."""

    cycle_id: int
    project_id: int
    channel_id: str
    card_ts: str | None


def cycle_place(engine: Engine, *, team_id: str, cycle_id: int) -> CyclePlace | None:
    with unit_of_work(engine) as session:
        cycle = pdsa_repo.get_cycle_by_id(session, team_id=team_id, cycle_id=cycle_id)
        if cycle is None:
            return None
        return CyclePlace(int(cycle.id or 0), cycle.project_id, cycle.channel_id, cycle.card_ts)


# ---------------------------------------------------------------- the card


@dataclass(frozen=True)
class Card:
    info: CycleInfo
    channel_id: str
    card_ts: str | None
    balancing_exists: bool  # the project has a balancing measure the cycle could choose


def card(engine: Engine, *, team_id: str, cycle_id: int, new: bool = False) -> Card | None:
    """The cycle's card; `new` also asks whether the project has a balancing measure (for the first post)."""
    with unit_of_work(engine) as session:
        cycle, project = cycle_and_project(session, team_id=team_id, cycle_id=cycle_id)
        if cycle is None or project is None:
            return None
        info = cycle_info(session, cycle, today=local_today(project), with_driver=True)
        balancing = new and measures_repo.measures_for_project(
            session, project_id=project.id or 0, measure_type="balancing"
        )
        return Card(info, cycle.channel_id, cycle.card_ts, bool(balancing))


def set_card_ts(engine: Engine, *, team_id: str, cycle_id: int, ts: str) -> None:
    """Remember the posted card, whose thread holds the cycle's history."""
    with unit_of_work(engine) as session:
        cycle = pdsa_repo.get_cycle_by_id(session, team_id=team_id, cycle_id=cycle_id)
        if cycle is not None:
            pdsa_repo.set_card_ts(session, cycle=cycle, ts=ts)
