"""Missing-ethnicity summaries and plain-language data-quality warnings for one measure.

Input is a tidy frame with columns ``period`` (date), ``group`` (code), ``numerator`` and
``denominator`` (ints): one measure, every group including "Z" and "99". Rows with group "ALL"
are ignored so a total row cannot be double counted.

Definitions (equity-stats.md section 1.3):
- Valid completeness = records with a national category A-S / all records.
- Asked = (A-S + Z) / all records.
- Not stated (Z): the person was asked and chose not to say. This is about trust and how the
  question is asked, not something to push people on.
- Not known (99): never asked or not recorded. A recording-process gap a team can fix.

Completeness tiers (``Tiers``). These are our design proposal, configurable per project, not a
national standard; there is no single national "acceptable % unknown" for ethnicity:
- valid A-S >= 95%: OK, footnote only (``COMPLETENESS_OK``, info);
- 90% to under 95%: caution (``COMPLETENESS_CAUTION``);
- 80% to under 90%: warning, show bounds (``COMPLETENESS_LOW``);
- under 80%: critical, do not headline disparity estimates (``COMPLETENESS_CRITICAL``).

Sources the messages cite: Nuffield Trust for the NHS Race and Health Observatory (June 2021)
found 13% of inpatients and 17% of outpatients in 2019/20 had no known, stated ethnicity, with
"Other" categories over-used; ONS (2023) found agreement with the census below 26% for "Any other
ethnic group" and below 20% for "Any other Black background". Also warned, whatever the tier: a
missing share that shifts by more than 2 percentage points between the periods compared
(``MISSINGNESS_SHIFT``), an outcome rate among missing records that differs from the rest
(``MISSING_OUTCOME_DIFFERS``, Pearson chi-square without continuity correction, p < 0.05),
best/worst-case bounds that could reverse a comparison (``MISSING_COULD_CHANGE_CONCLUSION``),
groups that stopped appearing (``GROUP_ABSENT_RECENTLY``), too little data to detect the target
gap with 80% power (``UNDERPOWERED``), a measure not updated (``STALE_MEASURE``) and inflated
"Any other ..." codes (``OTHER_CATEGORIES_INFLATED``). Blank is unknown, not zero: a period with no Not
stated (Z) or no Not known (99) row has unknown completeness (``COMPLETENESS_UNKNOWN``) and is left out of the
completeness figures and the shift.

Every message is disclosure-safe: it uses shares and rates, never prints a count below the
disclosure threshold, and shows other counts only rounded through ``disclosure.cell``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Literal, cast

import pandas as pd
from scipy.stats import chi2_contingency
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize

from bot.core import ethnicity
from bot.core import periods as period_kinds
from bot.core.equity.disclosure import DEFAULT_POLICY, DisclosurePolicy, cell
from bot.core.equity.types import Direction, Severity, Warning
from bot.core.equity.wording import prose_name

PeriodKind = Literal["day", "week", "month", "quarter", "fy_quarter", "year", "fy_year"]

NATIONAL_CODES: tuple[str, ...] = tuple("ABCDEFGHJKLMNPRS")
NOT_STATED = "Z"
NOT_KNOWN = "99"
OTHER_CODES: tuple[str, ...] = ("G", "L", "P", "S")  # the "Any other ..." categories

SOURCE_RHO = "NHS RHO/Nuffield Trust 2021 found 13–17% of hospital records lacked a known, stated ethnicity"
Z_VS_99 = (
    "Not stated (Z) means people were asked and chose not to say: this is about trust and how the "
    "question is asked, not something to push people on. Not known (99) means they were never asked "
    "or it was not recorded: a recording-process gap you can fix."
)

_SEVERITY_RANK: dict[Severity, int] = {"critical": 0, "warning": 1, "caution": 2, "info": 3}
_PERIOD_WORD: dict[PeriodKind, str] = {
    "day": "day",
    "week": "week",
    "month": "month",
    "quarter": "quarter",
    "fy_quarter": "quarter",
    "year": "year",
    "fy_year": "financial year",
}
_MONTHS_PER: dict[PeriodKind, float] = {
    "day": 12 / 365.25,
    "week": 12 / 52,
    "month": 1.0,
    "quarter": 3.0,
    "fy_quarter": 3.0,
    "year": 12.0,
    "fy_year": 12.0,
}
MAX_POOL_MONTHS = 36  # pooling more than three years of data to see a gap is not a plan


@dataclass(frozen=True)
class Tiers:
    """Thresholds for the warnings: a design proposal, set per project (fractions, not percentages)."""

    ok: float = 0.95
    caution: float = 0.90
    warning: float = 0.80  # below this: critical
    shift: float = 0.02  # missing share change between windows
    alpha: float = 0.05
    power: float = 0.80
    stale_after: int = 2  # complete periods with no data before STALE_MEASURE
    recent_periods: int = 3  # for GROUP_ABSENT_RECENTLY
    other_share: float = 0.10  # "Any other ..." share of valid records


@dataclass
class PeriodMissing:
    period: date
    not_stated_share: float | None
    not_known_share: float | None
    valid_share: float | None
    denominator: int  # raw: for charts through disclosure control, never to post as is


@dataclass
class MissingSummary:
    """Shares over the periods whose completeness is known; `unknown_periods` are those where Not stated (Z)
    or Not known (99) was not entered (blank is unknown, not zero): their shares are None."""

    not_stated_share: float | None
    not_known_share: float | None
    valid_share: float | None
    asked_share: float | None
    by_period: list[PeriodMissing] = field(default_factory=list)
    unknown_periods: list[date] = field(default_factory=list)


@dataclass(frozen=True)
class _Row:
    period: date
    group: str
    numerator: int
    denominator: int


@dataclass
class _Tally:
    numerator: int = 0
    denominator: int = 0

    def add(self, row: _Row) -> None:
        self.numerator += row.numerator
        self.denominator += row.denominator

    @property
    def rate(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None


def _kind(code: str) -> str:
    if code == NOT_STATED:
        return "not_stated"
    if code == NOT_KNOWN:
        return "not_known"
    return "valid"


def _to_date(value: object) -> date:
    stamp = pd.Timestamp(cast(str, value))
    return date(stamp.year, stamp.month, stamp.day)


def _rows(frame: pd.DataFrame) -> list[_Row]:
    missing = {"period", "group", "numerator", "denominator"} - set(frame.columns)
    if missing:
        raise ValueError(f"frame is missing columns: {sorted(missing)}")
    rows: list[_Row] = []
    for period, group, numerator, denominator in zip(
        frame["period"], frame["group"], frame["numerator"], frame["denominator"], strict=True
    ):
        code = str(group)
        if code == "ALL":
            continue
        rows.append(_Row(_to_date(period), code, int(numerator), int(denominator)))
    return rows


def _tally(rows: Iterable[_Row], keep: Callable[[_Row], bool] = lambda r: True) -> _Tally:
    t = _Tally()
    for r in rows:
        if keep(r):
            t.add(r)
    return t


def _group(rows: Iterable[_Row], code: str) -> _Tally:
    return _tally(rows, lambda r: r.group == code)


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def summarise_missing(frame: pd.DataFrame) -> MissingSummary:
    """Shares of records (denominators): Not stated, Not known, valid A-S and asked, overall and per period."""
    rows = _rows(frame)
    return _summarise(rows)


def unknown_periods(rows: Sequence[_Row]) -> list[date]:
    """Periods with data but no Not stated (Z) or no Not known (99) row: a box left blank, so how complete
    ethnicity recording was is not known (a row of 0 says there were none; a missing row says nothing)."""
    entered: dict[date, set[str]] = {}
    for r in rows:
        entered.setdefault(r.period, set()).add(r.group)
    return sorted(p for p, groups in entered.items() if not {NOT_STATED, NOT_KNOWN} <= groups)


def _known(rows: Sequence[_Row]) -> list[_Row]:
    unknown = set(unknown_periods(rows))
    return [r for r in rows if r.period not in unknown]


def _summarise(rows: Sequence[_Row]) -> MissingSummary:
    def shares(subset: Sequence[_Row]) -> tuple[float | None, float | None, float | None, int]:
        total = sum(r.denominator for r in subset)
        z = sum(r.denominator for r in subset if r.group == NOT_STATED)
        nk = sum(r.denominator for r in subset if r.group == NOT_KNOWN)
        return _share(z, total), _share(nk, total), _share(total - z - nk, total), total

    unknown = unknown_periods(rows)
    z_share, nk_share, valid_share, _ = shares(_known(rows))
    by_period = []
    for period in sorted({r.period for r in rows}):
        in_period = [r for r in rows if r.period == period]
        if period in unknown:
            by_period.append(PeriodMissing(period, None, None, None, sum(r.denominator for r in in_period)))
            continue
        pz, pnk, pvalid, pden = shares(in_period)
        by_period.append(PeriodMissing(period, pz, pnk, pvalid, pden))
    asked = None if valid_share is None or z_share is None else valid_share + z_share
    return MissingSummary(z_share, nk_share, valid_share, asked, by_period, unknown)


def _label(code: str) -> str:
    """NHS label with code; the two missing codes spelt out if the coding does not know them."""
    try:
        return ethnicity.display(code)
    except ValueError:
        return {NOT_STATED: "Not stated (Z)", NOT_KNOWN: "Not known (99)"}.get(code, f"group {code}")


def _pct(value: float) -> str:
    return f"{value:.1%}"


def _share_text(part: int, whole: int, policy: DisclosurePolicy) -> str:
    """A share of records, or "fewer than 8 records" when the part itself is a small count."""
    if whole == 0:
        return "no records"
    if 0 < part < policy.threshold:
        return f"fewer than {policy.threshold} records"
    return _pct(part / whole)


def _rate_text(t: _Tally, policy: DisclosurePolicy) -> str | None:
    """A rate from unrounded counts, withheld below the threshold (the dashboard rule)."""
    if t.numerator < policy.threshold or t.denominator < policy.threshold:
        return None
    return _pct(t.numerator / t.denominator)


def _p_text(p_value: float) -> str:
    return "p < 0.0001" if p_value < 0.0001 else f"p = {p_value:.2g}"


def _count_text(value: float, policy: DisclosurePolicy) -> str:
    shown = cell(round(value), policy).shown
    return f"{int(shown):,}" if shown.isdigit() else shown


def _join(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _period_index(d: date, period: PeriodKind) -> int:
    if period == "day":
        return d.toordinal()
    if period == "month":
        return d.year * 12 + d.month - 1
    if period in ("quarter", "fy_quarter"):
        return d.year * 4 + (d.month - 1) // 3
    if period in ("year", "fy_year"):
        return period_kinds.fy_of(d) if period == "fy_year" else d.year
    return (d - date(1970, 1, 5)).days // 7  # weeks start on Monday; 5 Jan 1970 was one


def _period_label(d: date, period: PeriodKind) -> str:
    if period == "month":
        return d.strftime("%B %Y")
    if period == "quarter":
        return f"{d.year} Q{(d.month - 1) // 3 + 1}"
    if period != "week":
        return period_kinds.label(d, period)
    return f"the week of {d.day} {d.strftime('%b %Y')}"


def _window_label(window: tuple[date, date]) -> str:
    start, end = window
    return f"{start.day} {start.strftime('%b %Y')} to {end.day} {end.strftime('%b %Y')}"


def _periods_text(periods: Sequence[date], period: PeriodKind) -> str:
    if len(periods) > 3:
        return (
            f"{len(periods)} {_PERIOD_WORD[period]}s, from {_period_label(periods[0], period)} to "
            f"{_period_label(periods[-1], period)}"
        )
    return _join([_period_label(p, period) for p in periods])


def _unknown_completeness(rows: Sequence[_Row], period: PeriodKind) -> list[Warning]:
    unknown = unknown_periods(rows)
    if not unknown:
        return []
    every = len(unknown) == len({r.period for r in rows})
    scope = "any period" if every else _periods_text(unknown, period)
    rest = "" if every else " The completeness figures here cover only the other periods."
    message = (
        f"Completeness unknown: Not stated (Z) or Not known (99) was left blank for {scope}, so we cannot say "
        f"how many records lack a recorded ethnicity there. Blank means not entered, not zero.{rest} Enter the "
        "Not stated and Not known figures with `/measure log` (a zero if there were none)."
    )
    return [Warning("COMPLETENESS_UNKNOWN", "warning", message)]


def _completeness(rows: Sequence[_Row], tiers: Tiers, policy: DisclosurePolicy) -> list[Warning]:
    rows = _known(rows)
    total = sum(r.denominator for r in rows)
    if total == 0:
        return []
    z = sum(r.denominator for r in rows if r.group == NOT_STATED)
    nk = sum(r.denominator for r in rows if r.group == NOT_KNOWN)
    valid = (total - z - nk) / total
    asked = (total - nk) / total
    figures = (
        f"Ethnicity was recorded in a national category (A–S) for {_pct(valid)} of records "
        f"({_pct(asked)} were asked, counting those who chose not to say). "
        f"Not stated (Z): {_share_text(z, total, policy)}. Not known (99): {_share_text(nk, total, policy)}."
    )
    tier_note = (
        f"Our thresholds, a project setting rather than a national standard: {tiers.ok:.0%} or more is OK, "
        f"{tiers.caution:.0%} to {tiers.ok:.0%} calls for caution, {tiers.warning:.0%} to {tiers.caution:.0%} "
        f"needs best- and worst-case bounds, and under {tiers.warning:.0%} we do not headline group comparisons."
    )
    if valid >= tiers.ok:
        return [Warning("COMPLETENESS_OK", "info", f"{figures} That meets our threshold of {tiers.ok:.0%}.")]
    severity: Severity
    if valid >= tiers.caution:
        code, severity = "COMPLETENESS_CAUTION", "caution"
        advice = "Read the group comparisons with some care: a few groups may be under-counted."
    elif valid >= tiers.warning:
        code, severity = "COMPLETENESS_LOW", "warning"
        advice = (
            "Group rates could be noticeably off. Check the best- and worst-case bounds before drawing "
            "conclusions, and make recording ethnicity part of the change you are testing."
        )
    else:
        code, severity = "COMPLETENESS_CRITICAL", "critical"
        advice = (
            "Too many records are missing ethnicity to headline differences between groups. Show the "
            "bounds and the data-quality chart instead, and work first on the Not known share."
        )
    message = f"{figures} {advice} {Z_VS_99} For context, {SOURCE_RHO}. {tier_note}"
    short = f"Ethnicity is recorded for {_pct(valid)} of records; Not known (99) is {_share_text(nk, total, policy)}."
    return [Warning(code, severity, message, short=short)]


def _in_window(d: date, window: tuple[date, date]) -> bool:
    return window[0] <= d <= window[1]


def _shift(
    rows: Sequence[_Row],
    baseline: tuple[date, date] | None,
    recent: tuple[date, date] | None,
    tiers: Tiers,
    policy: DisclosurePolicy,
) -> list[Warning]:
    if baseline is not None and recent is not None:
        before = [r for r in rows if _in_window(r.period, baseline)]
        after = [r for r in rows if _in_window(r.period, recent)]
        names = (f"the baseline ({_window_label(baseline)})", f"the recent window ({_window_label(recent)})")
    else:
        periods = sorted({r.period for r in rows})
        third = len(periods) // 3
        if third == 0:
            return []
        first, last = set(periods[:third]), set(periods[-third:])
        before = [r for r in rows if r.period in first]
        after = [r for r in rows if r.period in last]
        names = ("the first third of the periods", "the last third")

    def parts(subset: Sequence[_Row]) -> tuple[int, int, int]:
        total = sum(r.denominator for r in subset)
        z = sum(r.denominator for r in subset if r.group == NOT_STATED)
        nk = sum(r.denominator for r in subset if r.group == NOT_KNOWN)
        return total, z, nk

    b_total, b_z, b_nk = parts(before)
    a_total, a_z, a_nk = parts(after)
    if b_total == 0 or a_total == 0:
        return []
    b_missing = (b_z + b_nk) / b_total
    a_missing = (a_z + a_nk) / a_total
    change = a_missing - b_missing
    if abs(change) <= tiers.shift:
        return []
    direction = "rose" if change > 0 else "fell"
    message = (
        f"The share of records with missing ethnicity {direction} from {_share_text(b_z + b_nk, b_total, policy)} "
        f"in {names[0]} to {_share_text(a_z + a_nk, a_total, policy)} in {names[1]}, a change of "
        f"{abs(change) * 100:.1f} percentage points (our threshold is {tiers.shift * 100:.0f}). "
        f"Not stated (Z) went from {_share_text(b_z, b_total, policy)} to {_share_text(a_z, a_total, policy)}; "
        f"Not known (99) from {_share_text(b_nk, b_total, policy)} to {_share_text(a_nk, a_total, policy)}. "
        "When the mix of who gets recorded changes, group rates can seem to improve or worsen when "
        "nothing real has changed. Check whether recording practice changed (a new form, system or team) "
        "before reading a trend in the gap."
    )
    short = (
        f"The share of records missing ethnicity {direction} by {abs(change) * 100:.1f} percentage points, "
        "which can fake a change in the gap."
    )
    return [Warning("MISSINGNESS_SHIFT", "warning", message, short=short)]


def _outcome_differs(rows: Sequence[_Row], tiers: Tiers, policy: DisclosurePolicy) -> list[Warning]:
    missing = _tally(rows, lambda r: r.group in (NOT_STATED, NOT_KNOWN))
    known = _tally(rows, lambda r: r.group not in (NOT_STATED, NOT_KNOWN))
    events = missing.numerator + known.numerator
    records = missing.denominator + known.denominator
    if missing.denominator == 0 or known.denominator == 0 or events == 0 or events == records:
        return []
    table = [
        [missing.numerator, missing.denominator - missing.numerator],
        [known.numerator, known.denominator - known.numerator],
    ]
    p_value = float(chi2_contingency(table, correction=False)[1])
    if p_value >= tiers.alpha:
        return []
    z = _tally(rows, lambda r: r.group == NOT_STATED)
    nk = _tally(rows, lambda r: r.group == NOT_KNOWN)
    which = " or ".join(
        name for name, t in (("Not stated (Z)", z), ("Not known (99)", nk)) if t.denominator > 0
    )
    missing_rate = _rate_text(missing, policy) or f"not shown (fewer than {policy.threshold} events)"
    known_rate = _rate_text(known, policy) or f"not shown (fewer than {policy.threshold} events)"
    split = [
        f"{name}: {text}"
        for name, t in (("Not stated (Z)", z), ("Not known (99)", nk))
        if t.denominator > 0 and (text := _rate_text(t, policy)) is not None
    ]
    split_text = f" Separately, {'; '.join(split)}." if len(split) == 2 else ""
    message = (
        f"The outcome rate among records with missing ethnicity ({which}) is {missing_rate}, compared with "
        f"{known_rate} among records with a recorded ethnicity ({_p_text(p_value)}, chi-square test: a "
        f"difference this large would be unlikely by chance alone).{split_text} So the records with missing "
        "ethnicity are not a random sample, and the group rates may be biased. Look at the best- and "
        "worst-case bounds, and prioritise recording ethnicity for the people this measure counts."
    )
    short = (
        f"Records without ethnicity have a different outcome rate ({missing_rate} against {known_rate}), "
        "so group rates may be biased."
    )
    return [Warning("MISSING_OUTCOME_DIFFERS", "warning", message, short=short)]


def _focus(rows: Sequence[_Row], focus_groups: Sequence[str], reference: str) -> list[str]:
    if focus_groups:
        return [g for g in focus_groups if g not in (reference, NOT_STATED, NOT_KNOWN)]
    present = {r.group for r in rows if r.denominator > 0}
    return [c for c in NATIONAL_CODES if c in present and c != reference]


def _bounds(
    rows: Sequence[_Row],
    focus: Sequence[str],
    reference: str,
    direction: Direction,
    policy: DisclosurePolicy,
) -> list[Warning]:
    missing = _tally(rows, lambda r: r.group in (NOT_STATED, NOT_KNOWN))
    ref = _group(rows, reference)
    ref_rate = ref.rate
    if missing.denominator == 0 or ref_rate is None:
        return []
    lines: list[str] = []
    for code in focus:
        g = _group(rows, code)
        if g.denominator == 0:
            continue
        # Manski bounds: every missing record with the outcome joins the group (highest), or only
        # missing records without it do (lowest).
        low = g.numerator / (g.denominator + missing.denominator - missing.numerator)
        high = (g.numerator + missing.numerator) / (g.denominator + missing.numerator)
        if not low < ref_rate < high:
            continue
        if g.numerator >= policy.threshold:
            if direction == "lower":
                span = f"between {_pct(low)} (best case) and {_pct(high)} (worst case)"
            elif direction == "higher":
                span = f"between {_pct(low)} (worst case) and {_pct(high)} (best case)"
            else:
                span = f"anywhere between {_pct(low)} and {_pct(high)}"
            lines.append(f"{_label(code)}: its rate could be {span}.")
        else:
            lines.append(
                f"{_label(code)}: its numbers are too small to show rates safely, but the missing records "
                "are enough to put it above or below the reference."
            )
    if not lines:
        return []
    ref_text = _rate_text(ref, policy)
    ref_phrase = (
        f"the {_label(reference)} rate of {ref_text}" if ref_text else f"the {_label(reference)} rate"
    )
    message = (
        "Records with missing ethnicity could change the conclusion. If every missing record with the "
        "outcome belonged to a group, and if none did, these groups' rates would fall on either side of "
        f"{ref_phrase}:\n"
        + "\n".join(f"• {line}" for line in lines)
        + "\nSo we cannot say which way the gap "
        "goes until more records have a recorded ethnicity. Share the bounds, not just the point estimates."
    )
    short = "Records without ethnicity are enough to reverse a gap: share the bounds, not just the rates."
    return [Warning("MISSING_COULD_CHANGE_CONCLUSION", "warning", message, short=short)]


def _absent(
    rows: Sequence[_Row], focus_groups: Sequence[str], period: PeriodKind, tiers: Tiers
) -> list[Warning]:
    periods = sorted({r.period for r in rows})
    if len(periods) <= tiers.recent_periods:
        return []
    recent = set(periods[-tiers.recent_periods :])
    earlier_groups = {r.group for r in rows if r.period not in recent and r.denominator > 0}
    recent_groups = {r.group for r in rows if r.period in recent and r.denominator > 0}
    candidates = list(dict.fromkeys([*focus_groups, *NATIONAL_CODES]))
    gone = [
        c
        for c in candidates
        if c in earlier_groups and c not in recent_groups and c not in (NOT_STATED, NOT_KNOWN)
    ]
    if not gone:
        return []
    severity: Severity = "warning" if any(c in focus_groups for c in gone) else "caution"
    names = _join([_label(c) for c in gone])
    word = _PERIOD_WORD[period]
    message = (
        f"Who is missing: no records for {names} in the last {tiers.recent_periods} {word}s, although there "
        "were records before. Check whether these people stopped using the service, are being recorded as "
        "Not known or Not stated, or whether a system or form change dropped the category. A group that "
        "disappears from the data can make a gap look closed when it is not."
    )
    short = (
        f"No records for {_join([prose_name(c) for c in gone])} in the last {tiers.recent_periods} {word}s: "
        "a gap can look closed when it is not."
    )
    return [Warning("GROUP_ABSENT_RECENTLY", severity, message, short=short)]


def _underpowered(
    rows: Sequence[_Row],
    focus: Sequence[str],
    reference: str,
    direction: Direction,
    target_gap: float | None,
    period: PeriodKind,
    tiers: Tiers,
    policy: DisclosurePolicy,
) -> list[Warning]:
    n_periods = len({r.period for r in rows})
    ref = _group(rows, reference)
    if n_periods == 0 or ref.rate is None:
        return []
    p_ref = ref.rate
    n_ref = ref.denominator / n_periods
    word = _PERIOD_WORD[period]
    lines: list[str] = []
    for code in focus:
        g = _group(rows, code)
        if g.denominator == 0 or g.rate is None:
            continue
        if target_gap is not None:
            sign = -1.0 if direction == "higher" else 1.0
            p_g = min(max(p_ref + sign * target_gap, 0.001), 0.999)
            gap_text = f"your target gap of {target_gap * 100:.1f} percentage points"
        else:
            p_g = g.rate
            if p_g == p_ref:
                continue
            gap_text = (
                f"the gap seen so far ({abs(p_g - p_ref) * 100:.1f} percentage points)"
                if g.numerator >= policy.threshold and ref.numerator >= policy.threshold
                else "the gap seen so far"
            )
        effect = abs(float(proportion_effectsize(p_g, p_ref)))
        if effect == 0:
            continue
        n_g = g.denominator / n_periods
        ratio = n_ref / n_g
        analysis = NormalIndPower()
        power = float(analysis.power(effect_size=effect, nobs1=n_g, alpha=tiers.alpha, ratio=ratio))
        if power >= tiers.power:
            continue
        line = (
            f"{_label(code)}: about {_count_text(n_g, policy)} records per {word} (against "
            f"{_count_text(n_ref, policy)} for {_label(reference)}) gives a power of {power:.0%} for "
            f"detecting {gap_text} in one {word}."
        )
        needed = float(
            analysis.solve_power(
                effect_size=effect, nobs1=None, alpha=tiers.alpha, power=tiers.power, ratio=ratio
            )
        )
        if math.isfinite(needed) and needed > 0:
            needed_shown = max(5, math.ceil(needed / 5) * 5)  # a planning figure, rounded up like any count
            pooled = math.ceil(needed / n_g)
            line += f" Reaching {tiers.power:.0%} needs about {needed_shown:,} per {word} in this group"
            if pooled * _MONTHS_PER[period] > MAX_POOL_MONTHS:
                # "Pool about 1504 months" is not advice: say plainly that the comparison is not feasible.
                line += (
                    f", which would take more than {MAX_POOL_MONTHS // 12} years of data at this unit's "
                    "size: this comparison is not feasible here. Compare high-level groups or a "
                    "regional dataset instead."
                )
            else:
                line += (
                    f", with the reference growing in step; pooling about {pooled} {word}s together would "
                    "get there."
                )
        lines.append(line)
    if not lines:
        return []
    message = (
        "Too little data to reliably detect a gap of the size that matters. Power is the chance of "
        f"spotting a real gap of that size (we aim for {tiers.power:.0%}, testing at the {tiers.alpha:.0%} level):\n"
        + "\n".join(f"• {line}" for line in lines)
        + "\nSo 'no significant difference' here does not mean 'no gap'. Use longer periods or the "
        "high-level groups for comparisons, and keep the run chart for spotting change over time."
    )
    return [Warning("UNDERPOWERED", "caution", message)]


def _stale(rows: Sequence[_Row], today: date, period: PeriodKind, tiers: Tiers) -> list[Warning]:
    word = _PERIOD_WORD[period]
    how = "Log the latest figures in the bot, or import the latest extract as a CSV, so the analysis stays current."
    if not rows:
        return [Warning("STALE_MEASURE", "warning", f"This measure has no data yet. {how}")]
    last = max(r.period for r in rows)
    # Complete periods since the last one with data; the current period is still under way.
    missing = _period_index(today, period) - 1 - _period_index(last, period)
    # Daily figures usually arrive as a monthly extract: a month of days is not yet late.
    if missing <= (max(tiers.stale_after, 31) if period == "day" else tiers.stale_after):
        return []
    message = (
        f"This measure was last updated with data for {_period_label(last, period)}; by now we would expect "
        f"data up to the last complete {word}, and {missing} {word}s are missing. {how}"
    )
    return [Warning("STALE_MEASURE", "warning", message)]


def _other_inflated(rows: Sequence[_Row], tiers: Tiers, policy: DisclosurePolicy) -> list[Warning]:
    valid = [r for r in rows if r.group not in (NOT_STATED, NOT_KNOWN)]
    total = sum(r.denominator for r in valid)
    other = sum(r.denominator for r in valid if r.group in OTHER_CODES)
    if total == 0 or other / total <= tiers.other_share:
        return []
    message = (
        f"The 'Any other …' categories (G, L, P and S) make up {_share_text(other, total, policy)} of records "
        f"with a recorded ethnicity (our threshold is {tiers.other_share:.0%}). These codes are over-used in "
        "NHS records (Nuffield Trust/RHO 2021), and ONS (2023) found they often disagree with what people "
        "said in the census. Compare with your local census profile, and make sure staff record the specific "
        "category the person chooses."
    )
    return [Warning("OTHER_CATEGORIES_INFLATED", "caution", message)]


def missing_warnings(
    frame: pd.DataFrame,
    *,
    today: date,
    period: PeriodKind,
    focus_groups: Sequence[str] = (),
    reference: str = "A",
    direction: Direction = "lower",
    target_gap: float | None = None,
    baseline: tuple[date, date] | None = None,
    recent: tuple[date, date] | None = None,
    tiers: Tiers = Tiers(),
    policy: DisclosurePolicy = DEFAULT_POLICY,
) -> list[Warning]:
    """All data-quality warnings for one measure, most severe first.

    Args:
        focus_groups: codes the team is working on; empty means every national group but the reference.
        direction: which way is better for the measure ("lower" for PPH); labels best and worst cases.
        target_gap: the absolute gap the project wants to detect (0.03 = 3 percentage points); None
            uses the gap observed so far.
        baseline, recent: inclusive date windows being compared; without them the first and last
            thirds of the periods are compared for MISSINGNESS_SHIFT.
    """
    rows = _rows(frame)
    focus = _focus(rows, focus_groups, reference)
    warnings = [
        *_stale(rows, today, period, tiers),
        *_unknown_completeness(rows, period),
        *_completeness(rows, tiers, policy),
        *_shift(_known(rows), baseline, recent, tiers, policy),
        *_outcome_differs(rows, tiers, policy),
        *_bounds(rows, focus, reference, direction, policy),
        *_absent(rows, focus_groups, period, tiers),
        *_underpowered(rows, focus, reference, direction, target_gap, period, tiers, policy),
        *_other_inflated(rows, tiers, policy),
    ]
    return sorted(warnings, key=lambda w: _SEVERITY_RANK[w.severity])
