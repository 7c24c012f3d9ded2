"""Tests for bot.core.charts: valid PNGs, honest alt text, disclosure control in the drawn data, thread safety."""

from __future__ import annotations

import io
import math
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

import matplotlib.image as mpimg
import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.text import Text

from bot.core.charts import (
    ALT_TEXT_LIMIT,
    Chart,
    _build_gap_chart,
    _build_group_timeseries,
    _build_latest_window_dotplot,
    completeness_chart,
    gap_chart,
    group_timeseries,
    latest_window_dotplot,
)
from bot.core.equity.types import GroupStat, SpcPoint, SpcResult, SpcSummary

LABELS = {
    "A": "White - British",
    "H": "Asian or Asian British - Indian",
    "M": "Black or Black British - Caribbean",
    "N": "Black or Black British - African",
    "R": "Other Ethnic Groups - Chinese",
    "Z": "Not stated",
    "99": "Not known",
}
P_METHOD = "p-chart, limits from each period's denominator (qicharts2 rules)"
# A bare 3 or 5 that is not part of a larger number, a decimal or a percentage: how a raw count would appear.
SMALL_COUNT = re.compile(r"(?<![\d.,])[35](?![\d.,%])")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# A rate nobody else in the fixtures has, so finding it in drawn data means a suppressed value leaked.
LEAK_RATE = 0.4321


def months(n: int, start: date = date(2024, 1, 1)) -> list[date]:
    out = []
    year, month = start.year, start.month
    for _ in range(n):
        out.append(date(year, month, 1))
        month += 1
        if month > 12:
            year, month = year + 1, 1
    return out


def p_result(
    code: str,
    numerators: list[int],
    denominators: list[int],
    periods: list[date],
    variations: dict[int, str] | None = None,
    trial: bool = False,
) -> SpcResult:
    p_bar = sum(numerators) / sum(denominators)
    points = []
    for i, (x, n, d) in enumerate(zip(numerators, denominators, periods, strict=True)):
        sigma = math.sqrt(p_bar * (1 - p_bar) / n)
        points.append(
            SpcPoint(
                period=d,
                value=x / n,
                centre=p_bar,
                lower=max(p_bar - 3 * sigma, 0.0),
                upper=min(p_bar + 3 * sigma, 1.0),
                variation=(variations or {}).get(i, "common_cause"),
                numerator=x,
                denominator=n,
            )
        )
    return SpcResult(
        group=code, method="p", points=points, summary=SpcSummary(n_points=len(points), trial_limits=trial)
    )


def standard_results() -> list[SpcResult]:
    periods = months(18)
    return [
        p_result("A", [100 + (i % 4) for i in range(18)], [1000] * 18, periods),
        p_result(
            "N",
            [20 + (i % 3) for i in range(18)],
            [150] * 18,
            periods,
            variations={17: "special_cause_concern"},
        ),
        # Numerators of 3 and 5 in some months: those months must vanish from chart and alt text.
        p_result("M", [3, 5, *([12] * 16)], [90] * 18, periods),
        p_result("H", [15] * 18, [120] * 18, periods),
    ]


def wilson(x: int, n: int) -> tuple[float, float, float]:
    z = 1.96
    p = x / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return p, centre - half, centre + half


def stat(code: str, x: int, n: int, *, ref: bool = False, ref_rate: float | None = None) -> GroupStat:
    p, low, high = wilson(x, n)
    rd = None if ref_rate is None else p - ref_rate
    return GroupStat(
        code=code,
        label=LABELS[code],
        numerator=x,
        denominator=n,
        rate=p,
        ci_low=low,
        ci_high=high,
        is_reference=ref,
        rate_difference=rd,
        rate_difference_ci_low=None if rd is None else rd - 0.05,
        rate_difference_ci_high=None if rd is None else rd + 0.05,
    )


def standard_stats() -> list[GroupStat]:
    return [
        stat("A", 120, 1000, ref=True),
        stat("N", 30, 140),
        stat("M", 3, 40),
        stat("H", 5, 50),
        stat("R", 9, 60),
        stat("Z", 9, 70),
        stat("99", 18, 150),
    ]


