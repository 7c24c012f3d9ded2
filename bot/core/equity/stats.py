"""Disparity statistics for group rates: intervals, comparisons with a reference, gap change, power and warnings."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy.stats import chi2_contingency, norm
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_effectsize,
    proportions_chisquare,
)

from bot.core import ethnicity
from bot.core.equity import wording
from bot.core.equity.intervals import wilson_interval as wilson_interval  # re-exported
from bot.core.equity.types import Direction, GapChange, GroupCounts, GroupStat, Heterogeneity, LevellingDown
from bot.core.equity.types import Warning as EquityWarning

# The 2x2 interaction model is saturated, so statsmodels always warns about it (df_resid=0, "perfect separation");
# the fallbacks below handle those cases. catch_warnings() is not thread-safe and nudges are built on several
# threads at once, so these two warnings are filtered once, process-wide, and only when statsmodels raises them.
warnings.filterwarnings(
    "ignore", message="divide by zero encountered in scalar divide", module=r"statsmodels\."
)
warnings.filterwarnings("ignore", message="Perfect separation", module=r"statsmodels\.")

# Missing-data codes (NHS Z/99, plus the HES "X", the legacy "9" and GP "NULL" from ethnic-categories.csv):
# never a reference, never compared, but still reported so the missing share stays visible.
MISSING_CODES: frozenset[str] = frozenset({"Z", "99", "X", "9", "NULL", ""})
TOTAL_CODE = "ALL"
# The disclosure threshold (rates withheld when the numerator is below 8) doubles as the minimum for BEST:
# a tiny group with 0/3 would otherwise be "best" by chance.
MIN_EVENTS_FOR_BEST = 8
AHRQ_MIN_RELATIVE_CHANGE = 0.10
MIN_CELL_FOR_CLAIM = 5  # events and non-events per group and period before a gap change can be "established"

ReferenceRule = Literal["BEST", "OTHERS"]
Counts = Sequence[GroupCounts] | pd.DataFrame


@dataclass(frozen=True)
class Comparison:
    """One group against one reference: rate ratio, rate difference and the two-group chi-square test."""

    rate_ratio: float | None
    rate_ratio_ci_low: float | None
    rate_ratio_ci_high: float | None
    rate_ratio_method: str  # "katz-log", "koopman-score" (a zero cell) or "none"
    rate_difference: float | None
    rate_difference_ci_low: float | None
    rate_difference_ci_high: float | None
    chi2: float | None
    p_value: float | None
    min_expected: float | None  # smallest expected count in the 2x2 table; below 5 the p value is approximate


# ---------------------------------------------------------------- inputs and labels


def counts_from_frame(frame: pd.DataFrame) -> list[GroupCounts]:
    """Turn a tidy frame with columns group, numerator, denominator into GroupCounts, summing repeated groups."""
    summed = frame.groupby("group", sort=False)[["numerator", "denominator"]].sum()
    return [
        GroupCounts(code=str(code), numerator=int(row["numerator"]), denominator=int(row["denominator"]))
        for code, row in summed.iterrows()
    ]


def _as_counts(counts: Counts) -> list[GroupCounts]:
    if isinstance(counts, pd.DataFrame):
        return counts_from_frame(counts)
    merged: dict[str, GroupCounts] = {}
    for c in counts:
        prev = merged.get(c.code)
        merged[c.code] = (
            c
            if prev is None
            else GroupCounts(c.code, prev.numerator + c.numerator, prev.denominator + c.denominator)
        )
    return list(merged.values())


def is_missing_code(code: str) -> bool:
    return code.strip().upper() in MISSING_CODES


def _comparable(c: GroupCounts) -> bool:
    return not is_missing_code(c.code) and c.code != TOTAL_CODE and c.denominator > 0


def _label_function() -> Callable[[str], str] | None:
    return ethnicity.label


def label_for(code: str, labels: Mapping[str, str] | None = None) -> str:
    """A readable label: the caller's mapping first, then bot.core.ethnicity.label, then the code itself."""
    if labels is not None and code in labels:
        return labels[code]
    fn = _label_function()
    if fn is not None:
        try:
            text = fn(code)
        except (LookupError, ValueError):
            text = ""
        if text:
            return str(text)
    return "All records" if code == TOTAL_CODE else code


# ---------------------------------------------------------------- single proportions and two-group comparisons


def _rate(c: GroupCounts) -> float | None:
    return c.numerator / c.denominator if c.denominator > 0 else None


def _finite(value: Any) -> float | None:
    # The score interval's root finder can return a complex number for tiny tables: treat it as no limit.
    if np.iscomplexobj(value):
        if abs(complex(value).imag) > 1e-12:
            return None
        value = complex(value).real
    v = float(value)
    return v if math.isfinite(v) else None


