"""Pure Block Kit builders for /equity: disclosure-safe findings, the measure list and the data-quality report."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

from bot.core import periods as per
from bot.core.equity import analysis as an
from bot.core.equity import wording
from bot.core.equity.disclosure import DisclosurePolicy, safe_rate
from bot.core.equity.missing import MissingSummary
from bot.core.equity.types import GroupStat, Warning
from handlers import blocks, claims
from handlers.blocks import Block, ids

VIEWS = (("groups", "Groups over time"), ("gaps", "Gaps dot plot"), ("completeness", "Completeness"))
WINDOWS = (3, 6, 12)
MAX_GROUP_LINES = 20
_SEVERITY_RANK = {"critical": 0, "warning": 1, "caution": 2, "info": 3}
_ICON = {
    "critical": ":red_circle:",
    "warning": ":warning:",
    "caution": ":large_yellow_circle:",
    "info": ":information_source:",
}


@dataclass(frozen=True)
class MeasureRow:
    """What the measure list needs, copied out of the session."""

    id: int
    name: str
    kind: str
    measure_type: str
    period: str
    points: int
    last_period: date | None


def action_value(measure_id: int, view: str, window: int, details_ts: str | None = None) -> str:
    data: dict[str, object] = {"measure": measure_id, "view": view, "window": window}
    if details_ts:
        data["details"] = details_ts
    return json.dumps(data, separators=(",", ":"))


def parse_action_value(value: str) -> tuple[int, str, int] | None:
    """(measure id, view, window) from a button's value; None when the value is not one the bot wrote."""
    data = claims.parse_json_object(value) or {}
    measure_id = claims.parse_id(data.get("measure"))
    if measure_id is None:
        return None
    view = str(data.get("view") or "groups")
    window = claims.parse_int(data.get("window") or 3)
    return measure_id, view if view in dict(VIEWS) else "groups", window if window in WINDOWS else 3


def details_ts_of(value: str) -> str | None:
    """The ts of the details reply in the headline's thread, carried in the headline's button values."""
    try:
        found = json.loads(value).get("details")
    except (ValueError, AttributeError):
        return None
    return str(found) if isinstance(found, str) and found else None


def escape(text: str) -> str:
    """A name a person typed (project or measure), safe inside mrkdwn: no links, mentions or formatting."""
    return blocks.typed(text)


# ---------------------------------------------------------------- disclosure-safe rates (the display rule)


def shown_rates(a: an.MeasureAnalysis, policy: DisclosurePolicy) -> Callable[[str, str], float | None]:
    return wording.shown_rates(a, policy)


def _interval(low: float | None, high: float | None, kind: str) -> str:
    if low is None or high is None:
        return ""
    scale, unit = (1000.0, " per 1,000") if kind == "rate_per_1000" else (100.0, "%")
    return f" (95% CI {low * scale:.1f} to {high * scale:.1f}{unit})"


def group_line(g: GroupStat, a: an.MeasureAnalysis, policy: DisclosurePolicy) -> str:
    """One group's latest-window line: rate from rounded counts, interval and ratio only beside shown rates."""
    kind = a.kind
    sr = safe_rate(g.numerator, g.denominator, policy)
    counts = f"{sr.numerator.shown} of {sr.denominator.shown}"
    name = f"*{g.label}*" + (" (reference)" if g.is_reference else "")
    if sr.rate is None:
        # No interval and no comparison here: either could give a suppressed count away.
        return f"{name}: {counts}; rate not shown: {sr.reason}"
    low, high = sr.interval or (None, None)  # from the rounded counts: it contains the rate shown
    line = f"{name}: {an.format_rate(sr.rate, kind)}{_interval(low, high, kind)}, {counts}"
    if g.is_reference or a.reference_group is None:
        return line
    ref_key = wording.comparison_reference(a, g)
    ref_rate = shown_rates(a, policy)(ref_key, "window")
    against = a.labels.get(ref_key, ref_key)
    if a.recording_critical:
        return line + "; no ratio while ethnicity is recorded for under 80% of records"
    ref_counts = a.window_counts.get(ref_key)
    if (
        ref_rate is None
        and ref_counts is not None
        and ref_counts.denominator > 0
        and ref_counts.numerator == 0
    ):
        return line + f"; {against} had no events, so no ratio can be given"
    if ref_rate is None:
        return line
    if ref_rate == 0:
        return line + f"; {against} had no events, so no ratio can be given"
    ratio = wording.ratio_text(sr.rate, ref_rate)
    if ratio is not None and g.rate_ratio_ci_low is not None and g.rate_ratio_ci_high is not None:
        clear = g.rate_ratio_ci_low > 1 or g.rate_ratio_ci_high < 1
        vs = f" vs {against}" if g.reference_excludes or a.reference_group == an.OTHERS else ""
        line += (
            f"; rate ratio{vs} {ratio} (95% CI {g.rate_ratio_ci_low:.2f} to {g.rate_ratio_ci_high:.2f})"
            + ("" if clear else ", not a clear difference")
        )
    return line


