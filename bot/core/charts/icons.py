"""Making Data Count variation and assurance icons, drawn in matplotlib with words beside them.

Shape and colour follow NHSRplotthedots' icon set (inst/icons/variation and inst/icons/assurance): a ring in
the meaning's colour (grey common cause, blue improvement or pass, orange concern or fail, purple neutral),
an H or L for the side of a special cause, P / F / ? for assurance, and a small run chart inside. The words
always travel with the icon (on the chart beside it, and in the alt text), so colour is never the only cue.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.offsetbox import AnchoredOffsetbox, DrawingArea, HPacker, TextArea
from matplotlib.patches import Circle
from matplotlib.text import Text

from bot.core.equity.types import Direction, SpcResult

IMPROVEMENT_COLOUR = "#0072C6"  # MDC blue
CONCERN_COLOUR = "#E46C0A"  # MDC orange, a shade darker than #FF6600 for contrast on white
NEUTRAL_COLOUR = "#7030A0"  # MDC purple
COMMON_COLOUR = "#A6A6A6"  # MDC grey ring
INNER_GREY = "#7F7F7F"
LABEL_INK = "#1A1A1A"

IconKind = Literal["variation", "assurance"]
# Fewer valued points than this and a chart has no process to speak of: no icon rather than a "common cause" that
# only means "not enough data" (NHSRplotthedots warns below 13 and still draws; a handful of points is too few).
MIN_ICON_POINTS = 6


@dataclass(frozen=True)
class Icon:
    """One MDC icon: `key` is NHSRplotthedots' file name without .svg (e.g. "concern_high", "pass")."""

    kind: IconKind
    key: str
    words: str  # "Special cause concern (high)": the alt text and the summary grid say this
    short: str  # "Concern (high)": beside the icon on a crowded chart
    colour: str
    letter: str  # "H", "L", "P", "F", "?" or "" (common cause)


_VARIATION: dict[str, tuple[str, str, str, str]] = {
    "common_cause": ("Common cause variation", "Common cause", COMMON_COLOUR, ""),
    "improvement_high": ("Special cause improvement (high)", "Improvement (high)", IMPROVEMENT_COLOUR, "H"),
    "improvement_low": ("Special cause improvement (low)", "Improvement (low)", IMPROVEMENT_COLOUR, "L"),
    "concern_high": ("Special cause concern (high)", "Concern (high)", CONCERN_COLOUR, "H"),
    "concern_low": ("Special cause concern (low)", "Concern (low)", CONCERN_COLOUR, "L"),
    "neutral_high": ("Special cause neutral (high)", "Neutral (high)", NEUTRAL_COLOUR, "H"),
    "neutral_low": ("Special cause neutral (low)", "Neutral (low)", NEUTRAL_COLOUR, "L"),
}

_ASSURANCE: dict[str, tuple[str, str, str, str, str]] = {
    # assurance_type: (key, words, short, colour, letter)
    "consistent_pass": ("pass", "Consistently meets the target", "Meets target", IMPROVEMENT_COLOUR, "P"),
    "consistent_fail": ("fail", "Consistently misses the target", "Misses target", CONCERN_COLOUR, "F"),
    "inconsistent": ("inconsistent", "Hit and miss against the target", "Hit and miss", COMMON_COLOUR, "?"),
}


def variation_key(
    variation_type: str | None, direction: Direction | None, *, high: bool | None = None
) -> str | None:
    """NHSRplotthedots' variation icon for a point type (ptd_get_icons): with improvement direction "increase"
    ("higher") special cause improvement is high and concern low; with "decrease" ("lower") the reverse.
    `high` (the point's side of the centre line) decides when the direction is not given."""
    if variation_type is None:
        return None
    if variation_type == "common_cause":
        return "common_cause"
    if variation_type.startswith("special_cause_neutral_"):
        return "neutral_" + variation_type.rsplit("_", 1)[1]
    if variation_type in ("special_cause_improvement", "special_cause_concern"):
        good = variation_type == "special_cause_improvement"
        if direction == "higher":
            side_high = good
        elif direction == "lower":
            side_high = not good
        elif high is not None:
            side_high = high
        else:
            return None
        return ("improvement_" if good else "concern_") + ("high" if side_high else "low")
    return None


