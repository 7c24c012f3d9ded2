"""Tests for the SPC engine against NHSRplotthedots and qicharts2 golden cases, plus edge cases."""

from __future__ import annotations

import json
import math
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from bot.core.equity.spc import (
    SIGNAL_FEW_CROSSINGS,
    SIGNAL_LONG_RUN,
    SIGNAL_OUTSIDE_LIMITS,
    anhoej_limits,
    mdc_chart,
    mdc_special_causes,
    qic_chart,
    spc_for_groups,
    spc_for_series,
)
from bot.core.equity.types import Direction, SpcMethod

CASES = Path(__file__).parents[1] / "cases" / "spc"
TOL = 1e-6
TO_DIRECTION: dict[str, Direction] = {"increase": "higher", "decrease": "lower", "neutral": "neither"}


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((CASES / name).read_text())
    return data


def case_files(prefix: str) -> list[Any]:
    return [pytest.param(p.name, id=p.stem) for p in sorted(CASES.glob(f"{prefix}-*.json"))]


def as_float(values: list[float | None]) -> np.ndarray[Any, np.dtype[np.float64]]:
    return np.array([math.nan if v is None else v for v in values], dtype=np.float64)


def close(actual: float | None, expected: float | None) -> bool:
    if expected is None:
        return actual is None or math.isnan(actual)
    return actual is not None and abs(actual - expected) <= TOL


def weekly(n: int, start: date = date(2024, 1, 1)) -> list[date]:
    return [start + timedelta(weeks=i) for i in range(n)]


# --- NHSRplotthedots golden cases ----------------------------------------------------------------


@pytest.mark.parametrize("name", case_files("ptd"))
def test_mdc_matches_nhsrplotthedots(name: str) -> None:
    case = load(name)
    params, expected = case["params"], case["expected"]
    periods = [date.fromisoformat(d) for d in case["input"]["date"]]
    result = spc_for_series(
        periods,
        values=case["input"]["value"],
        method="mdc",
        direction=TO_DIRECTION[params["improvement_direction"]],
        fix_after=params["fix_after_n_points"],
        screen_outliers=params["screen_outliers"],
    )
    points = expected["points"][0]
    assert [p.period.isoformat() for p in result.points] == points["date"]
    for i, point in enumerate(result.points):
        assert close(point.centre, points["mean"][i]), i
        assert close(point.lower, points["lpl"][i]), i
        assert close(point.upper, points["upl"][i]), i
    assert [p.signals[0] if p.signals else "Common Cause" for p in result.points] == points[
        "special_cause_type"
    ]
    assert [p.variation for p in result.points] == points["point_type"]

    summary = expected["summary"][0]
    counts = Counter(p.variation for p in result.points)
    for kind in ("common_cause", "special_cause_improvement", "special_cause_concern"):
        assert counts[kind] == summary[kind]
    assert result.summary.n_points == summary["n"]
    assert result.summary.variation_type == summary["variation_type"]
    assert result.summary.trial_limits is any(g["short_group_warning"] for g in expected["groups"])


@pytest.mark.parametrize("name", case_files("ptd"))
def test_mdc_segments_match_nhsrplotthedots_groups(name: str) -> None:
    case = load(name)
    params = case["params"]
    chart = mdc_chart(
        case["input"]["value"],
        improvement=params["improvement_direction"],
        fix_after=params["fix_after_n_points"],
        screen_outliers=params["screen_outliers"],
    )
    groups = case["expected"]["groups"]
    assert len(chart.segments) == len(groups)
    for segment, group in zip(chart.segments, groups, strict=True):
        assert segment.n == group["n"]
        assert close(segment.mean, group["mean"])
        assert close(segment.lpl, group["lpl"])
        assert close(segment.upl, group["upl"])
        assert segment.short_group_warning is group["short_group_warning"]


