"""Reading teams' CSV/XLSX extracts into tidy per-period, per-ethnic-group aggregates, with row-level validation."""

from __future__ import annotations

import io
import logging
import re
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from bot.core import ethnicity
from bot.core import periods as per

logger = logging.getLogger(__name__)

# A period code from bot.core.periods, or "auto": read the period from the data and keep it.
Period = Literal["day", "week", "month", "quarter", "fy_quarter", "year", "fy_year", "auto"]
Shape = Literal["aggregated", "values", "record"]
Role = Literal["period", "date", "ethnicity", "numerator", "denominator", "value", "outcome"]

# RejectedRow objects kept per reason (so every reason keeps its first rows); every rejection is still counted
# in rejected_count and rejected_reasons.
REJECTED_PER_REASON_CAP = 100
# Rows listed per problem in ParsedImport.problems(); the counts are always complete.
MESSAGE_ROW_CAP = 10
# Distinct values quoted per problem in ParsedImport.problems().
MESSAGE_VALUE_CAP = 5
IDENTIFIER_SAMPLE_ROWS = 1000
# Bounds on what is read at all (a trust's extract has a handful of columns and short lines).
MAX_COLUMNS = 200
MAX_LINE_BYTES = 64 * 1024
XLSX_MAX_UNCOMPRESSED = 200 * 1024 * 1024
XLSX_MAX_ENTRIES = 1000
# Column names quoted in messages are cut to this length, and at most this many are listed.
NAME_CAP = 60
NAMES_LISTED = 12

_EXPORT_ADVICE = (
    "Remove it and export either aggregated counts (period, ethnicity, numerator, denominator) "
    "or only the three columns date, ethnicity and outcome (Yes or No). Nothing from this file has been kept."
)

_SYNONYMS: dict[Role, tuple[str, ...]] = {
    "period": (
        "period",
        "month",
        "week",
        "quarter",
        "periodstart",
        "periodstarting",
        "periodbeginning",
        "reportingperiod",
        "weekstart",
        "weekcommencing",
        "weekbeginning",
        "monthstart",
        "quarterstart",
        "monthyear",
        "yearmonth",
    ),
    "date": (
        "date",
        "eventdate",
        "admissiondate",
        "deliverydate",
        "dischargedate",
        "attendancedate",
        "referraldate",
        "proceduredate",
        "activitydate",
        "dateofdelivery",
        "dateofadmission",
        "dateofevent",
    ),
    "ethnicity": (
        "ethnicity",
        "ethniccategory",
        "ethnicgroup",
        "ethnicorigin",
        "ethnicitycode",
        "ethniccategorycode",
        "ethnicgroupcode",
        "ethnicitygroup",
        "ethnicitycategory",
    ),
    "numerator": ("numerator", "events", "count", "num", "eventcount", "cases", "numeratorcount"),
    "denominator": (
        "denominator",
        "total",
        "births",
        "den",
        "n",
        "denom",
        "population",
        "deliveries",
        "denominatorcount",
        "totalcount",
    ),
    "value": ("value", "rate", "percentage", "percent", "measure", "measurevalue", "result"),
    "outcome": ("outcome", "event", "flag", "outcomeflag", "eventflag"),
}

_IDENTIFIER_EXACT = frozenset(
    {
        "nhs",
        "mrn",
        "chi",
        "name",
        "dob",
        "surname",
        "forename",
        "postcode",
        "address",
        "hospno",
        "crn",
        "pid",
        "patient",
    }
)
_IDENTIFIER_PARTS = (
    "nhsnumber",
    "nhsno",
    "nhsnum",
    "patientid",
    "patientnumber",
    "patientno",
    "patientname",
    "hospitalnumber",
    "hospitalno",
    "hospitalid",
    "mrn",
    "chinumber",
    "chino",
    "dateofbirth",
    "birthdate",
    "surname",
    "forename",
    "firstname",
    "lastname",
    "fullname",
    "givenname",
    "familyname",
    "postcode",
    "address",
    "medicalrecordnumber",
    "casenotenumber",
)

_DATE_FORMATS = (
    "%Y-%m-%d",
    "%d/%m/%Y",
    "%m/%d/%Y",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d-%m-%Y",
    "%Y/%m/%d",
    "%d.%m.%Y",
    "%d/%m/%y",
    "%d %b %Y",
    "%d %B %Y",
    "%d-%b-%Y",
    "%d-%b-%y",
)
_FORMAT_WORDS = {
    "%Y-%m-%d": "year-month-day",
    "%d/%m/%Y": "day/month/year",
    "%m/%d/%Y": "month/day/year (US)",
    "%d/%m/%y": "day/month/two-digit year",
    "%d-%m-%Y": "day-month-year",
    "%d.%m.%Y": "day.month.year",
}

_MONTHS = {
    name: i + 1
    for i, name in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    )
}
_RE_YEAR_MONTH = re.compile(r"^(\d{4})[-/](\d{1,2})$")
_RE_MONTH_YEAR_NUM = re.compile(r"^(\d{1,2})[-/](\d{4})$")
_RE_MONTH_NAME = re.compile(r"^([a-z]{3,9})\.?[\s\-/]*('?\d{2}|\d{4})$")
_RE_YEAR_MONTH_NAME = re.compile(r"^(\d{4})[\s\-/]*([a-z]{3,9})$")
_RE_QUARTER = re.compile(r"^(\d{4})\s*[-/ ]?\s*q([1-4])$|^q([1-4])\s*[-/ ]?\s*(\d{4})$")
_RE_WEEK = re.compile(r"^(\d{4})\s*-?\s*w(\d{1,2})$")
# NHS financial years run April to March: "2024/25 Q1", "2024-25 Q1", "FY2024/25 Q1", "Q1 2024/25", "FY2024/25".
_FY = r"(?:fy\s*)?(\d{4})\s*[-/]\s*(\d{2}|\d{4})"
_RE_FY_QUARTER = re.compile(rf"^{_FY}\s*[-/ ]?\s*q([1-4])$")
_RE_QUARTER_FY = re.compile(rf"^q([1-4])\s*[-/ ]?\s*{_FY}$")
_RE_FY_YEAR = re.compile(rf"^{_FY}$")
_RE_FY_YEAR_PREFIXED = re.compile(r"^fy\s*(\d{4})\s*[-/]\s*(\d{2}|\d{4})$")
_RE_YYYYMM = re.compile(r"^(\d{4})(\d{2})(?:\.0)?$")
_RE_YEAR = re.compile(r"^(\d{4})(?:\.0)?$")
_RE_DIGITS10 = re.compile(r"^\d{10}$")

