"""The /equity use cases: a measure's data and settings loaded as plain values, its analysis and its chart.

Each loader opens and commits its own unit of work and returns frozen values (`MeasureJob`, `MeasureListing`,
`Lookup`, `ProjectJobs`); the analysis and the chart are drawn from those values outside any transaction, so
the caller posts to Slack with nothing open.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import Engine
from sqlmodel import Session

from bot.core import charts, ethnicity
from bot.core import periods as per
from bot.core.equity import analysis as an
from bot.core.equity.disclosure import DisclosurePolicy, safe_rate
from bot.core.equity.types import GroupStat
from bot.services.measures import measure_period
from storage import measures_repo as mrepo
from storage import repositories as repo
from storage.db import unit_of_work
from storage.models import Measure, Project

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------- plain values


@dataclass(frozen=True)
class MeasureJob:
    """Everything needed to analyse and post one measure, as plain values (objects expire at commit)."""

    measure_id: int
    name: str
    kind: str
    measure_type: str
    direction: str
    reference: str
    focus: list[str]
    period: str
    target: float | None
    spc_method: str | None
    rebase: dict[str, list[date]]
    channel_id: str
    project_name: str
    target_gap: float | None
    threshold: int
    timezone: str
    frame: pd.DataFrame = field(repr=False, compare=False)
    quarters: str = "financial"
    data_period: str | None = None  # finer periods the data came in, grouped into `period` on import

    @property
    def policy(self) -> DisclosurePolicy:
        return DisclosurePolicy(threshold=max(self.threshold, 3))

    @property
    def today(self) -> date:
        try:
            return datetime.now(ZoneInfo(self.timezone)).date()
        except (KeyError, ValueError):
            return date.today()


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


def measure_frame(session: Session, *, measure_id: int) -> pd.DataFrame:
    """The measure's current data as a tidy frame (period, group, numerator, denominator, value)."""
    return pd.DataFrame(
        mrepo.data_points(session, measure_id=measure_id),
        columns=["period", "group", "numerator", "denominator", "value"],
    )


def parse_rebase(entries: list[str]) -> dict[str, list[date]]:
    """'[GROUP=]YYYY-MM-DD' strings into {group: dates}; dates without a group apply to all ("ALL")."""
    out: dict[str, list[date]] = {}
    for entry in entries:
        group, _, day = entry.rpartition("=")
        out.setdefault(group.strip() or an.TOTAL, []).append(date.fromisoformat(day.strip()))
    return out


def job_for(session: Session, measure: Measure, project: Project) -> MeasureJob:
    """A measure and its project copied into a job, inside the caller's unit of work."""
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
        frame=measure_frame(session, measure_id=measure.id),
        quarters=measure.quarters,
        data_period=per.finest(mrepo.data_periods(session, measure_id=measure.id)),
    )


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
    """The measure `text` names in the channel's project (see `find_measure`); None when there is no project."""
    with unit_of_work(engine) as session:
        found = _channel_project(session, team_id=team_id, channel_id=channel_id)
        if found is None:
            return None
        project, measures = found
        measure, candidates = find_measure(measures, text)
        return Lookup(
            job=job_for(session, measure, project) if measure is not None else None,
            candidates=tuple(m.name for m in candidates),
            names=tuple(m.name for m in measures),
        )


def channel_job(engine: Engine, *, team_id: str, channel_id: str, measure_id: int) -> MeasureJob | None:
    """A measure of the channel's project (never another channel's, nor an archived one), or None."""
    with unit_of_work(engine) as session:
        found = _channel_project(session, team_id=team_id, channel_id=channel_id)
        if found is None:
            return None
        project, measures = found
        measure = next((m for m in measures if m.id == measure_id), None)
        return job_for(session, measure, project) if measure is not None else None


def load_job(engine: Engine, *, team_id: str, project_id: int, measure_id: int) -> MeasureJob | None:
    """A measure of the workspace's project (not archived), or None."""
    with unit_of_work(engine) as session:
        project = repo.get_project(session, team_id=team_id, project_id=project_id)
        if project is None:
            return None
        measures = mrepo.measures_for_project(session, project_id=project_id)
        measure = next((m for m in measures if m.id == measure_id), None)
        return job_for(session, measure, project) if measure is not None else None


def channel_jobs(engine: Engine, *, team_id: str, channel_id: str) -> ProjectJobs | None:
    """Every measure of the channel's project as jobs; None when the channel has no project."""
    with unit_of_work(engine) as session:
        found = _channel_project(session, team_id=team_id, channel_id=channel_id)
        if found is None:
            return None
        project, measures = found
        return ProjectJobs(
            project.name, project.channel_id, tuple(job_for(session, m, project) for m in measures)
        )