def assert_png(chart: Chart) -> None:
    assert chart.png.startswith(PNG_SIGNATURE)
    assert len(chart.png) > 20_000
    pixels = mpimg.imread(io.BytesIO(chart.png), format="png")
    assert pixels.shape[:2] == (840, 1500)
    assert chart.title
    assert 0 < len(chart.alt_text) <= ALT_TEXT_LIMIT


def drawn_values(fig: Figure) -> np.ndarray:
    """Every y value of every line in the figure (data, limits, markers, interval bars)."""
    values: list[float] = []
    for ax in fig.axes:
        for line in ax.get_lines():
            assert isinstance(line, Line2D)
            values.extend(np.asarray(line.get_ydata(), dtype=float).ravel().tolist())
            values.extend(np.asarray(line.get_xdata(), dtype=float).ravel().tolist())
    arr = np.asarray(values, dtype=float)
    return arr[np.isfinite(arr)]


def all_text(fig: Figure) -> str:
    return "\n".join(t.get_text() for t in fig.findobj(Text))


# --- group_timeseries ------------------------------------------------------------------------------


def test_group_timeseries_png_and_alt_text() -> None:
    chart = group_timeseries(
        standard_results(), measure_name="PPH", kind="proportion", reference="A", labels=LABELS
    )
    assert_png(chart)
    for code in ("A", "N", "M", "H"):
        assert LABELS[code] in chart.alt_text
    assert "(reference)" in chart.alt_text
    assert P_METHOD in chart.alt_text
    assert "Black or Black British - African: latest" in chart.alt_text
    assert "special cause of concern at the latest point" in chart.alt_text
    assert not SMALL_COUNT.search(chart.alt_text), chart.alt_text


def test_group_timeseries_hides_suppressed_periods() -> None:
    results = standard_results()
    leak_month = results[3].points[6]
    leak_month.value = LEAK_RATE
    leak_month.upper = LEAK_RATE + 0.01
    small = results[2].points[0]  # numerator 3
    fig, alt, _ = _build_group_timeseries(
        results,
        measure_name="PPH",
        kind="proportion",
        reference="A",
        labels=LABELS,
        suppressed={"H": {leak_month.period}},
    )
    drawn = drawn_values(fig)
    assert not np.isclose(drawn, LEAK_RATE * 100).any()
    assert not np.isclose(drawn, (LEAK_RATE + 0.01) * 100).any()
    assert small.value is not None
    assert not np.isclose(drawn, small.value * 100).any()
    assert not np.isclose(drawn, 5 / 90 * 100).any()
    assert "Gap: count <8, suppressed" in all_text(fig)
    assert f"{LEAK_RATE * 100:.1f}" not in alt


def test_group_timeseries_caps_panels_and_says_how_many_more() -> None:
    periods = months(12)
    codes = ["A", "B", "C", "D", "E", "F", "G", "H", "J", "K", "L", "M", "N", "P", "R", "S", "Z", "99"]
    results = [p_result(c, [20] * 12, [200 + 10 * k] * 12, periods) for k, c in enumerate(codes)]
    fig, alt, _ = _build_group_timeseries(
        results, measure_name="PPH", kind="proportion", reference="A", labels={}, focus=["N"], max_groups=6
    )
    assert len(fig.axes) == 6
    text = all_text(fig)
    assert "12 more groups in the dot plot" in text
    panel_titles = {t.get_text() for ax in fig.axes for t in ax.texts}
    assert "A (reference)" in panel_titles and "N" in panel_titles
    # After the reference and focus groups, the largest groups win ("99" is largest but missing data goes last).
    assert "S" in panel_titles and "99" not in panel_titles
    assert "12 more groups are in the dot plot" in alt


def test_group_timeseries_too_few_points_and_rate_per_1000() -> None:
    periods = months(4)
    short = p_result("N", [20, 22, 21, 25], [150] * 4, periods, trial=True)
    for p in short.points:
        p.lower = p.upper = None
    ref = p_result("A", [100, 101, 99, 100], [1000] * 4, periods)
    fig, alt, _ = _build_group_timeseries(
        [ref, short],
        measure_name="Readmissions",
        kind="rate_per_1000",
        reference="A",
        labels=LABELS,
        target=0.1,
        rebase=[periods[2]],
    )
    assert "too few data for limits" in all_text(fig)
    assert "per 1,000" in alt
    assert "Rate per 1,000" in all_text(fig)


