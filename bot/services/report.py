"""`mfi-ar report FILE`: the equity analysis of an extract for analysts, unrounded, as text or JSON, with a chart."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any, TextIO

import pandas as pd

from bot.core import charts, ethnicity
from bot.core import periods as per
from bot.core.equity import analysis as an
from bot.core.equity.disclosure import DisclosurePolicy
from bot.core.equity.types import GroupStat, Warning
from bot.core.extracts import ImportRefused, _parse_period_label, read_extract

EXIT_BAD_INPUT = 2


class ReportError(Exception):
    """Bad input: reported on one line, exit code 2."""


def _bound(text: str, what: str, *, end: bool) -> date:
    """--from/--to: a date, or a period as the data write it ('2024/25 Q1', 'Apr 2024', '202404', 'FY2024/25').
    A period means its first day for --from and its last day for --to."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        pass
    parsed = _parse_period_label(text)
    if parsed is None or parsed[1] == "date":  # 01/02/2024 could be January or February: only ISO dates
        raise ReportError(
            f"{what} {text!r} is not a date or a period: use YYYY-MM-DD or, for example, 2024/25 Q1"
        )
    start, kind = parsed
    if not end:
        return start
    return per.step(start, kind) - timedelta(days=1)


def parse_rebase(entries: Sequence[str]) -> dict[str, list[date]]:
    """'--rebase 2024-04-01' (every group), '--rebase N=2024-04-01' (one group) or a period such as
    '--rebase "2024/25 Q2"' (from the start of that period)."""
    out: dict[str, list[date]] = {}
    for entry in entries:
        group, _, day = entry.rpartition("=")
        out.setdefault(group.strip() or an.TOTAL, []).append(_bound(day, "--rebase", end=False))
    return out


def _kind(frame: pd.DataFrame, shape: str) -> str:
    if shape == "values":
        return "value"
    return "proportion"


def load_frame(args: argparse.Namespace, *, today: date) -> tuple[pd.DataFrame, Any]:
    """The extract read into a tidy frame, cut to --from/--to, and what the reader found (shape, periods)."""
    path = Path(args.file)
    if not path.is_file():
        raise ReportError(f"{path} not found")
    quarters = getattr(args, "quarters", "financial")
    period = per.effective(args.period, quarters) if args.period != "auto" else "auto"
    try:
        parsed = read_extract(path, filename=path.name, period=period, today=today, quarters=quarters)
    except ImportRefused as exc:
        raise ReportError(exc.message) from None
    frame = parsed.frame
    if args.date_from:
        start = _bound(args.date_from, "--from", end=False)
        frame = frame[[p >= start for p in frame["period"]]]
    if args.date_to:
        end = _bound(args.date_to, "--to", end=True)
        frame = frame[[p <= end for p in frame["period"]]]
    if frame.empty:
        raise ReportError(
            f"{path.name} has no usable rows"
            + (" in that date range" if args.date_from or args.date_to else "")
            + _problems(parsed.problems())
        )
    return frame, parsed


def _analysis_kwargs(
    args: argparse.Namespace, frame: pd.DataFrame, parsed: Any, today: date
) -> dict[str, Any]:
    return {
        "kind": _kind(frame, parsed.shape),
        "direction": args.direction,
        "reference": args.reference,
        "focus_groups": [],
        "period": parsed.period,
        "spc_method": args.spc,
        "rebase": parse_rebase(args.rebase),
        "fix_after": args.fix_after,
        "target": args.target,
        "screen_outliers": not args.no_screen,
        "today": today,
        "policy": DisclosurePolicy(),
        "name": Path(args.file).stem,
        "data_period": parsed.data_period if parsed.grouping else None,
    }


def build_analysis(args: argparse.Namespace, *, today: date | None = None) -> an.MeasureAnalysis:
    today = today or date.today()
    frame, parsed = load_frame(args, today=today)
    try:
        analysis = an.analyse_measure(frame, **_analysis_kwargs(args, frame, parsed, today))
    except ValueError as exc:
        raise ReportError(str(exc)) from None
    _note_partial(analysis, frame, parsed)
    return analysis