def value_line(v: an.ValueStat) -> str:
    if v.mean is None:
        return f"*{v.label}*: no values in this window"
    return f"*{v.label}*: mean {v.mean:.3g} over {v.periods} {'period' if v.periods == 1 else 'periods'}"


def gap_lines(a: an.MeasureAnalysis, policy: DisclosurePolicy) -> list[str]:
    """Has each gap changed? The full verdict, worded from the rates the channel may show."""
    rates = shown_rates(a, policy)
    out: list[str] = []
    for gap in a.gaps:
        text = wording.gap_verdict(
            gap,
            lambda c: a.labels.get(c, c),
            rates=wording.gap_rates(a, gap, rates),
            kind=a.kind,
            recording_critical=a.recording_critical,
        )
        out.append(f"*{a.labels.get(gap.group, gap.group)}*: {text}")
    return out


def spc_lines(a: an.MeasureAnalysis, suppressed: dict[str, set[date]], *, within: int = 3) -> list[str]:
    """Special-cause signals in each group's last few points (suppressed periods are not described)."""
    out: list[str] = []
    for code, result in a.spc.items():
        hidden = suppressed.get(code, set())
        recent = [p for p in result.points if p.value is not None][-within:]
        for kind_word, variation in (
            ("concern", "special_cause_concern"),
            ("improvement", "special_cause_improvement"),
        ):
            hits = [p for p in recent if p.variation == variation and p.period not in hidden]
            if hits:
                signals = sorted({s for p in hits for s in p.signals})
                out.append(
                    f"*{a.labels.get(code, code)}*: special cause of {kind_word} "
                    f"({'; '.join(signals)}), latest in {an.period_label(hits[-1].period, a.period)}"
                )
        if result.summary.runs_signal and result.method != "mdc":
            out.append(f"*{a.labels.get(code, code)}*: non-random pattern (runs rules)")
    return out


def _warning_text(w: Warning) -> str:
    return f"{_ICON.get(w.severity, '')} {w.message}"


def _chunks(title: str, lines: Sequence[str], limit: int = 2900) -> list[Block]:
    """Sections of at most ~3000 characters, the title on the first."""
    out: list[Block] = []
    current = f"*{title}*" if title else ""
    for line in lines:
        piece = line if len(line) < limit else line[: limit - 1] + "…"
        if current and len(current) + len(piece) + 1 > limit:
            out.append(blocks.section(current))
            current = piece
        else:
            current = f"{current}\n{piece}" if current else piece
    out.append(blocks.section(current))
    return out


DISPLAY_RULE = (
    "Rates, ratios and differences are worked out from the rounded counts shown, so each can be "
    "checked from the rates beside it; intervals, p values and verdicts come from the unrounded data."
)


def methods_text(a: an.MeasureAnalysis, policy: DisclosurePolicy) -> str:
    return f"Method: {a.method_text} {policy.note} {DISPLAY_RULE}"[:2900]


def _window_words(a: an.MeasureAnalysis) -> str:
    return an.window_label(a.window, a.period)


# ---------------------------------------------------------------- the headline post (about 80 words at most)


def headline_lines(ca: an.ChannelAnalysis, policy: DisclosurePolicy) -> list[str]:
    """The headline's words: a title line, one line per focus group, and the single most important flag."""
    a = ca.analysis
    name = wording.prose_names(a.labels)
    rates = shown_rates(a, policy)
    ref = a.reference_group
    if not a.periods:
        return [f"*{escape(a.name)}*: no data yet, so there is nothing to compare."]
    title = f"*{escape(a.name)}*, {_window_words(a)}"
    if ref and a.is_rate:
        title += f", against {name(ref)}" if ref != an.OTHERS else ", each group against all the others"
        if a.baseline and a.gaps and not a.recording_critical:
            title += f"; gaps compared with {an.window_label(a.baseline, a.period)}"
    lines = [title + ":"]
    flag = wording.channel_flag(ca)
    if flag:
        lines.append(flag)  # harm (or missing data) first
    if not a.is_rate:
        lines.append("A value measure: groups are compared by their mean, without rates or tests of the gap.")
    elif ref is None:
        lines.append("No usable reference group, so no gap is estimated.")
    elif not a.recording_critical:
        for code in wording.headline_groups(a):
            lines.append("• " + wording.headline_group_line(a, code, rates, name))
    return lines


