"""The /equity use cases: a measure's data and settings loaded as plain values, its analysis and its chart.

Each loader opens and commits its own unit of work and returns frozen values (`MeasureJob`, `MeasureListing`,
`Lookup`, `ProjectJobs`); the analysis and the chart are drawn from those values outside any transaction, so
the caller posts to Slack with nothing open. `MeasureJob`, `analyse`, `safe_stats`, `first_view`, `render` and
`missing_report` live in bot/services/equity_analysis.py (no database) and are re-exported here.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

import pandas as pd
from sqlalchemy import Engine
from sqlmodel import Session

from bot.core import periods as per
from bot.core.charts.markers import CycleMark
from bot.core.equity import analysis as an
from bot.services.equity_analysis import MeasureJob as MeasureJob
from bot.services.equity_analysis import ProjectSummary as ProjectSummary
from bot.services.equity_analysis import analyse as analyse
from bot.services.equity_analysis import chart as chart
from bot.services.equity_analysis import chart_kind as chart_kind
from bot.services.equity_analysis import first_view as first_view
from bot.services.equity_analysis import missing_report as missing_report
from bot.services.equity_analysis import render as render
from bot.services.equity_analysis import safe_stats as safe_stats
from bot.services.equity_analysis import summarise_jobs as summarise_jobs
from bot.services.equity_analysis import summary_chart as summary_chart
from bot.services.measures import measure_period
from bot.services.pdsa import as_utc, local_today
from bot.services.shared_reads import SharedReads
from storage import measures_repo as mrepo
from storage import pdsa_repo
from storage import repositories as repo
from storage.db import unit_of_work
from storage.models import Measure, Project

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------- plain values


@dataclass(frozen=True)
class MeasureSummary:
    """One row of the measure list: the measure and how much data it has."""

    id: int
    name: str
    kind: str
    measure_type: str
    period: str
    points: int
    last_period: date | None


@dataclass(frozen=True)
class MeasureListing:
    project_name: str
    measures: tuple[MeasureSummary, ...]


@dataclass(frozen=True)
class Lookup:
    """What `/equity <text>` found in the channel's project: the measure's job, or the names to suggest."""

    job: MeasureJob | None
    candidates: tuple[str, ...] = ()  # several measures matched
    names: tuple[str, ...] = ()  # every measure of the project, in list order


@dataclass(frozen=True)
class ProjectJobs:
    project_name: str
    channel_id: str
    jobs: tuple[MeasureJob, ...]
    project_id: int = 0


# ---------------------------------------------------------------- reading (pure helpers over a session)


def measure_data_summary(session: Session, *, measure_ids: list[int]) -> dict[int, tuple[int, date | None]]:
    """Data points and latest period per measure, for the list."""
    out: dict[int, tuple[int, date | None]] = {}
    for measure_id in measure_ids:
        out[measure_id] = (
            len(mrepo.data_points(session, measure_id=measure_id)),
            mrepo.latest_period(session, measure_id=measure_id),
        )
    return out


# A measure's data, read once for the requests that ask for it together: each gets a read that began after it
# asked, in a transaction of its own (so its snapshot is no older than the request), so nothing committed before
# a request is missed. Callers read it outside their own transaction (`with_data`), so a request waiting for the
# shared read holds no connection: twenty waiting requests must not empty the pool the read needs.
_DATA_READS: SharedReads[list[tuple[Any, ...]]] = SharedReads()


def measure_frame(session: Session, *, measure_id: int) -> pd.DataFrame:
    """The measure's current data as a tidy frame (period, group, numerator, denominator, value)."""
    return pd.DataFrame(mrepo.data_table(session, measure_id=measure_id), columns=list(mrepo.TIDY_COLUMNS))


def with_data(engine: Engine, job: MeasureJob) -> MeasureJob:
    """The job with its measure's data, read outside any transaction of the caller's and shared with the requests
    for the same measure that arrive at the same time (the frame is the caller's own)."""

    def read() -> list[tuple[Any, ...]]:
        with unit_of_work(engine) as session:
            return mrepo.data_table(session, measure_id=job.measure_id)

    rows = _DATA_READS.read(job.measure_id, read)
    return replace(job, frame=pd.DataFrame(rows, columns=list(mrepo.TIDY_COLUMNS)))


def parse_rebase(entries: list[str]) -> dict[str, list[date]]:
    """'[GROUP=]YYYY-MM-DD' strings into {group: dates}; dates without a group apply to all ("ALL")."""
    out: dict[str, list[date]] = {}
    for entry in entries:
        group, _, day = entry.rpartition("=")
        out.setdefault(group.strip() or an.TOTAL, []).append(date.fromisoformat(day.strip()))
    return out