def compare_groups(group: GroupCounts, reference: GroupCounts, *, alpha: float = 0.05) -> Comparison:
    """Rate ratio (Katz log; Koopman score with a zero cell), rate difference (Newcombe) and Pearson chi-square.

    Every field is None when either denominator is 0; the rate ratio is None when it is undefined (0/0) or
    infinite (the reference has no events), in which case only the lower limit of its interval is given.
    """
    empty = Comparison(None, None, None, "none", None, None, None, None, None, None)
    a, n1, c, n2 = group.numerator, group.denominator, reference.numerator, reference.denominator
    if n1 <= 0 or n2 <= 0:
        return empty

    rr: float | None
    rr_low: float | None
    rr_high: float | None
    if a == 0 and c == 0:
        rr, rr_low, rr_high, rr_method = None, None, None, "none"
    elif a == 0 or c == 0:
        # Katz's log SE has 1/a and 1/c in it, so a zero cell needs the score interval (Koopman 1984).
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            low, high = confint_proportions_2indep(a, n1, c, n2, compare="ratio", method="score", alpha=alpha)
        rr = 0.0 if a == 0 else None
        rr_low = 0.0 if a == 0 else _finite(low)
        rr_high = _finite(high)
        rr_method = "koopman-score"
    else:
        low, high = confint_proportions_2indep(a, n1, c, n2, compare="ratio", method="log", alpha=alpha)
        rr, rr_low, rr_high, rr_method = (a / n1) / (c / n2), float(low), float(high), "katz-log"

    d_low, d_high = confint_proportions_2indep(a, n1, c, n2, compare="diff", method="newcomb", alpha=alpha)

    chi2: float | None = None
    p: float | None = None
    min_expected: float | None = None
    if 0 < a + c < n1 + n2:
        table = np.array([[a, n1 - a], [c, n2 - c]])
        res = chi2_contingency(table, correction=False)
        chi2, p, min_expected = float(res[0]), float(res[1]), float(np.min(res[3]))
    return Comparison(
        rate_ratio=rr,
        rate_ratio_ci_low=rr_low,
        rate_ratio_ci_high=rr_high,
        rate_ratio_method=rr_method,
        rate_difference=a / n1 - c / n2,
        rate_difference_ci_low=float(d_low),
        rate_difference_ci_high=float(d_high),
        chi2=chi2,
        p_value=p,
        min_expected=min_expected,
    )


# ---------------------------------------------------------------- per-group statistics against a reference


def _better(a: float, b: float, direction: Direction) -> bool:
    """True when rate a is better than rate b."""
    if direction == "lower":
        return a < b
    if direction == "higher":
        return a > b
    return False


def best_group(counts: Counts, *, direction: Direction, min_events: int = MIN_EVENTS_FOR_BEST) -> str | None:
    """The best-performing group: lowest rate (direction "lower") or highest ("higher").

    Only groups with a known ethnicity, a denominator above 0 and at least `min_events` events qualify.
    Ties go to the larger denominator. None when no group qualifies or the direction is "neither".
    """
    if direction == "neither":
        return None
    eligible = [c for c in _as_counts(counts) if _comparable(c) and c.numerator >= min_events]
    if not eligible:
        return None
    sign = 1.0 if direction == "lower" else -1.0
    return min(eligible, key=lambda c: (sign * c.numerator / c.denominator, -c.denominator)).code


def _sum_counts(code: str, counts: Sequence[GroupCounts]) -> GroupCounts:
    return GroupCounts(code, sum(c.numerator for c in counts), sum(c.denominator for c in counts))


def _stat_from(
    c: GroupCounts, label: str, cmp: Comparison | None, *, is_reference: bool, alpha: float
) -> GroupStat:
    low, high = wilson_interval(c.numerator, c.denominator, alpha)
    stat = GroupStat(
        c.code, label, c.numerator, c.denominator, _rate(c), low, high, is_reference=is_reference
    )
    if cmp is not None:
        stat.rate_ratio = cmp.rate_ratio
        stat.rate_ratio_ci_low = cmp.rate_ratio_ci_low
        stat.rate_ratio_ci_high = cmp.rate_ratio_ci_high
        stat.rate_difference = cmp.rate_difference
        stat.rate_difference_ci_low = cmp.rate_difference_ci_low
        stat.rate_difference_ci_high = cmp.rate_difference_ci_high
        stat.p_value = cmp.p_value
    return stat