@pytest.mark.parametrize(
    ("direction", "key"), [("higher", "point_type_if_increase"), ("neither", "point_type_if_neutral")]
)
def test_mdc_point_types_follow_direction(direction: Direction, key: str) -> None:
    case = load("ptd-06-all-rules-decrease.json")
    periods = [date.fromisoformat(d) for d in case["input"]["date"]]
    result = spc_for_series(periods, values=case["input"]["value"], method="mdc", direction=direction)
    assert [p.variation for p in result.points] == case["expected"][key]


# --- qicharts2 golden cases ----------------------------------------------------------------------


@pytest.mark.parametrize("name", case_files("qic"))
def test_qic_chart_matches_qicharts2(name: str) -> None:
    case = load(name)
    params, inp = case["params"], case["input"]
    points, summary = case["expected"]["points"], case["expected"]["summary"][0]
    chart = qic_chart(
        params["chart"],
        values=inp.get("value"),
        numerators=inp.get("numerator"),
        denominators=inp.get("denominator"),
        freeze=params.get("freeze"),
        screened_mr=params.get("screened_mr", True),
    )
    for ours, theirs in [
        (chart.y, "y"),
        (chart.n, "n"),
        (chart.cl, "cl"),
        (chart.lcl, "lcl"),
        (chart.ucl, "ucl"),
        (chart.lcl_95, "lcl_95"),
        (chart.ucl_95, "ucl_95"),
    ]:
        np.testing.assert_allclose(ours, as_float(points[theirs]), atol=TOL, rtol=0, err_msg=theirs)
    assert chart.part.tolist() == points["part"]
    assert chart.baseline.tolist() == points["baseline"]
    assert chart.sigma_signal.tolist() == points["sigma_signal"]
    assert chart.runs_signal.tolist() == points["runs_signal"]

    (runs,) = chart.runs
    assert runs.n_obs == summary["n.obs"]
    assert runs.n_useful == summary["n.useful"]
    assert runs.longest_run == summary["longest.run"]
    assert runs.longest_run_max == summary["longest.run.max"]
    assert runs.crossings == summary["n.crossings"]
    assert runs.crossings_min == summary["n.crossings.min"]
    assert runs.signal is bool(summary["runs.signal"])
    assert int(chart.sigma_signal.sum()) == summary["sigma.signal"]
    assert close(float(chart.cl[-1]), summary["CL"])
    for ours, theirs in [
        (chart.lcl, "aLCL"),
        (chart.lcl_95, "aLCL.95"),
        (chart.ucl_95, "aUCL.95"),
        (chart.ucl, "aUCL"),
    ]:
        average = None if np.isnan(ours).all() else float(np.mean(ours))
        assert close(average, summary[theirs]), theirs


@pytest.mark.parametrize(
    ("name", "method"), [("qic-01-p-chart-varying-n.json", "p"), ("qic-03-run-chart-random.json", "run")]
)
def test_spc_for_series_p_and_run_match_qicharts2(name: str, method: SpcMethod) -> None:
    case = load(name)
    inp = case["input"]
    points, summary = case["expected"]["points"], case["expected"]["summary"][0]
    result = spc_for_series(
        weekly(len(inp["x"])),
        values=inp.get("value"),
        numerators=inp.get("numerator"),
        denominators=inp.get("denominator"),
        method=method,
    )
    for i, point in enumerate(result.points):
        assert close(point.value, points["y"][i])
        assert close(point.centre, points["cl"][i])
        assert close(point.lower, points["lcl"][i])
        assert close(point.upper, points["ucl"][i])
        assert (SIGNAL_OUTSIDE_LIMITS in point.signals) is points["sigma_signal"][i]
        assert (point.variation != "common_cause") is (points["sigma_signal"][i] or points["runs_signal"][i])
    assert result.summary.longest_run == summary["longest.run"]
    assert result.summary.longest_run_max == summary["longest.run.max"]
    assert result.summary.crossings == summary["n.crossings"]
    assert result.summary.crossings_min == summary["n.crossings.min"]
    assert result.summary.runs_signal is bool(summary["runs.signal"])
    assert result.summary.n_points == summary["n.obs"]


