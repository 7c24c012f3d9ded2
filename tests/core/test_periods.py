"""Periods read from the data: NHS financial-year forms, inference of the period a file has, labels, and the
note that says when finer periods were merged."""

from __future__ import annotations

import io
from datetime import date, timedelta

import openpyxl
import pytest

from bot.core import periods as per
from bot.core.extracts import read_extract

TODAY = date(2026, 3, 10)


def fy_quarter_start(first_year: int, quarter: int) -> date:
    """NHS financial year: April to March, so Q1 starts in April, Q4 in January of the following year."""
    month = 4 + 3 * (quarter - 1)
    return date(first_year + (month - 1) // 12, (month - 1) % 12 + 1, 1)


def csv_bytes(header: list[str], rows: list[list[object]]) -> bytes:
    return ("\n".join([",".join(header), *(",".join(str(c) for c in r) for r in rows)]) + "\n").encode()


def xlsx_bytes(header: list[str], rows: list[list[object]]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# --- NHS forms ---------------------------------------------------------------------------------------------

NHS_FORMS = [
    ("2024/25 Q1", fy_quarter_start(2024, 1), "fy_quarter"),
    ("Q1 2024/25", fy_quarter_start(2024, 1), "fy_quarter"),
    ("2024-25 Q1", fy_quarter_start(2024, 1), "fy_quarter"),
    ("2024/25 Q4", fy_quarter_start(2024, 4), "fy_quarter"),
    ("Q3 2023-24", fy_quarter_start(2023, 3), "fy_quarter"),
    ("FY2024/25 Q2", fy_quarter_start(2024, 2), "fy_quarter"),
    ("2024/2025 Q2", fy_quarter_start(2024, 2), "fy_quarter"),
    ("FY2024/25", date(2024, 4, 1), "fy_year"),
    ("FY 2023-24", date(2023, 4, 1), "fy_year"),
    ("202404", date(2024, 4, 1), "month"),
    ("202412", date(2024, 12, 1), "month"),
]


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
@pytest.mark.parametrize(("raw", "start", "period"), NHS_FORMS)
def test_each_nhs_form_is_read_in_csv_and_xlsx(fmt: str, raw: str, start: date, period: str) -> None:
    build = csv_bytes if fmt == "csv" else xlsx_bytes
    data = build(["period", "ethnicity", "numerator", "denominator"], [[raw, "A", 3, 40], [raw, "N", 2, 30]])
    parsed = read_extract(data, filename=f"x.{fmt}", period="auto", today=TODAY)
    assert parsed.rejected_count == 0, parsed.rejected
    assert parsed.periods == [start]
    assert parsed.period == period and parsed.grouping is None


@pytest.mark.parametrize("raw", ["2024/26 Q1", "2024/25 Q5", "Q0 2024/25", "202413"])
def test_impossible_nhs_periods_are_rejected_not_guessed(raw: str) -> None:
    data = csv_bytes(["period", "ethnicity", "numerator", "denominator"], [[raw, "A", 3, 40]])
    parsed = read_extract(data, filename="x.csv", period="auto", today=TODAY)
    assert (
        parsed.rejected_count == 1
        and parsed.rejected[0].reason == "period in column 'period' could not be read"
    )


def test_financial_year_quarters_are_labelled_as_the_nhs_writes_them() -> None:
    for first_year in (2019, 2024):
        for quarter in (1, 2, 3, 4):
            start = fy_quarter_start(first_year, quarter)
            assert per.label(start, "fy_quarter") == f"{first_year}/{(first_year + 1) % 100:02d} Q{quarter}"
    # The same three months read as the second calendar quarter.
    assert per.label(date(2024, 4, 1), "quarter") == "2024 Q2"
    assert per.label(date(2025, 2, 14), "fy_year") == "2024/25"
    assert per.start(date(2025, 2, 14), "fy_year") == date(2024, 4, 1)
    assert per.start(date(2025, 5, 14), "fy_quarter") == fy_quarter_start(2025, 1)


# --- the period a file has ---------------------------------------------------------------------------------


def _days(n: int, first: date) -> list[date]:
    return [first + timedelta(days=i) for i in range(n)]


def _weeks(n: int, first: date) -> list[date]:
    return [first + timedelta(weeks=i) for i in range(n)]


def _months(n: int, first: date) -> list[date]:
    return [per.step(first, "month", i) for i in range(n)]


SERIES = {
    "day": _days(16, date(2025, 9, 1)),
    "week": _weeks(10, date(2025, 6, 2)),  # Mondays
    "month": _months(14, date(2024, 11, 1)),
    "fy_quarter": _months(6, date(2024, 4, 1))[::3] + _months(12, date(2024, 10, 1))[::3],
    "year": [date(2021 + i, 1, 1) for i in range(4)],
    "fy_year": [date(2021 + i, 4, 1) for i in range(4)],
}


@pytest.mark.parametrize("period", list(SERIES))
def test_the_period_is_inferred_from_the_dates(period: str) -> None:
    assert per.infer(SERIES[period]) == period


@pytest.mark.parametrize(
    ("dates", "period"),
    [
        ([date(2025, 1, 31), date(2025, 2, 28), date(2025, 3, 31), date(2025, 4, 30)], "month"),  # month ends
        (
            [date(2025, 1, 15), date(2025, 2, 15), date(2025, 4, 15)],
            "month",
        ),  # the same day each month, one missing
        (
            [date(2024, 6, 30), date(2024, 9, 30), date(2024, 12, 31), date(2025, 3, 31)],
            "fy_quarter",
        ),  # quarter ends
        ([date(2023, 3, 31), date(2024, 3, 31)], "fy_year"),  # financial year ends
        (
            [date(2025, 1, 6), date(2025, 1, 20), date(2025, 2, 3)],
            "week",
        ),  # fortnightly Mondays are still weeks
        ([date(2025, 1, 6), date(2025, 1, 7), date(2025, 1, 9)], "day"),
    ],
)
def test_month_and_quarter_end_dates_and_gaps_are_read_as_their_period(
    dates: list[date], period: str
) -> None:
    assert per.infer(dates) == period


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
@pytest.mark.parametrize("period", ["day", "week", "month", "fy_quarter"])
def test_auto_import_keeps_the_period_the_data_has(fmt: str, period: str) -> None:
    dates = SERIES[period]
    rows: list[list[object]] = []
    for i, d in enumerate(dates):
        rows += [[d.isoformat(), "A", i % 5, 50 + i], [d.isoformat(), "N", (i + 1) % 3, 20 + i]]
    build = csv_bytes if fmt == "csv" else xlsx_bytes
    parsed = read_extract(
        build(["period", "ethnicity", "numerator", "denominator"], rows),
        filename=f"x.{fmt}",
        period="auto",
        today=TODAY,
    )
    assert parsed.period == period and parsed.data_period == period
    assert parsed.periods == sorted(dates)  # one point per date: nothing merged
    assert parsed.grouping is None
    got = {(r.period, r.group): (r.numerator, r.denominator) for r in parsed.frame.itertuples()}
    assert got[(dates[3], "A")] == (3 % 5, 53)


def test_calendar_quarter_labels_stay_calendar_and_bare_dates_follow_the_setting() -> None:
    header = ["period", "ethnicity", "numerator", "denominator"]
    labelled = read_extract(
        csv_bytes(header, [["2024 Q2", "A", 1, 9], ["2024 Q3", "A", 1, 9]]),
        filename="x.csv",
        period="auto",
        today=TODAY,
    )
    assert labelled.period == "quarter"
    dated = [["2024-04-01", "A", 1, 9], ["2024-07-01", "A", 1, 9]]
    assert (
        read_extract(csv_bytes(header, dated), filename="x.csv", period="auto", today=TODAY).period
        == "fy_quarter"
    )
    assert (
        read_extract(
            csv_bytes(header, dated), filename="x.csv", period="auto", today=TODAY, quarters="calendar"
        ).period
        == "quarter"
    )


# --- merging is always said --------------------------------------------------------------------------------


def test_daily_counts_grouped_into_months_are_summed_and_said() -> None:
    days = _days(45, date(2025, 1, 10))  # 10 Jan to 23 Feb
    rows = [[d.isoformat(), "A", i % 4, 30] for i, d in enumerate(days)]
    parsed = read_extract(
        csv_bytes(["period", "ethnicity", "numerator", "denominator"], rows),
        filename="x.csv",
        period="month",
        today=TODAY,
    )
    expected = {}
    for i, d in enumerate(days):
        key = date(d.year, d.month, 1)
        num, den = expected.get(key, (0, 0))
        expected[key] = (num + i % 4, den + 30)
    got = {r.period: (r.numerator, r.denominator) for r in parsed.frame.itertuples()}
    assert got == expected
    assert parsed.data_period == "day" and parsed.period == "month"
    assert parsed.grouping == "Daily values were grouped into months for the chart"


def test_daily_values_are_averaged_into_months_never_summed_and_said() -> None:
    # The case from the issue: 16 daily values around 0 became one monthly point without a word.
    days = _days(16, date(2025, 9, 1))
    values = [round((-1) ** i * (1 + i / 10), 2) for i in range(16)]
    rows = [[d.isoformat(), "A", v] for d, v in zip(days, values, strict=True)]
    rows += [[d.isoformat(), "N", 2.0 * v] for d, v in zip(days, values, strict=True)]
    parsed = read_extract(
        csv_bytes(["period", "ethnicity", "value"], rows), filename="x.csv", period="month", today=TODAY
    )
    got = {r.group: r.value for r in parsed.frame.itertuples()}
    assert got["A"] == pytest.approx(sum(values) / 16)
    assert got["N"] == pytest.approx(2 * sum(values) / 16)
    assert parsed.grouping is not None and "averaged into one mean per month" in parsed.grouping
    auto = read_extract(
        csv_bytes(["period", "ethnicity", "value"], rows), filename="x.csv", period="auto", today=TODAY
    )
    assert len(auto.frame) == 32 and auto.grouping is None and auto.period == "day"


def test_weekly_rows_into_months_are_said_but_record_level_counting_is_not_a_merge() -> None:
    weeks = _weeks(9, date(2025, 1, 6))
    rows = [[d.isoformat(), "A", 1, 10] for d in weeks]
    parsed = read_extract(
        csv_bytes(["period", "ethnicity", "numerator", "denominator"], rows),
        filename="x.csv",
        period="month",
        today=TODAY,
    )
    assert (
        parsed.grouping
        == "Weekly values were grouped into months for the chart (each week counts in the month it starts in)"
    )
    records = [[d.isoformat(), "A", 1] for d in _days(40, date(2025, 1, 1))]
    counted = read_extract(
        csv_bytes(["date", "ethnicity", "outcome"], records), filename="r.csv", period="auto", today=TODAY
    )
    assert counted.period == "month" and counted.grouping is None
    assert [r.denominator for r in counted.frame.itertuples()] == [31, 9]


# --- windows ---------------------------------------------------------------------------------------------


def test_the_12_month_and_3_month_windows_chart_their_own_data() -> None:
    import pandas as pd

    from bot.core.equity import analysis as an
    from bot.core.equity.disclosure import DisclosurePolicy
    from bot.services.equity import render

    months = _months(24, date(2024, 1, 1))
    rows = []
    for i, m in enumerate(months):
        # Different data every month, so every window holds different numbers.
        rows += [
            (m, "A", 40 + i, 1000),
            (m, "N", 20 + i % 5, 300),
            (m, "M", 15 + i % 3, 250),
            (m, "Z", 10, 90 + i),
            (m, "99", 0, 0),
        ]
    frame = pd.DataFrame(rows, columns=["period", "group", "numerator", "denominator"])
    policy = DisclosurePolicy()
    charts = {}
    for window in (3, 12):
        ca = an.analyse_for_channel(
            frame,
            kind="proportion",
            direction="lower",
            reference="A",
            focus_groups=["N"],
            period="month",
            policy=policy,
            today=date(2026, 1, 15),
            window_months=window,
        )
        assert ca.analysis.period == "month" and not ca.grouped
        charts[window] = render(ca, "groups", policy, window)
        first = months[-window]
        # The over-time chart shows at least 6 periods: the 3-month window is widened to 6 months and says so.
        shown = max(window, 6)
        alt = charts[window].alt_text
        assert f"{shown} months, {months[-shown]:%b %Y} to {months[-1]:%b %Y}" in alt, alt
        assert (f"the chosen window has only {window} months" in alt) == (window < 6), alt
        charts[(window, "gaps")] = render(ca, "gaps", policy, window)
        assert f"{first:%b %Y} to {months[-1]:%b %Y}: rate by ethnic group" in charts[(window, "gaps")].title
        assert f"{window} periods, {first:%b %Y} to" in render(ca, "completeness", policy, window).alt_text
        # /equity missing shows recording over the whole history.
        whole = render(ca, "completeness", policy, window, whole_series=True)
        assert f"{len(months)} periods, {months[0]:%b %Y} to" in whole.alt_text
    assert charts[3].png != charts[12].png
    assert charts[(3, "gaps")].png != charts[(12, "gaps")].png


def test_a_daily_measure_is_stale_after_a_month_without_data_not_two_days() -> None:
    import pandas as pd

    from bot.core.equity.missing import missing_warnings

    last = date(2025, 3, 31)
    frame = pd.DataFrame(
        [(d, g, 5, 50) for d in _days(60, last - timedelta(days=59)) for g in ("A", "N")],
        columns=["period", "group", "numerator", "denominator"],
    )

    def stale(today: date) -> list[str]:
        return [
            w.message
            for w in missing_warnings(frame, today=today, period="day", focus_groups=["N"])
            if w.code == "STALE_MEASURE"
        ]

    assert stale(last + timedelta(days=20)) == []
    # 31 complete days after the last one are still allowed; the 32nd missing day makes it late.
    assert stale(last + timedelta(days=32)) == []
    late = stale(last + timedelta(days=33))
    assert late and "31 Mar 2025" in late[0] and "32 days are missing" in late[0]


def test_pdsa_windows_count_days_for_a_daily_measure() -> None:
    from bot.core import pdsa

    start, end = date(2025, 3, 10), date(2025, 3, 16)  # a seven-day test of change
    touched = pdsa.expected_periods(start, end, "day")
    assert touched == _days(7, start)
    assert pdsa.period_end(start, "day") == start
    # The same number of days immediately before.
    assert pdsa.periods_before(start, end, "day") == (start - timedelta(days=7), start - timedelta(days=1))
    assert pdsa.describe_periods(touched[:2], "day") == "10 Mar 2025, 11 Mar 2025"


def test_a_mixed_column_takes_its_coarsest_period_and_says_the_finer_rows_were_grouped() -> None:
    rows = [
        ["2025-01", "A", 3, 40],
        ["2025-02-03", "A", 1, 10],
        ["2025-02-10", "A", 2, 10],
        ["2025-03", "A", 2, 30],
    ]
    parsed = read_extract(
        csv_bytes(["period", "ethnicity", "numerator", "denominator"], rows),
        filename="x.csv",
        period="auto",
        today=TODAY,
    )
    assert parsed.period == "month" and parsed.data_period == "week"
    assert {r.period: (r.numerator, r.denominator) for r in parsed.frame.itertuples()} == {
        date(2025, 1, 1): (3, 40),
        date(2025, 2, 1): (1 + 2, 10 + 10),
        date(2025, 3, 1): (2, 30),
    }
    assert parsed.grouping is not None and parsed.grouping.startswith(
        "Weekly values were grouped into months"
    )
