"""Render equity charts (SPC small multiples, dot plot, completeness, gap) as PNG images with alt text for Slack."""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date

import numpy as np
import numpy.typing as npt
from matplotlib import dates as mdates
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullLocator
from matplotlib.transforms import blended_transform_factory

from bot.core import periods as per
from bot.core.equity.types import GroupStat, SpcResult

__all__ = ["Chart", "completeness_chart", "gap_chart", "group_timeseries", "latest_window_dotplot"]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

DPI = 150
FIGSIZE = (10.0, 5.6)
ALT_TEXT_LIMIT = 1000  # Slack's files.upload alt_txt limit
DISCLOSURE_NOTE = "Counts of 1–7 not shown; others rounded to 5."
SMALL_COUNT_MAX = 7

TITLE_SIZE = 15.0
SUBTITLE_SIZE = 11.0
AXIS_SIZE = 11.5
TICK_SIZE = 10.5
NOTE_SIZE = 9.5

INK = "#1A1A1A"
MUTED = "#595959"
GRID = "#E6E6E6"
REFERENCE_COLOUR = "#000000"
SERIES_COLOUR = "#4D4D4D"
CENTRE_COLOUR = "#404040"
LIMIT_COLOUR = "#8A8A8A"
REF_CENTRE_COLOUR = "#BDBDBD"
TARGET_COLOUR = "#009E73"
COMMON_COLOUR = "#4D4D4D"

# Okabe-Ito, minus black (kept for the reference group) and yellow (too faint on white).
GROUP_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")
GROUP_MARKERS = ("o", "s", "^", "D", "v", "P")
GROUP_LINESTYLES: tuple[str | tuple[float, tuple[float, ...]], ...] = (
    "-",
    "--",
    "-.",
    ":",
    (0, (6.0, 2.0, 1.0, 2.0, 1.0, 2.0)),
    (0, (8.0, 3.0)),
)

# MDC icon colours mapped onto Okabe-Ito so the meaning survives colour-blindness; shapes differ too.
VARIATION_STYLES: dict[str, tuple[str, str, str]] = {
    "improvement": ("#0072B2", "^", "Special cause: improvement"),
    "concern": ("#E69F00", "s", "Special cause: concern"),
    "neutral": ("#CC79A7", "D", "Special cause: neutral"),
}

METHOD_TEXT = {
    "p": "p-chart, limits from each period's denominator (qicharts2 rules)",
    "mdc": "XmR chart, NHS Making Data Count rules",
    "run": "Run chart, Anhøj rules",
}

NHS_ORDER = ("A", "B", "C", "T", "D", "E", "F", "G", "H", "J", "K", "L", "M", "N", "P", "R", "S", "W")
MISSING_CODES = ("Z", "99", "X", "9", "NULL")
HIGH_LEVEL_ORDER = ("HL:White", "HL:Mixed", "HL:Asian", "HL:Black", "HL:Other")

RECENT_DAYS = 92  # "in the last 3 months"


@dataclass(frozen=True)
class Chart:
    """A rendered chart ready for files_upload_v2: PNG bytes, alt text (<= 1000 chars) and a title."""

    png: bytes
    alt_text: str
    title: str


# ---------------------------------------------------------------------------
# Small shared helpers
# ---------------------------------------------------------------------------


def _scale(kind: str) -> float:
    if kind == "proportion":
        return 100.0
    if kind == "rate_per_1000":
        return 1000.0
    if kind == "value":
        return 1.0
    raise ValueError(f"unknown kind {kind!r}: expected 'proportion', 'rate_per_1000' or 'value'")


def _axis_label(kind: str) -> str:
    return {"proportion": "Percentage", "rate_per_1000": "Rate per 1,000", "value": "Value"}[kind]


def _tick_formatter(kind: str) -> FuncFormatter:
    suffix = "%" if kind == "proportion" else ""
    return FuncFormatter(lambda v, _pos: f"{v:g}{suffix}")


def _fmt(value: float | None, kind: str) -> str:
    """Format a fraction (or plain value) the way the chart's axis reads it."""
    if value is None or not math.isfinite(value):
        return "n/a"
    if kind == "proportion":
        return f"{value * 100:.1f}%"
    if kind == "rate_per_1000":
        return f"{value * 1000:.1f} per 1,000"
    return f"{value:.3g}"


def _fmt_interval(low: float | None, high: float | None, kind: str) -> str:
    if low is None or high is None:
        return ""
    scale = _scale(kind)
    unit = "%" if kind == "proportion" else ""
    return f"{low * scale:.1f}–{high * scale:.1f}{unit}"


def _is_small_count(n: int | None) -> bool:
    return n is not None and 1 <= n <= SMALL_COUNT_MAX


def _rounded_count(n: int) -> str:
    """The HES/MSDS rule for a count posted to a channel: 0 stays 0, 1-7 become "<8", others round to 5."""
    if n == 0:
        return "0"
    if _is_small_count(n):
        return "<8"
    return str(5 * round(n / 5))


def _rounded_number(n: int) -> int:
    """A count >= 8 rounded to the nearest 5 (half up), as the findings round it."""
    return max(((n + 2) // 5) * 5, 5) if n else 0


def _sort_key(code: str) -> tuple[int, int, str]:
    if code in NHS_ORDER:
        return (0, NHS_ORDER.index(code), code)
    if code in HIGH_LEVEL_ORDER:
        return (1, HIGH_LEVEL_ORDER.index(code), code)
    if code in MISSING_CODES:
        return (3, MISSING_CODES.index(code), code)
    return (2, 0, code)


def _granularity(periods: Sequence[date], period: str | None = None) -> str:
    """A period code (bot.core.periods) when the caller knows it; otherwise guessed from the spacing of the dates."""
    if period in per.RANK:
        return period
    if len(periods) < 2:
        return ""
    gaps = sorted((b - a).days for a, b in zip(periods, periods[1:], strict=False))
    step = gaps[len(gaps) // 2]
    if step <= 1:
        return "daily"
    if step <= 8:
        return "weekly"
    if step <= 31:
        return "monthly"
    if step <= 92:
        return "quarterly"
    return ""


def _fmt_date(d: date, granularity: str) -> str:
    if granularity in per.RANK:
        return per.label(d, granularity)
    if granularity in ("monthly", "quarterly"):
        return d.strftime("%b %Y")
    return f"{d.day} {d.strftime('%b %Y')}"


SHORT_PREFIXES = (
    ("Asian or Asian British - ", "Asian: "),
    ("Black or Black British - ", "Black: "),
    ("Other Ethnic Groups - ", "Other: "),
    ("White - ", "White: "),
    ("Mixed - ", "Mixed: "),
)


def _short_label(label: str) -> str:
    """Shorter NHS heading for crowded panels; the full labels stay in the alt text and the dot plot."""
    for long, short in SHORT_PREFIXES:
        if label.startswith(long):
            return short + label[len(long):]
    return label


def _points_text(n: int, granularity: str) -> str:
    """'16 days', '8 financial-year quarters' or '12 monthly points'."""
    if granularity in per.RANK:
        return f"{n} {per.noun(granularity, n)}"
    return f"{n} {granularity + ' ' if granularity else ''}point{'s' if n != 1 else ''}"


def _period_axis(ax: Axes, periods: Sequence[date], period: str, max_ticks: int) -> None:
    """Ticks on period starts, labelled as the data has them ('2024/25 Q1', 'w/c' dates for weeks)."""
    every = max(1, math.ceil(len(periods) / max_ticks))
    # Count back from the latest period so the most recent one is always labelled.
    shown = list(periods)[::-1][::every][::-1]
    def text(d: date) -> str:
        if period in ("quarter", "fy_quarter"):
            return per.label(d, period).replace(" ", "\n")  # "2024/25" over "Q1": narrow enough for small panels
        return per.label(d, period) if period in ("year", "fy_year") else per.short_label(d, period)

    ax.xaxis.set_major_locator(FixedLocator([_datenum(d) for d in shown]))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda _x, i: text(shown[i]) if 0 <= i < len(shown) else ""))


def _coarser_advice(granularity: str) -> str:
    granularity = per.ADJECTIVES.get(granularity, granularity).split(" ")[0]
    if granularity == "daily":
        return "weekly or monthly data"
    if granularity == "weekly":
        return "monthly or quarterly data"
    if granularity == "monthly":
        return "quarterly data or the five high-level groups"
    return "the five high-level groups"


def _datenum(d: date) -> float:
    # matplotlib.dates has no annotations; this wrapper is the one typed way in.
    return float(mdates.date2num(np.datetime64(d, "D")))  # type: ignore[no-untyped-call]


def _wrap(text: str, width: int, max_lines: int = 2) -> str:
    lines = textwrap.wrap(text, width=max(width, 8))
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][: max(width - 1, 1)].rstrip() + "…"
    return "\n".join(lines)