def test_p_chart_point_above_ucl_is_classified_by_direction() -> None:
    inp = load("qic-01-p-chart-varying-n.json")["input"]
    kwargs: dict[str, Any] = {
        "numerators": inp["numerator"],
        "denominators": inp["denominator"],
        "method": "p",
    }
    periods = weekly(25)
    # Point 11 (20/110) is the one above its upper limit.
    assert (
        spc_for_series(periods, direction="higher", **kwargs).points[10].variation
        == "special_cause_improvement"
    )
    assert (
        spc_for_series(periods, direction="lower", **kwargs).points[10].variation == "special_cause_concern"
    )
    assert (
        spc_for_series(periods, direction="neither", **kwargs).points[10].variation
        == "special_cause_neutral_high"
    )


def test_p_chart_limits_match_independent_formula() -> None:
    rng = np.random.default_rng(7)
    den = rng.integers(20, 400, size=30)
    num = rng.binomial(den, 0.2)
    result = spc_for_series(weekly(30), numerators=num.tolist(), denominators=den.tolist(), method="p")
    p_bar = num.sum() / den.sum()
    half = 3 * np.sqrt(p_bar * (1 - p_bar) / den)
    assert all(close(p.centre, p_bar) for p in result.points)
    np.testing.assert_allclose(
        as_float([p.lower for p in result.points]), np.clip(p_bar - half, 0, 1), atol=1e-12
    )
    np.testing.assert_allclose(
        as_float([p.upper for p in result.points]), np.clip(p_bar + half, 0, 1), atol=1e-12
    )


# --- Anhøj table ---------------------------------------------------------------------------------


def test_anhoej_limits_match_the_table_for_every_n() -> None:
    table = load("anhoej-critical-values.json")["table"]
    assert [row["n_useful"] for row in table] == list(range(10, 101))
    for row in table:
        assert anhoej_limits(row["n_useful"]) == (row["longest_run_max"], row["n_crossings_min"]), row


def test_run_chart_with_a_shift_signals_long_run_and_few_crossings() -> None:
    values = [1.0, 2.0] * 6 + [11.0, 12.0] * 6  # median 6.5: 12 below then 12 above, one crossing
    result = spc_for_series(weekly(24), values=values, method="run", direction="higher")
    assert result.summary.longest_run == 12
    assert result.summary.crossings == 1
    assert result.summary.runs_signal is True
    assert all(p.signals == [SIGNAL_LONG_RUN, SIGNAL_FEW_CROSSINGS] for p in result.points)
    assert {p.variation for p in result.points[:12]} == {"special_cause_concern"}
    assert {p.variation for p in result.points[12:]} == {"special_cause_improvement"}
    assert result.summary.variation_type == "special_cause_improvement"


def test_run_chart_ignores_points_on_the_median() -> None:
    values = [1.0, 5.0, 9.0] * 8  # a third of the points sit on the median
    result = spc_for_series(weekly(24), values=values, method="run")
    assert result.summary.longest_run == 1
    assert result.summary.crossings == 15  # 16 useful points alternate below/above
    assert result.summary.longest_run_max == anhoej_limits(16)[0]


# --- MDC rules on hand-made segments --------------------------------------------------------------

LIMITS = {"mean": 0.0, "lpl": -3.0, "upl": 3.0, "nlpl": -2.0, "nupl": 2.0}


def test_two_in_three_flags_only_the_near_limit_points_on_one_side() -> None:
    labels = mdc_special_causes(np.array([0.5, 2.5, 1.0, 2.5, 0.5]), **LIMITS)
    assert labels == [[], ["2 in 3 Above CL"], [], ["2 in 3 Above CL"], []]


def test_two_in_three_needs_all_three_points_on_the_same_side() -> None:
    labels = mdc_special_causes(np.array([0.5, 2.5, -1.0, 2.5, -0.5]), **LIMITS)
    assert labels == [[]] * 5


def test_shift_is_broken_by_a_point_on_the_mean() -> None:
    assert mdc_special_causes(np.array([1.0] * 6 + [0.0] + [1.0] * 6), **LIMITS) == [[]] * 13
    assert mdc_special_causes(np.array([-1.0] * 7), **LIMITS) == [["7 Points Below CL"]] * 7


