"""Tests for missing-ethnicity summaries and data-quality warnings."""

from __future__ import annotations

import re
from datetime import date

import pandas as pd
import pytest
from scipy.stats import chi2_contingency

from bot.core.equity.disclosure import check_text_for_disclosure
from bot.core.equity.missing import Tiers, missing_warnings, summarise_missing
from bot.core.equity.types import Warning

Row = tuple[date, str, int, int]
MONTHS = [date(2024, m, 1) for m in range(1, 13)]
TODAY = date(2025, 1, 15)  # December 2024 is the latest complete month


def frame(rows: list[Row]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["period", "group", "numerator", "denominator"])


def clean_rows() -> list[Row]:
    """Twelve current months, 98% valid, missing records like the rest, large groups."""
    rows: list[Row] = []
    for m in MONTHS:
        rows += [(m, "A", 100, 2000), (m, "N", 160, 2000), (m, "Z", 1, 20), (m, "99", 2, 20)]
    return rows


def codes(warnings: list[Warning]) -> list[str]:
    return [w.code for w in warnings]


def warn(rows: list[Row], **kwargs: object) -> list[Warning]:
    params: dict[str, object] = {"today": TODAY, "period": "month", "focus_groups": ["N"]}
    params.update(kwargs)
    return missing_warnings(frame(rows), **params)  # type: ignore[arg-type]


def assert_disclosure_safe(warnings: list[Warning], rows: list[Row]) -> None:
    raw = [n for r in rows for n in (r[2], r[3])]
    for w in warnings:
        assert check_text_for_disclosure(w.message, raw) == [], w.message


def synthetic_rows() -> list[Row]:
    """equity-stats.md 1.3: 2,200 records, 90.9% valid, 92.3% asked, PPH 14.5% missing vs 7.0% known."""
    jan, feb = date(2025, 1, 1), date(2025, 2, 1)
    return [
        (jan, "A", 48, 750), (feb, "A", 47, 750),
        (jan, "N", 22, 250), (feb, "N", 23, 250),
        (jan, "Z", 2, 15), (feb, "Z", 2, 16),
        (jan, "99", 12, 85), (feb, "99", 13, 84),
    ]  # fmt: skip


def test_clean_frame_has_only_the_ok_footnote() -> None:
    rows = clean_rows()
    warnings = warn(rows, target_gap=0.03)
    assert codes(warnings) == ["COMPLETENESS_OK"]
    assert warnings[0].severity == "info"
    assert_disclosure_safe(warnings, rows)


def test_summary_of_the_synthetic_example() -> None:
    summary = summarise_missing(frame(synthetic_rows()))
    assert summary.valid_share == pytest.approx(0.909, abs=5e-4)
    assert summary.asked_share == pytest.approx(0.923, abs=5e-4)
    assert summary.not_stated_share == pytest.approx(31 / 2200)
    assert summary.not_known_share == pytest.approx(169 / 2200)
    assert [p.period for p in summary.by_period] == [date(2025, 1, 1), date(2025, 2, 1)]
    assert [p.denominator for p in summary.by_period] == [1100, 1100]
    assert summary.by_period[0].not_stated_share == pytest.approx(15 / 1100)


def test_summary_ignores_all_rows_and_handles_empty_frames() -> None:
    rows = [*synthetic_rows(), (date(2025, 1, 1), "ALL", 85, 1100)]
    assert summarise_missing(frame(rows)).valid_share == pytest.approx(2000 / 2200)
    empty = summarise_missing(frame([]))
    assert empty.valid_share is None and empty.asked_share is None and empty.by_period == []


def test_missing_outcome_differs_on_the_synthetic_example() -> None:
    rows = synthetic_rows()
    p_value = chi2_contingency([[29, 171], [140, 1860]], correction=False)[1]
    assert 1e-4 < p_value < 2e-4
    warnings = warn(rows, today=date(2025, 3, 10))
    differs = next(w for w in warnings if w.code == "MISSING_OUTCOME_DIFFERS")
    assert "14.5%" in differs.message and "7.0%" in differs.message
    assert "Not stated (Z) or Not known (99)" in differs.message
    shown = float(re.search(r"p = ([0-9.e-]+)", differs.message).group(1))  # type: ignore[union-attr]
    assert 1e-4 < shown < 2e-4
    assert "COMPLETENESS_CAUTION" in codes(warnings)
    assert_disclosure_safe(warnings, rows)


def test_missing_outcome_does_not_differ_when_rates_match() -> None:
    assert "MISSING_OUTCOME_DIFFERS" not in codes(warn(clean_rows()))


