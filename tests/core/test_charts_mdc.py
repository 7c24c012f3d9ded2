"""Making Data Count icons against the NHSRplotthedots golden cases, PDSA and rebase markers, labels never cut
mid-word, the completeness axis and the widened short window."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from matplotlib.figure import Figure
from matplotlib.offsetbox import AnchoredOffsetbox
from matplotlib.patches import Rectangle
from matplotlib.text import Text

from bot.core import ethnicity
from bot.core.charts import (
    _build_gap_chart,
    _build_group_timeseries,
    _build_latest_window_dotplot,
    group_timeseries,
)
from bot.core.charts.completeness import _build_completeness_chart
from bot.core.charts.icons import assurance_icon, icons_for, variation_icon
from bot.core.charts.markers import CycleMark
from bot.core.equity.spc import spc_for_series
from bot.core.equity.types import Direction, GroupStat, SpcPoint, SpcResult, SpcSummary

CASES = Path(__file__).parents[1] / "cases" / "spc"
TO_DIRECTION: dict[str, Direction] = {"increase": "higher", "decrease": "lower", "neutral": "neither"}


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((CASES / name).read_text())
    return data


def ptd_icon_file(point_type: str, improvement_direction: str) -> str:
    """NHSRplotthedots' ptd_get_icons()$variation_icon_file, transcribed from R/geom_ptd_icon.R."""
    if point_type == "common_cause":
        return "common_cause"
    if point_type.startswith("special_cause_neutral_"):
        return "neutral_" + point_type.rsplit("_", 1)[1]
    if point_type == "special_cause_concern":
        return "concern_" + ("low" if improvement_direction == "increase" else "high")
    assert point_type == "special_cause_improvement"
    return "improvement_" + ("high" if improvement_direction == "increase" else "low")


def mdc(case: dict[str, Any], direction: str) -> SpcResult:
    params = case["params"]
    return spc_for_series(
        [date.fromisoformat(d) for d in case["input"]["date"]],
        values=case["input"]["value"],
        method="mdc",
        direction=TO_DIRECTION[direction],
        fix_after=params["fix_after_n_points"],
        screen_outliers=params["screen_outliers"],
        target=params["target"],
    )


# --- icons against the golden cases -----------------------------------------------------------------------


@pytest.mark.parametrize("name", [p.name for p in sorted(CASES.glob("ptd-*.json"))])
def test_variation_icon_matches_nhsrplotthedots(name: str) -> None:
    case = load(name)
    direction = case["params"]["improvement_direction"]
    result = mdc(case, direction)
    expected_type = case["expected"]["summary"][0]["variation_type"]
    assert result.summary.variation_type == expected_type
    icons = icons_for(result, direction=TO_DIRECTION[direction], target=None)
    assert [i.key for i in icons] == [ptd_icon_file(expected_type, direction)]
    # Every point's own type maps the way the package maps it, with the words to match.
    for point, expected in zip(result.points, case["expected"]["points"][0]["point_type"], strict=True):
        icon = variation_icon(point.variation, TO_DIRECTION[direction])
        assert icon is not None and icon.key == ptd_icon_file(expected, direction)


@pytest.mark.parametrize(
    ("direction", "key", "words", "letter"),
    [
        ("decrease", "point_type", "Special cause concern (high)", "H"),
        ("increase", "point_type_if_increase", None, None),
        ("neutral", "point_type_if_neutral", None, None),
    ],
)
def test_all_rules_case_gives_the_packages_icon_in_each_direction(
    direction: str, key: str, words: str | None, letter: str | None
) -> None:
    case = load("ptd-06-all-rules-decrease.json")
    expected_types = (
        case["expected"]["points"][0]["point_type"] if key == "point_type" else case["expected"][key]
    )
    result = mdc(case, direction)
    [icon] = icons_for(result, direction=TO_DIRECTION[direction], target=None)
    assert icon.key == ptd_icon_file(expected_types[-1], direction)
    if words is not None:
        assert (icon.words, icon.letter) == (words, letter)
    # Never colour alone: the words name the kind and the side of every special cause.
    if icon.key != "common_cause":
        kind, side = icon.key.split("_")
        assert kind in icon.words.lower() and f"({side})" in icon.words
        assert icon.letter == side[0].upper()


