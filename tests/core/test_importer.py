"""Tests for bot.core.extracts: shapes, period handling, validation with row numbers and the identifier guard."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pytest

from bot.core.extracts import (
    MAX_COLUMNS,
    MAX_LINE_BYTES,
    XLSX_MAX_ENTRIES,
    XLSX_MAX_UNCOMPRESSED,
    ImportRefused,
    ParsedImport,
    period_start,
    read_extract,
)

TODAY = date(2025, 6, 30)
Rows = list[list[object]]


def csv_bytes(header: list[str], rows: Rows) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def xlsx_bytes(header: list[str], rows: Rows) -> bytes:
    buffer = io.BytesIO()
    pd.DataFrame(rows, columns=header).to_excel(buffer, index=False)
    return buffer.getvalue()


FORMATS: dict[str, tuple[Callable[[list[str], Rows], bytes], str]] = {
    "csv": (csv_bytes, "extract.csv"),
    "xlsx": (xlsx_bytes, "extract.xlsx"),
}


def read(fmt: str, header: list[str], rows: Rows, **kwargs: object) -> ParsedImport:
    build, name = FORMATS[fmt]
    return read_extract(build(header, rows), filename=name, today=TODAY, **kwargs)  # type: ignore[arg-type]


def as_dict(parsed: ParsedImport, column: str = "numerator") -> dict[tuple[object, object], object]:
    return {(r.period, r.group): getattr(r, column) for r in parsed.frame.itertuples()}


def nhs_number(stem: int) -> str:
    """A 10-digit number with a valid modulus-11 check digit, built from a 9-digit stem."""
    while True:
        digits = f"{stem:09d}"
        check = 11 - sum(int(d) * w for d, w in zip(digits, range(10, 1, -1), strict=True)) % 11
        if check == 11:
            check = 0
        if check != 10:
            return digits + str(check)
        stem += 1


# --- shapes ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_aggregated_shape_sums_repeated_period_and_group(fmt: str) -> None:
    parsed = read(
        fmt,
        ["Period", "Ethnic Category", "Numerator", "Denominator"],
        [
            ["2025-01", "A", 3, 10],
            ["2025-01", "White British", 2, 5],
            ["2025-01", "N", 1, 4],
            ["2025-02", "Black African", 0, 6],
        ],
    )
    assert parsed.shape == "aggregated"
    assert as_dict(parsed) == {
        (date(2025, 1, 1), "A"): 5,
        (date(2025, 1, 1), "N"): 1,
        (date(2025, 2, 1), "N"): 0,
    }
    assert as_dict(parsed, "denominator")[(date(2025, 1, 1), "A")] == 15
    assert parsed.periods == [date(2025, 1, 1), date(2025, 2, 1)]
    assert parsed.groups == ["A", "N"]
    assert (parsed.rows_read, parsed.rows_used, parsed.rejected_count) == (4, 4, 0)
    assert list(parsed.frame.columns) == ["period", "group", "numerator", "denominator", "value"]
    assert parsed.frame["value"].isna().all()


@pytest.mark.parametrize("fmt", FORMATS)
def test_values_shape(fmt: str) -> None:
    parsed = read(fmt, ["month", "ethnic_group", "value"], [["2025-03", "A", 12.5], ["2025-03", "M", "7"]])
    assert parsed.shape == "values"
    assert as_dict(parsed, "value") == {(date(2025, 3, 1), "A"): 12.5, (date(2025, 3, 1), "M"): 7.0}
    assert parsed.frame["numerator"].isna().all()


def test_values_shape_notes_repeated_pairs() -> None:
    parsed = read("csv", ["period", "ethnicity", "value"], [["2025-03", "A", 1], ["2025-03", "a", 2]])
    assert as_dict(parsed, "value") == {(date(2025, 3, 1), "A"): 3.0}
    assert any("more than once" in note for note in parsed.notes)


RECORDS: Rows = [
    ["2025-03-03", "A", 1],  # Monday, week 10
    ["2025-03-09", "A", 0],  # Sunday, still week 10
    ["2025-03-10", "A", 1],  # Monday, week 11
    ["2025-03-31", "N", 1],
    ["2025-04-01", "N", 0],  # next month and next quarter
    ["2025-01-15", "N", 1],
]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    ("period", "expected"),
    [
        (
            "week",
            {
                (date(2025, 3, 3), "A"): (1, 2),
                (date(2025, 3, 10), "A"): (1, 1),
                (date(2025, 3, 31), "N"): (1, 2),
                (date(2025, 1, 13), "N"): (1, 1),
            },
        ),
        (
            "month",
            {
                (date(2025, 3, 1), "A"): (2, 3),
                (date(2025, 3, 1), "N"): (1, 1),
                (date(2025, 4, 1), "N"): (0, 1),
                (date(2025, 1, 1), "N"): (1, 1),
            },
        ),
        (
            "quarter",
            {
                (date(2025, 1, 1), "A"): (2, 3),
                (date(2025, 1, 1), "N"): (2, 2),
                (date(2025, 4, 1), "N"): (0, 1),
            },
        ),
    ],
)
def test_record_level_aggregates_to_the_measure_period(
    fmt: str, period: str, expected: dict[tuple[date, str], tuple[int, int]]
) -> None:
    parsed = read(fmt, ["event_date", "ethnicity", "outcome"], RECORDS, period=period)
    assert parsed.shape == "record"
    got = {(r.period, r.group): (r.numerator, r.denominator) for r in parsed.frame.itertuples()}
    assert got == expected
    assert parsed.rows_used == len(RECORDS)


def test_record_level_reads_uk_dates_and_says_so() -> None:
    parsed = read(
        "csv",
        ["admission_date", "Ethnic Origin", "flag"],
        [["13/03/2025", "A", 1], ["01/04/2025", "A", 0]],
        period="month",
    )
    assert as_dict(parsed, "denominator") == {(date(2025, 3, 1), "A"): 1, (date(2025, 4, 1), "A"): 1}
    assert any("day/month/year" in note for note in parsed.notes)


def test_xlsx_date_cells_are_read() -> None:
    parsed = read(
        "xlsx",
        ["delivery_date", "ethnicity", "outcome"],
        [[datetime(2025, 2, 3, 14, 5), "Z", 1], [datetime(2025, 2, 28), "99", 0]],
        period="month",
    )
    assert as_dict(parsed) == {(date(2025, 2, 1), "Z"): 1, (date(2025, 2, 1), "99"): 0}


def test_path_input_and_synonyms(tmp_path: Path) -> None:
    path = tmp_path / "pph.csv"
    path.write_bytes(
        csv_bytes(["Period Start", "ETHNIC_CATEGORY", "events", "births"], [["2025-01-01", "M", 2, 40]])
    )
    parsed = read_extract(path, today=TODAY)
    assert as_dict(parsed) == {(date(2025, 1, 1), "M"): 2}


def test_semicolon_and_cp1252_csv() -> None:
    data = "period;ethnicity;numerator;denominator\n2025-01;Any other White background;1;2\n2025-01;Caf\xe9;1;2\n"
    parsed = read_extract(data.encode("cp1252"), filename="x.csv", today=TODAY)
    assert as_dict(parsed) == {(date(2025, 1, 1), "C"): 1}
    assert parsed.unrecognised == {"Caf\xe9": [3]}


# --- periods -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "period", "start"),
    [
        ("2025-03-17", "month", date(2025, 3, 1)),
        ("17/03/2025", "month", date(2025, 3, 1)),
        ("2025-03", "month", date(2025, 3, 1)),
        ("Mar 2025", "month", date(2025, 3, 1)),
        ("March 2025", "month", date(2025, 3, 1)),
        ("Mar-25", "month", date(2025, 3, 1)),
        ("03/2025", "month", date(2025, 3, 1)),
        ("2025-03", "quarter", date(2025, 1, 1)),
        ("2025-Q1", "quarter", date(2025, 1, 1)),
        ("Q2 2025", "quarter", date(2025, 4, 1)),
        ("2025-W10", "week", date(2025, 3, 3)),
        ("2025-03-05", "week", date(2025, 3, 3)),
    ],
)
def test_period_values_convert_to_the_period_start(raw: str, period: str, start: date) -> None:
    parsed = read(
        "csv", ["period", "ethnicity", "numerator", "denominator"], [[raw, "A", 1, 2]], period=period
    )
    assert parsed.periods == [start], parsed.rejected


@pytest.mark.parametrize(
    ("raw", "period"), [("2025-Q1", "month"), ("2025-03", "week"), ("2025-W10", "month")]
)
def test_period_coarser_than_the_measure_is_rejected(raw: str, period: str) -> None:
    parsed = read(
        "csv", ["period", "ethnicity", "numerator", "denominator"], [[raw, "A", 1, 2]], period=period
    )
    assert parsed.rows_used == 0
    assert parsed.rejected[0].row == 2 and "coarser" in parsed.rejected[0].reason


def test_period_start() -> None:
    assert period_start(date(2025, 3, 9), "week") == date(2025, 3, 3)
    assert period_start(date(2025, 3, 9), "month") == date(2025, 3, 1)
    assert period_start(date(2025, 12, 31), "quarter") == date(2025, 10, 1)
    assert period_start(datetime(2025, 3, 9, 23, 0), "week") == date(2025, 3, 3)


# --- coding variants ---------------------------------------------------------------------------------


def test_every_spelling_lands_in_one_code_with_notes_counted() -> None:
    rows = [
        ["2025-01", raw, 1, 2]
        for raw in [
            "A",
            "a",
            "A1",
            "White British",
            "White - British",
            "White: English, Welsh, Scottish, Northern Irish or British",
            "T",
            "T",
            "Roma",
            "W",
            "Arab",
            "9",
            "",
            "NULL",
            "X",
            "Z",
            "Declined",
            "99",
            "not known",
        ]
    ]
    parsed = read("csv", ["period", "ethnicity", "numerator", "denominator"], rows)
    got = as_dict(parsed, "denominator")
    assert got[(date(2025, 1, 1), "A")] == 12
    assert got[(date(2025, 1, 1), "C")] == 6
    assert got[(date(2025, 1, 1), "S")] == 4
    assert got[(date(2025, 1, 1), "Z")] == 4, "Not stated must stay apart from Not known"
    assert got[(date(2025, 1, 1), "99")] == 12
    assert any(
        note.startswith("T (Gypsy or Irish Traveller) counted under C") and "(2 rows)" in note
        for note in parsed.notes
    )
    assert any("legacy code 9" in note and "(1 row)" in note for note in parsed.notes)


def test_unrecognised_values_are_counted_and_listed_with_row_numbers() -> None:
    rows = [["2025-01", v, 1, 2] for v in ["A", "BAME", "Other", "BAME", "N"]]
    parsed = read("csv", ["period", "ethnicity", "numerator", "denominator"], rows)
    assert parsed.unrecognised == {"BAME": [3, 5], "Other": [4]}
    assert parsed.rejected_count == 3 and parsed.rows_used == 2
    assert [(r.row, r.value) for r in parsed.rejected] == [(3, "BAME"), (4, "Other"), (5, "BAME")]
    assert parsed.problems() == [
        "Ethnicity 'BAME' not recognised (column 'ethnicity'): 2 rows (rows 3, 5).",
        "Ethnicity 'Other' not recognised (column 'ethnicity'): 1 row (row 4).",
    ]


def test_message_caps_row_lists_per_reason_but_counts_everything() -> None:
    rows = [["2025-01", "BME", 1, 2]] * 2500 + [["2025-01", "A", 3, 2]] * 3
    parsed = read("csv", ["period", "ethnicity", "numerator", "denominator"], rows)
    assert len(parsed.unrecognised["BME"]) == 2500
    assert parsed.rejected_count == 2503
    # The cap is per reason: the reason met last still keeps its rows (a global cap used to drop them).
    assert [r.row for r in parsed.rejected if "greater" in r.reason] == [2502, 2503, 2504]
    assert parsed.problems()[0].endswith("(rows 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 and 2,490 more).")
    assert parsed.problems()[1] == (
        "Numerator (column 'numerator') is greater than the denominator (column "
        "'denominator'): 3 rows (rows 2502, 2503, 2504); values found: '3 > 2'."
    )


def test_the_reason_affecting_most_rows_comes_first_complete_and_named_by_column() -> None:
    """The issue's file: a few bad ethnicity and date rows and about 20,000 outcomes the reader did not know."""
    rows: Rows = [["2025-03-03", "A", "maybe"] for _ in range(20000)]
    rows[810] = ["2025-03-03", "BAME", "maybe"]
    rows[5432] = ["2025-03-03", "Other", "maybe"]
    rows[7000] = ["someday", "A", "maybe"]
    parsed = read("csv", ["date", "ethnicity", "pph"], rows)
    assert parsed.rows_read == 20000 and parsed.rows_used == 0 and parsed.rejected_count == 20000
    problems = parsed.problems()
    assert len(problems) == 4
    assert problems[0].startswith(
        "Outcome in column 'pph' is not 1/0, Yes/No, Y/N or True/False: 19,997 rows"
    )
    assert problems[0].endswith("; values found: 'maybe'.")
    assert {p.split(":")[0] for p in problems[1:]} == {
        "Ethnicity 'BAME' not recognised (column 'ethnicity')",
        "Ethnicity 'Other' not recognised (column 'ethnicity')",
        "Date in column 'date' could not be read",
    }
    assert (
        parsed.advice()
        == "the outcome column 'pph' must hold Yes or No (1 or 0, Y or N, True or False work too)"
    )