def test_trend_is_broken_by_an_equal_pair() -> None:
    flat = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.6, 0.7, 0.8]
    assert all("7 Point Trend" not in " ".join(s) for s in mdc_special_causes(np.array(flat), **LIMITS))
    falling = [0.3, 0.2, 0.1, -0.1, -0.2, -0.3, -0.4]
    labels = mdc_special_causes(np.array(falling), **LIMITS)
    assert [s[0] for s in labels] == ["7 Point Trend (Decreasing)"] * 7


# --- edge cases ----------------------------------------------------------------------------------


def test_all_equal_values_give_zero_width_limits_and_no_signal() -> None:
    result = spc_for_series(weekly(20), values=[5.0] * 20, method="mdc", direction="higher")
    assert all(p.centre == p.lower == p.upper == 5.0 for p in result.points)
    assert all(p.signals == [] and p.variation == "common_cause" for p in result.points)
    run = spc_for_series(weekly(20), values=[5.0] * 20, method="run")
    assert run.summary.longest_run is None and run.summary.runs_signal is False


def test_single_point() -> None:
    mdc = spc_for_series([date(2024, 1, 1)], values=[3.0], method="mdc", direction="higher")
    (point,) = mdc.points
    assert (point.centre, point.lower, point.upper) == (3.0, None, None)
    assert point.variation == "common_cause"
    assert mdc.summary.trial_limits is True
    assert mdc.summary.n_points == 1
    p = spc_for_series([date(2024, 1, 1)], numerators=[3], denominators=[10], method="p")
    assert p.points[0].centre == pytest.approx(0.3)
    assert p.summary.trial_limits is True


def test_zero_denominator_has_no_value_no_limits_and_is_left_out() -> None:
    nums, dens = [5, 0, 8, 6], [50, 0, 40, 60]
    result = spc_for_series(weekly(4), numerators=nums, denominators=dens, method="p")
    empty = result.points[1]
    assert (empty.value, empty.lower, empty.upper, empty.signals) == (None, None, None, [])
    assert (empty.numerator, empty.denominator) == (0, 0)
    assert result.points[0].centre == pytest.approx(19 / 150)
    assert result.summary.n_points == 3
    mdc = spc_for_series(weekly(4), numerators=nums, denominators=dens, method="mdc")
    assert mdc.points[1].value is None
    assert mdc.points[0].centre == pytest.approx(np.mean([5 / 50, 8 / 40, 6 / 60]))


def test_rebase_gives_each_segment_its_own_limits() -> None:
    low = [10.0, 11.0, 9.0, 10.5, 9.5] * 3
    high = [v + 10 for v in low]
    periods = weekly(30)
    plain = spc_for_series(periods, values=low + high, method="mdc", direction="higher")
    assert any(p.signals for p in plain.points[15:])
    # A rebase date between two periods starts the new segment at the next period.
    rebased = spc_for_series(
        periods, values=low + high, method="mdc", direction="higher", rebase=[periods[15] - timedelta(days=3)]
    )
    assert all(p.centre == pytest.approx(np.mean(low)) for p in rebased.points[:15])
    assert all(p.centre == pytest.approx(np.mean(high)) for p in rebased.points[15:])
    assert rebased.points[0].upper != rebased.points[15].upper
    assert all(p.signals == [] for p in rebased.points)
    run = spc_for_series(periods, values=low + high, method="run", rebase=[periods[15]])
    assert run.points[0].centre == pytest.approx(np.median(low))
    assert run.points[-1].centre == pytest.approx(np.median(high))


@pytest.mark.parametrize("method", ["mdc", "p", "run"])
def test_fix_after_fewer_than_12_points_is_rejected(method: SpcMethod) -> None:
    with pytest.raises(ValueError, match="at least 12"):
        spc_for_series(weekly(20), numerators=[1] * 20, denominators=[10] * 20, method=method, fix_after=11)


