"""Reporting periods: what each one is called, where it starts, and which one a set of dates has.

Period codes: "day", "week" (ISO weeks, starting Monday), "month", "quarter" (calendar: Q1 = Jan-Mar),
"fy_quarter" (NHS financial year, April to March: 2024/25 Q1 = Apr-Jun 2024), "year" (calendar) and
"fy_year" (NHS financial year 2024/25 = Apr 2024 to Mar 2025). Calendar and financial-year quarters start
on the same months (Jan, Apr, Jul, Oct), so they group the same days; they differ only in how they are named.
A measure stores "quarter" or "year" with its quarter basis ("financial" or "calendar"); `effective` turns
the pair into one of the codes above.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Literal

Period = Literal["day", "week", "month", "quarter", "fy_quarter", "year", "fy_year"]
QuarterBasis = Literal["financial", "calendar"]

PERIODS: tuple[Period, ...] = ("day", "week", "month", "quarter", "fy_quarter", "year", "fy_year")
# Coarseness rank: a period can be grouped into any period of a higher rank (weeks go to the month,
# quarter or year their week starts in).
RANK: dict[str, int] = {
    "day": 0,
    "week": 1,
    "month": 2,
    "quarter": 3,
    "fy_quarter": 3,
    "year": 4,
    "fy_year": 4,
}
# How many of each period make a month (for windows given in months).
PER_MONTH: dict[str, float] = {
    "day": 365.25 / 12,
    "week": 13 / 3,
    "month": 1.0,
    "quarter": 1 / 3,
    "fy_quarter": 1 / 3,
    "year": 1 / 12,
    "fy_year": 1 / 12,
}
# The plural noun for each period, as people say it.
NOUNS: dict[str, tuple[str, str]] = {
    "day": ("day", "days"),
    "week": ("week", "weeks"),
    "month": ("month", "months"),
    "quarter": ("quarter", "quarters"),
    "fy_quarter": ("financial-year quarter", "financial-year quarters"),
    "year": ("year", "years"),
    "fy_year": ("financial year", "financial years"),
}
ADJECTIVES: dict[str, str] = {
    "day": "daily",
    "week": "weekly",
    "month": "monthly",
    "quarter": "quarterly",
    "fy_quarter": "quarterly (financial year)",
    "year": "yearly",
    "fy_year": "yearly (financial year)",
}


def effective(period: str, basis: str | None = "financial") -> Period:
    """A stored (period, quarter basis) pair as one period code; unknown periods read as months."""
    if period in ("quarter", "fy_quarter"):
        return "quarter" if basis == "calendar" else "fy_quarter"
    if period in ("year", "fy_year"):
        return "year" if basis == "calendar" else "fy_year"
    for code in PERIODS:
        if code == period:
            return code
    return "month"


def stored(period: str) -> tuple[str, QuarterBasis | None]:
    """The inverse of `effective`: the measure's period column and, for quarters and years, its basis."""
    if period == "fy_quarter":
        return "quarter", "financial"
    if period == "fy_year":
        return "year", "financial"
    if period in ("quarter", "year"):
        return period, "calendar"
    return period, None


