"""The driver diagram picture: no overlapping boxes, text inside its box, words never cut, alt text that reads the tree."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bot.core.charts import ALT_TEXT_LIMIT
from bot.core.charts.driver_diagram import (
    COLUMN_W,
    WIDTH_PX,
    Box,
    DiagramTree,
    DriverNode,
    IdeaNode,
    alt_text,
    draw,
    driver_diagram,
)

LONG_WORD = "Pneumonoultramicroscopicsilicovolcanoconiosisidentifierwithoutbreaks"


def large_tree() -> DiagramTree:
    influences = ("yes", "partly", "not_directly")
    primaries = tuple(
        DriverNode(
            text=f"Primary {i}: how blood loss is estimated and acted on across the pathway",
            influence=influences[i % 3],
            who_can="the trust board",
            where=("policy", "staff_practice", "data"),
            secondaries=tuple(
                DriverNode(
                    text=f"Secondary {i}.{j}: signs of PPH taught on white skin only in training",
                    influence=influences[j % 3],
                    who_can="the regional training team",
                    where=("communication",),
                    ideas=tuple(
                        IdeaNode(
                            text=f"Idea {i}.{j}.{k}: book an interpreter by default when a language is recorded",
                            cycles=((f"{k + 1}.1", "adopt"), (f"{k + 1}.2", "running")),
                        )
                        for k in range(2)
                    ),
                )
                for j in range(3)
            ),
            ideas=(IdeaNode(text=f"Direct idea {i} {LONG_WORD}"),) if i == 0 else (),
        )
        for i in range(6)
    )
    return DiagramTree(
        project_name="Reducing PPH inequity",
        aim="Reduce PPH among Black women from 12% to 6% by March 2027",
        primaries=primaries,
    )


def _overlap(a: Box, b: Box) -> bool:
    return a.x < b.x + b.w and b.x < a.x + a.w and a.y < b.y + b.h and b.y < a.y + a.h


@pytest.mark.parametrize(
    "tree",
    [large_tree(), DiagramTree(project_name="Empty", aim="An aim"), DiagramTree("P", "A " * 200)],
    ids=["large", "empty", "long-aim"],
)
def test_no_box_overlaps_another_and_every_text_stays_inside_its_box(tree: DiagramTree) -> None:
    fig, boxes = draw(tree)
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    height = fig.get_figheight() * fig.dpi
    for i, a in enumerate(boxes):
        assert a.w == COLUMN_W and a.x + a.w <= WIDTH_PX and a.y + a.h <= height
        for b in boxes[i + 1 :]:
            assert not _overlap(a, b), (a.lines, b.lines)
        assert a.texts
        for artist in a.texts:
            extent = artist.get_window_extent(renderer)
            # Display coordinates run up from the bottom; the boxes were laid out down from the top.
            top, bottom = height - extent.y1, height - extent.y0
            assert a.x <= extent.x0 and extent.x1 <= a.x + a.w, (artist.get_text(), extent)
            assert a.y <= top and bottom <= a.y + a.h + 0.5, (artist.get_text(), extent)


def test_words_are_never_cut_and_a_too_long_word_shrinks_its_font_first() -> None:
    tree = large_tree()
    _, boxes = draw(tree)
    words_in = {w for b in boxes for text, _, _ in b.lines for w in text.split()}
    assert "interpreter" in words_in and "recorded" in words_in
    for b in boxes:
        for text, _points, _ in b.lines:
            for line in text.split("\n"):
                assert not line.endswith("-") or LONG_WORD in text.replace("-\n", ""), line
    assert any(points < 12 for b in boxes for text, points, _ in b.lines if "Direct idea" in text)


def test_the_large_diagram_is_a_real_png_with_large_type_at_slack_preview_width() -> None:
    chart = driver_diagram(large_tree())
    image = Image.open(io.BytesIO(chart.png))
    assert image.format == "PNG" and image.size[0] == WIDTH_PX
    # Slack previews at about 360 px wide: box text (15 pt at 100 dpi = ~21 px) is then at least 6 px tall.
    assert 15 * 100 / 72 * 360 / WIDTH_PX >= 6
    assert chart.title == "Driver diagram: Reducing PPH inequity"


def test_alt_text_reads_the_tree_in_order_within_slacks_limit() -> None:
    small = DiagramTree(
        project_name="PPH",
        aim="Reduce PPH",
        primaries=(
            DriverNode(
                text="Blood loss estimated by eye",
                where=("staff_practice",),
                secondaries=(
                    DriverNode(
                        text="No scales on the ward",
                        influence="partly",
                        who_can="estates",
                        ideas=(IdeaNode("Weigh every swab", (("2.1", "adopt"), ("2.2", "running"))),),
                    ),
                ),
            ),
            DriverNode(text="Interpreters not booked", influence="not_directly", who_can="the trust"),
        ),
    )
    text = alt_text(small)
    order = [
        "Aim: Reduce PPH",
        "Primary driver 1: Blood loss estimated by eye. Team can influence: yes. "
        "Racism may operate in: staff practice.",
        "Secondary driver 1.1: No scales on the ward. Team can influence: partly (with estates).",
        "Change idea: Weigh every swab. PDSA 2.1 adopted, 2.2 running.",
        "Primary driver 2: Interpreters not booked. Not directly: the trust can.",
    ]
    positions = [text.index(part) for part in order]
    assert positions == sorted(positions)
    big = alt_text(large_tree())
    assert len(big) <= ALT_TEXT_LIMIT and "more items not described" in big
    assert alt_text(DiagramTree("P", "Aim")).endswith("No drivers have been added yet.")