@pytest.mark.parametrize("word", ["Yes", "no", "Y", "n", "TRUE", "false", "1", "0", " yes "])
def test_outcomes_accept_yes_no_y_n_true_false_in_any_case(word: str) -> None:
    parsed = read("csv", ["date", "ethnicity", "outcome"], [["2025-03-03", "A", word]])
    expected = 1 if word.strip().lower() in ("yes", "y", "true", "1") else 0
    assert parsed.rejected_count == 0 and as_dict(parsed) == {(date(2025, 3, 1), "A"): expected}


def test_xlsx_boolean_outcomes_are_read() -> None:
    parsed = read(
        "xlsx", ["date", "ethnicity", "outcome"], [["2025-03-03", "A", True], ["2025-03-04", "A", False]]
    )
    assert as_dict(parsed) == {(date(2025, 3, 1), "A"): 1}


def test_a_record_level_outcome_column_may_be_named_after_the_measure() -> None:
    parsed = read("csv", ["Delivery date", "Ethnic category", "PPH 1000ml+"], [["03/03/2025", "N", "Y"]])
    assert parsed.shape == "record" and parsed.columns["outcome"] == "'PPH 1000ml+'"
    assert as_dict(parsed) == {(date(2025, 3, 1), "N"): 1}


def test_exact_rows_read_for_a_20006_row_file() -> None:
    rows: Rows = [["2025-03-03", "A", "No"]] * 20006
    parsed = read("csv", ["date", "ethnicity", "outcome"], rows)
    assert (parsed.rows_read, parsed.rows_used, parsed.rejected_count) == (20006, 20006, 0)


