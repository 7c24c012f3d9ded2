"""The driver diagram as a picture: Aim -> primary drivers -> secondary drivers -> change ideas, left to right.

Pure: a plain tree in, PNG bytes and alt text out. Boxes hold wrapped text (never cut mid-word; a box's font
shrinks before a word would be split); whether the team can influence a driver is written in the box and drawn
as its border and connector style (solid, dashed, dotted), never by colour alone. Each change idea lists its
PDSA cycles and their outcome. Text is sized for Slack's preview: large type, at most four narrow columns.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field

from matplotlib.backend_bases import RendererBase
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.patches import FancyBboxPatch
from matplotlib.text import Text

from bot.core.charts.common import GROUP_COLOURS, INK, MUTED, Chart, _clip, _fit_alt_text

WIDTH_PX = 1200
DPI_DIAGRAM = 100
MARGIN = 16
GAP_X = 40  # between columns: the connectors
GAP_Y = 12  # between sibling boxes
GROUP_GAP = 26  # between primary drivers' groups
HEADER_PX = 118
PAD = 10  # inside a box
COLUMN_W = (WIDTH_PX - 2 * MARGIN - 3 * GAP_X) // 4
TEXT_PT = 15.0
META_PT = 12.0
MIN_PT = 9.0
HEADING_PT = 17.0
LINE_SPACING = 1.25

COLUMNS = ("Aim", "Primary drivers", "Secondary drivers", "Change ideas")
COLUMN_COLOURS = (INK, GROUP_COLOURS[0], GROUP_COLOURS[2], GROUP_COLOURS[1])
WHERE_TEXT = {
    "policy": "policy",
    "pathway": "pathway",
    "resources": "resources",
    "communication": "communication",
    "staff_practice": "staff practice",
    "data": "data",
    "other": "other",
}
INFLUENCE_STYLE = {"yes": "solid", "partly": "dashed", "not_directly": "dotted"}
OUTCOME_TEXT = {
    "adopt": "adopted",
    "adapt": "adapted",
    "abandon": "abandoned",
    "running": "running",
    "planned": "planned",
}


@dataclass(frozen=True)
class IdeaNode:
    text: str
    # (the cycle as its card names it, e.g. "1.2"; outcome: adopt | adapt | abandon | running | planned)
    cycles: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class DriverNode:
    text: str
    influence: str = "yes"  # yes | partly | not_directly
    who_can: str = ""
    where: tuple[str, ...] = ()
    secondaries: tuple[DriverNode, ...] = ()
    ideas: tuple[IdeaNode, ...] = ()


@dataclass(frozen=True)
class DiagramTree:
    project_name: str
    aim: str
    primaries: tuple[DriverNode, ...] = ()


@dataclass
class Box:
    """A placed box, in pixels from the top left: its column, rectangle, border style and text artists."""

    column: int
    x: float
    y: float
    w: float
    h: float
    linestyle: str = "solid"
    texts: list[Text] = field(default_factory=list)
    lines: list[tuple[str, float, str]] = field(default_factory=list)  # (text, points, weight)


def influence_text(influence: str, who_can: str) -> str:
    if influence == "yes":
        return "Team can influence: yes"
    if influence == "partly":
        return "Team can influence: partly" + (f" (with {who_can})" if who_can else "")
    return "Not directly" + (f": {who_can} can" if who_can else "")


def where_text(where: Sequence[str]) -> str:
    named = [WHERE_TEXT.get(w, w) for w in where]
    return "Racism may operate in: " + ", ".join(named) if named else ""


def cycles_text(cycles: Sequence[tuple[str, str]]) -> str:
    if not cycles:
        return "No PDSA cycles yet"
    return "PDSA " + ", ".join(f"{ref} {OUTCOME_TEXT.get(o, o)}" for ref, o in cycles)


# ---------------------------------------------------------------- wrapping by measured width


def _width(renderer: RendererBase, text: str, points: float, weight: str) -> float:
    prop = FontProperties(size=points, weight=weight)
    width, _, _ = renderer.get_text_width_height_descent(text, prop, ismath=False)
    return float(width)


def _wrap(renderer: RendererBase, text: str, points: float, weight: str, limit: float) -> list[str] | None:
    """Greedy word wrap by measured width; None when one word alone is wider than the limit."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        if _width(renderer, word, points, weight) > limit:
            return None
        candidate = f"{current} {word}".strip()
        if _width(renderer, candidate, points, weight) <= limit:
            current = candidate
        else:
            lines.append(current)
            current = word
    if current:
        lines.append(current)
    return lines or [""]


