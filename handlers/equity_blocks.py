"""Pure Block Kit builders for /equity: disclosure-safe findings, the measure list and the data-quality report."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from bot.equity import analysis as an
from bot.equity.disclosure import DisclosurePolicy, safe_rate
from bot.equity.missing import MissingSummary
from bot.equity.types import GroupCounts, GroupStat, Warning
from handlers import blocks, ids
from handlers.blocks import Block

VIEWS = (("groups", "Groups over time"), ("gaps", "Gaps dot plot"), ("completeness", "Completeness"))
WINDOWS = (3, 6, 12)
MAX_GROUP_LINES = 20
_SEVERITY_RANK = {"critical": 0, "warning": 1, "caution": 2, "info": 3}
_ICON = {"critical": ":red_circle:", "warning": ":warning:", "caution": ":large_yellow_circle:", "info": ":information_source:"}


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


def action_value(measure_id: int, view: str, window: int) -> str:
    return json.dumps({"measure": measure_id, "view": view, "window": window}, separators=(",", ":"))


def parse_action_value(value: str) -> tuple[int, str, int]:
    data = json.loads(value)
    view = str(data.get("view") or "groups")
    window = int(data.get("window") or 3)
    return int(data["measure"]), view if view in dict(VIEWS) else "groups", window if window in WINDOWS else 3


# ---------------------------------------------------------------- disclosure-safe text


def safe_rate_text(kind: str, policy: DisclosurePolicy) -> an.RateText:
    """Rates from rounded counts, or None when disclosure control withholds them."""
    def text(c: GroupCounts) -> str | None:
        sr = safe_rate(c.numerator, c.denominator, policy)
        return None if sr.rate is None else an.format_rate(sr.rate, kind)
    return text


def _interval(low: float | None, high: float | None, kind: str) -> str:
    if low is None or high is None:
        return ""
    scale, unit = (1000.0, " per 1,000") if kind == "rate_per_1000" else (100.0, "%")
    return f" (95% CI {low * scale:.1f} to {high * scale:.1f}{unit})"


def group_line(g: GroupStat, kind: str, policy: DisclosurePolicy, *, reference_label: str | None) -> str:
    """One group's latest-window line: rate from rounded counts, interval and comparison only when shown."""
    sr = safe_rate(g.numerator, g.denominator, policy)
    counts = f"{sr.numerator.shown} of {sr.denominator.shown}"
    name = f"*{g.label}*" + (" (reference)" if g.is_reference else "")
    if sr.rate is None:
        # No interval and no comparison here: either could give a suppressed count away.
        return f"{name}: {counts}; rate not shown: {sr.reason}"
    line = f"{name}: {an.format_rate(sr.rate, kind)}{_interval(g.ci_low, g.ci_high, kind)}, {counts}"
    if g.rate_ratio is not None and g.rate_ratio_ci_low is not None and g.rate_ratio_ci_high is not None:
        clear = g.rate_ratio_ci_low > 1 or g.rate_ratio_ci_high < 1
        against = f" vs {reference_label}" if reference_label else ""
        line += (f"; rate ratio{against} {g.rate_ratio:.2f} ({g.rate_ratio_ci_low:.2f} to {g.rate_ratio_ci_high:.2f})"
                 + ("" if clear else ", not a clear difference"))
    return line


def value_line(v: an.ValueStat) -> str:
    if v.mean is None:
        return f"*{v.label}*: no values in this window"
    return f"*{v.label}*: mean {v.mean:.3g} over {v.periods} {'period' if v.periods == 1 else 'periods'}"