def _fit_alt_text(head: Sequence[str], items: Sequence[str], tail: Sequence[str], what: str = "groups") -> str:
    """Join sentences, dropping list items from the end (and saying so) to stay within Slack's limit."""
    fixed_tail = " ".join(tail)
    kept: list[str] = []
    for i, item in enumerate(items):
        remaining = len(items) - i - 1
        more = f"{remaining} more {what} not described." if remaining else ""
        candidate = " ".join([*head, *kept, item, more, fixed_tail]).strip()
        if len(candidate) > ALT_TEXT_LIMIT:
            dropped = len(items) - i
            text = " ".join([*head, *kept, f"{dropped} more {what} not described.", fixed_tail])
            return _clip(text)
        kept.append(item)
    return _clip(" ".join([*head, *kept, fixed_tail]))


def _clip(text: str) -> str:
    text = " ".join(text.split())
    if len(text) <= ALT_TEXT_LIMIT:
        return text
    return text[: ALT_TEXT_LIMIT - 1].rstrip() + "…"


def _new_figure() -> Figure:
    fig = Figure(figsize=FIGSIZE, dpi=DPI, facecolor="white")
    # Attaching the Agg canvas explicitly keeps rendering independent of pyplot's backend machinery.
    FigureCanvasAgg(fig)
    return fig