def jobs_for(session: Session, measures: Sequence[Measure], project: Project) -> list[MeasureJob]:
    """job_for for each of a project's measures, with their data read in a fixed number of queries."""
    ids = [m.id for m in measures if m.id is not None]
    rows = mrepo.data_points_for(session, measure_ids=ids)
    periods = mrepo.data_periods_for(session, measure_ids=ids)
    return [
        job_for(session, m, project, rows=rows.get(m.id or 0), periods=periods.get(m.id or 0))
        for m in measures
    ]


def job_for(
    session: Session,
    measure: Measure,
    project: Project,
    *,
    rows: list[dict[str, Any]] | None = None,
    periods: list[str] | None = None,
    data: bool = True,
) -> MeasureJob:
    """A measure and its project copied into a job, inside the caller's unit of work (`rows` and `periods`: its
    data and finer periods when the caller read them for many measures at once; without `data`, an empty frame
    for `with_data` to fill after the unit of work)."""
    assert measure.id is not None
    try:
        rebase = parse_rebase(list(measure.rebase_dates or []))
    except ValueError:
        logger.warning("Ignoring unreadable rebase dates on measure %s", measure.id)
        rebase = {}
    return MeasureJob(
        measure_id=measure.id,
        name=measure.name,
        kind=measure.kind,
        measure_type=measure.measure_type,
        direction=measure.direction,
        reference=measure.reference_group or project.reference_group or "A",
        focus=list(project.focus_groups or []),
        period=measure_period(measure),
        target=measure.target,
        spc_method=measure.spc_method,
        rebase=rebase,
        channel_id=project.channel_id,
        project_name=project.name,
        target_gap=project.target_gap,
        threshold=project.suppression_threshold,
        timezone=project.timezone,
        frame=(
            measure_frame(session, measure_id=measure.id)
            if rows is None and data
            else pd.DataFrame(columns=list(mrepo.TIDY_COLUMNS))
            if rows is None
            else pd.DataFrame(rows, columns=["period", "group", "numerator", "denominator", "value"])
        ),
        quarters=measure.quarters,
        data_period=per.finest(
            periods if periods is not None else mrepo.data_periods(session, measure_id=measure.id)
        ),
        cycles=cycle_marks(session, project=project, measure_id=measure.id),
    )


def cycle_marks(session: Session, *, project: Project, measure_id: int) -> tuple[CycleMark, ...]:
    """The project's PDSA cycles on a measure (as an outcome or a balancing measure) as chart marks: from the
    cycle's start (Do) to its Study, or to today while it runs; cycles not started yet are left out."""
    assert project.id is not None
    today = local_today(project)
    out: list[CycleMark] = []
    studied = pdsa_repo.study_dates(session, project_id=project.id)  # one query for every cycle
    for cycle in pdsa_repo.list_cycles(session, project_id=project.id):
        linked = measure_id in {int(i) for i in cycle.measure_ids} or cycle.balancing_measure_id == measure_id
        if not linked or cycle.id is None or cycle.start_date > today:
            continue
        series = pdsa_repo.series_number(session, cycle=cycle)
        label = f"C{series}" if cycle.ramp_step == 1 else f"C{series}.{cycle.ramp_step}"
        study_at = studied.get(cycle.id)
        if study_at is not None:
            end, running = max(as_utc(study_at).date(), cycle.start_date), False
        elif cycle.status in ("studied", "acted"):
            end, running = max(cycle.end_date, cycle.start_date), False
        else:
            end, running = today, True
        out.append(CycleMark(label=label, start=cycle.start_date, end=end, running=running))
    return tuple(out)


def parse_number(text: str) -> int | None:
    """A list number as typed (ASCII digits, at most 2**31 - 1), or None."""
    text = text.strip()
    if not re.fullmatch(r"[0-9]{1,10}", text):
        return None
    number = int(text)
    return number if number <= 2**31 - 1 else None


def find_measure(measures: list[Measure], text: str) -> tuple[Measure | None, list[Measure]]:
    """By list number, exact name, then unique prefix or substring (case-insensitive); also the candidates."""
    wanted = text.strip().lower()
    number = parse_number(wanted)
    if number is not None:
        index = number - 1
        return (measures[index], []) if 0 <= index < len(measures) else (None, [])
    exact = [m for m in measures if m.name.lower() == wanted]
    if exact:
        return exact[0], []
    for test in (lambda n: n.startswith(wanted), lambda n: wanted in n):
        found = [m for m in measures if test(m.name.lower())]
        if len(found) == 1:
            return found[0], []
        if found:
            return None, found
    return None, []