def test_fix_after_judges_later_points_against_the_baseline() -> None:
    values = [10.0, 11.0, 9.0, 10.0] * 3 + [20.0] * 4
    result = spc_for_series(weekly(16), values=values, method="mdc", direction="lower", fix_after=12)
    assert result.points[-1].centre == pytest.approx(10.0)
    assert [p.signals[0] for p in result.points[12:]] == ["Above UCL"] * 4
    assert result.summary.variation_type == "special_cause_concern"


@pytest.mark.parametrize(
    ("direction", "target", "expected"),
    [
        ("higher", 5.0, "consistent_fail"),
        ("higher", -5.0, "consistent_pass"),
        ("lower", 5.0, "consistent_pass"),
        ("lower", -5.0, "consistent_fail"),
        ("higher", 0.0, "inconsistent"),
        ("neither", 5.0, None),
        ("higher", None, None),
    ],
)
def test_assurance_against_the_limits(
    direction: Direction, target: float | None, expected: str | None
) -> None:
    case = load("ptd-01-rnorm20.json")  # limits -3.01 / 3.29
    periods = [date.fromisoformat(d) for d in case["input"]["date"]]
    result = spc_for_series(
        periods,
        values=case["input"]["value"],
        method="mdc",
        direction=direction,
        target=target,
    )
    assert result.summary.assurance_type == expected


def test_periods_are_sorted_and_duplicates_rejected() -> None:
    periods = weekly(3)
    result = spc_for_series(list(reversed(periods)), values=[3.0, 2.0, 1.0], method="run")
    assert [p.period for p in result.points] == periods
    assert [p.value for p in result.points] == [1.0, 2.0, 3.0]
    with pytest.raises(ValueError, match="unique"):
        spc_for_series([periods[0]] * 2, values=[1.0, 2.0], method="run")


def test_bad_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="numerators and denominators"):
        spc_for_series(weekly(3), values=[1.0, 2.0, 3.0], method="p")
    with pytest.raises(ValueError, match="numerator <= denominator"):
        spc_for_series(weekly(2), numerators=[3, 1], denominators=[2, 5], method="p")
    with pytest.raises(ValueError, match="entries"):
        spc_for_series(weekly(3), values=[1.0, 2.0], method="mdc")


def test_spc_for_groups_charts_each_group_with_its_rebase_dates() -> None:
    periods = weekly(20)
    frame = pd.DataFrame(
        {
            "period": periods * 2,
            "group": ["A"] * 20 + ["B"] * 20,
            "numerator": [10, 12, 9, 11] * 5 + [30, 28, 31, 29] * 5,
            "denominator": [100] * 40,
        }
    )
    results = spc_for_groups(frame, method="p", direction="lower", rebase={"B": [periods[10]]})
    assert list(results) == ["A", "B"]
    assert results["A"].group == "A"
    assert all(p.centre == pytest.approx(0.105) for p in results["A"].points)
    b_nums = [30, 28, 31, 29] * 5
    assert all(p.centre == pytest.approx(sum(b_nums[:10]) / 1000) for p in results["B"].points[:10])
    assert all(p.centre == pytest.approx(sum(b_nums[10:]) / 1000) for p in results["B"].points[10:])
    assert results["B"].summary.n_points == 20
    expected_b = spc_for_series(
        periods, numerators=b_nums, denominators=[100] * 20, method="p", rebase=[periods[10]]
    )
    assert [p.lower for p in results["B"].points] == [p.lower for p in expected_b.points]

    everyone = spc_for_groups(frame, method="run", rebase={"ALL": [periods[10]]})
    assert everyone["A"].summary.n_points == 20
    assert everyone["A"].summary.longest_run_max == anhoej_limits(10)[0]  # last part has 10 points


def test_spc_for_groups_accepts_values_and_checks_columns() -> None:
    frame = pd.DataFrame(
        {"period": pd.to_datetime(["2024-01-01", "2024-01-08"]), "group": "ALL", "value": [1.0, 2.0]}
    )
    result = spc_for_groups(frame, method="mdc")["ALL"]
    assert [p.period for p in result.points] == [date(2024, 1, 1), date(2024, 1, 8)]
    with pytest.raises(ValueError, match="columns"):
        spc_for_groups(frame.drop(columns="value"), method="mdc")