def _fit(
    renderer: RendererBase, text: str, points: float, weight: str, limit: float
) -> tuple[list[str], float]:
    """Wrapped lines and the font size they fit at: the size shrinks before any word is split."""
    size = points
    while size >= MIN_PT:
        fitted = _wrap(renderer, text, size, weight, limit)
        if fitted is not None:
            return fitted, size
        size -= 1.0
    # A "word" wider than the box even at the smallest size (a pasted link, say): broken with a hyphen as a last
    # resort, each piece as wide as fits.
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}".strip()
        if _width(renderer, candidate, MIN_PT, weight) <= limit:
            current = candidate
            continue
        if current:
            lines.append(current)
            current = ""
        while _width(renderer, word, MIN_PT, weight) > limit:
            cut = len(word) - 1
            while cut > 1 and _width(renderer, word[:cut] + "-", MIN_PT, weight) > limit:
                cut -= 1
            lines.append(word[:cut] + "-")
            word = word[cut:]
        current = word
    if current:
        lines.append(current)
    return lines, MIN_PT


def _px(points: float) -> float:
    return points * DPI_DIAGRAM / 72.0


# ---------------------------------------------------------------- layout


def _make_box(
    renderer: RendererBase, column: int, parts: Sequence[tuple[str, float, str]], linestyle: str
) -> Box:
    inner = COLUMN_W - 2 * PAD
    lines: list[tuple[str, float, str]] = []
    height = 2.0 * PAD
    for text, points, weight in parts:
        if not text:
            continue
        wrapped, size = _fit(renderer, text, points, weight, inner)
        block = "\n".join(wrapped)
        lines.append((block, size, weight))
        height += len(wrapped) * _px(size) * LINE_SPACING + 4
    x = MARGIN + column * (COLUMN_W + GAP_X)
    return Box(column=column, x=x, y=0.0, w=COLUMN_W, h=height, linestyle=linestyle, lines=lines)


def _driver_parts(node: DriverNode) -> list[tuple[str, float, str]]:
    return [
        (node.text, TEXT_PT, "bold"),
        (influence_text(node.influence, node.who_can), META_PT, "normal"),
        (where_text(node.where), META_PT, "normal"),
    ]


@dataclass
class _Placed:
    boxes: list[Box] = field(default_factory=list)
    links: list[tuple[Box, Box]] = field(default_factory=list)  # (parent, child)


def _place_idea(renderer: RendererBase, idea: IdeaNode, top: float, placed: _Placed) -> tuple[Box, float]:
    box = _make_box(
        renderer, 3, [(idea.text, TEXT_PT, "normal"), (cycles_text(idea.cycles), META_PT, "normal")], "solid"
    )
    box.y = top
    placed.boxes.append(box)
    return box, box.h


def _place_driver(
    renderer: RendererBase, node: DriverNode, column: int, top: float, placed: _Placed
) -> tuple[Box, float]:
    """Place a driver and everything under it from `top`; returns its box and the height of its block."""
    box = _make_box(renderer, column, _driver_parts(node), INFLUENCE_STYLE.get(node.influence, "solid"))
    placed.boxes.append(box)
    first_child = len(placed.boxes)
    y = top
    children: list[Box] = []
    for secondary in node.secondaries:
        child, used = _place_driver(renderer, secondary, column + 1, y, placed)
        children.append(child)
        y += used + GAP_Y
    for idea in node.ideas:
        child, used = _place_idea(renderer, idea, y, placed)
        children.append(child)
        y += used + GAP_Y
    used_children = (y - GAP_Y - top) if children else 0.0
    block = max(box.h, used_children)
    if used_children < box.h and children:
        # The driver is taller than its children: centre them against it.
        shift = (box.h - used_children) / 2
        for placed_box in placed.boxes[first_child:]:
            placed_box.y += shift
    box.y = top + (block - box.h) / 2
    placed.links += [(box, child) for child in children]
    return box, block