def headline_blocks(
    ca: an.ChannelAnalysis,
    *,
    measure_id: int,
    policy: DisclosurePolicy,
    window_months: int,
    view: str,
    chart: tuple[str, str, str] | None,
    details_ts: str | None = None,
) -> tuple[list[Block], str]:
    """The /equity post: headline lines, the chart (an uploaded file, replaced in place) and the buttons."""
    lines = headline_lines(ca, policy)
    out: list[Block] = [blocks.section("\n".join(lines))]
    if chart is not None:
        file_id, alt, title = chart
        out.append(
            {
                "type": "image",
                "slack_file": {"id": file_id},
                "alt_text": alt[:2000],
                "title": blocks.plain(title[:1990]),
                # Slack asks for a new block_id each time a message is updated.
                "block_id": f"{ids.B_EQUITY_CHART}_{file_id}",
            }
        )
    out.append(
        blocks.actions(
            *(
                blocks.button(
                    ("• " if v == view else "") + text,
                    f"{ids.A_EQUITY_VIEW}_{v}",
                    value=action_value(measure_id, v, window_months, details_ts),
                )
                for v, text in VIEWS
            ),
            block_id=ids.B_EQUITY_VIEWS,
        )
    )
    out.append(
        blocks.actions(
            *(
                blocks.button(
                    ("• " if m == window_months else "") + f"Last {m} months",
                    f"{ids.A_EQUITY_WINDOW}_{m}",
                    value=action_value(measure_id, view, m, details_ts),
                )
                for m in WINDOWS
            ),
            blocks.button(
                "Details",
                ids.A_EQUITY_DETAILS,
                value=action_value(measure_id, view, window_months, details_ts),
            ),
            blocks.button(
                "Methods",
                ids.A_EQUITY_METHODS,
                value=action_value(measure_id, view, window_months, details_ts),
            ),
            block_id=ids.B_EQUITY_WINDOWS,
        )
    )
    text = " ".join(line.lstrip("• ") for line in lines)
    return out, text


def details_blocks(
    ca: an.ChannelAnalysis, *, policy: DisclosurePolicy, window_months: int
) -> tuple[list[Block], str]:
    """The details, posted once in the headline's thread: every group, every gap, every signal and warning."""
    a = ca.analysis
    ref_label = (
        a.labels.get(a.reference_group or "", "") if a.reference_group != an.OTHERS else "all other groups"
    )
    out: list[Block] = []
    context_bits = [
        f"Details for {escape(a.name)}: latest window {_window_words(a)} "
        f"({per.ADJECTIVES.get(a.period, a.period)} data)"
    ]
    if a.reference_group:
        context_bits.append(f"Reference: {ref_label}")
    if ca.grouped_note:
        context_bits.append(ca.grouped_note)
    out.append(blocks.context(" · ".join(context_bits)))
    if a.recording_critical:
        out.extend(
            _chunks(
                "Recording comes first",
                [wording.critical_words(a), *wording.bounds_lines(a, policy.threshold)],
            )
        )
    if a.is_rate:
        lines = [group_line(g, a, policy) for g in a.groups[:MAX_GROUP_LINES]]
    else:
        lines = [value_line(v) for v in a.value_groups[:MAX_GROUP_LINES]]
    if lines:
        out.extend(_chunks("Latest window by group", lines))
    if a.is_rate:
        gaps = gap_lines(a, policy)
        out.extend(
            _chunks(
                "Has the gap changed?", gaps or ["Not enough periods yet to compare a baseline with now."]
            )
        )
    signals = spc_lines(a, ca.suppressed_periods)
    out.extend(_chunks("SPC signals", signals or ["No special cause in the latest points of any group."]))
    shown = wording.ordered_flags(a.warnings)
    if shown:
        out.extend(
            _chunks(
                "Harm, data quality and cautions",
                [blocks.typed_within(_warning_text(w), a.name) for w in shown[:12]],
            )
        )
    out.append(blocks.context(methods_text(a, policy)))
    return out[:50], f"Details for {escape(a.name)}: every group, gap and warning"


