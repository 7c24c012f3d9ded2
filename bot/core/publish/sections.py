"""Build the board pack's sections from analyses: one function per section, each returning plain values
(bot.core.publish.model). Every count and rate goes through the project's disclosure policy, as a channel post
does, unless the caller asks for an unrounded analyst pack."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bot.core import periods as per
from bot.core.charts.markers import CycleMark
from bot.core.equity import analysis as an
from bot.core.equity import wording
from bot.core.equity.disclosure import DisclosurePolicy, cell, safe_rate
from bot.core.equity.missing import MissingSummary
from bot.core.equity.types import GroupStat
from bot.core.publish import figures as figs
from bot.core.publish.model import (
    Figure,
    GroupRow,
    Line,
    MeasureSection,
    MethodsItem,
    SummaryRow,
    SummarySection,
)

Rates = Callable[[str, str], float | None]
BETTER = {"lower": "lower is better", "higher": "higher is better", "neither": "no better direction"}
KIND_WORDS = {
    "proportion": "Proportion",
    "rate_per_1000": "Rate per 1,000",
    "value": "Value",
    "count": "Count",
}
MISSING_FLAG_CODES = ("COMPLETENESS", "MISSING", "GROUP_ABSENT", "STALE", "OTHER_CATEGORIES")


@dataclass(frozen=True)
class Analysed:
    """One measure's analysis as the pack reads it: the channel analysis (periods or groups possibly grouped to
    protect confidentiality) and how its numbers may be shown."""

    number: int
    channel: an.ChannelAnalysis
    policy: DisclosurePolicy
    unrounded: bool = False
    cycles: tuple[CycleMark, ...] = ()  # the project's PDSA cycles on this measure, marked on the charts

    @property
    def analysis(self) -> an.MeasureAnalysis:
        return self.channel.analysis

    @property
    def slug(self) -> str:
        return f"measure-{self.number}"

    def rates(self) -> Rates:
        a = self.analysis
        return an.exact_rates(a) if self.unrounded else wording.shown_rates(a, self.policy)

    def count(self, n: int) -> str:
        if self.unrounded:
            return f"{n:,}"
        decision = cell(n, self.policy)
        return decision.shown if decision.rounded is None else f"{decision.rounded:,}"


_BOLD = re.compile(r"^\*([^*]+)\*:?\s*")


def as_line(text: str) -> Line:
    """A wording-layer line ('*Black Caribbean* 9.0% vs ...') as a Line with its bold lead words."""
    text = text.strip()
    m = _BOLD.match(text)
    if m is None:
        return Line(text.replace("*", ""))
    return Line(text[m.end() :].replace("*", ""), lead=m.group(1))


def _name(a: an.MeasureAnalysis) -> wording.Name:
    return wording.prose_names(a.labels)


# ---------------------------------------------------------------- one measure


def verdict_lines(item: Analysed) -> list[Line]:
    """The headline verdict per focus group (the same words /equity posts), or why there is none."""
    a = item.analysis
    if not a.periods:
        return [Line("No data yet, so there is nothing to compare.")]
    if a.recording_critical:
        return [Line(wording.critical_words(a))]
    if not a.is_rate:
        return [
            Line("A value measure: groups are compared by their mean, without rates or tests of the gap.")
        ]
    if a.reference_group is None:
        return [Line("No usable reference group, so no gap is estimated.")]
    rates, name = item.rates(), _name(a)
    return [as_line(wording.headline_group_line(a, code, rates, name)) for code in wording.headline_groups(a)]


def flag_lines(a: an.MeasureAnalysis) -> list[Line]:
    """Harm first, then the most serious missing-data flags."""
    out = [
        Line(text[0].upper() + text[1:] + ".", lead="Harm to check")
        for text in wording.harm_lines(a, _name(a))
    ]
    for w in wording.ordered_flags(a.warnings):
        if w.severity in ("critical", "warning") and w.code.startswith(MISSING_FLAG_CODES[:3]):
            out.append(Line(wording.short(w), lead="Missing data"))
    return out[:4]


def group_rows(item: Analysed) -> tuple[tuple[str, ...], list[GroupRow]]:
    a = item.analysis
    if not a.is_rate:
        rows = [
            GroupRow(
                v.label,
                "",
                str(v.periods),
                "" if v.mean is None else f"{v.mean:.3g}",
                reference=v.code == a.reference_group,
            )
            for v in a.value_groups
        ]
        return ("Group", "Periods", "Mean"), rows
    out = []
    for g in a.groups:
        if item.unrounded:
            rate: float | None = g.rate
            reason = ""
            low, high = g.ci_low, g.ci_high
        else:  # rate and interval both from the rounded counts, so the interval contains the rate
            sr = safe_rate(g.numerator, g.denominator, item.policy)
            rate, reason = sr.rate, sr.reason or ""
            low, high = sr.interval or (None, None)
        text = "" if rate is None else an.format_rate(rate, a.kind)
        if rate is not None and low is not None and high is not None:
            text += f" ({an.format_rate(low, a.kind)} to {an.format_rate(high, a.kind)})"
        out.append(
            GroupRow(
                g.label,
                item.count(g.numerator),
                item.count(g.denominator),
                text,
                note=("rate not shown: " + reason) if rate is None and reason else "",
                reference=g.is_reference,
            )
        )
    return ("Group", "Events", "Records", "Rate (95% interval)"), out


def gap_lines(item: Analysed) -> list[Line]:
    a = item.analysis
    if not a.is_rate:
        return []
    rates = item.rates()
    out = []
    for gap in a.gaps:
        text = wording.gap_verdict(
            gap,
            lambda c: a.labels.get(c, c),
            rates=wording.gap_rates(a, gap, rates),
            kind=a.kind,
            recording_critical=a.recording_critical,
        )
        out.append(Line(text, lead=a.labels.get(gap.group, gap.group)))
    return out or [Line("Not enough periods yet to compare a baseline with now.")]


def signal_lines(item: Analysed, *, within: int = 3) -> list[Line]:
    """Special-cause signals in each group's last few points (suppressed periods are not described)."""
    a = item.analysis
    out: list[Line] = []
    for code, result in a.spc.items():
        hidden = set() if item.unrounded else item.channel.suppressed_periods.get(code, set())
        recent = [p for p in result.points if p.value is not None][-within:]
        for word, variation in (
            ("concern", "special_cause_concern"),
            ("improvement", "special_cause_improvement"),
        ):
            hits = [p for p in recent if p.variation == variation and p.period not in hidden]
            if hits:
                signals = "; ".join(sorted({s for p in hits for s in p.signals}))
                out.append(
                    Line(
                        f"special cause of {word} ({signals}), latest in {an.period_label(hits[-1].period, a.period)}.",
                        lead=a.labels.get(code, code),
                    )
                )
    return out or [Line("No special cause in the latest points of any group.")]