def group_stats_with_warnings(
    counts: Counts,
    *,
    reference: str,
    labels: Mapping[str, str] | None = None,
    alpha: float = 0.05,
    direction: Direction = "lower",
    min_events_for_best: int = MIN_EVENTS_FOR_BEST,
) -> tuple[list[GroupStat], list[EquityWarning]]:
    """group_stats plus notes on what could not be compared and which methods were substituted."""
    rows = _as_counts(counts)
    notes: list[EquityWarning] = []
    ref = reference.strip()
    if is_missing_code(ref):
        raise ValueError(f"{reference!r} is a missing-data code and cannot be the reference group")

    others_mode = ref.upper() == "OTHERS"
    ref_code: str | None
    if others_mode:
        ref_code = None
    elif ref.upper() == "BEST":
        ref_code = best_group(rows, direction=direction, min_events=min_events_for_best)
        if ref_code is None:
            notes.append(
                EquityWarning(
                    "NO_REFERENCE",
                    "warning",
                    f"No group has the {min_events_for_best} or more events needed to be the best-performing "
                    "reference"
                    + (" (the measure has no better direction)" if direction == "neither" else "")
                    + "; rates are shown without comparisons. Choose a named reference group or widen the window.",
                )
            )
    else:
        ref_code = ref
        ref_row = next((c for c in rows if c.code == ref_code), None)
        if ref_row is None or ref_row.denominator == 0:
            notes.append(
                EquityWarning(
                    "NO_REFERENCE",
                    "warning",
                    f"The reference group {label_for(ref_code, labels)} has no data in this window; rates are shown "
                    "without comparisons. Choose another reference group or widen the window.",
                )
            )
            ref_code = None

    comparable = [c for c in rows if _comparable(c)]
    ref_row = next((c for c in rows if c.code == ref_code), None) if ref_code is not None else None
    out: list[GroupStat] = []
    for c in rows:
        label = label_for(c.code, labels)
        is_ref = ref_row is not None and c.code == ref_row.code
        against: GroupCounts | None = None
        against_label = ""
        if _comparable(c) and not is_ref:
            if others_mode:
                others = [o for o in comparable if o.code != c.code]
                if others:
                    against, against_label = _sum_counts("OTHERS", others), "all other groups combined"
            elif ref_row is not None:
                against, against_label = ref_row, label_for(ref_row.code, labels)
        cmp = compare_groups(c, against, alpha=alpha) if against is not None else None
        if cmp is not None and against is not None:
            if cmp.rate_ratio_method == "none":
                notes.append(
                    EquityWarning(
                        "TOO_FEW_TO_COMPARE",
                        "info",
                        f"{label}: too few to compare with {against_label} (no events in either group).",
                    )
                )
            elif cmp.rate_ratio_method == "koopman-score" and against.numerator == 0:
                notes.append(
                    EquityWarning(
                        "REFERENCE_NO_EVENTS",
                        "caution",
                        f"{against_label} had no events in this window, so no rate ratio can be given for {label} "
                        "(dividing by zero). Compare the rates and the difference between them instead.",
                    )
                )
            elif cmp.rate_ratio_method == "koopman-score":
                notes.append(
                    EquityWarning(
                        "ZERO_CELL_SCORE_INTERVAL",
                        "info",
                        f"{label} vs {against_label}: one group has no events, so the rate ratio interval uses the "
                        "Koopman score method instead of Katz log.",
                    )
                )
            if cmp.min_expected is not None and cmp.min_expected < 5:
                notes.append(
                    EquityWarning(
                        "SMALL_EXPECTED_COUNTS",
                        "caution",
                        f"{label} vs {against_label}: expected counts below 5, so the chi-square p value is only "
                        "approximate; treat it as a rough guide (an exact test would be better).",
                    )
                )
        elif _comparable(c) and others_mode:
            notes.append(
                EquityWarning("TOO_FEW_TO_COMPARE", "info", f"{label}: no other groups to compare with.")
            )
        elif not is_ref and c.denominator == 0:
            notes.append(EquityWarning("TOO_FEW_TO_COMPARE", "info", f"{label}: no records in this window."))
        out.append(_stat_from(c, label, cmp, is_reference=is_ref, alpha=alpha))
    return out, notes


def group_stats(
    counts: Counts,
    *,
    reference: str,
    labels: Mapping[str, str] | None = None,
    alpha: float = 0.05,
    direction: Direction = "lower",
    min_events_for_best: int = MIN_EVENTS_FOR_BEST,
) -> list[GroupStat]:
    """Rate and Wilson interval for every group, and RR, RD and chi-square p against the reference.

    Args:
        reference: a group code present in `counts` ("A", "HL:White"); "BEST" for the best-performing group
            by `direction` among groups with at least `min_events_for_best` events (see best_group); or
            "OTHERS" to compare each group with all the other groups combined (then no row is the reference).
            Missing-data codes (Z, 99) are never the reference and are never compared, but keep their rate.
    """
    return group_stats_with_warnings(
        counts,
        reference=reference,
        labels=labels,
        alpha=alpha,
        direction=direction,
        min_events_for_best=min_events_for_best,
    )[0]


