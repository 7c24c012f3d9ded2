"""Result types shared by the equity analysis, the charts and the Slack views (plain dataclasses, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Literal

SpcMethod = Literal["mdc", "p", "run"]
Direction = Literal["higher", "lower", "neither"]
Severity = Literal["info", "caution", "warning", "critical"]
GapMovement = Literal["narrowed", "widened", "unchanged", "too_few"]
# "material": the reference got worse and that explains the narrowing (its own interval excludes no change, or
# it accounts for most of the change); "slight": it got worse, but too little to explain it; "none": it did not.
LevellingDown = Literal["none", "slight", "material"]


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
    # Codes left out of the reference for this comparison, because the reference contains this group
    # (e.g. White British (A) against all White groups): a group is never tested against itself.
    reference_excludes: tuple[str, ...] = ()


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
    verdict: str  # plain language, written by bot.core.equity.wording from the fields below
    established: bool
    needed_per_period: int | None = None  # denominator per group and window that 80% power would need
    # The structured finding every surface words from (bot.core.equity.wording); rates are fractions.
    movement: GapMovement = "too_few"
    gap_before: float | None = None  # group minus reference, baseline window
    gap_after: float | None = None
    relative_change: float | None = None  # |change in the gap| / |gap before|
    group_change: float | None = None  # the group's own change (after minus before), Newcombe interval
    group_change_ci_low: float | None = None
    group_change_ci_high: float | None = None
    group_change_p: float | None = None
    group_improved: bool | None = None
    reference_change: float | None = None  # the reference's own change, Newcombe interval
    reference_change_ci_low: float | None = None
    reference_change_ci_high: float | None = None
    reference_worsened: bool | None = None
    levelling_down: LevellingDown = "none"
    levelling_down_share: float | None = (
        None  # share of the narrowing that the reference's worsening explains
    )
    thin: bool = False  # a cell with fewer than 5 events or non-events: nothing is claimed
    zero_cell: bool = False
    did_p_adjusted: float | None = None  # Holm-adjusted across the measure's gap comparisons
    rrr_p_adjusted: float | None = None
    comparisons: int = 1  # tests in the Holm family (two per gap: absolute and relative)
    reference_excludes: tuple[str, ...] = ()  # codes left out of the reference: it contained the group
    caveats: list[str] = field(default_factory=list)  # e.g. LEVELLING_DOWN, THIN_CELLS, RECORDING_CRITICAL
    notes: list[str] = field(default_factory=list)  # method notes (zero cells, fallbacks), plain words
    target_gap: float | None = None
    direction: Direction = "lower"


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
    short: str = ""  # one sentence for the nudge and the headline flag; the message when empty


@dataclass
class CellDecision:
    """What disclosure control decided for one count before it may be posted to a channel."""

    raw: int
    shown: str  # "0", "<8" (suppressed) or a multiple of 5 as text
    rounded: int | None  # None when suppressed
    suppressed: bool