def missing_lines(item: Analysed) -> list[Line]:
    """Where the missing data stand: recording shares (no counts), the bounds when recording is critical, and
    the data-quality warnings."""
    a = item.analysis
    # A completeness warning already states the shares, with what they mean: the plain position only without one.
    worded = any(w.code.startswith("COMPLETENESS") and w.severity != "info" for w in a.warnings)
    out = [] if worded else [Line(missing_position(a.missing), lead="Ethnicity recording")]
    if a.recording_critical:
        out += [Line(text) for text in wording.bounds_lines(a, item.policy.threshold)]
    for w in wording.ordered_flags(a.warnings):
        if w.severity != "info" and w.code.startswith(MISSING_FLAG_CODES):
            out.append(Line(w.message))
    return out[:8]


def missing_position(summary: MissingSummary | None) -> str:
    if summary is not None and summary.unknown_periods and summary.valid_share is None:
        return "unknown: Not stated (Z) or Not known (99) was left blank, and blank is not zero."
    if summary is None or summary.valid_share is None:
        return "no record counts, so ethnicity recording cannot be assessed."

    def pct(x: float | None) -> str:
        return "not known" if x is None else f"{x:.1%}"

    text = (
        f"valid ethnic category {pct(summary.valid_share)}; Not stated (Z) {pct(summary.not_stated_share)}; "
        f"Not known (99) {pct(summary.not_known_share)}."
    )
    if summary.unknown_periods:
        n = len(summary.unknown_periods)
        text += f" Unknown for {n} {'period' if n == 1 else 'periods'} where these were left blank."
    return text


def measure_section(item: Analysed, *, extra_figures: Sequence[Figure] = ()) -> MeasureSection:
    a = item.analysis
    columns, rows = group_rows(item)
    notes = [] if item.unrounded else [item.policy.note]
    if item.channel.grouped_note:
        notes.append(item.channel.grouped_note)
    reference = (
        "each group against all the others"
        if a.reference_group == an.OTHERS
        else a.labels.get(a.reference_group or "", "none usable")
    )
    return MeasureSection(
        number=item.number,
        name=a.name,
        about=f"{KIND_WORDS.get(a.kind, a.kind)}, {per.ADJECTIVES.get(a.period, a.period)} data, {BETTER[a.direction]}",
        window=an.window_label(a.window, a.period) if a.window else "no data yet",
        reference=reference,
        verdicts=verdict_lines(item),
        flags=flag_lines(a),
        groups=rows,
        group_columns=columns,
        gaps=gap_lines(item),
        signals=signal_lines(item),
        missing=missing_lines(item),
        figures=[
            *figs.measure_figures(item.channel, item.policy, slug=item.slug, cycles=item.cycles),
            *extra_figures,
        ],
        notes=notes,
    )


# ---------------------------------------------------------------- across measures


def _latest(item: Analysed, code: str) -> str:
    a = item.analysis
    if not a.is_rate:
        v = next((v for v in a.value_groups if v.code == code), None)
        return "no values" if v is None or v.mean is None else f"mean {v.mean:.3g}"
    g: GroupStat | None = next((g for g in a.groups if g.code == code), None)
    if g is None or g.denominator == 0:
        return "no records"
    rate = item.rates()(code, "window")
    return "too few to show" if rate is None else an.format_rate(rate, a.kind)