def _render(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white", metadata={"Software": None})
    return buf.getvalue()


def _header(fig: Figure, title: str, subtitle: str, footnote: Sequence[str]) -> None:
    fig.text(0.012, 0.975, title, fontsize=TITLE_SIZE, fontweight="bold", color=INK, va="top", ha="left")
    if subtitle:
        fig.text(0.012, 0.905, subtitle, fontsize=SUBTITLE_SIZE, color=MUTED, va="top", ha="left")
    if footnote:
        fig.text(0.012, 0.012, "\n".join(footnote), fontsize=NOTE_SIZE, color=MUTED, va="bottom", ha="left",
                 linespacing=1.35)


def _style_axes(ax: Axes) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_color("#9A9A9A")
    ax.tick_params(labelsize=TICK_SIZE, colors=INK, length=3)
    ax.grid(axis="y", color=GRID, linewidth=0.8)
    ax.set_axisbelow(True)


def _date_axis(ax: Axes, first: float, last: float) -> None:
    """Pick ticks from the span directly: AutoDateLocator's rrule search costs ~10 ms per axis per draw."""
    span = last - first
    locator: mdates.DateLocator
    # matplotlib.dates has no annotations, hence the ignores.
    if span > 2 * 365:
        locator = mdates.YearLocator()  # type: ignore[no-untyped-call]
    elif span > 400:
        locator = mdates.MonthLocator(bymonth=(1, 7))  # type: ignore[no-untyped-call]
    elif span > 150:
        locator = mdates.MonthLocator(bymonth=(1, 4, 7, 10))  # type: ignore[no-untyped-call]
    elif span > 45:
        locator = mdates.MonthLocator()  # type: ignore[no-untyped-call]
    else:
        locator = mdates.DayLocator(bymonthday=(1, 15))  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    formatter = mdates.ConciseDateFormatter(locator, show_offset=False)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_formatter(formatter)


# ---------------------------------------------------------------------------
# 1. Small multiples of per-group SPC charts
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Series:
    """One group's points ready to draw, with disclosure control already applied."""

    code: str
    label: str
    is_reference: bool
    periods: tuple[date, ...]
    x: FloatArray
    y: FloatArray  # display units, NaN where suppressed or missing
    centre: FloatArray
    lower: FloatArray
    upper: FloatArray
    variation: tuple[str, ...]  # "improvement" | "concern" | "neutral" | "" per point
    segment_start: BoolArray
    suppressed_x: FloatArray
    has_limits: bool
    trial: bool
    size: float
    recent_signals: tuple[str, ...]
    runs_signal: bool
    # Per point, the rate as text from the rounded counts (the display rule), "" where none is shown: what the
    # alt text quotes, so it agrees with the findings for the same group and period.
    shown_text: tuple[str, ...] = ()


def _variation_kind(variation: str) -> str:
    if variation == "special_cause_improvement":
        return "improvement"
    if variation == "special_cause_concern":
        return "concern"
    if variation.startswith("special_cause_neutral"):
        return "neutral"
    return ""


def _prepare_series(
    result: SpcResult,
    *,
    kind: str,
    reference: str,
    labels: Mapping[str, str],
    suppressed: Collection[date],
    rebase: Collection[date],
) -> _Series:
    scale = _scale(kind)
    points = sorted(result.points, key=lambda p: p.period)
    n = len(points)
    x = np.array([_datenum(p.period) for p in points], dtype=np.float64)
    y = np.full(n, np.nan)
    centre = np.full(n, np.nan)
    lower = np.full(n, np.nan)
    upper = np.full(n, np.nan)
    variation: list[str] = []
    hidden: list[float] = []
    size = 0.0
    suppressed_set = set(suppressed)
    for i, p in enumerate(points):
        if p.centre is not None:
            centre[i] = p.centre * scale
        # A p-chart limit at a suppressed period would hint at its denominator next to a hidden count.
        hide = p.period in suppressed_set or _is_small_count(p.numerator)
        if hide:
            hidden.append(float(x[i]))
            variation.append("")
            continue
        if p.value is not None:
            y[i] = p.value * scale
        if p.lower is not None:
            lower[i] = p.lower * scale
        if p.upper is not None:
            upper[i] = p.upper * scale
        variation.append(_variation_kind(p.variation) if p.value is not None else "")
        size += float(p.denominator) if p.denominator is not None else 1.0
    if kind == "proportion":
        upper = np.minimum(upper, 100.0)
    starts = np.zeros(n, dtype=bool)
    # A rebase date need not fall on a period start: the new segment begins at the first period on or after it.
    for r in rebase:
        for i in range(1, n):
            if points[i - 1].period < r <= points[i].period:
                starts[i] = True
    recent: list[str] = []
    if points:
        last = points[-1].period
        for kind_name in ("concern", "improvement", "neutral"):
            hits = [
                points[i].period
                for i, v in enumerate(variation)
                if v == kind_name and (last - points[i].period).days <= RECENT_DAYS
            ]
            if hits:
                at_latest = hits[-1] == last
                recent.append(f"special cause of {kind_name}" + (" at the latest point" if at_latest
                                                                   else " in the last three months"))
    shown_text = []
    for i, p in enumerate(points):
        if np.isnan(y[i]):
            shown_text.append("")
        elif p.numerator is not None and p.denominator is not None and kind != "value":
            num, den = _rounded_number(p.numerator), _rounded_number(p.denominator)
            shown_text.append(_fmt(num / den, kind) if den else "")
        else:
            shown_text.append(_fmt(y[i] / scale, kind))
    return _Series(
        code=result.group,
        label=labels.get(result.group, result.group),
        is_reference=result.group == reference,
        periods=tuple(p.period for p in points),
        x=x,
        y=y,
        centre=centre,
        lower=lower,
        upper=upper,
        variation=tuple(variation),
        segment_start=starts,
        suppressed_x=np.asarray(hidden, dtype=float),
        has_limits=bool(np.isfinite(upper).any() or np.isfinite(lower).any()),
        trial=result.summary.trial_limits,
        size=size,
        recent_signals=tuple(recent),
        runs_signal=bool(result.summary.runs_signal) and result.method == "run",
        shown_text=tuple(shown_text),
    )


def _step_xy(x: FloatArray, y: FloatArray, starts: BoolArray) -> tuple[
        FloatArray, FloatArray]:
    """Stepped line with each value held from mid-gap to mid-gap, broken at NaNs and segment starts.

    A single surviving period between suppressed ones still gets its own short step, which
    drawstyle="steps-mid" would silently drop.
    """
    n = len(x)
    if n == 0:
        return np.empty(0), np.empty(0)
    if n == 1:
        edges = np.array([x[0] - 3.5, x[0] + 3.5])
    else:
        mids = (x[:-1] + x[1:]) / 2
        edges = np.concatenate([[x[0] - (mids[0] - x[0])], mids, [x[-1] + (x[-1] - mids[-1])]])
    joined = np.ones(n, dtype=bool)
    joined[:-1] = np.isfinite(y[1:]) & ~starts[1:]
    joined[-1] = False
    third_x = np.where(joined, edges[1:], np.nan)
    xs = np.column_stack([edges[:-1], edges[1:], third_x]).ravel()
    ys = np.column_stack([y, y, np.where(joined, y, np.nan)]).ravel()
    return xs, ys


def _broken(x: FloatArray, y: FloatArray, starts: BoolArray) -> tuple[
        FloatArray, FloatArray]:
    """Insert NaN breaks so a data line never runs across a rebase."""
    idx = np.flatnonzero(starts)
    if idx.size == 0:
        return x, y
    return np.insert(x, idx, np.nan), np.insert(y, idx, np.nan)


def _result_size(result: SpcResult) -> float:
    """Ranking weight for choosing panels: total denominator, or the number of points without one."""
    return float(sum(p.denominator if p.denominator is not None else 1 for p in result.points))


def _select_groups(
    results: Sequence[SpcResult], reference: str, focus: Sequence[str], max_groups: int
) -> tuple[list[str], list[str]]:
    """Codes to draw (reference first, then NHS order) and codes left for the dot plot."""
    codes = {r.group for r in results}
    chosen = [c for c in dict.fromkeys([reference, *focus]) if c in codes]
    rest = sorted(
        (r for r in results if r.group not in chosen),
        key=lambda r: (r.group in MISSING_CODES, -_result_size(r), _sort_key(r.group)),
    )
    chosen.extend(r.group for r in rest)
    limit = max(max_groups, 1)
    shown = sorted(chosen[:limit], key=lambda c: (c != reference, _sort_key(c)))
    return shown, chosen[limit:]


def _grid(n: int) -> tuple[int, int]:
    if n <= 3:
        return 1, max(n, 1)
    if n == 4:
        return 2, 2
    if n <= 6:
        return 2, 3
    if n <= 9:
        return 3, 3
    if n <= 12:
        return 3, 4
    if n <= 16:
        return 4, 4
    return math.ceil(n / 5), 5


def _latest_shown(s: _Series) -> int | None:
    finite = np.flatnonzero(np.isfinite(s.y))
    return int(finite[-1]) if finite.size else None


def _draw_panel(
    ax: Axes,
    s: _Series,
    *,
    method: str,
    ref_centre: tuple[FloatArray, FloatArray] | None,
    target: float | None,
    rebase_x: Sequence[float],
    title_width: int,
    small: bool,
) -> set[str]:
    """Draw one group's SPC chart; returns the legend keys it used."""
    used: set[str] = set()
    _style_axes(ax)
    if ref_centre is not None and not s.is_reference and np.isfinite(ref_centre[1]).any():
        ax.plot(ref_centre[0], ref_centre[1], color=REF_CENTRE_COLOUR, linewidth=3.0, solid_capstyle="butt",
                zorder=1)
        used.add("ref_centre")
    if np.isfinite(s.centre).any():
        cx, cy = _step_xy(s.x, s.centre, s.segment_start)
        ax.plot(cx, cy, color=CENTRE_COLOUR, linewidth=1.0, zorder=2)
        used.add("median" if method == "run" else "centre")
    if s.has_limits:
        lx, ly = _step_xy(s.x, s.lower, s.segment_start)
        ux, uy = _step_xy(s.x, s.upper, s.segment_start)
        # One artist for both limits keeps the draw count (and render time) down on 18-group charts.
        ax.plot(np.concatenate([lx, [np.nan], ux]), np.concatenate([ly, [np.nan], uy]), color=LIMIT_COLOUR,
                linewidth=1.0, linestyle=(0, (1.5, 1.5)) if s.trial else (0, (5.0, 2.5)), zorder=2)
        used.add("trial" if s.trial else "limits")
    if target is not None:
        ax.axhline(target, color=TARGET_COLOUR, linewidth=1.4, linestyle=(0, (6.0, 2.0, 1.0, 2.0)), zorder=2)
        used.add("target")
    for rx in rebase_x:
        ax.axvline(rx, color=MUTED, linewidth=0.9, linestyle="-.", zorder=2)
        used.add("rebase")
    colour = REFERENCE_COLOUR if s.is_reference else SERIES_COLOUR
    dx, dy = _broken(s.x, s.y, s.segment_start)
    marker_size = 2.0 if small else 3.0
    ax.plot(dx, dy, color=colour, linewidth=2.2 if s.is_reference else 1.3, marker="o", markersize=marker_size,
            markeredgewidth=0, zorder=3)
    for key, (vcolour, vmarker, _label) in VARIATION_STYLES.items():
        mask = np.array([v == key for v in s.variation], dtype=bool)
        if mask.any():
            ax.plot(s.x[mask], s.y[mask], linestyle="none", marker=vmarker, markersize=5.0 if small else 6.5,
                    color=vcolour, markeredgecolor=INK, markeredgewidth=0.6, zorder=4)
            used.add(key)
    if s.suppressed_x.size:
        # Drawn against the axes' own height so the marks sit on the floor whatever the y range.
        ax.plot(s.suppressed_x, np.full(s.suppressed_x.size, 0.03), linestyle="none", marker="x",
                markersize=3.5, color=MUTED, markeredgewidth=0.9, transform=ax.get_xaxis_transform(),
                clip_on=False, zorder=3)
        used.add("suppressed")
    label = _short_label(s.label) if small else s.label
    title = _wrap(label + (" (ref.)" if small and s.is_reference else " (reference)" if s.is_reference else ""),
                  title_width)
    # Plain text, not set_title: the title re-measures every tick label on each draw to dodge them.
    ax.text(0.0, 1.03, title, transform=ax.transAxes, ha="left", va="bottom", fontsize=9.0 if small else 11.5,
            color=INK, fontweight="bold" if s.is_reference else "normal")
    note = ""
    if not np.isfinite(s.y).any():
        note = "all periods <8: not shown"
    elif method != "run" and not s.has_limits:
        note = "too few data for limits"
    elif s.trial:
        note = "trial limits"
    if note:
        ax.text(0.98, 0.95, note, transform=ax.transAxes, ha="right", va="top", fontsize=9.5 if small else 10.0,
                color=MUTED, style="italic", zorder=5)
    return used


_LEGEND_ORDER = ("centre", "median", "limits", "trial", "ref_centre", "target", "rebase", "improvement", "concern",
                 "neutral", "suppressed")


def _legend_handles(used: set[str]) -> list[Artist]:
    handles: dict[str, Artist] = {
        "centre": Line2D([], [], color=CENTRE_COLOUR, linewidth=1.0, label="Centre line (mean)"),
        "median": Line2D([], [], color=CENTRE_COLOUR, linewidth=1.0, label="Median"),
        "limits": Line2D([], [], color=LIMIT_COLOUR, linewidth=1.0, linestyle=(0, (5.0, 2.5)),
                         label="Process limits"),
        "trial": Line2D([], [], color=LIMIT_COLOUR, linewidth=1.0, linestyle=(0, (1.5, 1.5)),
                        label="Trial limits"),
        "ref_centre": Line2D([], [], color=REF_CENTRE_COLOUR, linewidth=3.0, label="Reference centre line"),
        "target": Line2D([], [], color=TARGET_COLOUR, linewidth=1.4, linestyle=(0, (6.0, 2.0, 1.0, 2.0)),
                         label="Target"),
        "rebase": Line2D([], [], color=MUTED, linewidth=0.9, linestyle="-.", label="Rebased"),
        "suppressed": Line2D([], [], color=MUTED, marker="x", linestyle="none", markersize=5,
                             label="Count <8, not shown"),
    }
    for key, (colour, marker, label) in VARIATION_STYLES.items():
        handles[key] = Line2D([], [], color=colour, marker=marker, linestyle="none", markersize=7,
                              markeredgecolor=INK, markeredgewidth=0.6, label=label)
    return [handles[k] for k in _LEGEND_ORDER if k in used]


def _build_group_timeseries(
    results: Sequence[SpcResult],
    *,
    measure_name: str,
    kind: str,
    reference: str,
    labels: Mapping[str, str],
    suppressed: Mapping[str, Collection[date]] = {},
    rebase: Sequence[date] = (),
    target: float | None = None,
    max_groups: int = 6,
    focus: Sequence[str] = (),
    period: str | None = None,
    since: date | None = None,
) -> tuple[Figure, str, str]:
    scale = _scale(kind)
    if not results:
        raise ValueError("group_timeseries needs at least one SpcResult")
    if since is not None:
        # The window's points only; their limits stay the ones worked out from the whole series.
        results = [replace(r, points=[p for p in r.points if p.period >= since]) for r in results]
        results = [r for r in results if r.points] or results
    methods = {r.method for r in results}
    method = results[0].method if len(methods) == 1 else "mixed"
    shown_codes, hidden = _select_groups(results, reference, focus, max_groups)
    by_code = {r.group: r for r in results}
    # Only the panels drawn (and the reference, for its centre line) need preparing.
    prepared = {
        code: _prepare_series(by_code[code], kind=kind, reference=reference, labels=labels,
                              suppressed=suppressed.get(code, ()), rebase=rebase)
        for code in {*shown_codes, *([reference] if reference in by_code else [])}
    }
    shown = [prepared[c] for c in shown_codes]
    ref_series = prepared.get(reference)
    ref_centre = _step_xy(ref_series.x, ref_series.centre, ref_series.segment_start) if ref_series else None

    periods = sorted({d for s in shown for d in s.periods})
    granularity = _granularity(periods, period)
    n_points = max((len(s.periods) for s in shown), default=0)
    method_text = METHOD_TEXT.get(method, "SPC charts, methods differ by group")
    trial = any(s.trial and s.has_limits for s in shown)
    n_hidden = sum(s.suppressed_x.size for s in shown)
    n_total = sum(len(s.periods) for s in shown)
    # Thin weekly data (equity-stats 4.4): say so rather than let gaps look like missing data.
    thin = n_total > 0 and n_hidden / n_total > 0.2

    title = f"{measure_name} by ethnic group over time"
    span = f", {_fmt_date(periods[0], granularity)} to {_fmt_date(periods[-1], granularity)}" if periods else ""
    subtitle = f"{method_text}. {_points_text(n_points, granularity)}{span}."
    footnote = [DISCLOSURE_NOTE + (" Trial limits: too few points for stable limits." if trial else "")]
    if hidden:
        footnote[0] += f" {len(hidden)} more group{'s' if len(hidden) != 1 else ''} in the dot plot."
    coarser = _coarser_advice(granularity)
    if thin:
        footnote.append(f"{round(100 * n_hidden / n_total)}% of group-periods have counts under 8 and are not shown: "
                        f"{coarser} would show more.")

    target_y = target * scale if target is not None else None
    y_values = [0.0] + ([target_y] if target_y is not None else [])
    for s in shown:
        for arr in (s.y, s.upper, s.centre):
            finite = arr[np.isfinite(arr)]
            if finite.size:
                y_values.append(float(finite.max()))
    low_values = [float(np.nanmin(s.y)) for s in shown if np.isfinite(s.y).any()]
    top_y = max(y_values) * 1.08 or 1.0
    bottom_y = 0.0 if kind != "value" or min(low_values, default=0.0) >= 0 else min(low_values) * 1.08
    y_ticks = [float(t) for t in MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]).tick_values(bottom_y, top_y) if bottom_y <= t <= top_y]
    xs = np.array([_datenum(d) for d in periods])
    step = float(np.median(np.diff(xs))) if xs.size > 1 else 30.0
    x_lim = (float(xs[0]) - step, float(xs[-1]) + step) if xs.size else (0.0, 1.0)

    fig = _new_figure()
    rows, cols = _grid(len(shown))
    small = rows * cols > 6
    top = 0.755
    bottom = 0.115 + 0.03 * len(footnote)
    grid = fig.add_gridspec(rows, cols, left=0.075, right=0.985, top=top, bottom=bottom,
                            hspace=(1.0 if small else 0.55) if rows > 1 else 0.2, wspace=0.07)
    title_width = int(118 / cols) if not small else int(100 / cols)
    rebase_x = [_datenum(d) for d in rebase]
    used: set[str] = set()
    for i, s in enumerate(shown):
        # Unshared axes with ticks only on the outer edge: shared tickers make every panel lay out
        # every tick label, which dominated render time with 6-18 panels.
        ax = fig.add_subplot(grid[i // cols, i % cols])
        ax.set_xlim(*x_lim)
        ax.set_ylim(bottom_y, top_y)
        used |= _draw_panel(ax, s, method=method, ref_centre=ref_centre, target=target_y, rebase_x=rebase_x,
                            title_width=title_width, small=small)
        ax.grid(False)
        ax.hlines(y_ticks, 0, 1, transform=ax.get_yaxis_transform(), colors=GRID, linewidths=0.8, zorder=0)
        if i % cols == 0:
            ax.yaxis.set_major_locator(FixedLocator(y_ticks))
            ax.yaxis.set_major_formatter(_tick_formatter(kind))
        else:
            ax.yaxis.set_major_locator(NullLocator())
        if i + cols >= len(shown) and xs.size and granularity in per.RANK:
            _period_axis(ax, periods, granularity, max_ticks=7 if cols == 1 else 4 if cols == 2 else 3)
        elif i + cols >= len(shown) and xs.size:
            _date_axis(ax, float(xs[0]), float(xs[-1]))
        else:
            ax.xaxis.set_major_locator(NullLocator())
    fig.text(0.012, (top + bottom) / 2, _axis_label(kind), rotation=90, va="center", ha="left", fontsize=AXIS_SIZE,
             color=INK)
    _header(fig, title, subtitle, footnote)
    handles = _legend_handles(used)
    if handles:
        fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.005, 0.865), ncols=min(len(handles), 6),
                   frameon=False, fontsize=10.0, handlelength=2.2, columnspacing=1.2, handletextpad=0.5,
                   borderaxespad=0.0)

    alt = _timeseries_alt_text(title, method_text, n_points, granularity, periods, shown, hidden, kind,
                               coarser if thin else "")
    return fig, alt, title