@pytest.mark.parametrize(
    ("where", "direction", "expected", "words"),
    [
        ("above", "increase", "fail", "Consistently misses the target"),
        ("below", "increase", "pass", "Consistently meets the target"),
        ("above", "decrease", "pass", "Consistently meets the target"),
        ("between", "increase", "inconsistent", "Hit and miss against the target"),
        ("above", "neutral", None, None),
    ],
)
def test_assurance_icon_against_the_golden_limits(
    where: str, direction: str, expected: str | None, words: str | None
) -> None:
    case = load("ptd-01-rnorm20.json")
    group = case["expected"]["groups"][0]
    target = {"above": group["upl"] + 1, "below": group["lpl"] - 1, "between": group["mean"]}[where]
    case["params"]["target"] = target
    result = mdc(case, direction)
    icons = icons_for(result, direction=TO_DIRECTION[direction], target=target)
    assurance = [i for i in icons if i.kind == "assurance"]
    if expected is None:
        assert assurance == []
        assert assurance_icon("consistent_fail", direction="neither") is None
    else:
        assert [(i.key, i.words) for i in assurance] == [(expected, words)]
    # Without a target there is never an assurance icon.
    assert all(i.kind == "variation" for i in icons_for(result, direction="higher", target=None))


# --- icons on the chart ------------------------------------------------------------------------------------


def months(n: int, start: date = date(2024, 1, 1)) -> list[date]:
    out, year, month = [], start.year, start.month
    for _ in range(n):
        out.append(date(year, month, 1))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def result(code: str, periods: list[date], *, last: str = "common_cause", numerator: int = 30) -> SpcResult:
    points = [
        SpcPoint(
            period=d,
            value=numerator / 300,
            centre=0.1,
            lower=0.05,
            upper=0.15,
            variation=last if i == len(periods) - 1 else "common_cause",
            numerator=numerator,
            denominator=300,
        )
        for i, d in enumerate(periods)
    ]
    return SpcResult(code, "p", points, SpcSummary(n_points=len(points), assurance_type="consistent_fail"))


def all_text(fig: Figure) -> list[str]:
    return [t.get_text() for t in fig.findobj(Text) if t.get_text()]


def icon_boxes(fig: Figure) -> list[AnchoredOffsetbox]:
    return [a for ax in fig.axes for a in ax.artists if a.get_gid() == "mdc-icons"]


def test_each_panel_carries_its_icons_with_words_on_the_chart_and_in_the_alt_text() -> None:
    periods = months(20)
    results = [
        result("A", periods),
        result("N", periods, last="special_cause_concern", numerator=60),
        result("M", periods, last="special_cause_improvement", numerator=12),
    ]
    fig, alt, _ = _build_group_timeseries(
        results,
        measure_name="PPH",
        kind="proportion",
        reference="A",
        labels={},
        direction="lower",
        target=0.05,
    )
    assert len(icon_boxes(fig)) == 3
    text = "\n".join(all_text(fig)).replace("\n", " ")
    for words in (
        "Common cause variation",
        "Special cause concern (high)",
        "Special cause improvement (low)",
    ):
        assert words in text
        assert words.lower() in alt
    assert "Consistently misses the target" in text and "consistently misses the target" in alt


def test_no_variation_icon_when_the_latest_period_is_hidden() -> None:
    periods = months(20)
    hidden = result("N", periods, last="special_cause_concern")
    fig, alt, _ = _build_group_timeseries(
        [result("A", periods), hidden],
        measure_name="PPH",
        kind="proportion",
        reference="A",
        labels={},
        suppressed={"N": {periods[-1]}},
        direction="lower",
    )
    assert "concern" not in " ".join(all_text(fig)).lower()
    assert all_text(fig).count("latest <8:\nno icon") == 1  # says why, in the hidden group's panel only
    assert "special cause concern" not in alt
    assert "common cause variation" in alt  # the reference's icon is still there


