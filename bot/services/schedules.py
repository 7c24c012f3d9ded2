"""A project's prompt schedules (team prompts, partner questions, the leads' nudge): showing, pausing, resuming
and saving them, leads only. Each use case opens and commits its own unit of work and returns plain values."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from bot.core.schedule_rules import ScheduleSpec, describe, next_occurrence
from storage import answers_repo
from storage import repositories as repo
from storage import schedule_repo as sched
from storage.db import unit_of_work
from storage.models import Project, Schedule

logger = logging.getLogger(__name__)

SCHEDULE_KINDS = answers_repo.SCHEDULE_KINDS  # team_prompt, partner_prompt, lead_nudge: the form's order
NOT_LEAD_TO_SAVE = "Only the project's leads can change the schedule."
DATABASE_PROBLEM = (
    "We couldn't save this just now (a database problem). Everything you chose is still here: press Save again "
    "in a moment."
)


@dataclass(frozen=True)
class NotLead:
    """Only leads may do this: the project's name and its leads, for the words that say whom to ask."""

    project_name: str
    leads: list[str]


def not_lead(session: Session, project: Project) -> NotLead:
    assert project.id is not None
    return NotLead(
        project.name, [m.user_id for m in repo.members(session, project_id=project.id, role="lead")]
    )


def schedules_by_kind(session: Session, project: Project) -> dict[str, Schedule]:
    """The project's three schedules, created with the defaults if missing."""
    found = {s.kind: s for s in sched.ensure_default_schedules(session, project=project)}
    for kind in answers_repo.SCHEDULE_KINDS:
        if kind not in found:
            # Another listener (or the scheduler) created it a moment ago; its row is committed by now.
            row = sched.get_schedule(session, project_id=project.id or 0, kind=kind)
            assert row is not None
            found[kind] = row
    return {kind: found[kind] for kind in answers_repo.SCHEDULE_KINDS}


def _set_paused(session: Session, schedule: Schedule, paused: bool, by: str) -> None:
    if schedule.paused != paused:
        (sched.pause if paused else sched.resume)(session, schedule=schedule, by=by)


@dataclass(frozen=True)
class ScheduleLine:
    """One schedule described, with its next occurrences (shown in `timezone`)."""

    kind: str
    description: str
    upcoming: list[datetime]
    timezone: str
    paused: bool


def _upcoming(spec: ScheduleSpec, now: datetime, count: int = 3) -> list[datetime]:
    found: list[datetime] = []
    after = now
    for _ in range(count):
        after = next_occurrence(spec, after)
        found.append(after)
    return found


@dataclass(frozen=True)
class _Planned:
    """One schedule as it stands, in plain values: read inside the unit of work, worded after it."""

    kind: str
    spec: ScheduleSpec
    recipient_tz: bool
    paused: bool


def _planned(schedules: dict[str, Schedule], region: str) -> list[_Planned]:
    return [
        _Planned(kind, sched.spec_for(s, region=region), s.use_recipient_tz, s.paused)
        for kind, s in schedules.items()
    ]


def schedule_lines(planned: list[_Planned], now: datetime) -> list[ScheduleLine]:
    """The schedules in words with their next dates: worked out after the unit of work, not while it holds the
    schedules' rows (the next dates take about a millisecond for three schedules)."""
    lines = []
    for p in planned:
        description = describe(p.spec)
        if p.kind != "team_prompt" and p.recipient_tz:
            description += "; direct messages arrive at this time in each person's own Slack time zone"
        lines.append(ScheduleLine(p.kind, description, _upcoming(p.spec, now), p.spec.timezone, p.paused))
    return lines


@dataclass(frozen=True)
class KindSettings:
    kind: str
    weekdays: tuple[int, ...]
    hour: int
    minute: int
    every_weeks: int
    paused: bool


@dataclass(frozen=True)
class ScheduleForm:
    project_id: int
    channel_id: str
    project_name: str
    kinds: list[KindSettings]
    timezone: str
    use_recipient_tz: bool
    skip_weekends: bool
    skip_bank_holidays: bool
    region: str


@dataclass(frozen=True)
class Paused:
    """Schedules paused or resumed: the project's schedules as they now stand."""

    project_name: str
    lines: list[ScheduleLine]