def variation_icon(
    variation_type: str | None, direction: Direction | None, *, high: bool | None = None
) -> Icon | None:
    key = variation_key(variation_type, direction, high=high)
    if key is None:
        return None
    words, short, colour, letter = _VARIATION[key]
    return Icon("variation", key, words, short, colour, letter)


def assurance_icon(assurance_type: str | None, *, direction: Direction | None = None) -> Icon | None:
    """Only where a target is set and the improvement direction is not neutral (MDC)."""
    if assurance_type is None or direction == "neither" or assurance_type not in _ASSURANCE:
        return None
    key, words, short, colour, letter = _ASSURANCE[assurance_type]
    return Icon("assurance", key, words, short, colour, letter)


def icons_for(
    result: SpcResult,
    *,
    direction: Direction | None,
    target: float | None,
    shown: Sequence[bool] | None = None,
) -> list[Icon]:
    """The variation icon of the latest point (shown[i] False = hidden by disclosure control), then the
    assurance icon when there is a target."""
    points = sorted(result.points, key=lambda p: p.period)
    if sum(1 for p in points if p.value is not None) < MIN_ICON_POINTS:
        return []
    # The latest period only, as MDC does; when disclosure control hides it there is no variation icon, since
    # its side of the limits would hint at the hidden count (and an older point's icon would mislead).
    latest = points[-1] if points and points[-1].value is not None and (shown is None or shown[-1]) else None
    out: list[Icon] = []
    if latest is not None and result.summary.n_points >= 1:
        high = None if latest.centre is None or latest.value is None else latest.value > latest.centre
        icon = variation_icon(latest.variation, direction, high=high)
        if icon is not None:
            out.append(icon)
    if target is not None and points:
        icon = assurance_icon(result.summary.assurance_type, direction=direction)
        if icon is not None:
            out.append(icon)
    return out


def describe(icons: Sequence[Icon]) -> str:
    """'special cause concern (high); consistently misses the target' for alt text."""
    return "; ".join(i.words[0].lower() + i.words[1:] for i in icons)


# ---------------------------------------------------------------------------- drawing


