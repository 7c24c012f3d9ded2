"""SPC small multiples: each group's series with its limits and signals, one panel per group."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta

import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FixedLocator, MaxNLocator, NullLocator

from bot.core import periods as per
from bot.core.charts.common import (
    AXIS_SIZE,
    CENTRE_COLOUR,
    DISCLOSURE_NOTE,
    GRID,
    INK,
    LIMIT_COLOUR,
    METHOD_TEXT,
    MISSING_CODES,
    MUTED,
    RECENT_DAYS,
    REF_CENTRE_COLOUR,
    REFERENCE_COLOUR,
    SERIES_COLOUR,
    TARGET_COLOUR,
    VARIATION_STYLES,
    BoolArray,
    Chart,
    FloatArray,
    _axis_label,
    _coarser_advice,
    _date_axis,
    _datenum,
    _fit_alt_text,
    _fmt,
    _fmt_date,
    _granularity,
    _header,
    _is_small_count,
    _new_figure,
    _period_axis,
    _points_text,
    _render,
    _rounded_number,
    _scale,
    _short_label,
    _sort_key,
    _style_axes,
    _tick_formatter,
    _wrap,
)
from bot.core.charts.icons import Icon, describe, draw_icons, icon_height, icons_for
from bot.core.charts.markers import (
    CYCLE_ALPHA,
    CYCLE_COLOUR,
    CycleMark,
    cycles_sentence,
    draw_cycles,
    draw_rebase,
    rebase_sentence,
    visible_cycles,
)
from bot.core.equity.types import Direction, SpcResult

MIN_WINDOW_PERIODS = 6  # a window shows at least this many periods when the series has them


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
    icons: tuple[
        Icon, ...
    ] = ()  # Making Data Count variation (and assurance) icons for the latest shown point


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
    direction: Direction | None = None,
    target: float | None = None,
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
                recent.append(
                    f"special cause of {kind_name}"
                    + (" at the latest point" if at_latest else " in the last three months")
                )
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
        icons=tuple(
            icons_for(result, direction=direction, target=target, shown=[bool(v) for v in np.isfinite(y)])
        ),
    )


def _step_xy(x: FloatArray, y: FloatArray, starts: BoolArray) -> tuple[FloatArray, FloatArray]:
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


def _broken(x: FloatArray, y: FloatArray, starts: BoolArray) -> tuple[FloatArray, FloatArray]:
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


def _latest_suppressed(s: _Series) -> bool:
    """The latest period is hidden by disclosure control (not merely missing)."""
    return bool(s.x.size and s.suppressed_x.size and np.isclose(s.suppressed_x, s.x[-1]).any())


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
    rebase: Sequence[date],
    cycles: Sequence[CycleMark],
    x_lim: tuple[float, float],
    first: bool,
    title_width: int,
    small: bool,
    room: float = 0.0,
) -> set[str]:
    """Draw one group's SPC chart; returns the legend keys it used."""
    used: set[str] = set()
    _style_axes(ax)
    if ref_centre is not None and not s.is_reference and np.isfinite(ref_centre[1]).any():
        ax.plot(
            ref_centre[0],
            ref_centre[1],
            color=REF_CENTRE_COLOUR,
            linewidth=3.0,
            solid_capstyle="butt",
            zorder=1,
        )
        used.add("ref_centre")
    if np.isfinite(s.centre).any():
        cx, cy = _step_xy(s.x, s.centre, s.segment_start)
        ax.plot(cx, cy, color=CENTRE_COLOUR, linewidth=1.0, zorder=2)
        used.add("median" if method == "run" else "centre")
    if s.has_limits:
        lx, ly = _step_xy(s.x, s.lower, s.segment_start)
        ux, uy = _step_xy(s.x, s.upper, s.segment_start)
        # One artist for both limits keeps the draw count (and render time) down on 18-group charts.
        ax.plot(
            np.concatenate([lx, [np.nan], ux]),
            np.concatenate([ly, [np.nan], uy]),
            color=LIMIT_COLOUR,
            linewidth=1.0,
            linestyle=(0, (1.5, 1.5)) if s.trial else (0, (5.0, 2.5)),
            zorder=2,
        )
        used.add("trial" if s.trial else "limits")
    if target is not None:
        ax.axhline(target, color=TARGET_COLOUR, linewidth=1.4, linestyle=(0, (6.0, 2.0, 1.0, 2.0)), zorder=2)
        used.add("target")
    if draw_cycles(ax, cycles, x_lim, small=small):
        used.add("pdsa")
    if rebase:
        draw_rebase(ax, rebase, x_lim, small=small, label=first)
        used.add("rebase")
    colour = REFERENCE_COLOUR if s.is_reference else SERIES_COLOUR
    dx, dy = _broken(s.x, s.y, s.segment_start)
    marker_size = 2.0 if small else 3.0
    ax.plot(
        dx,
        dy,
        color=colour,
        linewidth=2.2 if s.is_reference else 1.3,
        marker="o",
        markersize=marker_size,
        markeredgewidth=0,
        zorder=3,
    )
    for key, (vcolour, vmarker, _label) in VARIATION_STYLES.items():
        mask = np.array([v == key for v in s.variation], dtype=bool)
        if mask.any():
            ax.plot(
                s.x[mask],
                s.y[mask],
                linestyle="none",
                marker=vmarker,
                markersize=5.0 if small else 6.5,
                color=vcolour,
                markeredgecolor=INK,
                markeredgewidth=0.6,
                zorder=4,
            )
            used.add(key)
    if s.suppressed_x.size:
        # A suppressed period is a gap in the line (its value is NaN), never a mark at 0%: the legend says why.
        used.add("suppressed")
    hidden = _latest_suppressed(s)
    latest_hidden = hidden and not any(i.kind == "variation" for i in s.icons)
    # Say why there is no variation icon, rather than leave its absence to be guessed.
    draw_icons(ax, s.icons, small=small, note=("latest <8:\nno icon" if latest_hidden else ""))
    label = _short_label(s.label) if small else s.label
    title = _wrap(
        label + (" (ref.)" if small and s.is_reference else " (reference)" if s.is_reference else ""),
        title_width,
    )
    # Plain text, not set_title: the title re-measures every tick label on each draw to dodge them.
    ax.text(
        0.0,
        1.03,
        title,
        transform=ax.transAxes,
        ha="left",
        va="bottom",
        fontsize=9.0 if small else 11.5,
        color=INK,
        fontweight="bold" if s.is_reference else "normal",
    )
    note = ""
    if not np.isfinite(s.y).any():
        note = "all periods <8: not shown"
    elif method != "run" and not s.has_limits:
        note = "too few data for limits"
    elif s.trial and not small:  # crowded panels: the footnote says it once
        note = "trial limits"
    if note:
        ax.text(
            0.98,
            0.95 - (room if s.icons else 0.0),
            note,
            transform=ax.transAxes,
            ha="right",
            va="top",
            fontsize=9.5 if small else 10.0,
            color=MUTED,
            style="italic",
            zorder=5,
        )
    return used