def completeness_rows(z: int, not_known: int) -> list[Row]:
    """Per month: 1,000 records of which z Not stated and not_known Not known."""
    valid = 1000 - z - not_known
    return [
        row
        for m in MONTHS
        for row in [(m, "A", valid // 20, valid // 2), (m, "N", valid // 20, valid - valid // 2),
                    (m, "Z", z // 20, z), (m, "99", not_known // 20, not_known)]
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("z", "not_known", "code", "severity"),
    [
        (10, 20, "COMPLETENESS_OK", "info"),
        (20, 50, "COMPLETENESS_CAUTION", "caution"),
        (40, 110, "COMPLETENESS_LOW", "warning"),
        (60, 240, "COMPLETENESS_CRITICAL", "critical"),
    ],
)
def test_completeness_tiers(z: int, not_known: int, code: str, severity: str) -> None:
    rows = completeness_rows(z, not_known)
    warnings = warn(rows)
    found = [w for w in warnings if w.code.startswith("COMPLETENESS_")]
    assert [(w.code, w.severity) for w in found] == [(code, severity)]
    if code != "COMPLETENESS_OK":
        assert "NHS RHO/Nuffield Trust 2021 found 13–17% of hospital records" in found[0].message
        assert "our threshold" in found[0].message.lower()
    assert_disclosure_safe(warnings, rows)


def test_not_stated_and_not_known_are_reported_separately() -> None:
    mostly_declined = warn(completeness_rows(z=100, not_known=20))
    mostly_unrecorded = warn(completeness_rows(z=20, not_known=100))
    first = next(w for w in mostly_declined if w.code == "COMPLETENESS_LOW").message
    second = next(w for w in mostly_unrecorded if w.code == "COMPLETENESS_LOW").message
    assert "Not stated (Z): 10.0%" in first and "Not known (99): 2.0%" in first
    assert "Not stated (Z): 2.0%" in second and "Not known (99): 10.0%" in second
    assert "asked and chose not to say" in first and "recording-process gap" in first


def test_completeness_custom_tiers() -> None:
    rows = completeness_rows(10, 20)  # 97% valid
    warnings = warn(rows, tiers=Tiers(ok=0.99, caution=0.98, warning=0.96))
    assert "COMPLETENESS_LOW" in codes(warnings)


def shifting_rows() -> list[Row]:
    rows: list[Row] = []
    for i, m in enumerate(MONTHS):
        not_known = 20 if i < 6 else 100
        rows += [
            (m, "A", 50, 1000),
            (m, "N", 80, 1000),
            (m, "Z", 1, 10),
            (m, "99", not_known // 15, not_known),
        ]
    return rows


def test_missingness_shift_fires_between_thirds_and_windows() -> None:
    rows = shifting_rows()
    warnings = warn(rows)
    shift = next(w for w in warnings if w.code == "MISSINGNESS_SHIFT")
    assert shift.severity == "warning" and "rose" in shift.message
    assert "Not known (99) from" in shift.message and "Not stated (Z) went from" in shift.message
    windows = warn(rows, baseline=(MONTHS[0], MONTHS[2]), recent=(MONTHS[9], MONTHS[11]))
    assert "MISSINGNESS_SHIFT" in codes(windows)
    same = warn(rows, baseline=(MONTHS[0], MONTHS[2]), recent=(MONTHS[3], MONTHS[5]))
    assert "MISSINGNESS_SHIFT" not in codes(same)
    assert_disclosure_safe(warnings, rows)


def test_no_shift_on_clean_frame() -> None:
    assert "MISSINGNESS_SHIFT" not in codes(warn(clean_rows()))


def bounds_rows() -> list[Row]:
    """A 6%, N 7%, and a quarter of records missing ethnicity with a 10% outcome rate."""
    return [
        row
        for m in MONTHS
        for row in [(m, "A", 30, 500), (m, "N", 14, 200), (m, "Z", 5, 50), (m, "99", 20, 200)]
    ]


def test_missing_could_change_conclusion_gives_bounds() -> None:
    rows = bounds_rows()
    warnings = warn(rows)
    bound = next(w for w in warnings if w.code == "MISSING_COULD_CHANGE_CONCLUSION")
    assert "Black or Black British - African (N)" in bound.message
    assert "(best case)" in bound.message and "(worst case)" in bound.message
    # Manski bounds: 168/(2400+3000-300) and (168+300)/(2400+300).
    assert f"{168 / 5100:.1%}" in bound.message and f"{468 / 2700:.1%}" in bound.message
    assert "6.0%" in bound.message
    assert_disclosure_safe(warnings, rows)
    neutral = next(w for w in warn(rows, direction="neither") if w.code == "MISSING_COULD_CHANGE_CONCLUSION")
    assert "best case" not in neutral.message


def test_bounds_hide_rates_built_on_small_counts() -> None:
    rows = [
        (date(2024, 12, 1), "A", 60, 1000),
        (date(2024, 12, 1), "N", 3, 40),
        (date(2024, 12, 1), "99", 30, 300),
    ]
    warnings = warn(rows)
    bound = next(w for w in warnings if w.code == "MISSING_COULD_CHANGE_CONCLUSION")
    assert "too small to show rates safely" in bound.message
    assert_disclosure_safe(warnings, rows)


def test_bounds_do_not_fire_on_clean_frame() -> None:
    assert "MISSING_COULD_CHANGE_CONCLUSION" not in codes(warn(clean_rows()))


def test_group_absent_recently() -> None:
    rows = [r for r in clean_rows() if not (r[1] == "N" and r[0] >= MONTHS[9])]
    rows += [(m, "H", 5, 40) for m in MONTHS[:6]]
    warnings = warn(rows)
    absent = next(w for w in warnings if w.code == "GROUP_ABSENT_RECENTLY")
    assert absent.severity == "warning"
    assert "Black or Black British - African (N)" in absent.message and "Indian (H)" in absent.message
    assert "last 3 months" in absent.message
    only_other = clean_rows() + [(m, "H", 5, 40) for m in MONTHS[:6]]
    other = next(w for w in warn(only_other) if w.code == "GROUP_ABSENT_RECENTLY")
    assert other.severity == "caution"
    assert_disclosure_safe(warnings, rows)


def test_group_absent_not_on_clean_frame() -> None:
    assert "GROUP_ABSENT_RECENTLY" not in codes(warn(clean_rows()))


def small_rows() -> list[Row]:
    return [
        row for m in MONTHS for row in [(m, "A", 12, 200), (m, "N", 5, 50), (m, "Z", 0, 2), (m, "99", 0, 3)]
    ]


def test_underpowered_with_target_gap() -> None:
    rows = small_rows()
    warnings = warn(rows, target_gap=0.03)
    under = next(w for w in warnings if w.code == "UNDERPOWERED")
    assert "target gap of 3.0 percentage points" in under.message
    assert re.search(r"gives a power of \d+%", under.message)
    assert re.search(r"needs about [\d,]+ per month", under.message)
    assert "pooling about" in under.message
    assert_disclosure_safe(warnings, rows)


def test_underpowered_with_observed_gap_and_not_when_powered() -> None:
    warnings = warn(small_rows())
    assert "UNDERPOWERED" in codes(warnings)
    assert "UNDERPOWERED" not in codes(warn(clean_rows(), target_gap=0.03))
    assert "UNDERPOWERED" not in codes(warn(clean_rows()))


def test_stale_measure() -> None:
    rows = clean_rows()
    stale = warn(rows, today=date(2025, 5, 2))  # Jan-Apr 2025 complete and missing
    message = next(w for w in stale if w.code == "STALE_MEASURE").message
    assert "December 2024" in message and "4 months are missing" in message
    assert "import" in message
    assert "STALE_MEASURE" not in codes(warn(rows, today=date(2025, 3, 31)))  # two months late is allowed
    weekly = [(date(2025, 1, 6), "A", 10, 100)]
    assert "STALE_MEASURE" in codes(warn(weekly, period="week", today=date(2025, 2, 10)))
    assert "STALE_MEASURE" not in codes(warn(weekly, period="week", today=date(2025, 1, 20)))
    quarterly = [(date(2024, 1, 1), "A", 10, 100)]
    assert "STALE_MEASURE" in codes(warn(quarterly, period="quarter", today=date(2025, 2, 1)))
    assert codes(warn([])) == ["STALE_MEASURE"]


def test_other_categories_inflated() -> None:
    rows = clean_rows() + [(m, "S", 20, 600) for m in MONTHS]
    warnings = warn(rows)
    other = next(w for w in warnings if w.code == "OTHER_CATEGORIES_INFLATED")
    assert other.severity == "caution" and "G, L, P and S" in other.message
    assert "OTHER_CATEGORIES_INFLATED" not in codes(warn(clean_rows()))


def test_warnings_are_ordered_by_severity_and_disclosure_safe() -> None:
    rows = completeness_rows(60, 240) + [(m, "S", 3, 600) for m in MONTHS[:6]]
    warnings = warn(rows, today=date(2025, 9, 1), target_gap=0.01)
    rank = {"critical": 0, "warning": 1, "caution": 2, "info": 3}
    assert [rank[w.severity] for w in warnings] == sorted(rank[w.severity] for w in warnings)
    assert warnings[0].code == "COMPLETENESS_CRITICAL"
    assert len(set(codes(warnings))) >= 4
    assert_disclosure_safe(warnings, rows)


def test_frame_must_have_the_tidy_columns() -> None:
    with pytest.raises(ValueError, match="missing columns"):
        summarise_missing(pd.DataFrame({"period": [], "group": []}))