def _timeseries_alt_text(
    title: str,
    method_text: str,
    n_points: int,
    granularity: str,
    periods: Sequence[date],
    shown: Sequence[_Series],
    hidden: Sequence[str],
    kind: str,
    coarser: str,
) -> str:
    scale = _scale(kind)
    head = [f"{title}: one panel per group."]
    if periods:
        head.append(f"{method_text}; {_points_text(n_points, granularity)}, "
                    f"{_fmt_date(periods[0], granularity)} to {_fmt_date(periods[-1], granularity)}.")
    items: list[str] = []
    for s in shown:
        name = s.label + (" (reference)" if s.is_reference else "")
        idx = _latest_shown(s)
        if idx is None:
            items.append(f"{name}: all periods have counts under 8, not shown.")
            continue
        latest = s.shown_text[idx] if s.shown_text else _fmt(s.y[idx] / scale, kind)
        parts = [f"latest ({_fmt_date(s.periods[idx], granularity)}) {latest}"]
        if idx != len(s.periods) - 1:
            parts[0] += " (later periods <8, not shown)"
        if np.isfinite(s.centre[idx]):
            parts.append(f"centre {_fmt(s.centre[idx] / scale, kind)}")
        parts.extend(s.recent_signals)
        if s.runs_signal:
            parts.append("non-random variation (runs rule)")
        if not s.recent_signals and not s.runs_signal and s.has_limits:
            parts.append("no recent special cause")
        if not s.has_limits and "run" not in method_text.lower():
            parts.append("too few data for limits")
        elif s.trial:
            parts.append("trial limits")
        items.append(f"{name}: " + ", ".join(parts) + ".")
    tail = []
    if hidden:
        tail.append(f"{len(hidden)} more groups are in the dot plot.")
    if coarser:
        tail.append(f"Many periods have counts under 8 and are not shown; {coarser} would show more.")
    tail.append(DISCLOSURE_NOTE)
    return _fit_alt_text(head, items, tail)