# Reasons name the column they came from: "{period}" and the like are filled in with the file's column names.
_R_PERIOD = "period in column {period} could not be read"
_R_DATE = "date in column {date} could not be read"
_R_COARSE = "period in column {period} is coarser than, or does not fit, the measure's reporting period"
_R_FUTURE = "period in column {period} is in the future"
_R_FUTURE_DATE = "date in column {date} is in the future"
_R_ETHNICITY = "ethnicity in column {ethnicity} not recognised"
_R_NUMERATOR = "numerator in column {numerator} is not a whole number, 0 or more"
_R_DENOMINATOR = "denominator in column {denominator} is not a whole number, 0 or more"
_R_VALUE = "value in column {value} is not a number"
_R_OVER = "numerator (column {numerator}) is greater than the denominator (column {denominator})"
_R_OUTCOME = "outcome in column {outcome} is not 1/0, Yes/No, Y/N or True/False"

# What to do, said without a count or a row number, so it can be posted in the channel.
_ADVICE = {
    _R_PERIOD: "the period column {period} must hold periods such as 2025-03, Mar 2025, 2025 Q1 or 2025-W10",
    _R_DATE: "the date column {date} must hold dates such as 2025-03-31 or 31/03/2025",
    _R_COARSE: "the periods in column {period} are longer than the measure's reporting period: export one row "
    "per reporting period (or per event date)",
    _R_FUTURE: "the periods in column {period} are in the future: check the period column",
    _R_FUTURE_DATE: "the dates in column {date} are in the future: check the date column and its day/month order",
    _R_ETHNICITY: "the ethnicity column {ethnicity} must hold NHS ethnic category codes (A to S, Z) or their names",
    _R_NUMERATOR: "the numerator column {numerator} must hold whole numbers, 0 or more",
    _R_DENOMINATOR: "the denominator column {denominator} must hold whole numbers, 0 or more",
    _R_VALUE: "the value column {value} must hold numbers",
    _R_OVER: "the numerators (column {numerator}) must not be larger than the denominators (column {denominator})",
    # Worded without "1/0", which reads as a count of 1 out of 0 to the disclosure check.
    _R_OUTCOME: "the outcome column {outcome} must hold Yes or No (1 or 0, Y or N, True or False work too)",
}


def quoted_name(name: object) -> str:
    """A column name as it is quoted in messages: in single quotes, cut to NAME_CAP characters."""
    text = " ".join(str(name).split())
    return "'" + (text if len(text) <= NAME_CAP else text[: NAME_CAP - 1] + "…") + "'"


def _names(columns: Sequence[object]) -> str:
    shown = ", ".join(quoted_name(c) for c in columns[:NAMES_LISTED])
    more = len(columns) - NAMES_LISTED
    return shown + (f" and {more:,} more" if more > 0 else "") if columns else "none"


