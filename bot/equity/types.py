"""Result types shared by the equity analysis, the charts and the Slack views (plain dataclasses, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Literal

SpcMethod = Literal["mdc", "p", "run"]
Direction = Literal["higher", "lower", "neither"]
Severity = Literal["info", "caution", "warning", "critical"]


@dataclass(frozen=True)
class GroupCounts:
    """One group's counts in one period (or a window): the input to everything else."""

    code: str  # an ethnic-category code ("A".."S", "Z", "99"), a high-level group key ("HL:Black"), or "ALL"
    numerator: int
    denominator: int


@dataclass
class GroupStat:
    """One group over a window, compared with the reference group. Rates are fractions, not percentages."""

    code: str
    label: str
    numerator: int
    denominator: int
    rate: float | None
    ci_low: float | None
    ci_high: float | None
    rate_ratio: float | None = None
    rate_ratio_ci_low: float | None = None
    rate_ratio_ci_high: float | None = None
    rate_difference: float | None = None
    rate_difference_ci_low: float | None = None
    rate_difference_ci_high: float | None = None
    p_value: float | None = None  # two-group test against the reference (Pearson chi-square, no Yates)
    is_reference: bool = False


@dataclass
class Heterogeneity:
    chi2: float | None
    df: int
    p_value: float | None
    method: str = "Pearson chi-square, no continuity correction"


@dataclass
class GapChange:
    """The change in the gap between a baseline and a recent window for one group against the reference."""

    group: str
    reference: str
    baseline_rate: float | None
    recent_rate: float | None
    reference_baseline_rate: float | None
    reference_recent_rate: float | None
    did: float | None  # difference in differences (absolute gap change), fraction
    did_ci_low: float | None
    did_ci_high: float | None
    did_p_value: float | None
    ratio_of_rate_ratios: float | None
    rrr_ci_low: float | None
    rrr_ci_high: float | None
    rrr_p_value: float | None
    verdict: str  # plain language; says "not established" when it is not
    established: bool
    needed_per_period: int | None = None  # denominator per group and window that 80% power would need


@dataclass
class SpcPoint:
    period: date
    value: float | None
    centre: float | None
    lower: float | None
    upper: float | None
    signals: list[str] = field(default_factory=list)  # e.g. "Above UCL", "7 Point Trend (Increasing)", "runs"
    variation: str = "common_cause"  # special_cause_improvement | special_cause_concern | special_cause_neutral_high/low | common_cause
    numerator: int | None = None
    denominator: int | None = None


@dataclass
class SpcSummary:
    n_points: int
    longest_run: int | None = None
    longest_run_max: int | None = None
    crossings: int | None = None
    crossings_min: int | None = None
    runs_signal: bool | None = None
    variation_type: str | None = None  # the type of the last point (MDC)
    assurance_type: str | None = None  # consistent_pass | consistent_fail | inconsistent | None
    trial_limits: bool = False  # fewer points than the minimum for stable limits


@dataclass
class SpcResult:
    group: str
    method: SpcMethod
    points: list[SpcPoint]
    summary: SpcSummary


@dataclass
class Warning:
    code: str  # stable, e.g. "MISSING_NOT_KNOWN_HIGH"
    severity: Severity
    message: str  # plain language, says what to do next


@dataclass
class CellDecision:
    """What disclosure control decided for one count before it may be posted to a channel."""

    raw: int
    shown: str  # "0", "<8" (suppressed) or a multiple of 5 as text
    rounded: int | None  # None when suppressed
    suppressed: bool