# --- PDSA cycles and rebase --------------------------------------------------------------------------------


def test_pdsa_cycles_and_rebase_are_marked_in_every_panel_and_described() -> None:
    periods = months(24)
    cycles = [
        CycleMark("C1", date(2024, 6, 3), date(2024, 8, 20)),
        CycleMark("C2", date(2025, 10, 6), date(2026, 3, 10), running=True),
        CycleMark("C9", date(2020, 1, 1), date(2020, 3, 1)),  # long before the chart: left out
    ]
    fig, alt, _ = _build_group_timeseries(
        [result("A", periods), result("N", periods)],
        measure_name="PPH",
        kind="proportion",
        reference="A",
        labels={},
        rebase=[date(2025, 1, 1)],
        cycles=cycles,
    )
    for ax in fig.axes:
        spans = {p.get_gid() for p in ax.patches}
        assert {"pdsa-C1", "pdsa-C2"} <= spans and "pdsa-C9" not in spans
        assert any(line.get_gid() == "rebase" for line in ax.get_lines())
    texts = all_text(fig)
    assert texts.count(" C1") == 2 and texts.count(" C2") == 2
    assert texts.count("rebased ") == 1
    assert "C1 (3 Jun 2024 to 20 Aug 2024)" in alt
    assert "C2 (running since 6 Oct 2025)" in alt
    assert "C9" not in alt and "C9" not in " ".join(texts)
    assert "Limits rebased from 1 Jan 2025" in alt
    assert "PDSA cycle" in texts


def test_no_cycles_no_markers() -> None:
    periods = months(12)
    fig, alt, _ = _build_group_timeseries(
        [result("A", periods)], measure_name="PPH", kind="proportion", reference="A", labels={}
    )
    assert not any(str(p.get_gid()).startswith("pdsa") for ax in fig.axes for p in ax.patches)
    assert "PDSA" not in alt


# --- the window --------------------------------------------------------------------------------------------