# ---------------------------------------------------------------- use cases (each its own unit of work)


def _channel_project(
    session: Session, *, team_id: str, channel_id: str
) -> tuple[Project, list[Measure]] | None:
    project = repo.project_for_channel(session, team_id=team_id, channel_id=channel_id)
    if project is None or project.id is None:
        return None
    return project, mrepo.measures_for_project(session, project_id=project.id)


def measure_listing(engine: Engine, *, team_id: str, channel_id: str) -> MeasureListing | None:
    """The channel's project's measures with their data counts; None when the channel has no project."""
    with unit_of_work(engine) as session:
        found = _channel_project(session, team_id=team_id, channel_id=channel_id)
        if found is None:
            return None
        project, measures = found
        summary = measure_data_summary(session, measure_ids=[m.id for m in measures if m.id is not None])
        return MeasureListing(
            project_name=project.name,
            measures=tuple(
                MeasureSummary(m.id, m.name, m.kind, m.measure_type, m.period, *summary.get(m.id, (0, None)))
                for m in measures
                if m.id is not None
            ),
        )


def look_up(engine: Engine, *, team_id: str, channel_id: str, text: str) -> Lookup | None:
    """The measure `text` names in the channel's project (see `find_measure`); None when there is no project.
    Its data are read after this unit of work, shared with the requests for it that arrive together."""
    with unit_of_work(engine) as session:
        found = _channel_project(session, team_id=team_id, channel_id=channel_id)
        if found is None:
            return None
        project, measures = found
        measure, candidates = find_measure(measures, text)
        job = job_for(session, measure, project, data=False) if measure is not None else None
        found_lookup = Lookup(
            job=job,
            candidates=tuple(m.name for m in candidates),
            names=tuple(m.name for m in measures),
        )
    return replace(found_lookup, job=with_data(engine, job)) if job is not None else found_lookup


def channel_job(engine: Engine, *, team_id: str, channel_id: str, measure_id: int) -> MeasureJob | None:
    """A measure of the channel's project (never another channel's, nor an archived one), or None."""
    with unit_of_work(engine) as session:
        found = _channel_project(session, team_id=team_id, channel_id=channel_id)
        if found is None:
            return None
        project, measures = found
        measure = next((m for m in measures if m.id == measure_id), None)
        job = job_for(session, measure, project, data=False) if measure is not None else None
    return with_data(engine, job) if job is not None else None


def load_job(engine: Engine, *, team_id: str, project_id: int, measure_id: int) -> MeasureJob | None:
    """A measure of the workspace's project (not archived), or None."""
    with unit_of_work(engine) as session:
        project = repo.get_project(session, team_id=team_id, project_id=project_id)
        if project is None:
            return None
        measures = mrepo.measures_for_project(session, project_id=project_id)
        measure = next((m for m in measures if m.id == measure_id), None)
        job = job_for(session, measure, project, data=False) if measure is not None else None
    return with_data(engine, job) if job is not None else None


def channel_jobs(engine: Engine, *, team_id: str, channel_id: str) -> ProjectJobs | None:
    """Every measure of the channel's project as jobs; None when the channel has no project."""
    with unit_of_work(engine) as session:
        found = _channel_project(session, team_id=team_id, channel_id=channel_id)
        if found is None:
            return None
        project, measures = found
        return ProjectJobs(
            project.name,
            project.channel_id,
            tuple(jobs_for(session, measures, project)),
            project_id=project.id or 0,
        )


def load_jobs(engine: Engine, *, team_id: str, project_id: int) -> ProjectJobs | None:
    """Every measure of the workspace's project as jobs, or None when there is no such project."""
    with unit_of_work(engine) as session:
        project = repo.get_project(session, team_id=team_id, project_id=project_id)
        if project is None:
            return None
        measures = mrepo.measures_for_project(session, project_id=project_id)
        return ProjectJobs(
            project.name,
            project.channel_id,
            tuple(jobs_for(session, measures, project)),
            project_id=project.id or 0,
        )


def summary_for_project(engine: Engine, *, team_id: str, channel_id: str) -> ProjectSummary | None:
    """The summary grid for the channel's project: the measures read in one unit of work, analysed after it."""
    found = channel_jobs(engine, team_id=team_id, channel_id=channel_id)
    if found is None:
        return None
    return summarise_jobs(found.project_name, found.jobs)
