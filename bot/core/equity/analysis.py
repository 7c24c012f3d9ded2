"""The equity analysis of one measure: group rates and gaps, SPC per group, missing data and an honest headline.

Pure: a tidy frame in (columns period, group, numerator, denominator, value), a MeasureAnalysis out. The
numbers are unrounded (analyst output); `analyse_for_channel` adds what disclosure control needs before
anything reaches Slack (coarser periods or the five high-level groups when most cells are too small).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, cast

import pandas as pd

from bot.core import ethnicity
from bot.core import periods as per
from bot.core.equity import missing as missing_data
from bot.core.equity import stats, wording
from bot.core.equity.disclosure import DisclosurePolicy, needs_grouping, safe_rate
from bot.core.equity.spc import spc_for_series
from bot.core.equity.types import (
    Direction,
    GapChange,
    GroupCounts,
    GroupStat,
    Heterogeneity,
    SpcMethod,
    SpcResult,
    Warning,
)
from bot.core.equity.wording import period_label as period_label  # re-exported: callers read them here
from bot.core.equity.wording import recent_concerns as recent_concerns
from bot.core.equity.wording import window_label as window_label

logger = logging.getLogger(__name__)

COUNT_KINDS = ("proportion", "rate_per_1000")
VALUE_KINDS = ("value", "count")
PERIODS = per.PERIODS
# The latest window: about three months whatever the period length.
DEFAULT_WINDOW = {"day": 91, "week": 13, "month": 3, "quarter": 1, "fy_quarter": 1, "year": 1, "fy_year": 1}
PERIODS_PER_MONTH = per.PER_MONTH
# Disclosure control groups into these when most cells are small ("month" goes to the measure's quarters).
COARSER = {"day": "week", "week": "month", "month": "quarter"}
_GROUPED_AS = {
    "week": "weekly periods",
    "month": "monthly periods",
    "quarter": "quarterly periods",
    "fy_quarter": "financial-year quarters",
}
MISSING_CODES = ethnicity.MISSING_CODES
NATIONAL = ethnicity.NATIONAL_CODES
TOTAL = ethnicity.ALL
OTHERS = ethnicity.OTHERS
BEST = ethnicity.BEST
_HL_OF = {code: key for key, members in ethnicity.HIGH_LEVEL_GROUPS.items() for code in members}
METHOD_NAMES: dict[str, str] = {
    "p": "p-chart (qicharts2 rules: limits at three sigma from each period's denominator, Anhøj runs rules)",
    "mdc": "XmR chart with NHS Making Data Count rules",
    "run": "run chart with the Anhøj rules",
}
CRITICAL_VALID_SHARE = 0.80
STATS_METHODS = (
    "Wilson 95% intervals; rate ratio with Katz log interval; rate difference with Newcombe interval; "
    "Pearson chi-square without continuity correction; change in the gap by difference in differences "
    "and ratio of rate ratios (binomial GLM interaction)"
)


@dataclass
class ValueStat:
    """One group's mean of a value (or count) measure over the latest window: no rates or intervals."""

    code: str
    label: str
    mean: float | None
    periods: int
    latest: float | None


@dataclass
class MeasureAnalysis:
    name: str
    kind: str
    direction: Direction
    period: str
    spc_method: SpcMethod
    reference_requested: str
    reference_group: (
        str | None
    )  # the resolved reference: a code, a "HL:" key, "OTHERS", or None (none usable)
    focus_groups: list[str]
    periods: list[date]
    window: tuple[date, date] | None
    baseline: tuple[date, date] | None
    recent: tuple[date, date] | None
    groups: list[GroupStat]
    value_groups: list[ValueStat]
    heterogeneity: Heterogeneity | None
    gaps: list[GapChange]
    spc: dict[str, SpcResult]
    missing: missing_data.MissingSummary | None
    warnings: list[Warning]
    labels: dict[str, str]
    frame: pd.DataFrame  # tidy, with the derived groups (high-level, OTHERS) added
    window_counts: dict[str, GroupCounts] = field(default_factory=dict)
    baseline_counts: dict[str, GroupCounts] = field(default_factory=dict)
    recent_counts: dict[str, GroupCounts] = field(default_factory=dict)
    rebase: dict[str, list[date]] = field(default_factory=dict)
    target: float | None = None
    headline: str = ""
    # group code -> the key of the reference it was compared with, when that is not the reference's own row:
    # "REF:<code>" holds the reference without the group (it contained it) or all the other groups combined.
    reference_for: dict[str, str] = field(default_factory=dict)
    gap_comparisons: int = 0  # tests in the Holm family for the change in the gap

    @property
    def is_rate(self) -> bool:
        return self.kind in COUNT_KINDS

    @property
    def recording_critical(self) -> bool:
        """Under 80% of records have a valid ethnic category: no disparity estimate may be headlined."""
        return (
            self.is_rate
            and self.missing is not None
            and self.missing.valid_share is not None
            and self.missing.valid_share < CRITICAL_VALID_SHARE
        )

    @property
    def method_text(self) -> str:
        spc = METHOD_NAMES.get(self.spc_method, self.spc_method)
        if self.is_rate:
            many = (
                f"; p values for the change in the gap are Holm-adjusted across the {self.gap_comparisons} tests "
                f"made for this measure (absolute and relative scale for each of {len(self.gaps)} gaps)"
                if self.gap_comparisons > 2
                else ""
            )
            return f"{STATS_METHODS}{many}. SPC: {spc}."
        return f"Means per group over the window (no rates or intervals for a value measure). SPC: {spc}."

    def to_json(self) -> dict[str, Any]:
        """Everything an analyst needs, unrounded; rates are fractions whatever the kind."""
        return {
            "measure": self.name,
            "kind": self.kind,
            "direction": self.direction,
            "period": self.period,
            "reference_group": self.reference_group,
            "reference_requested": self.reference_requested,
            "focus_groups": self.focus_groups,
            "window": _window_json(self.window),
            "baseline": _window_json(self.baseline),
            "recent": _window_json(self.recent),
            "groups": [_group_json(g) for g in self.groups]
            if self.is_rate
            else [_value_json(v) for v in self.value_groups],
            "heterogeneity": None
            if self.heterogeneity is None
            else {
                "chi2": self.heterogeneity.chi2,
                "df": self.heterogeneity.df,
                "p_value": self.heterogeneity.p_value,
                "method": self.heterogeneity.method,
            },
            "gaps": [_gap_json(g) for g in self.gaps],
            "spc": [_spc_json(r) for r in self.spc.values()],
            "missing": _missing_json(self.missing),
            "warnings": [
                {"code": w.code, "severity": w.severity, "message": w.message} for w in self.warnings
            ],
            "headline": self.headline,
            "methods": self.method_text,
            "reference_for": dict(self.reference_for),
            "recording_critical": self.recording_critical,
        }


