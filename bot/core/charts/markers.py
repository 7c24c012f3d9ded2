"""PDSA cycle windows and rebase points on a time-series chart, and the words that describe them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from matplotlib.axes import Axes

from bot.core.charts.common import MUTED, _datenum

CYCLE_COLOUR = "#56B4E9"  # Okabe-Ito sky blue, light enough behind the data
CYCLE_ALPHA = 0.16


@dataclass(frozen=True)
class CycleMark:
    """One PDSA cycle's window on a chart: from its Do start to its Study date, or to `end` while it runs.

    Plain values, so the chart stays pure: the service works out `end` (today for a running cycle)."""

    label: str  # the cycle's short reference, e.g. "C3"
    start: date
    end: date
    running: bool = False


def visible_cycles(cycles: Sequence[CycleMark], first: date, last: date) -> list[CycleMark]:
    """Cycles whose window overlaps the chart's periods, in start order."""
    return sorted((c for c in cycles if c.end >= first and c.start <= last), key=lambda c: (c.start, c.label))


def draw_cycles(
    ax: Axes, cycles: Sequence[CycleMark], x_lim: tuple[float, float], *, small: bool, label: bool = True
) -> int:
    """Shaded spans behind the data with the cycle's reference at the top; returns how many were drawn."""
    drawn = 0
    for c in cycles:
        x0 = max(_datenum(c.start), x_lim[0])
        x1 = min(_datenum(c.end), x_lim[1])
        if x1 < x0:
            continue
        if x1 - x0 < 2.0:
            x1 = x0 + 2.0  # a one-day cycle still shows as a sliver
        span = ax.axvspan(x0, x1, color=CYCLE_COLOUR, alpha=CYCLE_ALPHA, linewidth=0, zorder=0.5)
        span.set_gid(f"pdsa-{c.label}")
        if label:
            ax.text(
                x0,
                0.0,
                " " + c.label,
                transform=ax.get_xaxis_transform(),
                ha="left",
                va="bottom",
                fontsize=7.0 if small else 8.5,
                color="#1F4E79",
                zorder=5,
                gid=f"pdsa-label-{c.label}",
            )
        drawn += 1
    return drawn


CYCLE_BAR_COLOUR = "#404040"  # dark grey: never mistaken for a stacked share


def draw_cycle_bars(ax: Axes, cycles: Sequence[CycleMark], x_lim: tuple[float, float]) -> int:
    """Cycle windows as labelled bars just above the plot, for charts whose own colours shading would tint."""
    drawn = 0
    for c in cycles:
        x0 = max(_datenum(c.start), x_lim[0])
        x1 = max(min(_datenum(c.end), x_lim[1]), x0 + 2.0)
        if x0 > x_lim[1]:
            continue
        ax.plot(
            [x0, x1],
            [1.025, 1.025],
            transform=ax.get_xaxis_transform(),
            color=CYCLE_BAR_COLOUR,
            linewidth=4.0,
            solid_capstyle="butt",
            clip_on=False,
            gid=f"pdsa-{c.label}",
        )
        ax.text(
            x0,
            1.045,
            c.label,
            transform=ax.get_xaxis_transform(),
            ha="left",
            va="bottom",
            fontsize=8.5,
            color=CYCLE_BAR_COLOUR,
            clip_on=False,
            gid=f"pdsa-label-{c.label}",
        )
        drawn += 1
    return drawn


def draw_rebase(
    ax: Axes, rebase: Sequence[date], x_lim: tuple[float, float], *, small: bool, label: bool
) -> None:
    """A dashed vertical line at each rebase, labelled "rebased" (on the first panel of a grid)."""
    for d in rebase:
        x = _datenum(d)
        if not x_lim[0] <= x <= x_lim[1]:
            continue
        ax.axvline(x, color=MUTED, linewidth=1.0, linestyle=(0, (4.0, 2.0)), zorder=2, gid="rebase")
        if label:
            ax.text(
                x,
                0.5,
                "rebased ",
                transform=ax.get_xaxis_transform(),
                rotation=90,
                ha="right",
                va="center",
                fontsize=7.0 if small else 8.5,
                color=MUTED,
                zorder=5,
                gid="rebase-label",
            )


def cycles_sentence(cycles: Sequence[CycleMark]) -> str:
    """'PDSA cycles shaded: C1 (1 Feb 2026 to 1 Mar 2026), C2 (running since 2 Mar 2026).'"""
    if not cycles:
        return ""

    def day(d: date) -> str:
        return f"{d.day} {d.strftime('%b %Y')}"

    parts = [
        f"{c.label} (running since {day(c.start)})"
        if c.running
        else f"{c.label} ({day(c.start)} to {day(c.end)})"
        for c in cycles
    ]
    noun = "PDSA cycle" if len(cycles) == 1 else "PDSA cycles"
    return f"{noun} shaded: " + ", ".join(parts) + "."


def rebase_sentence(rebase: Sequence[date]) -> str:
    if not rebase:
        return ""
    days = ", ".join(f"{d.day} {d.strftime('%b %Y')}" for d in sorted(rebase))
    return f"Limits rebased from {days} (dashed line)."