def group_timeseries(
    results: Sequence[SpcResult],
    *,
    measure_name: str,
    kind: str,
    reference: str,
    labels: Mapping[str, str],
    suppressed: Mapping[str, Collection[date]] = {},
    rebase: Sequence[date] = (),
    target: float | None = None,
    max_groups: int = 6,
    focus: Sequence[str] = (),
    period: str | None = None,
    since: date | None = None,
) -> Chart:
    """Small multiples of per-group SPC charts on a shared y axis, the reference group's centre in every panel.

    Args:
        kind: "proportion" or "rate_per_1000" (SpcPoint values are fractions) or "value" (plotted as given).
        suppressed: periods per group whose counts were suppressed; points with a numerator of 1-7 are
            hidden as well, whatever this says.
        max_groups: panels shown; the reference and ``focus`` groups come first, then the largest groups.
        period: the data's period (a bot.core.periods code): axes and text name periods as the data has them
            ("2024/25 Q1", weeks commencing); without it the spacing of the dates decides.
        since: plot only the periods from this date on (a window); limits still come from the whole series.
    """
    fig, alt, title = _build_group_timeseries(
        results, measure_name=measure_name, kind=kind, reference=reference, labels=labels, suppressed=suppressed,
        rebase=rebase, target=target, max_groups=max_groups, focus=focus, period=period, since=since,
    )
    return Chart(png=_render(fig), alt_text=alt, title=title)


# ---------------------------------------------------------------------------
# 2. Latest-window dot plot
# ---------------------------------------------------------------------------


def _stat_hidden(stat: GroupStat, suppressed: Collection[str]) -> bool:
    return stat.code in suppressed or _is_small_count(stat.numerator) or _is_small_count(stat.denominator)


