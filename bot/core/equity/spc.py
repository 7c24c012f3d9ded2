"""Statistical process control: NHS Making Data Count XmR charts and qicharts2-style p, I and run charts."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.stats import binom

from bot.core.equity.types import Direction, SpcMethod, SpcPoint, SpcResult, SpcSummary

Improvement = Literal["increase", "decrease", "neutral"]
QicChartType = Literal["run", "i", "p"]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

MDC_LIMIT = 2.66  # NHSRplotthedots uses 2.66 exactly, not 3 / 1.128
MDC_NEAR_LIMIT = 2 * MDC_LIMIT / 3
MR_SCREEN_FACTOR = 3.267
D2 = 1.128
MIN_FIX_AFTER = 12
DEFAULT_MIN_POINTS = 13

COMMON_CAUSE_LABEL = "Common Cause"
SIGNAL_OUTSIDE_LIMITS = "Outside limits"
SIGNAL_LONG_RUN = "Unusually long run"
SIGNAL_FEW_CROSSINGS = "Too few crossings"

DIRECTION_TO_IMPROVEMENT: dict[str, Improvement] = {
    "higher": "increase",
    "lower": "decrease",
    "neither": "neutral",
}
_IMPROVEMENT_SIGN: dict[str, int] = {"increase": 1, "decrease": -1, "neutral": 0}


# --- shared helpers -------------------------------------------------------------------------------


def _as_float_array(values: Sequence[float | None] | FloatArray) -> FloatArray:
    return np.array([math.nan if v is None else float(v) for v in values], dtype=np.float64)


def _nanmean(a: FloatArray) -> float:
    """R's mean(x, na.rm = TRUE): NaN when nothing is left."""
    kept = a[~np.isnan(a)]
    if kept.size == 0:
        return math.nan
    return math.fsum(kept.tolist()) / kept.size