def schedule_command(
    engine: Engine,
    *,
    team_id: str,
    channel_id: str,
    user_id: str,
    now: datetime,
    pause: bool | None = None,
    kinds: list[str] | None = None,
) -> ScheduleForm | Paused | NotLead | None:
    """`/mfi schedule`: the form's values; with `pause`, pause (or resume) `kinds` (all when None) first.
    None when the channel has no project."""
    with unit_of_work(engine) as session:
        project = repo.project_for_channel(session, team_id=team_id, channel_id=channel_id)
        if project is None or project.id is None:
            return None
        if not repo.is_lead(session, project_id=project.id, user_id=user_id):
            return not_lead(session, project)
        schedules = schedules_by_kind(session, project)
        if pause is None:
            return ScheduleForm(
                project_id=project.id,
                channel_id=project.channel_id,
                project_name=project.name,
                kinds=[
                    KindSettings(k, tuple(s.weekdays), s.hour, s.minute, s.every_weeks, s.paused)
                    for k, s in schedules.items()
                ],
                timezone=project.timezone,
                use_recipient_tz=schedules["partner_prompt"].use_recipient_tz,
                skip_weekends=schedules["team_prompt"].skip_weekends,
                skip_bank_holidays=schedules["team_prompt"].skip_bank_holidays,
                region=project.region,
            )
        for kind in kinds if kinds is not None else list(schedules):
            _set_paused(session, schedules[kind], pause, user_id)
        session.flush()
        name, planned = project.name, _planned(schedules, project.region)
    return Paused(name, schedule_lines(planned, now))


@dataclass(frozen=True)
class ScheduleSaved:
    project_id: int
    project_name: str
    lines: list[ScheduleLine]
    waiting: bool  # partners not yet asked for their consent
    partners_on: bool  # partner questions are on
    can_invite: bool  # the project has words for partners, so they can be asked


def save_schedule(
    engine: Engine, *, team_id: str, project_id: int, user_id: str, settings: dict[str, Any], now: datetime
) -> ScheduleSaved | str:
    """Save the schedule form (leads only) in one short unit of work; the words for the form when it cannot be."""
    try:
        with unit_of_work(engine) as session:
            project = repo.get_project(session, team_id=team_id, project_id=project_id)
            if (
                project is None
                or project.id is None
                or not repo.is_lead(session, project_id=project.id, user_id=user_id)
            ):
                return NOT_LEAD_TO_SAVE
            answers_repo.set_project_zone(
                session,
                project=project,
                timezone=settings["timezone"],
                region=settings["region"],
                changed_by=user_id,
            )
            schedules = schedules_by_kind(session, project)
            for kind, schedule in schedules.items():
                form = settings["kinds"][kind]
                fields: dict[str, Any] = {
                    # A paused schedule may have no days ticked; it keeps its old days for when it resumes.
                    "weekdays": form["weekdays"] or list(schedule.weekdays),
                    "hour": form["hour"],
                    "minute": form["minute"],
                    "every_weeks": form["every_weeks"],
                    "timezone": settings["timezone"],
                    "skip_weekends": settings["skip_weekends"],
                    "skip_bank_holidays": settings["skip_bank_holidays"],
                }
                if kind != "team_prompt":
                    fields["use_recipient_tz"] = settings["use_recipient_tz"]
                if form["every_weeks"] > 1 and form["every_weeks"] != schedule.every_weeks:
                    # A new fortnightly rhythm starts this week rather than on an arbitrary fixed week.
                    fields["anchor"] = now.astimezone(ZoneInfo(settings["timezone"])).date()
                sched.update_schedule(session, schedule=schedule, updated_by=user_id, now=now, **fields)
                _set_paused(session, schedule, form["paused"], user_id)
            repo.audit(
                session, team_id=team_id, project_id=project.id, user_id=user_id, action="schedule.edit"
            )
            session.flush()
            planned = _planned(schedules, project.region)
            saved = ScheduleSaved(
                project_id=project.id,
                project_name=project.name,
                lines=[],  # worded below, once the unit of work has committed
                # Turning partner questions on is when partners not yet asked get the consent message.
                waiting=bool(sched.partners_awaiting_consent(session, project_id=project.id)),
                partners_on=not settings["kinds"]["partner_prompt"]["paused"],
                can_invite=bool(project.partner_description.strip()),
            )
    except SQLAlchemyError:
        logger.exception("Saving the schedule failed")
        return DATABASE_PROBLEM
    return replace(saved, lines=schedule_lines(planned, now))