def test_unknown_kind_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown kind"):
        group_timeseries(standard_results(), measure_name="PPH", kind="percent", reference="A", labels=LABELS)


# --- latest_window_dotplot ---------------------------------------------------------------------------


def test_dotplot_png_alt_text_and_suppression() -> None:
    stats = standard_stats()
    stats[4].rate = LEAK_RATE  # R, listed as suppressed below
    chart = latest_window_dotplot(
        stats, measure_name="PPH", kind="proportion", window_label="Oct–Dec 2025", suppressed=["R"]
    )
    assert_png(chart)
    for code in ("A", "N", "Z", "99"):
        assert LABELS[code] in chart.alt_text
    assert "Wilson 95%" in chart.alt_text
    assert "Not shown because the count is under 8" in chart.alt_text
    assert not SMALL_COUNT.search(chart.alt_text), chart.alt_text

    fig, _, _ = _build_latest_window_dotplot(
        stats, measure_name="PPH", kind="proportion", window_label="Oct–Dec 2025", suppressed=["R"]
    )
    drawn = drawn_values(fig)
    text = all_text(fig)
    # M (3 events) and H (5 events) are hidden by the count rule, R by the caller.
    for s in (stats[2], stats[3], stats[4]):
        assert s.rate is not None and s.ci_high is not None
        assert not np.isclose(drawn, s.rate * 100).any()
        assert not np.isclose(drawn, s.ci_high * 100).any()
        assert f"{s.rate * 100:.1f}%" not in text
    assert text.count("<8 — not shown") == 3
    assert "n≈40" not in text and "n≈50" not in text  # no denominator next to a hidden count
    assert "Not stated (Z)" in text and "Not known (99)" in text


# --- completeness_chart and gap_chart --------------------------------------------------------------


def test_completeness_chart() -> None:
    rows = [(d, 0.88 + 0.004 * i, 0.04, 0.08 - 0.004 * i) for i, d in enumerate(months(12))]
    chart = completeness_chart(rows, measure_name="maternity bookings")
    assert_png(chart)
    assert "Not stated (Z)" in chart.alt_text and "Not known (99)" in chart.alt_text
    assert "95%" in chart.alt_text


def test_gap_chart_hides_periods_with_small_counts() -> None:
    windows = []
    for q, d in enumerate(months(6)):
        ref = stat("A", 100 + q, 1000, ref=True)
        assert ref.rate is not None
        n_events = 4 if q == 2 else 25 - q
        windows.append(
            (d, [ref, stat("N", n_events, 150, ref_rate=ref.rate), stat("M", 14, 95, ref_rate=ref.rate)])
        )
    chart = gap_chart(windows, measure_name="PPH", kind="proportion")
    assert_png(chart)
    assert LABELS["N"] in chart.alt_text and LABELS["M"] in chart.alt_text
    fig, _, _ = _build_gap_chart(windows, measure_name="PPH", kind="proportion")
    hidden = windows[2][1][1]
    assert hidden.rate_difference is not None
    assert not np.isclose(drawn_values(fig), hidden.rate_difference * 100).any()


# --- thread safety -------------------------------------------------------------------------------------


def _render_one(i: int) -> Chart:
    if i % 4 == 0:
        return group_timeseries(
            standard_results(), measure_name="PPH", kind="proportion", reference="A", labels=LABELS
        )
    if i % 4 == 1:
        return latest_window_dotplot(
            standard_stats(), measure_name="PPH", kind="proportion", window_label="Q4"
        )
    if i % 4 == 2:
        rows = [(d, 0.9, 0.04, 0.06) for d in months(10)]
        return completeness_chart(rows, measure_name="bookings")
    return group_timeseries(
        standard_results()[:2],
        measure_name="Readmissions",
        kind="rate_per_1000",
        reference="A",
        labels=LABELS,
        target=0.12,
    )