def _build_latest_window_dotplot(
    stats: Sequence[GroupStat],
    *,
    measure_name: str,
    kind: str,
    window_label: str,
    suppressed: Collection[str] = (),
) -> tuple[Figure, str, str]:
    scale = _scale(kind)
    suppressed_set = set(suppressed)
    reference = [s for s in stats if s.is_reference]
    groups = sorted((s for s in stats if not s.is_reference and s.code not in MISSING_CODES),
                    key=lambda s: _sort_key(s.code))
    missing = sorted((s for s in stats if not s.is_reference and s.code in MISSING_CODES),
                     key=lambda s: _sort_key(s.code))
    rows = [*reference, *groups, *missing]
    n_rows = len(rows)
    # Row positions from the top; a half-row gap sets the missing-data rows apart from the groups.
    positions: list[float] = []
    ypos = 0.0
    for i, s in enumerate(rows):
        if missing and s is missing[0]:
            ypos += 0.6
        if i == 1 and reference and groups:
            ypos += 0.25
        positions.append(ypos)
        ypos += 1.0
    ref_stat = reference[0] if reference else None
    ref_rate = ref_stat.rate if ref_stat and ref_stat.rate is not None and not _stat_hidden(ref_stat,
                                                                                             suppressed_set) else None

    title = f"{measure_name}, {window_label}: rate by ethnic group"
    ref_text = f" Dashed line: reference group ({ref_stat.label})." if ref_stat and ref_rate is not None else ""
    subtitle = f"Dot: rate; bar: Wilson 95% confidence interval.{ref_text}"
    footnote = [DISCLOSURE_NOTE + " n≈ is the group's denominator rounded to 5."]

    fig = _new_figure()
    font = 10.5 if n_rows <= 12 else (9.5 if n_rows <= 16 else 8.8)
    label_width = 40 if n_rows <= 12 else 46
    ax = fig.add_axes((0.34, 0.15, 0.43, 0.69))
    # Value columns sit at fixed figure positions so they line up whatever the axis range.
    column = blended_transform_factory(fig.transFigure, ax.transData)
    _style_axes(ax)
    ax.grid(axis="y", visible=False)
    ax.grid(axis="x", color=GRID, linewidth=0.8)
    ax.spines["left"].set_visible(False)
    ax.tick_params(axis="y", length=0)

    highs = [s.ci_high for s in rows if s.ci_high is not None and not _stat_hidden(s, suppressed_set)]
    highs += [s.rate for s in rows if s.rate is not None and not _stat_hidden(s, suppressed_set)]
    x_max = (max(highs) if highs else 0.1) * scale * 1.1 or 1.0
    ax.set_xlim(0, x_max)
    ax.set_ylim(ypos - 0.4, -0.6)
    ax.xaxis.set_major_formatter(_tick_formatter(kind))
    ax.set_xlabel(_axis_label(kind), fontsize=AXIS_SIZE, color=INK)

    ci_x: list[float] = []
    ci_y: list[float] = []
    missing_ci_x: list[float] = []
    missing_ci_y: list[float] = []
    dots: dict[str, tuple[list[float], list[float]]] = {"ref": ([], []), "group": ([], []), "missing": ([], [])}
    tick_labels: list[str] = []
    alt_items: list[str] = []
    hidden_names: list[str] = []
    for s, y in zip(rows, positions, strict=True):
        role = "ref" if s.is_reference else ("missing" if s.code in MISSING_CODES else "group")
        name = s.label + (" (reference)" if s.is_reference else "")
        if role == "missing" and f"({s.code})" not in name:
            name += f" ({s.code})"
        tick_labels.append(_wrap(name, label_width, max_lines=1))
        if _stat_hidden(s, suppressed_set):
            ax.text(x_max * 0.01, y, "<8 — not shown", va="center", ha="left", fontsize=font, color=MUTED,
                    style="italic")
            hidden_names.append(s.label)
            continue
        if s.rate is None:
            ax.text(x_max * 0.01, y, "no data", va="center", ha="left", fontsize=font, color=MUTED, style="italic")
            alt_items.append(f"{name}: no data.")
            continue
        dots[role][0].append(s.rate * scale)
        dots[role][1].append(y)
        if s.ci_low is not None and s.ci_high is not None:
            target_x, target_y = (missing_ci_x, missing_ci_y) if role == "missing" else (ci_x, ci_y)
            target_x.extend([s.ci_low * scale, s.ci_high * scale, np.nan])
            target_y.extend([y, y, np.nan])
        value = _fmt(s.rate, kind).replace(" per 1,000", "")
        interval = _fmt_interval(s.ci_low, s.ci_high, kind)
        shown_n = f"n≈{_rounded_count(s.denominator)}"
        ax.text(0.785, y, f"{value} ({interval})" if interval else value, transform=column, va="center",
                ha="left", fontsize=font, color=MUTED if role == "missing" else INK, clip_on=False)
        ax.text(0.988, y, shown_n, transform=column, va="center", ha="right", fontsize=font - 0.5, color=MUTED,
                clip_on=False)
        compare = ""
        if not s.is_reference and ref_rate is not None and s.ci_low is not None and s.ci_high is not None:
            if s.ci_low > ref_rate:
                compare = ", higher than the reference (interval excludes it)"
            elif s.ci_high < ref_rate:
                compare = ", lower than the reference (interval excludes it)"
            else:
                compare = ", interval includes the reference rate"
        alt_items.append(f"{name}: {_fmt(s.rate, kind)}" + (f" (95% CI {interval})" if interval else "")
                         + compare + ".")
    ax.plot(ci_x, ci_y, color=INK, linewidth=1.6, solid_capstyle="butt", zorder=2)
    ax.plot(missing_ci_x, missing_ci_y, color="#A0A0A0", linewidth=1.4, solid_capstyle="butt", zorder=2)
    ax.plot(*dots["group"], linestyle="none", marker="o", markersize=7.5, color="#0072B2", markeredgecolor="white",
            markeredgewidth=0.8, zorder=3)
    ax.plot(*dots["ref"], linestyle="none", marker="s", markersize=8.0, color=REFERENCE_COLOUR,
            markeredgecolor="white", markeredgewidth=0.8, zorder=3)
    ax.plot(*dots["missing"], linestyle="none", marker="o", markersize=7.0, markerfacecolor="white",
            markeredgecolor="#8A8A8A", markeredgewidth=1.4, zorder=3)
    if ref_rate is not None:
        ax.axvline(ref_rate * scale, color=REFERENCE_COLOUR, linewidth=1.0, linestyle=(0, (4.0, 3.0)), zorder=1)
    if missing:
        sep = positions[rows.index(missing[0])] - 0.8
        ax.axhline(sep, color="#BDBDBD", linewidth=0.9, xmin=-0.7, clip_on=False)
    ax.set_yticks(positions, tick_labels, fontsize=font)
    for tick, s in zip(ax.get_yticklabels(), rows, strict=True):
        if s.code in MISSING_CODES:
            tick.set_color(MUTED)
            tick.set_fontstyle("italic")
        elif s.is_reference:
            tick.set_fontweight("bold")
    ax.text(0.785, -0.6, "Rate (95% CI)", transform=column, va="bottom", ha="left", fontsize=font - 0.5,
            color=MUTED, clip_on=False)
    ax.text(0.988, -0.6, "Size", transform=column, va="bottom", ha="right", fontsize=font - 0.5, color=MUTED,
            clip_on=False)
    _header(fig, title, subtitle, footnote)

    head = [f"{title}. Dot plot with Wilson 95% confidence intervals."]
    if ref_stat is not None and ref_rate is not None:
        head.append(f"Reference group {ref_stat.label}.")
    tail = []
    if hidden_names:
        tail.append("Not shown because the count is under 8: " + "; ".join(hidden_names) + ".")
    tail.append(DISCLOSURE_NOTE)
    return fig, _fit_alt_text(head, alt_items, tail), title