def gap_lines(a: an.MeasureAnalysis, policy: DisclosurePolicy) -> list[str]:
    """Has each gap changed? Verdicts from the unrounded model, rates only when every cell can be shown."""
    rate = safe_rate_text(a.kind, policy)
    ref_label = "all other groups" if a.reference_group == an.OTHERS else a.labels.get(a.reference_group or "", "")
    since = an.window_label(a.baseline, a.period) if a.baseline else "the baseline"
    recent = an.window_label(a.recent, a.period) if a.recent else "recently"
    out: list[str] = []
    for gap in a.gaps:
        name = a.labels.get(gap.group, gap.group)
        cells = [a.baseline_counts.get(gap.group), a.recent_counts.get(gap.group)]
        if a.reference_group != an.OTHERS:
            cells += [a.baseline_counts.get(gap.reference), a.recent_counts.get(gap.reference)]
        shown = all(c is not None and rate(c) is not None for c in cells)
        if gap.did is None:
            out.append(f"*{name}* vs {ref_label}: too few records in one window to judge the gap.")
            continue
        verdict = "*established*" if gap.established else "*not established* at these numbers"
        if shown and gap.baseline_rate is not None and gap.recent_rate is not None:
            g_b, g_a = rate(cells[0]) if cells[0] else "", rate(cells[1]) if cells[1] else ""
            text = f"*{name}* vs {ref_label}: {g_b} in {since}, {g_a} in {recent}"
            if len(cells) == 4 and cells[2] is not None and cells[3] is not None:
                text += f" ({ref_label}: {rate(cells[2])} then {rate(cells[3])})"
            text += f". Change in the gap {gap.did * 100:+.1f} points"
            if gap.did_ci_low is not None and gap.did_ci_high is not None:
                text += f" (95% CI {gap.did_ci_low * 100:+.1f} to {gap.did_ci_high * 100:+.1f})"
            text += f": {verdict}."
        else:
            text = (f"*{name}* vs {ref_label}: change in the gap {verdict}; some windows have too few events "
                    "to show their rates.")
        if not gap.established and gap.needed_per_period:
            needed = max(5, math.ceil(gap.needed_per_period / 5) * 5)
            text += (f" To detect a change this size with 80% power would need about {needed:,} per group in "
                     "each window, so 'not established' does not mean 'no change'.")
        out.append(text)
    return out


def spc_lines(a: an.MeasureAnalysis, suppressed: dict[str, set[date]], *, within: int = 3) -> list[str]:
    """Special-cause signals in each group's last few points (suppressed periods are not described)."""
    out: list[str] = []
    for code, result in a.spc.items():
        hidden = suppressed.get(code, set())
        recent = [p for p in result.points if p.value is not None][-within:]
        for kind_word, variation in (("concern", "special_cause_concern"), ("improvement", "special_cause_improvement")):
            hits = [p for p in recent if p.variation == variation and p.period not in hidden]
            if hits:
                signals = sorted({s for p in hits for s in p.signals})
                out.append(f"*{a.labels.get(code, code)}*: special cause of {kind_word} "
                           f"({'; '.join(signals)}), latest in {an.period_label(hits[-1].period, a.period)}")
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


def findings_blocks(
    ca: an.ChannelAnalysis, *, measure_id: int, policy: DisclosurePolicy, window_months: int, view: str
) -> tuple[list[Block], str]:
    """The findings message: headline, groups, gap verdicts, SPC signals, warnings, method, buttons."""
    a = ca.analysis
    headline = an.build_headline(a, rate_text=safe_rate_text(a.kind, policy))
    ref_label = a.labels.get(a.reference_group or "", "") if a.reference_group != an.OTHERS else "all other groups"
    window = an.window_label(a.window, a.period)
    out: list[Block] = [blocks.header(f"{a.name}: by ethnic group"), blocks.section(headline)]
    context_bits = [f"Latest window {window} ({a.period}ly data)"]
    if a.reference_group:
        context_bits.append(f"Reference: {ref_label}")
    if ca.grouped_note:
        context_bits.append(ca.grouped_note)
    out.append(blocks.context(" · ".join(context_bits)))
    if a.is_rate:
        lines = [group_line(g, a.kind, policy, reference_label=None) for g in a.groups[:MAX_GROUP_LINES]]
    else:
        lines = [value_line(v) for v in a.value_groups[:MAX_GROUP_LINES]]
    if lines:
        out.extend(_chunks("Latest window by group", lines))
    if a.is_rate:
        gaps = gap_lines(a, policy)
        out.extend(_chunks("Has the gap changed?", gaps or ["Not enough periods yet to compare a baseline with now."]))
    signals = spc_lines(a, ca.suppressed_periods)
    out.extend(_chunks("SPC signals", signals or ["No special cause in the latest points of any group."]))
    shown = sorted((w for w in a.warnings if w.severity != "info"), key=lambda w: _SEVERITY_RANK[w.severity])
    if shown:
        out.extend(_chunks("Data quality and cautions", [_warning_text(w) for w in shown[:6]]))
    out.append(
        blocks.context(
            f"Method: {a.method_text} {policy.note} Rates are worked out from the rounded counts shown; ratios, "
            "differences and intervals from the unrounded data, so they may not match the rounded rates exactly."[:2900]
        )
    )
    out.append(blocks.actions(
        *(blocks.button(("• " if v == view else "") + text, f"{ids.A_EQUITY_VIEW}_{v}",
                        value=action_value(measure_id, v, window_months)) for v, text in VIEWS),
        block_id=ids.B_EQUITY_VIEWS,
    ))
    out.append(blocks.actions(
        *(blocks.button(("• " if m == window_months else "") + f"Last {m} months", f"{ids.A_EQUITY_WINDOW}_{m}",
                        value=action_value(measure_id, view, m)) for m in WINDOWS),
        block_id=ids.B_EQUITY_WINDOWS,
    ))
    return out, f"{a.name}: {headline}"


