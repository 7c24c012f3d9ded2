"""The summary grid as Block Kit: one section per measure, a line per group (value, icons in words, gap)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.core import blockkit as blocks
from bot.core.equity.summary import SummaryCell, SummaryRow

Block = dict[str, Any]

MAX_MEASURES = 12  # keeps a message within Slack's 50 blocks alongside the measure list
SECTION_LIMIT = 3000


def _cell_line(cell: SummaryCell) -> str:
    name = f"*{blocks.typed(cell.name)}*" + (" (reference)" if cell.is_reference else "")
    value = cell.value if cell.shown else f"_{cell.value}_"
    parts = [f"{name} {value}", cell.variation_words]
    if cell.assurance is not None:
        parts.append(cell.assurance_words)
    if cell.gap and not cell.is_reference:
        parts.append(cell.gap)
    return " · ".join(parts)


def _row_text(row: SummaryRow) -> str:
    head = f"*{blocks.typed(row.measure)}* ({row.window})"
    lines = [head] + [f"• {_cell_line(c)}" for c in row.cells]
    if not row.cells:
        lines.append("• no groups to show yet")
    text = "\n".join(lines)
    return text if len(text) <= SECTION_LIMIT else text[: SECTION_LIMIT - 1].rsplit("\n", 1)[0] + "\n…"


def summary_blocks(
    project_name: str,
    rows: Sequence[SummaryRow],
    *,
    without_data: Sequence[str] = (),
    failed: Sequence[str] = (),
    image: tuple[str, str, str] | None = None,
) -> tuple[list[Block], str]:
    """The grid for `/equity` and the Home tab; `image` is an uploaded PNG of it (file id, alt text, title)."""
    out: list[Block] = [
        blocks.section(
            f"*Equity summary for {blocks.typed(project_name)}*: the latest value for each group, its Making Data "
            "Count variation and assurance, and the gap against the reference group."
        )
    ]
    if image is not None:
        file_id, alt, title = image
        out.append(
            {
                "type": "image",
                "slack_file": {"id": file_id},
                "alt_text": alt[:2000],
                "title": blocks.plain(title[:1990]),
            }
        )
    for row in rows[:MAX_MEASURES]:
        out.append(blocks.section(_row_text(row)))
        notes = [n for n in (row.gap_basis + "." if row.gap_basis else "", row.note) if n]
        if notes:
            out.append(blocks.context(" ".join(notes)))
    extra: list[str] = []
    if len(rows) > MAX_MEASURES:
        extra.append(f"{len(rows) - MAX_MEASURES} more measures: `/equity <name>` shows each one.")
    if without_data:
        extra.append("No data yet: " + ", ".join(blocks.typed(n) for n in without_data) + ".")
    if failed:
        extra.append(
            "Could not be analysed: "
            + ", ".join(blocks.typed(n) for n in failed)
            + " (check with `/measure log`)."
        )
    extra.append("Counts of 1 to 7 are never shown; rates come from counts rounded to 5.")
    out.append(blocks.context(" ".join(extra)))
    lines = [f"Equity summary for {blocks.typed(project_name)}."]
    lines += [f"{blocks.typed(r.measure)}: " + "; ".join(_cell_line(c) for c in r.cells) for r in rows]
    return out, "\n".join(lines)[:3000]


def home_section(project_name: str, rows: Sequence[SummaryRow]) -> list[Block]:
    """A compact grid for the Home tab: the measures with data, one section each (at most 5)."""
    if not rows:
        return []
    out: list[Block] = [blocks.section("*Equity summary* (latest window; `/equity` in the channel for more)")]
    out += [blocks.section(_row_text(row)) for row in rows[:5]]
    if len(rows) > 5:
        out.append(blocks.context(f"{len(rows) - 5} more measures: `/equity` in the project's channel."))
    return out
