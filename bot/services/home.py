"""The App Home as plain values: each person's projects and what each section shows, read in one unit of work.

`homes` reads every requested person's Home in one transaction and returns frozen values; the Home listener
turns them into blocks and publishes after the transaction is closed (no Slack call while it is open).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime

from sqlalchemy import Engine
from sqlmodel import Session

from bot.core import pdsa as core_pdsa
from bot.core.checklist import StageCheck, done_map
from bot.core.equity.summary import SummaryRow
from bot.core.prompts import load_catalogue, stages_for
from bot.core.schedule_rules import DEFAULTS, next_occurrence
from bot.services import checklist as checklist_service
from bot.services import equity
from bot.services import registers as registers_service
from bot.services import team as team_service
from bot.services.drivers import Diagram, diagram_in
from bot.services.pdsa import CycleInfo, cycle_info, local_today
from bot.services.registers import RegistersSummary
from bot.services.team import TeamView
from storage import answers_repo, pdsa_repo
from storage import measures_repo as mrepo
from storage import repositories as repo
from storage import schedule_repo as sched
from storage.db import unit_of_work
from storage.models import Project


@dataclass(frozen=True)
class Moment:
    """A time and the zone to show it in."""

    at: datetime
    timezone: str


@dataclass(frozen=True)
class AnswerShown:
    """An answer the team may see: a named one with its time, an anonymous one with only its day."""

    user_id: str | None
    from_partner: bool
    text: str
    stage: str
    day: date
    created_at: datetime
    timezone: str


@dataclass(frozen=True)
class PromptsPanel:
    """The leads' prompts section."""

    this_week: tuple[str, Moment] | None  # the question and when it went out
    next_prompt: Moment | None  # None: the team prompt is paused
    pinned: str | None
    skipped_count: int
    recent: tuple[AnswerShown, ...]
    current_stage: str


@dataclass(frozen=True)
class PdsaPanel:
    cycles: tuple[CycleInfo, ...]
    record: str | None  # the prediction record, in words (None before any study)


@dataclass(frozen=True)
class ProjectHome:
    """One project on one person's Home: its summary, the person's role and each section's values."""

    id: int
    name: str
    channel_id: str
    aim: str
    focus_groups: tuple[str, ...]
    role: str
    measure_count: int
    open_cycles: int
    stages_done: dict[str, bool]
    prompts: PromptsPanel | None = None  # leads only
    pdsa: PdsaPanel | None = None  # not partners
    summary: tuple[
        SummaryRow, ...
    ] = ()  # the equity summary grid (disclosure-controlled, as the channel sees it)
    checks: tuple[StageCheck, ...] = ()  # the framework's stages, each ticked only by its evidence (issue 14)
    registers: RegistersSummary | None = None  # bias review and who is missing (not partners)
    team: TeamView | None = None  # the team reflection (not partners)
    drivers: Diagram | None = None  # the driver diagram's summary and last picture (not partners)


def prompts_panel(session: Session, project: Project, *, now: datetime) -> PromptsPanel:
    """This week's prompt, the next one, pin/skip and the latest answers, inside the caller's unit of work."""
    assert project.id is not None
    catalogue = load_catalogue()
    this_week = None
    delivery = answers_repo.latest_delivery(session, project_id=project.id, kind="team_prompt")
    if delivery is not None and delivery.prompt_id:
        try:
            question = catalogue.get(delivery.prompt_id).text
        except KeyError:
            question = delivery.prompt_id
        this_week = (question, Moment(delivery.sent_at or delivery.occurrence, project.timezone))
    # Read-only: the Home tab never creates schedules (the scheduler and /mfi schedule do).
    team = sched.get_schedule(session, project_id=project.id, kind="team_prompt")
    next_prompt: Moment | None = None
    if team is None or not team.paused:
        spec = (
            sched.spec_for(team, region=project.region)
            if team is not None
            else replace(DEFAULTS["team_prompt"], timezone=project.timezone, region=project.region)
        )
        next_prompt = Moment(next_occurrence(spec, now), spec.timezone)
    pinned, skipped = sched.prompt_choices(session, project_id=project.id)
    pinned_text = None
    if pinned:
        try:
            pinned_text = catalogue.get(pinned).text
        except KeyError:
            pinned_text = None
    recent = tuple(
        AnswerShown(
            user_id=shown.answer.user_id,
            from_partner=shown.answer.from_partner,
            text=shown.answer.text,
            stage=shown.answer.stage,
            day=shown.day,
            created_at=shown.answer.created_at,
            timezone=project.timezone,
        )
        for shown in answers_repo.visible_answers(session, project=project, limit=5)
    )
    return PromptsPanel(
        this_week=this_week,
        next_prompt=next_prompt,
        pinned=pinned_text,
        skipped_count=len(skipped),
        recent=recent,
        current_stage=stages_for(sched.project_state(session, project))[0],
    )