def _none_if_nan(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def _segment_ids(n: int, starts: Sequence[int]) -> IntArray:
    """0-based segment number of each index; a start at 0 or beyond the end changes nothing."""
    ids = np.zeros(n, dtype=np.int64)
    for start in sorted(set(starts)):
        if 0 < start < n:
            ids[start:] += 1
    return ids


def _baseline_mask(valid: BoolArray, fix_after: int | None) -> BoolArray:
    """Rows up to and including the fix_after-th row with a value (all rows when fix_after is None)."""
    if fix_after is None:
        return np.ones(valid.size, dtype=np.bool_)
    # A row is in the baseline while fewer than fix_after values precede it.
    before: IntArray = np.cumsum(valid, dtype=np.int64) - valid.astype(np.int64)
    return np.asarray(before < fix_after, dtype=np.bool_)


def _amr(y: FloatArray, *, screen: bool) -> float:
    """Average moving range; moving ranges next to a missing value are skipped, as in R with na.rm."""
    mr = np.abs(np.diff(y))
    amr = _nanmean(mr)
    # Nelson's screen: one spike inflates two moving ranges, so drop those before sizing the limits.
    # Skipped when amr is 0, where R would drop every range and return NaN limits.
    if screen and amr > 0:
        amr = _nanmean(mr[mr < MR_SCREEN_FACTOR * amr])
    return amr


def anhoej_limits(n_useful: int) -> tuple[int, int]:
    """Anhøj critical values (longest_run_max, crossings_min) for n_useful points off the centre line.

    longest_run_max = round(log2(n)) + 3 (R rounds half to even, as Python does);
    crossings_min = qbinom(0.05, n - 1, 0.5).
    """
    if n_useful < 1:
        raise ValueError(f"n_useful must be at least 1, got {n_useful}")
    longest_run_max = round(math.log2(n_useful)) + 3
    crossings_min = int(binom.ppf(0.05, n_useful - 1, 0.5))
    return longest_run_max, crossings_min


@dataclass(frozen=True)
class RunsAnalysis:
    """Anhøj runs analysis of one segment around its centre line (points on the line are not useful)."""

    n_obs: int
    n_useful: int
    longest_run: int | None
    longest_run_max: int | None
    crossings: int | None
    crossings_min: int | None
    long_run: bool
    few_crossings: bool

    @property
    def signal(self) -> bool:
        return self.long_run or self.few_crossings


def runs_analysis(y: FloatArray, cl: FloatArray) -> tuple[RunsAnalysis, BoolArray]:
    """qicharts2's runs.analysis() for one segment, plus a mask of the points in a too-long run."""
    with np.errstate(invalid="ignore"):
        side = np.sign(y - cl)
    useful = ~np.isnan(side) & (side != 0)
    idx = np.flatnonzero(useful)
    in_long_run = np.zeros(y.size, dtype=np.bool_)
    n_obs = int(y.size)  # qicharts2 counts missing values too
    if idx.size == 0:
        empty = RunsAnalysis(n_obs, 0, None, None, None, None, long_run=False, few_crossings=False)
        return empty, in_long_run
    signs = side[idx]
    breaks = np.flatnonzero(np.diff(signs) != 0) + 1
    run_starts = np.concatenate(([0], breaks))
    run_ends = np.concatenate((breaks, [signs.size]))
    lengths = run_ends - run_starts
    longest = int(lengths.max())
    longest_max, crossings_min = anhoej_limits(int(idx.size))
    crossings = int(lengths.size - 1)
    for start, end, length in zip(run_starts, run_ends, lengths, strict=True):
        if length > longest_max:
            in_long_run[idx[start:end]] = True
    result = RunsAnalysis(
        n_obs=n_obs,
        n_useful=int(idx.size),
        longest_run=longest,
        longest_run_max=longest_max,
        crossings=crossings,
        crossings_min=crossings_min,
        long_run=longest > longest_max,
        few_crossings=crossings < crossings_min,
    )
    return result, in_long_run


# --- NHS Making Data Count (NHSRplotthedots) ------------------------------------------------------


def _spread_back(ends: BoolArray, width: int) -> BoolArray:
    """Mark each point for which one of it and the next width-1 points ends a qualifying run."""
    out = np.zeros(ends.size, dtype=np.bool_)
    for i in np.flatnonzero(ends):
        out[max(0, i - width + 1) : i + 1] = True
    return out


def mdc_special_causes(
    y: FloatArray, *, mean: float, lpl: float, upl: float, nlpl: float, nupl: float
) -> list[list[str]]:
    """Every MDC rule label that fires on each point of one segment (no missing values), in precedence order.

    The first label of a point is NHSRplotthedots' `special_cause_type`; an empty list is "Common Cause".
    """
    n = y.size
    rtm = np.sign(y - mean)
    outside = (y > upl) | (y < lpl)
    close = ~outside & ((y < nlpl) | (y > nupl))

    shift_end = np.zeros(n, dtype=np.bool_)
    for i in range(6, n):
        shift_end[i] = rtm[i] != 0 and bool(np.all(rtm[i - 6 : i] == rtm[i]))
    part_shift = _spread_back(shift_end, 7)

    steps = np.sign(np.diff(y))
    trend_end = np.zeros(n, dtype=np.bool_)
    for i in range(6, n):
        window = steps[i - 6 : i]
        trend_end[i] = bool(np.all(window == 1) or np.all(window == -1))
    part_trend = _spread_back(trend_end, 7)

    part_two_in_three = np.zeros(n, dtype=np.bool_)
    for i in np.flatnonzero(close).tolist():
        for j in range(max(0, i - 2), min(i, n - 3) + 1):
            if close[j : j + 3].sum() >= 2 and abs(rtm[j : j + 3].sum()) == 3:
                part_two_in_three[i] = True

    labels: list[list[str]] = []
    for i in range(n):
        side = "Above" if rtm[i] > 0 else "Below"
        fired: list[str] = []
        if outside[i]:
            fired.append("Above UCL" if rtm[i] == 1 else "Below LCL")
        if part_trend[i]:
            # A point inside a trend takes the direction of the step after it, the trend's last point
            # the step before it (matters only where a rising and a falling trend share a peak).
            if i + 1 < n and part_trend[i + 1]:
                step = steps[i]
            else:
                step = steps[i - 1] if i > 0 else 0.0
            fired.append("7 Point Trend (Increasing)" if step == 1 else "7 Point Trend (Decreasing)")
        if part_two_in_three[i]:
            fired.append(f"2 in 3 {side} CL")
        if part_shift[i]:
            fired.append(f"7 Points {side} CL")
        labels.append(fired)
    return labels


def mdc_point_type(special_cause_type: str, improvement: Improvement) -> str:
    """NHSRplotthedots' point_type from a special-cause label and the improvement direction."""
    if "Above" in special_cause_type or "Increasing" in special_cause_type:
        high = 1
    elif "Below" in special_cause_type or "Decreasing" in special_cause_type:
        high = -1
    else:
        return "common_cause"
    return _classify(high, improvement)


def _classify(high: int, improvement: Improvement) -> str:
    """Variation type of a signal on the high (1) or low (-1) side."""
    sign = _IMPROVEMENT_SIGN[improvement]
    if high == 0:
        return "common_cause"
    if sign == 0:
        return "special_cause_neutral_high" if high > 0 else "special_cause_neutral_low"
    return "special_cause_improvement" if high * sign > 0 else "special_cause_concern"


@dataclass(frozen=True)
class MdcSegment:
    """One rebase segment: its own mean and process limits."""

    start: int
    n: int  # points with a value
    mean: float
    lpl: float
    upl: float
    short_group_warning: bool


@dataclass(frozen=True)
class MdcChart:
    y: FloatArray
    segment: IntArray
    mean: FloatArray
    lpl: FloatArray
    upl: FloatArray
    nlpl: FloatArray
    nupl: FloatArray
    signals: list[list[str]]
    point_type: list[str]
    segments: list[MdcSegment]

    @property
    def special_cause_type(self) -> list[str]:
        return [s[0] if s else COMMON_CAUSE_LABEL for s in self.signals]


def _check_fix_after(fix_after: int | None) -> None:
    if fix_after is not None and fix_after < MIN_FIX_AFTER:
        raise ValueError(
            f"fix_after must be at least {MIN_FIX_AFTER} points (got {fix_after}): "
            "limits fixed on fewer points are not stable enough to judge later points against"
        )


def mdc_chart(
    values: Sequence[float | None] | FloatArray,
    *,
    improvement: Improvement,
    segment_starts: Sequence[int] = (),
    fix_after: int | None = None,
    screen_outliers: bool = True,
    min_points: int = DEFAULT_MIN_POINTS,
) -> MdcChart:
    """XmR chart with NHS Making Data Count rules, as NHSRplotthedots::ptd_spc computes it.

    Values must be in time order; None/NaN marks a missing period, which gets the segment's lines but is
    skipped by the rules. `segment_starts` are indices where a rebase segment begins; `fix_after` bases
    each segment's mean and moving ranges on its first N values only.
    """
    _check_fix_after(fix_after)
    y = _as_float_array(values)
    n = y.size
    valid = ~np.isnan(y)
    segment = _segment_ids(n, segment_starts)
    mean = np.full(n, math.nan)
    amr = np.full(n, math.nan)
    signals: list[list[str]] = [[] for _ in range(n)]
    segments: list[MdcSegment] = []
    for seg in np.unique(segment):
        rows = np.flatnonzero(segment == seg)
        y_seg = y[rows]
        base = _baseline_mask(valid[rows], fix_after)
        seg_mean = _nanmean(y_seg[base])
        seg_amr = _amr(y_seg[base], screen=screen_outliers)
        mean[rows] = seg_mean
        amr[rows] = seg_amr
        lpl, upl = seg_mean - MDC_LIMIT * seg_amr, seg_mean + MDC_LIMIT * seg_amr
        nlpl, nupl = seg_mean - MDC_NEAR_LIMIT * seg_amr, seg_mean + MDC_NEAR_LIMIT * seg_amr
        kept = rows[valid[rows]]
        for i, fired in zip(
            kept,
            mdc_special_causes(y[kept], mean=seg_mean, lpl=lpl, upl=upl, nlpl=nlpl, nupl=nupl),
            strict=True,
        ):
            signals[i] = fired
        segments.append(
            MdcSegment(
                start=int(rows[0]),
                n=int(kept.size),
                mean=seg_mean,
                lpl=lpl,
                upl=upl,
                short_group_warning=kept.size < min_points,
            )
        )
    point_type = [mdc_point_type(s[0], improvement) if s else "common_cause" for s in signals]
    return MdcChart(
        y=y,
        segment=segment,
        mean=mean,
        lpl=mean - MDC_LIMIT * amr,
        upl=mean + MDC_LIMIT * amr,
        nlpl=mean - MDC_NEAR_LIMIT * amr,
        nupl=mean + MDC_NEAR_LIMIT * amr,
        signals=signals,
        point_type=point_type,
        segments=segments,
    )


def assurance_type(
    target: float | None, *, lower: float | None, upper: float | None, improvement: Improvement
) -> str | None:
    """MDC assurance icon: can the process be relied on to meet the target? None without a target or limits."""
    if target is None or improvement == "neutral" or lower is None or upper is None:
        return None
    increasing = improvement == "increase"
    if target > upper:
        return "consistent_fail" if increasing else "consistent_pass"
    if target < lower:
        return "consistent_pass" if increasing else "consistent_fail"
    return "inconsistent"


# --- qicharts2: run, I and p charts ---------------------------------------------------------------


@dataclass(frozen=True)
class QicChart:
    """Per-point columns as qicharts2::qic()$data names them, plus one runs analysis per part."""

    chart: QicChartType
    y: FloatArray
    n: FloatArray  # denominators for p charts, NaN otherwise
    cl: FloatArray
    lcl: FloatArray
    ucl: FloatArray
    lcl_95: FloatArray
    ucl_95: FloatArray
    part: IntArray  # 1-based, like qicharts2
    baseline: BoolArray
    sigma_signal: BoolArray
    runs_signal: BoolArray
    long_run: BoolArray  # the point belongs to a run longer than longest_run_max
    runs: list[RunsAnalysis]


def qic_chart(
    chart: QicChartType,
    *,
    values: Sequence[float | None] | FloatArray | None = None,
    numerators: Sequence[int] | None = None,
    denominators: Sequence[int] | None = None,
    freeze: int | None = None,
    part_starts: Sequence[int] = (),
    screened_mr: bool = True,
) -> QicChart:
    """Run, I or p chart as qicharts2::qic() computes it (3-sigma rule plus the Anhøj runs rules).

    A p chart needs numerators and denominators; a period with denominator 0 has no value and no limits.
    `freeze` bases each part's centre line and limits on its first N values (qicharts2 counts from the
    start of the series; the two agree when there is one part). `part_starts` are indices where a new
    part (rebase) begins. `screened_mr` mirrors option qic.screenedmr (TRUE once qicharts2 is attached).
    """
    if chart == "p":
        if numerators is None or denominators is None:
            raise ValueError("a p chart needs numerators and denominators")
        num = np.asarray(numerators, dtype=np.float64)
        n = np.asarray(denominators, dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            y = np.where(n > 0, num / np.where(n > 0, n, 1.0), math.nan)
    else:
        if values is None:
            raise ValueError(f"a {chart} chart needs values")
        y = _as_float_array(values)
        num = np.full(y.size, math.nan)
        n = np.full(y.size, math.nan)
    size = y.size
    valid = ~np.isnan(y)
    segment = _segment_ids(size, part_starts)
    cl = np.full(size, math.nan)
    lcl, ucl = np.full(size, math.nan), np.full(size, math.nan)
    lcl_95, ucl_95 = np.full(size, math.nan), np.full(size, math.nan)
    baseline = np.zeros(size, dtype=np.bool_)
    runs_signal = np.zeros(size, dtype=np.bool_)
    long_run = np.zeros(size, dtype=np.bool_)
    runs: list[RunsAnalysis] = []
    for seg in np.unique(segment):
        rows = np.flatnonzero(segment == seg)
        base = _baseline_mask(valid[rows], freeze)
        baseline[rows] = base
        y_base = y[rows][base]
        if chart == "run":
            kept = y_base[~np.isnan(y_base)]
            cl[rows] = float(np.median(kept)) if kept.size else math.nan
        elif chart == "i":
            centre = _nanmean(y_base)
            stdev = _amr(y_base, screen=screened_mr) / D2
            cl[rows] = centre
            lcl[rows], ucl[rows] = centre - 3 * stdev, centre + 3 * stdev
            lcl_95[rows], ucl_95[rows] = centre - 2 * stdev, centre + 2 * stdev
        else:
            use = base & valid[rows]
            den_total = float(n[rows][use].sum())
            p_bar = float(num[rows][use].sum()) / den_total if den_total > 0 else math.nan
            cl[rows] = p_bar
            n_seg = n[rows]
            with np.errstate(invalid="ignore", divide="ignore"):
                sd = np.where(
                    n_seg > 0, np.sqrt(p_bar * (1 - p_bar) / np.where(n_seg > 0, n_seg, 1.0)), math.nan
                )
            lcl[rows] = np.maximum(p_bar - 3 * sd, 0.0)
            ucl[rows] = np.minimum(p_bar + 3 * sd, 1.0)
            lcl_95[rows] = np.maximum(p_bar - 2 * sd, 0.0)
            ucl_95[rows] = np.minimum(p_bar + 2 * sd, 1.0)
        analysis, in_long = runs_analysis(y[rows], cl[rows])
        runs.append(analysis)
        runs_signal[rows] = analysis.signal
        long_run[rows] = in_long
    with np.errstate(invalid="ignore"):
        sigma_signal = np.asarray((y > ucl) | (y < lcl), dtype=np.bool_)
    return QicChart(
        chart=chart,
        y=y,
        n=n,
        cl=cl,
        lcl=lcl,
        ucl=ucl,
        lcl_95=lcl_95,
        ucl_95=ucl_95,
        part=segment + 1,
        baseline=baseline,
        sigma_signal=sigma_signal,
        runs_signal=runs_signal,
        long_run=long_run,
        runs=runs,
    )


# --- the bot's entry points -----------------------------------------------------------------------


def _as_date(value: object) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return pd.Timestamp(str(value)).date()


def _rebase_starts(periods: Sequence[date], rebase: Sequence[date]) -> list[int]:
    """Each rebase date starts a new segment at the first period on or after it."""
    starts = []
    for when in rebase:
        later = [i for i, p in enumerate(periods) if p >= when]
        if later:
            starts.append(later[0])
    return starts


def _check_lengths(n: int, **columns: Sequence[object] | None) -> None:
    for name, column in columns.items():
        if column is not None and len(column) != n:
            raise ValueError(f"{name} has {len(column)} entries but there are {n} periods")


def spc_for_series(
    periods: Sequence[date],
    *,
    values: Sequence[float] | None = None,
    numerators: Sequence[int] | None = None,
    denominators: Sequence[int] | None = None,
    method: SpcMethod,
    direction: Direction = "neither",
    rebase: Sequence[date] = (),
    fix_after: int | None = None,
    target: float | None = None,
    screen_outliers: bool = True,
    group: str = "ALL",
    min_points: int = DEFAULT_MIN_POINTS,
) -> SpcResult:
    """One SPC chart for one group's series.

    Methods:
        "mdc": XmR chart with NHS Making Data Count rules (NHSRplotthedots 0.2.2). Signals per point are
            every rule label that fired, in precedence order ("Above UCL"/"Below LCL",
            "7 Point Trend (Increasing/Decreasing)", "2 in 3 Above/Below CL", "7 Points Above/Below CL");
            the first decides `variation`. Uses `values`, or numerator/denominator when values is None.
        "p": p chart as qicharts2 (per-point 3-sigma limits, Anhøj runs rules around p-bar).
        "run": run chart around the median with the Anhøj rules (no limits).
    For "p" and "run", signals are "Outside limits" on a point beyond its limits, "Unusually long run" on
    the points of a run longer than the Anhøj maximum, and "Too few crossings" on every point with a value
    in a segment that crosses its centre line too rarely. A signalled point's variation follows its side
    of the centre line; a point on the centre line stays common_cause.

    Args:
        periods: one date per point, in any order (points come back sorted); duplicates are rejected.
        direction: which way is better; "higher"/"lower" give improvement/concern, "neither" neutral_high/low.
        rebase: dates from which a new segment with its own centre line and limits starts (the first
            period on or after each date). For p and run charts these are qicharts2's parts.
        fix_after: base each segment's centre line and limits on its first N points with a value
            (N >= 12); later points are judged against them (qicharts2's freeze).
        target: for the assurance icon, judged against the last segment's limits ("mdc") or the last
            point's limits ("p"); not given for direction "neither".
        screen_outliers: drop moving ranges >= 3.267 x their average before sizing XmR limits.
        min_points: a segment with fewer points with a value has trial limits (summary.trial_limits).

    A period with no value (denominator 0) has value None, no limits and no signals, and is left out of
    every calculation. Summary runs fields describe the last segment; n_points counts points with a value.
    """
    if method not in ("mdc", "p", "run"):
        raise ValueError(f"unknown SPC method {method!r}")
    if direction not in DIRECTION_TO_IMPROVEMENT:
        raise ValueError(f"unknown direction {direction!r}")
    improvement = DIRECTION_TO_IMPROVEMENT[direction]
    _check_fix_after(fix_after)
    size = len(periods)
    _check_lengths(size, values=values, numerators=numerators, denominators=denominators)
    if (numerators is None) != (denominators is None):
        raise ValueError("give both numerators and denominators, or neither")
    if values is None and numerators is None:
        raise ValueError("give values, or numerators and denominators")
    if method == "p" and numerators is None:
        raise ValueError("a p chart needs numerators and denominators")
    if len(set(periods)) != size:
        raise ValueError("periods must be unique within a series")
    if numerators is not None and denominators is not None:
        for num, den in zip(numerators, denominators, strict=True):
            if den < 0 or num < 0 or num > den:
                raise ValueError(f"invalid count {num}/{den}: need 0 <= numerator <= denominator")

    order = sorted(range(size), key=lambda i: periods[i])
    dates = [periods[i] for i in order]
    nums = None if numerators is None else [int(numerators[i]) for i in order]
    dens = None if denominators is None else [int(denominators[i]) for i in order]
    ys: list[float | None]
    if values is not None and method != "p":
        ys = [None if values[i] is None or math.isnan(values[i]) else float(values[i]) for i in order]
    elif nums is not None and dens is not None:
        ys = [num / den if den > 0 else None for num, den in zip(nums, dens, strict=True)]
    else:
        ys = []
    starts = _rebase_starts(dates, rebase)

    if method == "mdc":
        return _mdc_result(
            dates, ys, nums, dens, starts, improvement, fix_after, target, screen_outliers, group, min_points
        )
    chart = qic_chart(
        method,
        values=ys if method == "run" else None,
        numerators=nums,
        denominators=dens,
        freeze=fix_after,
        part_starts=starts,
        screened_mr=screen_outliers,
    )
    return _qic_result(dates, chart, nums, dens, method, improvement, target, group, min_points)


def _count(counts: list[int] | None, i: int) -> int | None:
    return None if counts is None else counts[i]


def _mdc_result(
    dates: list[date],
    ys: list[float | None],
    nums: list[int] | None,
    dens: list[int] | None,
    starts: list[int],
    improvement: Improvement,
    fix_after: int | None,
    target: float | None,
    screen_outliers: bool,
    group: str,
    min_points: int,
) -> SpcResult:
    chart = mdc_chart(
        ys,
        improvement=improvement,
        segment_starts=starts,
        fix_after=fix_after,
        screen_outliers=screen_outliers,
        min_points=min_points,
    )
    points = [
        SpcPoint(
            period=day,
            value=ys[i],
            centre=_none_if_nan(float(chart.mean[i])),
            lower=_none_if_nan(float(chart.lpl[i])) if ys[i] is not None else None,
            upper=_none_if_nan(float(chart.upl[i])) if ys[i] is not None else None,
            signals=list(chart.signals[i]),
            variation=chart.point_type[i],
            numerator=_count(nums, i),
            denominator=_count(dens, i),
        )
        for i, day in enumerate(dates)
    ]
    valued = [p for p in points if p.value is not None]
    last_segment = chart.segments[-1] if chart.segments else None
    summary = SpcSummary(
        n_points=len(valued),
        variation_type=valued[-1].variation if valued else None,
        assurance_type=assurance_type(
            target,
            lower=_none_if_nan(last_segment.lpl) if last_segment else None,
            upper=_none_if_nan(last_segment.upl) if last_segment else None,
            improvement=improvement,
        ),
        trial_limits=not chart.segments or any(s.short_group_warning for s in chart.segments),
    )
    return SpcResult(group=group, method="mdc", points=points, summary=summary)


def _qic_result(
    dates: list[date],
    chart: QicChart,
    nums: list[int] | None,
    dens: list[int] | None,
    method: SpcMethod,
    improvement: Improvement,
    target: float | None,
    group: str,
    min_points: int,
) -> SpcResult:
    points: list[SpcPoint] = []
    for i, day in enumerate(dates):
        y = float(chart.y[i])
        has_value = not math.isnan(y)
        runs = chart.runs[int(chart.part[i]) - 1]
        signals: list[str] = []
        if chart.sigma_signal[i]:
            signals.append(SIGNAL_OUTSIDE_LIMITS)
        if chart.long_run[i]:
            signals.append(SIGNAL_LONG_RUN)
        if has_value and runs.few_crossings:
            signals.append(SIGNAL_FEW_CROSSINGS)
        variation = "common_cause"
        if signals and not math.isnan(chart.cl[i]):
            variation = _classify(int(np.sign(y - chart.cl[i])), improvement)
        points.append(
            SpcPoint(
                period=day,
                value=y if has_value else None,
                centre=_none_if_nan(float(chart.cl[i])),
                lower=_none_if_nan(float(chart.lcl[i])) if has_value else None,
                upper=_none_if_nan(float(chart.ucl[i])) if has_value else None,
                signals=signals,
                variation=variation,
                numerator=_count(nums, i),
                denominator=_count(dens, i),
            )
        )
    valued = [p for p in points if p.value is not None]
    last = chart.runs[-1] if chart.runs else None
    segment_sizes = [
        int(np.count_nonzero(~np.isnan(chart.y[chart.part == k + 1]))) for k in range(len(chart.runs))
    ]
    summary = SpcSummary(
        n_points=len(valued),
        longest_run=last.longest_run if last else None,
        longest_run_max=last.longest_run_max if last else None,
        crossings=last.crossings if last else None,
        crossings_min=last.crossings_min if last else None,
        runs_signal=last.signal if last else None,
        variation_type=valued[-1].variation if valued else None,
        assurance_type=assurance_type(
            target,
            lower=valued[-1].lower if valued else None,
            upper=valued[-1].upper if valued else None,
            improvement=improvement,
        ),
        trial_limits=not segment_sizes or any(size < min_points for size in segment_sizes),
    )
    return SpcResult(group=group, method=method, points=points, summary=summary)


def spc_for_groups(
    frame: pd.DataFrame,
    *,
    method: SpcMethod,
    direction: Direction = "neither",
    rebase: Mapping[str, Sequence[date]] | None = None,
    fix_after: int | None = None,
    target: float | None = None,
    screen_outliers: bool = True,
    min_points: int = DEFAULT_MIN_POINTS,
) -> dict[str, SpcResult]:
    """One chart per group from a tidy frame, keyed by group code in order of first appearance.

    The frame has columns `period` (date), `group` (str), and either `numerator` and `denominator`
    (ints) or `value` (float); with both, values are charted and the counts kept on the points.
    `rebase` maps a group code to its rebase dates; dates under "ALL" apply to every group.
    """
    has_counts = {"numerator", "denominator"} <= set(frame.columns)
    has_values = "value" in frame.columns
    missing = {"period", "group"} - set(frame.columns)
    if missing or not (has_counts or has_values):
        raise ValueError(
            "frame needs columns period, group and either numerator+denominator or value; "
            f"it has {sorted(map(str, frame.columns))}"
        )
    rebase = rebase or {}
    results: dict[str, SpcResult] = {}
    for code in pd.unique(frame["group"]):
        key = str(code)
        rows = frame[frame["group"] == code]
        dates = [_as_date(v) for v in rows["period"].tolist()]
        values = None
        if has_values:
            values = [math.nan if v is None or pd.isna(v) else float(v) for v in rows["value"].tolist()]
        results[key] = spc_for_series(
            dates,
            values=values,
            numerators=[int(v) for v in rows["numerator"].tolist()] if has_counts else None,
            denominators=[int(v) for v in rows["denominator"].tolist()] if has_counts else None,
            method=method,
            direction=direction,
            rebase=[*rebase.get("ALL", ()), *rebase.get(key, ())],
            fix_after=fix_after,
            target=target,
            screen_outliers=screen_outliers,
            group=key,
            min_points=min_points,
        )
    return results
