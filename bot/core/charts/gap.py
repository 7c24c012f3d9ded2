"""The gap between each focus group and the reference, over time."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import date

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from bot.core.charts.common import (
    AXIS_SIZE,
    DISCLOSURE_NOTE,
    GROUP_COLOURS,
    GROUP_LINESTYLES,
    GROUP_MARKERS,
    INK,
    MISSING_CODES,
    REFERENCE_COLOUR,
    Chart,
    _date_axis,
    _datenum,
    _fit_alt_text,
    _fmt_date,
    _granularity,
    _header,
    _is_small_count,
    _new_figure,
    _render,
    _scale,
    _sort_key,
    _style_axes,
    _wrap,
)
from bot.core.equity.types import GroupStat


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
    subtitle = (
        "Rate difference (group minus reference) with its 95% confidence interval; 0 = same as reference."
    )
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
            hide = (
                s is None
                or period in hidden_periods
                or _is_small_count(s.numerator)
                or ref is None
                or _is_small_count(ref.numerator)
                or s.rate_difference is None
            )
            if hide or s is None or s.rate_difference is None:
                ys.append(np.nan)
                lo.append(np.nan)
                hi.append(np.nan)
                continue
            ys.append(s.rate_difference * scale)
            lo.append((s.rate_difference_ci_low if s.rate_difference_ci_low is not None else np.nan) * scale)
            hi.append(
                (s.rate_difference_ci_high if s.rate_difference_ci_high is not None else np.nan) * scale
            )
        xa, ya, la, ha = (np.asarray(v, dtype=float) for v in (xs, ys, lo, hi))
        xa = xa + dodge[k]
        if len(codes) == 1:
            ax.fill_between(xa, la, ha, color=colour, alpha=0.18, linewidth=0, zorder=1)
        else:
            bars_x = np.column_stack([xa, xa, np.full_like(xa, np.nan)]).ravel()
            bars_y = np.column_stack([la, ha, np.full_like(xa, np.nan)]).ravel()
            ax.plot(bars_x, bars_y, color=colour, linewidth=1.2, alpha=0.7, zorder=2)
        ax.plot(
            xa,
            ya,
            color=colour,
            linewidth=2.0,
            linestyle=GROUP_LINESTYLES[k % len(GROUP_LINESTYLES)],
            marker=GROUP_MARKERS[k % len(GROUP_MARKERS)],
            markersize=5.5,
            zorder=3,
            label=_wrap(labels.get(code, code), 26),
        )
        all_y.extend(float(v) for v in np.concatenate([ya, la, ha]) if np.isfinite(v))
        finite = np.flatnonzero(np.isfinite(ya))
        name = labels.get(code, code)
        if finite.size:
            i = int(finite[-1])
            ends.append((float(xa[i]), float(ya[i]), name, colour))
            interval = ""
            if np.isfinite(la[i]) and np.isfinite(ha[i]):
                interval = f" (95% CI {la[i]:+.1f} to {ha[i]:+.1f})"
            unit = (
                " percentage points"
                if kind == "proportion"
                else (" per 1,000" if kind == "rate_per_1000" else "")
            )
            when = _fmt_date(periods[i], granularity)
            alt_items.append(
                f"{name}: {ya[i]:+.1f}{unit}{interval} in {when}"
                + (
                    f", from {ya[int(finite[0])]:+.1f} in {_fmt_date(periods[int(finite[0])], granularity)}"
                    if finite.size > 1
                    else ""
                )
                + "."
            )
        else:
            alt_items.append(f"{name}: counts under 8 in every period, not shown.")
    y_lo, y_hi = min(all_y), max(all_y)
    span = (y_hi - y_lo) or 1.0
    ax.set_ylim(y_lo - span * 0.08, y_hi + span * 0.08)
    if periods:
        ax.set_xlim(_datenum(periods[0]) - step * 0.5, _datenum(periods[-1]) + step * 0.5)
    if periods:
        _date_axis(ax, _datenum(periods[0]), _datenum(periods[-1]))
    unit_label = (
        "Gap, percentage points"
        if kind == "proportion"
        else ("Gap, per 1,000" if kind == "rate_per_1000" else "Gap")
    )
    ax.set_ylabel(unit_label, fontsize=AXIS_SIZE, color=INK)
    ax.yaxis.set_major_formatter(
        FuncFormatter(lambda v, _pos: f"{v:+g}".replace("-", "\u2212") if v else "0")
    )
    ax.text(
        1.01,
        0,
        f"{_wrap(ref_label, 24)}\n(reference)",
        transform=ax.get_yaxis_transform(),
        va="center",
        ha="left",
        fontsize=9.5,
        color=INK,
        clip_on=False,
    )
    _place_end_labels(fig, ax, ends)
    _header(
        fig,
        title,
        subtitle,
        [DISCLOSURE_NOTE + " Periods where either group's count is under 8 are left out (line broken)."],
    )
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
        ax.legend(
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            frameon=False,
            fontsize=10.0,
            handlelength=3.0,
            borderaxespad=0.0,
        )
        return
    for p, i in zip(placed, order, strict=True):
        _x, _y, name, colour = ends[i]
        ax.text(
            1.01,
            p,
            _wrap(name, 24),
            transform=ax.get_yaxis_transform(),
            va="center",
            ha="left",
            fontsize=10.0,
            color=colour,
            fontweight="bold",
            clip_on=False,
        )


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
    fig, alt, title = _build_gap_chart(
        windows,
        measure_name=measure_name,
        kind=kind,
        groups=groups,
        suppressed=suppressed,
        max_groups=max_groups,
    )
    return Chart(png=_render(fig), alt_text=alt, title=title)