def heterogeneity(counts: Counts) -> Heterogeneity:
    """k-sample Pearson chi-square (no continuity correction) across groups with known ethnicity and records."""
    usable = [c for c in _as_counts(counts) if _comparable(c)]
    df = max(len(usable) - 1, 0)
    events = sum(c.numerator for c in usable)
    total = sum(c.denominator for c in usable)
    if len(usable) < 2 or events == 0 or events == total:
        return Heterogeneity(chi2=None, df=df, p_value=None)
    chi2, p, (_, expected) = proportions_chisquare(
        np.array([c.numerator for c in usable]), np.array([c.denominator for c in usable])
    )
    method = "Pearson chi-square, no continuity correction"
    if float(np.min(expected)) < 5:
        method += " (some expected counts below 5: p is approximate)"
    return Heterogeneity(chi2=float(chi2), df=df, p_value=float(p), method=method)


def index_of_disparity(stats: Sequence[GroupStat]) -> float | None:
    """Pearcy & Keppel index of disparity, in percent: 100 x mean |r_i - r_ref| / r_ref over the other groups.

    Uses the row marked is_reference; None without one (e.g. reference "OTHERS"), when its rate is 0, or when
    no other group with known ethnicity has a rate. Small groups bias it upwards: post it with the RR and RD.
    """
    ref = next((s for s in stats if s.is_reference), None)
    if ref is None or not ref.rate:
        return None
    others = [
        s.rate
        for s in stats
        if not s.is_reference and s.rate is not None and not is_missing_code(s.code) and s.code != TOTAL_CODE
    ]
    if not others:
        return None
    return 100.0 * sum(abs(r - ref.rate) for r in others) / (len(others) * ref.rate)


# ---------------------------------------------------------------- power


def n_needed_two_proportions(p1: float, p2: float, *, alpha: float = 0.05, power: float = 0.8) -> int:
    """Denominator per group (or per period) to detect p1 vs p2 with a two-sided test (Cohen's h, normal power).

    Raises ValueError when p1 == p2: there is no difference to detect.
    """
    h = float(proportion_effectsize(p1, p2))
    if h == 0:
        raise ValueError("p1 and p2 are equal: no sample size can detect a zero difference")
    return _n_per_arm(abs(h), alpha, power)


def _n_per_arm(effect: float, alpha: float, power: float) -> int:
    """NormalIndPower's n per arm (ratio 1, two-sided) for a standardised effect."""
    # Huge effects send the root finder below n=0 (numpy warnings, nan); the closed form is then exact enough.
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            n = float(
                NormalIndPower().solve_power(
                    effect_size=effect, alpha=alpha, power=power, ratio=1.0, alternative="two-sided"
                )
            )
        except (ValueError, RuntimeError):
            n = math.nan
    if not math.isfinite(n) or n <= 0:
        n = 2 * ((float(norm.isf(alpha / 2)) + float(norm.ppf(power))) / effect) ** 2
    return max(math.ceil(n), 2)


def power_two_proportions(p1: float, p2: float, n: int, *, alpha: float = 0.05) -> float:
    """Power of a two-sided test of p1 vs p2 with n per group (Cohen's h); 0.0 when n is 0."""
    if n <= 0:
        return 0.0
    h = float(proportion_effectsize(p1, p2))
    return float(
        NormalIndPower().power(effect_size=abs(h), nobs1=n, alpha=alpha, ratio=1.0, alternative="two-sided")
    )


def n_needed_gap_change(
    group_before: float,
    group_after: float,
    ref_before: float,
    ref_after: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
) -> int | None:
    """Denominator per group and period to detect the difference in differences these four rates imply.

    Normal approximation: with n in each of the four cells, Var(DiD) = V / n where V is the sum of the four
    binomial variances p(1-p). NormalIndPower's z for n per arm is d * sqrt(n / 2), so the standardised
    effect d = DiD * sqrt(2 / V) gives the n for which DiD / sqrt(V / n) reaches the required z.
    None when the DiD is 0 or every rate is 0 or 1.
    """
    rates = [min(max(r, 0.0), 1.0) for r in (group_before, group_after, ref_before, ref_after)]
    did = (rates[1] - rates[3]) - (rates[0] - rates[2])
    variance = sum(r * (1 - r) for r in rates)
    if did == 0 or variance <= 0:
        return None
    return _n_per_arm(abs(did) * math.sqrt(2.0 / variance), alpha, power)


# ---------------------------------------------------------------- change in the gap


@dataclass(frozen=True)
class _Interaction:
    estimate: float
    low: float
    high: float
    p: float