def layout(tree: DiagramTree, renderer: RendererBase) -> tuple[list[Box], list[tuple[Box, Box]], float]:
    """Every box and connector, and the picture's height in pixels."""
    placed = _Placed()
    y = float(HEADER_PX)
    primaries: list[Box] = []
    for primary in tree.primaries:
        box, used = _place_driver(renderer, primary, 1, y, placed)
        primaries.append(box)
        y += used + GROUP_GAP
    if not tree.primaries:
        empty = _make_box(
            renderer,
            1,
            [("No drivers yet. Add the first with /mfi drivers.", TEXT_PT, "normal")],
            "dotted",
        )
        empty.y = y
        placed.boxes.append(empty)
        y += empty.h + GROUP_GAP
    bottom = y - GROUP_GAP
    aim = _make_box(renderer, 0, [("Aim", META_PT, "bold"), (tree.aim, TEXT_PT, "bold")], "solid")
    aim.y = float(HEADER_PX)  # at the top, where a reader (and a tall picture's preview) starts
    placed.boxes.insert(0, aim)
    placed.links = [(aim, p) for p in primaries] + placed.links
    height = max(bottom, aim.y + aim.h) + MARGIN + 34  # room for the footnote
    return placed.boxes, placed.links, height


# ---------------------------------------------------------------- drawing


def _measuring_renderer() -> RendererBase:
    fig = Figure(figsize=(WIDTH_PX / DPI_DIAGRAM, 4), dpi=DPI_DIAGRAM)
    renderer: RendererBase = FigureCanvasAgg(fig).get_renderer()  # type: ignore[no-untyped-call]
    return renderer


def draw(tree: DiagramTree) -> tuple[Figure, list[Box]]:
    """The figure and its placed boxes (with their text artists), for rendering and for the layout test."""
    boxes, links, height = layout(tree, _measuring_renderer())
    fig = Figure(figsize=(WIDTH_PX / DPI_DIAGRAM, height / DPI_DIAGRAM), dpi=DPI_DIAGRAM, facecolor="white")
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_xlim(0, WIDTH_PX)
    ax.set_ylim(height, 0)
    ax.axis("off")
    fig.text(
        MARGIN / WIDTH_PX,
        1 - 10 / height,
        f"Driver diagram: {tree.project_name}",
        fontsize=HEADING_PT + 3,
        fontweight="bold",
        color=INK,
        va="top",
        ha="left",
    )
    for column, title in enumerate(COLUMNS):
        ax.text(
            MARGIN + column * (COLUMN_W + GAP_X),
            HEADER_PX - 12,
            title,
            fontsize=HEADING_PT,
            fontweight="bold",
            color=COLUMN_COLOURS[column],
            va="bottom",
            ha="left",
        )
    ax.text(
        MARGIN,
        HEADER_PX - 44,
        "Border and line: solid = team can influence · dashed = partly · dotted = not directly",
        fontsize=META_PT,
        color=MUTED,
        va="bottom",
        ha="left",
    )
    trunks: dict[int, tuple[Box, float, float]] = {}
    for parent, child in links:
        x0, y0 = parent.x + parent.w, parent.y + parent.h / 2
        y1 = child.y + child.h / 2
        _, low, high = trunks.get(id(parent), (parent, y0, y0))
        trunks[id(parent)] = (parent, min(low, y1), max(high, y1))
        mid = (
            x0 + GAP_X / 2
        )  # down in the gap next to the parent, then across (a skipped column is empty there)
        # The stub into each child carries the child's influence style; the shared trunk is plain.
        ax.plot([mid, child.x], [y1, y1], color=INK, linewidth=2.0, linestyle=child.linestyle)
    for parent, low, high in trunks.values():
        x0, y0 = parent.x + parent.w, parent.y + parent.h / 2
        mid = x0 + GAP_X / 2
        ax.plot([x0, mid], [y0, y0], color=MUTED, linewidth=1.4)
        ax.plot([mid, mid], [low, high], color=MUTED, linewidth=1.4)
    for box in boxes:
        ax.add_patch(
            FancyBboxPatch(
                (box.x, box.y),
                box.w,
                box.h,
                boxstyle="round,pad=0,rounding_size=6",
                linewidth=2.4 if box.linestyle == "solid" else 2.0,
                linestyle=box.linestyle,
                edgecolor=COLUMN_COLOURS[box.column],
                facecolor="white",
            )
        )
        y = box.y + PAD
        for text, points, weight in box.lines:
            artist = ax.text(
                box.x + PAD,
                y,
                text,
                fontsize=points,
                fontweight=weight,
                color=INK if weight == "bold" or points >= TEXT_PT else MUTED,
                va="top",
                ha="left",
                linespacing=LINE_SPACING,
            )
            box.texts.append(artist)
            y += (text.count("\n") + 1) * _px(points) * LINE_SPACING + 4
    ax.text(
        MARGIN,
        height - MARGIN,
        "Retired drivers and ideas are not shown; their history is kept. /mfi drivers to edit.",
        fontsize=META_PT - 1,
        color=MUTED,
        va="bottom",
        ha="left",
    )
    return fig, boxes