def _pattern(icon: Icon, d: float) -> list[Line2D | Circle | Text]:
    """The inside of the ring, in a d x d point box."""
    artists: list[Line2D | Circle | Text] = []
    letter_size = d * 0.36
    if icon.kind == "variation":
        high = icon.letter != "L"
        base = 0.33 if high else 0.62  # the little run chart sits away from the letter
        xs = [0.24, 0.33, 0.42, 0.51, 0.60, 0.69, 0.78]
        wiggle = [0.0, 0.05, -0.03, 0.04, -0.02, 0.0, 0.0]
        lift = 0.0 if icon.key == "common_cause" else (0.09 if high else -0.09)
        ys = [base + w for w in wiggle[:5]] + [base + lift + 0.02, base + lift + 0.04 * (1 if high else -1)]
        artists.append(
            Line2D([x * d for x in xs], [y * d for y in ys], color=INNER_GREY, linewidth=d * 0.035)
        )
        for k, (x, y) in enumerate(zip(xs, ys, strict=True)):
            special = icon.key != "common_cause" and k >= 5
            artists.append(
                Circle(
                    (x * d, y * d),
                    d * 0.045,
                    facecolor=icon.colour if special else INNER_GREY,
                    edgecolor="none",
                )
            )
        if icon.letter:
            artists.append(
                Text(
                    d * 0.5,
                    d * (0.66 if high else 0.30),
                    icon.letter,
                    ha="center",
                    va="center",
                    fontsize=letter_size,
                    fontweight="bold",
                    color=icon.colour,
                )
            )
        return artists
    # assurance: a dashed target line and the process as a wavy line, above, below or across it
    target_y = {"pass": 0.30, "fail": 0.42, "inconsistent": 0.36}[icon.key]
    wave_y = {"pass": 0.42, "fail": 0.30, "inconsistent": 0.36}[icon.key]
    xs = [0.2, 0.32, 0.44, 0.56, 0.68, 0.8]
    amp = 0.07 if icon.key == "inconsistent" else 0.03
    artists.append(
        Line2D(
            [0.16 * d, 0.84 * d],
            [target_y * d, target_y * d],
            color=icon.colour if icon.key != "inconsistent" else INNER_GREY,
            linewidth=d * 0.04,
            linestyle=(0, (2.0, 1.0)),
        )
    )
    artists.append(
        Line2D(
            [x * d for x in xs],
            [(wave_y + amp * (1 if k % 2 else -1)) * d for k in range(len(xs))],
            color=INNER_GREY,
            linewidth=d * 0.045,
        )
    )
    artists.append(
        Text(
            d * 0.5,
            d * 0.66,
            icon.letter,
            ha="center",
            va="center",
            fontsize=letter_size,
            fontweight="bold",
            color=icon.colour if icon.key != "inconsistent" else INNER_GREY,
        )
    )
    return artists


def icon_area(icon: Icon, size: float) -> DrawingArea:
    """One icon as a size x size point drawing: a white disc with a thick ring and the pattern inside."""
    area = DrawingArea(size, size, 0, 0)
    area.add_artist(
        Circle(
            (size / 2, size / 2),
            size * 0.44,
            facecolor="white",
            edgecolor=icon.colour,
            linewidth=max(size * 0.08, 1.2),
        )
    )
    for artist in _pattern(icon, size):
        area.add_artist(artist)
    return area


def _two_lines(words: str) -> str:
    """Break at the space nearest the middle: "Special cause" over "concern (high)"."""
    spaces = [i for i, ch in enumerate(words) if ch == " "]
    if not spaces:
        return words
    at = min(spaces, key=lambda i: abs(i - len(words) / 2))
    return words[:at] + "\n" + words[at + 1 :]


def icon_height(small: bool) -> float:
    """Points the icon row takes, for the headroom the panel leaves above its data."""
    return 15.0 if small else 22.0


def draw_icons(ax: Axes, icons: Sequence[Icon], *, small: bool, note: str = "") -> AnchoredOffsetbox | None:
    """The icons in the panel's top-right corner, each with its words to its right; `note` (e.g. why there is
    no variation icon) comes first, in italics."""
    if not icons and not note:
        return None
    size = icon_height(small)
    fontsize = 7.0 if small else 8.5
    children: list[Artist] = []
    if note:
        children.append(
            TextArea(
                note,
                textprops={"fontsize": fontsize, "color": LABEL_INK, "style": "italic", "linespacing": 1.1},
            )
        )
    for icon in icons:
        words = icon.short if small else icon.words
        if not small and len(words) > 18:
            # Two lines on word boundaries beside the icon: "Special cause" over "concern (high)".
            words = _two_lines(words)
        children.append(icon_area(icon, size))
        children.append(
            TextArea(words, textprops={"fontsize": fontsize, "color": LABEL_INK, "linespacing": 1.1})
        )
    row = HPacker(children=children, align="center", pad=0, sep=3)
    box = AnchoredOffsetbox(
        loc="upper right",
        child=row,
        pad=0.0,
        borderpad=0.15,
        frameon=False,
        bbox_to_anchor=(1.0, 1.0),
        bbox_transform=ax.transAxes,
    )
    box.set_zorder(6)
    box.set_gid("mdc-icons")
    ax.add_artist(box)
    return box