def start(d: date, period: str) -> date:
    """First day of the period containing d."""
    if isinstance(d, datetime):
        d = d.date()
    if period == "day":
        return d
    if period == "week":
        return d - timedelta(days=d.weekday())
    if period == "month":
        return d.replace(day=1)
    if period in ("quarter", "fy_quarter"):
        return date(d.year, 3 * ((d.month - 1) // 3) + 1, 1)
    if period == "year":
        return date(d.year, 1, 1)
    if period == "fy_year":
        return date(d.year if d.month >= 4 else d.year - 1, 4, 1)
    raise ValueError(f"unknown period {period!r}")


def step(d: date, period: str, n: int = 1) -> date:
    """The start of the period n periods after the one starting at d."""
    if period == "day":
        return d + timedelta(days=n)
    if period == "week":
        return d + timedelta(days=7 * n)
    months = {"month": 1, "quarter": 3, "fy_quarter": 3, "year": 12, "fy_year": 12}[period] * n
    index = d.year * 12 + d.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def fy_of(d: date) -> int:
    """The calendar year the NHS financial year containing d starts in (2024 for 2024/25)."""
    return d.year if d.month >= 4 else d.year - 1


def fy_text(first_year: int) -> str:
    """'2024/25'."""
    return f"{first_year}/{(first_year + 1) % 100:02d}"


def fy_quarter_of(d: date) -> tuple[int, int]:
    """(financial year's first year, quarter 1-4): Apr-Jun is Q1."""
    return fy_of(d), ((d.month - 4) % 12) // 3 + 1


def label(d: date, period: str) -> str:
    """How a period reads: '3 Apr 2024', 'w/c 1 Apr 2024', 'Apr 2024', '2024 Q2', '2024/25 Q1', '2024', '2024/25'."""
    if period == "day":
        return f"{d.day} {d:%b %Y}"
    if period == "week":
        return f"w/c {d.day} {d:%b %Y}"
    if period == "quarter":
        return f"{d.year} Q{(d.month - 1) // 3 + 1}"
    if period == "fy_quarter":
        year, quarter = fy_quarter_of(d)
        return f"{fy_text(year)} Q{quarter}"
    if period == "year":
        return str(d.year)
    if period == "fy_year":
        return fy_text(fy_of(d))
    return f"{d:%b %Y}"


def short_label(d: date, period: str) -> str:
    """A tick label: '3 Apr', '1 Apr', 'Apr 24', '24 Q2', '24/25 Q1', '2024', '24/25'."""
    if period in ("day", "week"):
        return f"{d.day} {d:%b}"
    if period == "month":
        return f"{d:%b %y}"
    if period == "quarter":
        return f"{d:%y} Q{(d.month - 1) // 3 + 1}"
    if period == "fy_quarter":
        year, quarter = fy_quarter_of(d)
        return f"{fy_text(year)[2:]} Q{quarter}"
    if period == "fy_year":
        return fy_text(fy_of(d))[2:]
    return str(d.year)


def noun(period: str, n: int = 1) -> str:
    single, plural = NOUNS.get(period, ("period", "periods"))
    return single if n == 1 else plural


def grouping_note(source: str, target: str, *, averaged: bool) -> str:
    """The sentence that says periods were merged, e.g. 'Daily values were grouped into months for the chart'."""
    what = ADJECTIVES.get(source, source).split(" ")[0].capitalize()
    into = noun(target, 2)
    # A week can straddle two months: say where it went.
    where = f" (each week counts in the {noun(target)} it starts in)" if source == "week" else ""
    if averaged:
        return (
            f"{what} values were averaged into one mean per {noun(target)} for the chart{where}, so it "
            f"shows means, not single {noun(source, 2)}"
        )
    return f"{what} values were grouped into {into} for the chart{where}"


def members(target_start: date, native: str, target: str) -> list[date]:
    """The starts of the `native` periods that fall in the `target` period starting at target_start (a week
    belongs to the period it starts in)."""
    current = start(target_start, native)
    if start(current, target) != target_start:
        current = step(current, native)
    out = []
    while start(current, target) == target_start:
        out.append(current)
        current = step(current, native)
    return out


def partial_periods(native_starts: Sequence[date], native: str, target: str) -> dict[date, str]:
    """First or last longer periods the data cover only in part, each with its sentence:
    {1 Sep 2025: 'Sep 2025 has only 28 of its 30 days in the data'}."""
    if not native_starts or RANK[native] >= RANK[target]:
        return {}
    present = set(native_starts)
    out = {}
    for target_start in sorted({start(min(native_starts), target), start(max(native_starts), target)}):
        expected = members(target_start, native, target)
        have = sum(1 for d in expected if d in present)
        if have < len(expected):
            out[target_start] = (
                f"{label(target_start, target)} has only {have} of its {len(expected)} "
                f"{noun(native, len(expected))} in the data"
            )
    return out


def infer(dates: Iterable[date]) -> Period | None:
    """The period a set of period-start dates has, or None with fewer than two distinct dates.

    Weekly: every date on the same weekday, steps of whole weeks. Monthly and coarser: every date on the 1st
    (or every date the last day of its month, or the same day of each month, at least four weeks apart);
    quarterly when every date starts a quarter (Jan, Apr, Jul, Oct) and the steps are whole quarters; yearly
    when every date falls on the same month (January: calendar years; April: financial years). Anything else
    is daily. Quarterly dates alone cannot tell calendar from financial quarters: "fy_quarter" (the NHS
    convention) is returned, and labels such as "2024 Q2" decide otherwise.
    """
    distinct = sorted(set(dates))
    if len(distinct) < 2:
        return None
    steps = [(b - a).days for a, b in zip(distinct, distinct[1:], strict=False)]
    month_ends = all((d + timedelta(days=1)).day == 1 for d in distinct)
    if (
        month_ends
        and min(steps) >= 365
        and len({d.month for d in distinct}) == 1
        and distinct[0].month in (3, 12)
    ):
        return "fy_year" if distinct[0].month == 3 else "year"  # 31 March or 31 December each year
    if month_ends and min(steps) >= 89 and all(d.month % 3 == 0 for d in distinct):
        return "fy_quarter"  # 31 Mar, 30 Jun, 30 Sep, 31 Dec: quarter ends
    if min(steps) >= 28 and (month_ends or len({d.day for d in distinct}) == 1):
        # Month-end dates (31 Mar, 30 Jun) or the same day each month stand for their month.
        firsts = [d.replace(day=1) for d in distinct]
        if len(set(firsts)) == len(firsts):
            distinct = firsts
    if all(d.day == 1 for d in distinct):
        months = [d.year * 12 + d.month - 1 for d in distinct]
        gaps = [b - a for a, b in zip(months, months[1:], strict=False)]
        if len({d.month for d in distinct}) == 1 and all(g % 12 == 0 for g in gaps):
            if distinct[0].month == 1:
                return "year"
            if distinct[0].month == 4:
                return "fy_year"
        if all(d.month in (1, 4, 7, 10) for d in distinct) and all(g % 3 == 0 for g in gaps):
            return "fy_quarter"
        if min(steps) >= 28:
            return "month"
    if len({d.weekday() for d in distinct}) == 1 and all(s % 7 == 0 for s in steps):
        return "week"
    return "day"


def finest(periods: Sequence[str]) -> str | None:
    return min(periods, key=lambda p: RANK[p]) if periods else None


def coarsest(periods: Sequence[str]) -> str | None:
    return max(periods, key=lambda p: RANK[p]) if periods else None