def findings_blocks(
    ca: an.ChannelAnalysis, *, measure_id: int, policy: DisclosurePolicy, window_months: int, view: str
) -> tuple[list[Block], str]:
    """The headline followed by the details, as one list (for checks that read everything at once)."""
    head, text = headline_blocks(
        ca, measure_id=measure_id, policy=policy, window_months=window_months, view=view, chart=None
    )
    details, _ = details_blocks(ca, policy=policy, window_months=window_months)
    return head + details, text


def measure_list_blocks(project_name: str, measures: Sequence[MeasureRow]) -> tuple[list[Block], str]:
    if not measures:
        text = (
            f"*{blocks.typed(project_name)}* has no measures yet. Add one with `/measure new`, then log data with "
            "`/measure log` or `/measure import`."
        )
        return [blocks.section(text)], text
    out: list[Block] = [
        blocks.section(
            f"*Measures for {blocks.typed(project_name)}*: pick one, or type `/equity <name or number>`. "
            "`/equity missing` reports ethnicity recording for all of them."
        )
    ]
    for i, m in enumerate(measures[:40], start=1):
        data = (
            f"{m.points:,} data points, latest period {m.last_period:%d %b %Y}"
            if m.last_period
            else "no data yet"
        )
        out.append(
            blocks.section(
                f"{i}. *{blocks.typed(m.name)}* ({m.measure_type}, {m.kind.replace('_', ' ')}, {per.ADJECTIVES.get(m.period, m.period)}) · {data}",
                accessory=blocks.button("Show", ids.A_EQUITY_VIEW, value=action_value(m.id, "groups", 3)),
            )
        )
    return out, f"{len(measures)} measures in {blocks.typed(project_name)}"


def no_data_text(measure_name: str) -> str:
    return (
        f"*{blocks.typed(measure_name)}* has no data yet, so there is nothing to chart. Log a period with `/measure log`, "
        "or upload an extract with `/measure import` (aggregated counts by period and ethnic group, or a "
        "date, ethnicity and outcome (yes or no) per row: no names or NHS numbers)."
    )


def missing_line(name: str, summary: MissingSummary | None) -> str:
    if summary is not None and summary.unknown_periods and summary.valid_share is None:
        return (
            f"*{blocks.typed(name)}*: completeness unknown: Not stated (Z) or Not known (99) was left blank, and blank "
            "is not zero."
        )
    if summary is None or summary.valid_share is None:
        return f"*{blocks.typed(name)}*: no record counts, so ethnicity recording cannot be assessed."

    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.1%}"

    line = (
        f"*{blocks.typed(name)}*: valid ethnic category {pct(summary.valid_share)}; Not stated (Z) "
        f"{pct(summary.not_stated_share)}; Not known (99) {pct(summary.not_known_share)}"
    )
    if summary.unknown_periods:
        n = len(summary.unknown_periods)
        line += (
            f" (unknown for {n} {'period' if n == 1 else 'periods'} where Not stated or Not known was left "
            "blank; these shares leave them out)"
        )
    return line


def missing_report_blocks(
    project_name: str, rows: Sequence[tuple[str, MissingSummary | None, list[Warning]]]
) -> tuple[list[Block], str]:
    out: list[Block] = [
        blocks.header("Ethnicity recording: data quality"),
        blocks.section(
            f"Ethnicity recording for every measure of *{blocks.typed(project_name)}*. Not stated (Z) "
            "means people were asked and chose not to say; Not known (99) means they "
            "were never asked or it was not recorded: the gap a team can fix."
        ),
    ]
    if not rows:
        out.append(
            blocks.section("No measure has data yet. Log data with `/measure log` or `/measure import`.")
        )
    for name, summary, warnings in rows[:10]:
        lines = [missing_line(name, summary)]
        lines += [
            blocks.typed_within(_warning_text(w), name)
            for w in sorted(warnings, key=lambda w: _SEVERITY_RANK[w.severity])
            if w.severity != "info"
        ][:4]
        if len(lines) == 1 and summary is not None and summary.valid_share is not None:
            lines.append(":white_check_mark: No data-quality warnings.")
        out.extend(_chunks("", lines))
        if len(out) > 44:
            break
    out.append(
        blocks.context(
            "Shares only; no counts are shown. Tiers (95% / 90% / 80% valid) are the bot's "
            "proposal, not a national standard."
        )
    )
    return out, f"Ethnicity recording for {blocks.typed(project_name)}"