def latest_window_dotplot(
    stats: Sequence[GroupStat],
    *,
    measure_name: str,
    kind: str,
    window_label: str,
    suppressed: Collection[str] = (),
) -> Chart:
    """Forest-style dot plot of each group's rate in the latest window, reference first, Z and 99 set apart.

    Groups listed in ``suppressed`` (or with a numerator of 1-7) get "<8 — not shown" instead of a dot.
    """
    fig, alt, title = _build_latest_window_dotplot(stats, measure_name=measure_name, kind=kind,
                                                   window_label=window_label, suppressed=suppressed)
    return Chart(png=_render(fig), alt_text=alt, title=title)


# ---------------------------------------------------------------------------
# 3. Ethnicity recording completeness
# ---------------------------------------------------------------------------

COMPLETENESS_SERIES = (
    ("Valid ethnic category (A–S)", "#0072B2", ""),
    ("Not stated (Z)", "#E69F00", "///"),
    ("Not known (99)", "#CC79A7", "xxx"),
)
THRESHOLDS = ((0.95, "95%: good"), (0.90, "90%: caution"), (0.80, "80%: don't headline gaps"))


def _band(valid: float) -> str:
    if valid >= 0.95:
        return "at or above 95% (good)"
    if valid >= 0.90:
        return "between 90% and 95% (caution)"
    if valid >= 0.80:
        return "between 80% and 90% (warning)"
    return "below 80%: disparity estimates should not be headlined"


def _build_completeness_chart(
    by_period: Sequence[tuple[date, float, float, float]], *, measure_name: str, period: str | None = None
) -> tuple[Figure, str, str]:
    rows = sorted(by_period, key=lambda r: r[0])
    if not rows:
        raise ValueError("completeness_chart needs at least one period")
    periods = [r[0] for r in rows]
    granularity = _granularity(periods, period)
    x = np.array([_datenum(d) for d in periods], dtype=np.float64)
    shares = np.array([[r[1], r[2], r[3]] for r in rows], dtype=float) * 100.0
    title = f"Ethnicity recording: {measure_name}"
    subtitle = "Share of records each period: valid category, Not stated (Z) and Not known (99) shown separately."
    fig = _new_figure()
    ax = fig.add_axes((0.075, 0.15, 0.72, 0.62))
    _style_axes(ax)
    width = float(np.median(np.diff(x))) * 0.8 if len(x) > 1 else 20.0
    bottom = np.zeros(len(x))
    handles: list[Artist] = []
    for j, (label, colour, hatch) in enumerate(COMPLETENESS_SERIES):
        # Hatching carries the distinction for readers who cannot separate the colours.
        if len(x) <= 60:
            ax.bar(x, shares[:, j], width=width, bottom=bottom, color=colour, hatch=hatch or None,
                   edgecolor="white", linewidth=0.4 if hatch else 0.0, zorder=2)
        else:
            ax.fill_between(x, bottom, bottom + shares[:, j], step="mid", facecolor=colour, hatch=hatch or None,
                            edgecolor="white", linewidth=0.0, zorder=2)
        handles.append(Patch(facecolor=colour, hatch=hatch or None, edgecolor="white", label=label))
        bottom = bottom + shares[:, j]
    styles = ("-", "--", ":")
    for (level, label), style in zip(THRESHOLDS, styles, strict=True):
        ax.axhline(level * 100, color=INK, linewidth=1.1, linestyle=style, zorder=3)
        ax.text(1.01, level * 100, label, transform=ax.get_yaxis_transform(), va="center", ha="left",
                fontsize=10.0, color=INK, clip_on=False)
    ax.set_ylim(0, 100)
    ax.set_yticks([0, 20, 40, 60, 80, 90, 100])
    ax.yaxis.set_major_formatter(_tick_formatter("proportion"))
    ax.set_ylabel("Share of records", fontsize=AXIS_SIZE, color=INK)
    pad = width if len(x) > 1 else 30.0
    ax.set_xlim(x[0] - pad, x[-1] + pad)
    if granularity in per.RANK:
        _period_axis(ax, periods, granularity, max_ticks=8)
    else:
        _date_axis(ax, float(x[0]), float(x[-1]))
    fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.005, 0.865), ncols=3, frameon=False,
               fontsize=10.5, handlelength=2.0, borderaxespad=0.0)
    _header(fig, title, subtitle, ["Thresholds are the bot's proposed tiers for valid ethnic category "
                                   "(not a national standard). Shares only; no counts shown."])
    valid, z, nk = shares[-1]
    head = [f"{title}. Stacked bars of the share of records per {per.noun(granularity) if granularity in per.RANK else granularity.rstrip('ly') or 'period'}, "
            f"{len(rows)} periods, {_fmt_date(periods[0], granularity)} to {_fmt_date(periods[-1], granularity)}."]
    items = [
        f"Latest ({_fmt_date(periods[-1], granularity)}): valid {valid:.1f}%, Not stated (Z) {z:.1f}%, "
        f"Not known (99) {nk:.1f}%; valid share is {_band(valid / 100)}.",
        f"Valid share ranged {shares[:, 0].min():.1f}% to {shares[:, 0].max():.1f}% "
        f"(first period {shares[0, 0]:.1f}%).",
        "Threshold lines at 95%, 90% and 80%.",
    ]
    return fig, _fit_alt_text(head, items, [], what="notes"), title


def completeness_chart(by_period: Sequence[tuple[date, float, float, float]], *, measure_name: str,
                       period: str | None = None) -> Chart:
    """Stacked shares per period of valid (A–S), Not stated (Z) and Not known (99), with 95/90/80% lines.

    Args:
        by_period: (period, valid share, Not stated share, Not known share), shares as fractions.
    """
    fig, alt, title = _build_completeness_chart(by_period, measure_name=measure_name, period=period)
    return Chart(png=_render(fig), alt_text=alt, title=title)


# ---------------------------------------------------------------------------
# 4. Gap against the reference over time
# ---------------------------------------------------------------------------