# --- validation --------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_validation_error_is_reported_with_its_row(fmt: str) -> None:
    parsed = read(
        fmt,
        ["period", "ethnicity", "numerator", "denominator"],
        [
            ["2025-01", "A", 1, 2],
            ["2025-01", "B", -1, 2],
            ["2025-01", "C", 1.5, 2],
            ["2025-01", "D", "abc", 2],
            ["2025-01", "E", 1, ""],
            ["2025-01", "F", 5, 2],
            ["not a month", "G", 1, 2],
            ["2025-08", "H", 1, 2],
            ["2025-01", "J", 1, 2],
        ],
    )
    reasons = {r.row: r.reason for r in parsed.rejected}
    numerator = "numerator in column 'numerator' is not a whole number, 0 or more"
    assert reasons == {
        3: numerator,
        4: numerator,
        5: numerator,
        6: "denominator in column 'denominator' is not a whole number, 0 or more",
        7: "numerator (column 'numerator') is greater than the denominator (column 'denominator')",
        8: "period in column 'period' could not be read",
        9: "period in column 'period' is in the future",
    }
    assert parsed.rows_used == 2 and parsed.groups == ["A", "J"]
    assert {r.row: r.value for r in parsed.rejected}[8] == "not a month"


def test_record_level_validation() -> None:
    parsed = read(
        "csv",
        ["date", "ethnicity", "outcome"],
        [
            ["2025-03-03", "A", 1],
            ["2025-03-03", "A", 2],
            ["2025-03-03", "A", "maybe"],
            ["2025-02-30", "A", 1],
            ["2026-01-01", "A", 1],
            ["2025-03-04", "A", ""],
        ],
        period="month",
    )
    outcome = "outcome in column 'outcome' is not 1/0, Yes/No, Y/N or True/False"
    assert {r.row: r.reason for r in parsed.rejected} == {
        3: outcome,
        4: outcome,
        5: "date in column 'date' could not be read",
        6: "date in column 'date' is in the future",
        7: outcome,
    }
    assert as_dict(parsed) == {(date(2025, 3, 1), "A"): 1}