def _interaction_glm(cells: Sequence[GroupCounts], link: Any, alpha: float) -> _Interaction | None:
    """Binomial GLM (events/trials form) with group, period and their interaction; the interaction term."""
    y = np.array([c.numerator for c in cells], dtype=float)
    n = np.array([c.denominator for c in cells], dtype=float)
    group = np.array([1.0, 1.0, 0.0, 0.0])
    period = np.array([0.0, 1.0, 0.0, 1.0])
    exog = np.column_stack([np.ones(4), group, period, group * period])
    try:
        # The model is saturated, so statsmodels warns about df_resid=0, "perfect separation" and the
        # non-canonical link; none of these affect the interaction's estimate or its Wald SE.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = sm.GLM(np.column_stack([y, n - y]), exog, family=sm.families.Binomial(link=link)).fit()
            low, high = res.conf_int(alpha=alpha)[3]
            est, p, converged = (
                float(res.params[3]),
                float(res.pvalues[3]),
                bool(getattr(res, "converged", True)),
            )
    except (ValueError, np.linalg.LinAlgError, FloatingPointError):
        return None
    values = (est, float(low), float(high), p)
    if not converged or not all(math.isfinite(v) for v in values):
        return None
    return _Interaction(*values)


def _did_wald(cells: Sequence[GroupCounts], alpha: float, *, adjusted: bool) -> _Interaction | None:
    """Closed-form Wald DiD, identical to the saturated identity-link GLM.

    With `adjusted`, the variances use Agresti-Caffo proportions (one event and one non-event added to each
    cell): a 0% or 100% cell has zero binomial variance and would make the plain Wald interval far too narrow.
    """
    rates = [c.numerator / c.denominator for c in cells]
    did = (rates[1] - rates[0]) - (rates[3] - rates[2])
    add = 1 if adjusted else 0
    var_rates = [(c.numerator + add) / (c.denominator + 2 * add) for c in cells]
    se = math.sqrt(
        sum(r * (1 - r) / (c.denominator + 2 * add) for r, c in zip(var_rates, cells, strict=True))
    )
    if se == 0:
        return None
    z = float(norm.ppf(1 - alpha / 2))
    return _Interaction(did, did - z * se, did + z * se, float(2 * norm.sf(abs(did) / se)))


def _rrr_katz(cells: Sequence[GroupCounts], alpha: float) -> tuple[_Interaction | None, bool]:
    """Ratio of rate ratios from the Katz log SEs: SE = sqrt(var log RR_after + var log RR_before).

    A zero cell gets the Haldane-Anscombe correction (0.5 added to events and non-events); returns whether
    that was needed.
    """
    gb_, ga_, rb_, ra_ = cells
    if (gb_.numerator == 0 and rb_.numerator == 0) or (ga_.numerator == 0 and ra_.numerator == 0):
        return None, False  # a rate ratio of 0/0 in one period: no correction makes the RRR meaningful
    corrected = any(c.numerator == 0 for c in cells)
    add = 0.5 if corrected else 0.0
    xs = [c.numerator + add for c in cells]
    ns = [c.denominator + 2 * add for c in cells]
    gb, ga, rb, ra = (x / m for x, m in zip(xs, ns, strict=True))
    log_rrr = math.log((ga / ra) / (gb / rb))
    var = sum(1 / x - 1 / m for x, m in zip(xs, ns, strict=True))
    if var <= 0:
        return None, corrected
    se = math.sqrt(var)
    z = float(norm.ppf(1 - alpha / 2))
    p = float(2 * norm.sf(abs(log_rrr) / se))
    return _Interaction(
        math.exp(log_rrr), math.exp(log_rrr - z * se), math.exp(log_rrr + z * se), p
    ), corrected


def _pct(rate: float) -> str:
    return f"{100 * rate:.1f}%"


def _pp(diff: float, signed: bool = False) -> str:
    return f"{100 * diff:+.1f}" if signed else f"{100 * abs(diff):.1f}"


def _p(p: float) -> str:
    return "p<0.001" if p < 0.001 else f"p={p:.2g}"


def _worse(after: float, before: float, direction: Direction) -> bool:
    return _better(before, after, direction)


