"""Tests for bot.core.equity.stats: the worked PPH example of equity-stats.md 4.6 and the edge cases around it."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.stats.contingency import relative_risk
from statsmodels.stats.contingency_tables import Table2x2

from bot.core.equity.stats import (
    aggregation_check,
    balancing_check,
    best_group,
    compare_groups,
    counts_from_frame,
    gap_change,
    group_stats,
    group_stats_with_warnings,
    heterogeneity,
    index_of_disparity,
    n_needed_gap_change,
    n_needed_two_proportions,
    power_two_proportions,
    wilson_interval,
)
from bot.core.equity.types import GroupCounts as G
from bot.core.equity.types import GroupStat

LABELS = {"BME": "Black & ethnic minority", "A": "White"}
BEFORE = [G("BME", 120, 1000), G("A", 50, 1000)]
AFTER = [G("BME", 90, 1000), G("A", 50, 1000)]


def approx(expected: float, places: int) -> object:
    return pytest.approx(expected, abs=0.5 * 10**-places)


def only(stats: list[GroupStat], code: str) -> GroupStat:
    return next(s for s in stats if s.code == code)


# ---------------------------------------------------------------- 4.6 table


@pytest.mark.parametrize(
    ("x", "low", "high"),
    [(120, 10.130, 14.161), (50, 3.813, 6.531), (90, 7.380, 10.934)],
    ids=["minority-before", "white", "minority-after"],
)
def test_wilson_intervals_match_worked_example(x: int, low: float, high: float) -> None:
    ci_low, ci_high = wilson_interval(x, 1000)
    assert ci_low is not None and ci_high is not None
    assert 100 * ci_low == approx(low, 3)
    assert 100 * ci_high == approx(high, 3)


@pytest.mark.parametrize(
    ("counts", "rr", "rr_ci", "rd_ci", "chi2", "p"),
    [
        (BEFORE, 2.400, (1.746, 3.299), (4.583, 9.465), 31.50, 1.99e-8),
        (AFTER, 1.800, (1.288, 2.515), (1.771, 6.269), 12.29, 4.56e-4),
    ],
    ids=["before", "after"],
)
def test_group_stats_match_worked_example(
    counts: list[G], rr: float, rr_ci: tuple[float, float], rd_ci: tuple[float, float], chi2: float, p: float
) -> None:
    stats = group_stats(counts, reference="A", labels=LABELS)
    ref, bme = only(stats, "A"), only(stats, "BME")
    assert ref.is_reference and ref.rate_ratio is None and ref.p_value is None
    assert ref.label == "White" and bme.label == "Black & ethnic minority"
    assert bme.rate_ratio == approx(rr, 3)
    assert (bme.rate_ratio_ci_low, bme.rate_ratio_ci_high) == (approx(rr_ci[0], 3), approx(rr_ci[1], 3))
    assert bme.rate_difference is not None and bme.rate_difference_ci_low is not None
    assert bme.rate_difference_ci_high is not None
    # 1e-3: the document's 1.771 is a double rounding of 1.77048 (checked by hand from the Wilson limits)
    assert 100 * bme.rate_difference_ci_low == pytest.approx(rd_ci[0], abs=1e-3)
    assert 100 * bme.rate_difference_ci_high == approx(rd_ci[1], 3)
    assert bme.p_value == pytest.approx(p, rel=5e-3)
    cmp = compare_groups(counts[0], counts[1])
    assert cmp.chi2 == approx(chi2, 2)
    assert cmp.rate_ratio_method == "katz-log"


def test_change_within_minority_group() -> None:
    cmp = compare_groups(G("BME", 90, 1000), G("BME", 120, 1000))
    assert cmp.rate_ratio == approx(0.75, 2)
    assert (cmp.rate_ratio_ci_low, cmp.rate_ratio_ci_high) == (approx(0.579, 3), approx(0.972, 3))
    assert cmp.rate_difference is not None and cmp.rate_difference_ci_low is not None
    assert cmp.rate_difference_ci_high is not None
    assert 100 * cmp.rate_difference == approx(-3.0, 1)
    assert 100 * cmp.rate_difference_ci_low == approx(-5.701, 3)
    assert 100 * cmp.rate_difference_ci_high == approx(-0.310, 3)
    assert cmp.chi2 == approx(4.79, 2)
    assert cmp.p_value == approx(0.029, 3)


def test_katz_interval_agrees_with_scipy_and_table2x2() -> None:
    stat = only(group_stats(BEFORE, reference="A"), "BME")
    scipy_ci = relative_risk(120, 1000, 50, 1000).confidence_interval(confidence_level=0.95)
    table_ci = Table2x2(np.array([[120, 880], [50, 950]])).riskratio_confint()
    for low, high in [(scipy_ci.low, scipy_ci.high), table_ci]:
        assert stat.rate_ratio_ci_low == pytest.approx(low, rel=1e-9)
        assert stat.rate_ratio_ci_high == pytest.approx(high, rel=1e-9)


# ---------------------------------------------------------------- 4.6 change in the gap


def test_gap_change_reproduces_worked_example() -> None:
    r = gap_change(
        group_before=G("BME", 120, 1000),
        group_after=G("BME", 90, 1000),
        ref_before=G("A", 50, 1000),
        ref_after=G("A", 50, 1000),
        labels=LABELS,
    )
    assert r.did is not None and r.did_ci_low is not None and r.did_ci_high is not None
    assert 100 * r.did == approx(-3.0, 1)
    assert 100 * r.did_ci_low == approx(-6.29, 2)
    assert 100 * r.did_ci_high == approx(0.29, 2)
    assert r.did_p_value == approx(0.074, 3)
    assert r.ratio_of_rate_ratios == approx(0.75, 2)
    assert (r.rrr_ci_low, r.rrr_ci_high) == (approx(0.473, 3), approx(1.190, 3))
    assert r.rrr_p_value == approx(0.22, 2)
    assert (r.baseline_rate, r.recent_rate, r.reference_baseline_rate, r.reference_recent_rate) == (
        0.12,
        0.09,
        0.05,
        0.05,
    )
    assert not r.established
    assert "narrowed from 7.0 to 4.0 percentage points" in r.verdict
    assert "not established" in r.verdict
    assert "p=0.074" in r.verdict and "p=0.22" in r.verdict
    assert "Levelling down" not in r.verdict
    # the DiD power for these four rates (normal approximation, documented in n_needed_gap_change)
    assert r.needed_per_period == n_needed_gap_change(0.12, 0.09, 0.05, 0.05)
    assert r.needed_per_period is not None and 2400 < r.needed_per_period < 2500
    shown = max(5, -(-r.needed_per_period // 5) * 5)  # a planning figure, rounded up to 5 like any count
    assert f"{shown:,} per group in each window" in r.verdict


def test_gap_change_established_with_large_denominators() -> None:
    r = gap_change(
        group_before=G("N", 1200, 10000),
        group_after=G("N", 900, 10000),
        ref_before=G("A", 500, 10000),
        ref_after=G("A", 500, 10000),
        labels={"N": "Black African", "A": "White"},
    )
    assert r.established
    assert r.did_p_value is not None and r.did_p_value < 0.001
    assert "narrowed from 7.0 to 4.0 percentage points" in r.verdict
    assert "not established" not in r.verdict
    assert "95% CI -4.0 to -2.0" in r.verdict


def test_significant_but_tiny_relative_change_is_not_established() -> None:
    r = gap_change(
        group_before=G("N", 200_000, 1_000_000),
        group_after=G("N", 197_000, 1_000_000),
        ref_before=G("A", 100_000, 1_000_000),
        ref_after=G("A", 100_000, 1_000_000),
    )
    assert r.did_p_value is not None and r.did_p_value < 0.05
    assert not r.established  # gap 10.0 -> 9.7 pp is a 3% relative change, below the AHRQ 10%
    assert "not established: the change is under a 10% relative change in the gap" in r.verdict


def test_widening_gap_is_reported_as_widened() -> None:
    r = gap_change(
        group_before=G("N", 900, 10000),
        group_after=G("N", 1200, 10000),
        ref_before=G("A", 500, 10000),
        ref_after=G("A", 500, 10000),
    )
    assert r.established and "widened from 4.0 to 7.0" in r.verdict


def test_levelling_down_is_flagged() -> None:
    r = gap_change(
        group_before=G("N", 1200, 10000),
        group_after=G("N", 1200, 10000),
        ref_before=G("A", 500, 10000),
        ref_after=G("A", 800, 10000),
        labels={"N": "Black African", "A": "White"},
    )
    assert r.established
    assert "Levelling down" in r.verdict
    assert (
        "White rose from 5.0% to 8.0%" in r.verdict
        and "because White got worse (+3.0 points, 95% CI" in r.verdict
    )
    assert "Black African did not improve" in r.verdict and r.levelling_down == "material"
    higher_is_better = gap_change(
        group_before=G("N", 1200, 10000),
        group_after=G("N", 1200, 10000),
        ref_before=G("A", 500, 10000),
        ref_after=G("A", 800, 10000),
        direction="higher",
    )
    assert "Levelling down" not in higher_is_better.verdict


def test_target_gap_sets_needed_per_period() -> None:
    r = gap_change(
        group_before=G("BME", 120, 1000),
        group_after=G("BME", 90, 1000),
        ref_before=G("A", 50, 1000),
        ref_after=G("A", 50, 1000),
        target_gap=0.01,
    )
    assert r.needed_per_period == n_needed_gap_change(0.12, 0.06, 0.05, 0.05)
    assert "reach the target gap" in r.verdict


@pytest.mark.parametrize(
    "cells",
    [
        (G("N", 0, 40), G("N", 3, 40), G("A", 5, 500), G("A", 6, 500)),
        (G("N", 0, 40), G("N", 0, 40), G("A", 0, 500), G("A", 6, 500)),
        (G("N", 0, 0), G("N", 3, 40), G("A", 5, 500), G("A", 6, 500)),
        (G("N", 0, 10), G("N", 0, 10), G("A", 0, 10), G("A", 0, 10)),
        (G("N", 10, 10), G("N", 10, 10), G("A", 10, 10), G("A", 10, 10)),
        (G("N", 1, 1), G("N", 0, 2), G("A", 1, 3), G("A", 2, 2)),
    ],
    ids=["zero-cell", "no-events-in-a-period", "empty-period", "all-zero", "all-events", "tiny"],
)
def test_gap_change_never_raises_on_zeros(cells: tuple[G, G, G, G]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy or statsmodels noise either
        r = gap_change(group_before=cells[0], group_after=cells[1], ref_before=cells[2], ref_after=cells[3])
    assert not r.established
    assert r.verdict
    for value in (r.did, r.did_ci_low, r.did_ci_high, r.ratio_of_rate_ratios, r.rrr_ci_low, r.rrr_ci_high):
        assert value is None or math.isfinite(value)


def test_gap_change_zero_cell_uses_katz_fallback_and_says_so() -> None:
    r = gap_change(
        group_before=G("N", 0, 40),
        group_after=G("N", 3, 40),
        ref_before=G("A", 5, 500),
        ref_after=G("A", 6, 500),
    )
    assert r.ratio_of_rate_ratios is not None
    assert "Katz log standard errors with 0.5 added" in r.verdict
    empty = gap_change(
        group_before=G("N", 0, 0),
        group_after=G("N", 3, 40),
        ref_before=G("A", 5, 500),
        ref_after=G("A", 6, 500),
    )
    assert empty.did is None and empty.verdict.startswith("Too few to compare")


# ---------------------------------------------------------------- power


def test_power_matches_equity_stats() -> None:
    assert n_needed_two_proportions(0.12, 0.09) == 1632
    assert power_two_proportions(0.12, 0.09, 1000) == approx(0.59, 2)
    assert power_two_proportions(0.12, 0.09, 1632) == pytest.approx(0.8, abs=0.001)
    assert power_two_proportions(0.12, 0.09, 0) == 0.0
    with pytest.raises(ValueError):
        n_needed_two_proportions(0.1, 0.1)
    assert n_needed_gap_change(0.1, 0.1, 0.05, 0.05) is None


# ---------------------------------------------------------------- references, zeros, missing codes


def test_best_reference_picks_lowest_rate_with_enough_events() -> None:
    counts = [G("A", 50, 1000), G("H", 30, 1000), G("R", 1, 100), G("Z", 0, 50), G("N", 120, 1000)]
    # R (1%) and Z (0%) are lower but too small / missing; H is the best group with >= 8 events.
    assert best_group(counts, direction="lower") == "H"
    assert best_group(counts, direction="higher") == "N"
    assert best_group(counts, direction="neither") is None
    stats = group_stats(counts, reference="BEST", direction="lower")
    assert only(stats, "H").is_reference
    assert only(stats, "N").rate_ratio == approx(4.0, 6)
    z = only(stats, "Z")
    assert z.rate == 0.0 and z.ci_high is not None and z.rate_ratio is None and z.p_value is None


def test_best_reference_with_no_eligible_group_gives_rates_only() -> None:
    stats, notes = group_stats_with_warnings([G("A", 2, 10), G("H", 1, 10)], reference="BEST")
    assert not any(s.is_reference or s.rate_ratio is not None for s in stats)
    assert [n.code for n in notes] == ["NO_REFERENCE"]


def test_others_reference_compares_each_group_with_the_rest() -> None:
    counts = [G("A", 50, 1000), G("H", 30, 500), G("N", 60, 500), G("99", 20, 100)]
    stats = group_stats(counts, reference="OTHERS")
    assert not any(s.is_reference for s in stats)
    n = only(stats, "N")
    expected = compare_groups(G("N", 60, 500), G("rest", 80, 1500))  # A + H; the 99 row is left out
    assert n.rate_ratio == pytest.approx(expected.rate_ratio)
    assert n.p_value == pytest.approx(expected.p_value)
    assert only(stats, "99").rate_ratio is None and only(stats, "99").rate == 0.2


def test_missing_codes_cannot_be_reference() -> None:
    with pytest.raises(ValueError):
        group_stats([G("A", 5, 10), G("Z", 1, 10)], reference="Z")


def test_absent_reference_is_a_warning_not_an_error() -> None:
    stats, notes = group_stats_with_warnings([G("N", 5, 10)], reference="A")
    assert stats[0].rate == 0.5 and stats[0].rate_ratio is None
    assert notes[0].code == "NO_REFERENCE"


def test_zero_cells_use_score_interval_and_are_noted() -> None:
    stats, notes = group_stats_with_warnings(
        [G("A", 50, 1000), G("R", 0, 40), G("P", 0, 0), G("S", 3, 20)],
        reference="A",
    )
    r = only(stats, "R")
    assert r.rate == 0.0 and r.ci_low == 0.0 and r.rate_ratio == 0.0
    assert r.rate_ratio_ci_low == 0.0 and r.rate_ratio_ci_high is not None and r.rate_ratio_ci_high > 0
    assert r.rate_difference_ci_low is not None
    p = only(stats, "P")
    assert p.rate is None and p.ci_low is None and p.rate_ratio is None
    codes = {n.code for n in notes}
    assert {"ZERO_CELL_SCORE_INTERVAL", "TOO_FEW_TO_COMPARE", "SMALL_EXPECTED_COUNTS"} <= codes


def test_reference_with_no_events() -> None:
    cmp = compare_groups(G("N", 5, 40), G("A", 0, 100))
    assert cmp.rate_ratio is None and cmp.rate_ratio_ci_high is None  # infinite
    assert cmp.rate_ratio_ci_low is not None and cmp.rate_ratio_ci_low > 1
    both_zero = compare_groups(G("N", 0, 40), G("A", 0, 100))
    assert both_zero.rate_ratio is None and both_zero.p_value is None and both_zero.rate_difference == 0.0


def test_wilson_edge_cases() -> None:
    assert wilson_interval(0, 0) == (None, None)
    assert wilson_interval(0, 10)[0] == 0.0
    assert wilson_interval(10, 10)[1] == 1.0


def test_frame_input() -> None:
    frame = pd.DataFrame(
        {"group": ["BME", "A", "BME"], "numerator": [100, 50, 20], "denominator": [800, 1000, 200]}
    )
    assert counts_from_frame(frame) == [G("BME", 120, 1000), G("A", 50, 1000)]
    stats = group_stats(frame, reference="A")
    assert only(stats, "BME").rate_ratio == approx(2.4, 6)


# ---------------------------------------------------------------- heterogeneity and index of disparity


def test_heterogeneity() -> None:
    h = heterogeneity(BEFORE + [G("Z", 30, 100), G("P", 0, 0)])
    assert h.df == 1 and h.chi2 == approx(31.50, 2)
    assert heterogeneity([G("A", 5, 10)]).chi2 is None
    assert heterogeneity([G("A", 0, 10), G("B", 0, 10)]).p_value is None


def test_index_of_disparity() -> None:
    stats = group_stats([G("A", 50, 1000), G("H", 100, 1000), G("N", 25, 1000), G("Z", 9, 10)], reference="A")
    assert index_of_disparity(stats) == pytest.approx(75.0)  # mean of 100% and 50%
    assert index_of_disparity(group_stats(BEFORE, reference="OTHERS")) is None


# ---------------------------------------------------------------- aggregation masking (4.5)

# Constructed from the text of equity-stats.md 4.5 (the JSON it cites is not in the stored sources):
# minority aggregate 12% -> 9%, Black African 16% -> 18% at n=250, heterogeneity afterwards chi2 36.6 on 4 df.
MASK_BEFORE = [G("N", 40, 250), G("M", 20, 150), G("H", 20, 250), G("J", 22, 200), G("K", 18, 150)]
MASK_AFTER = [G("N", 45, 250), G("M", 11, 150), G("H", 8, 250), G("J", 15, 200), G("K", 11, 150)]


def test_masking_example_is_consistent_with_the_text() -> None:
    assert sum(c.numerator for c in MASK_BEFORE) == 120 and sum(c.numerator for c in MASK_AFTER) == 90
    h = heterogeneity(MASK_AFTER)
    assert h.df == 4 and h.chi2 == approx(36.6, 1)
    assert h.p_value is not None and h.p_value == pytest.approx(2e-7, abs=0.5e-7)


def test_aggregation_check_flags_black_african() -> None:
    out = aggregation_check(MASK_BEFORE, MASK_AFTER, direction="lower", labels={"N": "Black African"})
    assert [w.code for w in out] == ["SUBGROUP_MOVES_AGAINST_AGGREGATE"]
    assert out[0].severity == "caution"  # flagged with its interval; not clear at n=250, so one to watch
    assert (
        "Black African moved the other way: 16.0% to 18.0% (+2.0 pp, 95% CI -4.6 to +8.6)" in out[0].message
    )
    assert "12.0% to 9.0%" in out[0].message
    # The headline's short form says the same: the combined rate, not "everyone's", improved (Black African's
    # is part of it and got worse, so "everyone's rate improved" would contradict itself).
    assert out[0].short is not None and out[0].short.startswith("the combined rate improved but ")
    assert "everyone" not in out[0].short.lower()


def test_aggregation_check_quiet_cases() -> None:
    # below the disclosure threshold in one window: not shown, so not flagged
    small = [G("N", 5, 30), G("A", 200, 1000)], [G("N", 7, 30), G("A", 100, 1000)]
    assert aggregation_check(*small, direction="lower") == []
    # aggregate got worse: the check does not apply
    assert aggregation_check(MASK_AFTER, MASK_BEFORE, direction="lower") == []
    assert aggregation_check(MASK_BEFORE, MASK_AFTER, direction="neither") == []
    # an ALL row, when given, is the aggregate
    with_all = MASK_BEFORE + [G("ALL", 100, 1000)], MASK_AFTER + [G("ALL", 150, 1000)]
    assert aggregation_check(*with_all, direction="lower") == []


# ---------------------------------------------------------------- balancing measures


def test_balancing_check_severity_follows_the_interval() -> None:
    before = [G("A", 200, 1000), G("N", 40, 250), G("H", 30, 250), G("R", 2, 20), G("Z", 5, 50)]
    after = [G("A", 300, 1000), G("N", 45, 250), G("H", 20, 250), G("R", 6, 20), G("Z", 20, 50)]
    out = balancing_check(before, after, direction="lower", measure_name="Caesarean rate")
    by_code = {w.message.split(" for ")[1].split(":")[0]: w for w in out if w.code == "BALANCING_WORSENED"}
    assert by_code["White - British"].severity == "warning"  # 20% -> 30%, interval excludes 0
    assert by_code["Black or Black British - African"].severity == "caution"  # 16% -> 18%, interval spans 0
    assert len(by_code) == 2  # H improved, R too small, Z is missing data
    info = [w for w in out if w.code == "BALANCING_TOO_FEW"]
    assert len(info) == 1 and info[0].severity == "info" and "Chinese" in info[0].message
    assert balancing_check(before, after, direction="higher", measure_name="x")[0].message.startswith(
        "x got worse for Asian or Asian British - Indian"
    )


@pytest.mark.parametrize(
    ("group", "ref"),
    [
        ((1, 1), (0, 2)),
        ((0, 2), (1, 1)),
        ((0, 1), (0, 1)),
        ((1, 1), (1, 1)),
        ((0, 0), (3, 4)),
        ((2, 3), (0, 0)),
    ],
)
def test_compare_groups_on_tiny_tables_is_quiet(group: tuple[int, int], ref: tuple[int, int]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cmp = compare_groups(G("N", *group), G("A", *ref))
    for value in (
        cmp.rate_ratio,
        cmp.rate_ratio_ci_low,
        cmp.rate_ratio_ci_high,
        cmp.rate_difference,
        cmp.p_value,
    ):
        assert value is None or math.isfinite(value)


def test_thin_cells_are_never_established() -> None:
    r = gap_change(
        group_before=G("N", 1, 1), group_after=G("N", 0, 2), ref_before=G("A", 1, 3), ref_after=G("A", 2, 2)
    )
    assert not r.established
    assert "too few to trust these intervals" in r.verdict


def test_levelling_down_partly() -> None:
    r = gap_change(
        group_before=G("N", 1200, 10000),
        group_after=G("N", 1100, 10000),
        ref_before=G("A", 500, 10000),
        ref_after=G("A", 800, 10000),
        labels={"N": "Black African", "A": "White"},
    )
    assert "narrowed partly because White got worse" in r.verdict


def test_wilson_interval_matches_statsmodels_across_counts() -> None:
    from statsmodels.stats.proportion import proportion_confint

    from bot.core.equity.intervals import wilson_interval

    for alpha in (0.05, 0.01):
        for n in (1, 2, 3, 7, 8, 19, 20, 95, 100, 940, 12345):
            for x in sorted({0, 1, n // 3, n // 2, n - 1, n}):
                low, high = proportion_confint(x, n, alpha=alpha, method="wilson")
                ours = wilson_interval(x, n, alpha)
                assert ours[0] == pytest.approx(max(0.0, float(low)), abs=1e-12), (x, n, alpha)
                assert ours[1] == pytest.approx(min(1.0, float(high)), abs=1e-12), (x, n, alpha)
    assert wilson_interval(0, 0) == (None, None)