def test_blank_lines_are_skipped_without_shifting_row_numbers() -> None:
    data = b"period,ethnicity,numerator,denominator\n2025-01,A,1,2\n\n2025-01,BAME,1,2\n"
    parsed = read_extract(data, filename="x.csv", today=TODAY)
    assert parsed.rows_read == 2
    assert parsed.unrecognised == {"BAME": [4]}


def test_nothing_valid_gives_an_empty_frame() -> None:
    parsed = read("csv", ["period", "ethnicity", "numerator", "denominator"], [["2025-01", "BAME", 1, 2]])
    assert parsed.frame.empty and parsed.periods == [] and parsed.groups == []
    assert list(parsed.frame.columns) == ["period", "group", "numerator", "denominator", "value"]


# --- refusals ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        "NHS Number",
        "nhs_no",
        "NHSNumber",
        "MRN",
        "Hospital Number",
        "patient_id",
        "CHI",
        "Name",
        "Surname",
        "Postcode",
        "Date of Birth",
        "DOB",
        "Address",
    ],
)
@pytest.mark.parametrize("fmt", FORMATS)
def test_identifier_header_refuses_the_file(fmt: str, header: str) -> None:
    with pytest.raises(ImportRefused) as refused:
        read(fmt, ["date", "ethnicity", "outcome", header], [["2025-03-03", "A", 1, "x"]])
    assert f"'{header}'" in refused.value.message
    assert "Remove it" in refused.value.message and "three columns" in refused.value.message