def gap_change(
    *,
    group_before: GroupCounts,
    group_after: GroupCounts,
    ref_before: GroupCounts,
    ref_after: GroupCounts,
    alpha: float = 0.05,
    power: float = 0.8,
    direction: Direction = "lower",
    labels: Mapping[str, str] | None = None,
    target_gap: float | None = None,
) -> GapChange:
    """Has the gap between a group and the reference changed? Difference in differences and ratio of rate ratios.

    Both come from the interaction term of a binomial GLM on the four aggregated cells (identity link for the
    DiD, log link for the RRR). `established` follows the AHRQ rule: p <= alpha for at least one of the two
    and a relative change in the absolute gap of at least 10%, and also needs at least 5 events and 5
    non-events in every group and period. The verdict also flags levelling down (the gap
    narrowed while the reference group got worse, by `direction`). `needed_per_period` is for the observed
    change in the gap, or for reaching `target_gap` (group minus reference, a fraction) when it is given.
    """
    g_name, r_name = label_for(group_before.code, labels), label_for(ref_before.code, labels)
    cells = (group_before, group_after, ref_before, ref_after)
    rates = [_rate(c) for c in cells]
    gb, ga, rb, ra = rates

    def result(verdict: str, **kw: Any) -> GapChange:
        fields: dict[str, Any] = {
            "did": None,
            "did_ci_low": None,
            "did_ci_high": None,
            "did_p_value": None,
            "ratio_of_rate_ratios": None,
            "rrr_ci_low": None,
            "rrr_ci_high": None,
            "rrr_p_value": None,
            "established": False,
            "needed_per_period": None,
            "target_gap": target_gap,
        }
        fields.update(kw)
        return GapChange(
            group=group_before.code,
            reference=ref_before.code,
            baseline_rate=gb,
            recent_rate=ga,
            reference_baseline_rate=rb,
            reference_recent_rate=ra,
            verdict=verdict,
            direction=direction,
            **fields,
        )

    if gb is None or ga is None or rb is None or ra is None:
        return result(f"Too few to compare: {g_name} or {r_name} has no records in one of the windows.")
    if all(c.numerator == 0 for c in cells) or all(c.numerator == c.denominator for c in cells):
        return result(
            f"Too few to compare: every rate for {g_name} and {r_name} is {_pct(gb)} in both windows."
        )

    notes: list[str] = []
    zero_cell = any(c.numerator in (0, c.denominator) for c in cells)
    ordered = (group_before, group_after, ref_before, ref_after)
    did_fit = None if zero_cell else _interaction_glm(ordered, sm.families.links.Identity(), alpha)
    if did_fit is None:
        did_fit = _did_wald(ordered, alpha, adjusted=zero_cell)
        if zero_cell:
            notes.append(
                "A rate of 0% or 100% in one period makes the interval for the gap change rough "
                "(Wald with Agresti-Caffo adjusted variances)."
            )
    log_fit = None if zero_cell else _interaction_glm(ordered, sm.families.links.Log(), alpha)
    rrr_fit: _Interaction | None
    if log_fit is not None:
        rrr_fit = _Interaction(
            math.exp(log_fit.estimate), math.exp(log_fit.low), math.exp(log_fit.high), log_fit.p
        )
    else:
        rrr_fit, haldane = _rrr_katz(ordered, alpha)
        if rrr_fit is None:
            notes.append(
                "The ratio of rate ratios cannot be estimated: neither group had any events in one period."
            )
        else:
            notes.append(
                "The ratio of rate ratios was computed from the Katz log standard errors"
                + (
                    " with 0.5 added to each cell, because one cell has no events."
                    if haldane
                    else " because the log-link model did not fit."
                )
            )

    gap_before, gap_after = gb - rb, ga - ra
    if target_gap is not None:
        planned_group = min(max(ra + target_gap, 0.0), 1.0)
        needed = n_needed_gap_change(gb, planned_group, rb, ra, alpha=alpha, power=power)
    else:
        needed = n_needed_gap_change(gb, ga, rb, ra, alpha=alpha, power=power)

    # Movement is judged at the precision the reader sees (0.1 percentage points): "narrowed from 4.6 to
    # 4.6" is never written; a change that rounds away is "hardly changed".
    shown_before, shown_after = round(abs(gap_before) * 1000), round(abs(gap_after) * 1000)
    movement = (
        "narrowed" if shown_after < shown_before else "widened" if shown_after > shown_before else "unchanged"
    )
    relative = abs(gap_after - gap_before) / abs(gap_before) if gap_before != 0 else math.inf
    # Both intervals are normal approximations; with fewer than 5 events or non-events in a cell they can
    # look decisive on a handful of records, so nothing is claimed then.
    thin = any(min(c.numerator, c.denominator - c.numerator) < MIN_CELL_FOR_CLAIM for c in cells)

    own = compare_groups(group_after, group_before, alpha=alpha)
    ref_own = compare_groups(ref_after, ref_before, alpha=alpha)
    group_improved = _better(ga, gb, direction)
    reference_worsened = _worse(ra, rb, direction)
    levelling, share = levelling_down_status(
        gap_before=gap_before,
        gap_after=gap_after,
        group_change=ga - gb,
        reference_change=ra - rb,
        reference_worsened=reference_worsened,
        reference_ci=(ref_own.rate_difference_ci_low, ref_own.rate_difference_ci_high),
    )
    caveats: list[str] = []
    if levelling == "material":
        caveats.append("LEVELLING_DOWN")
    if thin:
        caveats.append("THIN_CELLS")
    if zero_cell:
        caveats.append("ZERO_CELL")

    out = result(
        "",
        did=did_fit.estimate if did_fit else None,
        did_ci_low=did_fit.low if did_fit else None,
        did_ci_high=did_fit.high if did_fit else None,
        did_p_value=did_fit.p if did_fit else None,
        ratio_of_rate_ratios=rrr_fit.estimate if rrr_fit else None,
        rrr_ci_low=rrr_fit.low if rrr_fit else None,
        rrr_ci_high=rrr_fit.high if rrr_fit else None,
        rrr_p_value=rrr_fit.p if rrr_fit else None,
        needed_per_period=needed,
        movement=movement,
        gap_before=gap_before,
        gap_after=gap_after,
        relative_change=relative,
        group_change=ga - gb,
        group_change_ci_low=own.rate_difference_ci_low,
        group_change_ci_high=own.rate_difference_ci_high,
        group_change_p=own.p_value,
        group_improved=group_improved,
        reference_change=ra - rb,
        reference_change_ci_low=ref_own.rate_difference_ci_low,
        reference_change_ci_high=ref_own.rate_difference_ci_high,
        reference_worsened=reference_worsened,
        levelling_down=levelling,
        levelling_down_share=share,
        thin=thin,
        zero_cell=zero_cell,
        caveats=caveats,
        notes=notes,
        target_gap=target_gap,
    )
    out.established = is_established(out, alpha=alpha)
    out.verdict = _verdict(out, labels, alpha=alpha, power=power)
    return out