class ImportRefused(Exception):
    """The whole file is refused.

    .message tells the importer what to do (it may hold exact counts and row numbers: send it privately);
    .public says the same without any count or row number, for the channel.
    """

    def __init__(self, message: str, *, public: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.public = public if public is not None else message


@dataclass
class RejectedRow:
    row: int
    reason: str
    value: str | None


@dataclass
class Problem:
    """One kind of rejected row: what is wrong, how many rows, the first rows and values."""

    key: str  # the reason template (one of the _R_ constants), for advice
    text: str  # the reason with its column named
    count: int
    rows: list[int]
    values: list[str]


@dataclass
class ParsedImport:
    shape: Shape
    frame: pd.DataFrame
    rows_read: int
    rows_used: int
    rejected: list[RejectedRow]
    rejected_count: int
    unrecognised: dict[str, list[int]]
    notes: list[str]
    periods: list[date]
    groups: list[str]
    rejected_reasons: dict[str, int] = field(default_factory=dict)
    columns: dict[str, str] = field(default_factory=dict)  # role -> the file's column name
    reason_keys: dict[str, str] = field(default_factory=dict)  # reason text -> its template
    period: str = "month"  # the period of `frame` (a bot.core.periods code)
    data_period: str = "month"  # the period the file's rows had
    grouping: str | None = None  # the sentence saying finer periods were merged, when they were
    partial_periods: dict[date, str] = field(
        default_factory=dict
    )  # merged periods the data cover only in part

    def problem_list(self) -> list[Problem]:
        """Every kind of rejected row, the one affecting most rows first (unrecognised ethnicity by spelling)."""
        found: list[Problem] = []
        for reason, count in self.rejected_reasons.items():
            key = self.reason_keys.get(reason, reason)
            if key == _R_ETHNICITY and self.unrecognised:
                continue
            these = [r for r in self.rejected if r.reason == reason]
            values = list(dict.fromkeys(r.value for r in these if r.value is not None))
            found.append(Problem(key, reason, count, [r.row for r in these], values))
        ethnicity_text = next((t for t, k in self.reason_keys.items() if k == _R_ETHNICITY), _R_ETHNICITY)
        for raw, rows in self.unrecognised.items():
            found.append(Problem(_R_ETHNICITY, ethnicity_text, len(rows), rows, [raw]))
        # Most rows first; ties keep the order the rows were met in.
        return sorted(found, key=lambda p: (-p.count, p.rows[0] if p.rows else 0))

    @property
    def partial(self) -> str | None:
        """'Sep 2025 has only 28 of its 30 days in the data', or None."""
        return "; ".join(self.partial_periods.values()) or None

    def problems(self) -> list[str]:
        """Plain-language lines for every kind of rejected row, most rows first, each with its first row numbers.

        Exact counts and row numbers: for the person who imported only, never for a channel.
        """
        lines: list[str] = []
        for problem in self.problem_list():
            shown = ", ".join(str(r) for r in problem.rows[:MESSAGE_ROW_CAP])
            more = problem.count - min(len(problem.rows), MESSAGE_ROW_CAP)
            label = "row" if problem.count == 1 else "rows"
            where = f" ({label} {shown}{f' and {more:,} more' if more > 0 else ''})" if shown else ""
            if problem.key == _R_ETHNICITY and self.unrecognised:
                lines.append(
                    f"Ethnicity {_value_text(problem.values[0])} not recognised (column "
                    f"{self.columns.get('ethnicity', '?')}): {_rows(problem.count)}{where}."
                )
                continue
            values = [_value_text(v) for v in problem.values[:MESSAGE_VALUE_CAP]]
            seen = f"; values found: {', '.join(values)}" if values else ""
            lines.append(f"{problem.text[0].upper()}{problem.text[1:]}: {_rows(problem.count)}{where}{seen}.")
        return lines

    def advice(self) -> str | None:
        """What to do about the problem affecting most rows, with no count or row number (safe for a channel)."""
        problems = self.problem_list()
        if not problems:
            return None
        template = _ADVICE.get(problems[0].key)
        if template is None:
            return problems[0].text
        return template.format_map(_Columns(self.columns))


class _Columns(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "'?'"


def _value_text(value: str) -> str:
    text = value if len(value) <= 40 else value[:39] + "…"
    return "(blank)" if text == "" else repr(text)


def period_start(d: date, period: Period) -> date:
    """First day of the reporting period containing d (ISO weeks start on Monday)."""
    return per.start(d, "month" if period == "auto" else period)


# --- reading the file ------------------------------------------------------------------------------

_Source = bytes | Path


def _resolve(data: bytes | str | Path, filename: str | None) -> tuple[_Source, str, Literal["csv", "xlsx"]]:
    if isinstance(data, bytes | bytearray):
        content = bytes(data)
        source: _Source = content
        name = filename or "upload"
        head = content[:4]
    else:
        path = Path(data)
        if not path.is_file():
            raise ImportRefused(f"The file {path.name} could not be found.")
        source, name = path, filename or path.name
        with path.open("rb") as handle:
            head = handle.read(4)
    lower = name.lower()
    if lower.endswith(".xls") or head == b"\xd0\xcf\x11\xe0":
        raise ImportRefused(
            "Old-style .xls workbooks are not read. Save the sheet as .xlsx or CSV and upload again."
        )
    # Trust the bytes over the name: a renamed workbook is still a zip.
    if head == b"PK\x03\x04":
        _check_workbook(source, name)
        return source, name, "xlsx"
    if lower.endswith((".xlsx", ".xlsm")):
        raise ImportRefused(f"{name} is not a readable Excel workbook. Save it again as .xlsx or CSV.")
    _check_lines(source, name)
    return source, name, "csv"


def _check_workbook(source: _Source, name: str) -> None:
    """Refuse a workbook that would expand beyond the bounds (a zip bomb) before anything parses it."""
    try:
        with zipfile.ZipFile(_open(source)) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise ImportRefused(f"{name} could not be read as an Excel workbook ({error}).") from None
    if len(entries) > XLSX_MAX_ENTRIES:
        raise ImportRefused(
            f"{name} holds {len(entries):,} parts; a workbook read here may hold at most {XLSX_MAX_ENTRIES:,}. "
            "Copy the data onto one sheet of a new workbook, or save it as CSV, and upload again.",
            public=f"{name} is a larger workbook than can be read here. Save the data as CSV and upload again.",
        )
    total = sum(entry.file_size for entry in entries)
    if total > XLSX_MAX_UNCOMPRESSED:
        raise ImportRefused(
            f"{name} expands to {_megabytes(total)} when opened; the most read here is "
            f"{_megabytes(XLSX_MAX_UNCOMPRESSED)}. Keep only the columns needed (date, ethnicity and outcome, or "
            "period, ethnicity, numerator and denominator), or save it as CSV, and upload again.",
            public=f"{name} is a larger workbook than can be read here. Save the data as CSV and upload again.",
        )


def _check_lines(source: _Source, name: str) -> None:
    """Refuse a CSV with a line longer than MAX_LINE_BYTES or more than MAX_COLUMNS columns."""
    with io.BytesIO(source) if isinstance(source, bytes) else source.open("rb") as handle:
        header = handle.readline(MAX_LINE_BYTES + 1)
        handle.seek(0)
        longest = _longest_line(handle)
    fix = (
        "Export only the columns needed (date, ethnicity and outcome, or period, ethnicity, numerator and "
        "denominator) and upload again."
    )
    if longest > MAX_LINE_BYTES:
        raise ImportRefused(
            f"{name} has a line longer than {MAX_LINE_BYTES // 1024} KB, the most read here. {fix}",
            public=f"{name} has lines longer than can be read here. {fix}",
        )
    columns = max(header.count(b","), header.count(b";")) + 1
    if columns > MAX_COLUMNS:
        raise ImportRefused(
            f"{name} has {columns:,} columns; the most read here is {MAX_COLUMNS}. {fix}",
            public=f"{name} has more columns than can be read here (at most {MAX_COLUMNS}). {fix}",
        )


def _longest_line(handle: io.BufferedIOBase | io.BytesIO) -> int:
    """The longest line's length in bytes, found with numpy a chunk at a time (a Python loop over a million lines
    would cost as much as the import)."""
    longest, carried = 0, 0
    while chunk := handle.read(8 * 1024 * 1024):
        ends = np.flatnonzero(np.frombuffer(chunk, dtype=np.uint8) == 10)
        if len(ends) == 0:
            carried += len(chunk)
        else:
            longest = max(longest, carried + int(ends[0]) + 1)
            if len(ends) > 1:
                longest = max(longest, int(np.diff(ends).max()))
            carried = len(chunk) - int(ends[-1]) - 1
        if max(longest, carried) > MAX_LINE_BYTES:
            break
    return max(longest, carried)


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):,.0f} MB"


def _open(source: _Source) -> io.BytesIO | Path:
    return io.BytesIO(source) if isinstance(source, bytes) else source


