"""The /equity analysis and charts over a measure's plain values (`MeasureJob`): no database and no Slack.

bot/services/equity.py loads a job in its own unit of work; what is drawn and said from it is worked out here.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from zoneinfo import ZoneInfo

import pandas as pd

from bot.core import charts, ethnicity
from bot.core.charts.markers import CycleMark
from bot.core.charts.summary_grid import summary_grid
from bot.core.equity import analysis as an
from bot.core.equity import missing as missing_data
from bot.core.equity.disclosure import DisclosurePolicy, safe_rate
from bot.core.equity.shown import safe_stats as safe_stats  # one definition for chat and the pack
from bot.core.equity.summary import SummaryRow, summarise
from bot.core.equity.types import Warning
from bot.services import chart_cache

logger = logging.getLogger(__name__)


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
    cycles: tuple[
        CycleMark, ...
    ] = ()  # the project's PDSA cycles on this measure, for the time-series charts

    @cached_property
    def data_digest(self) -> str:
        """The digest of `frame`'s content for the cache keys, worked out once per job (a job's frame is read by
        the analysis and the charts, never changed)."""
        return chart_cache.frame_digest(self.frame)

    @property
    def policy(self) -> DisclosurePolicy:
        return DisclosurePolicy(threshold=max(self.threshold, 3))

    @property
    def today(self) -> date:
        try:
            return datetime.now(ZoneInfo(self.timezone)).date()
        except (KeyError, ValueError):
            return date.today()


# ---------------------------------------------------------------- analysis and charts (no database)


def analysis_key(job: MeasureJob, *, window_months: int, today: date) -> str:
    """The cache key of a job's analysis: every input the analysis reads, the data frame by its content."""
    return chart_cache.digest(
        "analysis/1",
        job.name,
        job.kind,
        job.measure_type,
        job.direction,
        job.reference,
        tuple(job.focus),
        job.period,
        job.target,
        job.spc_method,
        tuple(sorted((group, tuple(days)) for group, days in job.rebase.items())),
        job.target_gap,
        job.policy,
        job.quarters,
        job.data_period,
        today,
        window_months,
        job.data_digest,
    )


def analyse(job: MeasureJob, *, window_months: int, today: date | None = None) -> an.ChannelAnalysis:
    """The channel analysis of a job (as of `today`, by default the job's own today), from the shared cache
    when the same inputs were analysed before; each caller gets its own copy, so it may change what it gets."""
    day = today if today is not None else job.today
    stored = chart_cache.CACHE.get_or_compute(
        analysis_key(job, window_months=window_months, today=day),
        lambda: pickle.dumps(_analyse(job, window_months=window_months, today=day), pickle.HIGHEST_PROTOCOL),
        size=len,
    )
    result: an.ChannelAnalysis = pickle.loads(stored)  # our own bytes, never from outside the process
    return result


def _analyse(job: MeasureJob, *, window_months: int, today: date) -> an.ChannelAnalysis:
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
        today=today,
        window_months=window_months,
        target_gap=job.target_gap,
        policy=job.policy,
        measure_type=job.measure_type,
        name=job.name,
        quarters=job.quarters,
        data_period=job.data_period,
    )


def chart(
    job: MeasureJob,
    view: str,
    *,
    window_months: int,
    whole_series: bool = False,
    today: date | None = None,
) -> charts.Chart:
    """`render` of the job's analysis with its cycle marks, from the shared cache when drawn before (a Chart is
    frozen: PNG bytes and strings). Pass the `today` the analysis shown beside it used."""
    day = today if today is not None else job.today
    key = chart_cache.digest(
        "chart/1",
        analysis_key(job, window_months=window_months, today=day),
        view,
        whole_series,
        tuple(job.cycles),
    )
    return chart_cache.CACHE.get_or_compute(
        key,
        lambda: render(
            analyse(job, window_months=window_months, today=day),
            view,
            job.policy,
            window_months,
            whole_series=whole_series,
            cycles=job.cycles,
        ),
        size=_chart_size,
    )


def _chart_size(c: charts.Chart) -> int:
    return len(c.png) + len(c.alt_text.encode()) + len(c.title.encode())


def chart_kind(kind: str) -> str:
    return kind if kind in an.COUNT_KINDS else "value"


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
    cycles: Sequence[CycleMark] = (),
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
            cycles=cycles,
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
        direction=a.direction,
        cycles=cycles,
    )


# Warnings about the data themselves (recording, missing or stale periods, absent groups), for the data-quality report.
DATA_QUALITY_WARNINGS = ("COMPLETENESS", "MISSING", "STALE", "GROUP_ABSENT", "OTHER_CATEGORIES")

MissingRow = tuple[str, missing_data.MissingSummary | None, list[Warning]]


def missing_report(
    jobs: Sequence[MeasureJob], *, max_charts: int = 3
) -> tuple[list[MissingRow], list[charts.Chart]]:
    """The `/equity missing` report: per measure with data, its recording summary and data-quality warnings (measures
    of values have none), and completeness charts over the whole history for the first `max_charts` with shares."""
    rows: list[MissingRow] = []
    drawn: list[charts.Chart] = []
    for job in jobs:
        if job.frame.empty:
            continue
        if job.kind not in an.COUNT_KINDS:
            rows.append((job.name, None, []))
            continue
        today = job.today
        ca = analyse(job, window_months=3, today=today)
        a = ca.analysis
        rows.append(
            (job.name, a.missing, [w for w in a.warnings if w.code.startswith(DATA_QUALITY_WARNINGS)])
        )
        known = a.missing is not None and any(p.valid_share is not None for p in a.missing.by_period)
        if known and len(drawn) < max_charts:
            # The data-quality report shows recording over the whole history, not one window.
            drawn.append(chart(job, "completeness", window_months=3, whole_series=True, today=today))
    return rows, drawn


def _short(code: str) -> str:
    try:
        return ethnicity.short_label(code)
    except ValueError:
        return code


# ---------------------------------------------------------------- the summary grid


@dataclass(frozen=True)
class ProjectSummary:
    """The summary grid of a project's measures, as plain rows (safe to post), and the measures left out."""

    project_name: str
    rows: tuple[SummaryRow, ...]
    without_data: tuple[str, ...] = ()  # measures with no data yet
    failed: tuple[str, ...] = ()  # measures whose data could not be analysed


def summarise_jobs(
    project_name: str, jobs: Sequence[MeasureJob], *, window_months: int = 3
) -> ProjectSummary:
    """Analyse each measure as the channel post does (no database, no Slack) and build the grid's rows."""
    analyses: list[an.ChannelAnalysis] = []
    policy: DisclosurePolicy | None = None
    empty: list[str] = []
    failed: list[str] = []
    for job in jobs:
        if job.frame.empty:
            empty.append(job.name)
            continue
        try:
            analyses.append(analyse(job, window_months=window_months))
        except ValueError:
            logger.warning("Summary grid: could not analyse measure %s", job.measure_id)
            failed.append(job.name)
            continue
        policy = job.policy
    rows = summarise(analyses, policy=policy) if policy is not None else []
    return ProjectSummary(project_name, tuple(rows), tuple(empty), tuple(failed))


def summary_chart(summary: ProjectSummary) -> charts.Chart:
    """The summary grid's PNG, from the shared cache when the same rows were drawn before."""
    return chart_cache.CACHE.get_or_compute(
        chart_cache.digest("summary/1", summary.project_name, summary.rows),
        lambda: summary_grid(list(summary.rows), project_name=summary.project_name),
        size=_chart_size,
    )