def load_jobs(engine: Engine, *, team_id: str, project_id: int) -> ProjectJobs | None:
    """Every measure of the workspace's project as jobs, or None when there is no such project."""
    with unit_of_work(engine) as session:
        project = repo.get_project(session, team_id=team_id, project_id=project_id)
        if project is None:
            return None
        measures = mrepo.measures_for_project(session, project_id=project_id)
        return ProjectJobs(
            project.name, project.channel_id, tuple(job_for(session, m, project) for m in measures)
        )


# ---------------------------------------------------------------- analysis and charts (no database)


def analyse(job: MeasureJob, *, window_months: int) -> an.ChannelAnalysis:
    return an.analyse_for_channel(
        job.frame,
        kind=job.kind,
        direction=job.direction,
        reference=job.reference,
        focus_groups=job.focus,
        period=job.period,
        spc_method=job.spc_method,
        rebase=job.rebase,
        target=job.target,
        today=job.today,
        window_months=window_months,
        target_gap=job.target_gap,
        policy=job.policy,
        measure_type=job.measure_type,
        name=job.name,
        quarters=job.quarters,
        data_period=job.data_period,
    )


def chart_kind(kind: str) -> str:
    return kind if kind in an.COUNT_KINDS else "value"


def safe_stats(a: an.MeasureAnalysis, policy: DisclosurePolicy) -> list[GroupStat]:
    """Group rows for the dot plot: rates from rounded counts, intervals only beside a shown rate."""
    if not a.is_rate:
        return [
            GroupStat(v.code, v.label, 0, 0, v.mean, None, None, is_reference=v.code == a.reference_group)
            for v in a.value_groups
        ]
    out = []
    for g in a.groups:
        sr = safe_rate(g.numerator, g.denominator, policy)
        shown = sr.rate is not None
        out.append(
            GroupStat(
                g.code,
                g.label,
                g.numerator,
                g.denominator,
                sr.rate,
                g.ci_low if shown else None,
                g.ci_high if shown else None,
                is_reference=g.is_reference,
            )
        )
    return out


def first_view(ca: an.ChannelAnalysis, view: str) -> str:
    """The view a new headline opens on: under 80% recording, the completeness chart comes before group
    comparisons."""
    if ca.analysis.recording_critical and view == "groups" and ca.analysis.missing is not None:
        return "completeness"
    return view


def render(
    ca: an.ChannelAnalysis,
    view: str,
    policy: DisclosurePolicy,
    window_months: int,
    *,
    whole_series: bool = False,
) -> charts.Chart:
    """The chart for a view, drawn from the chosen window's periods only (the 3-, 6- and 12-month windows
    differ whenever the data do), or from every period with `whole_series`."""
    a = ca.analysis
    short = {c: _short(c) for c in a.labels}
    since = a.window[0] if a.window is not None and not whole_series else None
    # Periods whose Not stated or Not known was not entered have no shares (blank is unknown): they are left out
    # of the chart rather than drawn, and described, as 0%.
    known = [
        p
        for p in (a.missing.by_period if a.missing is not None else [])
        if p.valid_share is not None and (since is None or p.period >= since)
    ]
    if view == "completeness" and known:
        return charts.completeness_chart(
            [
                (p.period, p.valid_share or 0.0, p.not_stated_share or 0.0, p.not_known_share or 0.0)
                for p in known
            ],
            measure_name=a.name,
            period=a.period,
        )
    if view == "gaps" and (a.groups or a.value_groups):
        suppressed = {g.code for g in a.groups if safe_rate(g.numerator, g.denominator, policy).rate is None}
        return charts.latest_window_dotplot(
            safe_stats(a, policy),
            measure_name=a.name,
            kind=chart_kind(a.kind),
            window_label=an.window_label(a.window, a.period),
            suppressed=suppressed,
        )
    results = list(a.spc.values())
    return charts.group_timeseries(
        results,
        measure_name=a.name,
        kind=chart_kind(a.kind),
        reference=a.reference_group or "",
        labels=short,
        suppressed=ca.suppressed_periods,
        rebase=a.rebase.get(an.TOTAL, ()),
        target=a.target,
        focus=a.focus_groups,
        period=a.period,
        since=since,
    )


def _short(code: str) -> str:
    try:
        return ethnicity.short_label(code)
    except ValueError:
        return code