class _Reader:
    """Reads the same source several times (header, sample, needed columns) with one encoding decision."""

    def __init__(self, source: _Source, name: str, kind: Literal["csv", "xlsx"]) -> None:
        self.source, self.name, self.kind = source, name, kind
        self.encoding = "utf-8-sig"
        self.semicolon = kind == "csv" and self._semicolon()

    def read(
        self, *, nrows: int | None = None, usecols: Sequence[str] | None = None, categorical: bool = False
    ) -> pd.DataFrame:
        if self.kind == "xlsx":
            return self._read_xlsx(nrows=nrows, usecols=usecols)
        try:
            return self._read_csv(nrows=nrows, usecols=usecols, categorical=categorical)
        except UnicodeDecodeError:
            # Excel on Windows saves "CSV" as cp1252 unless told otherwise.
            if self.encoding == "cp1252":
                raise ImportRefused(
                    f"{self.name} is not readable text. Save it as CSV (UTF-8) or .xlsx."
                ) from None
            self.encoding = "cp1252"
            return self._read_csv(nrows=nrows, usecols=usecols, categorical=categorical)

    def _read_csv(
        self, *, nrows: int | None, usecols: Sequence[str] | None, categorical: bool
    ) -> pd.DataFrame:
        try:
            return pd.read_csv(
                _open(self.source),
                nrows=nrows,
                usecols=list(usecols) if usecols is not None else None,
                dtype="category" if categorical else str,
                na_filter=False,  # keep "", "NULL" and "NA" as text: they mean different things here
                skip_blank_lines=False,  # keeps spreadsheet row numbers right
                encoding=self.encoding,
                sep=";" if self.semicolon else ",",
            )
        except pd.errors.EmptyDataError:
            raise ImportRefused(
                f"{self.name} is empty. Export the data with a header row and upload again."
            ) from None
        except pd.errors.ParserError as error:
            raise ImportRefused(
                f"{self.name} could not be read as CSV ({str(error).strip()}). Save it as CSV or .xlsx."
            ) from None

    def _semicolon(self) -> bool:
        # European Excel exports separate with ";": decide from the header line alone.
        with io.BytesIO(self.source) if isinstance(self.source, bytes) else self.source.open("rb") as handle:
            first = handle.readline()
        return first.count(b";") > first.count(b",")

    def _read_xlsx(self, *, nrows: int | None, usecols: Sequence[str] | None) -> pd.DataFrame:
        try:
            frame = pd.read_excel(
                _open(self.source),
                sheet_name=0,
                nrows=nrows,
                dtype=object,
                na_filter=False,
                engine="openpyxl",
            )
        except (zipfile.BadZipFile, KeyError, OSError, ValueError) as error:
            raise ImportRefused(f"{self.name} could not be read as an Excel workbook ({error}).") from None
        frame.columns = [str(c) for c in frame.columns]
        return frame[list(usecols)] if usecols is not None else frame


# --- headers, shape and the identifier guard -------------------------------------------------------


def _header_key(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(header).casefold())


def _identifier_header(header: str) -> bool:
    key = _header_key(header)
    return key in _IDENTIFIER_EXACT or any(part in key for part in _IDENTIFIER_PARTS)


def _nhs_number_valid(digits: str) -> bool:
    total = sum(int(d) * w for d, w in zip(digits[:9], range(10, 1, -1), strict=True))
    check = 11 - total % 11
    check = 0 if check == 11 else check
    return check != 10 and check == int(digits[9])


def _looks_like_nhs_numbers(values: pd.Series) -> bool:
    texts = [re.sub(r"[\s\-]", "", str(v)).removesuffix(".0") for v in values.tolist()]
    texts = [t for t in texts if t]
    if not texts:
        return False
    valid = sum(1 for t in texts if _RE_DIGITS10.match(t) and _nhs_number_valid(t))
    return valid * 2 > len(texts)


def _guard_identifiers(sample: pd.DataFrame) -> None:
    for column in sample.columns:
        if _identifier_header(str(column)):
            raise ImportRefused(
                f"Column {quoted_name(column)} looks like a patient identifier, so the file was not imported. "
                f"{_EXPORT_ADVICE}"
            )
    for column in sample.columns:
        if _looks_like_nhs_numbers(sample[column]):
            raise ImportRefused(
                f"Column {quoted_name(column)} contains values that look like NHS numbers, so the file was not imported. "
                f"{_EXPORT_ADVICE}"
            )


def _match_roles(columns: Sequence[str]) -> dict[Role, list[str]]:
    matches: dict[Role, list[str]] = {role: [] for role in _SYNONYMS}
    for column in columns:
        key = _header_key(column)
        for role, synonyms in _SYNONYMS.items():
            if key in synonyms:
                matches[role].append(column)
    return matches


def _one(matches: dict[Role, list[str]], role: Role, fallback: Role | None = None) -> str | None:
    found = matches[role] or (matches[fallback] if fallback else [])
    if len(found) > 1:
        names = " and ".join(quoted_name(c) for c in found[:NAMES_LISTED])
        raise ImportRefused(
            f"Columns {names} could both be the {role} column. Keep one of them and upload again."
        )
    return found[0] if found else None


def _detect_shape(columns: Sequence[str]) -> tuple[Shape, dict[Role, str]]:
    matches = _match_roles(columns)
    ethnicity_column = _one(matches, "ethnicity")
    if ethnicity_column is not None:
        if matches["outcome"]:
            when = _one(matches, "date", "period")
            outcome = _one(matches, "outcome")
            if when is not None and outcome is not None:
                return "record", {"date": when, "ethnicity": ethnicity_column, "outcome": outcome}
        when = _one(matches, "period", "date")
        numerator, denominator = _one(matches, "numerator"), _one(matches, "denominator")
        if when is not None and numerator is not None and denominator is not None:
            return "aggregated", {
                "period": when,
                "ethnicity": ethnicity_column,
                "numerator": numerator,
                "denominator": denominator,
            }
        value = _one(matches, "value")
        if when is not None and value is not None:
            return "values", {"period": when, "ethnicity": ethnicity_column, "value": value}
        # A record-level export names its outcome after the measure ("pph", "transfused"): with a date, an
        # ethnicity and exactly one other column, that column is the outcome.
        date_column = _one(matches, "date")
        matched = {c for found in matches.values() for c in found}
        others = [c for c in columns if c not in matched and not c.startswith("Unnamed:")]
        if date_column is not None and len(others) == 1:
            return "record", {"date": date_column, "ethnicity": ethnicity_column, "outcome": others[0]}
    found = _names(list(columns))
    raise ImportRefused(
        "The columns were not recognised (found: " + found + "). Use one of: "
        "period, ethnicity, numerator, denominator (aggregated counts); "
        "period, ethnicity, value (one value per group); "
        "or date, ethnicity, outcome with outcome Yes or No, or 1 or 0 (one row per birth or episode)."
    )


# --- parsing distinct values -----------------------------------------------------------------------