def test_concurrent_rendering_matches_serial() -> None:
    serial = [_render_one(i) for i in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        concurrent = list(pool.map(_render_one, range(8)))
    for a, b in zip(serial, concurrent, strict=True):
        assert_png(b)
        assert a.png == b.png
        assert a.alt_text == b.alt_text


def test_weekly_dates_are_spelled_out() -> None:
    periods = [date(2024, 1, 1) + timedelta(days=7 * i) for i in range(20)]
    results = [p_result("A", [100] * 20, [1000] * 20, periods), p_result("N", [20] * 20, [150] * 20, periods)]
    chart = group_timeseries(results, measure_name="PPH", kind="proportion", reference="A", labels=LABELS)
    assert "20 weekly points" in chart.alt_text


# --- periods as the data has them ------------------------------------------------------------------


def _tick_texts(fig: Figure) -> list[str]:
    fig.canvas.draw()
    # Quarter ticks are two lines ("2024/25" over "Q1"); read them as one.
    return [t.get_text().replace("\n", " ") for ax in fig.axes for t in ax.get_xticklabels() if t.get_text()]


def test_financial_year_quarters_are_labelled_as_the_nhs_writes_them() -> None:
    # Eight quarters from April 2023: NHS financial years 2023/24 and 2024/25, Q1 (Apr-Jun) to Q4 (Jan-Mar).
    periods = [date(2023 + (m - 1) // 12, (m - 1) % 12 + 1, 1) for m in range(4, 4 + 24, 3)]
    expected = [f"{2023 + i // 4}/{(2024 + i // 4) % 100:02d} Q{i % 4 + 1}" for i in range(8)]
    results = [p_result("A", [100] * 8, [1000] * 8, periods), p_result("N", [20] * 8, [150] * 8, periods)]
    fig, alt, _ = _build_group_timeseries(
        results, measure_name="PPH", kind="proportion", reference="A", labels=LABELS, period="fy_quarter"
    )
    ticks = _tick_texts(fig)
    assert ticks and set(ticks) <= set(expected) and expected[-1] in ticks
    assert f"8 financial-year quarters, {expected[0]} to {expected[-1]}" in alt
    # The same dates as calendar quarters: 2023 Q2 to 2025 Q1.
    fig, alt, _ = _build_group_timeseries(
        results, measure_name="PPH", kind="proportion", reference="A", labels=LABELS, period="quarter"
    )
    assert "8 quarters, 2023 Q2 to 2025 Q1" in alt and "2025 Q1" in _tick_texts(fig)


def test_daily_points_are_days_not_weeks() -> None:
    periods = [date(2025, 9, 1) + timedelta(days=i) for i in range(16)]
    results = [p_result("A", [100] * 16, [1000] * 16, periods), p_result("N", [20] * 16, [150] * 16, periods)]
    chart = group_timeseries(results, measure_name="PPH", kind="proportion", reference="A", labels=LABELS)
    assert "16 daily points" in chart.alt_text and "weekly" not in chart.alt_text
    chart = group_timeseries(
        results, measure_name="PPH", kind="proportion", reference="A", labels=LABELS, period="day"
    )
    assert "16 days, 1 Sep 2025 to 16 Sep 2025" in chart.alt_text


def test_a_window_plots_only_its_own_periods_with_the_whole_series_limits() -> None:
    results = standard_results()
    periods = months(18)
    since = periods[-3]
    fig, alt, _ = _build_group_timeseries(
        results,
        measure_name="PPH",
        kind="proportion",
        reference="A",
        labels=LABELS,
        period="month",
        since=since,
        min_periods=1,
    )
    xs = {round(x, 6) for x in drawn_values(fig)}
    from bot.core.charts import _datenum

    assert round(_datenum(since), 6) in xs and round(_datenum(periods[-4]), 6) not in xs
    assert f"3 months, {since:%b %Y} to {periods[-1]:%b %Y}" in alt
    # White British's centre line is the mean over all 18 months, not over the three shown.
    whole_mean = sum(100 + (i % 4) for i in range(18)) / (1000 * 18) * 100
    window_mean = sum(100 + (i % 4) for i in range(15, 18)) / (1000 * 3) * 100
    assert round(whole_mean, 6) in xs and round(window_mean, 6) not in xs
    whole = group_timeseries(
        results, measure_name="PPH", kind="proportion", reference="A", labels=LABELS, period="month"
    )
    window = group_timeseries(
        results,
        measure_name="PPH",
        kind="proportion",
        reference="A",
        labels=LABELS,
        period="month",
        since=since,
    )
    assert whole.png != window.png