def measure_list_blocks(project_name: str, measures: Sequence[MeasureRow]) -> tuple[list[Block], str]:
    if not measures:
        text = (f"*{project_name}* has no measures yet. Add one with `/measure new`, then log data with "
                "`/measure log` or `/measure import`.")
        return [blocks.section(text)], text
    out: list[Block] = [blocks.section(f"*Measures for {project_name}*: pick one, or type `/equity <name or number>`. "
                                       "`/equity missing` reports ethnicity recording for all of them.")]
    for i, m in enumerate(measures[:40], start=1):
        data = (f"{m.points:,} data points, latest period {m.last_period:%d %b %Y}" if m.last_period
                else "no data yet")
        out.append(blocks.section(
            f"{i}. *{m.name}* ({m.measure_type}, {m.kind.replace('_', ' ')}, {m.period}ly) · {data}",
            accessory=blocks.button("Show", ids.A_EQUITY_VIEW, value=action_value(m.id, "groups", 3)),
        ))
    return out, f"{len(measures)} measures in {project_name}"


def no_data_text(measure_name: str) -> str:
    return (f"*{measure_name}* has no data yet, so there is nothing to chart. Log a period with `/measure log`, "
            "or upload an extract with `/measure import` (aggregated counts by period and ethnic group, or a "
            "date, ethnicity and outcome (yes or no) per row: no names or NHS numbers).")


def missing_line(name: str, summary: MissingSummary | None) -> str:
    if summary is not None and summary.unknown_periods and summary.valid_share is None:
        return (f"*{name}*: completeness unknown: Not stated (Z) or Not known (99) was left blank, and blank "
                "is not zero.")
    if summary is None or summary.valid_share is None:
        return f"*{name}*: no record counts, so ethnicity recording cannot be assessed."

    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.1%}"

    line = (f"*{name}*: valid ethnic category {pct(summary.valid_share)}; Not stated (Z) "
            f"{pct(summary.not_stated_share)}; Not known (99) {pct(summary.not_known_share)}")
    if summary.unknown_periods:
        n = len(summary.unknown_periods)
        line += (f" (unknown for {n} {'period' if n == 1 else 'periods'} where Not stated or Not known was left "
                 "blank; these shares leave them out)")
    return line


def missing_report_blocks(
    project_name: str, rows: Sequence[tuple[str, MissingSummary | None, list[Warning]]]
) -> tuple[list[Block], str]:
    out: list[Block] = [blocks.header("Ethnicity recording: data quality"),
                        blocks.section(f"Ethnicity recording for every measure of *{project_name}*. Not stated (Z) "
                                       "means people were asked and chose not to say; Not known (99) means they "
                                       "were never asked or it was not recorded: the gap a team can fix.")]
    if not rows:
        out.append(blocks.section("No measure has data yet. Log data with `/measure log` or `/measure import`."))
    for name, summary, warnings in rows[:10]:
        lines = [missing_line(name, summary)]
        lines += [_warning_text(w) for w in sorted(warnings, key=lambda w: _SEVERITY_RANK[w.severity])
                  if w.severity != "info"][:4]
        if len(lines) == 1 and summary is not None and summary.valid_share is not None:
            lines.append(":white_check_mark: No data-quality warnings.")
        out.extend(_chunks("", lines))
        if len(out) > 44:
            break
    out.append(blocks.context("Shares only; no counts are shown. Tiers (95% / 90% / 80% valid) are the bot's "
                              "proposal, not a national standard."))
    return out, f"Ethnicity recording for {project_name}"