def _distinct(series: pd.Series) -> tuple[np.ndarray[Any, np.dtype[np.intp]], list[Any]]:
    """Row -> distinct-value positions and the distinct values, so each distinct value is parsed once."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        codes = series.cat.codes.to_numpy().astype(np.intp)
        uniques: list[Any] = list(series.cat.categories)
        if (codes < 0).any():
            codes = np.where(codes < 0, len(uniques), codes)
            uniques.append(None)
        return codes, uniques
    positions, values = pd.factorize(series, use_na_sentinel=False)
    return positions.astype(np.intp), list(values)


def _text(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    return str(value).strip()


def _choose_date_format(texts: Sequence[str]) -> str | None:
    sample = [t for t in texts if t][:500]
    if not sample:
        return None
    best, best_count = None, 0
    for fmt in _DATE_FORMATS:
        parsed = pd.to_datetime(pd.Series(sample, dtype=object), format=fmt, errors="coerce")
        count = int(parsed.notna().sum())
        if count > best_count:
            best, best_count = fmt, count
    return best


def _parse_dates(uniques: Sequence[object]) -> tuple[list[date | None], str | None]:
    """Distinct raw dates -> dates; strings are parsed with one format inferred from them (UK day-first wins ties)."""
    result: list[date | None] = [None] * len(uniques)
    text_positions: list[int] = []
    texts: list[str] = []
    for i, value in enumerate(uniques):
        if isinstance(value, datetime | pd.Timestamp):
            result[i] = None if pd.isna(value) else value.date()
        elif isinstance(value, date):
            result[i] = value
        elif isinstance(value, str):
            text_positions.append(i)
            texts.append(value.strip())
    fmt = _choose_date_format(texts)
    if fmt is None:
        return result, None
    remaining = list(range(len(texts)))
    for candidate in (fmt, *[f for f in _DATE_FORMATS if f != fmt and f != "%m/%d/%Y"]):
        if not remaining:
            break
        parsed = pd.to_datetime(
            pd.Series([texts[j] for j in remaining], dtype=object), format=candidate, errors="coerce"
        )
        still: list[int] = []
        for j, stamp in zip(remaining, parsed.tolist(), strict=True):
            if pd.isna(stamp):
                still.append(j)
            else:
                result[text_positions[j]] = stamp.date()
        remaining = still
    return result, fmt


_Granularity = Literal["date", "week", "month", "quarter", "fy_quarter", "year", "fy_year"]


def _fy_start(first: str, second: str) -> int | None:
    """The first year of a financial year written '2024/25' or '2024/2025'; None when the years don't follow."""
    year, following = int(first), int(second)
    if (len(second) == 2 and following == (year + 1) % 100) or following == year + 1:
        return year
    return None


def _parse_period_label(value: object) -> tuple[date, _Granularity] | None:
    if isinstance(value, datetime | pd.Timestamp):
        return None if pd.isna(value) else (value.date(), "date")
    if isinstance(value, date):
        return value, "date"
    text = _text(value).casefold()
    if not text:
        return None
    if match := _RE_WEEK.match(text):
        try:
            return date.fromisocalendar(int(match[1]), int(match[2]), 1), "week"
        except ValueError:
            return None
    if match := _RE_QUARTER.match(text):
        year, quarter = (match[1], match[2]) if match[1] else (match[4], match[3])
        return date(int(year), 3 * (int(quarter) - 1) + 1, 1), "quarter"
    fy_quarter = None
    if match := _RE_FY_QUARTER.match(text):
        fy_quarter = _fy_start(match[1], match[2]), int(match[3])
    elif match := _RE_QUARTER_FY.match(text):
        fy_quarter = _fy_start(match[2], match[3]), int(match[1])
    if fy_quarter is not None:
        first_year, quarter = fy_quarter
        if first_year is None:
            return None
        month = 4 + 3 * (quarter - 1)  # Q1 Apr, Q2 Jul, Q3 Oct, Q4 Jan of the next calendar year
        return date(first_year + (month > 12), (month - 1) % 12 + 1, 1), "fy_quarter"
    # "2024/25" is a financial year when the second year follows the first and cannot be a month.
    if (match := _RE_FY_YEAR_PREFIXED.match(text)) or (
        (match := _RE_FY_YEAR.match(text)) and int(match[2]) > 12
    ):
        first_year = _fy_start(match[1], match[2])
        return (date(first_year, 4, 1), "fy_year") if first_year is not None else None
    if (match := _RE_YYYYMM.match(text)) and 1900 <= int(match[1]) <= 2100:
        return (date(int(match[1]), int(match[2]), 1), "month") if 1 <= int(match[2]) <= 12 else None
    if (match := _RE_YEAR.match(text)) and 1900 <= int(match[1]) <= 2100:
        return date(int(match[1]), 1, 1), "year"
    year_month: tuple[int, int] | None = None
    if match := _RE_YEAR_MONTH.match(text):
        year_month = int(match[1]), int(match[2])
    elif match := _RE_MONTH_YEAR_NUM.match(text):
        year_month = int(match[2]), int(match[1])
    elif (match := _RE_MONTH_NAME.match(text)) and match[1][:3] in _MONTHS:
        year_text = match[2].lstrip("'")
        year_month = (int(year_text) + (2000 if len(year_text) == 2 else 0), _MONTHS[match[1][:3]])
    elif (match := _RE_YEAR_MONTH_NAME.match(text)) and match[2][:3] in _MONTHS:
        year_month = int(match[1]), _MONTHS[match[2][:3]]
    if year_month is not None:
        return (date(year_month[0], year_month[1], 1), "month") if 1 <= year_month[1] <= 12 else None
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(_text(value), fmt).date(), "date"
        except ValueError:
            continue
    return None


_NESTS_IN: dict[str, frozenset[str]] = {
    "week": frozenset({"week"}),
    "month": frozenset({"month", "quarter", "fy_quarter", "year", "fy_year"}),
    "quarter": frozenset({"quarter", "fy_quarter", "year", "fy_year"}),
    "fy_quarter": frozenset({"quarter", "fy_quarter", "year", "fy_year"}),
    "year": frozenset({"year"}),
    "fy_year": frozenset({"fy_year"}),
}


def _fits(granularity: _Granularity, period: str) -> bool:
    """Whether a period label of this granularity lies wholly inside one period of the target length.

    Calendar and financial-year quarters cover the same months, so either kind of label fits either kind
    of quarter. A week label does not fit a month (a week can straddle two); a week's start date does.
    """
    return granularity == "date" or period in _NESTS_IN[granularity]


def _parse_count(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | np.integer):
        return int(value) if value >= 0 else None
    if isinstance(value, float | np.floating):
        return int(value) if np.isfinite(value) and float(value).is_integer() and value >= 0 else None
    text = _text(value).replace(",", "")
    if re.fullmatch(r"\d+(\.0*)?", text):
        return int(float(text)) if "." in text else int(text)
    return None