def levelling_down_status(
    *,
    gap_before: float,
    gap_after: float,
    group_change: float,
    reference_change: float,
    reference_worsened: bool,
    reference_ci: tuple[float | None, float | None],
) -> tuple[LevellingDown, float | None]:
    """Is a narrowing of the gap levelling down? ("none" | "slight" | "material", share of the narrowing).

    Material when the gap narrowed, the reference got worse, and either the reference's own interval for its
    change excludes no change, or its worsening accounts for most (over half) of the change in the gap.
    """
    if not reference_worsened or abs(gap_after) >= abs(gap_before):
        return "none", None
    change_in_gap = abs(gap_after - gap_before)
    share = min(abs(reference_change) / change_in_gap, 1.0) if change_in_gap > 0 else 1.0
    low, high = reference_ci
    clear = low is not None and high is not None and (low > 0 or high < 0)
    return ("material" if clear or share > 0.5 else "slight"), share


def is_established(gap: GapChange, *, alpha: float = 0.05) -> bool:
    """The AHRQ rule on the (Holm-adjusted, when set) p values: p <= alpha on at least one scale, a relative
    change in the gap of at least 10%, and at least 5 events and 5 non-events in every cell."""
    did_p = gap.did_p_adjusted if gap.did_p_adjusted is not None else gap.did_p_value
    rrr_p = gap.rrr_p_adjusted if gap.rrr_p_adjusted is not None else gap.rrr_p_value
    significant = (did_p is not None and did_p <= alpha) or (rrr_p is not None and rrr_p <= alpha)
    relative = gap.relative_change if gap.relative_change is not None else 0.0
    return significant and relative >= AHRQ_MIN_RELATIVE_CHANGE and not gap.thin


def _verdict(gap: GapChange, labels: Mapping[str, str] | None, *, alpha: float, power: float) -> str:
    return gap_verdict_text(gap, labels, alpha=alpha, power=power)


def gap_verdict_text(
    gap: GapChange, labels: Mapping[str, str] | None, *, alpha: float = 0.05, power: float = 0.8
) -> str:
    """The analyst's verdict (unrounded rates, full NHS labels), worded by bot.core.equity.wording."""
    if gap.did is None and gap.ratio_of_rate_ratios is None:
        return gap.verdict
    return wording.gap_verdict(gap, lambda code: label_for(code, labels), alpha=alpha, power=power)


# ---------------------------------------------------------------- warnings across windows


def _paired(before: Counts, after: Counts) -> list[tuple[GroupCounts, GroupCounts]]:
    after_by_code = {c.code: c for c in _as_counts(after)}
    return [(b, after_by_code[b.code]) for b in _as_counts(before) if b.code in after_by_code]


Shown = Callable[[GroupCounts], float]


def exact_rate(c: GroupCounts) -> float:
    return c.numerator / c.denominator


def _change_text(b: GroupCounts, a: GroupCounts, cmp: Comparison, shown: Shown = exact_rate) -> str:
    """'4.6% to 4.9% (+0.3 pp, 95% CI ...)': rates (and their difference) as shown; the interval unrounded."""
    rb, ra = shown(b), shown(a)
    text = f"{_pct(rb)} to {_pct(ra)}"
    if cmp.rate_difference_ci_low is not None and cmp.rate_difference_ci_high is not None:
        text += (
            f" ({_pp(ra - rb, True)} pp, 95% CI {_pp(cmp.rate_difference_ci_low, True)} "
            f"to {_pp(cmp.rate_difference_ci_high, True)})"
        )
    return text


def _pct_pair(
    b: GroupCounts, a: GroupCounts, shown: Shown = exact_rate, windows: tuple[str, str] | None = None
) -> str:
    if windows:
        # Windows are spans ("Jan 2025 to Feb 2025"), so "in ..., then" rather than a chain of "to"s, and no
        # brackets: the line usually sits inside brackets already.
        return f"{_pct(shown(b))} in {windows[0]}, then {_pct(shown(a))} in {windows[1]}"
    return f"{_pct(shown(b))} to {_pct(shown(a))}"