# ---------------------------------------------------------------- JSON helpers


def _window_json(window: tuple[date, date] | None) -> dict[str, str] | None:
    return None if window is None else {"from": window[0].isoformat(), "to": window[1].isoformat()}


def _group_json(g: GroupStat) -> dict[str, Any]:
    return {
        "code": g.code,
        "label": g.label,
        "numerator": g.numerator,
        "denominator": g.denominator,
        "rate": g.rate,
        "ci_low": g.ci_low,
        "ci_high": g.ci_high,
        "rate_ratio": g.rate_ratio,
        "rate_ratio_ci_low": g.rate_ratio_ci_low,
        "rate_ratio_ci_high": g.rate_ratio_ci_high,
        "rate_difference": g.rate_difference,
        "rate_difference_ci_low": g.rate_difference_ci_low,
        "rate_difference_ci_high": g.rate_difference_ci_high,
        "p_value": g.p_value,
        "is_reference": g.is_reference,
        "reference_excludes": list(g.reference_excludes),
    }


def _value_json(v: ValueStat) -> dict[str, Any]:
    return {
        "code": v.code,
        "label": v.label,
        "mean": v.mean,
        "periods": v.periods,
        "latest": v.latest,
        "numerator": None,
        "denominator": None,
        "rate": None,
        "ci_low": None,
        "ci_high": None,
        "rate_ratio": None,
        "rate_ratio_ci_low": None,
        "rate_ratio_ci_high": None,
        "rate_difference": None,
        "rate_difference_ci_low": None,
        "rate_difference_ci_high": None,
        "note": "value measure: means per group, no proportion statistics",
    }


def _gap_json(g: GapChange) -> dict[str, Any]:
    return {
        "group": g.group,
        "reference": g.reference,
        "baseline_rate": g.baseline_rate,
        "recent_rate": g.recent_rate,
        "reference_baseline_rate": g.reference_baseline_rate,
        "reference_recent_rate": g.reference_recent_rate,
        "did": g.did,
        "did_ci_low": g.did_ci_low,
        "did_ci_high": g.did_ci_high,
        "did_p_value": g.did_p_value,
        "ratio_of_rate_ratios": g.ratio_of_rate_ratios,
        "rrr_ci_low": g.rrr_ci_low,
        "rrr_ci_high": g.rrr_ci_high,
        "rrr_p_value": g.rrr_p_value,
        "established": g.established,
        "needed_per_period": g.needed_per_period,
        "movement": g.movement,
        "gap_before": g.gap_before,
        "gap_after": g.gap_after,
        "group_change": g.group_change,
        "group_change_ci_low": g.group_change_ci_low,
        "group_change_ci_high": g.group_change_ci_high,
        "group_change_p": g.group_change_p,
        "reference_change": g.reference_change,
        "reference_change_ci_low": g.reference_change_ci_low,
        "reference_change_ci_high": g.reference_change_ci_high,
        "levelling_down": g.levelling_down,
        "levelling_down_share": g.levelling_down_share,
        "did_p_adjusted": g.did_p_adjusted,
        "rrr_p_adjusted": g.rrr_p_adjusted,
        "comparisons": g.comparisons,
        "reference_excludes": list(g.reference_excludes),
        "caveats": list(g.caveats),
        "verdict": g.verdict,
    }


def _spc_json(r: SpcResult) -> dict[str, Any]:
    s = r.summary
    return {
        "group": r.group,
        "method": r.method,
        "points": [
            {
                "period": p.period.isoformat(),
                "value": p.value,
                "centre": p.centre,
                "lower": p.lower,
                "upper": p.upper,
                "signals": list(p.signals),
                "variation": p.variation,
                "numerator": p.numerator,
                "denominator": p.denominator,
            }
            for p in r.points
        ],
        "summary": {
            "n_points": s.n_points,
            "longest_run": s.longest_run,
            "longest_run_max": s.longest_run_max,
            "crossings": s.crossings,
            "crossings_min": s.crossings_min,
            "runs_signal": s.runs_signal,
            "variation_type": s.variation_type,
            "assurance_type": s.assurance_type,
            "trial_limits": s.trial_limits,
        },
    }


def _missing_json(m: missing_data.MissingSummary | None) -> dict[str, Any] | None:
    if m is None:
        return None
    return {
        "not_stated_share": m.not_stated_share,
        "not_known_share": m.not_known_share,
        "valid_share": m.valid_share,
        "asked_share": m.asked_share,
        "by_period": [
            {
                "period": p.period.isoformat(),
                "not_stated_share": p.not_stated_share,
                "not_known_share": p.not_known_share,
                "valid_share": p.valid_share,
            }
            for p in m.by_period
        ],
    }


# ---------------------------------------------------------------- frames and groups


def _as_date(value: object) -> date:
    if isinstance(value, date):
        return value if type(value) is date else date(value.year, value.month, value.day)
    stamp = pd.Timestamp(cast(str, value))
    return date(stamp.year, stamp.month, stamp.day)