def pdsa_panel(session: Session, project: Project) -> PdsaPanel:
    assert project.id is not None
    today = local_today(project)
    cycles = tuple(
        cycle_info(session, c, today=today) for c in pdsa_repo.list_cycles(session, project_id=project.id)
    )
    record = core_pdsa.prediction_record(pdsa_repo.study_scores(session, project_id=project.id)).text()
    return PdsaPanel(cycles=cycles, record=record)


def person_home(session: Session, *, team_id: str, user_id: str, now: datetime) -> tuple[ProjectHome, ...]:
    """A person's projects (each once, first role found) with their sections, inside the caller's unit of work."""
    out: list[ProjectHome] = []
    seen: set[int] = set()
    for project, role in repo.projects_for_user(session, team_id=team_id, user_id=user_id):
        if project.id is None or project.id in seen:
            continue
        seen.add(project.id)
        progress = repo.project_progress(session, project=project)
        checks = tuple(checklist_service.checklist_for(session, project, progress=progress))
        out.append(
            ProjectHome(
                id=project.id,
                name=project.name,
                channel_id=project.channel_id,
                aim=project.aim,
                focus_groups=tuple(project.focus_groups or ()),
                role=role,
                measure_count=progress["measure_count"],
                open_cycles=progress["open_cycles"],
                stages_done=done_map(list(checks)),
                prompts=prompts_panel(session, project, now=now) if role == "lead" else None,
                pdsa=pdsa_panel(session, project) if role != "partner" else None,
                checks=checks,
                registers=registers_service.summary(session, project) if role != "partner" else None,
                team=team_service.team_view_in(session, project) if role != "partner" else None,
                drivers=diagram_in(session, project_id=project.id) if role != "partner" else None,
            )
        )
    return tuple(out)


def homes(
    engine: Engine, *, team_id: str, user_ids: Sequence[str], now: datetime | None = None
) -> dict[str, tuple[ProjectHome, ...]]:
    """Each person's Home (people once each, in the order given), all read in one unit of work."""
    moment = now or datetime.now(UTC)
    jobs: dict[int, tuple[str, list[equity.MeasureJob]]] = {}
    with unit_of_work(engine) as session:
        out = {
            user_id: person_home(session, team_id=team_id, user_id=user_id, now=moment)
            for user_id in dict.fromkeys(user_ids)
        }
        for project_id in {p.id for projects in out.values() for p in projects}:
            project = repo.get_project(session, team_id=team_id, project_id=project_id)
            if project is not None:
                measures = mrepo.measures_for_project(session, project_id=project_id)
                jobs[project_id] = (project.name, equity.jobs_for(session, measures, project))
    # The analyses run after the transaction, once per project however many people's Homes show it.
    summaries = {pid: equity.summarise_jobs(name, found).rows for pid, (name, found) in jobs.items()}
    return {
        user_id: tuple(replace(p, summary=summaries.get(p.id, ())) for p in projects)
        for user_id, projects in out.items()
    }


def project_people(engine: Engine, *, project_id: int) -> list[str]:
    """Whose Home shows the project's work: its leads and members (not partners), in the order they joined."""
    with unit_of_work(engine) as session:
        return [
            m.user_id for m in repo.members(session, project_id=project_id) if m.role in ("lead", "member")
        ]