def build_channel_analysis(args: argparse.Namespace, *, today: date) -> an.ChannelAnalysis:
    """The analysis as a publication may show it: periods or groups joined while most cells would be hidden."""
    frame, parsed = load_frame(args, today=today)
    kwargs = _analysis_kwargs(args, frame, parsed, today)
    try:
        ca = an.analyse_for_channel(
            frame,
            period=kwargs.pop("period"),
            policy=kwargs.pop("policy"),
            reference=kwargs.pop("reference"),
            focus_groups=kwargs.pop("focus_groups"),
            rebase=kwargs.pop("rebase"),
            quarters=getattr(args, "quarters", "financial"),
            **kwargs,
        )
    except ValueError as exc:
        raise ReportError(str(exc)) from None
    _note_partial(ca.analysis, frame, parsed)
    return ca


def _note_partial(analysis: an.MeasureAnalysis, frame: pd.DataFrame, parsed: Any) -> None:
    shown = set(frame["period"])
    partial = "; ".join(text for start, text in parsed.partial_periods.items() if start in shown)
    if partial:
        effect = (
            f"its mean covers only part of the {per.noun(parsed.period)}"
            if parsed.shape == "values"
            else f"its counts are lower than a whole {per.noun(parsed.period)}'s would be"
        )
        analysis.warnings.append(
            Warning(
                "PERIODS_PARTIAL",
                "caution",
                f"{partial[0].upper()}{partial[1:]}, so {effect}. Use --from and --to to leave it out.",
            )
        )


def _problems(lines: list[str]) -> str:
    return f" ({lines[0]})" if lines else ""


