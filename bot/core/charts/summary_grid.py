"""The summary grid as an image: measure by group, latest value, Making Data Count icons and the gap verdict."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.offsetbox import AnnotationBbox

from bot.core.charts.common import (
    DISCLOSURE_NOTE,
    DPI,
    GRID,
    INK,
    MUTED,
    NOTE_SIZE,
    SUBTITLE_SIZE,
    TITLE_SIZE,
    Chart,
    _fit_alt_text,
    _render,
)
from bot.core.charts.icons import Icon, icon_area
from bot.core.equity.summary import SummaryRow, row_text

WIDTH = 10.0
ROW_IN = 0.52  # one group line, room for three lines of gap text
HEAD_IN = 1.25
FOOT_IN = 0.55
BLOCK_GAP_IN = 0.22
# Column left edges as fractions of the width.
COLUMNS = {"group": 0.012, "value": 0.215, "variation": 0.315, "assurance": 0.495, "gap": 0.675}
COLUMN_TITLES = {
    "group": "Group",
    "value": "Latest",
    "variation": "Variation",
    "assurance": "Assurance",
    "gap": "Gap against the reference",
}
FONT = 9.0


def _lines(text: str, width: int, max_lines: int = 2) -> str:
    """Word-boundary wrap; past `max_lines` whole words are left off and marked " …" (never mid-word)."""
    lines = textwrap.wrap(text, width=width, break_long_words=False, break_on_hyphens=False)
    if len(lines) <= max_lines:
        return "\n".join(lines)
    return "\n".join(lines[:max_lines]) + " …"


def _icon_cell(fig: Figure, icon: Icon | None, x: float, y: float, width_chars: int, empty: str) -> None:
    if icon is None:
        fig.text(x, y, empty, fontsize=FONT, color=MUTED, va="center", ha="left", style="italic")
        return
    box = AnnotationBbox(
        icon_area(icon, 20.0),
        (x + 0.012, y),
        xycoords="figure fraction",
        frameon=False,
        box_alignment=(0.5, 0.5),
        pad=0.0,
    )
    box.set_gid(f"icon-{icon.key}")
    fig.add_artist(box)
    fig.text(x + 0.03, y, _lines(icon.words, width_chars), fontsize=FONT, color=INK, va="center", ha="left")


def _build_summary_grid(rows: Sequence[SummaryRow], *, project_name: str) -> tuple[Figure, str, str]:
    if not rows:
        raise ValueError("summary_grid needs at least one measure")
    n_lines = sum(max(len(r.cells), 1) for r in rows)
    height = HEAD_IN + FOOT_IN + n_lines * ROW_IN + len(rows) * (BLOCK_GAP_IN + 0.45)
    fig = Figure(figsize=(WIDTH, height), dpi=DPI, facecolor="white")
    FigureCanvasAgg(fig)

    def fy(inches_from_top: float) -> float:
        return 1.0 - inches_from_top / height

    title = f"{project_name}: equity summary"
    fig.text(0.012, fy(0.2), title, fontsize=TITLE_SIZE, fontweight="bold", color=INK, va="top")
    fig.text(
        0.012,
        fy(0.58),
        "Each measure by group: the latest value, its Making Data Count icons and the gap against the reference.",
        fontsize=SUBTITLE_SIZE,
        color=MUTED,
        va="top",
    )
    at = HEAD_IN
    for key, x in COLUMNS.items():
        fig.text(
            x, fy(at - 0.12), COLUMN_TITLES[key], fontsize=FONT, color=MUTED, fontweight="bold", va="bottom"
        )
    fig.add_artist(
        _rule(fig, fy(at - 0.06)),
    )
    for row in rows:
        at += BLOCK_GAP_IN
        head = f"{row.measure} ({row.window})" + (f". {row.note}" if row.note else "")
        fig.text(0.012, fy(at), _lines(head, 140, 1), fontsize=10.0, fontweight="bold", color=INK, va="top")
        if row.gap_basis:
            fig.text(0.012, fy(at + 0.2), row.gap_basis + ".", fontsize=NOTE_SIZE, color=MUTED, va="top")
        at += 0.45
        if not row.cells:
            fig.text(
                0.012, fy(at + ROW_IN / 2), "No groups to show.", fontsize=FONT, color=MUTED, va="center"
            )
            at += ROW_IN
        for cell in row.cells:
            y = fy(at + ROW_IN / 2)
            name = cell.name + (" (reference)" if cell.is_reference else "")
            fig.text(
                COLUMNS["group"],
                y,
                _lines(name, 30),
                fontsize=FONT,
                color=INK,
                va="center",
                fontweight="bold" if cell.is_reference else "normal",
            )
            fig.text(
                COLUMNS["value"],
                y,
                _lines(cell.value, 12, 3),
                fontsize=FONT,
                color=INK if cell.shown else MUTED,
                style="normal" if cell.shown else "italic",
                va="center",
            )
            _icon_cell(fig, cell.variation, COLUMNS["variation"], y, 18, _lines(cell.variation_note, 18))
            _icon_cell(
                fig, cell.assurance, COLUMNS["assurance"], y, 18, "no target" if not row.has_target else "n/a"
            )
            fig.text(
                COLUMNS["gap"],
                y,
                # Up to three lines: a levelling-down caveat must never be the part left off.
                _lines(cell.gap or "not compared", 44, 3),
                fontsize=FONT,
                color=INK,
                va="center",
            )
            at += ROW_IN
            fig.add_artist(_rule(fig, fy(at), colour=GRID))
    fig.text(
        0.012,
        fy(height - 0.1),
        DISCLOSURE_NOTE + " Values are rates over each measure's latest window, from rounded counts.",
        fontsize=NOTE_SIZE,
        color=MUTED,
        va="bottom",
    )
    head_alt = [f"{title}. Each measure by group."]
    items: list[str] = []
    for r in rows:
        sentences = row_text(r)
        basis = f" {r.gap_basis}." if r.gap_basis else ""
        items.append(f"{r.measure} ({r.window}).{basis} " + (sentences[0] if sentences else "No groups."))
        items.extend(sentences[1:])
    alt = _fit_alt_text(head_alt, items, [DISCLOSURE_NOTE], what="rows")
    return fig, alt, title


def _rule(fig: Figure, y: float, colour: str = "#9A9A9A") -> Line2D:
    return Line2D([0.012, 0.988], [y, y], transform=fig.transFigure, color=colour, linewidth=0.8)


def summary_grid(rows: Sequence[SummaryRow], *, project_name: str) -> Chart:
    """The summary grid as a PNG with alt text that reads the table row by row."""
    fig, alt, title = _build_summary_grid(rows, project_name=project_name)
    return Chart(png=_render(fig), alt_text=alt, title=title)