def test_a_one_quarter_window_widens_to_six_quarters_and_says_so() -> None:
    quarters = [date(2023 + (m // 12), m % 12 + 1, 1) for m in range(3, 36, 3)]
    chart = group_timeseries(
        [result("A", quarters), result("N", quarters)],
        measure_name="PPH",
        kind="proportion",
        reference="A",
        labels={},
        period="quarter",
        since=quarters[-1],
    )
    assert "Showing the last 6 quarters: the chosen window has only 1 quarter." in chart.alt_text


# --- labels never cut mid-word -----------------------------------------------------------------------------

LONG = {c: ethnicity.label(c) for c in "ABCDEFGHJKLMNPRS"}


def assert_no_word_cut(fig: Figure) -> None:
    words = {w for label in LONG.values() for w in re.findall(r"[A-Za-z]+", label)}
    words |= {w for c in LONG for w in re.findall(r"[A-Za-z]+", ethnicity.short_label(c))}
    for text in all_text(fig):
        if not any(label.split(" ")[0] in text for label in LONG.values()):
            continue
        assert not re.search(r"\w…", text), text
        for token in re.findall(r"[A-Za-z]+", text):
            cut = [w for w in words if w.startswith(token) and w != token]
            assert token in words or token in ("ref", "reference") or not cut, f"{token!r} cut in {text!r}"


def test_group_names_are_never_cut_mid_word_on_any_chart() -> None:
    periods = months(14)
    results = [result(c, periods) for c in LONG]
    for max_groups in (4, 6, 18):
        fig, _, _ = _build_group_timeseries(
            results, measure_name="PPH", kind="proportion", reference="A", labels=LONG, max_groups=max_groups
        )
        assert_no_word_cut(fig)
    stats = [
        GroupStat(c, label, 30, 300, 0.1, 0.07, 0.13, is_reference=c == "A") for c, label in LONG.items()
    ]
    fig, _, _ = _build_latest_window_dotplot(
        stats, measure_name="PPH", kind="proportion", window_label="Jan 2025"
    )
    assert_no_word_cut(fig)
    assert "Any other Black (P)" in all_text(fig)
    fig, _, _ = _build_gap_chart(
        [(d, stats) for d in periods[:6]], measure_name="PPH", kind="proportion", groups=["L", "P", "S", "G"]
    )
    assert_no_word_cut(fig)


# --- completeness axis -------------------------------------------------------------------------------------


def test_completeness_axis_shows_where_the_variation_is_and_says_it_is_cut() -> None:
    periods = months(12)
    high = [(d, 0.86 + 0.01 * (i % 10), 0.04, 0.02) for i, d in enumerate(periods)]
    fig, alt, _ = _build_completeness_chart(high, measure_name="PPH", period="month")
    ax = fig.axes[0]
    assert ax.get_ylim() == (80.0, 100.0)
    assert any(line.get_gid() == "axis-break" for line in ax.get_lines())
    assert "The axis starts at 80%, not 0%" in alt
    assert any("The axis starts at 80%" in t for t in all_text(fig))
    # Bars are drawn from 0 and cut by the axis, never restacked from the floor.
    assert all(r.get_y() == 0 for r in ax.patches if isinstance(r, Rectangle) and r.get_height() > 80)
    # The top of the bars is labelled: ticks land on 100%, whatever the floor (85 gave 85, 87 ... 99).
    ninety = [(d, 0.91 + 0.005 * (i % 6), 0.04, 0.02) for i, d in enumerate(periods)]
    fig, _, _ = _build_completeness_chart(ninety, measure_name="PPH", period="month")
    assert fig.axes[0].get_ylim() == (85.0, 100.0)
    assert list(fig.axes[0].get_yticks()) == [85.0, 90.0, 95.0, 100.0]
    assert list(ax.get_yticks()) == [80.0, 85.0, 90.0, 95.0, 100.0]

    low = [(d, 0.5 if i == 3 else 0.9, 0.05, 0.05) for i, d in enumerate(periods)]
    fig, alt, _ = _build_completeness_chart(low, measure_name="PPH", period="month")
    assert fig.axes[0].get_ylim() == (0.0, 100.0)
    assert "axis starts" not in alt
    assert not any(line.get_gid() == "axis-break" for line in fig.axes[0].get_lines())


def test_cycle_end_past_the_data_is_clipped_to_the_axis() -> None:
    periods = months(6)
    fig, _, _ = _build_group_timeseries(
        [result("A", periods)],
        measure_name="PPH",
        kind="proportion",
        reference="A",
        labels={},
        cycles=[CycleMark("C4", periods[-1] + timedelta(days=3), date(2030, 1, 1), running=True)],
    )
    ax = fig.axes[0]
    [span] = [p for p in ax.patches if p.get_gid() == "pdsa-C4"]
    assert isinstance(span, Rectangle)
    assert span.get_x() + span.get_width() <= ax.get_xlim()[1] + 1e-9


def test_completeness_chart_marks_pdsa_cycles_above_the_bars() -> None:
    periods = months(12)
    shares = [(d, 0.9, 0.05, 0.05) for d in periods]
    cycles = [
        CycleMark("C2", date(2024, 5, 6), date(2024, 7, 1)),
        CycleMark("C7", date(2019, 1, 1), date(2019, 2, 1)),
    ]
    fig, alt, _ = _build_completeness_chart(shares, measure_name="PPH", period="month", cycles=cycles)
    ax = fig.axes[0]
    assert [line.get_gid() for line in ax.get_lines() if str(line.get_gid()).startswith("pdsa")] == [
        "pdsa-C2"
    ]
    assert "C2" in all_text(fig) and "PDSA cycle" in all_text(fig) and "C7" not in all_text(fig)
    assert "PDSA cycle marked above the bars: C2 (6 May 2024 to 1 Jul 2024)." in alt


def test_too_few_points_for_an_icon() -> None:
    periods = months(5)
    assert icons_for(result("N", periods, last="special_cause_concern"), direction="lower", target=0.05) == []
    assert icons_for(result("N", months(6)), direction="lower", target=0.05) != []