def _prose(code: str) -> str:
    return wording.prose_name(code)


def _ci_excludes_zero(cmp: Comparison) -> bool:
    low, high = cmp.rate_difference_ci_low, cmp.rate_difference_ci_high
    return low is not None and high is not None and (low > 0 or high < 0)


def aggregation_check(
    before: Counts,
    after: Counts,
    *,
    direction: Direction,
    min_count: int = 8,
    labels: Mapping[str, str] | None = None,
    shown: Shown = exact_rate,
    windows: tuple[str, str] | None = None,
) -> list[EquityWarning]:
    """When the aggregate improves, flag each showable subgroup whose point estimate moves the other way.

    The aggregate is the "ALL" row when both windows have one, otherwise the sum of the groups with known
    ethnicity. A subgroup is checked only when its numerator is at least `min_count` in both windows, the
    disclosure threshold below which its rate could not be posted anyway.
    """
    pairs = [(b, a) for b, a in _paired(before, after) if _comparable(b) and _comparable(a)]
    totals = [
        (b, a) for b, a in _paired(before, after) if b.code == TOTAL_CODE and b.denominator and a.denominator
    ]
    if totals:
        agg_b, agg_a = totals[0]
    else:
        agg_b, agg_a = (
            _sum_counts(TOTAL_CODE, [b for b, _ in pairs]),
            _sum_counts(TOTAL_CODE, [a for _, a in pairs]),
        )
    rate_b, rate_a = _rate(agg_b), _rate(agg_a)
    if direction == "neither" or rate_b is None or rate_a is None or not _better(rate_a, rate_b, direction):
        return []
    out: list[EquityWarning] = []
    for b, a in pairs:
        if b.numerator < min_count or a.numerator < min_count:
            continue
        if _worse(a.numerator / a.denominator, b.numerator / b.denominator, direction):
            cmp = compare_groups(a, b)
            clear = "a clear change" if _ci_excludes_zero(cmp) else "not statistically clear at these numbers"
            out.append(
                EquityWarning(
                    # A clear move against the aggregate is a harm signal; a point estimate alone is one to watch.
                    "SUBGROUP_MOVES_AGAINST_AGGREGATE",
                    "warning" if _ci_excludes_zero(cmp) else "caution",
                    f"The combined rate improved ({_pct_pair(agg_b, agg_a, shown)}), but {label_for(b.code, labels)} "
                    f"moved the other way: {_change_text(b, a, cmp, shown)}; {clear}. Report this group separately "
                    "rather than only the combined figure.",
                    short=f"the combined rate improved but {_prose(b.code)}'s got worse ({_pct_pair(b, a, shown, windows)}; "
                    + ("a clear change)" if _ci_excludes_zero(cmp) else "not yet clear)"),
                )
            )
    return out


def balancing_check(
    before: Counts,
    after: Counts,
    *,
    direction: Direction,
    measure_name: str,
    min_count: int = 8,
    labels: Mapping[str, str] | None = None,
    shown: Shown = exact_rate,
    windows: tuple[str, str] | None = None,
) -> list[EquityWarning]:
    """Flag every group whose balancing measure got worse between the windows.

    Severity "warning" when the Newcombe interval for the change excludes 0, "caution" when it is only the
    point estimate. Groups below `min_count` events in either window are not assessed (their rates could not
    be posted); one "info" note names them so the gap in the check is visible.
    """
    if direction == "neither":
        return []
    out: list[EquityWarning] = []
    too_small: list[str] = []
    for b, a in _paired(before, after):
        if is_missing_code(b.code) or b.denominator == 0 or a.denominator == 0:
            continue
        if b.numerator < min_count or a.numerator < min_count:
            too_small.append(label_for(b.code, labels))
            continue
        if not _worse(a.numerator / a.denominator, b.numerator / b.denominator, direction):
            continue
        cmp = compare_groups(a, b)
        sure = _ci_excludes_zero(cmp)
        out.append(
            EquityWarning(
                "BALANCING_WORSENED",
                "warning" if sure else "caution",
                f"{measure_name} got worse for {label_for(b.code, labels)}: {_change_text(b, a, cmp, shown)}"
                + ("." if sure else "; the interval includes no change, so keep watching it.")
                + " Check that the improvement work is not causing harm here.",
                short=f"{measure_name} got worse for {_prose(b.code)} ({_pct_pair(b, a, shown, windows)}"
                + ("" if sure else ", not yet clear")
                + ")",
            )
        )
    if too_small:
        out.append(
            EquityWarning(
                "BALANCING_TOO_FEW",
                "info",
                f"{measure_name} could not be checked for {', '.join(too_small)}: fewer than {min_count} events "
                "in a window. Use a longer window or grouped categories.",
            )
        )
    return out