@pytest.mark.parametrize("fmt", FORMATS)
def test_nhs_number_values_refuse_the_file(fmt: str) -> None:
    rows: Rows = [["2025-03-03", "A", 1, nhs_number(943476591 + 37 * i)] for i in range(20)]
    with pytest.raises(ImportRefused) as refused:
        read(fmt, ["date", "ethnicity", "outcome", "ref"], rows)
    assert "'ref'" in refused.value.message and "NHS numbers" in refused.value.message


def test_ten_digit_numbers_with_bad_check_digits_are_not_identifiers() -> None:
    valid = {nhs_number(s) for s in range(100000000, 100000100)}
    invalid = [f"{n:010d}" for n in range(1000000000, 1000000400) if f"{n:010d}" not in valid][:20]
    rows: Rows = [["2025-03-03", "A", 1, v] for v in invalid]
    parsed = read("csv", ["date", "ethnicity", "outcome", "batch"], rows)
    assert parsed.rows_used == 20


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "is empty"),
        (b"period,ethnicity,numerator,denominator\n", "no data rows"),
        (b"period,ethnicity,numerator,denominator\n,,,\n", "no data rows"),
        (b"a,b,c\n1,2,3\n", "columns were not recognised"),
        (b"date,ethnicity,ethnic_group,outcome\n2025-01-01,A,A,1\n", "could both be the ethnicity column"),
    ],
)
def test_unusable_files_are_refused_clearly(data: bytes, fragment: str) -> None:
    with pytest.raises(ImportRefused) as refused:
        read_extract(data, filename="x.csv", today=TODAY)
    assert fragment in refused.value.message


def test_header_only_xlsx_and_broken_xlsx_are_refused() -> None:
    with pytest.raises(ImportRefused, match="no data rows"):
        read_extract(xlsx_bytes(["period", "ethnicity", "value"], []), filename="x.xlsx", today=TODAY)
    with pytest.raises(ImportRefused, match="Excel"):
        read_extract(b"PK\x03\x04 not really a zip", filename="x.xlsx", today=TODAY)
    with pytest.raises(ImportRefused, match=".xls"):
        read_extract(b"\xd0\xcf\x11\xe0old", filename="x.xls", today=TODAY)