def _num(x: float | None, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{x:.{digits}g}"


def _pct(x: float | None, kind: str) -> str:
    if x is None:
        return "-"
    return f"{x * 1000:.2f}" if kind == "rate_per_1000" else f"{x * 100:.2f}%"


def _interval(low: float | None, high: float | None, kind: str) -> str:
    return "-" if low is None or high is None else f"{_pct(low, kind)} to {_pct(high, kind)}"


def _group_row(g: GroupStat, kind: str) -> list[str]:
    rr = (
        "-"
        if g.rate_ratio is None
        else (f"{_num(g.rate_ratio)} ({_num(g.rate_ratio_ci_low)} to {_num(g.rate_ratio_ci_high)})")
    )
    rd = (
        "-"
        if g.rate_difference is None
        else (
            f"{g.rate_difference * 100:+.2f} ({_num((g.rate_difference_ci_low or 0) * 100)} to "
            f"{_num((g.rate_difference_ci_high or 0) * 100)}) pp"
        )
    )
    return [
        g.label + (" [reference]" if g.is_reference else ""),
        str(g.numerator),
        str(g.denominator),
        _pct(g.rate, kind),
        _interval(g.ci_low, g.ci_high, kind),
        rr,
        rd,
        _num(g.p_value, 3),
    ]


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def text_report(a: an.MeasureAnalysis) -> str:
    """The readable report: unrounded, for local analyst use only (never post it to a channel)."""
    better = {"lower": "lower is better", "higher": "higher is better", "neither": "no better direction"}
    lines = [
        f"Equity report: {a.name} ({a.kind.replace('_', ' ')}, {per.ADJECTIVES.get(a.period, a.period)}, "
        f"{better[a.direction]})"
    ]
    span = an.window_label((a.periods[0], a.periods[-1]), a.period) if a.periods else "none"
    lines.append(
        f"Periods: {len(a.periods)} {per.noun(a.period, len(a.periods))}, {span}"
        if a.periods
        else "Periods: none"
    )
    lines += [
        f"Note: {w.message}"
        + (" --period auto keeps the data's own periods." if w.code == "PERIODS_GROUPED" else "")
        for w in a.warnings
        if w.code in ("PERIODS_GROUPED", "PERIODS_PARTIAL")
    ]
    lines.append(
        f"Latest window: {an.window_label(a.window, a.period)}; reference: "
        f"{a.labels.get(a.reference_group or '', a.reference_group or 'none')}"
    )
    lines.append("UNROUNDED local output: do not post these counts to a channel.")
    lines += ["", "Headline", "  " + a.headline, ""]
    if a.is_rate:
        header = [
            "Group",
            "Events",
            "Records",
            "Rate",
            "95% CI",
            "Rate ratio (95% CI)",
            "Rate difference (95% CI)",
            "p",
        ]
        lines += ["Groups (latest window)", _table([header, *(_group_row(g, a.kind) for g in a.groups)])]
        if a.heterogeneity is not None:
            h = a.heterogeneity
            lines.append(
                f"Heterogeneity across groups: chi-square {_num(h.chi2)}, df {h.df}, p {_num(h.p_value, 3)} "
                f"({h.method})"
            )
        lines += [
            "",
            f"Gap changes ({an.window_label(a.baseline, a.period)} vs {an.window_label(a.recent, a.period)})",
        ]
        if a.recording_critical:
            lines.append(
                "  Ethnicity is recorded for under 80% of records: none of these is headlined anywhere; "
                "read them with the bounds."
            )
        lines += [f"  - {g.verdict}" for g in a.gaps] or ["  (not enough periods)"]
    else:
        rows = [["Group", "Mean", "Periods", "Latest"]] + [
            [v.label, _num(v.mean), str(v.periods), _num(v.latest)] for v in a.value_groups
        ]
        lines += ["Groups (latest window): means; a value measure has no rates or intervals", _table(rows)]
    lines += ["", f"SPC ({an.METHOD_NAMES.get(a.spc_method, a.spc_method)})"]
    for code, r in a.spc.items():
        s = r.summary
        flagged = [p for p in r.points if p.signals]
        runs = ""
        if s.longest_run is not None:
            runs = (
                f"; longest run {s.longest_run} (max {s.longest_run_max}), crossings {s.crossings} "
                f"(min {s.crossings_min}){', runs signal' if s.runs_signal else ''}"
            )
        lines.append(
            f"  {a.labels.get(code, code)}: {s.n_points} points, last point {s.variation_type}"
            f"{', trial limits' if s.trial_limits else ''}{runs}"
        )
        for p in flagged[-5:]:
            lines.append(
                f"      {an.period_label(p.period, a.period)}: {', '.join(p.signals)} ({p.variation})"
            )
        if len(flagged) > 5:
            lines.append(f"      ... and {len(flagged) - 5} earlier signalled points")
    if a.missing is not None:
        m = a.missing
        lines += [
            "",
            f"Missing ethnicity: Not stated (Z) {_pct(m.not_stated_share, 'proportion')}, Not known (99) "
            f"{_pct(m.not_known_share, 'proportion')}, valid {_pct(m.valid_share, 'proportion')}",
        ]
    if a.warnings:
        lines += ["", "Warnings"]
        lines += [f"  [{w.severity}] {w.code}: {w.message}" for w in a.warnings]
    lines += ["", "Methods: " + a.method_text]
    return "\n".join(lines) + "\n"


def write_chart(a: an.MeasureAnalysis, out: Path) -> Path:
    chart = charts.group_timeseries(
        list(a.spc.values()),
        measure_name=a.name,
        kind=a.kind if a.is_rate else "value",
        reference=a.reference_group or "",
        labels={c: _short(c) for c in a.labels},
        rebase=a.rebase.get(an.TOTAL, ()),
        target=a.target,
        max_groups=9,
        period=a.period,
        direction=a.direction,
    )
    out.write_bytes(chart.png)
    return out


def _short(code: str) -> str:
    try:
        return ethnicity.short_label(code)
    except ValueError:
        return code


def cli_report(
    args: argparse.Namespace, *, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    out, err = stdout or sys.stdout, stderr or sys.stderr
    try:
        analysis = build_analysis(args)
        chart_path: Path | None = None
        if args.chart:
            chart_path = Path(args.chart)
            if not chart_path.parent.exists():
                raise ReportError(f"cannot write the chart: folder {chart_path.parent} does not exist")
            write_chart(analysis, chart_path)
    except ReportError as exc:
        err.write(f"mfi-ar report: {exc}\n")
        return EXIT_BAD_INPUT
    if args.json:
        payload: dict[str, Any] = analysis.to_json()
        if chart_path is not None:
            payload["chart"] = str(chart_path)
        out.write(json.dumps(payload, indent=2, default=str) + "\n")
    else:
        out.write(text_report(analysis))
        if chart_path is not None:
            out.write(f"\nChart written to {chart_path.resolve()}\n")
    return 0
