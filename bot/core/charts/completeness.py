"""How completely ethnicity was recorded, period by period."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from bot.core import periods as per
from bot.core.charts.common import (
    AXIS_SIZE,
    INK,
    Chart,
    _date_axis,
    _datenum,
    _fit_alt_text,
    _fmt_date,
    _granularity,
    _header,
    _new_figure,
    _period_axis,
    _render,
    _style_axes,
    _tick_formatter,
)
from bot.core.charts.markers import (
    CYCLE_BAR_COLOUR,
    CycleMark,
    cycles_sentence,
    draw_cycle_bars,
    visible_cycles,
)

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


def axis_floor(lowest_valid: float) -> float:
    """Where the y axis starts: 0, unless every valid share is 60% or more; then 5 points under the lowest,
    on a multiple of 5, so the variation between periods shows rather than a wall of blue."""
    if lowest_valid < 60.0:
        return 0.0
    return float(max(0, int((lowest_valid - 5.0) // 5) * 5))


def zoomed_ticks(floor: float) -> list[float]:
    """Ticks from a cut axis's floor to 100%, on a step that lands on 100 (so the top of the bars is labelled) with
    at most 9 of them: 85 gives 85, 90, 95, 100 rather than 85, 87 ... 99."""
    span = 100 - int(floor)
    step = next((s for s in (1, 2, 5, 10) if span % s == 0 and span // s + 1 <= 9), 5)
    return [float(t) for t in range(100, int(floor) - 1, -step)][::-1]


def zoom_note(floor: float) -> str:
    return f"The axis starts at {floor:g}%, not 0%, to show the variation: the bars are cut at the bottom."


def _axis_break(ax: Axes) -> None:
    """Two short slanted strokes across the foot of the y axis: the usual sign that the axis does not start at 0."""
    for dy in (0.0, 0.025):
        ax.plot(
            [-0.012, 0.012],
            [0.02 + dy, 0.04 + dy],
            transform=ax.transAxes,
            color=INK,
            clip_on=False,
            linewidth=1.2,
            zorder=6,
            gid="axis-break",
        )


def _build_completeness_chart(
    by_period: Sequence[tuple[date, float, float, float]],
    *,
    measure_name: str,
    period: str | None = None,
    cycles: Sequence[CycleMark] = (),
) -> tuple[Figure, str, str]:
    rows = sorted(by_period, key=lambda r: r[0])
    if not rows:
        raise ValueError("completeness_chart needs at least one period")
    periods = [r[0] for r in rows]
    granularity = _granularity(periods, period)
    x = np.array([_datenum(d) for d in periods], dtype=np.float64)
    shares = np.array([[r[1], r[2], r[3]] for r in rows], dtype=float) * 100.0
    title = f"Ethnicity recording: {measure_name}"
    subtitle = (
        "Share of records each period: valid category, Not stated (Z) and Not known (99) shown separately."
    )
    fig = _new_figure()
    ax = fig.add_axes((0.075, 0.15, 0.72, 0.62))
    _style_axes(ax)
    width = float(np.median(np.diff(x))) * 0.8 if len(x) > 1 else 20.0
    bottom = np.zeros(len(x))
    handles: list[Artist] = []
    for j, (label, colour, hatch) in enumerate(COMPLETENESS_SERIES):
        # Hatching carries the distinction for readers who cannot separate the colours.
        if len(x) <= 60:
            ax.bar(
                x,
                shares[:, j],
                width=width,
                bottom=bottom,
                color=colour,
                hatch=hatch or None,
                edgecolor="white",
                linewidth=0.4 if hatch else 0.0,
                zorder=2,
            )
        else:
            ax.fill_between(
                x,
                bottom,
                bottom + shares[:, j],
                step="mid",
                facecolor=colour,
                hatch=hatch or None,
                edgecolor="white",
                linewidth=0.0,
                zorder=2,
            )
        handles.append(Patch(facecolor=colour, hatch=hatch or None, edgecolor="white", label=label))
        bottom = bottom + shares[:, j]
    floor = axis_floor(float(shares[:, 0].min()))
    styles = ("-", "--", ":")
    for (level, label), style in zip(THRESHOLDS, styles, strict=True):
        if level * 100 < floor:
            continue
        ax.axhline(level * 100, color=INK, linewidth=1.1, linestyle=style, zorder=3)
        ax.text(
            1.01,
            level * 100,
            label,
            transform=ax.get_yaxis_transform(),
            va="center",
            ha="left",
            fontsize=10.0,
            color=INK,
            clip_on=False,
        )
    ax.set_ylim(floor, 100)
    if floor > 0:
        ax.set_yticks(zoomed_ticks(floor))
        _axis_break(ax)
    else:
        ax.set_yticks([0, 20, 40, 60, 80, 90, 100])
    ax.yaxis.set_major_formatter(_tick_formatter("proportion"))
    ax.set_ylabel("Share of records", fontsize=AXIS_SIZE, color=INK)
    pad = width if len(x) > 1 else 30.0
    ax.set_xlim(x[0] - pad, x[-1] + pad)
    if granularity in per.RANK:
        _period_axis(ax, periods, granularity, max_ticks=8)
    else:
        _date_axis(ax, float(x[0]), float(x[-1]))
    last = periods[-1] + timedelta(days=max(int(pad) - 1, 0))
    marks = visible_cycles(cycles, periods[0], last)
    if draw_cycle_bars(ax, marks, (float(x[0] - pad), float(x[-1] + pad))):
        handles.append(Patch(facecolor=CYCLE_BAR_COLOUR, edgecolor="none", label="PDSA cycle"))
    fig.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(0.005, 0.865),
        ncols=3,
        frameon=False,
        fontsize=10.5,
        handlelength=2.0,
        borderaxespad=0.0,
    )
    _header(
        fig,
        title,
        subtitle,
        [
            "Thresholds are the bot's proposed tiers for valid ethnic category "
            "(not a national standard). Shares only; no counts shown."
        ]
        + ([zoom_note(floor)] if floor > 0 else []),
    )
    valid, z, nk = shares[-1]
    lines = [f"{level:.0%}" for level, _ in THRESHOLDS if level * 100 >= floor]
    head = [
        f"{title}. Stacked bars of the share of records per {per.noun(granularity) if granularity in per.RANK else granularity.rstrip('ly') or 'period'}, "
        f"{len(rows)} periods, {_fmt_date(periods[0], granularity)} to {_fmt_date(periods[-1], granularity)}."
    ]
    items = [
        f"Latest ({_fmt_date(periods[-1], granularity)}): valid {valid:.1f}%, Not stated (Z) {z:.1f}%, "
        f"Not known (99) {nk:.1f}%; valid share is {_band(valid / 100)}.",
        f"Valid share ranged {shares[:, 0].min():.1f}% to {shares[:, 0].max():.1f}% "
        f"(first period {shares[0, 0]:.1f}%).",
        "Threshold lines at " + " and ".join(", ".join(lines).rsplit(", ", 1)) + ".",
    ]
    if floor > 0:
        items.insert(0, zoom_note(floor))
    if marks:
        head.append(cycles_sentence(marks).replace("shaded", "marked above the bars"))
    return fig, _fit_alt_text(head, items, [], what="notes"), title


def completeness_chart(
    by_period: Sequence[tuple[date, float, float, float]],
    *,
    measure_name: str,
    period: str | None = None,
    cycles: Sequence[CycleMark] = (),
) -> Chart:
    """Stacked shares per period of valid (A–S), Not stated (Z) and Not known (99), with 95/90/80% lines.

    Args:
        by_period: (period, valid share, Not stated share, Not known share), shares as fractions.
        cycles: PDSA cycle windows, drawn as bars above the plot (shading would tint the stacked colours).
    """
    fig, alt, title = _build_completeness_chart(
        by_period, measure_name=measure_name, period=period, cycles=cycles
    )
    return Chart(png=_render(fig), alt_text=alt, title=title)


# ---------------------------------------------------------------------------
# 4. Gap against the reference over time
# ---------------------------------------------------------------------------