def _build_gap_chart(
    windows: Sequence[tuple[date, Sequence[GroupStat]]],
    *,
    measure_name: str,
    kind: str,
    groups: Sequence[str] = (),
    suppressed: Mapping[str, Collection[date]] = {},
    max_groups: int = 4,
) -> tuple[Figure, str, str]:
    scale = _scale(kind)
    windows = sorted(windows, key=lambda w: w[0])
    periods = [w[0] for w in windows]
    granularity = _granularity(periods)
    ref_label = next((s.label for _, ss in windows for s in ss if s.is_reference), "the reference group")
    codes: list[str] = list(groups)
    if not codes:
        seen = {s.code for _, ss in windows for s in ss if not s.is_reference and s.code not in MISSING_CODES}
        codes = sorted(seen, key=_sort_key)
    codes = codes[:max_groups]
    labels: dict[str, str] = {s.code: s.label for _, ss in windows for s in ss}

    title = f"{measure_name}: gap against {ref_label} over time"
    subtitle = "Rate difference (group minus reference) with its 95% confidence interval; 0 = same as reference."
    fig = _new_figure()
    ax = fig.add_axes((0.085, 0.15, 0.66, 0.7))
    _style_axes(ax)
    ax.axhline(0, color=REFERENCE_COLOUR, linewidth=1.6, zorder=2)
    step = float(np.median(np.diff([_datenum(d) for d in periods]))) if len(periods) > 1 else 30.0
    # Overlapping bands turn to mud with several groups, so those get dodged interval bars instead.
    dodge = [(k - (len(codes) - 1) / 2) * step * 0.09 for k in range(len(codes))] if len(codes) > 1 else [0.0]
    ends: list[tuple[float, float, str, str]] = []
    alt_items: list[str] = []
    all_y: list[float] = [0.0]
    for k, code in enumerate(codes):
        colour = GROUP_COLOURS[k % len(GROUP_COLOURS)]
        xs: list[float] = []
        ys: list[float] = []
        lo: list[float] = []
        hi: list[float] = []
        hidden_periods = set(suppressed.get(code, ()))
        for period, stats in windows:
            by_code = {s.code: s for s in stats}
            s = by_code.get(code)
            ref = next((r for r in stats if r.is_reference), None)
            xs.append(_datenum(period))
            # A gap next to a shown reference rate would reveal a suppressed group rate, and vice versa.
            hide = (s is None or period in hidden_periods or _is_small_count(s.numerator)
                    or ref is None or _is_small_count(ref.numerator) or s.rate_difference is None)
            if hide or s is None or s.rate_difference is None:
                ys.append(np.nan)
                lo.append(np.nan)
                hi.append(np.nan)
                continue
            ys.append(s.rate_difference * scale)
            lo.append((s.rate_difference_ci_low if s.rate_difference_ci_low is not None else np.nan) * scale)
            hi.append((s.rate_difference_ci_high if s.rate_difference_ci_high is not None else np.nan) * scale)
        xa, ya, la, ha = (np.asarray(v, dtype=float) for v in (xs, ys, lo, hi))
        xa = xa + dodge[k]
        if len(codes) == 1:
            ax.fill_between(xa, la, ha, color=colour, alpha=0.18, linewidth=0, zorder=1)
        else:
            bars_x = np.column_stack([xa, xa, np.full_like(xa, np.nan)]).ravel()
            bars_y = np.column_stack([la, ha, np.full_like(xa, np.nan)]).ravel()
            ax.plot(bars_x, bars_y, color=colour, linewidth=1.2, alpha=0.7, zorder=2)
        ax.plot(xa, ya, color=colour, linewidth=2.0, linestyle=GROUP_LINESTYLES[k % len(GROUP_LINESTYLES)],
                marker=GROUP_MARKERS[k % len(GROUP_MARKERS)], markersize=5.5, zorder=3,
                label=_wrap(labels.get(code, code), 26))
        all_y.extend(float(v) for v in np.concatenate([ya, la, ha]) if np.isfinite(v))
        finite = np.flatnonzero(np.isfinite(ya))
        name = labels.get(code, code)
        if finite.size:
            i = int(finite[-1])
            ends.append((float(xa[i]), float(ya[i]), name, colour))
            interval = ""
            if np.isfinite(la[i]) and np.isfinite(ha[i]):
                interval = f" (95% CI {la[i]:+.1f} to {ha[i]:+.1f})"
            unit = " percentage points" if kind == "proportion" else (" per 1,000" if kind == "rate_per_1000"
                                                                       else "")
            when = _fmt_date(periods[i], granularity)
            alt_items.append(f"{name}: {ya[i]:+.1f}{unit}{interval} in {when}"
                             + (f", from {ya[int(finite[0])]:+.1f} in {_fmt_date(periods[int(finite[0])], granularity)}"
                                if finite.size > 1 else "") + ".")
        else:
            alt_items.append(f"{name}: counts under 8 in every period, not shown.")
    y_lo, y_hi = min(all_y), max(all_y)
    span = (y_hi - y_lo) or 1.0
    ax.set_ylim(y_lo - span * 0.08, y_hi + span * 0.08)
    if periods:
        ax.set_xlim(_datenum(periods[0]) - step * 0.5, _datenum(periods[-1]) + step * 0.5)
    if periods:
        _date_axis(ax, _datenum(periods[0]), _datenum(periods[-1]))
    unit_label = "Gap, percentage points" if kind == "proportion" else (
        "Gap, per 1,000" if kind == "rate_per_1000" else "Gap")
    ax.set_ylabel(unit_label, fontsize=AXIS_SIZE, color=INK)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:+g}".replace("-", "\u2212") if v else "0"))
    ax.text(1.01, 0, f"{_wrap(ref_label, 24)}\n(reference)", transform=ax.get_yaxis_transform(), va="center",
            ha="left", fontsize=9.5, color=INK, clip_on=False)
    _place_end_labels(fig, ax, ends)
    _header(fig, title, subtitle, [DISCLOSURE_NOTE + " Periods where either group's count is under 8 are left "
                                   "out (line broken)."])
    head = [f"{title}. Newcombe 95% intervals for the rate difference, {len(periods)} periods."]
    return fig, _fit_alt_text(head, alt_items, [DISCLOSURE_NOTE]), title


def _place_end_labels(fig: Figure, ax: Axes, ends: Sequence[tuple[float, float, str, str]]) -> None:
    """Label lines at their right-hand ends; fall back to a legend if labels would drift from their lines."""
    if not ends:
        return
    y0, y1 = ax.get_ylim()
    min_gap = (y1 - y0) * 0.085  # about two lines of 10pt text on this axes height
    order = sorted(range(len(ends)), key=lambda i: ends[i][1])
    placed = [ends[i][1] for i in order]
    for j in range(1, len(placed)):
        placed[j] = max(placed[j], placed[j - 1] + min_gap)
    drift = max(abs(p - ends[i][1]) for p, i in zip(placed, order, strict=True))
    # Also keep clear of the reference label at zero.
    if drift > 2.5 * min_gap or any(abs(p) < min_gap * 0.9 for p in placed):
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=10.0, handlelength=3.0,
                  borderaxespad=0.0)
        return
    for p, i in zip(placed, order, strict=True):
        _x, _y, name, colour = ends[i]
        ax.text(1.01, p, _wrap(name, 24), transform=ax.get_yaxis_transform(), va="center", ha="left",
                fontsize=10.0, color=colour, fontweight="bold", clip_on=False)


def gap_chart(
    windows: Sequence[tuple[date, Sequence[GroupStat]]],
    *,
    measure_name: str,
    kind: str,
    groups: Sequence[str] = (),
    suppressed: Mapping[str, Collection[date]] = {},
    max_groups: int = 4,
) -> Chart:
    """Rate difference against the reference over time, one line per group with its 95% interval band.

    Args:
        windows: (period, the GroupStats for that window); rate_difference fields are used.
        groups: codes to draw (default: every non-missing group, in NHS order), capped at ``max_groups``.
    """
    fig, alt, title = _build_gap_chart(windows, measure_name=measure_name, kind=kind, groups=groups,
                                       suppressed=suppressed, max_groups=max_groups)
    return Chart(png=_render(fig), alt_text=alt, title=title)