def _verdict(item: Analysed, code: str) -> str:
    a = item.analysis
    if not a.is_rate:
        return "value measure: no test of the gap"
    if code == a.reference_group:
        return "reference group"
    if a.recording_critical:
        return "not judged: too many records lack ethnicity"
    gap = next((x for x in a.gaps if x.group == code), None)
    if gap is None:
        return "not enough periods to judge the gap"
    text = wording.gap_brief(
        gap, _name(a), since=None, rates=wording.gap_rates(a, gap, item.rates()), kind=a.kind
    )
    return text[0].upper() + text[1:]


def summary_section(items: Sequence[Analysed], *, project_name: str = "") -> SummarySection:
    """Measure by group: the latest value under disclosure control and the headline gap verdict against the
    reference, for the reference and the focus groups (the groups each measure's headline names)."""
    rows = []
    for item in items:
        a = item.analysis
        if not a.periods:
            rows.append(SummaryRow(a.name, "", "no data yet", "", item.slug))
            continue
        codes = [a.reference_group] if a.reference_group else []
        codes += [c for c in (wording.headline_groups(a) if a.is_rate else a.focus_groups) if c not in codes]
        for code in codes:
            rows.append(
                SummaryRow(
                    a.name, wording.prose_name(code), _latest(item, code), _verdict(item, code), item.slug
                )
            )
    # The grid picture follows the channel's display rule, so an unrounded (local-only) pack leaves it out.
    shown = [item for item in items if item.analysis.periods]
    figure = (
        figs.summary_figure([i.channel for i in shown], shown[0].policy, project_name=project_name)
        if shown and not any(i.unrounded for i in items)
        else None
    )
    return SummarySection(rows, figure)


def driver_diagram_section(diagram: Figure | None) -> Figure | None:
    """The driver diagram, when the project has one; nothing otherwise (the template leaves the section out)."""
    return diagram


def methods_section(items: Sequence[Analysed], *, unrounded: bool = False) -> list[MethodsItem]:
    """The methods page in plain words."""
    spc = sorted({an.METHOD_NAMES.get(i.analysis.spc_method, i.analysis.spc_method) for i in items})
    policy = items[0].policy if items else DisclosurePolicy()
    disclosure = (
        "This is an unrounded copy for local analysis: counts are exact, and it must not be published."
        if unrounded
        else (
            f"{policy.note} Rates are worked out from the rounded counts, so each can be checked; intervals, "
            "p values and verdicts come from the exact counts, which never leave the analysis. A rate is not "
            "shown when its count is too small. Where most numbers would be hidden, weeks or months are "
            "joined into longer periods, or groups into the five high-level groups, and the page says so."
        )
    )
    return [
        MethodsItem(
            "Comparing groups",
            "Each ethnic group's rate is compared with the reference group's over the latest window. The range "
            "after a rate (its 95% interval) shows how sure we can be. A difference is called clear only when "
            "the interval of the rate ratio leaves out 1. Whether a gap has changed compares a baseline window "
            "with the latest one; we only say it has narrowed or widened when the data establish it, and we "
            "say 'not established' when they do not. When a gap narrows because the reference group got "
            "worse, we call that levelling down. Methods: " + an.STATS_METHODS + ".",
        ),
        MethodsItem(
            "Charts over time (SPC)",
            "Each group has its own statistical process control chart: "
            + "; ".join(spc)
            + ". The centre line is the average and the limits show the usual range. A point outside the "
            "limits, a run of 7 points on one side of the average, a run of 7 points going up or down, or two out of "
            "three points in a row near a limit is a 'special cause': something has changed. We call it improvement or "
            "concern by the measure's better direction. Fewer than 13 points give trial limits only.",
        ),
        MethodsItem("Keeping people safe (disclosure control)", disclosure),
        MethodsItem(
            "Who is missing from the data",
            "Not stated (Z) means a person was asked and chose not to say. Not known (99) means they were not "
            "asked or it was not written down: this is the gap a team can fix. A blank is unknown, not zero. "
            "Recording of a valid ethnic group at 95% or more is fine; 90% to 95% is a caution; 80% to 90% is a "
            "warning, shown with best and worst cases; under 80% we do not headline any comparison between "
            "groups. These levels are this tool's proposal, not a national standard.",
        ),
        MethodsItem(
            "Naming groups",
            "Groups are named as the NHS ethnic category codes name them. We never join groups into 'BAME'.",
        ),
    ]


def period_words(items: Sequence[Analysed]) -> str:
    """The data's period across the measures, in words ("2023/24 Q1 to 2025/26 Q4")."""
    dated = [i.analysis for i in items if i.analysis.periods]
    if not dated:
        return "no data yet"
    first = min(dated, key=lambda a: a.periods[0])
    last = max(dated, key=lambda a: a.periods[-1])
    start = an.period_label(first.periods[0], first.period)
    end = an.period_label(last.periods[-1], last.period)
    return start if start == end else f"{start} to {end}"
