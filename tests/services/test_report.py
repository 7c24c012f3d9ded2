"""The `mfi-ar report` CLI on extracts of each shape: JSON keys and values, text output, charts, bad input."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest

from bot import cli

GROUP_KEYS = {
    "code",
    "label",
    "numerator",
    "denominator",
    "rate",
    "ci_low",
    "ci_high",
    "rate_ratio",
    "rate_ratio_ci_low",
    "rate_ratio_ci_high",
    "rate_difference",
    "rate_difference_ci_low",
    "rate_difference_ci_high",
}
SPC_POINT_KEYS = {"period", "value", "centre", "lower", "upper", "signals", "variation"}
SPC_SUMMARY_KEYS = {"longest_run", "longest_run_max", "crossings", "crossings_min", "runs_signal"}


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def months(n: int, start: date = date(2023, 1, 1)) -> list[date]:
    out, year, month = [], start.year, start.month
    for _ in range(n):
        out.append(date(year, month, 1))
        month += 1
        if month > 12:
            year, month = year + 1, 1
    return out


@pytest.fixture
def aggregated(tmp_path: Path) -> Path:
    rng = np.random.default_rng(1)
    rows: list[list[object]] = []
    for p in months(18):
        for code, den, rate in (
            ("A", 400, 0.05),
            ("N", 90, 0.12),
            ("M", 60, 0.10),
            ("Z", 20, 0.08),
            ("99", 30, 0.1),
        ):
            d = int(rng.poisson(den))
            rows.append([p.isoformat(), code, int(rng.binomial(d, rate)), d])
    return write_csv(tmp_path / "pph.csv", ["period", "ethnicity", "numerator", "denominator"], rows)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(["report", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_json_has_the_documented_keys_and_unrounded_values(
    aggregated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, str(aggregated), "--json", "--period", "month")
    assert code == 0, err
    data = json.loads(out)
    assert data["reference_group"] == "A"
    by_code = {g["code"]: g for g in data["groups"]}
    assert {"A", "N", "M", "Z", "99"} <= set(by_code)
    assert all(GROUP_KEYS <= set(g) for g in data["groups"])
    assert set(data["heterogeneity"]) >= {"chi2", "df", "p_value"}
    assert {s["group"] for s in data["spc"]} >= {"A", "N", "M", "ALL"}
    for s in data["spc"]:
        assert s["method"] == "p"
        assert all(SPC_POINT_KEYS <= set(p) for p in s["points"])
        assert SPC_SUMMARY_KEYS <= set(s["summary"])
    assert set(data["missing"]) >= {"not_stated_share", "not_known_share"}
    assert all(set(w) >= {"code", "severity", "message"} for w in data["warnings"])
    n = by_code["N"]
    # Local output is not rounded: exact counts (not multiples of 5) and rates as fractions.
    assert n["rate"] == pytest.approx(n["numerator"] / n["denominator"])
    assert 0 < n["rate"] < 1 and n["ci_low"] < n["rate"] < n["ci_high"]
    counts = [g["numerator"] for g in data["groups"]] + [g["denominator"] for g in data["groups"]]
    assert any(c % 5 for c in counts)
    gap = next(g for g in data["gaps"] if g["group"] == "N")
    assert gap["reference"] == "A" and ("not established" in gap["verdict"]) != gap["established"]


def test_text_report_and_chart(aggregated: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    chart = tmp_path / "out.png"
    code, out, err = run(
        capsys,
        str(aggregated),
        "--chart",
        str(chart),
        "--spc",
        "mdc",
        "--rebase",
        "2024-01-01",
        "--reference",
        "HL:White",
        "--from",
        "2023-03-01",
    )
    assert code == 0, err
    assert chart.read_bytes().startswith(b"\x89PNG")
    assert f"Chart written to {chart.resolve()}" in out
    for heading in ("Groups (latest window)", "Gap changes", "SPC (XmR chart", "Warnings", "UNROUNDED"):
        assert heading in out
    assert "White (A, B, C) [reference]" in out


def test_record_level_and_values_shapes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(3)
    start = date(2024, 1, 1)
    records = [
        [(start + timedelta(days=int(d))).isoformat(), code, int(rng.random() < rate)]
        for code, rate, n in (("A", 0.05, 3000), ("N", 0.12, 800))
        for d in rng.integers(0, 360, n)
    ]
    path = write_csv(tmp_path / "records.csv", ["date", "ethnicity", "outcome"], records)
    code, out, err = run(capsys, str(path), "--json", "--period", "quarter", "--direction", "lower")
    assert code == 0, err
    data = json.loads(out)
    assert data["period"] == "fy_quarter" and len(data["spc"][0]["points"]) == 4
    assert sum(g["denominator"] for g in data["groups"]) > 0

    values = write_csv(
        tmp_path / "los.csv",
        ["period", "ethnicity", "value"],
        [
            [p.isoformat(), code, round(float(rng.normal(3 + (code == "N"), 0.3)), 2)]
            for p in months(15)
            for code in ("A", "N")
        ],
    )
    code, out, err = run(capsys, str(values), "--json", "--direction", "neither")
    assert code == 0, err
    data = json.loads(out)
    assert data["kind"] == "value" and data["spc"][0]["method"] == "mdc"
    assert {g["code"] for g in data["groups"]} == {"A", "N"}
    assert all(g["rate"] is None and g["mean"] is not None for g in data["groups"])
    assert any(w["code"] == "VALUE_MEASURE" for w in data["warnings"])


@pytest.mark.parametrize(
    ("content", "extra", "message"),
    [
        (None, [], "not found"),
        ("nhs_number,ethnicity,outcome\n4010232137,A,1\n", [], "NHS"),
        (
            "period,ethnicity,numerator,denominator\n2024-01-01,A,1,10\n",
            ["--from", "01/02/2024"],
            "YYYY-MM-DD",
        ),
        (
            "period,ethnicity,numerator,denominator\n2024-01-01,A,1,10\n",
            ["--spc", "p", "--from", "2025-01-01"],
            "no usable rows",
        ),
        ("period,ethnicity,value\n2024-01-01,A,3.2\n", ["--spc", "p"], "p-chart"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, extra: list[str], message: str
) -> None:
    path = tmp_path / "bad.csv"
    if content is not None:
        path.write_text(content)
    code, out, err = run(capsys, str(path), *extra)
    assert code == 2 and out == ""
    assert err.startswith("mfi-ar report: ") and err.count("\n") == 1 and message.lower() in err.lower(), err


def test_unknown_chart_folder_is_refused(
    aggregated: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, str(aggregated), "--chart", str(tmp_path / "nowhere" / "x.png"))
    assert code == 2 and "does not exist" in err


# --- periods read from the data --------------------------------------------------------------------------


def _aggregated_rows(dates: list[str], seed: int = 4) -> list[list[object]]:
    rng = np.random.default_rng(seed)
    rows: list[list[object]] = []
    for d in dates:
        for code, den, rate in (("A", 300, 0.05), ("N", 120, 0.12)):
            n = int(rng.poisson(den))
            rows.append([d, code, int(rng.binomial(n, rate)), n])
    return rows


def test_daily_and_weekly_data_are_reported_as_such_by_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    days = [date(2025, 6, 1) + timedelta(days=i) for i in range(60)]
    weeks = [date(2025, 1, 6) + timedelta(weeks=i) for i in range(30)]
    for name, dates, period, noun in (("daily", days, "day", "days"), ("weekly", weeks, "week", "weeks")):
        path = write_csv(
            tmp_path / f"{name}.csv",
            ["period", "ethnicity", "numerator", "denominator"],
            _aggregated_rows([d.isoformat() for d in dates]),
        )
        code, out, err = run(capsys, str(path), "--json")
        assert code == 0, err
        data = json.loads(out)
        assert data["period"] == period
        spc = {s["group"]: s for s in data["spc"]}
        assert [p["period"] for p in spc["A"]["points"]] == [d.isoformat() for d in dates]
        assert not any(w["code"] == "PERIODS_GROUPED" for w in data["warnings"])
        code, out, err = run(capsys, str(path), "--chart", str(tmp_path / f"{name}.png"))
        assert code == 0, err
        assert f"Periods: {len(dates)} {noun}, " in out and "grouped" not in out
        # Asked for months: the report groups them and says so.
        code, out, err = run(capsys, str(path), "--period", "month")
        assert code == 0, err
        n_months = len({(d.year, d.month) for d in dates})
        assert f"Periods: {n_months} months" in out
        assert f"Note: {name.capitalize()} values were grouped into months for the chart" in out


def test_financial_year_quarters_are_read_and_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = [f"{y}/{(y + 1) % 100:02d} Q{q}" for y in (2023, 2024) for q in (1, 2, 3, 4)]
    path = write_csv(
        tmp_path / "fy.csv", ["period", "ethnicity", "numerator", "denominator"], _aggregated_rows(labels)
    )
    code, out, err = run(capsys, str(path))
    assert code == 0, err
    assert "Periods: 8 financial-year quarters, 2023/24 Q1 to 2024/25 Q4" in out
    code, out, err = run(capsys, str(path), "--json")
    data = json.loads(out)
    # 2023/24 Q1 is April to June 2023; 2024/25 Q4 is January to March 2025.
    assert data["period"] == "fy_quarter"
    assert (
        data["spc"][0]["points"][0]["period"] == "2023-04-01"
        and data["spc"][0]["points"][-1]["period"] == "2025-01-01"
    )
    code, out, err = run(capsys, str(path), "--period", "quarter", "--quarters", "calendar")
    assert code == 0, err
    # The same eight quarters named by the calendar: April 2023 to March 2025, nothing merged.
    assert "(proportion, quarterly," in out and "Periods: 8 quarters, Apr 2023–Mar 2025" in out
    assert "grouped" not in out


def test_every_report_argument_has_a_help_line() -> None:
    import argparse

    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    report = sub.choices["report"]
    for action in report._actions:
        assert action.help, action.dest
    period = next(a for a in report._actions if a.dest == "period")
    assert period.default == "auto" and {"auto", "day"} <= set(period.choices or [])


def test_from_and_to_take_nhs_periods(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dates = months(36, date(2023, 1, 1))
    path = write_csv(
        tmp_path / "m.csv",
        ["period", "ethnicity", "numerator", "denominator"],
        _aggregated_rows([d.strftime("%Y%m") for d in dates]),
    )
    code, out, err = run(capsys, str(path), "--json", "--from", "2023/24 Q2", "--to", "FY2024/25")
    assert code == 0, err
    shown = [p["period"] for p in json.loads(out)["spc"][0]["points"]]
    # 2023/24 Q2 starts in July 2023; the financial year 2024/25 ends in March 2025.
    expected = [d.isoformat() for d in dates if date(2023, 7, 1) <= d <= date(2025, 3, 31)]
    assert shown == expected and len(expected) == 21


def test_a_grouped_period_the_data_cover_only_in_part_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    days = [date(2025, 6, 1) + timedelta(days=i) for i in range(120)]  # 1 June to 28 September
    path = write_csv(
        tmp_path / "d.csv",
        ["period", "ethnicity", "numerator", "denominator"],
        _aggregated_rows([d.isoformat() for d in days]),
    )
    code, out, err = run(capsys, str(path), "--period", "month")
    assert code == 0, err
    in_september = sum(1 for d in days if d.month == 9)
    assert (
        f"Note: Sep 2025 has only {in_september} of its 30 days in the data, so its counts are lower" in out
    )
    assert "Jun 2025 has only" not in out  # June is complete
    code, out, err = run(capsys, str(path), "--period", "month", "--to", "2025-08-31")
    assert code == 0, err
    assert "Periods: 3 months" in out and "Sep 2025 has only" not in out  # September is left out


def test_rebase_takes_a_period(tmp_path: Path) -> None:
    from bot.services import report

    dates = months(24, date(2023, 4, 1))
    path = write_csv(
        tmp_path / "m.csv",
        ["period", "ethnicity", "numerator", "denominator"],
        _aggregated_rows([d.isoformat() for d in dates]),
    )
    parser = cli.build_parser()
    by_period = report.build_analysis(
        parser.parse_args(["report", str(path), "--rebase", "N=2024/25 Q1"]), today=date(2026, 1, 1)
    )
    # 2024/25 Q1 starts on 1 April 2024: the same as N=2024-04-01.
    assert by_period.rebase == {"N": [date(2024, 4, 1)]}
    with pytest.raises(report.ReportError, match="not a date or a period"):
        report.build_analysis(
            parser.parse_args(["report", str(path), "--rebase", "2024/26 Q1"]), today=date(2026, 1, 1)
        )