def test_missing_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ImportRefused, match="could not be found"):
        read_extract(tmp_path / "nope.csv", today=TODAY)


# --- bounds: what is read at all ---------------------------------------------------------------------


def test_a_hundred_thousand_columns_are_refused_with_a_short_message() -> None:
    header = ",".join(f"column_{i}" for i in range(100_000)).encode()
    with pytest.raises(ImportRefused) as refused:
        read_extract(header + b"\n" + b"," * 99_999 + b"\n", filename="wide.csv", today=TODAY)
    # 100,000 names make a line over the line limit; either bound refuses before pandas reads it.
    for text in (refused.value.message, refused.value.public):
        assert len(text) < 1000 and "wide.csv" in text and "upload again" in text


def test_too_many_columns_under_the_line_limit_are_refused_naming_the_limit() -> None:
    header = ",".join(f"c{i}" for i in range(MAX_COLUMNS + 1)).encode()
    with pytest.raises(ImportRefused) as refused:
        read_extract(header + b"\n" + b"1," * MAX_COLUMNS + b"1\n", filename="wide.csv", today=TODAY)
    assert (
        f"{MAX_COLUMNS + 1:,} columns" in refused.value.message and str(MAX_COLUMNS) in refused.value.message
    )


def test_too_many_columns_in_a_workbook_are_refused() -> None:
    header = [f"c{i}" for i in range(MAX_COLUMNS + 5)]
    with pytest.raises(ImportRefused, match="columns; the most read here is"):
        read_extract(xlsx_bytes(header, [list(range(len(header)))]), filename="wide.xlsx", today=TODAY)


def test_unrecognised_columns_are_listed_briefly() -> None:
    header = ",".join(f"a_long_column_name_{i}" for i in range(150)).encode()
    with pytest.raises(ImportRefused) as refused:
        read_extract(header + b"\n" + b"1," * 149 + b"1\n", filename="x.csv", today=TODAY)
    assert "and 138 more" in refused.value.message and len(refused.value.message) < 1500


def test_a_long_line_is_refused() -> None:
    data = b"date,ethnicity,outcome\n2025-03-03,A,1\n2025-03-03,A," + b"x" * (MAX_LINE_BYTES + 10) + b"\n"
    with pytest.raises(ImportRefused) as refused:
        read_extract(data, filename="long.csv", today=TODAY)
    assert f"{MAX_LINE_BYTES // 1024} KB" in refused.value.message and len(refused.value.message) < 500


def test_a_zip_bomb_workbook_is_refused_before_it_is_opened() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("xl/worksheets/sheet1.xml", "w") as sheet:
            block = b"\0" * (1024 * 1024)
            for _ in range(XLSX_MAX_UNCOMPRESSED // len(block) + 1):
                sheet.write(block)
    bomb = buffer.getvalue()
    assert len(bomb) < 1024 * 1024  # a small upload...
    with pytest.raises(ImportRefused) as refused:
        read_extract(bomb, filename="bomb.xlsx", today=TODAY)
    assert (
        "expands to" in refused.value.message and "MB" in refused.value.message
    )  # ...refused by its expansion


def test_a_workbook_with_too_many_parts_is_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i in range(XLSX_MAX_ENTRIES + 1):
            archive.writestr(f"part{i}.xml", "")
    with pytest.raises(ImportRefused, match="parts"):
        read_extract(buffer.getvalue(), filename="many.xlsx", today=TODAY)


def test_every_advice_and_bound_refusal_is_safe_for_a_channel() -> None:
    from bot.core.equity.disclosure import check_text_for_disclosure
    from bot.core.extracts import _ADVICE, quoted_name

    columns = {
        role: quoted_name(role)
        for role in ("period", "date", "ethnicity", "numerator", "denominator", "value", "outcome")
    }
    for template in _ADVICE.values():
        text = template.format(**columns)
        assert check_text_for_disclosure(text, []) == [], text