def alt_text(tree: DiagramTree) -> str:
    """The tree read aloud, in diagram order, within Slack's alt text limit."""
    head = [f"Driver diagram for {tree.project_name}. Aim: {tree.aim.rstrip('.')}."]
    if not tree.primaries:
        return _clip(" ".join([*head, "No drivers have been added yet."]))
    items: list[str] = []
    for i, primary in enumerate(tree.primaries, start=1):
        items.append(_driver_sentence(f"Primary driver {i}", primary))
        for j, secondary in enumerate(primary.secondaries, start=1):
            items.append(_driver_sentence(f"Secondary driver {i}.{j}", secondary))
            items += [_idea_sentence(idea) for idea in secondary.ideas]
        items += [_idea_sentence(idea) for idea in primary.ideas]
    secondaries = sum(len(p.secondaries) for p in tree.primaries)
    ideas = sum(len(p.ideas) + sum(len(s.ideas) for s in p.secondaries) for p in tree.primaries)
    head.append(
        f"{len(tree.primaries)} primary driver{'s' if len(tree.primaries) != 1 else ''}, "
        f"{secondaries} secondary, {ideas} change idea{'s' if ideas != 1 else ''}."
    )
    return _fit_alt_text(
        head, items, ["The message with the picture lists every item in words."], what="items"
    )


def _driver_sentence(label: str, node: DriverNode) -> str:
    where = where_text(node.where)
    reach = influence_text(node.influence, node.who_can)
    return f"{label}: {node.text.rstrip('.')}. {reach}." + (f" {where}." if where else "")


def _idea_sentence(idea: IdeaNode) -> str:
    return f"Change idea: {idea.text.rstrip('.')}. {cycles_text(idea.cycles)}."


def driver_diagram(tree: DiagramTree) -> Chart:
    fig, _ = draw(tree)
    return Chart(png=_render_at(fig), alt_text=alt_text(tree), title=f"Driver diagram: {tree.project_name}")


def _render_at(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI_DIAGRAM, facecolor="white", metadata={"Software": None})
    return buf.getvalue()


__all__ = ["Box", "DiagramTree", "DriverNode", "IdeaNode", "alt_text", "draw", "driver_diagram", "layout"]