def tidy_frame(frame: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Columns period (date), group (str), numerator, denominator (int) and value (float); unusable rows dropped.

    Counts kinds keep rows with both counts; value kinds keep rows with a value (a count measure falls back
    to its numerator). Any "ALL" rows are dropped: the total is always recomputed from the groups.
    """
    if kind not in COUNT_KINDS + VALUE_KINDS:
        raise ValueError(
            f"unknown measure kind {kind!r}: expected one of {', '.join(COUNT_KINDS + VALUE_KINDS)}"
        )
    missing_cols = {"period", "group"} - set(frame.columns)
    if missing_cols:
        raise ValueError(f"the data needs columns period and group; missing {sorted(missing_cols)}")
    out = pd.DataFrame(
        {
            "period": [_as_date(v) for v in frame["period"].tolist()],
            "group": [str(g) for g in frame["group"].tolist()],
            "numerator": pd.to_numeric(frame["numerator"], errors="coerce")
            if "numerator" in frame
            else math.nan,
            "denominator": pd.to_numeric(frame["denominator"], errors="coerce")
            if "denominator" in frame
            else math.nan,
            "value": pd.to_numeric(frame["value"], errors="coerce") if "value" in frame else math.nan,
        }
    )
    out = out[out["group"] != TOTAL]
    if kind in COUNT_KINDS:
        out = out.dropna(subset=["numerator", "denominator"])
        out = out[out["denominator"] >= 0]
        out["numerator"] = out["numerator"].astype("int64")
        out["denominator"] = out["denominator"].astype("int64")
        bad = out[(out["numerator"] < 0) | (out["numerator"] > out["denominator"])]
        if len(bad):
            first = bad.iloc[0]
            raise ValueError(
                f"numerator larger than denominator (or negative) for group {first['group']} in the period "
                f"starting {first['period']}: {int(first['numerator'])} of {int(first['denominator'])}"
            )
        out["value"] = math.nan
    else:
        if kind == "count":
            out["value"] = out["value"].fillna(out["numerator"])
        out = out.dropna(subset=["value"])
        out["numerator"] = 0
        out["denominator"] = 0
    # One row per (period, group): repeated rows are summed (counts) or averaged (values).
    agg: dict[str, str] = {"numerator": "sum", "denominator": "sum", "value": "mean"}
    if kind == "count":
        agg["value"] = "sum"
    grouped = out.groupby(["period", "group"], sort=True, as_index=False).agg(agg)
    return grouped.reset_index(drop=True)


def _step(d: date, fine: str, sign: int) -> date:
    return per.step(d, fine, sign)


def coarsen(frame: pd.DataFrame, period: str, kind: str, fine: str | None = None) -> pd.DataFrame:
    """Re-aggregate a tidy frame to longer periods (weeks go to the month their week starts in).

    With `fine` (the current period length), an incomplete first or last longer period is left out: a
    quarter holding one month of data would read as a fall in counts and a thin latest window.
    """
    period_start = per.start
    out = frame.copy()
    fine_periods = sorted(set(out["period"].tolist()))
    out["period"] = [period_start(d, cast(Any, period)) for d in out["period"].tolist()]
    if fine is not None and fine_periods:
        first, last = fine_periods[0], fine_periods[-1]
        drop = set()
        if period_start(_step(last, fine, 1), cast(Any, period)) == period_start(last, cast(Any, period)):
            drop.add(period_start(last, cast(Any, period)))
        if period_start(_step(first, fine, -1), cast(Any, period)) == period_start(first, cast(Any, period)):
            drop.add(period_start(first, cast(Any, period)))
        if len(drop) < len(set(out["period"].tolist())):
            out = out[~out["period"].isin(drop)]
    agg = {"numerator": "sum", "denominator": "sum", "value": "sum" if kind == "count" else "mean"}
    return out.groupby(["period", "group"], sort=True, as_index=False).agg(agg).reset_index(drop=True)


def to_high_level(frame: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Replace each national code by its high-level group key; Z and 99 stay as they are."""
    out = frame.copy()
    out["group"] = [_HL_OF.get(g, g) for g in out["group"].tolist()]
    agg = {"numerator": "sum", "denominator": "sum", "value": "sum" if kind == "count" else "mean"}
    return out.groupby(["period", "group"], sort=True, as_index=False).agg(agg).reset_index(drop=True)


def _members(code: str, *, reference: str, focus: Sequence[str], present: Sequence[str]) -> tuple[str, ...]:
    """Codes a derived group stands for, among the codes present in the data."""
    if code in ethnicity.HIGH_LEVEL_GROUPS:
        return tuple(c for c in ethnicity.HIGH_LEVEL_GROUPS[code] if c in present)
    if code == OTHERS:
        taken: set[str] = set()
        for f in [reference, *focus]:
            if f in ethnicity.HIGH_LEVEL_GROUPS:
                taken.update(ethnicity.HIGH_LEVEL_GROUPS[f])
            elif f not in (OTHERS, BEST):
                taken.add(f)
        return tuple(
            c for c in present if c not in taken and c not in MISSING_CODES and not c.startswith("HL:")
        )
    return (code,)


def _add_derived(frame: pd.DataFrame, derived: Mapping[str, tuple[str, ...]], kind: str) -> pd.DataFrame:
    extra = []
    stored = set(frame["group"])
    for code, members in derived.items():
        entered_others = code == OTHERS and OTHERS in stored
        if code in stored and not entered_others:
            continue  # the extract already carries this group
        # An "All other groups" row entered in the log form stands beside the groups entered one by one: all the
        # other groups are those groups and that row together.
        rows = frame[frame["group"].isin({*members, OTHERS} if entered_others else members)]
        if entered_others:
            frame = frame[frame["group"] != OTHERS]
        if rows.empty:
            continue
        agg = {"numerator": "sum", "denominator": "sum", "value": "mean" if kind == "value" else "sum"}
        summed = rows.groupby("period", sort=True, as_index=False).agg(agg)
        summed["group"] = code
        extra.append(summed[["period", "group", "numerator", "denominator", "value"]])
    if not extra:
        return frame
    return pd.concat([frame, *extra], ignore_index=True)


_ENTERED = "OTHERS_ENTERED"  # the log form's "All other groups" row, while it is pooled with the others


def _everyone(counts: Mapping[str, GroupCounts]) -> GroupCounts:
    """Everyone in a window: the sum of every stored group (national codes, Z, 99 and "All other groups")."""
    stored = [c for code, c in counts.items() if code != TOTAL]
    return GroupCounts(TOTAL, sum(c.numerator for c in stored), sum(c.denominator for c in stored))


def _counts(frame: pd.DataFrame, window: tuple[date, date] | None) -> dict[str, GroupCounts]:
    if window is None:
        return {}
    rows = frame[(frame["period"] >= window[0]) & (frame["period"] <= window[1])]
    summed = rows.groupby("group", sort=False)[["numerator", "denominator"]].sum()
    return {
        str(code): GroupCounts(str(code), int(r["numerator"]), int(r["denominator"]))
        for code, r in summed.iterrows()
    }


def _order_key(code: str, reference: str | None, focus: Sequence[str]) -> tuple[int, int, str]:
    if code == reference:
        return (0, 0, code)
    if code in focus:
        return (1, list(focus).index(code), code)
    if code in NATIONAL:
        return (2, NATIONAL.index(code), code)
    if code.startswith("HL:") or code == OTHERS:
        return (3, 0, code)
    if code in MISSING_CODES:
        return (4, MISSING_CODES.index(code), code)
    return (5, 0, code)


def label(code: str) -> str:
    """NHS display label with its code, for any key the analysis uses."""
    try:
        return ethnicity.display(code)
    except ValueError:
        return code


def window_periods_for(period: str, months: int) -> int:
    """How many periods make up `months` months (13 weeks a quarter)."""
    return max(1, round(months * PERIODS_PER_MONTH[period]))


def _thirds(periods: Sequence[date]) -> tuple[tuple[date, date], tuple[date, date]] | None:
    if len(periods) < 2:
        return None
    k = max(1, len(periods) // 3)
    return (periods[0], periods[k - 1]), (periods[-k], periods[-1])


# ---------------------------------------------------------------- the analysis


def analyse_measure(
    frame: pd.DataFrame,
    *,
    kind: str,
    direction: str,
    reference: str,
    focus_groups: Sequence[str],
    period: str,
    spc_method: str | None = None,
    rebase: Mapping[str, Sequence[date]] | None = None,
    fix_after: int | None = None,
    target: float | None = None,
    screen_outliers: bool = True,
    today: date,
    window_periods: int | None = None,
    baseline: tuple[date, date] | None = None,
    recent: tuple[date, date] | None = None,
    target_gap: float | None = None,
    policy: DisclosurePolicy,
    measure_type: str = "outcome",
    name: str = "This measure",
    data_period: str | None = None,
    rounded_display: bool = False,
) -> MeasureAnalysis:
    """Analyse one measure's tidy frame by ethnic group.

    Args:
        kind: "proportion" or "rate_per_1000" (counts: rates, intervals, gaps, p-chart by default),
            "value" or "count" (means per group over the window and an XmR chart; no proportion statistics).
        reference: a code ("A"), a high-level key ("HL:White", built by summing its codes), "BEST" (the
            best-performing group with enough events in the latest window) or "OTHERS" (each group against
            all the others combined).
        focus_groups: the groups the project is about; "HL:" keys and "OTHERS" are built by summing members.
            Empty: every national group with data (except the reference) gets a gap change.
        rebase: group code -> dates that start a new SPC segment; dates under "ALL" apply to every group.
        target: the SPC target, as a fraction for proportions and rates (a value above 1 is read as a
            percentage, or per 1,000 for a rate); plain units for values.
        window_periods: periods in the latest window (default about three months).
        baseline, recent: inclusive windows for the change in the gap (default first and last third).
        policy: the project's disclosure policy; decides which subgroups the aggregation and balancing
            checks can name.
        data_period: the period the data came in, when it was finer than `period`: the analysis then says
            that finer periods were grouped (averaged, for a value measure) into `period`.
    """
    if period not in PERIODS:
        raise ValueError(f"unknown period {period!r}: expected one of {', '.join(PERIODS)}")
    if direction not in ("higher", "lower", "neither"):
        raise ValueError(f"unknown direction {direction!r}: expected higher, lower or neither")
    direction_ = cast(Direction, direction)
    method = spc_method or ("p" if kind in COUNT_KINDS else "mdc")
    if method not in METHOD_NAMES:
        raise ValueError(f"unknown SPC method {method!r}: expected mdc, p or run")
    if method == "p" and kind not in COUNT_KINDS:
        raise ValueError("a p-chart needs numerators and denominators; use mdc or run for a value measure")
    base = tidy_frame(frame, kind)
    is_rate = kind in COUNT_KINDS
    if target is not None and is_rate and target > 1:
        target = target / (100.0 if kind == "proportion" else 1000.0)

    present = [c for c in [*NATIONAL, *sorted(set(base["group"]) - set(NATIONAL))] if c in set(base["group"])]
    focus = [f for f in dict.fromkeys(focus_groups) if f != reference]
    periods = sorted(set(base["period"].tolist()))
    n_window = window_periods or DEFAULT_WINDOW[period]
    window = (periods[-min(n_window, len(periods))], periods[-1]) if periods else None
    split = _thirds(periods)
    baseline = baseline or (split[0] if split else None)
    recent = recent or (split[1] if split else None)

    derived_codes = [c for c in [reference, *focus] if c in ethnicity.HIGH_LEVEL_GROUPS or c == OTHERS]
    derived = {c: _members(c, reference=reference, focus=focus, present=present) for c in derived_codes}
    # With OTHERS as the reference, group_stats compares each group with all the rest; the OTHERS series
    # built here (the groups outside the focus) is what the SPC chart and the gap change use.
    full = _add_derived(base, derived, kind)
    window_counts = _counts(full, window)
    warnings: list[Warning] = []
    if data_period in per.RANK and per.RANK[data_period] < per.RANK[period]:
        warnings.append(
            Warning(
                "PERIODS_GROUPED",
                "caution",
                f"{per.grouping_note(data_period, period, averaged=not is_rate)}.",
            )
        )
    labels = {c: label(c) for c in set(full["group"]) | {reference, *focus, TOTAL} if c != BEST}

    ref: str | None = reference
    if reference == BEST:
        national_window = [window_counts[c] for c in NATIONAL if c in window_counts]
        ref = (
            stats.best_group(national_window, direction=direction_, min_events=policy.threshold)
            if is_rate
            else None
        )
        if ref is None and is_rate:
            warnings.append(
                Warning(
                    "NO_REFERENCE",
                    "warning",
                    f"No group has the {policy.threshold} or more events in the latest window needed to be the "
                    "best-performing reference, so gaps are not estimated. Choose a named reference group "
                    "(for example White British (A)) or a longer window.",
                )
            )
    elif reference != OTHERS and reference not in set(full["group"]):
        warnings.append(
            Warning(
                "NO_REFERENCE",
                "warning",
                f"The reference group {label(reference)} has no data, so gaps are not estimated. Check the "
                "ethnicity coding of the extract, or choose another reference group.",
            )
        )
        ref = None
    if ref is not None:
        labels.setdefault(ref, label(ref))

    groups: list[GroupStat] = []
    value_groups: list[ValueStat] = []
    heterogeneity: Heterogeneity | None = None
    gaps: list[GapChange] = []
    codes_in_order = sorted(set(full["group"]), key=lambda c: _order_key(c, ref, focus))
    if is_rate and window is not None:
        rows = [window_counts[c] for c in codes_in_order if c in window_counts]
        if ref == OTHERS:
            # Each group against all the others combined: only single codes, so nothing is counted twice; an
            # "All other groups" row entered in the log form counts among the others, never as a group itself.
            singles = [r for r in rows if r.code in NATIONAL or r.code in MISSING_CODES]
            entered = _counts(base, window).get(OTHERS)
            pool = (
                [*singles, GroupCounts(_ENTERED, entered.numerator, entered.denominator)]
                if entered
                else singles
            )
            groups, notes = stats.group_stats_with_warnings(
                pool, reference=OTHERS, labels=labels, direction=direction_
            )
            groups = [g for g in groups if g.code != _ENTERED]
            warnings.extend(n for n in notes if _ENTERED not in n.message)
            groups = [
                *(
                    _against_rest(window_counts, f, present, labels, entered)
                    for f in focus
                    if f in derived and f in window_counts
                ),
                *groups,
            ]
        elif ref is not None:
            groups, notes = stats.group_stats_with_warnings(
                rows, reference=ref, labels=labels, direction=direction_
            )
            warnings.extend(notes)
            warnings.extend(_leave_out_of_reference(groups, window_counts, ref, derived, labels))
        else:
            groups = [stats.group_stats([r], reference="OTHERS", labels=labels)[0] for r in rows]
        heterogeneity = stats.heterogeneity([window_counts[c] for c in NATIONAL if c in window_counts])
        gaps = _gap_changes(
            full, ref, focus, present, baseline, recent, direction_, labels, target_gap, derived
        )
    elif window is not None:
        value_groups = _value_stats(full, codes_in_order, window, labels)
        warnings.append(
            Warning(
                "VALUE_MEASURE",
                "info",
                "This is a value measure, so groups are compared by their mean over the window; rates, intervals "
                "and gap tests need numerators and denominators.",
            )
        )

    rebase_map = {k: sorted(_as_date(d) for d in v) for k, v in (rebase or {}).items()}
    spc = _spc(
        full, codes_in_order, ref, is_rate, method, direction_, rebase_map, fix_after, target, screen_outliers
    )
    if any(r.summary.trial_limits for r in spc.values()):
        warnings.append(
            Warning(
                "SPC_TRIAL_LIMITS",
                "info",
                "Some charts have fewer than 13 points, so their limits are trial limits: read signals cautiously "
                "and keep adding data.",
            )
        )

    summary: missing_data.MissingSummary | None = None
    if is_rate and not base.empty:
        summary = missing_data.summarise_missing(base)
        collapsed, m_ref, m_focus = _collapse_for_missing(base, ref, focus, derived)
        if m_ref is not None:
            warnings.extend(
                missing_data.missing_warnings(
                    collapsed,
                    today=today,
                    period=cast(Any, period),
                    focus_groups=m_focus,
                    reference=m_ref,
                    direction=direction_,
                    target_gap=target_gap,
                    baseline=baseline,
                    recent=recent,
                    policy=policy,
                )
            )
        if baseline is not None and recent is not None:
            before, after = _counts(base, baseline), _counts(base, recent)
            national_before = [before[c] for c in NATIONAL if c in before]
            national_after = [after[c] for c in NATIONAL if c in after]
            shown = _shown_rate(policy) if rounded_display else stats.exact_rate
            names = (window_label(baseline, period), window_label(recent, period))
            # The combined rate is everyone's: every stored group, the missing categories and "All other groups".
            warnings.extend(
                stats.aggregation_check(
                    [*national_before, _everyone(before)],
                    [*national_after, _everyone(after)],
                    direction=direction_,
                    min_count=policy.threshold,
                    labels=labels,
                    shown=shown,
                    windows=names,
                )
            )
            if measure_type == "balancing":
                # A measure's name is typed by a person: escaped when the words go to a channel (mrkdwn).
                typed = (
                    name.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
                    if rounded_display
                    else name
                )
                warnings.extend(
                    stats.balancing_check(
                        national_before,
                        national_after,
                        direction=direction_,
                        measure_name=typed,
                        min_count=policy.threshold,
                        labels=labels,
                        shown=shown,
                        windows=names,
                    )
                )

    reference_for: dict[str, str] = {}
    comparison_windows = {
        "window": window_counts,
        "baseline": _counts(full, baseline),
        "recent": _counts(full, recent),
    }
    for counts, span in zip(comparison_windows.values(), (window, baseline, recent), strict=True):
        entered_row = _counts(base, span).get(OTHERS)
        if entered_row is not None:  # the log form's "All other groups" row: one of the others, never a group
            counts[_ENTERED] = entered_row
    if ref is not None and is_rate:
        for code in [g.code for g in groups if not g.is_reference] + [gp.group for gp in gaps]:
            key_members = _reference_members(code, ref, present, derived)
            if key_members is None:
                continue
            key, codes = key_members
            reference_for[code] = key
            labels[key] = _reference_label(code, ref)
            for counts in comparison_windows.values():
                counts[key] = _sum_codes(counts, codes, key)
    n_tests = _holm(gaps)
    for gp in gaps:
        gp.verdict = stats.gap_verdict_text(gp, labels)

    result = MeasureAnalysis(
        name=name,
        kind=kind,
        direction=direction_,
        period=period,
        spc_method=cast(SpcMethod, method),
        reference_requested=reference,
        reference_group=ref,
        focus_groups=focus,
        periods=periods,
        window=window,
        baseline=baseline,
        recent=recent,
        groups=groups,
        value_groups=value_groups,
        heterogeneity=heterogeneity,
        gaps=gaps,
        spc=spc,
        missing=summary,
        warnings=warnings,
        labels=labels,
        frame=full,
        window_counts=window_counts,
        baseline_counts=comparison_windows["baseline"],
        recent_counts=comparison_windows["recent"],
        rebase=rebase_map,
        target=target,
        reference_for=reference_for,
        gap_comparisons=n_tests,
    )
    if result.recording_critical:
        for gp in gaps:
            gp.caveats.append("RECORDING_CRITICAL")
    result.headline = wording.headline(result, rates=exact_rates(result))
    return result


def _shown_rate(policy: DisclosurePolicy) -> Callable[[GroupCounts], float]:
    """A rate from the rounded counts, as a channel shows it (the checks only word groups with >= 8 events)."""

    def rate(c: GroupCounts) -> float:
        shown = safe_rate(c.numerator, c.denominator, policy).rate
        return c.numerator / c.denominator if shown is None else shown

    return rate


def exact_rates(a: MeasureAnalysis) -> Callable[[str, str], float | None]:
    """Rates from the unrounded counts, by key and window ("window", "baseline", "recent")."""
    sources = {"window": a.window_counts, "baseline": a.baseline_counts, "recent": a.recent_counts}

    def rate(code: str, which: str) -> float | None:
        c = sources[which].get(code)
        return None if c is None or c.denominator <= 0 else c.numerator / c.denominator

    return rate


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p values, as statsmodels' multipletests(method="holm") gives them (the tests
    check it against that). Written out because multipletests runs gc.collect() on every call, a quarter of a
    second in a busy process, which /equity's one-second goal cannot afford."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def _holm(gaps: Sequence[GapChange], alpha: float = 0.05) -> int:
    """Holm-adjust the gap-change p values of one measure as one family (both scales of every gap)."""
    slots = [(g, "did") for g in gaps if g.did_p_value is not None] + [
        (g, "rrr") for g in gaps if g.rrr_p_value is not None
    ]
    if not slots:
        return 0
    raw = [(g.did_p_value if which == "did" else g.rrr_p_value) or 0.0 for g, which in slots]  # all set here
    adjusted = holm(raw)
    for (g, which), p in zip(slots, adjusted, strict=True):
        if which == "did":
            g.did_p_adjusted = float(p)
        else:
            g.rrr_p_adjusted = float(p)
    for g in gaps:
        g.comparisons = len(slots)
        g.established = stats.is_established(g, alpha=alpha)
    return len(slots)


def _reference_members(
    code: str, ref: str, present: Sequence[str], derived: Mapping[str, tuple[str, ...]]
) -> tuple[str, tuple[str, ...]] | None:
    """(key, codes) of the reference a group must be compared with when it is not the reference's own row:
    all other groups (OTHERS), or the reference without the group's own codes (the reference contained it)."""
    own = (
        set(_members(code, reference="", focus=[], present=present))
        if code in ethnicity.HIGH_LEVEL_GROUPS
        else {code}
    )
    if ref == OTHERS:
        return f"REF:{code}", (*(c for c in present if c in NATIONAL and c not in own), _ENTERED)
    ref_members = set(derived.get(ref, ()))
    if ref_members and own & ref_members:
        return f"REF:{code}", tuple(c for c in present if c in ref_members and c not in own)
    return None


def _reference_label(code: str, ref: str) -> str:
    if ref == OTHERS:
        return "all other groups combined"
    return f"{_prose(ref)} without {_prose(code)}"


def _prose(code: str) -> str:
    return wording.prose_name(code)


def _sum_codes(counts: Mapping[str, GroupCounts], codes: Sequence[str], key: str) -> GroupCounts:
    parts = [counts[c] for c in codes if c in counts]
    return GroupCounts(key, sum(c.numerator for c in parts), sum(c.denominator for c in parts))


def _leave_out_of_reference(
    groups: list[GroupStat],
    window_counts: Mapping[str, GroupCounts],
    ref: str,
    derived: Mapping[str, tuple[str, ...]],
    labels: Mapping[str, str],
) -> list[Warning]:
    """A group inside a high-level reference (A in all White groups) is compared with the rest of it."""
    members = set(derived.get(ref, ()))
    notes: list[Warning] = []
    left_out: list[str] = []
    for g in groups:
        if g.is_reference or g.code not in members or g.code not in window_counts:
            continue
        rest = _sum_codes(window_counts, [c for c in derived[ref] if c != g.code], f"REF:{g.code}")
        if rest.denominator == 0:
            g.rate_ratio = g.rate_ratio_ci_low = g.rate_ratio_ci_high = None
            g.rate_difference = g.rate_difference_ci_low = g.rate_difference_ci_high = g.p_value = None
            continue
        cmp = stats.compare_groups(window_counts[g.code], rest)
        g.rate_ratio, g.rate_ratio_ci_low, g.rate_ratio_ci_high = (
            cmp.rate_ratio,
            cmp.rate_ratio_ci_low,
            cmp.rate_ratio_ci_high,
        )
        g.rate_difference, g.rate_difference_ci_low, g.rate_difference_ci_high = (
            cmp.rate_difference,
            cmp.rate_difference_ci_low,
            cmp.rate_difference_ci_high,
        )
        g.p_value = cmp.p_value
        g.reference_excludes = (g.code,)
        left_out.append(labels.get(g.code, g.code))
    if left_out:
        notes.append(
            Warning(
                "REFERENCE_CONTAINS_GROUP",
                "info",
                f"{labels.get(ref, ref)} contains {', '.join(left_out)}, so each of these is compared with the rest of "
                "the reference group (itself left out): a group is never tested against a total that includes it.",
            )
        )
    return notes


def _gap_changes(
    full: pd.DataFrame,
    ref: str | None,
    focus: Sequence[str],
    present: Sequence[str],
    baseline: tuple[date, date] | None,
    recent: tuple[date, date] | None,
    direction: Direction,
    labels: dict[str, str],
    target_gap: float | None,
    derived: Mapping[str, tuple[str, ...]],
) -> list[GapChange]:
    if ref is None or baseline is None or recent is None:
        return []
    before, after = _counts(full, baseline), _counts(full, recent)
    candidates = list(focus) or [
        c
        for c in present
        if c in NATIONAL
        and c != ref
        and not (ref in ethnicity.HIGH_LEVEL_GROUPS and c in ethnicity.HIGH_LEVEL_GROUPS[ref])
    ]
    out: list[GapChange] = []
    for code in candidates:
        if code not in before or code not in after:
            continue
        key_members = _reference_members(code, ref, present, derived)
        excludes: tuple[str, ...] = ()
        if key_members is not None:
            key, codes = key_members
            rb, ra = _sum_codes(before, codes, key), _sum_codes(after, codes, key)
            labels[key] = _reference_label(code, ref)
            if ref != OTHERS:
                excludes = tuple(c for c in derived.get(ref, ()) if c not in codes)
        elif ref in before and ref in after:
            rb, ra = before[ref], after[ref]
        else:
            continue
        gap = stats.gap_change(
            group_before=before[code],
            group_after=after[code],
            ref_before=rb,
            ref_after=ra,
            direction=direction,
            labels=labels,
            target_gap=target_gap,
        )
        gap.reference_excludes = excludes
        out.append(gap)
    return out


def _against_rest(
    window_counts: Mapping[str, GroupCounts],
    code: str,
    present: Sequence[str],
    labels: Mapping[str, str],
    entered: GroupCounts | None = None,
) -> GroupStat:
    """A derived focus group (e.g. HL:Black) against every other national group combined (with an "All other
    groups" row entered in the log form, when there is one)."""
    members = set(_members(code, reference="", focus=[], present=present))
    rest = [window_counts[c] for c in NATIONAL if c in window_counts and c not in members]
    rest += [entered] if entered is not None else []
    other = GroupCounts(OTHERS, sum(c.numerator for c in rest), sum(c.denominator for c in rest))
    own = window_counts[code]
    stat = stats.group_stats([own, other], reference=OTHERS, labels=labels)[0]
    return stat


def _value_stats(
    full: pd.DataFrame, codes: Sequence[str], window: tuple[date, date], labels: Mapping[str, str]
) -> list[ValueStat]:
    rows = full[(full["period"] >= window[0]) & (full["period"] <= window[1])]
    out: list[ValueStat] = []
    for code in codes:
        values = rows[rows["group"] == code].sort_values("period")["value"].dropna()
        out.append(
            ValueStat(
                code=code,
                label=labels.get(code, code),
                mean=float(values.mean()) if len(values) else None,
                periods=int(len(values)),
                latest=float(values.iloc[-1]) if len(values) else None,
            )
        )
    return out


def _spc(
    full: pd.DataFrame,
    codes: Sequence[str],
    ref: str | None,
    is_rate: bool,
    method: str,
    direction: Direction,
    rebase: Mapping[str, Sequence[date]],
    fix_after: int | None,
    target: float | None,
    screen: bool,
) -> dict[str, SpcResult]:
    series: dict[str, pd.DataFrame] = {}
    for code in codes:
        series[code] = full[full["group"] == code].sort_values("period")
    national = full[full["group"].isin([*NATIONAL, *MISSING_CODES])]
    if not national.empty:
        agg = {"numerator": "sum", "denominator": "sum", "value": "mean" if not is_rate else "sum"}
        series[TOTAL] = national.groupby("period", sort=True, as_index=False).agg(agg)
    out: dict[str, SpcResult] = {}
    common = list(rebase.get(TOTAL, ()))
    for code, rows in series.items():
        if rows.empty:
            continue
        dates = [_as_date(d) for d in rows["period"].tolist()]
        own = [*common, *(rebase.get(code, ()) if code != TOTAL else ())]
        kwargs: dict[str, Any] = {}
        if is_rate:
            kwargs = {
                "numerators": [int(v) for v in rows["numerator"].tolist()],
                "denominators": [int(v) for v in rows["denominator"].tolist()],
            }
        else:
            kwargs = {"values": [float(v) for v in rows["value"].tolist()]}
        out[code] = spc_for_series(
            dates,
            method=cast(SpcMethod, method),
            direction=direction,
            rebase=own,
            fix_after=fix_after,
            target=target,
            screen_outliers=screen,
            group=code,
            **kwargs,
        )
    return out


def _collapse_for_missing(
    base: pd.DataFrame, ref: str | None, focus: Sequence[str], derived: Mapping[str, tuple[str, ...]]
) -> tuple[pd.DataFrame, str | None, list[str]]:
    """The frame missing.py reads: members of a derived reference or focus group merged into one row each.

    missing.py knows single codes only; merging (rather than adding) keeps totals, and so every share, right.
    """
    if ref is None:
        return base, None, []
    mapping: dict[str, str] = {}
    for code, members in derived.items():
        if code == ref or code in focus:
            for m in members:
                mapping.setdefault(m, code)
    if not mapping:
        return base, ref, [f for f in focus if f != ref]
    out = base.copy()
    out["group"] = [mapping.get(g, g) for g in out["group"].tolist()]
    out = out.groupby(["period", "group"], sort=True, as_index=False)[["numerator", "denominator"]].sum()
    return out, ref, [f for f in focus if f != ref]


# ---------------------------------------------------------------- the headline


RateText = Callable[[GroupCounts], str | None]


def exact_rate_text(kind: str) -> RateText:
    """Rates from unrounded counts (analyst output): '9.0%' or '9.0 per 1,000'."""

    def text(c: GroupCounts) -> str | None:
        if c.denominator <= 0:
            return None
        return format_rate(c.numerator / c.denominator, kind)

    return text


def format_rate(rate: float, kind: str) -> str:
    if kind == "rate_per_1000":
        return f"{rate * 1000:.1f} per 1,000"
    return f"{rate * 100:.1f}%"


def _period_words(a: MeasureAnalysis) -> str:
    if a.window is None:
        return "the latest window"
    n = len([p for p in a.periods if a.window[0] <= p <= a.window[1]])
    return f"the latest {n} {per.noun(a.period, n)}" if n > 1 else f"the latest {per.noun(a.period)}"


def build_headline(a: MeasureAnalysis, *, rates: Callable[[str, str], float | None] | None = None) -> str:
    """The analyst's headline paragraph (bot.core.equity.wording), from unrounded rates unless others are given."""
    return wording.headline(a, rates=rates or exact_rates(a))


# ---------------------------------------------------------------- for a Slack channel


@dataclass
class ChannelAnalysis:
    """An analysis fit to post: coarser periods or high-level groups when most cells were too small."""

    analysis: MeasureAnalysis
    grouped: list[str]  # what was grouped, e.g. ["monthly periods", "the five high-level groups"]
    suppressed_periods: dict[str, set[date]]  # group -> periods whose numerator is 1..threshold-1
    suppressed_groups: list[str]  # groups whose latest-window numerator or denominator is suppressed

    @property
    def grouped_note(self) -> str | None:
        if not self.grouped:
            return None
        return "Shown as " + " and ".join(self.grouped) + ", grouped to protect confidentiality."


def _small(n: int, policy: DisclosurePolicy) -> bool:
    return 0 < n < policy.threshold


def _periods_mostly_suppressed(
    data: pd.DataFrame, reference: str, focus: Sequence[str], policy: DisclosurePolicy
) -> bool:
    """More than half of the period cells of the reference and focus groups would be suppressed.

    Read straight off the tidy frame, so choosing the period length costs no extra analysis.
    """
    present = list(dict.fromkeys(data["group"].tolist()))
    watch = [c for c in [reference, *focus] if c not in (BEST, OTHERS)] or [
        c for c in present if c in NATIONAL
    ]
    derived = {
        c: _members(c, reference=reference, focus=focus, present=present)
        for c in watch
        if c in ethnicity.HIGH_LEVEL_GROUPS
    }
    cells = _add_derived(data, derived, "proportion")
    numerators = cells[cells["group"].isin(watch) & (cells["denominator"] > 0)]["numerator"].to_numpy()
    small = int(((numerators > 0) & (numerators < policy.threshold)).sum())
    return len(numerators) > 0 and small * 2 > len(numerators)


def _groups_mostly_suppressed(data: pd.DataFrame, n_periods: int, policy: DisclosurePolicy) -> bool:
    periods = sorted(set(data["period"].tolist()))
    if not periods:
        return False
    counts = _counts(data, (periods[-min(n_periods, len(periods))], periods[-1]))
    return needs_grouping([counts[c] for c in NATIONAL if c in counts], policy)


def _hl(code: str) -> str:
    return _HL_OF.get(code, code)


def analyse_for_channel(
    frame: pd.DataFrame,
    *,
    period: str,
    window_months: int = 3,
    policy: DisclosurePolicy,
    reference: str,
    focus_groups: Sequence[str],
    rebase: Mapping[str, Sequence[date]] | None = None,
    quarters: str = "financial",
    **kwargs: Any,
) -> ChannelAnalysis:
    """analyse_measure, then coarser periods (weeks, months, quarters) and then the five high-level groups
    while most cells would be suppressed; the suppressed cells are logged (codes and periods only)."""
    kind = str(kwargs.get("kind"))
    current = tidy_frame(frame, kind)
    grouped: list[str] = []

    def run(
        data: pd.DataFrame,
        length: str,
        ref: str,
        focus: Sequence[str],
        reb: Mapping[str, Sequence[date]] | None,
    ) -> MeasureAnalysis:
        return analyse_measure(
            data,
            period=length,
            window_periods=window_periods_for(length, window_months),
            policy=policy,
            reference=ref,
            focus_groups=focus,
            rebase=reb,
            rounded_display=True,
            **kwargs,
        )

    period_now, ref, focus, reb = period, reference, list(focus_groups), rebase
    if kind in COUNT_KINDS:
        while period_now in COARSER and _periods_mostly_suppressed(current, reference, focus_groups, policy):
            coarser = COARSER[period_now]
            if coarser == "quarter" and quarters != "calendar":
                coarser = "fy_quarter"
            current = coarsen(current, coarser, kind, fine=period_now)
            period_now = coarser
            grouped = [_GROUPED_AS[period_now]]
        if _groups_mostly_suppressed(current, window_periods_for(period_now, window_months), policy):
            current = to_high_level(current, kind)
            ref = _hl(reference)
            focus = list(dict.fromkeys(_hl(f) for f in focus_groups if _hl(f) != ref))
            reb = {_hl(k): v for k, v in (rebase or {}).items()}
            grouped.append("the five high-level ethnic groups")
    a = run(current, period_now, ref, focus, reb)
    suppressed_periods: dict[str, set[date]] = {}
    for code, result in a.spc.items():
        hidden = {p.period for p in result.points if p.numerator is not None and _small(p.numerator, policy)}
        if hidden:
            suppressed_periods[code] = hidden
    suppressed_groups = [
        c
        for c, counts in a.window_counts.items()
        if _small(counts.numerator, policy) or _small(counts.denominator, policy)
    ]
    if suppressed_periods or suppressed_groups:
        logger.info(
            "Disclosure control for %s: latest-window cells suppressed for %s; SPC periods suppressed: %s",
            a.name,
            ",".join(sorted(suppressed_groups)) or "none",
            "; ".join(
                f"{c}: {','.join(d.isoformat() for d in sorted(ds))}"
                for c, ds in sorted(suppressed_periods.items())
            ),
        )
    return ChannelAnalysis(a, grouped, suppressed_periods, suppressed_groups)