def _parse_value(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | np.integer | np.floating):
        number = float(value)
        return number if np.isfinite(number) else None
    text = _text(value).replace(",", "").removesuffix("%").strip()
    try:
        number = float(text)
    except ValueError:
        return None
    return number if np.isfinite(number) else None


def _parse_outcome(value: object) -> int | None:
    if isinstance(value, bool | np.bool_):
        return int(value)
    if isinstance(value, int | float | np.integer | np.floating):
        return int(value) if value in (0, 1) else None
    return _OUTCOME_WORDS.get(_text(value).casefold())


# What trust systems export for a yes/no outcome, in any case.
_OUTCOME_WORDS = {
    "0": 0,
    "1": 1,
    "0.0": 0,
    "1.0": 1,
    "no": 0,
    "yes": 1,
    "n": 0,
    "y": 1,
    "false": 0,
    "true": 1,
}


def _map_distinct(
    positions: np.ndarray[Any, np.dtype[np.intp]],
    uniques: Sequence[object],
    parse: Callable[[object], int | None],
) -> np.ndarray[Any, np.dtype[np.int64]]:
    """Parse each distinct value once; -1 marks a value that failed."""
    table = np.array([(-1 if (p := parse(u)) is None else p) for u in uniques] or [-1], dtype=np.int64)
    mapped: np.ndarray[Any, np.dtype[np.int64]] = table[positions]
    return mapped


# --- the import ------------------------------------------------------------------------------------


