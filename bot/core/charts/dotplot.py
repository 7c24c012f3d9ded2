"""The latest window's rates by group, with intervals: a dot plot."""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.transforms import blended_transform_factory

from bot.core import ethnicity
from bot.core.charts.common import (
    AXIS_SIZE,
    DISCLOSURE_NOTE,
    GRID,
    INK,
    MISSING_CODES,
    MUTED,
    REFERENCE_COLOUR,
    Chart,
    _axis_label,
    _fit_alt_text,
    _fmt,
    _fmt_interval,
    _header,
    _is_small_count,
    _new_figure,
    _render,
    _rounded_count,
    _scale,
    _sort_key,
    _style_axes,
    _tick_formatter,
    _wrap,
)
from bot.core.equity.types import GroupStat


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
    groups = sorted(
        (s for s in stats if not s.is_reference and s.code not in MISSING_CODES),
        key=lambda s: _sort_key(s.code),
    )
    missing = sorted(
        (s for s in stats if not s.is_reference and s.code in MISSING_CODES), key=lambda s: _sort_key(s.code)
    )
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
    ref_rate = (
        ref_stat.rate
        if ref_stat and ref_stat.rate is not None and not _stat_hidden(ref_stat, suppressed_set)
        else None
    )

    title = f"{measure_name}, {window_label}: rate by ethnic group"
    ref_text = (
        f" Dashed line: reference group ({ref_stat.label})." if ref_stat and ref_rate is not None else ""
    )
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
    dots: dict[str, tuple[list[float], list[float]]] = {
        "ref": ([], []),
        "group": ([], []),
        "missing": ([], []),
    }
    tick_labels: list[str] = []
    alt_items: list[str] = []
    hidden_names: list[str] = []
    for s, y in zip(rows, positions, strict=True):
        role = "ref" if s.is_reference else ("missing" if s.code in MISSING_CODES else "group")
        name = s.label + (" (reference)" if s.is_reference else "")
        if role == "missing" and f"({s.code})" not in name:
            name += f" ({s.code})"
        if len(name) > label_width:
            # The compact NHS label ("Any other Black (P)") rather than a name cut mid-word.
            name = _compact(s.code, s.label) + (" (reference)" if s.is_reference else "")
        tick_labels.append(_wrap(name, label_width, max_lines=1))
        if _stat_hidden(s, suppressed_set):
            ax.text(
                x_max * 0.01,
                y,
                "<8 — not shown",
                va="center",
                ha="left",
                fontsize=font,
                color=MUTED,
                style="italic",
                # Over the reference line, not struck through by it.
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 1.0},
                zorder=4,
            )
            hidden_names.append(s.label)
            continue
        if s.rate is None:
            ax.text(
                x_max * 0.01, y, "no data", va="center", ha="left", fontsize=font, color=MUTED, style="italic"
            )
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
        ax.text(
            0.785,
            y,
            f"{value} ({interval})" if interval else value,
            transform=column,
            va="center",
            ha="left",
            fontsize=font,
            color=MUTED if role == "missing" else INK,
            clip_on=False,
        )
        ax.text(
            0.988,
            y,
            shown_n,
            transform=column,
            va="center",
            ha="right",
            fontsize=font - 0.5,
            color=MUTED,
            clip_on=False,
        )
        compare = ""
        if not s.is_reference and ref_rate is not None and s.ci_low is not None and s.ci_high is not None:
            if s.ci_low > ref_rate:
                compare = ", higher than the reference (interval excludes it)"
            elif s.ci_high < ref_rate:
                compare = ", lower than the reference (interval excludes it)"
            else:
                compare = ", interval includes the reference rate"
        alt_items.append(
            f"{name}: {_fmt(s.rate, kind)}" + (f" (95% CI {interval})" if interval else "") + compare + "."
        )
    ax.plot(ci_x, ci_y, color=INK, linewidth=1.6, solid_capstyle="butt", zorder=2)
    ax.plot(missing_ci_x, missing_ci_y, color="#A0A0A0", linewidth=1.4, solid_capstyle="butt", zorder=2)
    ax.plot(
        *dots["group"],
        linestyle="none",
        marker="o",
        markersize=7.5,
        color="#0072B2",
        markeredgecolor="white",
        markeredgewidth=0.8,
        zorder=3,
    )
    ax.plot(
        *dots["ref"],
        linestyle="none",
        marker="s",
        markersize=8.0,
        color=REFERENCE_COLOUR,
        markeredgecolor="white",
        markeredgewidth=0.8,
        zorder=3,
    )
    ax.plot(
        *dots["missing"],
        linestyle="none",
        marker="o",
        markersize=7.0,
        markerfacecolor="white",
        markeredgecolor="#8A8A8A",
        markeredgewidth=1.4,
        zorder=3,
    )
    if ref_rate is not None:
        ax.axvline(
            ref_rate * scale, color=REFERENCE_COLOUR, linewidth=1.0, linestyle=(0, (4.0, 3.0)), zorder=1
        )
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
    ax.text(
        0.785,
        -0.6,
        "Rate (95% CI)",
        transform=column,
        va="bottom",
        ha="left",
        fontsize=font - 0.5,
        color=MUTED,
        clip_on=False,
    )
    ax.text(
        0.988,
        -0.6,
        "Size",
        transform=column,
        va="bottom",
        ha="right",
        fontsize=font - 0.5,
        color=MUTED,
        clip_on=False,
    )
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
    fig, alt, title = _build_latest_window_dotplot(
        stats, measure_name=measure_name, kind=kind, window_label=window_label, suppressed=suppressed
    )
    return Chart(png=_render(fig), alt_text=alt, title=title)


# ---------------------------------------------------------------------------
# 3. Ethnicity recording completeness
# ---------------------------------------------------------------------------


def _compact(code: str, label: str) -> str:
    try:
        return ethnicity.short_label(code)
    except ValueError:
        return label
