"""What every chart shares: sizes, colours, the Chart record, number and date formatting, figure set-up."""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt
from matplotlib import dates as mdates
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter

from bot.core import periods as per

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
            return short + label[len(long) :]
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
            return per.label(d, period).replace(
                " ", "\n"
            )  # "2024/25" over "Q1": narrow enough for small panels
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
    """Wrap on word boundaries only. Too long for `max_lines`: the short NHS heading ("Black: Any other Black
    background"), then one more line; only past that are whole words left off, marked "…". Never mid-word."""
    width = max(width, 8)

    def lines_of(t: str) -> list[str]:
        return textwrap.wrap(t, width=width, break_long_words=False, break_on_hyphens=False)

    lines = lines_of(text)
    if len(lines) <= max_lines:
        return "\n".join(lines)
    short = _short_label(text)
    if len(lines_of(short)) <= max_lines:
        return "\n".join(lines_of(short))
    lines = lines_of(short)
    if len(lines) <= max_lines + 1:
        return "\n".join(lines)
    kept = lines[: max_lines + 1]
    return "\n".join(kept) + " …"


def _fit_alt_text(
    head: Sequence[str], items: Sequence[str], tail: Sequence[str], what: str = "groups"
) -> str:
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
        fig.text(
            0.012,
            0.012,
            "\n".join(footnote),
            fontsize=NOTE_SIZE,
            color=MUTED,
            va="bottom",
            ha="left",
            linespacing=1.35,
        )


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