_LEGEND_ORDER = (
    "centre",
    "median",
    "limits",
    "trial",
    "ref_centre",
    "target",
    "rebase",
    "pdsa",
    "improvement",
    "concern",
    "neutral",
    "suppressed",
)


def _legend_handles(used: set[str]) -> list[Artist]:
    handles: dict[str, Artist] = {
        "centre": Line2D([], [], color=CENTRE_COLOUR, linewidth=1.0, label="Centre line (mean)"),
        "median": Line2D([], [], color=CENTRE_COLOUR, linewidth=1.0, label="Median"),
        "limits": Line2D(
            [], [], color=LIMIT_COLOUR, linewidth=1.0, linestyle=(0, (5.0, 2.5)), label="Process limits"
        ),
        "trial": Line2D(
            [], [], color=LIMIT_COLOUR, linewidth=1.0, linestyle=(0, (1.5, 1.5)), label="Trial limits"
        ),
        "ref_centre": Line2D([], [], color=REF_CENTRE_COLOUR, linewidth=3.0, label="Reference centre line"),
        "target": Line2D(
            [], [], color=TARGET_COLOUR, linewidth=1.4, linestyle=(0, (6.0, 2.0, 1.0, 2.0)), label="Target"
        ),
        "rebase": Line2D([], [], color=MUTED, linewidth=1.0, linestyle=(0, (4.0, 2.0)), label="Rebased"),
        "pdsa": Patch(facecolor=CYCLE_COLOUR, alpha=CYCLE_ALPHA * 2, edgecolor="none", label="PDSA cycle"),
        "suppressed": Line2D([], [], color="none", label="Gap: count <8, suppressed"),
    }
    for key, (colour, marker, label) in VARIATION_STYLES.items():
        handles[key] = Line2D(
            [],
            [],
            color=colour,
            marker=marker,
            linestyle="none",
            markersize=7,
            markeredgecolor=INK,
            markeredgewidth=0.6,
            label=label,
        )
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
    direction: Direction | None = None,
    cycles: Sequence[CycleMark] = (),
    min_periods: int = MIN_WINDOW_PERIODS,
) -> tuple[Figure, str, str]:
    scale = _scale(kind)
    if not results:
        raise ValueError("group_timeseries needs at least one SpcResult")
    window_had = 0
    if since is not None:
        every = sorted({p.period for r in results for p in r.points})
        window_had = sum(1 for d in every if d >= since)
        if window_had < min_periods and len(every) > window_had:
            # A 3-month window over quarterly data is one point per group: widen it to show a pattern.
            since = every[-min(min_periods, len(every))]
        else:
            window_had = 0
        # The window's points only; their limits stay the ones worked out from the whole series.
        results = [replace(r, points=[p for p in r.points if p.period >= since]) for r in results]
        results = [r for r in results if r.points] or results
    methods = {r.method for r in results}
    method = results[0].method if len(methods) == 1 else "mixed"
    shown_codes, hidden = _select_groups(results, reference, focus, max_groups)
    by_code = {r.group: r for r in results}
    # Only the panels drawn (and the reference, for its centre line) need preparing.
    prepared = {
        code: _prepare_series(
            by_code[code],
            kind=kind,
            reference=reference,
            labels=labels,
            suppressed=suppressed.get(code, ()),
            rebase=rebase,
            direction=direction,
            target=target,
        )
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
    span = (
        f", {_fmt_date(periods[0], granularity)} to {_fmt_date(periods[-1], granularity)}" if periods else ""
    )
    subtitle = f"{method_text}. {_points_text(n_points, granularity)}{span}."
    footnote = [DISCLOSURE_NOTE + (" Trial limits: too few points for stable limits." if trial else "")]
    if hidden:
        footnote[0] += f" {len(hidden)} more group{'s' if len(hidden) != 1 else ''} in the dot plot."
    coarser = _coarser_advice(granularity)
    widened = ""
    if window_had:
        widened = (
            f"Showing the last {_points_text(len(periods), granularity)}: "
            f"the chosen window has only {_points_text(window_had, granularity)}."
        )
        footnote.append(widened)
    if thin:
        footnote.append(
            f"{round(100 * n_hidden / n_total)}% of group-periods have counts under 8 and are not shown: "
            f"{coarser} would show more."
        )

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
    fig = _new_figure()
    rows, cols = _grid(len(shown))
    small = rows * cols > 6
    top = 0.755
    bottom = 0.115 + 0.03 * len(footnote)
    grid = fig.add_gridspec(
        rows,
        cols,
        left=0.075,
        right=0.985,
        top=top,
        bottom=bottom,
        hspace=(1.0 if small else 0.55) if rows > 1 else 0.2,
        wspace=0.07,
    )
    room = 0.0
    if any(s.icons or _latest_suppressed(s) for s in shown):
        # Headroom above the data for the icons in each panel's top-right corner, so they never cover a point.
        panel_points = grid[0, 0].get_position(fig).height * fig.get_figheight() * 72.0
        room = min((icon_height(small) + 4.0) / max(panel_points, 1.0), 0.45)
        top_y = bottom_y + (top_y - bottom_y) / (1.0 - room)
    y_ticks = [
        float(t)
        for t in MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]).tick_values(bottom_y, top_y)
        if bottom_y <= t <= top_y
    ]
    xs = np.array([_datenum(d) for d in periods])
    step = float(np.median(np.diff(xs))) if xs.size > 1 else 30.0
    x_lim = (float(xs[0]) - step, float(xs[-1]) + step) if xs.size else (0.0, 1.0)

    title_width = int(118 / cols) if not small else int(100 / cols)
    # A cycle counts as on the chart when it overlaps the last period's span too, not only its start date.
    first_period = periods[0] if periods else date.min
    last_period = periods[-1] + timedelta(days=max(int(step) - 1, 0)) if periods else date.max
    marks = visible_cycles(cycles, first_period, last_period) if periods else []
    shown_rebase = [d for d in rebase if not periods or first_period < d <= last_period]
    used: set[str] = set()
    for i, s in enumerate(shown):
        # Unshared axes with ticks only on the outer edge: shared tickers make every panel lay out
        # every tick label, which dominated render time with 6-18 panels.
        ax = fig.add_subplot(grid[i // cols, i % cols])
        ax.set_xlim(*x_lim)
        ax.set_ylim(bottom_y, top_y)
        used |= _draw_panel(
            ax,
            s,
            method=method,
            ref_centre=ref_centre,
            target=target_y,
            rebase=shown_rebase,
            cycles=marks,
            x_lim=x_lim,
            first=i == 0,
            title_width=title_width,
            small=small,
            room=room,
        )
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
    fig.text(
        0.012,
        (top + bottom) / 2,
        _axis_label(kind),
        rotation=90,
        va="center",
        ha="left",
        fontsize=AXIS_SIZE,
        color=INK,
    )
    _header(fig, title, subtitle, footnote)
    handles = _legend_handles(used)
    if handles:
        fig.legend(
            handles=handles,
            loc="upper left",
            bbox_to_anchor=(0.005, 0.865),
            ncols=len(handles) if len(handles) <= 5 else math.ceil(len(handles) / 2),
            frameon=False,
            fontsize=10.0,
            handlelength=2.2,
            columnspacing=1.2,
            handletextpad=0.5,
            borderaxespad=0.0,
        )

    alt = _timeseries_alt_text(
        title,
        method_text,
        n_points,
        granularity,
        periods,
        shown,
        hidden,
        kind,
        coarser if thin else "",
        markers=" ".join(x for x in (widened, cycles_sentence(marks), rebase_sentence(shown_rebase)) if x),
    )
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
    markers: str = "",
) -> str:
    scale = _scale(kind)
    head = [f"{title}: one panel per group."]
    if periods:
        head.append(
            f"{method_text}; {_points_text(n_points, granularity)}, "
            f"{_fmt_date(periods[0], granularity)} to {_fmt_date(periods[-1], granularity)}."
        )
    if markers:
        head.append(markers)
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
        if s.icons:
            parts.append("icon: " + describe(s.icons))
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
    direction: Direction | None = None,
    cycles: Sequence[CycleMark] = (),
    min_periods: int = MIN_WINDOW_PERIODS,
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
        direction: the measure's improvement direction, for the Making Data Count icons (high or low).
        cycles: PDSA cycle windows to shade (plain values; the caller works out a running cycle's end).
        min_periods: a window with fewer periods than this is widened to this many, and the chart says so.
    """
    fig, alt, title = _build_group_timeseries(
        results,
        measure_name=measure_name,
        kind=kind,
        reference=reference,
        labels=labels,
        suppressed=suppressed,
        rebase=rebase,
        target=target,
        max_groups=max_groups,
        focus=focus,
        period=period,
        since=since,
        direction=direction,
        cycles=cycles,
        min_periods=min_periods,
    )
    return Chart(png=_render(fig), alt_text=alt, title=title)


# ---------------------------------------------------------------------------
# 2. Latest-window dot plot
# ---------------------------------------------------------------------------