@dataclass
class _Rejections:
    """Row-level rejection bookkeeping: the first reason found for a row is the one reported."""

    n: int
    reason_index: np.ndarray[Any, np.dtype[np.int16]] = field(init=False)
    reasons: list[str] = field(default_factory=list)
    values: list[Callable[[np.ndarray[Any, np.dtype[np.intp]]], list[str]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.reason_index = np.full(self.n, -1, dtype=np.int16)

    def add(
        self,
        mask: np.ndarray[Any, np.dtype[np.bool_]],
        reason: str,
        value_of: Callable[[np.ndarray[Any, np.dtype[np.intp]]], list[str]],
    ) -> None:
        fresh = mask & (self.reason_index < 0)
        if fresh.any():
            if reason not in self.reasons:
                self.reasons.append(reason)
                self.values.append(value_of)
            self.reason_index[fresh] = self.reasons.index(reason)

    @property
    def rejected(self) -> np.ndarray[Any, np.dtype[np.bool_]]:
        return self.reason_index >= 0

    def rows(
        self, row_numbers: np.ndarray[Any, np.dtype[np.int64]]
    ) -> tuple[list[RejectedRow], dict[str, int]]:
        counts = np.bincount(self.reason_index[self.rejected], minlength=len(self.reasons))
        by_reason = {reason: int(counts[i]) for i, reason in enumerate(self.reasons)}
        listed: list[RejectedRow] = []
        for i, reason in enumerate(self.reasons):
            # A cap per reason, so a reason met late in the file still keeps its first rows.
            these = np.flatnonzero(self.reason_index == i)[:REJECTED_PER_REASON_CAP]
            if len(these):
                listed.extend(
                    RejectedRow(int(row_numbers[j]), reason, v)
                    for j, v in zip(these, self.values[i](these), strict=True)
                )
        listed.sort(key=lambda r: r.row)
        return listed, by_reason


def _raw_getter(
    positions: np.ndarray[Any, np.dtype[np.intp]], uniques: Sequence[object]
) -> Callable[[np.ndarray[Any, np.dtype[np.intp]]], list[str]]:
    return lambda rows: [_text(uniques[positions[r]]) for r in rows]


def read_extract(
    data: bytes | str | Path,
    *,
    filename: str | None = None,
    period: Period = "month",
    today: date | None = None,
    quarters: str = "financial",
) -> ParsedImport:
    """Read a CSV or XLSX extract into per-period, per-group aggregates.

    period: the period to sum rows into (values are averaged), or "auto" to keep the period the data has
    (records, which carry event dates, are counted by month). Merging finer periods is always said in
    `grouping`. quarters: "financial" or "calendar", naming quarters read from bare dates.

    Raises ImportRefused when the whole file cannot be used (identifier column, unknown columns,
    unreadable or empty file). Problems with single rows are reported in the result instead.
    """
    today = today or date.today()
    source, name, kind = _resolve(data, filename)
    reader = _Reader(source, name, kind)
    sample = reader.read(nrows=IDENTIFIER_SAMPLE_ROWS)
    sample.columns = [str(c) for c in sample.columns]
    if len(sample.columns) > MAX_COLUMNS:
        fix = (
            "Export only the columns needed (date, ethnicity and outcome, or period, ethnicity, numerator and "
            "denominator) and upload again."
        )
        raise ImportRefused(
            f"{name} has {len(sample.columns):,} columns; the most read here is {MAX_COLUMNS}. {fix}",
            public=f"{name} has more columns than can be read here (at most {MAX_COLUMNS}). {fix}",
        )
    _guard_identifiers(sample)
    shape, roles = _detect_shape(list(sample.columns))
    if _all_blank(sample).all():
        raise ImportRefused(f"{name} has a header row but no data rows. Export the data again and upload it.")

    frame = reader.read(usecols=list(roles.values()), categorical=True)
    blank = _all_blank(frame[list(roles.values())])
    if blank.any():
        # Wholly empty lines are layout, not data: leave them out but keep the row numbering.
        frame = frame.loc[~blank.to_numpy()]
    row_numbers = frame.index.to_numpy(dtype=np.int64) + 2
    n = len(frame)
    logger.info("Importing %s: %s shape, %s rows, period %s", name, shape, n, period)

    rejections = _Rejections(n)
    notes: list[str] = []
    periods = _periods(frame, shape, roles, period, today, rejections, notes, quarters)
    e_positions, e_uniques = _distinct(frame[roles["ethnicity"]])
    # Normalise the few distinct spellings, not the million rows.
    codes, code_notes = ethnicity.normalise_series(pd.Series(e_uniques, dtype=object))
    group_table = np.append(codes.cat.codes.to_numpy().astype(np.int64), -1)
    group_index = group_table[e_positions]
    unknown_ethnicity = group_index < 0
    rejections.add(unknown_ethnicity, _R_ETHNICITY, _raw_getter(e_positions, e_uniques))

    numerator, denominator, value = _measures(frame, shape, roles, rejections)
    used = ~rejections.rejected

    unrecognised: dict[str, list[int]] = {}
    if unknown_ethnicity.any():
        unknown_rows = np.flatnonzero(unknown_ethnicity)
        order = np.argsort(e_positions[unknown_rows], kind="stable")
        distinct, starts = np.unique(e_positions[unknown_rows][order], return_index=True)
        for position, chunk in zip(distinct.tolist(), np.split(order, starts[1:]), strict=True):
            unrecognised[_text(e_uniques[position])] = row_numbers[unknown_rows[chunk]].tolist()
    rows_per_spelling = np.bincount(e_positions[used], minlength=len(e_uniques))
    note_rows: dict[str, int] = {}
    for note, count in zip(code_notes.tolist(), rows_per_spelling.tolist(), strict=False):
        if isinstance(note, str) and count:
            note_rows[note] = note_rows.get(note, 0) + count
    notes[:0] = [f"{note} ({_rows(count)})" for note, count in sorted(note_rows.items(), key=lambda i: -i[1])]

    merged = (
        shape != "record"
        and periods.native != periods.target
        and len(periods.native_starts) > len(periods.starts)
    )
    grouping = (
        per.grouping_note(periods.native, periods.target, averaged=shape == "values") if merged else None
    )
    partial = per.partial_periods(periods.native_starts, periods.native, periods.target) if merged else {}
    if merged and shape == "values":
        # A value (a mean, a length of stay) is not additive: each group's values in a longer period are
        # averaged, one value per shorter period, and `grouping` says so.
        fine = _aggregate(
            periods.native_ids[used],
            periods.native_starts,
            group_index[used],
            numerator[used],
            denominator[used],
            value[used],
            shape,
            notes,
        )
        nhs_order = {c: i for i, c in enumerate(ethnicity.CODES)}
        fine = pd.DataFrame(
            {
                "period": [per.start(d, periods.target) for d in fine["period"].tolist()],
                "rank": [nhs_order[g] for g in fine["group"].tolist()],
                "group": fine["group"],
                "value": fine["value"].astype(float),
            }
        )
        means = fine.groupby(["period", "rank", "group"], sort=True, as_index=False)["value"].mean()
        tidy = _typed(
            pd.DataFrame(
                {
                    "period": means["period"],
                    "group": means["group"],
                    "numerator": pd.NA,
                    "denominator": pd.NA,
                    "value": means["value"],
                }
            )
        )
    else:
        tidy = _aggregate(
            periods.ids[used],
            periods.starts,
            group_index[used],
            numerator[used],
            denominator[used],
            value[used],
            shape,
            notes,
        )
    rejected, by_reason = rejections.rows(row_numbers)
    # Name the column each reason came from.
    columns: dict[str, str] = {str(role): quoted_name(column) for role, column in roles.items()}
    texts = {template: template.format_map(_Columns(columns)) for template in by_reason}
    reason_keys = {texts[t]: next((k for k in _ADVICE if t.startswith(k)), t) for t in by_reason}
    rejected = [RejectedRow(r.row, texts[r.reason], r.value) for r in rejected]
    by_reason = {texts[t]: n for t, n in by_reason.items()}
    rejected_count = int(rejections.rejected.sum())
    if rejected_count:
        logger.info("Import of %s rejected %s of %s rows", name, rejected_count, n)
    return ParsedImport(
        shape=shape,
        frame=tidy,
        rows_read=n,
        rows_used=int(used.sum()),
        rejected=rejected,
        rejected_count=rejected_count,
        unrecognised=unrecognised,
        notes=notes,
        periods=sorted(set(tidy["period"])),
        groups=[c for c in ethnicity.CODES if c in set(tidy["group"])],
        rejected_reasons=by_reason,
        columns=columns,
        reason_keys=reason_keys,
        period=periods.target,
        data_period=periods.native,
        grouping=grouping,
        partial_periods=partial,
    )


def _all_blank(frame: pd.DataFrame) -> pd.Series:
    blank = pd.Series(True, index=frame.index)
    for column in frame.columns:
        positions, uniques = _distinct(frame[column])
        table = np.array([_text(u) == "" for u in uniques] or [True], dtype=bool)
        if not table.any():
            return pd.Series(False, index=frame.index)
        blank &= table[positions]
    return blank


def _rows(count: int) -> str:
    return f"{count:,} row" if count == 1 else f"{count:,} rows"


@dataclass
class _Periods:
    """Each row's period at the length the data has (native) and at the length asked for (target)."""

    ids: np.ndarray[Any, np.dtype[np.int64]]  # index into starts; -1 where unusable
    starts: list[date]
    native_ids: np.ndarray[Any, np.dtype[np.int64]]  # index into native_starts; -1 where unusable
    native_starts: list[date]
    native: str  # the period the data has
    target: str  # the period rows are summed (or averaged) into


def _native_periods(labels: Sequence[tuple[date, _Granularity] | None], quarters: str) -> tuple[str, str]:
    """The finest and the coarsest period a period column has: named periods ("2024/25 Q1", "Mar 2024") and
    the period its dates have (days, weeks, months, quarters or years). They differ only in a mixed column."""
    named = {p[1] for p in labels if p is not None and p[1] != "date"}
    dates = [p[0] for p in labels if p is not None and p[1] == "date"]
    inferred = per.infer(dates) if dates else None
    if inferred is None and dates:
        inferred = "month" if all(d.day == 1 for d in dates) else "day"
    found = [*named, *([inferred] if inferred else [])] or ["month"]

    def naming(code: str) -> str:
        # Quarter labels written the calendar way ("2024 Q2") keep calendar names; NHS forms keep financial-year
        # names; bare dates follow the quarters setting.
        if code not in ("quarter", "fy_quarter"):
            return code
        if "fy_quarter" in named:
            return "fy_quarter"
        if "quarter" in named:
            return "quarter"
        return "quarter" if quarters == "calendar" else "fy_quarter"

    return naming(per.finest(found) or "month"), naming(per.coarsest(found) or "month")


def _periods(
    frame: pd.DataFrame,
    shape: Shape,
    roles: dict[Role, str],
    period: Period,
    today: date,
    rejections: _Rejections,
    notes: list[str],
    quarters: str = "financial",
) -> _Periods:
    """Each row's period (-1 where unusable); problems go to rejections.

    With period "auto" rows keep the period the data has; otherwise they are summed (values: averaged) into
    the period asked for, and the caller says so when that merged finer periods.
    """
    column = roles["date"] if shape == "record" else roles["period"]
    positions, uniques = _distinct(frame[column])
    raw = _raw_getter(positions, uniques)
    if shape == "record":
        dates, fmt = _parse_dates(uniques)
        day_part = (fmt or "").split(" ")[0]
        if day_part in _FORMAT_WORDS and day_part != "%Y-%m-%d":
            notes.append(f"Dates in '{column}' read as {_FORMAT_WORDS[day_part]}")
        # Dates of single records are events, not periods: "auto" counts them by month.
        native = "day"
        target = "month" if period == "auto" else str(period)
        labels: list[tuple[date, _Granularity] | None] = [(d, "date") if d else None for d in dates]
        future = [bool(d and d > today) for d in dates]
        unreadable_reason, future_reason = _R_DATE, _R_FUTURE_DATE
    else:
        labels = [_parse_period_label(u) for u in uniques]
        native, coarsest = _native_periods(labels, quarters)
        target = coarsest if period == "auto" else str(period)
        if per.RANK[target] < per.RANK[native]:
            # Asked for a finer period than the data has: keep the data's own (the coarser rows are rejected).
            native = target
        future = [bool(p and (p[0] if p[1] == "date" else per.start(p[0], target)) > today) for p in labels]
        unreadable_reason, future_reason = _R_PERIOD, _R_FUTURE
    coarse = [bool(p and not _fits(p[1], target)) for p in labels]
    usable = [bool(p) and not c and not f for p, c, f in zip(labels, coarse, future, strict=True)]
    starts = [
        per.start(p[0], target).toordinal() if p and ok else -1 for p, ok in zip(labels, usable, strict=True)
    ]
    # A label coarser than the finest period (a month among days) keeps its own start at the finest level.
    native_starts = [
        per.start(p[0], native if _fits(p[1], native) else target).toordinal() if p and ok else -1
        for p, ok in zip(labels, usable, strict=True)
    ]

    def dense(values: list[int]) -> tuple[np.ndarray[Any, np.dtype[np.int64]], list[date]]:
        ordered = sorted({v for v in values if v >= 0})
        index = {v: i for i, v in enumerate(ordered)}
        table = np.array([index.get(v, -1) for v in values] or [-1], dtype=np.int64)
        return table[positions], [date.fromordinal(v) for v in ordered]

    unreadable = np.array([p is None for p in labels] or [False], dtype=bool)
    rejections.add(unreadable[positions], unreadable_reason, raw)
    rejections.add(
        np.array(coarse or [False], dtype=bool)[positions], f"{_R_COARSE} ({per.noun(target)})", raw
    )
    rejections.add(np.array(future or [False], dtype=bool)[positions], future_reason, raw)
    ids, period_starts = dense(starts)
    native_ids, native_period_starts = dense(native_starts)
    return _Periods(ids, period_starts, native_ids, native_period_starts, native, target)


def _measures(
    frame: pd.DataFrame, shape: Shape, roles: dict[Role, str], rejections: _Rejections
) -> tuple[
    np.ndarray[Any, np.dtype[np.int64]],
    np.ndarray[Any, np.dtype[np.int64]],
    np.ndarray[Any, np.dtype[np.float64]],
]:
    n = len(frame)
    nothing = np.zeros(n, dtype=np.float64)
    if shape == "record":
        positions, uniques = _distinct(frame[roles["outcome"]])
        outcome = _map_distinct(positions, uniques, _parse_outcome)
        rejections.add(outcome < 0, _R_OUTCOME, _raw_getter(positions, uniques))
        return outcome, np.ones(n, dtype=np.int64), nothing
    if shape == "values":
        positions, uniques = _distinct(frame[roles["value"]])
        parsed = [_parse_value(u) for u in uniques]
        value = np.array([np.nan if p is None else p for p in parsed] or [np.nan], dtype=np.float64)[
            positions
        ]
        rejections.add(np.isnan(value), _R_VALUE, _raw_getter(positions, uniques))
        return np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64), value
    num_positions, num_uniques = _distinct(frame[roles["numerator"]])
    den_positions, den_uniques = _distinct(frame[roles["denominator"]])
    numerator = _map_distinct(num_positions, num_uniques, _parse_count)
    denominator = _map_distinct(den_positions, den_uniques, _parse_count)
    rejections.add(numerator < 0, _R_NUMERATOR, _raw_getter(num_positions, num_uniques))
    rejections.add(denominator < 0, _R_DENOMINATOR, _raw_getter(den_positions, den_uniques))
    rejections.add(
        numerator > denominator, _R_OVER, lambda rows: [f"{numerator[r]} > {denominator[r]}" for r in rows]
    )
    return numerator, denominator, nothing


def _aggregate(
    period_ids: np.ndarray[Any, np.dtype[np.int64]],
    period_starts: list[date],
    groups: np.ndarray[Any, np.dtype[np.int64]],
    numerator: np.ndarray[Any, np.dtype[np.int64]],
    denominator: np.ndarray[Any, np.dtype[np.int64]],
    value: np.ndarray[Any, np.dtype[np.float64]],
    shape: Shape,
    notes: list[str],
) -> pd.DataFrame:
    """Sum rows into one row per (period, group), in period then NHS order."""
    width = len(ethnicity.CODES)
    key = period_ids * width + groups
    bins = len(period_starts) * width
    # bincount over a dense (period, group) key is a groupby without the sort or hashing.
    rows = np.bincount(key, minlength=bins)
    present = np.flatnonzero(rows)
    summed = {
        name: np.bincount(key, weights=weights, minlength=bins)[present]
        for name, weights in (("numerator", numerator), ("denominator", denominator), ("value", value))
    }
    if shape == "values":
        repeated = int((rows > 1).sum())
        if repeated:
            notes.append(
                f"{repeated} period and group pairs appeared more than once; their values were added together"
            )
    counts_known = shape != "values"
    tidy = pd.DataFrame(
        {
            "period": [period_starts[i] for i in (present // width).tolist()],
            "group": [ethnicity.CODES[i] for i in (present % width).tolist()],
            "numerator": summed["numerator"].round().astype(np.int64) if counts_known else pd.NA,
            "denominator": summed["denominator"].round().astype(np.int64) if counts_known else pd.NA,
            "value": np.nan if counts_known else summed["value"],
        },
        index=pd.RangeIndex(len(present)),
    )
    return _typed(tidy)


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.astype(
        {"period": object, "group": object, "numerator": "Int64", "denominator": "Int64", "value": "Float64"}
    ).reset_index(drop=True)
