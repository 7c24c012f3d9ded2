"""The summary grid: measure by group, the latest value under disclosure control, the Making Data Count icons
and the gap verdict against the reference group. Pure: analyses in, plain rows out; the words come from
bot.core.equity.wording and the icon words from bot.core.charts.icons."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.core.charts.icons import MIN_ICON_POINTS, Icon, icons_for
from bot.core.equity import wording
from bot.core.equity.analysis import ChannelAnalysis, MeasureAnalysis, window_label
from bot.core.equity.disclosure import DisclosurePolicy
from bot.core.equity.types import Direction


@dataclass(frozen=True)
class SummaryCell:
    """One group on one measure, every field already safe to publish."""

    group: str  # code, e.g. "N" or "HL:Black"
    name: str  # short name for a table ("Black African")
    value: str  # "9.1%", "12.4 per 1,000", "3.2" or why it is not shown ("not shown: fewer than 8 events")
    shown: bool  # False when `value` says why there is no number
    variation: Icon | None  # None when there is no SPC chart, or its latest period is hidden
    assurance: Icon | None  # only with a target and a direction that is not neutral
    gap: (
        str  # the gap verdict against the reference in brief, "reference group", or "" when none was compared
    )
    is_reference: bool = False

    variation_note: str = ""  # why there is no variation icon: "latest period not shown", "too few points"

    @property
    def variation_words(self) -> str:
        if self.variation is not None:
            return self.variation.words
        return f"no icon: {self.variation_note or 'no SPC chart'}"

    @property
    def assurance_words(self) -> str:
        return self.assurance.words if self.assurance is not None else ""


@dataclass(frozen=True)
class SummaryRow:
    """One measure: its window and one cell per group, reference first."""

    measure: str
    window: str  # "Oct 2025 to Dec 2025" or "2025/26 Q3": the period the values cover
    kind: str
    direction: Direction
    cells: tuple[SummaryCell, ...]
    # "Shown as quarterly periods, grouped to protect confidentiality." or why gaps are not judged
    note: str = ""
    has_target: bool = False
    gap_basis: str = ""  # "Gaps: Mar 2023 to Feb 2024 against Mar 2025 to Feb 2026", the windows compared


def _shown_value(a: MeasureAnalysis, code: str, policy: DisclosurePolicy) -> tuple[str, bool]:
    if not a.is_rate:
        v = next((x for x in a.value_groups if x.code == code), None)
        if v is None or v.latest is None:
            return "no data", False
        return f"{v.latest:.3g}", True
    counts = a.window_counts.get(code)
    if counts is None or counts.denominator == 0:
        return "no records", False
    rate = wording.shown_rates(a, policy)(code, "window")
    if rate is None:
        # The same reason the channel post gives, without the counts behind it.
        if counts.denominator < policy.threshold:
            return f"not shown: fewer than {policy.threshold} records", False
        if counts.numerator == 0:
            return f"not shown: rates are shown from {policy.threshold} events", False
        return f"not shown: fewer than {policy.threshold} events", False
    return wording.pct(rate, a.kind), True


def _latest_hidden(
    ca: ChannelAnalysis | None, a: MeasureAnalysis, code: str, policy: DisclosurePolicy
) -> bool:
    result = a.spc.get(code)
    if result is None or not result.points:
        return True
    last = max(result.points, key=lambda p: p.period)
    if ca is not None and last.period in ca.suppressed_periods.get(code, set()):
        return True
    return last.numerator is not None and 0 < last.numerator < policy.threshold


def _gap_text(a: MeasureAnalysis, code: str, policy: DisclosurePolicy) -> str:
    if code == a.reference_group:
        return "reference group"
    gap = next((g for g in a.gaps if g.group == code), None)
    if gap is None:
        return ""
    name = wording.prose_names(a.labels)
    brief = wording.gap_brief(
        gap,
        name,
        since=None,
        rates=wording.gap_rates(a, gap, wording.shown_rates(a, policy)),
        kind=a.kind,
        recording_critical=a.recording_critical,
    )
    return brief[0].upper() + brief[1:]


def summarise(
    analyses: Sequence[MeasureAnalysis | ChannelAnalysis],
    *,
    policy: DisclosurePolicy,
    groups: Sequence[str] | None = None,
) -> list[SummaryRow]:
    """One row per measure with cells for the reference group and the headline groups (the project's focus
    groups, or the widest gap), or for `groups` where each measure has them.

    Values follow the channel post's display rule (rates from rounded counts, none below the threshold);
    nothing here carries a count."""
    rows: list[SummaryRow] = []
    for item in analyses:
        ca = item if isinstance(item, ChannelAnalysis) else None
        a = item.analysis if isinstance(item, ChannelAnalysis) else item
        wanted = list(groups) if groups is not None else wording.headline_groups(a)
        codes = [c for c in dict.fromkeys([a.reference_group or "", *wanted]) if c and c in a.labels]
        name = wording.prose_names(a.labels)
        cells: list[SummaryCell] = []
        for code in codes:
            value, shown = _shown_value(a, code, policy)
            result = a.spc.get(code)
            icons: list[Icon] = []
            note = "no SPC chart"
            if result is not None and result.points:
                hidden = _latest_hidden(ca, a, code, policy)
                valued = sum(1 for p in result.points if p.value is not None)
                note = (
                    f"too few points (under {MIN_ICON_POINTS})"
                    if valued < MIN_ICON_POINTS
                    else "latest period not shown"
                    if hidden
                    else ""
                )
                flags = [True] * (len(result.points) - 1) + [not hidden]
                icons = icons_for(result, direction=a.direction, target=a.target, shown=flags)
            variation = next((i for i in icons if i.kind == "variation"), None)
            assurance = next((i for i in icons if i.kind == "assurance"), None)
            cells.append(
                SummaryCell(
                    group=code,
                    name=name(code),
                    value=value,
                    shown=shown,
                    variation=variation,
                    assurance=assurance,
                    gap=_gap_text(a, code, policy),
                    is_reference=code == a.reference_group,
                    variation_note=note,
                )
            )
        notes = []
        if ca is not None and ca.grouped_note:
            notes.append(ca.grouped_note)
        if a.recording_critical:
            notes.append("Ethnicity is recorded for under 80% of records: gaps are not judged.")
        rows.append(
            SummaryRow(
                measure=a.name,
                window=window_label(a.window, a.period),
                kind=a.kind,
                direction=a.direction,
                cells=tuple(cells),
                note=" ".join(notes),
                has_target=a.target is not None,
                gap_basis=(
                    f"Gaps: {window_label(a.baseline, a.period)} against {window_label(a.recent, a.period)}"
                    if a.gaps and a.baseline is not None and a.recent is not None
                    else ""
                ),
            )
        )
    return rows


def row_text(row: SummaryRow) -> list[str]:
    """Plain sentences for one row (alt text, a screen reader, the Block Kit fallback)."""
    out = []
    for c in row.cells:
        parts = [f"{c.name}{' (reference)' if c.is_reference else ''}: {c.value}", c.variation_words.lower()]
        if c.assurance is not None:
            parts.append(c.assurance_words.lower())
        if c.gap and not c.is_reference:
            parts.append(c.gap[0].lower() + c.gap[1:])
        out.append(", ".join(parts) + ".")
    return out
